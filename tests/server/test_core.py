"""The server core's contracts with handlers, over real sockets: nothing of
the server lives on the handler (any attribute name is the subclass's own),
an ``async def on_data`` gets the body in order with backpressure, and
``Expect: 100-continue`` is answered over HTTP/2 when the body is read.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import shutil
import sys
import weakref
from typing import Any, ClassVar, List, Optional

import h2.events
import pytest

from nghttp2.server import BaseRequestHandler
from nghttp2.server.limits import Limits

pytestmark = pytest.mark.asyncio

TIMEOUT = 10.0
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


async def wait(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, TIMEOUT)


async def http11(server: Any, data: bytes) -> bytes:
    """Send raw HTTP/1.1 ``data`` with Connection: close; everything the server answers."""
    host, port = server.address
    reader, writer = await wait(asyncio.open_connection(host, port))
    writer.write(data)
    answer = await wait(reader.read())
    writer.close()
    return answer


# ---------------------------------------------------------------------------
# Any attribute name is the handler's own
# ---------------------------------------------------------------------------

# Names the server kept on the handler before the Stream object.
PRIVATE_NAMES = ("_task", "_started", "_received", "_reader", "_deferred", "_inbox", "_generator")


class Private(BaseRequestHandler):
    """Keeps its own state under names the server once used for its own."""

    def on_headers(self) -> None:
        for name in PRIVATE_NAMES:
            setattr(self, name, f"mine:{name}")
        self._received = 0

    def on_data(self, data: bytes) -> None:
        self._received += len(data)

    def on_request_done(self) -> None:
        mine = all(getattr(self, n) == f"mine:{n}" for n in PRIVATE_NAMES if n != "_received")
        self.send_response(200, body=f"{self._received} {mine}")


class AsyncPrivate(BaseRequestHandler):
    async def on_headers(self) -> None:
        for name in PRIVATE_NAMES:
            setattr(self, name, f"mine:{name}")
        body = await self.read_body()
        await asyncio.sleep(0)
        mine = all(getattr(self, n) == f"mine:{n}" for n in PRIVATE_NAMES)
        self.send_response(200, body=f"{len(body)} {mine}")


@pytest.mark.parametrize("handler", [Private, AsyncPrivate])
async def test_handler_private_names_are_its_own_over_http2(start_server, h2_connect, handler):
    server = await start_server(handler)
    client = await h2_connect(server)
    stream = await wait(client.get("/", method="POST", body=b"x" * 1000))
    assert stream.status == 200
    assert bytes(stream.data) == b"1000 True"


@pytest.mark.parametrize("handler", [Private, AsyncPrivate])
async def test_handler_private_names_are_its_own_over_http11(start_server, handler):
    server = await start_server(handler)
    answer = await http11(
        server,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n"
        + b"x" * 1000,
    )
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"\r\n\r\n1000 True")


# ---------------------------------------------------------------------------
# async def on_data: in order, one at a time, the window opening as it reads
# ---------------------------------------------------------------------------


class OrderedReader(BaseRequestHandler):
    """``async def on_data``: each call waits for ``gate``, then records."""

    gate: ClassVar[Optional[asyncio.Event]] = None
    calls: ClassVar[List[Any]] = []

    def on_headers(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0
        self.active = 0

    async def on_data(self, data: bytes) -> None:
        self.active += 1
        OrderedReader.calls.append(("data", len(data), self.active))
        assert OrderedReader.gate is not None
        await OrderedReader.gate.wait()
        await asyncio.sleep(0)
        self.digest.update(data)
        self.size += len(data)
        self.active -= 1

    def on_request_done(self) -> None:
        OrderedReader.calls.append(("done", self.size, self.active))
        self.send_response(200, body=f"{self.size} {self.digest.hexdigest()}")


async def test_async_on_data_is_ordered_and_opens_the_window_as_it_reads(start_server, h2_connect):
    OrderedReader.gate = asyncio.Event()
    OrderedReader.calls = []
    server = await start_server(OrderedReader, limits=Limits(initial_window_size=65535))
    client = await h2_connect(server)
    await wait(
        client.wait_for(
            lambda: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in client.events)
        )
    )
    body = bytes(range(256)) * 1024  # 256 KiB: four times the stream's window
    sid = await client.open_upload("/")
    # Send what the window allows; the handler holds the first chunk.
    window = client.conn.local_flow_control_window(sid)
    sent = 0
    while window > 0:
        size = min(window, client.conn.max_outbound_frame_size)
        client.conn.send_data(sid, body[sent : sent + size])
        sent += size
        window = client.conn.local_flow_control_window(sid)
    await client.flush()
    await wait(_until(lambda: OrderedReader.calls))
    # Nothing read yet: the stream's window stays shut (it reopened at once
    # before); only the connection's reopens.
    deadline = asyncio.get_running_loop().time() + 0.3
    while asyncio.get_running_loop().time() < deadline:
        try:
            await asyncio.wait_for(client.read_once(), 0.1)
        except asyncio.TimeoutError:
            pass
    assert client.conn.local_flow_control_window(sid) == 0
    assert len(OrderedReader.calls) == 1
    OrderedReader.gate.set()
    await wait(client.send_body(sid, body[sent:]))
    stream = await wait(client.response(sid))
    assert bytes(stream.data) == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
    # One call at a time, and on_request_done after the last chunk.
    assert all(active == 1 for kind, _, active in OrderedReader.calls if kind == "data")
    assert OrderedReader.calls[-1] == ("done", len(body), 0)


async def test_async_on_data_over_http11(start_server):
    OrderedReader.gate = asyncio.Event()
    OrderedReader.gate.set()
    OrderedReader.calls = []
    server = await start_server(OrderedReader)
    body = b"abc" * 50_000
    answer = await http11(
        server,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:1000], body[1000:]))
        + b"0\r\n\r\n",
    )
    assert answer.endswith(f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode())
    assert OrderedReader.calls[-1] == ("done", len(body), 0)


async def _until(predicate: Any) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------------
# Expect: 100-continue over HTTP/2
# ---------------------------------------------------------------------------


class SyncEcho(BaseRequestHandler):
    """Reads through on_data; answers early on /early."""

    def on_headers(self) -> None:
        self.size = 0
        if self.path == b"/early":
            self.send_response(413, body=b"no thanks")

    def on_data(self, data: bytes) -> None:
        self.size += len(data)

    def on_request_done(self) -> None:
        if self.status is None:
            self.send_response(200, body=str(self.size))


class AsyncEcho(BaseRequestHandler):
    async def on_headers(self) -> None:
        if self.path == b"/early":
            self.send_response(413, body=b"no thanks")
            return
        await asyncio.sleep(0.05)  # headers handled first; the body read later
        self.send_response(200, body=str(len(await self.read_body())))


async def asgi_echo(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/early":
        await send({"type": "http.response.start", "status": 413, "headers": []})
        await send({"type": "http.response.body", "body": b"no thanks"})
        return
    size = 0
    more = True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


async def _serve(kind: str, start_server: Any, serve_asgi: Any) -> Any:
    if kind == "asgi":
        return await serve_asgi(asgi_echo)
    return await start_server(SyncEcho if kind == "sync" else AsyncEcho)


async def _informational(client: Any, sid: int) -> List[bytes]:
    return [
        dict(e.headers)[b":status"]
        for e in client.events
        if isinstance(e, h2.events.InformationalResponseReceived) and e.stream_id == sid
    ]


@pytest.mark.parametrize("kind", ["sync", "async", "asgi"])
async def test_expect_100_continue_over_http2(start_server, serve_asgi, h2_connect, kind):
    server = await _serve(kind, start_server, serve_asgi)
    client = await h2_connect(server)
    sid = await client.open_upload("/", [("expect", "100-continue")])
    # The client waits for 100 before it sends the body.
    await wait(client.wait_for(lambda: _has_100(client, sid)))
    await client.send_body(sid, b"y" * 5000)
    stream = await wait(client.response(sid))
    assert (stream.status, bytes(stream.data)) == (200, b"5000")
    assert await _informational(client, sid) == [b"100"]


def _has_100(client: Any, sid: int) -> bool:
    return any(
        isinstance(e, h2.events.InformationalResponseReceived) and e.stream_id == sid
        for e in client.events
    )


@pytest.mark.parametrize("kind", ["sync", "async", "asgi"])
async def test_no_100_continue_when_the_response_comes_first(
    start_server, serve_asgi, h2_connect, kind
):
    server = await _serve(kind, start_server, serve_asgi)
    client = await h2_connect(server)
    sid = await client.open_upload("/early", [("expect", "100-continue")])
    await wait(client.wait_for(lambda: client.streams[sid].headers is not None))
    assert client.streams[sid].status == 413
    assert await _informational(client, sid) == []


@needs_curl
@pytest.mark.parametrize("kind", ["sync", "async", "asgi"])
async def test_curl_expect_100_continue_over_http2_does_not_wait(
    start_server, serve_asgi, run, server_url, tmp_path, kind
):
    server = await _serve(kind, start_server, serve_asgi)
    path = tmp_path / "up.bin"
    path.write_bytes(b"z" * 100_000)
    result = (
        await run(
            "curl",
            "-sS",
            "--http2-prior-knowledge",
            "-H",
            "Expect: 100-continue",
            "--expect100-timeout",
            "5",
            "--data-binary",
            f"@{path}",
            "-w",
            " %{time_total}",
            server_url(server, "/"),
        )
    ).check()
    body, seconds = result.out.rsplit(" ", 1)
    assert body == "100000"
    # Without the 100 curl waits out its timeout (5 s here) before sending.
    assert float(seconds) < 2.5


# ---------------------------------------------------------------------------
# A declined Upgrade's body, then the next request on the connection
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [True, False])
async def test_a_declined_upgrade_with_a_body_is_read_and_parsing_goes_on(start_server, chunked):
    server = await start_server(Private)
    body = b"q" * 3000
    if chunked:
        framing = b"Transfer-Encoding: chunked\r\n"
        sent = b"5;ext=1\r\n" + body[:5] + b"\r\n" + b"%x\r\n" % 2995 + body[5:] + b"\r\n"
        sent += b"0\r\nX-Trailer: t\r\n\r\n"
    else:
        framing = b"Content-Length: 3000\r\n"
        sent = body
    answer = await http11(
        server,
        b"POST /up HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        + framing
        + b"\r\n"
        + sent
        + b"POST /next HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    )
    assert answer.count(b"HTTP/1.1 200 ") == 2
    assert b"\r\n\r\n3000 True" in answer
    assert answer.endswith(b"\r\n\r\n2 True")


# ---------------------------------------------------------------------------
# A finished request leaves nothing for the cycle collector
# ---------------------------------------------------------------------------


@pytest.mark.skipif(
    sys.implementation.name != "cpython", reason="only CPython frees by reference counting"
)
@pytest.mark.parametrize("http2", [True, False])
async def test_a_finished_requests_handler_and_stream_go_without_the_cycle_collector(
    start_server, h2_connect, http2
):
    handlers: List[Any] = []
    streams: List[Any] = []

    class Tracked(BaseRequestHandler):
        def on_headers(self) -> None:
            handlers.append(weakref.ref(self))
            streams.append(weakref.ref(self.exchange))
            self.send_response(200, body=b"x")

    server = await start_server(Tracked)
    gc.collect()
    gc.disable()
    try:
        if http2:
            client = await h2_connect(server)
            for _ in range(3):
                assert (await wait(client.get("/"))).status == 200
        else:
            answer = await http11(
                server,
                b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * 2 + b"GET / HTTP/1.1\r\nHost: t\r\n"
                b"Connection: close\r\n\r\n",
            )
            assert answer.count(b"HTTP/1.1 200 ") == 3
        await asyncio.sleep(0.05)
        assert len(handlers) == 3
        assert [ref() for ref in handlers + streams] == [None] * 6
    finally:
        gc.enable()


@pytest.mark.skipif(not hasattr(gc, "freeze"), reason="PyPy's gc has no freeze()")
async def test_serve_until_signal_freezes_what_lives_at_start() -> None:
    """serve_until_signal owns the process: what lives once the server has
    started (modules, the app) is frozen out of the cycle collector's full
    collections (issue 14: they cost ASGI requests at 1000 connections)."""
    from nghttp2.server import HTTP2Server

    server = HTTP2Server(("127.0.0.1", 0), BaseRequestHandler, access_log=False)
    gc.unfreeze()
    serving = asyncio.ensure_future(server.serve_until_signal(signals=()))
    try:
        for _ in range(200):
            if gc.get_freeze_count():
                break
            await asyncio.sleep(0.01)
        assert gc.get_freeze_count() > 1000
        assert server.sockets  # frozen once listening
    finally:
        await server.shutdown()
        await serving
        gc.unfreeze()
