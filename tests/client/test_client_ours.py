"""Client against our own HTTP2Server, over h2c and TLS (trustme)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import ssl

import pytest
import pytest_asyncio

from nghttp2.client import (
    Client,
    ConnectError,
    ConnectTimeout,
    NegotiationError,
    ReadTimeout,
    ResponseNotRead,
    StreamConsumed,
    StreamResetError,
    Timeout,
)
from nghttp2.server.limits import Limits
from nghttp2_cffi import ErrorCode

PATTERN = bytes(range(256)) * 256
TIMEOUT = 10.0

pytestmark = pytest.mark.asyncio


@pytest.fixture(params=["h2c", "tls"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest_asyncio.fixture
async def app(serve, mode, server_ssl, client_ssl):
    """(server, client kwargs) for the mode."""
    if mode == "tls":
        srv = await serve(tls=server_ssl)
        return srv, {"ssl": client_ssl}
    return await serve(), {}


async def test_get_status_headers_content(app, mode) -> None:
    srv, kw = app
    async with Client(srv.base_url, **kw) as c:
        r = await c.get("/hello")
        assert r.status == 200
        assert r.content == b"hello"
        assert r.text == "hello"
        assert r.headers["Content-Type"] == "text/plain"
        assert r.headers[b"content-type"] == "text/plain"
        assert (b"content-type", b"text/plain") in r.headers.raw
        assert r.http_version == "HTTP/2"
        assert r.url == srv.base_url + "/hello"
        missing = await c.get("/nope")
        assert missing.status == 404
        if mode == "tls":
            transport = c.connection.transport
            assert transport.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"


async def test_request_methods_headers_and_bytes_body(app) -> None:
    srv, kw = app
    async with Client(srv.base_url, headers={"x-default": "d"}, **kw) as c:
        r = await c.post("/echo", content=b"payload", headers=[("X-One", "1"), ("x-two", "2")])
        assert r.content == b"payload"
        assert r.headers["x-method"] == "POST"
        assert r.headers["x-one"] == "1" and r.headers["x-two"] == "2"
        assert r.headers["x-default"] == "d"
        r = await c.put("/echo", content="text é")
        assert r.content == "text é".encode()
        assert r.headers["x-method"] == "PUT"
        r = await c.request("PATCH", "/echo", content=bytearray(b"ba"))
        assert (r.headers["x-method"], r.content) == ("PATCH", b"ba")
        r = await c.delete("/echo")
        assert (r.headers["x-method"], r.content) == ("DELETE", b"")
        r = await c.head("/hello")
        assert r.status == 200 and r.content == b""


async def test_streamed_request_bodies(app) -> None:
    srv, kw = app

    async def agen():
        for i in range(50):
            yield PATTERN[: 1000 + i]
            await asyncio.sleep(0)

    expected = sum(1000 + i for i in range(50))
    async with Client(srv.base_url, **kw) as c:
        r = await c.post("/count-upload", content=agen())
        assert r.content == str(expected).encode()
        r = await c.post("/echo", content=iter([b"a", b"", b"bc", bytearray(b"d")]))
        assert r.content == b"abcd"
        r = await c.post("/echo", content=io.BytesIO(b"from a file-like"))
        assert r.content == b"from a file-like"


async def test_large_streamed_upload_respects_flow_control(app) -> None:
    """8 MiB through a 1 MiB server window: the body is pulled, not queued."""
    srv, kw = app
    total = 8 * 1024 * 1024
    pulled = []

    async def agen():
        for _ in range(total // len(PATTERN)):
            pulled.append(len(PATTERN))
            yield PATTERN

    async with Client(srv.base_url, **kw) as c:
        r = await c.post("/count-upload", content=agen())
    assert r.content == str(total).encode()
    assert sum(pulled) == total


async def test_streamed_response(app) -> None:
    srv, kw = app
    size = 3 * 1024 * 1024 + 17
    digest = hashlib.sha256()
    async with Client(srv.base_url, **kw) as c:
        async with c.stream("GET", f"/big?size={size}") as r:
            assert r.status == 200
            assert r.headers["content-length"] == str(size)
            with pytest.raises(ResponseNotRead):
                _ = r.content
            n = 0
            async for chunk in r.aiter_bytes():
                n += len(chunk)
                digest.update(chunk)
            with pytest.raises(StreamConsumed):
                async for _ in r.aiter_bytes():
                    pass
        assert n == size
        ref = hashlib.sha256()
        left = size
        while left:
            part = PATTERN[: min(len(PATTERN), left)]
            ref.update(part)
            left -= len(part)
        assert digest.hexdigest() == ref.hexdigest()
        # The connection is still good.
        assert (await c.get("/hello")).content == b"hello"


async def test_leaving_a_stream_early_resets_it(app) -> None:
    srv, kw = app
    async with Client(srv.base_url, **kw) as c:
        async with c.stream("GET", "/big?size=50000000") as r:
            async for _ in r.aiter_bytes():
                break
        assert (await c.get("/hello")).content == b"hello"
        for _ in range(100):
            if any(route == b"/big" for route, _ in srv.state.get("closed", [])):
                break
            await asyncio.sleep(0.01)
        assert (b"/big", ErrorCode.CANCEL) in srv.state["closed"]


async def test_100_concurrent_requests_share_one_connection(app) -> None:
    srv, kw = app
    async with Client(srv.base_url, **kw) as c:
        conn = c.connection
        responses = await asyncio.wait_for(
            asyncio.gather(*[c.get(f"/echo?{i}", headers={"x-i": str(i)}) for i in range(100)]),
            TIMEOUT,
        )
        assert c.connection is conn
    assert [r.headers["x-i"] for r in responses] == [str(i) for i in range(100)]
    assert len({r.stream_id for r in responses}) == 100
    assert len(srv.state["connections"]) == 1


async def test_server_max_concurrent_streams_queues_requests(serve) -> None:
    srv = await serve(limits=Limits(max_concurrent_streams=5))
    async with Client(srv.base_url) as c:
        assert c.connection.max_outbound == 5
        responses = await asyncio.wait_for(
            asyncio.gather(*[c.get("/count") for _ in range(40)]), TIMEOUT
        )
    assert all(r.status == 200 for r in responses)
    assert srv.state["max_active"] == 5
    assert not any(code for _, code in srv.state["closed"])  # nothing refused


async def test_100_mib_download_memory_is_bounded(serve, peak_memory) -> None:
    srv = await serve()
    size = 100 * 1024 * 1024
    async with Client(srv.base_url) as c:
        await c.get("/hello")  # connection and first allocations out of the way
        received = 0
        with peak_memory() as peak:
            async with c.stream("GET", f"/big?size={size}") as r:
                async for chunk in r.aiter_bytes():
                    received += len(chunk)
                    if received % (4 << 20) < len(chunk):
                        peak.sample()
    assert received == size
    print(f"100 MiB download from our server: {peak}")
    assert peak.rss < 30 * 1024 * 1024
    assert peak.traced is None or peak.traced < 30 * 1024 * 1024


async def test_push_accepted(app) -> None:
    srv, kw = app
    async with Client(srv.base_url, **kw) as c:
        r = await c.get("/push")
        assert r.content == b"main"
        assert srv.state["pushed"]
        assert sorted(c.pushed) == ["/pushed.css", "/pushed.js"]
        assert [p.path for p in r.pushed] == ["/pushed.css", "/pushed.js"]
        css = c.pushed["/pushed.css"]
        assert await css.aread() == b"p{}"
        assert css.status == 200 and css.headers["content-type"] == "text/css"
        assert css.is_pushed and css.promised_by is r
        assert css.method == "GET"
        assert await c.pushed["/pushed.js"].aread() == PATTERN[:5000]


async def test_push_refused_with_enable_push_false(app) -> None:
    srv, kw = app
    async with Client(srv.base_url, enable_push=False, **kw) as c:
        r = await c.get("/push")
        assert r.content == b"main"
        assert c.pushed == {} and r.pushed == []
    assert "disabled" in srv.state["push_error"]


async def test_trailers(app) -> None:
    srv, kw = app
    async with Client(srv.base_url, **kw) as c:
        r = await c.get("/trailers")
        assert r.content == b"part1,part2"
        assert r.trailers["x-checksum"] == "c0ffee"
        assert r.trailers.raw == [(b"x-checksum", b"c0ffee"), (b"x-count", b"2")]
        plain = await c.get("/hello")
        assert len(plain.trailers) == 0


@pytest.mark.parametrize(
    "code", [ErrorCode.INTERNAL_ERROR, ErrorCode.REFUSED_STREAM, ErrorCode.ENHANCE_YOUR_CALM]
)
async def test_stream_reset_raises_with_the_error_code(serve, code) -> None:
    srv = await serve()
    async with Client(srv.base_url) as c:
        with pytest.raises(StreamResetError) as info:
            await c.get(f"/reset?code={int(code)}")
        assert info.value.error_code == code
        assert info.value.retryable is (code == ErrorCode.REFUSED_STREAM)
        assert code.name in str(info.value)
        assert (await c.get("/hello")).content == b"hello"  # only the stream died


async def test_read_timeout_for_headers_and_body(app) -> None:
    srv, kw = app
    async with Client(srv.base_url, timeout=Timeout(connect=5, read=0.2), **kw) as c:
        with pytest.raises(ReadTimeout, match="response headers"):
            await c.get("/never")
        with pytest.raises(TimeoutError):
            await c.get("/never")
        with pytest.raises(ReadTimeout, match="body data"):
            await c.get("/stall")
        # per-request override, and the connection survived
        r = await c.get("/hello", timeout=1.0)
        assert r.content == b"hello"
    # abandoned streams were reset
    assert (b"/never", ErrorCode.CANCEL) in srv.state["closed"]


async def test_read_timeouts_share_a_timer(app) -> None:
    """Waits with the same read timeout share one timer (Deadlines): each
    still expires on its own deadline, also when the wait the timer was
    set for ended first (the timer then re-arms for the next one)."""
    srv, kw = app
    async with Client(srv.base_url, timeout=Timeout(connect=5, read=0.5), **kw) as c:
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(c.get("/never"))
        await asyncio.sleep(0.2)
        start = loop.time()
        second = asyncio.ensure_future(c.get("/never"))
        await asyncio.sleep(0.05)
        first.cancel()  # the timer was set for its deadline
        with pytest.raises(ReadTimeout, match="response headers"):
            await asyncio.wait_for(second, 5)
        assert loop.time() - start >= 0.45
        with pytest.raises(asyncio.CancelledError):
            await first
        assert (await c.get("/hello")).content == b"hello"


async def test_connect_timeout_when_the_server_never_speaks() -> None:
    async def silent(reader, writer):
        await reader.read()  # accepts, never sends SETTINGS
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        c = Client(f"http://127.0.0.1:{port}", timeout=Timeout(connect=0.3))
        with pytest.raises(ConnectTimeout):
            await c.get("/")
        await c.aclose()
    finally:
        server.close()


async def test_connect_refused() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(ConnectError, match="cannot connect"):
        async with Client(f"http://127.0.0.1:{port}"):
            pass


async def test_http1_server_fails_clearly_over_h2c() -> None:
    async def http1(reader, writer):
        await reader.read(24)
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(http1, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(NegotiationError, match="HTTP/1"):
            async with Client(f"http://127.0.0.1:{port}"):
                pass
    finally:
        server.close()


async def test_tls_server_without_h2_alpn_fails_clearly(server_cert, client_ssl) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_cert.configure_cert(ctx)
    ctx.set_alpn_protocols(["http/1.1"])

    async def http1(reader, writer):
        await reader.read()
        writer.close()

    server = await asyncio.start_server(http1, "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(NegotiationError, match="ALPN"):
            async with Client(f"https://127.0.0.1:{port}", ssl=client_ssl):
                pass
    finally:
        server.close()


async def test_untrusted_certificate_is_a_connect_error(serve, server_ssl) -> None:
    srv = await serve(tls=server_ssl)
    with pytest.raises(ConnectError, match="TLS"):
        async with Client(srv.base_url):  # the default context does not trust trustme's CA
            pass


async def test_graceful_shutdown_lets_in_flight_requests_finish(serve) -> None:
    srv = await serve()
    async with Client(srv.base_url) as c:
        in_flight = asyncio.ensure_future(c.get("/count"))
        while not srv.state.get("active"):
            await asyncio.sleep(0.005)
        await srv.shutdown(timeout=TIMEOUT)
        r = await asyncio.wait_for(in_flight, TIMEOUT)
        assert r.status == 200
        assert c.connection.goaway is not None
        assert not c.connection.is_available
        # A new request needs a new connection, and the server is gone.
        with pytest.raises(ConnectError):
            await c.get("/hello")


async def test_ping_and_url_forms(serve) -> None:
    srv = await serve()
    async with Client(srv.base_url + "/") as c:
        assert await c.ping() >= 0
        r = await c.get(srv.base_url + "/echo", params={"a": "1 2"})
        assert r.url == srv.base_url + "/echo?a=1+2"
        with pytest.raises(ValueError, match="origin"):
            await c.get("http://example.com/")
        with pytest.raises(ValueError, match="connection-specific"):
            await c.get("/hello", headers={"connection": "keep-alive"})


async def test_requests_after_close_fail(serve) -> None:
    srv = await serve()
    c = Client(srv.base_url)
    assert (await c.get("/hello")).status == 200  # connects on demand
    await c.aclose()
    with pytest.raises(Exception, match="closed"):
        await c.get("/hello")


async def test_cancelled_request_resets_its_stream(serve) -> None:
    srv = await serve()
    async with Client(srv.base_url) as c:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(c.get("/never"), 0.1)
        for _ in range(100):
            if (b"/never", ErrorCode.CANCEL) in srv.state.get("closed", []):
                break
            await asyncio.sleep(0.01)
        assert (b"/never", ErrorCode.CANCEL) in srv.state["closed"]
        assert (await c.get("/hello")).content == b"hello"
        assert c.connection.open_outbound == 0  # the slot came back
