"""Coroutine handlers and the streaming API (read_body, iter_body,
begin_response/write/end_response, send_informational) over real sockets:
HTTP/2 with the frame-level ``h2`` client of conftest.py, HTTP/1.1 with httpx.

What the window does is read off the client's own flow-control state
(``h2``), what the handler does off counters it keeps; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from typing import Any, AsyncIterator, ClassVar, List, Optional, Tuple

import h2.events
import httpx
import pytest

from nghttp2.server import (
    BaseRequestHandler,
    ClientDisconnected,
    InvalidResponse,
    ResponseAlreadySent,
)
from nghttp2.server.connection import STREAM_HIGH_WATER
from nghttp2.server.limits import Limits

pytestmark = pytest.mark.asyncio

TIMEOUT = 10.0
NO_ERROR = 0x0
INTERNAL_ERROR = 0x2
CANCEL = 0x8


async def wait(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, TIMEOUT)


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def failures(caplog: Any, text: str) -> List[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("nghttp2.server")
        and r.levelno >= logging.ERROR
        and r.exc_info
        and text in str(r.exc_info[1])
    ]


def protocol_of(server: Any) -> Any:
    assert len(server.connections) == 1
    return next(iter(server.connections))


async def open_upload(
    client: Any, path: str, headers: Optional[List[Tuple[str, str]]] = None
) -> int:
    """Request headers without END_STREAM: the body follows."""
    sid = client.conn.get_next_available_stream_id()
    fields = [
        (":method", "POST"),
        (":scheme", client.scheme),
        (":authority", client.authority),
        (":path", path),
    ]
    client.conn.send_headers(sid, fields + (headers or []), end_stream=False)
    client._stream(sid)
    await client.flush()
    return sid


async def round_trip(client: Any) -> None:
    """A PING answered: the server has read everything sent before it, and
    the client everything the server sent before the ACK."""
    opaque = random.Random().randbytes(8)
    client.conn.ping(opaque)
    await client.flush()
    await client.wait_for(
        lambda: any(
            isinstance(e, h2.events.PingAckReceived) and e.ping_data == opaque
            for e in client.events
        )
    )


# ---------------------------------------------------------------------------
# Reading the request body
# ---------------------------------------------------------------------------


async def test_read_body_of_a_5_mib_upload(start_server, h2_connect):
    closes = []

    class Upload(BaseRequestHandler):
        async def on_headers(self) -> None:
            body = await self.read_body()
            self.send_response(200, [("x-size", str(len(body)))], sha(body))

        def on_close(self, error_code: int) -> None:
            closes.append(error_code)

    server = await start_server(Upload)
    client = await h2_connect(server)
    body = payload(5 << 20)
    # Larger than the 1 MiB stream window: it goes through only as the
    # handler reads.
    assert len(body) > Limits().initial_window_size
    sid = await client.request("/up", "POST", body=body)
    stream = await client.response(sid)
    assert stream.status == 200
    assert stream.header(b"x-size") == str(5 << 20).encode()
    assert bytes(stream.data).decode() == sha(body)
    # A second one on the same connection, and nothing left behind.
    again = await client.get("/up", method="POST", body=b"small")
    assert bytes(again.data).decode() == sha(b"small")
    await round_trip(client)
    assert closes == [NO_ERROR, NO_ERROR]
    assert protocol_of(server).handlers == {}


async def test_iter_body_gets_each_chunk_as_it_is_sent(start_server, h2_connect):
    seen: asyncio.Queue = asyncio.Queue()

    class Streamer(BaseRequestHandler):
        async def on_headers(self) -> None:
            chunks = []
            async for chunk in self.iter_body():
                chunks.append(chunk)
                seen.put_nowait(chunk)
            self.send_response(200, body=f"{len(chunks)} {sha(b''.join(chunks))}")

    server = await start_server(Streamer)
    client = await h2_connect(server)
    sid = await open_upload(client, "/stream")
    sent = [b"chunk %d " % i * (i + 1) for i in range(8)]
    for chunk in sent:
        client.conn.send_data(sid, chunk)
        await client.flush()
        # The handler has this chunk before the next one leaves the client.
        assert await wait(seen.get()) == chunk
    client.conn.end_stream(sid)
    await client.flush()
    stream = await client.response(sid)
    assert bytes(stream.data).decode() == f"{len(sent)} {sha(b''.join(sent))}"
    assert seen.empty()


async def test_read_body_in_a_sync_handler_says_why_it_cannot(start_server, h2_connect, caplog):
    class Sync(BaseRequestHandler):
        def on_headers(self) -> None:
            asyncio.get_running_loop().create_task(self.misuse())

        async def misuse(self) -> None:
            try:
                await self.read_body()
            except RuntimeError as exc:
                self.send_response(200, body=str(exc))

    server = await start_server(Sync)
    client = await h2_connect(server)
    stream = await client.get("/", method="POST", body=b"abc")
    assert "async def on_headers" in bytes(stream.data).decode()


class Unread(BaseRequestHandler):
    """Answers (or fails) without reading the request body."""

    closes: ClassVar[List[int]] = []

    async def on_headers(self) -> None:
        await asyncio.sleep(0)
        if self.path == b"/fail":
            raise RuntimeError("boom before reading")
        self.send_response(401, body=b"no thanks")

    def on_close(self, error_code: int) -> None:
        Unread.closes.append(error_code)


@pytest.mark.parametrize(("path", "status"), [("/", 401), ("/fail", 500)])
async def test_body_left_unread_does_not_stall_the_upload(
    start_server, h2_connect, caplog, path, status
):
    # Regression: the window of a body its coroutine on_headers never read
    # stayed shut, so a 3 MiB upload hung at 1 MiB and the stream never closed.
    Unread.closes = []
    server = await start_server(Unread)
    client = await h2_connect(server)
    for _ in range(2):
        stream = await client.get(path, method="POST", body=payload(3 << 20))
        assert stream.status == status and stream.ended and stream.reset is None
    await round_trip(client)
    assert Unread.closes == [NO_ERROR, NO_ERROR]
    assert protocol_of(server).handlers == {}
    assert len(failures(caplog, "boom before reading")) == (2 if status == 500 else 0)


async def test_asgi_app_answering_without_receive_does_not_stall(serve_asgi, h2_connect):
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b"no"})

    server = await serve_asgi(app)
    client = await h2_connect(server.address)
    stream = await client.get("/", method="POST", body=payload(3 << 20))
    assert stream.status == 401 and bytes(stream.data) == b"no" and stream.ended


# ---------------------------------------------------------------------------
# Flow control follows what the handler reads
# ---------------------------------------------------------------------------


async def test_unread_body_stalls_its_stream_not_the_connection(start_server, h2_connect):
    stream_window = 64 * 1024
    go = asyncio.Event()
    read_by_lazy: List[int] = []

    class Handler(BaseRequestHandler):
        async def on_headers(self) -> None:
            if self.path == b"/lazy":
                await go.wait()  # reads nothing until told
                size = 0
                digest = hashlib.sha256()
                async for chunk in self.iter_body():
                    size += len(chunk)
                    read_by_lazy.append(size)
                    digest.update(chunk)
                self.send_response(200, body=digest.hexdigest())
            else:
                self.send_response(200, body=sha(await self.read_body()))

    # A stream window of 64 KiB and a connection window of only 128 KiB: the
    # other stream's 1 MiB upload needs the connection window to keep opening
    # while the lazy stream's 64 KiB sit unread.
    limits = Limits(initial_window_size=stream_window, connection_window_size=2 * stream_window)
    server = await start_server(Handler, limits=limits)
    client = await h2_connect(server)
    await round_trip(client)  # the server's SETTINGS and window are in
    assert client.conn.remote_settings.initial_window_size == stream_window

    lazy_body = payload(1 << 20, seed=1)
    lazy = await open_upload(client, "/lazy")
    sent = 0
    while client.conn.local_flow_control_window(lazy) > 0:
        size = min(client.conn.local_flow_control_window(lazy), client.conn.max_outbound_frame_size)
        client.conn.send_data(lazy, lazy_body[sent : sent + size])
        sent += size
        await client.flush()
    assert sent == stream_window  # the stream window is what stopped it

    other_body = payload(1 << 20, seed=2)
    other = await client.request("/eager", "POST", body=other_body)
    answer = await client.response(other)
    assert bytes(answer.data).decode() == sha(other_body)
    await round_trip(client)
    # The other stream got its 1 MiB through the 128 KiB connection window...
    assert client.conn.outbound_flow_control_window > 0
    # ...while the lazy stream's window stayed shut: it cannot send the rest.
    assert client.conn.local_flow_control_window(lazy) == 0
    assert read_by_lazy == []
    assert client.streams[lazy].headers is None

    go.set()
    await client.send_body(lazy, lazy_body[sent:])
    done = await client.response(lazy)
    assert bytes(done.data).decode() == sha(lazy_body)
    assert read_by_lazy[-1] == len(lazy_body)
    assert protocol_of(server).handlers == {}


# ---------------------------------------------------------------------------
# Streaming responses
# ---------------------------------------------------------------------------


async def test_streamed_response_in_order_with_trailers(start_server, h2_connect):
    pieces = [b"%04d:" % i + b"x" * (i * 37 % 500) for i in range(200)]
    whole = b"".join(pieces)

    class Streaming(BaseRequestHandler):
        async def on_headers(self) -> None:
            self.begin_response(200, [("content-type", "text/plain"), ("trailer", "x-sha256")])
            for i, piece in enumerate(pieces):
                await self.write(piece)
                if i % 10 == 0:
                    await asyncio.sleep(0)  # let some go out on their own
            self.end_response(trailers=[("x-sha256", sha(whole)), ("x-pieces", str(len(pieces)))])

    server = await start_server(Streaming)
    client = await h2_connect(server)
    for _ in range(2):
        stream = await client.get("/")
        assert stream.status == 200
        assert bytes(stream.data) == whole
        assert stream.ended
        assert stream.trailers == [(b"x-sha256", sha(whole).encode()), (b"x-pieces", b"200")]
    # The body came in several DATA frames, not as one lump at the end.
    frames = [
        e
        for e in client.events
        if isinstance(e, h2.events.DataReceived) and e.stream_id == stream.stream_id
    ]
    assert len(frames) > 1


async def test_write_waits_for_a_client_that_does_not_read(start_server, h2_connect):
    chunk = 64 * 1024
    count = 32
    progress: List[int] = []
    finished = asyncio.Event()

    class Producer(BaseRequestHandler):
        async def on_headers(self) -> None:
            self.begin_response(200)
            for i in range(count):
                await self.write(bytes([65 + i % 26]) * chunk)
                progress.append(i + 1)
            self.end_response()
            finished.set()

    server = await start_server(Producer)
    client = await h2_connect(server)
    client.read_body = False  # nothing acknowledged: the windows stay shut
    window = client.conn.local_settings.initial_window_size
    sid = await client.request("/")
    stream = client.streams[sid]
    await client.wait_for(lambda: len(stream.data) >= window)
    assert len(stream.data) == window
    # The producer is held in write(): nothing moves while the client holds.
    held = len(progress)
    for _ in range(5):
        await asyncio.sleep(0.05)
        await round_trip(client)  # the client keeps reading; no DATA comes
    assert len(progress) == held < count
    assert not finished.is_set()
    assert len(stream.data) == window
    # Queued beyond what the window let out: at most the high-water mark and
    # the write that crossed it.
    assert held * chunk - window <= STREAM_HIGH_WATER + chunk

    client.read_body = True
    client.conn.acknowledge_received_data(len(stream.data), sid)
    await client.flush()
    await client.response(sid)
    await wait(finished.wait())
    assert progress == list(range(1, count + 1))
    expected = b"".join(bytes([65 + i % 26]) * chunk for i in range(count))
    assert bytes(stream.data) == expected


# ---------------------------------------------------------------------------
# Informational responses and misuse
# ---------------------------------------------------------------------------


async def test_early_hints_then_the_response(start_server, h2_connect):
    class Hints(BaseRequestHandler):
        async def on_headers(self) -> None:
            self.send_informational(103, [("link", "</style.css>; rel=preload")])
            await asyncio.sleep(0)
            self.send_response(200, [("content-type", "text/html")], b"<html></html>")

    server = await start_server(Hints)
    client = await h2_connect(server)
    stream = await client.get("/")
    kinds = [
        type(e)
        for e in client.events
        if isinstance(e, (h2.events.InformationalResponseReceived, h2.events.ResponseReceived))
    ]
    assert kinds == [h2.events.InformationalResponseReceived, h2.events.ResponseReceived]
    hint = next(e for e in client.events if isinstance(e, h2.events.InformationalResponseReceived))
    assert hint.stream_id == stream.stream_id
    assert (b":status", b"103") in hint.headers
    assert (b"link", b"</style.css>; rel=preload") in hint.headers
    assert stream.status == 200 and bytes(stream.data) == b"<html></html>"


async def test_misuse_of_the_streaming_api_raises(start_server, h2_connect):
    outcomes = {}

    def attempt(name: str, call: Any) -> None:
        try:
            result = call()
            if asyncio.iscoroutine(result):
                result.close()
                outcomes[name] = "coroutine"
            else:
                outcomes[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - recorded for the test
            outcomes[name] = type(exc)

    class Misuse(BaseRequestHandler):
        async def on_headers(self) -> None:
            attempt("informational 200", lambda: self.send_informational(200))
            attempt("informational 101", lambda: self.send_informational(101))
            attempt("informational 99", lambda: self.send_informational(99))
            try:
                await self.write(b"too early")
            except InvalidResponse:
                outcomes["write before begin"] = InvalidResponse
            attempt("informational 100", lambda: self.send_informational(100))
            self.begin_response(200)
            attempt("begin twice", lambda: self.begin_response(200))
            attempt("send_response after begin", lambda: self.send_response(200))
            attempt("informational after begin", lambda: self.send_informational(103))
            await self.write(b"body")
            self.end_response()

    server = await start_server(Misuse)
    client = await h2_connect(server)
    stream = await client.get("/")
    assert stream.status == 200 and bytes(stream.data) == b"body"
    assert outcomes == {
        "informational 200": InvalidResponse,
        "informational 101": InvalidResponse,
        "informational 99": InvalidResponse,
        "write before begin": InvalidResponse,
        "informational 100": "ok",
        "begin twice": ResponseAlreadySent,
        "send_response after begin": ResponseAlreadySent,
        "informational after begin": ResponseAlreadySent,
    }
    informational = [
        e for e in client.events if isinstance(e, h2.events.InformationalResponseReceived)
    ]
    assert [dict(e.headers)[b":status"] for e in informational] == [b"100"]


# ---------------------------------------------------------------------------
# Clients that reset or leave: the task is cancelled
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/sleep", "/read"])
async def test_reset_cancels_the_awaiting_handler(start_server, h2_connect, path):
    waiting = asyncio.Event()
    unwound = asyncio.Event()
    log: List[Any] = []
    handlers: List[BaseRequestHandler] = []

    class Waiter(BaseRequestHandler):
        async def on_headers(self) -> None:
            handlers.append(self)
            try:
                if self.path == b"/sleep":
                    waiting.set()
                    await asyncio.sleep(3600)
                elif self.path == b"/read":
                    async for chunk in self.iter_body():
                        log.append(("chunk", chunk))
                        waiting.set()
                else:
                    self.send_response(200, body=b"still here")
                    return
            except asyncio.CancelledError:
                log.append("cancelled")
                raise
            finally:
                log.append("finally")
                unwound.set()
            log.append("fell through")

        def on_close(self, error_code: int) -> None:
            log.append(("close", self.path, error_code))

    server = await start_server(Waiter)
    client = await h2_connect(server)
    if path == "/read":
        sid = await open_upload(client, path)
        client.conn.send_data(sid, b"first")
        await client.flush()
    else:
        sid = await client.request(path)
    await wait(waiting.wait())
    client.conn.reset_stream(sid, CANCEL)
    await client.flush()
    await wait(unwound.wait())
    await round_trip(client)
    expected = [("chunk", b"first")] if path == "/read" else []
    assert log == expected + [("close", path.encode(), CANCEL), "cancelled", "finally"]
    protocol = protocol_of(server)
    assert protocol.handlers == {}
    task = handlers[0]._task
    assert task is not None
    await wait(asyncio.wait([task]))
    assert task.done() and not task.cancelled() and task.exception() is None
    # The connection serves on.
    other = await client.get("/other")
    assert bytes(other.data) == b"still here"
    assert not client.goaways


async def test_client_dropping_the_connection_mid_write(start_server, h2_connect):
    blocked = asyncio.Event()
    unwound = asyncio.Event()
    log: List[Any] = []
    written = []

    class Endless(BaseRequestHandler):
        async def on_headers(self) -> None:
            self.begin_response(200)
            try:
                for _ in range(1024):  # 64 MiB at most: far past any window
                    if sum(written) + 65536 > STREAM_HIGH_WATER:
                        blocked.set()  # this write crosses the mark: it waits
                    await self.write(b"z" * 65536)
                    written.append(65536)
                log.append("wrote everything")
            except ClientDisconnected:
                log.append("disconnected")
            except asyncio.CancelledError:
                log.append("cancelled")
                raise
            finally:
                unwound.set()

        def on_close(self, error_code: int) -> None:
            log.append(("close", error_code))

    server = await start_server(Endless)
    client = await h2_connect(server)
    client.read_body = False
    sid = await client.request("/")
    await client.wait_for(lambda: client.streams[sid].headers is not None)
    await wait(blocked.wait())
    protocol = protocol_of(server)
    client.abort()
    await wait(unwound.wait())
    assert log[0] == ("close", CANCEL)
    assert log[1:] in (["disconnected"], ["cancelled"])
    assert sum(written) < 1024 * 65536
    assert protocol.handlers == {}
    assert server.connections == set()


async def test_write_after_the_reset_raises_client_disconnected(start_server, h2_connect):
    waiting = asyncio.Event()
    after: List[Any] = []
    done = asyncio.Event()

    class Stubborn(BaseRequestHandler):
        async def on_headers(self) -> None:
            self.begin_response(200)
            try:
                waiting.set()
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                # Swallowed: the stream is gone all the same.
                for call in (lambda: self.write(b"x"), lambda: self.end_response()):
                    try:
                        result = call()
                        if asyncio.iscoroutine(result):
                            await result
                        after.append("ok")
                    except ClientDisconnected:
                        after.append(ClientDisconnected)
                done.set()

    server = await start_server(Stubborn)
    client = await h2_connect(server)
    sid = await client.request("/")
    await wait(waiting.wait())
    client.conn.reset_stream(sid, CANCEL)
    await client.flush()
    await wait(done.wait())
    assert after == [ClientDisconnected, ClientDisconnected]


# ---------------------------------------------------------------------------
# Coroutine callbacks other than on_headers
# ---------------------------------------------------------------------------


class AsyncCallbacks(BaseRequestHandler):
    """A synchronous on_headers, then coroutine on_data and on_request_done:
    each runs as a task of its own."""

    def on_headers(self) -> None:
        self.chunks: List[bytes] = []

    async def on_data(self, data: bytes) -> None:
        self.chunks.append(data)
        await asyncio.sleep(0)
        if self.path == b"/data-fails":
            raise RuntimeError("boom in async on_data")

    async def on_request_done(self) -> None:
        await asyncio.sleep(0)
        if self.path == b"/done-fails":
            raise RuntimeError("boom in async on_request_done")
        if self.path == b"/late-fails":
            self.begin_response(200)
            await self.write(b"partial")
            raise RuntimeError("boom after the response started")
        if self.status is None:
            self.send_response(200, body=b"".join(self.chunks))


async def test_async_on_data_and_on_request_done(start_server, h2_connect, caplog):
    server = await start_server(AsyncCallbacks)
    client = await h2_connect(server)
    body = payload(300_000, seed=3)
    stream = await client.get("/ok", method="POST", body=body)
    assert stream.status == 200 and bytes(stream.data) == body
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("path", "text"),
    [("/data-fails", "boom in async on_data"), ("/done-fails", "boom in async on_request_done")],
)
async def test_async_callback_failing_before_the_response_gives_500(
    start_server, h2_connect, caplog, path, text
):
    server = await start_server(AsyncCallbacks)
    client = await h2_connect(server)
    stream = await client.get(path, method="POST", body=b"one frame")
    assert stream.status == 500
    assert stream.ended and stream.reset is None
    assert b"Internal Server Error" in bytes(stream.data)
    records = failures(caplog, text)
    assert len(records) == 1
    assert "Traceback" in caplog.text
    ok = await client.get("/ok", method="POST", body=b"fine")
    assert bytes(ok.data) == b"fine"


async def test_async_callback_failing_after_the_response_started_resets(
    start_server, h2_connect, caplog
):
    server = await start_server(AsyncCallbacks)
    client = await h2_connect(server)
    sid = await client.request("/late-fails", "POST", body=b"x")
    stream = await client.response(sid)
    assert stream.status == 200
    assert stream.reset == INTERNAL_ERROR and not stream.ended
    assert len(failures(caplog, "boom after the response started")) == 1
    ok = await client.get("/ok", method="POST", body=b"fine")
    assert bytes(ok.data) == b"fine"
    assert not client.goaways


# ---------------------------------------------------------------------------
# HTTP/1.1 (httpx speaks it to a cleartext server by default)
# ---------------------------------------------------------------------------


async def test_http11_streamed_response(start_server, server_url):
    pieces = [b"line %03d\n" % i for i in range(100)]
    progress: List[int] = []

    class Streaming(BaseRequestHandler):
        async def on_headers(self) -> None:
            self.begin_response(200, [("content-type", "text/plain")])
            for i, piece in enumerate(pieces):
                await self.write(piece)
                progress.append(i)
                await asyncio.sleep(0)
            self.end_response()

    server = await start_server(Streaming)
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        received = b""
        async with client.stream("GET", server_url(server, "/")) as response:
            assert response.http_version == "HTTP/1.1"
            assert response.status_code == 200
            assert response.headers["transfer-encoding"] == "chunked"
            async for data in response.aiter_raw():
                received += data
        assert received == b"".join(pieces)
        assert progress == list(range(len(pieces)))
        # The connection is kept for the next request.
        again = await client.get(server_url(server, "/"))
        assert again.content == b"".join(pieces)


async def test_http11_chunked_upload_read_with_iter_body(start_server, server_url):
    seen: asyncio.Queue = asyncio.Queue()
    request_headers = []

    class Reader(BaseRequestHandler):
        async def on_headers(self) -> None:
            request_headers.extend(self.headers)
            size = 0
            digest = hashlib.sha256()
            async for chunk in self.iter_body():
                seen.put_nowait(chunk)
                size += len(chunk)
                digest.update(chunk)
            self.send_response(200, body=f"{size} {digest.hexdigest()}")

    sent = [payload(1000 * (i + 1), seed=10 + i) for i in range(6)]
    got_in_step = []

    async def upload() -> AsyncIterator[bytes]:
        for piece in sent:
            yield piece
            # httpx asks for the next piece once this one is written: the
            # handler has it before the next one leaves.
            got = b""
            while len(got) < len(piece):
                got += await wait(seen.get())
            got_in_step.append(got == piece)

    server = await start_server(Reader)
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        response = await client.post(server_url(server, "/up"), content=upload())
    assert response.http_version == "HTTP/1.1"
    whole = b"".join(sent)
    assert response.text == f"{len(whole)} {sha(whole)}"
    assert got_in_step == [True] * len(sent)
    assert (b"transfer-encoding", b"chunked") in request_headers


async def test_http11_body_left_unread_does_not_stall_the_connection(start_server, server_url):
    Unread.closes = []
    server = await start_server(Unread)
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        for _ in range(2):  # the second on the same connection, after the dropped body
            response = await client.post(server_url(server), content=payload(3 << 20))
            assert response.status_code == 401 and response.content == b"no thanks"
    # The rest of the last body was still on its way in when the answer left.
    for _ in range(int(TIMEOUT / 0.01)):
        if len(Unread.closes) == 2:
            break
        await asyncio.sleep(0.01)
    assert Unread.closes == [NO_ERROR, NO_ERROR]


# ---------------------------------------------------------------------------
# Coroutine callbacks start eagerly (Connection._start)
# ---------------------------------------------------------------------------

REQUEST_ID: Any = __import__("contextvars").ContextVar("request_id", default=None)


async def test_a_coroutine_that_never_suspends_is_answered_in_its_first_step(
    start_server, h2_connect
):
    seen: List[Any] = []

    class Quick(BaseRequestHandler):
        async def on_headers(self) -> None:
            # anyio and Starlette need a task here, eager or not.
            seen.append(asyncio.current_task() is not None)
            self.send_response(200, body=b"quick")

        def on_close(self, error_code: int) -> None:
            # Finished in its first step: no task was kept for it.
            seen.append(self._task)

    server = await start_server(Quick)
    client = await h2_connect(server)
    for _ in range(3):
        response = await client.get("/")
        assert response.status == 200
        assert bytes(response.data) == b"quick"
    await round_trip(client)
    assert seen == [True, None] * 3


async def test_a_coroutine_that_suspends_is_served_with_its_context(start_server, h2_connect):
    seen: List[Any] = []

    class Slow(BaseRequestHandler):
        async def on_headers(self) -> None:
            REQUEST_ID.set(self.stream_id)
            first = asyncio.current_task()
            await asyncio.sleep(0.01)
            # The same task, and what was set before the suspension.
            seen.append((REQUEST_ID.get(), asyncio.current_task() is first, self._task is first))
            self.send_response(200, body=b"slow")

    server = await start_server(Slow)
    client = await h2_connect(server)
    a = await client.get("/a")
    b = await client.get("/b")
    assert (a.status, b.status) == (200, 200)
    assert sorted(seen) == [(1, True, True), (3, True, True)]
    # Nothing leaked into the connection's context.
    assert REQUEST_ID.get() is None


@pytest.mark.parametrize("late", [False, True])
async def test_an_exception_in_a_coroutine_answers_500(start_server, h2_connect, caplog, late):
    class Failing(BaseRequestHandler):
        async def on_headers(self) -> None:
            if late:
                await asyncio.sleep(0)
            raise RuntimeError("boom eager")

    server = await start_server(Failing)
    client = await h2_connect(server)
    response = await client.get("/")
    assert response.status == 500
    assert len(failures(caplog, "boom eager")) == 1


async def test_a_reset_cancels_a_coroutine_suspended_after_its_first_step(start_server, h2_connect):
    cancelled = asyncio.Event()
    waiting = asyncio.Event()

    class Waiting(BaseRequestHandler):
        async def on_headers(self) -> None:
            waiting.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    server = await start_server(Waiting)
    client = await h2_connect(server)
    sid = await client.request("/")
    await wait(waiting.wait())
    client.conn.reset_stream(sid, CANCEL)
    await client.flush()
    await round_trip(client)
    await wait(cancelled.wait())
    assert protocol_of(server).handlers == {}
