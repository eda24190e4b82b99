"""Client against granian (Rust HTTP/2 server, ASGI app), over h2c and TLS."""

from __future__ import annotations

import asyncio

import pytest

from nghttp2.client import Client

TIMEOUT = 10.0

pytestmark = pytest.mark.asyncio


async def test_get_and_post(granian, tls, tls_options) -> None:
    async with Client(granian(tls), **tls_options) as c:
        r = await asyncio.wait_for(c.get("/hello"), TIMEOUT)
        assert r.status == 200
        assert r.content == b"granian GET /hello"
        assert r.headers["x-http-version"] == "2"
        r = await asyncio.wait_for(c.post("/echo", content=b"x" * 100_000), TIMEOUT)
        assert r.content == b"x" * 100_000


async def test_100_concurrent_requests_one_connection(granian, tls, tls_options) -> None:
    async with Client(granian(tls), **tls_options) as c:
        conn = c.connection
        rs = await asyncio.wait_for(asyncio.gather(*[c.get(f"/r{i}") for i in range(100)]), TIMEOUT)
        assert c.connection is conn
    assert [r.content for r in rs] == [f"granian GET /r{i}".encode() for i in range(100)]


async def test_streamed_upload_and_download(granian, tls, tls_options) -> None:
    async def body():
        for _ in range(32):
            yield b"y" * 32768

    size = 5 * 1024 * 1024
    async with Client(granian(tls), **tls_options) as c:
        r = await asyncio.wait_for(c.post("/echo", content=body()), TIMEOUT)
        assert r.content == b"y" * (32 * 32768)
        received = 0
        async with c.stream("GET", f"/big/{size}") as r:
            async for chunk in r.aiter_bytes():
                received += len(chunk)
    assert received == size
