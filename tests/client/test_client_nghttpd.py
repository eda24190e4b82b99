"""Client against nghttpd (nghttp2's own C server), over h2c and TLS."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from nghttp2.client import Client

TIMEOUT = 10.0
PATTERN = bytes(range(256)) * 256

pytestmark = pytest.mark.asyncio


async def test_get_head_and_404(nghttpd, tls, tls_options, htdocs) -> None:
    async with Client(nghttpd(tls), enable_push=False, **tls_options) as c:
        r = await asyncio.wait_for(c.get("/index.html"), TIMEOUT)
        assert r.status == 200
        assert r.content == (htdocs / "index.html").read_bytes()
        assert r.headers["server"].startswith("nghttpd")
        assert r.trailers["x-trailer"] == "yes"  # nghttpd --trailer
        head = await asyncio.wait_for(c.head("/data.bin"), TIMEOUT)
        assert head.status == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(PATTERN) * 4)
        assert (await asyncio.wait_for(c.get("/missing"), TIMEOUT)).status == 404


async def test_100_concurrent_requests_one_connection(nghttpd, tls, tls_options) -> None:
    async with Client(nghttpd(tls), **tls_options) as c:
        conn = c.connection
        rs = await asyncio.wait_for(
            asyncio.gather(*[c.get("/data.bin") for _ in range(100)]), TIMEOUT
        )
        assert c.connection is conn
    assert all(r.content == PATTERN * 4 for r in rs)
    assert len({r.stream_id for r in rs}) == 100


async def test_push_accepted_and_refused(nghttpd, tls, tls_options, htdocs) -> None:
    async with Client(nghttpd(tls), **tls_options) as c:
        r = await asyncio.wait_for(c.get("/index.html"), TIMEOUT)
        assert [p.path for p in r.pushed] == ["/style.css"]
        css = c.pushed["/style.css"]
        assert await asyncio.wait_for(css.aread(), TIMEOUT) == (htdocs / "style.css").read_bytes()
        assert css.status == 200
    async with Client(nghttpd(tls), enable_push=False, **tls_options) as c:
        r = await asyncio.wait_for(c.get("/index.html"), TIMEOUT)
        assert r.status == 200 and r.pushed == [] and c.pushed == {}


async def test_max_concurrent_streams_of_nghttpd(nghttpd, client_ssl) -> None:
    async with Client(nghttpd(False, "-m", "4"), enable_push=False) as c:
        assert c.connection.max_outbound == 4
        rs = await asyncio.wait_for(
            asyncio.gather(*[c.get("/index.html") for _ in range(40)]), TIMEOUT
        )
    assert all(r.status == 200 for r in rs)


async def test_streamed_upload_echoed(nghttpd, tls, tls_options) -> None:
    """nghttpd --echo-upload sends the request body back."""

    async def body():
        for i in range(64):
            yield PATTERN[i : i + 20000]

    expected = b"".join(PATTERN[i : i + 20000] for i in range(64))
    async with Client(nghttpd(tls), enable_push=False, **tls_options) as c:
        r = await asyncio.wait_for(c.post("/echo", content=body()), TIMEOUT)
    assert r.status == 200
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(expected).digest()


async def test_100_mib_download_from_nghttpd_memory_is_bounded(nghttpd, peak_memory) -> None:
    size = 100 * 1024 * 1024
    async with Client(nghttpd(False), enable_push=False) as c:
        await c.get("/index.html")
        received = 0
        with peak_memory() as peak:
            async with c.stream("GET", "/big.bin") as r:
                assert r.headers["content-length"] == str(size)
                async for chunk in r.aiter_bytes():
                    received += len(chunk)
                    if received % (4 << 20) < len(chunk):
                        peak.sample()
    assert received == size
    print(f"100 MiB download from nghttpd: {peak}")
    assert peak.rss < 30 * 1024 * 1024
    assert peak.traced is None or peak.traced < 30 * 1024 * 1024
