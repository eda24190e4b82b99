"""The server's Python API, in the test's loop, against a frame-level ``h2``
client over real sockets (and ``nghttp -v`` where its view helps)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import socket
import ssl
from typing import ClassVar

import h2.events
import h2.settings
import hyperframe.frame
import pytest

from nghttp2.server import (
    DATA_DEFERRED,
    DATA_EOF,
    DATA_OK,
    BaseRequestHandler,
    HTTP2Server,
    InvalidResponse,
    PushError,
    ResponseAlreadySent,
    ServerError,
)

pytestmark = pytest.mark.asyncio

TIMEOUT = 10.0
CANCEL = 0x8
INTERNAL_ERROR = 0x2


async def wait(awaitable):
    return await asyncio.wait_for(awaitable, TIMEOUT)


class Hello(BaseRequestHandler):
    def on_headers(self):
        self.send_response(200, [("content-type", "text/plain")], b"hello\n")


def refused(address) -> bool:
    try:
        socket.create_connection(address, timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


# ---------------------------------------------------------------------------
# Starting and stopping
# ---------------------------------------------------------------------------


async def test_async_with_port_zero_address_and_url(h2_connect):
    server = HTTP2Server(("127.0.0.1", 0), Hello)
    with pytest.raises(RuntimeError):
        server.address  # noqa: B018 - not listening yet
    async with server:
        host, port = server.address
        assert host == "127.0.0.1" and port > 0
        assert server.url == f"http://127.0.0.1:{port}/"
        client = await h2_connect(server)
        response = await client.get("/")
        assert response.status == 200
        assert response.header(b"content-type") == b"text/plain"
        assert bytes(response.data) == b"hello\n"
        await client.close()
    assert not server.connections
    assert refused((host, port))


async def test_start_serve_and_shutdown_from_another_task(h2_connect):
    server = HTTP2Server(("127.0.0.1", 0), Hello)
    await server.start()
    await server.start()  # a second start is a no-op
    serving = asyncio.ensure_future(server.serve())
    client = await h2_connect(server)
    assert bytes((await client.get()).data) == b"hello\n"
    assert not serving.done()
    await wait(server.shutdown(timeout=5))
    await wait(serving)  # serve() returns once the server stopped
    await wait(client.wait_closed())
    assert client.goaways and client.goaways[-1].error_code == 0


async def test_constructor_rejects_a_class_that_is_not_a_handler():
    with pytest.raises(TypeError):
        HTTP2Server(("127.0.0.1", 0), object)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        HTTP2Server(("127.0.0.1", 0), Hello())  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# What a handler sees
# ---------------------------------------------------------------------------


async def test_handler_attributes_and_callback_order(start_server, h2_connect):
    seen = []
    closed = asyncio.Event()

    class Recorder(BaseRequestHandler):
        def on_headers(self):
            seen.append(
                (
                    "headers",
                    self.stream_id,
                    self.method,
                    self.path,
                    self.scheme,
                    self.host,
                    list(self.headers),
                    self.client_address,
                    self.client_certificate,
                )
            )

        def on_data(self, data):
            assert isinstance(data, bytes)
            seen.append(("data", data))

        def on_request_done(self):
            seen.append(("done",))
            body = b"".join(item[1] for item in seen if item[0] == "data")
            self.send_response(201, [("x-length", str(len(body)))], body[::-1])

        def on_close(self, error_code):
            seen.append(("close", error_code))
            closed.set()

    server = await start_server(Recorder)
    client = await h2_connect(server)
    body = b"0123456789" * 10_000
    sid = await client.request(
        "/upload?x=1",
        "POST",
        headers=[("x-custom", "Value"), ("cookie", "a=1"), ("cookie", "b=2")],
        body=body,
    )
    response = await client.response(sid)
    await wait(closed.wait())

    assert response.status == 201
    assert response.header(b"x-length") == str(len(body)).encode()
    assert bytes(response.data) == body[::-1]

    kinds = [item[0] for item in seen]
    assert kinds[0] == "headers" and kinds[-2:] == ["done", "close"]
    assert set(kinds[1:-2]) == {"data"}
    _, stream_id, method, path, scheme, host, headers, client_address, cert = seen[0]
    assert stream_id == sid
    assert (method, path, scheme) == (b"POST", b"/upload?x=1", b"http")
    assert host == client.authority.encode()
    assert client_address[0] == "127.0.0.1"
    assert client_address[1] == client.writer.get_extra_info("sockname")[1]
    assert cert is None
    assert all(isinstance(n, bytes) and isinstance(v, bytes) for n, v in headers)
    assert (b":method", b"POST") in headers and (b":path", b"/upload?x=1") in headers
    assert (b"x-custom", b"Value") in headers
    assert [v for n, v in headers if n == b"cookie"] == [b"a=1; b=2"]
    assert seen[-1] == ("close", 0)


async def test_host_comes_from_the_host_header_without_authority(start_server, h2_connect):
    hosts = []

    class Host(BaseRequestHandler):
        def on_headers(self):
            hosts.append(self.host)
            self.send_response(body=self.host)

    server = await start_server(Host)
    client = await h2_connect(server)
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(
        sid,
        [(":method", "GET"), (":scheme", "http"), (":path", "/"), ("host", "example.org:81")],
        end_stream=True,
    )
    await client.flush()
    response = await client.response(sid)
    assert hosts == [b"example.org:81"]
    assert bytes(response.data) == b"example.org:81"


async def test_request_trailers_reach_the_handler(start_server, h2_connect):
    got = []

    class Trailers(BaseRequestHandler):
        def on_data(self, data):
            got.append(data)

        def on_request_done(self):
            self.send_response(body=repr(self.trailers))
            got.append(self.trailers)

    server = await start_server(Trailers)
    client = await h2_connect(server)
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(
        sid,
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", client.authority),
            (":path", "/t"),
        ],
    )
    client.conn.send_data(sid, b"body")
    client.conn.send_headers(sid, [("x-checksum", "abc")], end_stream=True)
    await client.flush()
    response = await client.response(sid)
    assert response.status == 200
    assert got[-1] == [(b"x-checksum", b"abc")]
    assert b"body" in got


async def test_concurrent_streams_on_one_connection(start_server, h2_connect):
    class Echo(BaseRequestHandler):
        def on_headers(self):
            self.send_response(body=self.path * 100)

    server = await start_server(Echo)
    client = await h2_connect(server)
    sids = [await client.request(f"/{i}") for i in range(50)]
    for i, sid in enumerate(sids):
        response = await client.response(sid)
        assert response.status == 200
        assert bytes(response.data) == f"/{i}".encode() * 100
    assert len({id(h) for conn in server.connections for h in conn.handlers.values()}) == 0


async def test_tls_alpn_h2_and_client_certificate(
    start_server, h2_connect, ca, server_ssl, client_ssl
):
    seen = []

    class Who(BaseRequestHandler):
        def on_headers(self):
            seen.append((self.scheme, self.client_certificate))
            self.send_response(body=b"secure")

    server_ssl.verify_mode = ssl.CERT_OPTIONAL
    ca.configure_trust(server_ssl)
    ca.issue_cert("client@example.org").configure_cert(client_ssl)
    server = await start_server(Who, ssl=server_ssl)
    assert server.url.startswith("https://")
    client = await h2_connect(server, ssl=client_ssl)
    assert client.writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
    response = await client.get("/")
    assert bytes(response.data) == b"secure"
    scheme, cert = seen[0]
    assert scheme == b"https"
    assert ("email", "client@example.org") in cert["subjectAltName"]


# ---------------------------------------------------------------------------
# Bodies
# ---------------------------------------------------------------------------


def chunked_generator(chunks):
    """A body generator giving ``chunks`` one call at a time, then EOF."""
    pending = list(chunks)

    def generate(size):
        assert size > 0
        if len(pending) > 1:
            return pending.pop(0), DATA_OK
        return (pending.pop(0) if pending else None), DATA_EOF

    return generate


@pytest.mark.parametrize(
    ("make_body", "expected"),
    [
        (lambda tmp: None, b""),
        (lambda tmp: b"", b""),
        (lambda tmp: "grüße, 世界", "grüße, 世界".encode()),
        (lambda tmp: b"\x00\xffbytes" * 5000, b"\x00\xffbytes" * 5000),
        (lambda tmp: io.BytesIO(b"from BytesIO " * 10_000), b"from BytesIO " * 10_000),
        (lambda tmp: open(tmp, "rb"), bytes(range(256)) * 1000),  # noqa: SIM115 - served, then closed
        (
            lambda tmp: chunked_generator([b"a" * 100, b"b" * 70_000, b"c"]),
            b"a" * 100 + b"b" * 70_000 + b"c",
        ),
        (lambda tmp: chunked_generator([]), b""),
    ],
    ids=["none", "empty", "str", "bytes", "bytesio", "file", "generator", "generator-empty"],
)
async def test_body_kinds(start_server, h2_connect, tmp_path, make_body, expected):
    path = tmp_path / "body.bin"
    path.write_bytes(bytes(range(256)) * 1000)
    bodies = []

    class Body(BaseRequestHandler):
        def on_headers(self):
            body = make_body(str(path))
            bodies.append(body)
            self.send_response(200, [("x-kind", type(body).__name__)], body)

    server = await start_server(Body)
    client = await h2_connect(server)
    responses = [await client.response(await client.request("/")) for _ in range(2)]
    for response in responses:
        assert response.status == 200
        assert response.ended and response.reset is None
        assert bytes(response.data) == expected
    for body in bodies:
        if isinstance(body, io.FileIO) or hasattr(body, "fileno"):
            body.close()


async def test_deferred_generator_resumed_from_tasks(start_server, h2_connect):
    """DATA_DEFERRED until the test hands a chunk over and calls resume(),
    from an asyncio task; the client reads each chunk before the next exists."""
    handlers = []

    class Deferred(BaseRequestHandler):
        def on_headers(self):
            self.queue = []
            self.calls = []
            handlers.append(self)
            self.send_response(200, [("content-type", "text/plain")], self.generate)

        def generate(self, size):
            self.calls.append(size)
            if not self.queue:
                return None, DATA_DEFERRED
            chunk = self.queue.pop(0)
            if chunk is None:
                return None, DATA_EOF
            return chunk, DATA_OK

    server = await start_server(Deferred)
    client = await h2_connect(server)
    sid = await client.request("/")
    stream = client.streams[sid]
    await client.wait_for(lambda: stream.headers is not None)
    handler = handlers[0]

    async def feed(chunk):
        await asyncio.sleep(0)
        handler.queue.append(chunk)
        handler.resume()

    expected = b""
    for part in (b"first ", b"second " * 3000, b"third"):
        await asyncio.ensure_future(feed(part))
        expected += part
        size = len(expected)
        await client.wait_for(lambda size=size: len(stream.data) == size)
        assert bytes(stream.data) == expected
        assert not stream.ended
    handler.resume()  # not deferred at this moment? harmless either way
    await asyncio.ensure_future(feed(None))
    await client.response(sid)
    assert stream.ended and bytes(stream.data) == b"first " + b"second " * 3000 + b"third"
    assert handler.calls and all(size > 0 for size in handler.calls)


async def test_generator_returning_data_with_eof_and_deferred(start_server, h2_connect):
    handlers = []

    class Mixed(BaseRequestHandler):
        def on_headers(self):
            self.step = 0
            handlers.append(self)
            self.send_response(body=self.generate)

        def generate(self, size):
            self.step += 1
            if self.step == 1:
                return b"part1-", DATA_DEFERRED
            return b"part2", DATA_EOF

    server = await start_server(Mixed)
    client = await h2_connect(server)
    sid = await client.request("/")
    stream = client.streams[sid]
    await client.wait_for(lambda: bytes(stream.data) == b"part1-")
    assert not stream.ended
    handlers[0].resume()
    await client.response(sid)
    assert bytes(stream.data) == b"part1-part2"


# ---------------------------------------------------------------------------
# Push
# ---------------------------------------------------------------------------


class Pusher(BaseRequestHandler):
    pushed_handlers: ClassVar[list] = []

    def on_headers(self):
        if self.path == b"/":
            promised = self.push(
                path="/css/style.css",
                request_headers=[
                    ("accept", "text/css"),
                    ("user-agent", "test"),
                    (b"X-Trace", b"t1"),
                ],
                status=200,
                headers=[("content-type", "text/css")],
                body=b"body { color: red }",
            )
            self.pushed_handlers.append(promised)
            self.push(path="/plain.txt", body="pushed content")
        self.send_response(200, [("content-type", "text/html")], b"<html>page</html>")


async def test_push_seen_by_an_h2_client(start_server, h2_connect):
    Pusher.pushed_handlers = []
    server = await start_server(Pusher)
    client = await h2_connect(server)
    sid = await client.request("/")
    response = await client.response(sid)
    assert bytes(response.data) == b"<html>page</html>"
    assert len(client.pushes) == 2
    promise = client.pushes[0]
    assert promise.parent_stream_id == sid
    assert promise.pushed_stream_id % 2 == 0
    request = dict(promise.headers)
    assert request[b":method"] == b"GET"
    assert request[b":path"] == b"/css/style.css"
    assert request[b":scheme"] == b"http"
    assert request[b":authority"] == client.authority.encode()
    assert request[b"accept"] == b"text/css"
    assert request[b"user-agent"] == b"test"
    assert request[b"x-trace"] == b"t1"  # bytes names are lower-cased too

    css = await client.response(promise.pushed_stream_id)
    assert css.status == 200
    assert css.header(b"content-type") == b"text/css"
    assert bytes(css.data) == b"body { color: red }"
    plain = await client.response(client.pushes[1].pushed_stream_id)
    assert bytes(plain.data) == b"pushed content"

    handler = Pusher.pushed_handlers[0]
    assert handler.pushed is True
    assert handler.stream_id == promise.pushed_stream_id
    assert (handler.method, handler.path) == (b"GET", b"/css/style.css")
    assert handler.status == 200


async def test_push_seen_by_nghttp(start_server, run, server_url):
    Pusher.pushed_handlers = []
    server = await start_server(Pusher)
    result = (await run("nghttp", "-v", server_url(server, "/"))).check()
    assert "recv PUSH_PROMISE frame" in result.out
    assert ":path: /css/style.css" in result.out
    assert "accept: text/css" in result.out
    assert "First push response header" in result.out
    assert "body { color: red }" in result.out
    assert "pushed content" in result.out
    assert "<html>page</html>" in result.out


async def test_push_errors(start_server, h2_connect):
    errors = []

    class BadPush(BaseRequestHandler):
        def on_headers(self):
            if self.path == b"/pushed-push":
                promised = self.push("/a", body=b"a")
                try:
                    promised.push("/b", body=b"b")
                except PushError as exc:
                    errors.append(("pushed", exc))
            else:
                try:
                    self.push("/disabled", body=b"x")
                except PushError as exc:
                    errors.append(("disabled", exc))
            self.send_response(body=b"done")
            try:
                self.push("/late", body=b"late")
            except ResponseAlreadySent as exc:
                errors.append(("late", exc))

    server = await start_server(BadPush)
    no_push = await h2_connect(server, enable_push=False)
    assert bytes((await no_push.get("/")).data) == b"done"
    assert not no_push.pushes
    push = await h2_connect(server)
    response = await push.get("/pushed-push")
    assert bytes(response.data) == b"done"
    assert [p.headers for p in push.pushes if dict(p.headers)[b":path"] == b"/a"]
    assert bytes((await push.response(push.pushes[0].pushed_stream_id)).data) == b"a"
    kinds = [kind for kind, _ in errors]
    assert kinds == ["disabled", "late", "pushed", "late"]
    assert all(isinstance(exc, ServerError) for _, exc in errors)
    assert "disabled" in str(errors[0][1])


# ---------------------------------------------------------------------------
# Misuse raises at the call
# ---------------------------------------------------------------------------


async def test_misuse_raises_clear_exceptions_at_the_call(start_server, h2_connect):
    raised = {}

    class Misuse(BaseRequestHandler):
        def on_headers(self):
            attempts = {
                "status-99": lambda: self.send_response(99),
                "status-1000": lambda: self.send_response(1000),
                "status-str": lambda: self.send_response("200"),
                "pseudo": lambda: self.send_response(200, [(":status", "201")]),
                "pseudo-bytes": lambda: self.send_response(200, [(b":path", b"/")]),
                "connection": lambda: self.send_response(200, [("Connection", "close")]),
                "body-type": lambda: self.send_response(200, body=12345),
                "push-pseudo": lambda: self.push("/p", request_headers=[(":path", "/x")]),
                "push-status": lambda: self.push("/p", status=42),
                "push-body-type": lambda: self.push("/p", body=object()),
            }
            for name, attempt in attempts.items():
                try:
                    attempt()
                except Exception as exc:  # noqa: BLE001 - recorded for the test
                    raised[name] = exc
            self.send_response(200, [("x-ok", "1")], b"ok")
            try:
                self.send_response(200, body=b"again")
            except Exception as exc:  # noqa: BLE001
                raised["second"] = exc

    server = await start_server(Misuse)
    client = await h2_connect(server)
    response = await client.get("/")
    assert response.status == 200 and bytes(response.data) == b"ok"
    assert response.header(b"x-ok") == b"1"
    # No stray promise was made by the rejected pushes (it would precede the response).
    assert client.pushes == []
    for name in (
        "status-99",
        "status-1000",
        "status-str",
        "pseudo",
        "pseudo-bytes",
        "connection",
        "body-type",
        "push-pseudo",
        "push-status",
        "push-body-type",
    ):
        assert isinstance(raised.get(name), InvalidResponse), (name, raised.get(name))
        assert isinstance(raised[name], ValueError)
    assert isinstance(raised["second"], ResponseAlreadySent)
    assert "999" in str(raised["status-99"])
    assert ":status" in str(raised["pseudo"])
    # The connection is fine afterwards.
    assert (await client.get("/again")).status == 200


# ---------------------------------------------------------------------------
# Handler failures
# ---------------------------------------------------------------------------


class Failing(BaseRequestHandler):
    def on_headers(self):
        if self.path == b"/raise-in-headers":
            raise RuntimeError("boom in on_headers")
        if self.path == b"/raise-after-response":
            self.send_response(200, body=self.never)
            raise RuntimeError("boom after send_response")
        if self.path == b"/raise-in-generator":
            self.send_response(200, body=self.broken)
        if self.path == b"/raise-in-data":
            self.send_response(200, body=self.never)
        if self.path == b"/ok":
            self.send_response(200, body=b"fine")

    def on_data(self, data):
        if self.path == b"/raise-in-data":
            raise ValueError("boom in on_data")

    def on_request_done(self):
        if self.path == b"/raise-in-done":
            raise KeyError("boom in on_request_done")

    def never(self, size):
        return None, DATA_DEFERRED

    def broken(self, size):
        raise ZeroDivisionError("boom in the body generator")


def failures(caplog, text):
    return [
        r
        for r in caplog.records
        if r.name.startswith("nghttp2.server")
        and r.levelno >= logging.ERROR
        and r.exc_info
        and text in str(r.exc_info[1])
    ]


async def test_exception_before_a_response_answers_500(start_server, h2_connect, caplog):
    server = await start_server(Failing)
    client = await h2_connect(server)
    for path, text in (
        ("/raise-in-headers", "boom in on_headers"),
        ("/raise-in-done", "boom in on_request_done"),
    ):
        response = await client.get(path)
        assert response.status == 500
        assert response.ended and response.reset is None
        assert b"Internal Server Error" in bytes(response.data)
        records = failures(caplog, text)
        assert len(records) == 1, path
        assert "Traceback" in caplog.text
    ok = await client.get("/ok")
    assert ok.status == 200 and bytes(ok.data) == b"fine"


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/raise-after-response", "boom after send_response"),
        ("/raise-in-generator", "boom in the body generator"),
        ("/raise-in-data", "boom in on_data"),
    ],
)
async def test_exception_after_the_response_started_resets_the_stream(
    start_server, h2_connect, caplog, path, text
):
    server = await start_server(Failing)
    client = await h2_connect(server)
    body = b"x" * 10 if path == "/raise-in-data" else None
    sid = await client.request(path, "POST" if body else "GET", body=body)
    stream = await client.response(sid)
    assert stream.reset == INTERNAL_ERROR
    assert not stream.ended
    assert len(failures(caplog, text)) == 1
    # The connection and the server carry on.
    ok = await client.get("/ok")
    assert bytes(ok.data) == b"fine"
    assert not client.goaways


async def test_exception_in_on_close_is_logged_and_harmless(start_server, h2_connect, caplog):
    class BadClose(BaseRequestHandler):
        def on_headers(self):
            self.send_response(body=b"bye")

        def on_close(self, error_code):
            raise RuntimeError("boom in on_close")

    server = await start_server(BadClose)
    client = await h2_connect(server)
    for _ in range(3):
        assert bytes((await client.get("/")).data) == b"bye"
    await client.wait_for(lambda: len(failures(caplog, "boom in on_close")) == 3)
    assert not client.goaways


# ---------------------------------------------------------------------------
# Clients that go away
# ---------------------------------------------------------------------------


async def test_client_vanishing_mid_response(start_server, h2_connect):
    closes = []
    closed = asyncio.Event()
    handlers = []

    class Big(BaseRequestHandler):
        def on_headers(self):
            handlers.append(self)
            if self.path == b"/bytes":
                self.send_response(body=b"z" * (4 << 20))
            else:
                self.send_response(body=lambda size: (None, DATA_DEFERRED))

        def on_close(self, error_code):
            closes.append((self.path, error_code))
            if len(closes) == 2:
                closed.set()

    server = await start_server(Big)
    client = await h2_connect(server)
    client.read_body = False  # the server stalls at the flow-control window
    big = await client.request("/bytes")
    deferred = await client.request("/deferred")
    await client.wait_for(lambda: client.streams[big].data and client.streams[deferred].headers)
    assert len(server.connections) == 1
    protocol = next(iter(server.connections))
    assert set(protocol.handlers) == {big, deferred}
    client.abort()
    await wait(closed.wait())
    assert sorted(closes) == [(b"/bytes", CANCEL), (b"/deferred", CANCEL)]
    assert protocol.handlers == {}
    assert server.connections == set()
    handlers[1].resume()  # resuming a stream of a dead connection does nothing
    # The server still serves.
    other = await h2_connect(server)
    assert len((await other.get("/bytes")).data) == 4 << 20


async def test_client_resetting_a_stream(start_server, h2_connect):
    closes = []
    closed = asyncio.Event()

    class Slow(BaseRequestHandler):
        def on_headers(self):
            if self.path == b"/slow":
                self.send_response(body=lambda size: (None, DATA_DEFERRED))
            else:
                self.send_response(body=b"quick")

        def on_close(self, error_code):
            closes.append((self.path, error_code))
            closed.set()

    server = await start_server(Slow)
    client = await h2_connect(server)
    sid = await client.request("/slow")
    await client.wait_for(lambda: client.streams[sid].headers)
    client.conn.reset_stream(sid, CANCEL)
    await client.flush()
    await wait(closed.wait())
    assert closes == [(b"/slow", CANCEL)]
    protocol = next(iter(server.connections))
    assert sid not in protocol.handlers
    assert bytes((await client.get("/quick")).data) == b"quick"


# ---------------------------------------------------------------------------
# Shutdown
# ---------------------------------------------------------------------------


async def test_graceful_shutdown_finishes_in_flight_streams(start_server, h2_connect):
    handlers = []

    class Slow(BaseRequestHandler):
        def on_headers(self):
            self.ready = None
            handlers.append(self)
            self.send_response(200, [("content-length", "11")], self.generate)

        def generate(self, size):
            if self.ready is None:
                return None, DATA_DEFERRED
            return self.ready, DATA_EOF

    server = await start_server(Slow)
    client = await h2_connect(server)
    sid = await client.request("/slow")
    stream = client.streams[sid]
    await client.wait_for(lambda: stream.headers is not None)
    host, port = server.address

    stopping = asyncio.ensure_future(server.shutdown(timeout=TIMEOUT))
    # The final GOAWAY (after the shutdown notice) names the stream in flight.
    await client.wait_for(lambda: any(g.last_stream_id == sid for g in client.goaways))
    assert client.goaways[0].error_code == 0
    assert not stream.done and not stopping.done()
    assert refused((host, port))  # no new connections while finishing

    handler = handlers[0]
    handler.ready = b"hello world"
    handler.resume()
    await client.response(sid)
    assert stream.ended and bytes(stream.data) == b"hello world"
    await wait(client.wait_closed())
    await wait(stopping)
    assert not server.connections


async def test_shutdown_timeout_aborts_what_is_left(start_server, h2_connect, caplog):
    closed = asyncio.Event()
    codes = []

    class Never(BaseRequestHandler):
        def on_headers(self):
            self.send_response(body=lambda size: (None, DATA_DEFERRED))

        def on_close(self, error_code):
            codes.append(error_code)
            closed.set()

    server = await start_server(Never)
    client = await h2_connect(server)
    sid = await client.request("/")
    await client.wait_for(lambda: client.streams[sid].headers)
    await wait(server.shutdown(timeout=0.5))
    await wait(closed.wait())
    assert codes == [CANCEL]
    assert not server.connections
    assert any("abort" in r.getMessage() for r in caplog.records if r.name == "nghttp2.server")
    await wait(client.wait_closed())
    assert not client.streams[sid].ended


async def test_close_drops_connections_now(start_server, h2_connect):
    closed = asyncio.Event()

    class Never(BaseRequestHandler):
        def on_headers(self):
            self.send_response(body=lambda size: (None, DATA_DEFERRED))

        def on_close(self, error_code):
            closed.set()

    server = await start_server(Never)
    address = server.address
    client = await h2_connect(server)
    sid = await client.request("/")
    await client.wait_for(lambda: client.streams[sid].headers)
    server.close()
    server.close()  # twice is fine
    assert not server.connections
    await wait(closed.wait())
    try:
        await wait(client.wait_closed())
    except ConnectionResetError:
        pass  # dropped with the client's last bytes unread: RST instead of FIN
    assert not client.streams[sid].ended
    assert refused(address)


# ---------------------------------------------------------------------------
# Access log
# ---------------------------------------------------------------------------


async def test_access_log_lines(start_server, h2_connect, caplog):
    caplog.set_level(logging.INFO, logger="nghttp2.server.access")
    Pusher.pushed_handlers = []
    server = await start_server(Pusher)
    client = await h2_connect(server)
    await client.get("/")
    await client.wait_for(lambda: all(s.done for s in client.streams.values()))
    await client.wait_for(
        lambda: len([r for r in caplog.records if r.name == "nghttp2.server.access"]) >= 3
    )
    lines = [r.getMessage() for r in caplog.records if r.name == "nghttp2.server.access"]
    page = [line for line in lines if '"GET / HTTP/2" 200 17 -' in line]
    css = [line for line in lines if '"GET /css/style.css HTTP/2" 200 19 P' in line]
    assert len(page) == 1 and len(css) == 1, lines
    assert page[0].startswith("127.0.0.1:")


async def test_access_log_off(start_server, h2_connect, caplog):
    caplog.set_level(logging.INFO, logger="nghttp2.server.access")
    server = await start_server(Hello, access_log=False)
    client = await h2_connect(server)
    for _ in range(3):
        assert (await client.get("/")).status == 200
    await client.close()
    await wait(server.shutdown(timeout=5))
    assert [r for r in caplog.records if r.name == "nghttp2.server.access"] == []


async def test_download_hash_over_h2(start_server, h2_connect, tmp_path):
    data = hashlib.sha256(b"seed").digest() * (2 << 15)  # 2 MiB
    path = tmp_path / "file.bin"
    path.write_bytes(data[::-1])

    class Files(BaseRequestHandler):
        def on_headers(self):
            if self.path == b"/bytes":
                self.send_response(body=data)
            else:
                self.send_response(body=open(path, "rb"))  # noqa: SIM115

    server = await start_server(Files)
    client = await h2_connect(server)
    one, two = await client.request("/bytes"), await client.request("/file")
    assert bytes((await client.response(one)).data) == data
    assert bytes((await client.response(two)).data) == data[::-1]


async def test_a_client_that_stops_reading_pauses_the_writer(start_server, h2_connect):
    """A client with wide-open HTTP/2 windows that does not read its socket:
    the transport pushes back (pause_writing), nothing is lost, and the
    response completes once the client reads again."""
    data = hashlib.sha256(b"bp").digest() * (24 << 15)  # 24 MiB

    class Big(BaseRequestHandler):
        def on_headers(self):
            self.send_response(body=data)

    server = await start_server(Big)
    client = await h2_connect(server)
    client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
    client.conn.increment_flow_control_window(2**31 - 1 - 65535)
    await client.flush()
    await client.wait_for(
        lambda: any(isinstance(e, h2.events.SettingsAcknowledged) for e in client.events)
    )
    sid = await client.request("/")
    protocol = next(iter(server.connections))
    for _ in range(int(TIMEOUT / 0.01)):  # bounded wait for the kernel buffers to fill
        if protocol._paused:
            break
        await asyncio.sleep(0.01)
    assert protocol._paused, "the transport never pushed back"
    stream = await client.response(sid)
    assert len(stream.data) == len(data)
    assert hashlib.sha256(stream.data).digest() == hashlib.sha256(data).digest()
    assert not protocol._paused


async def test_a_client_speaking_http1_gets_closed(start_server, h2_connect, caplog):
    caplog.set_level(logging.INFO, logger="nghttp2.server")
    server = await start_server(Hello, http1=False)  # HTTP/2 only (else HTTP/1.1 answers)
    reader, writer = await asyncio.open_connection(*server.address)
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = await wait(reader.read())
    writer.close()
    # Never an HTTP/1.1 answer: HTTP/2 frames ending in GOAWAY PROTOCOL_ERROR.
    assert not data.startswith(b"HTTP/1.1")
    frames = []
    while data:
        frame, length = hyperframe.frame.Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9 : 9 + length]))
        frames.append(frame)
        data = data[9 + length :]
    assert isinstance(frames[-1], hyperframe.frame.GoAwayFrame)
    assert frames[-1].error_code == 0x1  # PROTOCOL_ERROR
    for _ in range(100):
        if not server.connections:
            break
        await asyncio.sleep(0.01)
    assert not server.connections
    client = await h2_connect(server)
    assert bytes((await client.get("/")).data) == b"hello\n"


async def test_push_and_response_from_an_asyncio_task(start_server, h2_connect):
    """The handler answers later, from a task, outside any callback."""
    tasks = []

    class Later(BaseRequestHandler):
        def on_request_done(self):
            tasks.append(asyncio.ensure_future(self.answer()))

        async def answer(self):
            await asyncio.sleep(0)
            self.push("/later.js", body=b"js")
            await asyncio.sleep(0)
            self.send_response(200, [("x-from", "task")], b"answered " + self.path)

    server = await start_server(Later)
    client = await h2_connect(server)
    sids = [await client.request(f"/{i}") for i in range(3)]
    for i, sid in enumerate(sids):
        response = await client.response(sid)
        assert response.header(b"x-from") == b"task"
        assert bytes(response.data) == f"answered /{i}".encode()
    await wait(asyncio.gather(*tasks))
    assert len(client.pushes) == 3
    for push in client.pushes:
        assert bytes((await client.response(push.pushed_stream_id)).data) == b"js"


async def test_limits_produce_the_session_config() -> None:
    """Every connection's Session takes one SessionConfig made from the
    server's Limits; what Limits does not set stays nghttp2_cffi's default."""
    from nghttp2.server.limits import Limits
    from nghttp2_cffi import FEATURES, Session, SessionConfig, SettingCode

    limits = Limits(max_header_list_size=4096, glitch_burst=50, glitch_rate=5)
    server = HTTP2Server(("127.0.0.1", 0), BaseRequestHandler, limits=limits, settings={9: 1})
    config = server.session_config
    assert isinstance(config, SessionConfig)
    assert config.max_header_list_size == 4096
    assert config.glitch_limit == (50, 5)
    assert not config.auto_window_update and not config.window_update_events
    assert config.settings[SettingCode.MAX_HEADER_LIST_SIZE] == 4096
    assert config.settings[SettingCode.MAX_CONCURRENT_STREAMS] == limits.max_concurrent_streams
    assert config.settings[SettingCode.INITIAL_WINDOW_SIZE] == limits.initial_window_size
    assert config.settings[SettingCode.NO_RFC7540_PRIORITIES] == 1
    if FEATURES["stream_reset_rate_limit"]:
        assert config.stream_reset_rate == limits.stream_reset_rate
    # The defaults of Limits are those of a bare Session.
    default = Limits().session_config()
    bare = SessionConfig()
    for name in ("max_header_list_size", "glitch_limit", "stream_reset_rate", "max_continuations"):
        assert getattr(default, name) == getattr(bare, name), name
    # 0.1's Session("server", **server.session_options) still works.
    session = Session("server", **server.session_options)
    assert session.config is config
