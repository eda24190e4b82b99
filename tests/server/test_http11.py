"""HTTP/1.1 on the HTTP/2 server's port: curl, httpx (HTTP/1.1 is its default),
raw sockets for what clients hide (pipelining, 100-continue, limits), TLS with
ALPN http/1.1, the h2c upgrade, and HTTP/2 with prior knowledge beside it."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import io
import logging
import re
import shutil
import ssl
from typing import Any, ClassVar, List, Optional, Tuple

import httpx
import pytest

import nghttp2
from nghttp2.server import DATA_EOF, DATA_OK, BaseRequestHandler, PushError
from nghttp2.server.files import directory_handler
from nghttp2.server.limits import Limits

pytestmark = pytest.mark.asyncio

TIMEOUT = 10.0
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


async def wait(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, TIMEOUT)


class App(BaseRequestHandler):
    """``/`` hello; ``/echo`` the request (method, body length, sha256);
    ``/gen`` a generator body; ``/stream`` begin_response/write/end_response
    with a trailer; ``/file`` a BytesIO; ``/slow`` answers when ``release``
    is set; ``/push`` tries to push."""

    release: ClassVar[Optional[asyncio.Event]] = None
    seen: ClassVar[List[BaseRequestHandler]] = []

    def on_headers(self) -> None:
        App.seen.append(self)
        self.digest = hashlib.sha256()
        self.received = 0
        if self.path == b"/":
            self.send_response(200, [("content-type", "text/plain")], b"hello\n")
        elif self.path == b"/gen":
            parts = [b"one-", b"two-", b"three"]

            def generate(size: int) -> Tuple[Optional[bytes], int]:
                data = parts.pop(0)
                return data, DATA_EOF if not parts else DATA_OK

            self.send_response(200, [("content-type", "text/plain")], generate)
        elif self.path == b"/stream":
            asyncio.get_running_loop().create_task(self.stream())
        elif self.path == b"/file":
            self.send_response(200, body=io.BytesIO(b"from a BytesIO"))
        elif self.path == b"/slow":
            asyncio.get_running_loop().create_task(self.later())
        elif self.path == b"/push":
            try:
                self.push("/pushed", body=b"x")
            except PushError as exc:
                self.send_response(200, body=f"PushError: {exc}")

    async def stream(self) -> None:
        self.begin_response(200, [("content-type", "text/plain")])
        for i in range(3):
            await self.write(f"chunk{i};")
            await asyncio.sleep(0)
        self.end_response([("x-checksum", "abc")])

    async def later(self) -> None:
        assert App.release is not None
        await App.release.wait()
        self.send_response(200, body=b"slow")

    def on_data(self, data: bytes) -> None:
        self.digest.update(data)
        self.received += len(data)

    def on_request_done(self) -> None:
        if self.path == b"/echo":
            trailers = dict(self.trailers or [])
            self.send_response(
                200,
                [("x-method", self.method or b"")],
                f"{self.received} {self.digest.hexdigest()} {trailers.get(b'x-t', b'-').decode()}",
            )


class Reader(BaseRequestHandler):
    """An ``async def on_headers`` handler: reads the body with iter_body()."""

    async def on_headers(self) -> None:
        size = 0
        digest = hashlib.sha256()
        async for chunk in self.iter_body():
            size += len(chunk)
            digest.update(chunk)
        self.send_response(200, body=f"{size} {digest.hexdigest()}")


@pytest.fixture(autouse=True)
def _reset_app() -> None:
    App.seen = []
    App.release = None


# ---------------------------------------------------------------------------
# A raw HTTP/1.1 client: what real clients hide (pipelining, 1xx, framing).
# ---------------------------------------------------------------------------


class Raw:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, server: Any, ssl_context: Optional[ssl.SSLContext] = None) -> Raw:
        host, port = server.address
        reader, writer = await wait(
            asyncio.open_connection(
                host, port, ssl=ssl_context, server_hostname=host if ssl_context else None
            )
        )
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def head(self) -> Tuple[int, dict, bytes]:
        """The next response head: (status, fields, raw head)."""
        raw = await wait(self.reader.readuntil(b"\r\n\r\n"))
        lines = raw.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ")[:2]
        assert version == "HTTP/1.1", lines[0]
        fields = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        return int(status), fields, raw

    async def body(self, fields: dict) -> Tuple[bytes, dict]:
        """The body the head announces: (body, trailers)."""
        if "content-length" in fields:
            return await wait(self.reader.readexactly(int(fields["content-length"]))), {}
        assert fields.get("transfer-encoding") == "chunked", fields
        body = b""
        while True:
            size = int((await wait(self.reader.readuntil(b"\r\n"))).strip(), 16)
            if size == 0:
                break
            body += await wait(self.reader.readexactly(size))
            assert await wait(self.reader.readexactly(2)) == b"\r\n"
        trailers = {}
        while True:
            line = (await wait(self.reader.readuntil(b"\r\n"))).decode("latin-1").strip()
            if not line:
                return body, trailers
            name, _, value = line.partition(":")
            trailers[name.strip().lower()] = value.strip()

    async def response(self) -> Tuple[int, dict, bytes]:
        status, fields, _ = await self.head()
        while 100 <= status < 200:
            status, fields, _ = await self.head()
        body, _ = await self.body(fields)
        return status, fields, body

    async def eof(self) -> bool:
        return await wait(self.reader.read()) == b""

    async def close(self) -> None:
        self.writer.close()
        try:
            await wait(self.writer.wait_closed())
        except (ConnectionError, ssl.SSLError):
            pass


def request(path: str = "/", method: str = "GET", headers: str = "", body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode("latin-1") + b"\r\n" + body


# ---------------------------------------------------------------------------
# curl
# ---------------------------------------------------------------------------


@needs_curl
async def test_curl_http11_keep_alive_reuses_the_connection(start_server, run, server_url):
    server = await start_server(App)
    result = (
        await run("curl", "-sv", "--http1.1", server_url(server, "/"), server_url(server, "/gen"))
    ).check()
    assert result.out == "hello\none-two-three"
    assert "Re-using existing connection" in result.err
    assert "< HTTP/1.1 200 OK" in result.err
    assert "< transfer-encoding: chunked" in result.err  # the generator's body


@needs_curl
async def test_curl_upload_and_head(start_server, run, server_url, tmp_path):
    server = await start_server(App)
    data = bytes(range(256)) * 4096  # 1 MiB
    path = tmp_path / "up.bin"
    path.write_bytes(data)
    result = (
        await run(
            "curl", "-sS", "--http1.1", "--data-binary", f"@{path}", server_url(server, "/echo")
        )
    ).check()
    assert result.out == f"{len(data)} {hashlib.sha256(data).hexdigest()} -"
    head = (await run("curl", "-sS", "--http1.1", "-I", server_url(server, "/"))).check()
    assert head.out.startswith("HTTP/1.1 200 OK")
    assert "content-length: 6" in head.out


# ---------------------------------------------------------------------------
# httpx: HTTP/1.1 is its default
# ---------------------------------------------------------------------------


async def test_httpx_chunked_upload_and_streaming_download(start_server, server_url):
    server = await start_server(App)
    pieces = [bytes([i]) * 10000 for i in range(50)]

    async def upload():
        for piece in pieces:
            yield piece
            await asyncio.sleep(0)

    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        response = await client.post(server_url(server, "/echo"), content=upload())
        assert response.http_version == "HTTP/1.1"
        whole = b"".join(pieces)
        assert response.text == f"{len(whole)} {hashlib.sha256(whole).hexdigest()} -"
        assert response.headers["x-method"] == "POST"
        assert App.seen[-1].headers[:4] == [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":authority", server_url(server, "").split("//")[1].rstrip("/").encode()),
            (b":path", b"/echo"),
        ]
        assert (b"transfer-encoding", b"chunked") in App.seen[-1].headers

        async with client.stream("GET", server_url(server, "/stream")) as streamed:
            assert streamed.headers["transfer-encoding"] == "chunked"
            chunks = [chunk async for chunk in streamed.aiter_bytes()]
        assert b"".join(chunks) == b"chunk0;chunk1;chunk2;"

        file = await client.get(server_url(server, "/file"))
        assert file.text == "from a BytesIO"
        assert file.headers["content-length"] == "14"


async def test_coroutine_handler_reads_a_chunked_upload(start_server, server_url):
    server = await start_server(Reader)
    data = bytes(range(256)) * 8192  # 2 MiB, over one inbox's worth of window

    async def upload():
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        response = await client.put(server_url(server, "/"), content=upload())
    assert response.text == f"{len(data)} {hashlib.sha256(data).hexdigest()}"


# ---------------------------------------------------------------------------
# Raw sockets: pipelining, 100-continue, HEAD, Connection: close, trailers
# ---------------------------------------------------------------------------


async def test_pipelined_requests_are_answered_in_order(start_server):
    server = await start_server(App)
    App.release = asyncio.Event()
    client = await Raw.connect(server)
    # The first answer waits; the second handler answers at once, yet its
    # response comes second.
    client.send(request("/slow") + request("/") + request("/gen"))
    await wait(_until(lambda: len(App.seen) == 3))
    assert App.seen[1].status == 200  # answered, waiting for /slow
    App.release.set()
    assert (await client.response())[2] == b"slow"
    assert (await client.response())[2] == b"hello\n"
    assert (await client.response())[2] == b"one-two-three"
    assert [h.stream_id for h in App.seen] == [1, 3, 5]
    await client.close()


async def test_expect_100_continue(start_server):
    server = await start_server(App)
    client = await Raw.connect(server)
    body = b"x" * 1000
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n"
    )
    status, _, raw = await client.head()
    assert status == 100 and raw == b"HTTP/1.1 100 Continue\r\n\r\n"
    client.send(body)
    status, fields, payload = await client.response()
    assert status == 200 and payload.startswith(b"1000 ")
    assert "connection" not in fields  # kept alive
    client.send(request("/"))
    assert (await client.response())[2] == b"hello\n"
    await client.close()


async def test_an_early_answer_to_expect_100_closes_the_connection(start_server):
    server = await start_server(App)
    client = await Raw.connect(server)
    # "/" answers in on_headers: no 100 Continue, the body never comes.
    client.send(b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    status, fields, body = await client.response()
    assert (status, body) == (200, b"hello\n")
    assert fields["connection"] == "close"
    assert await client.eof()


async def test_head_connection_close_and_http10(start_server):
    server = await start_server(App)
    client = await Raw.connect(server)
    client.send(request("/", "HEAD") + request("/gen", "HEAD") + request("/"))
    status, fields, _ = await client.head()
    assert status == 200 and fields["content-length"] == "6"
    status, fields, _ = await client.head()  # a generator's HEAD: the head only
    assert status == 200 and "content-length" not in fields
    assert (await client.response())[2] == b"hello\n"  # so no body came before
    client.send(request("/", headers="Connection: close\r\n"))
    status, fields, body = await client.response()
    assert body == b"hello\n" and fields["connection"] == "close"
    assert await client.eof()

    old = await Raw.connect(server)
    old.send(b"GET /gen HTTP/1.0\r\n\r\n")  # no chunked for 1.0: the end is the close
    raw = await wait(old.reader.read())
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in head
    assert b"transfer-encoding" not in head and body == b"one-two-three"


async def test_trailers_go_to_te_trailers_clients_only(start_server):
    server = await start_server(App)
    client = await Raw.connect(server)
    client.send(request("/stream", headers="TE: trailers\r\n") + request("/stream"))
    _, fields, _ = await client.head()
    assert fields["transfer-encoding"] == "chunked"
    body, trailers = await client.body(fields)
    assert body == b"chunk0;chunk1;chunk2;" and trailers == {"x-checksum": "abc"}
    _, fields, _ = await client.head()
    body, trailers = await client.body(fields)
    assert body == b"chunk0;chunk1;chunk2;" and trailers == {}
    # Request trailers reach the handler.
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nX-T: yes\r\n\r\n"
    )
    assert (await client.response())[2] == f"3 {hashlib.sha256(b'abc').hexdigest()} yes".encode()
    await client.close()


async def test_push_raises_push_error_and_the_log_says_http11(start_server, caplog):
    caplog.set_level(logging.INFO, logger="nghttp2.server.access")
    server = await start_server(App)
    client = await Raw.connect(server)
    client.send(request("/push"))
    status, _, body = await client.response()
    assert status == 200 and body.startswith(b"PushError: server push needs HTTP/2")
    await client.close()
    await wait(_until(lambda: any("GET /push HTTP/1.1" in r.getMessage() for r in caplog.records)))
    line = next(r.getMessage() for r in caplog.records if "GET /push" in r.getMessage())
    assert re.search(r'"GET /push HTTP/1\.1" 200 \d+ - ', line)


async def test_coroutine_handlers_start_eagerly_and_answer_in_request_order(start_server):
    request_path: Any = contextvars.ContextVar("request_path", default=None)
    seen: List[Any] = []

    class Mixed(BaseRequestHandler):
        async def on_headers(self) -> None:
            request_path.set(self.path)
            first = asyncio.current_task()
            assert first is not None  # anyio and Starlette need one, eager or not
            if self.path == b"/slow":
                await asyncio.sleep(0.01)
                # The same task, with what was set before the suspension.
                assert asyncio.current_task() is first and request_path.get() == b"/slow"
            self.send_response(200, body=self.path)

        def on_close(self, error_code: int) -> None:
            # One answered in its first step kept no task (Connection._start).
            seen.append((self.path, self._task is None))

    server = await start_server(Mixed)
    client = await Raw.connect(server)
    client.send(request("/slow") + request("/quick") + request("/quick2"))
    assert [(await client.response())[2] for _ in range(3)] == [b"/slow", b"/quick", b"/quick2"]
    await wait(_until(lambda: len(seen) == 3))
    assert sorted(seen) == [(b"/quick", True), (b"/quick2", True), (b"/slow", False)]
    assert request_path.get() is None  # nothing leaked into the connection's context
    await client.close()


async def test_a_handler_error_answers_500_and_keeps_the_connection(start_server):
    class Broken(BaseRequestHandler):
        def on_headers(self) -> None:
            if self.path == b"/boom":
                raise RuntimeError("boom")
            self.send_response(200, body=b"fine")

    server = await start_server(Broken)
    client = await Raw.connect(server)
    client.send(request("/boom") + request("/"))
    assert (await client.response())[:1] == (500,)
    assert (await client.response())[2] == b"fine"
    await client.close()


async def test_a_response_field_with_cr_or_lf_answers_500_after_valid_ones(start_server):
    # The field checks remember valid fields (server.http11_framing): a
    # value seen valid must not let a field with the same name and a CR/LF
    # value through (response splitting).
    class Fields(BaseRequestHandler):
        def on_headers(self) -> None:
            value = {b"/ok": b"one", b"/cr": b"one\r\nx-injected: 1", b"/nul": b"a\0b"}
            self.send_response(200, [("x-v", value[self.path or b""])], b"fine")

    server = await start_server(Fields)
    client = await Raw.connect(server)
    client.send(request("/ok") + request("/cr") + request("/ok") + request("/nul"))
    status, fields, body = await client.response()
    assert (status, fields.get("x-v"), body) == (200, "one", b"fine")
    status, fields, body = await client.response()
    assert status == 500 and "x-injected" not in fields
    assert (await client.response())[:1] == (200,)
    assert (await client.response())[:1] == (500,)
    await client.close()


async def test_a_served_file_is_closed_once_sent(start_server, tmp_path):
    data = bytes(range(256)) * 1024  # 256 KiB: several reads
    (tmp_path / "f.bin").write_bytes(data)
    opened: List[Any] = []

    class Files(directory_handler(tmp_path)):
        def send_response(self, status=200, headers=None, body=None) -> None:
            if isinstance(body, io.IOBase):
                opened.append(body)
            super().send_response(status, headers, body)

    server = await start_server(Files)
    client = await Raw.connect(server)
    client.send(request("/f.bin"))
    status, _, body = await client.response()
    assert (status, body) == (200, data)
    # The connection stays open (keep-alive); the file is closed already.
    assert len(opened) == 1 and opened[0].closed
    await client.close()


# ---------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------


async def test_413_and_431(start_server):
    server = await start_server(App, limits=Limits(max_body_size=1000, max_header_list_size=2000))
    client = await Raw.connect(server)
    client.send(request("/echo", "POST", body=b"x" * 1001))
    status, fields, _ = await client.response()
    assert status == 413 and fields["connection"] == "close"
    assert await client.eof()

    chunked = await Raw.connect(server)  # no content-length: caught on the way
    chunked.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(3):
        chunked.send(b"200\r\n" + b"y" * 0x200 + b"\r\n")
    assert (await chunked.response())[0] == 413
    assert await chunked.eof()

    big = await Raw.connect(server)
    big.send(request("/", headers=f"X-Big: {'z' * 3000}\r\n"))
    status, fields, _ = await big.response()
    assert status == 431 and fields["connection"] == "close"
    assert await big.eof()

    bad = await Raw.connect(server)
    bad.send(b"GET / HTTP/1.1\r\nNo-Colon\r\n\r\n")
    assert (await bad.response())[0] == 400
    assert await bad.eof()


async def test_header_timeout_closes_a_slow_client(start_server):
    server = await start_server(App, limits=Limits(header_timeout=0.2))
    client = await Raw.connect(server)
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n")  # never ends
    assert await client.eof()
    assert not server.connections


async def test_idle_keep_alive_connection_is_closed(start_server):
    server = await start_server(App, limits=Limits(idle_timeout=0.2))
    client = await Raw.connect(server)
    client.send(request("/"))
    status, fields, body = await client.response()
    assert status == 200
    assert body == b"hello\n" and "connection" not in fields  # kept alive...
    assert await client.eof()  # ...until idle too long
    assert not server.connections


# ---------------------------------------------------------------------------
# TLS with ALPN http/1.1, and HTTP/2 beside HTTP/1.1
# ---------------------------------------------------------------------------


async def test_tls_alpn_http11(start_server, server_ssl, ca, server_url):
    server = await start_server(App, ssl=server_ssl)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.set_alpn_protocols(["http/1.1"])
    client = await Raw.connect(server, context)
    assert client.writer.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
    client.send(request("/") + request("/gen"))
    assert (await client.response())[2] == b"hello\n"
    assert (await client.response())[2] == b"one-two-three"
    assert App.seen[0].scheme == b"https"
    await client.close()

    async with httpx.AsyncClient(verify=context, timeout=TIMEOUT) as http1:
        response = await http1.get(server_url(server, "/"))
    assert response.http_version == "HTTP/1.1" and response.text == "hello\n"


async def test_http2_prior_knowledge_and_alpn_h2_on_the_same_port(
    start_server, h2_connect, server_ssl, client_ssl, server_url
):
    server = await start_server(App)
    h2 = await h2_connect(server)
    response = await h2.get("/")
    assert response.status == 200 and bytes(response.data) == b"hello\n"
    async with httpx.AsyncClient(timeout=TIMEOUT) as http1:
        assert (await http1.get(server_url(server, "/"))).http_version == "HTTP/1.1"
    assert any(type(c).__name__ == "HTTP2Protocol" for c in server.connections)

    tls = await start_server(App, ssl=server_ssl)
    h2_tls = await h2_connect(tls, ssl=client_ssl)
    assert h2_tls.writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
    assert bytes((await h2_tls.get("/gen")).data) == b"one-two-three"


async def test_http1_false_speaks_only_http2(start_server):
    server = await start_server(App, http1=False)
    client = await Raw.connect(server)
    client.send(request("/"))
    data = await wait(client.reader.read())
    assert not data.startswith(b"HTTP/1.1")


# ---------------------------------------------------------------------------
# Upgrade: h2c, and switch_protocols()
# ---------------------------------------------------------------------------


@needs_curl
async def test_curl_h2c_upgrade(start_server, run, server_url):
    server = await start_server(App)
    result = (await run("curl", "-sv", "--http2", server_url(server, "/gen"))).check()
    assert "< HTTP/1.1 101 Switching Protocols" in result.err
    assert "< HTTP/2 200" in result.err
    assert result.out == "one-two-three"
    handler = App.seen[-1]
    assert handler.stream_id == 1 and type(handler.http2).__name__ == "HTTP2Protocol"
    assert not any(
        name in (b"connection", b"upgrade", b"http2-settings", b"host")
        for name, _ in handler.headers
    )

    head = (await run("curl", "-sS", "-I", "--http2", server_url(server, "/"))).check()
    assert "HTTP/2 200" in head.out

    # With a body curl asks for h2c too: the upgrade is declined, HTTP/1.1 answers.
    post = (
        await run(
            "curl",
            "-sS",
            "--http2",
            "-d",
            "abc",
            "-w",
            r"\n%{http_version}",
            server_url(server, "/echo"),
        )
    ).check()
    assert post.out == f"3 {hashlib.sha256(b'abc').hexdigest()} -\n1.1"


async def test_h2c_upgrade_with_the_h2_library(start_server):
    import h2.config
    import h2.connection
    import h2.events

    server = await start_server(App)
    client = await Raw.connect(server)
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    settings = conn.initiate_upgrade_connection().decode()
    client.send(
        request(
            "/",
            headers=f"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            f"HTTP2-Settings: {settings}\r\n",
        )
    )
    status, fields, _ = await client.head()
    assert status == 101 and fields["upgrade"] == "h2c"
    client.send(conn.data_to_send())
    body = b""
    ended = False
    while not ended:
        data = await wait(client.reader.read(65536))
        assert data, "the server closed the connection"
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.DataReceived) and event.stream_id == 1:
                body += event.data
            ended = ended or (isinstance(event, h2.events.StreamEnded) and event.stream_id == 1)
        client.send(conn.data_to_send())
    assert body == b"hello\n"
    await client.close()


class Echo(asyncio.Protocol):
    """After the 101: echoes what it gets, upper-cased."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.upper())  # type: ignore[attr-defined]


class Upgrader(BaseRequestHandler):
    def on_headers(self) -> None:
        if dict(self.headers).get(b"upgrade") == b"echo":
            self.http2.switch_protocols(
                self, [("Upgrade", "echo"), ("Connection", "Upgrade")], Echo
            )
        else:
            self.send_response(200, body=b"plain " + (self.path or b""))


async def test_switch_protocols_hands_the_connection_over(start_server):
    server = await start_server(Upgrader)
    client = await Raw.connect(server)
    # Bytes right behind the request head belong to the new protocol.
    client.send(request("/", headers="Connection: Upgrade\r\nUpgrade: echo\r\n") + b"early;")
    status, fields, _ = await client.head()
    assert status == 101 and fields["upgrade"] == "echo"
    assert await wait(client.reader.readexactly(6)) == b"EARLY;"
    client.send(b"late")
    assert await wait(client.reader.readexactly(4)) == b"LATE"
    assert not server.connections  # no longer an HTTP connection
    await client.close()


async def test_a_declined_upgrade_keeps_http11(start_server):
    server = await start_server(Upgrader)
    client = await Raw.connect(server)
    client.send(
        request("/a", headers="Connection: Upgrade\r\nUpgrade: websocket\r\n") + request("/b")
    )
    assert (await client.response())[2] == b"plain /a"
    assert (await client.response())[2] == b"plain /b"
    await client.close()


async def test_switch_protocols_needs_an_upgrade_request(start_server):
    errors = []

    class Eager(BaseRequestHandler):
        def on_headers(self) -> None:
            try:
                self.http2.switch_protocols(self, [], Echo)
            except Exception as exc:  # noqa: BLE001 - recorded for the assertion
                errors.append(exc)
            self.send_response(200, body=b"ok")

    server = await start_server(Eager)
    client = await Raw.connect(server)
    client.send(request("/"))
    assert (await client.response())[2] == b"ok"
    assert "asked to Upgrade" in str(errors[0])
    await client.close()


# ---------------------------------------------------------------------------
# The nghttp2 tutorial programs, unchanged
# ---------------------------------------------------------------------------


class TutorialDeferred(nghttp2.BaseRequestHandler):
    """The removed binding's DATA_DEFERRED example, as its docs wrote it."""

    def on_headers(self):
        self.buf = io.BytesIO()
        self.eof = False
        asyncio.get_event_loop().call_later(0.01, self.on_timer)
        self.send_response(status=200, headers=[("content-type", "text/plain")], body=self.generate)

    def generate(self, n):
        data = self.buf.read1(n)
        if not data and not self.eof:
            return None, nghttp2.DATA_DEFERRED
        return data, nghttp2.DATA_EOF if self.eof else nghttp2.DATA_OK

    def on_timer(self):
        self.buf.write(b"nghttp2-python FTW\n")
        self.buf.seek(0)
        self.eof = True
        self.resume()


class TutorialPush(nghttp2.BaseRequestHandler):
    """The removed binding's first example (docs/python-apiref), verbatim."""

    def on_headers(self):
        self.push(
            path="/css/style.css",
            request_headers=[("content-type", "text/css")],
            status=200,
            body="body{margin:0;}",
        )

        self.send_response(
            status=200,
            headers=[("content-type", "text/plain")],
            body=io.BytesIO(b"nghttp2-python FTW"),
        )


@needs_curl
async def test_tutorial_deferred_body_over_http11_and_h2c(start_server, run, server_url):
    server = await start_server(TutorialDeferred)
    url = server_url(server, "/")
    http1 = (await run("curl", "-sS", "--http1.1", "-w", r"%{http_version}", url)).check()
    assert http1.out == "nghttp2-python FTW\n1.1"
    h2c = (await run("curl", "-sS", "--http2", "-w", r"%{http_version}", url)).check()
    assert h2c.out == "nghttp2-python FTW\n2"


@needs_curl
async def test_tutorial_push_example_over_http11_and_h2c(start_server, run, server_url):
    server = await start_server(TutorialPush)
    url = server_url(server, "/")
    http1 = (await run("curl", "-sS", "--http1.1", url)).check()
    assert http1.out == "nghttp2-python FTW"
    h2c = (await run("curl", "-sS", "--http2", url)).check()
    assert h2c.out == "nghttp2-python FTW"


async def test_tutorial_push_example_pushes_over_http2(start_server, h2_connect):
    server = await start_server(TutorialPush)
    client = await h2_connect(server)
    response = await client.get("/")
    assert bytes(response.data) == b"nghttp2-python FTW"
    assert len(client.pushes) == 1


# ---------------------------------------------------------------------------


async def _until(predicate: Any) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


async def test_a_closed_parser_is_freed_without_a_collection() -> None:
    """httptools' parser holds ours (to call it back), which holds the
    connection's bound methods: a cycle that kept every handed-over or
    closed HTTP/1.1 connection until a full collection (with 1000 prior-
    knowledge h2c connections, each one's sniffing protocol)."""
    import gc
    import weakref

    from nghttp2.server.http11_parser import RequestParser

    class Listener:
        def on_request_body(self, data: bytes) -> None: ...

        def on_request_end(self) -> None: ...

    enabled = gc.isenabled()
    gc.disable()
    try:
        listener = Listener()
        parser = RequestParser(listener, 65536)  # type: ignore[arg-type]
        parser_ref, listener_ref = weakref.ref(parser), weakref.ref(listener)
        parser.close()
        del parser, listener
        assert parser_ref() is None and listener_ref() is None
    finally:
        if enabled:
            gc.enable()
