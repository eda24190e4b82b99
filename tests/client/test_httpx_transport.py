"""nghttp2.httpx's transports under httpx, side by side with httpx's own.

The same behaviour matrix runs with ``kind="httpx"`` (httpx's default
transport, HTTP/2 on httpcore and h2) and ``kind="ours"``
(``nghttp2.httpx.AsyncHTTPTransport`` / ``HTTPTransport``), against our
server, nghttpd and granian over h2c and TLS, plus scripted h2 peers for
what real servers do not do on demand.  Where the two differ on purpose
(a pool timeout, retrying a request a GOAWAY refused, trailers), the test
says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable, List, Optional

import h2.events
import httpx
import pytest
import pytest_asyncio
from hyperframe.frame import GoAwayFrame

from nghttp2.httpx import AsyncHTTPTransport, HTTPTransport
from nghttp2.server import BaseRequestHandler, HTTP2Server
from nghttp2_cffi import SettingCode

TIMEOUT = 10.0
PATTERN = bytes(range(256)) * 256  # 64 KiB, the body our test server streams

pytestmark = pytest.mark.asyncio

KINDS = ["httpx", "ours"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def client(
    kind: str, base_url: str, verify: Any = True, *, timeout: Any = TIMEOUT, **kw: Any
) -> httpx.AsyncClient:
    tls = base_url.startswith("https")
    if kind == "ours":
        transport = AsyncHTTPTransport(verify=verify, http2_prior_knowledge=not tls)
        return httpx.AsyncClient(transport=transport, base_url=base_url, timeout=timeout, **kw)
    # httpx's own: ALPN h2 over TLS, h2c with prior knowledge without it.
    return httpx.AsyncClient(
        http1=tls, http2=True, verify=verify, base_url=base_url, timeout=timeout, **kw
    )


def sync_client(kind: str, base_url: str, verify: Any = True) -> httpx.Client:
    tls = base_url.startswith("https")
    if kind == "ours":
        transport = HTTPTransport(verify=verify, http2_prior_knowledge=not tls)
        return httpx.Client(transport=transport, base_url=base_url, timeout=TIMEOUT)
    return httpx.Client(http1=tls, http2=True, verify=verify, base_url=base_url, timeout=TIMEOUT)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ---------------------------------------------------------------------------
# Three real servers, one description each
# ---------------------------------------------------------------------------


@dataclass
class Origin:
    url: str
    small: str  # a GET path
    small_body: bytes
    echo: str  # a POST path answering with the request body
    big: Callable[[int], str]  # a GET path with a body of n bytes
    big_body: Callable[[int], bytes]


@pytest_asyncio.fixture(params=["ours", "nghttpd", "granian"])
async def origin(
    request: pytest.FixtureRequest, tls: bool, serve: Any, server_ssl: ssl.SSLContext
) -> Origin:
    name = request.param
    if name == "ours":
        srv = await serve(tls=server_ssl if tls else None)
        return Origin(
            srv.base_url,
            "/hello",
            b"hello",
            "/echo",
            lambda n: f"/big?size={n}",
            lambda n: (PATTERN * (n // len(PATTERN) + 1))[:n],
        )
    if name == "nghttpd":
        htdocs: Path = request.getfixturevalue("htdocs")
        url = request.getfixturevalue("nghttpd")(tls)
        data = (htdocs / "data.bin").read_bytes()
        return Origin(
            url,
            "/index.html",
            (htdocs / "index.html").read_bytes(),
            "/echo",  # nghttpd --echo-upload answers any POST with its body
            lambda n: "/data.bin",
            lambda n: data,
        )
    url = request.getfixturevalue("granian")(tls)
    return Origin(
        url,
        "/hello",
        b"granian GET /hello",
        "/echo",
        lambda n: f"/big/{n}",
        lambda n: b"g" * n,
    )


async def test_status_headers_bodies_and_streaming(
    kind: str, origin: Origin, client_ssl: ssl.SSLContext
) -> None:
    upload = PATTERN * 3 + b"tail"

    async def body() -> AsyncIterator[bytes]:
        for _ in range(16):
            yield PATTERN[:32768]

    async with client(kind, origin.url, client_ssl) as c:
        r = await c.get(origin.small)
        assert r.status_code == 200
        assert r.http_version == "HTTP/2"
        assert sha(r.content) == sha(origin.small_body)
        assert "content-type" in r.headers or "content-length" in r.headers
        r = await c.post(origin.echo, content=upload)
        assert r.status_code == 200 and sha(r.content) == sha(upload)
        r = await c.post(origin.echo, content=body())
        assert sha(r.content) == sha(PATTERN[:32768] * 16)
        size = 300_000
        digest, got = hashlib.sha256(), 0
        async with c.stream("GET", origin.big(size)) as r:
            assert r.status_code == 200
            async for chunk in r.aiter_bytes():
                digest.update(chunk)
                got += len(chunk)
        assert digest.hexdigest() == sha(origin.big_body(size))
        if kind == "ours":
            ext = r.extensions
            assert ext["http_version"] == b"HTTP/2" and ext["stream_id"] % 2 == 1
            net = ext["network_stream"]
            assert net.get_extra_info("server_addr")[1] == int(origin.url.rsplit(":", 1)[1])
            assert (net.get_extra_info("ssl_object") is not None) == origin.url.startswith("https")


async def test_sync_client(
    kind: str, origin: Origin, client_ssl: ssl.SSLContext, tmp_path: Path
) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes(PATTERN * 5)

    def run() -> None:
        with sync_client(kind, origin.url, client_ssl) as c:
            r = c.get(origin.small)
            assert r.status_code == 200 and r.http_version == "HTTP/2"
            assert r.content == origin.small_body
            r = c.post(origin.echo, content=iter([b"a" * 70000, b"b" * 70000]))
            assert sha(r.content) == sha(b"a" * 70000 + b"b" * 70000)
            with open(upload, "rb") as f:
                r = c.post(origin.echo, content=f)
            assert sha(r.content) == sha(PATTERN * 5)
            digest = hashlib.sha256()
            with c.stream("GET", origin.big(200_000)) as r:
                for chunk in r.iter_bytes():
                    digest.update(chunk)
            assert digest.hexdigest() == sha(origin.big_body(200_000))

    await asyncio.wait_for(asyncio.to_thread(run), TIMEOUT * 2)


# ---------------------------------------------------------------------------
# Our server: httpx's redirects and cookies above the transport, trailers,
# pushes refused, resets, multiplexing
# ---------------------------------------------------------------------------


class Site(BaseRequestHandler):
    def on_request_done(self) -> None:
        path = self.path or b""
        if path == b"/login":
            self.send_response(
                302, [("location", "/home"), ("set-cookie", "session=s3cret; Path=/")]
            )
        elif path == b"/home":
            cookie = dict(self.headers).get(b"cookie", b"none")
            self.send_response(200, body=b"cookie: " + cookie)
        else:
            self.send_response(404)


async def test_redirects_and_cookies(
    kind: str, tls: bool, server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> None:
    srv = HTTP2Server(("127.0.0.1", 0), Site, ssl=server_ssl if tls else None, access_log=False)
    await srv.start()
    try:
        url = f"{'https' if tls else 'http'}://127.0.0.1:{srv.address[1]}"
        async with client(kind, url, client_ssl, follow_redirects=True) as c:
            r = await c.get("/login")
            assert r.status_code == 200 and r.text == "cookie: session=s3cret"
            assert [h.status_code for h in r.history] == [302]
            assert c.cookies["session"] == "s3cret"
    finally:
        srv.close()


async def test_trailers_push_reset_and_one_connection(
    kind: str, serve: Any, tls: bool, server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> None:
    srv = await serve(tls=server_ssl if tls else None)
    async with client(kind, srv.base_url, client_ssl) as c:
        r = await c.get("/trailers")
        assert r.content == b"part1,part2"
        if kind == "ours":  # httpcore drops trailers
            assert r.extensions["trailers"]["x-checksum"] == "c0ffee"
        # Both announce SETTINGS_ENABLE_PUSH = 0: the server cannot push.
        r = await c.get("/push")
        assert r.content == b"main"
        assert "push_error" in srv.state and "pushed" not in srv.state
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get("/reset?code=2")
        rs = await asyncio.gather(*[c.get("/hello") for _ in range(50)])
        assert {r.content for r in rs} == {b"hello"}
        if kind == "ours":
            assert len(srv.state["connections"]) == 1


async def test_verify_settings(kind: str, serve: Any, server_ssl: ssl.SSLContext, ca: Any) -> None:
    srv = await serve(tls=server_ssl)
    # The system's CAs do not know trustme's.
    async with client(kind, srv.base_url) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get("/hello")
    # A CA bundle path (deprecated by httpx, still honoured).
    with ca.cert_pem.tempfile() as ca_path, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        async with client(kind, srv.base_url, ca_path) as c:
            assert (await c.get("/hello")).content == b"hello"


# ---------------------------------------------------------------------------
# Timeouts, per phase
# ---------------------------------------------------------------------------


async def test_read_timeout(kind: str, serve: Any) -> None:
    srv = await serve()
    timeout = httpx.Timeout(5.0, read=0.3)
    async with client(kind, srv.base_url, timeout=timeout) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.get("/never")
        # The connection stays usable.
        assert (await c.get("/hello")).content == b"hello"


async def test_connect_timeout(kind: str, client_ssl: ssl.SSLContext) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers the TLS handshake
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        timeout = httpx.Timeout(5.0, connect=0.3)
        async with client(kind, f"https://127.0.0.1:{port}", client_ssl, timeout=timeout) as c:
            with pytest.raises(httpx.ConnectTimeout):
                await c.get("/")
    finally:
        server.close()


async def test_write_timeout(kind: str, h2_peer: Any) -> None:
    def script(peer: Any, conn: Any, event: Any, writer: Any) -> None:
        pass  # reads, never answers, never opens the window

    peer = await h2_peer(script, settings={SettingCode.INITIAL_WINDOW_SIZE: 100})
    peer.ack = False

    async def body() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 1000

    timeout = httpx.Timeout(5.0, write=0.3, read=0.6)
    async with client(kind, peer.url, timeout=timeout) as c:
        if kind == "ours":
            with pytest.raises(httpx.WriteTimeout):
                await c.post("/", content=body())
        else:
            # httpcore gives up on the window with a WriteError (or its
            # read timeout): not a WriteTimeout.
            with pytest.raises((httpx.TimeoutException, httpx.WriteError)):
                await c.post("/", content=body())


async def test_pool_timeout(kind: str, h2_peer: Any) -> None:
    if kind == "httpx":
        pytest.skip("httpcore waits for a free HTTP/2 stream without a timeout")

    def script(peer: Any, conn: Any, event: Any, writer: Any) -> None:
        pass  # never answers: the one stream stays taken

    peer = await h2_peer(script, settings={SettingCode.MAX_CONCURRENT_STREAMS: 1})
    async with client(kind, peer.url, timeout=httpx.Timeout(5.0, pool=0.3)) as c:
        first = asyncio.ensure_future(c.get("/first"))
        await asyncio.sleep(0.1)
        with pytest.raises(httpx.PoolTimeout):
            await c.get("/second")
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first


# ---------------------------------------------------------------------------
# GOAWAY
# ---------------------------------------------------------------------------


def respond(conn: Any, stream_id: int, body: bytes) -> None:
    conn.send_headers(stream_id, [(b":status", b"200")])
    conn.send_data(stream_id, body, end_stream=True)


async def test_goaway_after_a_response(kind: str, h2_peer: Any) -> None:
    """The server answers, says GOAWAY and closes: the next request goes on
    a new connection."""

    def script(peer: Any, conn: Any, event: Any, writer: Any) -> None:
        if isinstance(event, h2.events.RequestReceived):
            respond(conn, event.stream_id, f"connection {peer.connections}".encode())
            conn.close_connection(last_stream_id=event.stream_id)

    peer = await h2_peer(script)
    async with client(kind, peer.url) as c:
        assert (await c.get("/a")).content == b"connection 1"
        await asyncio.sleep(0.1)
        assert (await c.get("/b")).content == b"connection 2"
    assert peer.connections == 2


async def test_goaway_refusing_a_request(kind: str, h2_peer: Any) -> None:
    """GOAWAY with last_stream_id 0: the server did not process the request."""
    if kind == "httpx":
        pytest.skip("httpcore raises for the refused request; ours sends it again")

    def script(peer: Any, conn: Any, event: Any, writer: Any) -> None:
        if isinstance(event, h2.events.RequestReceived):
            if peer.connections == 1:
                writer.write(conn.data_to_send())
                writer.write(GoAwayFrame(0, last_stream_id=0, error_code=0).serialize())
            else:
                respond(conn, event.stream_id, b"retried")

    peer = await h2_peer(script)
    async with client(kind, peer.url) as c:
        assert (await c.post("/", content=b"replayable")).content == b"retried"
    assert peer.connections == 2


# ---------------------------------------------------------------------------
# An HTTP/1.1-only origin: httpx's own transport takes it
# ---------------------------------------------------------------------------


class HTTP11Server:
    """A keep-alive HTTP/1.1 server that knows nothing of HTTP/2."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: Optional[asyncio.AbstractServer] = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                payload = b"h1 " + head.split(b" ")[0] + b" " + body
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


@pytest_asyncio.fixture
async def http11(server_cert: Any) -> AsyncIterator[Callable[..., Any]]:
    servers: List[asyncio.AbstractServer] = []

    async def start(tls: bool) -> tuple:
        ctx = None
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server_cert.configure_cert(ctx)
            ctx.set_alpn_protocols(["http/1.1"])
        h1 = HTTP11Server()
        server = await asyncio.start_server(h1.serve, "127.0.0.1", 0, ssl=ctx)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return h1, f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()


async def test_http11_only_origin(
    kind: str, tls: bool, http11: Any, client_ssl: ssl.SSLContext
) -> None:
    h1, url = await http11(tls)
    if kind == "ours":
        # Plain http:// without prior knowledge, or ALPN saying http/1.1.
        transport = AsyncHTTPTransport(verify=client_ssl)
        c = httpx.AsyncClient(transport=transport, base_url=url, timeout=TIMEOUT)
    else:
        c = httpx.AsyncClient(http2=True, verify=client_ssl, base_url=url, timeout=TIMEOUT)
    async with c:
        for _ in range(3):
            r = await c.post("/x", content=b"body")
            assert r.http_version == "HTTP/1.1"
            assert r.text == "h1 POST body"
        async with c.stream("GET", "/y") as r:
            assert b"".join([chunk async for chunk in r.aiter_bytes()]) == b"h1 GET "
    # One HTTP/1.1 connection, kept; over TLS ours made one more to learn
    # that the origin does not speak h2.
    assert h1.connections == (2 if kind == "ours" and tls else 1)


async def test_sync_http11_only_origin(kind: str, http11: Any, client_ssl: ssl.SSLContext) -> None:
    """The sync transport hands HTTP/1.1 origins to httpx.HTTPTransport."""
    h1, url = await http11(True)

    def run() -> None:
        with sync_client(kind, url, client_ssl) as c:
            for _ in range(2):
                r = c.post("/z", content=b"sync")
                assert r.http_version == "HTTP/1.1" and r.text == "h1 POST sync"

    await asyncio.wait_for(asyncio.to_thread(run), TIMEOUT)
    assert h1.connections == (2 if kind == "ours" else 1)


async def test_import_nghttp2_needs_no_httpx() -> None:
    code = (
        "import sys, nghttp2, nghttp2.client; "
        "assert 'httpx' not in sys.modules, 'import nghttp2 imported httpx'; "
        "import nghttp2.httpx; assert 'httpx' in sys.modules"
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
    assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0


async def test_sync_threads_multiplex(serve: Any) -> None:
    """Threads sharing the sync transport: a response that never comes
    holds up nobody else, and all of them share one connection."""
    srv = await serve()
    timeout = httpx.Timeout(5.0, read=3.0)
    transport = HTTPTransport(http2_prior_knowledge=True)
    c = httpx.Client(transport=transport, base_url=srv.base_url, timeout=timeout)
    try:
        slow = asyncio.ensure_future(asyncio.to_thread(c.get, "/never"))
        await asyncio.sleep(0.2)  # the slow thread now drives the loop

        def fast() -> List[bytes]:
            return [c.get("/hello").content for _ in range(5)]

        contents = await asyncio.wait_for(asyncio.to_thread(fast), TIMEOUT)
        assert contents == [b"hello"] * 5
        assert not slow.done()
        with pytest.raises(httpx.ReadTimeout):
            await asyncio.wait_for(slow, TIMEOUT)
        # Once the driving thread is gone, another one drives the loop.
        assert (await asyncio.to_thread(c.get, "/hello")).content == b"hello"
    finally:
        await asyncio.to_thread(c.close)
    assert len(srv.state["connections"]) == 1


async def test_local_errors_and_leaving_a_stream_early(kind: str, serve: Any) -> None:
    srv = await serve()
    async with client(kind, srv.base_url) as c:
        async with c.stream("GET", f"/big?size={10 * 2**20}") as r:
            async for chunk in r.aiter_bytes():
                assert chunk
                break
        # The connection goes on.  Ours reset the stream on leaving the
        # block (the server saw CANCEL before the 10 MiB were sent); httpcore
        # lets the server finish it.
        assert (await c.get("/hello")).content == b"hello"
        if kind == "ours":
            assert (b"/big", 8) in srv.state["closed"]
        # Last: httpcore has already HPACK-encoded the fields when it
        # refuses them, and the connection breaks (COMPRESSION_ERROR).
        with pytest.raises(httpx.LocalProtocolError):
            await c.get("/hello", headers={":path": "/elsewhere"})
        if kind == "ours":
            assert (await c.get("/hello")).content == b"hello"


async def test_sync_client_called_from_async_code(nghttpd: Any, htdocs: Path) -> None:
    """A sync httpx.Client called (blocking) inside a running event loop:
    the transport runs its own loop on a helper thread."""
    with sync_client("ours", nghttpd(False)) as c:
        r = c.get("/index.html")
    assert r.content == (htdocs / "index.html").read_bytes()
