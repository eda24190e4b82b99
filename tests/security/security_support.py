"""Helpers of the security tests: a server in a thread of its own (or a
subprocess), attackers that speak raw frames over blocking sockets.

The server runs its own event loop in a background thread, so a test can
attack it with plain blocking sockets; every exception that reaches that loop
(its exception handler) and every ERROR logged by the server is recorded and
fails the test.  Frames are built and parsed with hyperframe and hpack, an
implementation independent of nghttp2.  Every wait is bounded: a hang fails a
test, nothing passes by waiting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional, Tuple

import h2.config
import h2.connection
import h2.events
import hpack
from hyperframe.frame import (
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)

from nghttp2.server import HTTP2Server
from nghttp2.server.limits import Limits
from nghttp2_cffi import ErrorCode

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from security_handlers import Handler  # noqa: E402

#: Upper bound of any single wait (a hang fails the test, it never passes).
TIMEOUT = 10.0
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_STREAM_ID = 2**31 - 1


# ---------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------


def rss_kib(pid: Optional[int] = None) -> int:
    """VmRSS of a process (default: this one) in KiB, from /proc."""
    with open(f"/proc/{pid or 'self'}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/PID/status")


# ---------------------------------------------------------------------------
# The server in a thread
# ---------------------------------------------------------------------------


class _Recorder(logging.Handler):
    def __init__(self, sink: List[str]) -> None:
        super().__init__(logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"log {record.name}: {record.getMessage()}")


class ThreadServer:
    """An HTTP2Server on 127.0.0.1 with its event loop in a daemon thread.

    ``errors``: exceptions that reached the loop's exception handler and
    ERROR records of the ``server`` loggers."""

    def __init__(
        self, handler_class: Any = Handler, server_class: type = HTTP2Server, **kwargs: Any
    ) -> None:
        self.server_class = server_class  # ASGIServer, with an app for handler_class
        self.errors: List[str] = []
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self._on_loop_error)
        self.server: Optional[HTTP2Server] = None
        self._started = threading.Event()
        self._failure: Optional[BaseException] = None
        self._thread = threading.Thread(
            target=self._run, args=(handler_class, kwargs), daemon=True, name="server"
        )
        self._recorder = _Recorder(self.errors)
        logging.getLogger("server").addHandler(self._recorder)
        self._thread.start()
        if not self._started.wait(TIMEOUT):
            raise RuntimeError("the server did not start")
        if self._failure is not None:
            raise self._failure

    def _on_loop_error(self, loop: Any, context: dict) -> None:
        exc = context.get("exception")
        self.errors.append(f"loop: {context.get('message')} {exc!r}")

    def _run(self, handler_class: type, kwargs: dict) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            self.server = self.server_class(("127.0.0.1", 0), handler_class, **kwargs)
            await self.server.start()

        try:
            self.loop.run_until_complete(start())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self._failure = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()

    @property
    def address(self) -> Tuple[str, int]:
        assert self.server is not None
        return self.server.address

    @property
    def limits(self) -> Limits:
        assert self.server is not None
        return self.server.limits

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` in the server's loop and return its result."""
        done: asyncio.Future[Any] = asyncio.run_coroutine_threadsafe(self._apply(fn), self.loop)
        return done.result(TIMEOUT)

    async def _apply(self, fn: Callable[[], Any]) -> Any:
        return fn()

    def run(self, coro: Any, timeout: float = TIMEOUT) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def connections(self) -> int:
        return self.call(lambda: len(self.server.connections))  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.server is not None and self.loop.is_running():
            try:
                self.run(self.server.shutdown(timeout=1.0), TIMEOUT)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(TIMEOUT)
        logging.getLogger("server").removeHandler(self._recorder)
        if not self._thread.is_alive():
            self.loop.close()


# ---------------------------------------------------------------------------
# The server in a subprocess: python -m nghttp2 --handler ...
# ---------------------------------------------------------------------------


class ServerProcess:
    def __init__(self, *flags: str, handler: str = "security_handlers:Handler") -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(HERE), str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        env["PYTHONUNBUFFERED"] = "1"
        self.argv = [
            sys.executable,
            "-m",
            "nghttp2",
            "--handler",
            handler,
            "--no-tls",
            "--port",
            "0",
            "--no-access-log",
            "--log-level",
            "warning",
            *flags,
        ]
        self.proc = subprocess.Popen(
            self.argv, cwd=str(HERE), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        line = b""
        deadline = time.monotonic() + TIMEOUT
        while b"Serving" not in line:
            ready, _, _ = select.select([self.proc.stdout], [], [], deadline - time.monotonic())
            if not ready:
                self.kill()
                raise RuntimeError("the server process did not start")
            line = self.proc.stdout.readline()
            if not line:
                _, err = self.proc.communicate(timeout=TIMEOUT)
                raise RuntimeError(f"the server process failed: {err.decode()[-2000:]}")
        url = line.split(b" on ", 1)[1].split()[0].decode()
        hostport = url.split("//", 1)[1].rstrip("/")
        host, _, port = hostport.rpartition(":")
        self.address = (host, int(port))
        self.pid = self.proc.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        if self.proc.poll() is None:
            return ""
        return self.proc.stderr.read().decode("utf-8", "replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)


# ---------------------------------------------------------------------------
# A raw-frame client over a blocking socket
# ---------------------------------------------------------------------------

GET = [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"), (":path", "/")]


def request(path: str = "/", method: str = "GET", extra: Iterable = ()) -> list:
    return [
        (":method", method),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", path),
        *extra,
    ]


def raw_frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """A frame by hand (for what hyperframe refuses to build)."""
    return (
        len(payload).to_bytes(3, "big")
        + bytes([kind, flags])
        + stream_id.to_bytes(4, "big")
        + payload
    )


def parse_frames(data: bytes) -> List[Frame]:
    """Every whole frame in ``data`` (hyperframe)."""
    frames: List[Frame] = []
    view = memoryview(data)
    while len(view) >= 9:
        frame, length = Frame.parse_frame_header(view[:9])
        if len(view) < 9 + length:
            break
        frame.parse_body(view[9 : 9 + length])
        frames.append(frame)
        view = view[9 + length :]
    return frames


class Closed(Exception):
    """The server closed the connection."""


class RawClient:
    """A client that sends whatever frames it is given and parses what the
    server sends back (``frames``: every frame received, in order)."""

    def __init__(self, address: Tuple[str, int], timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.frames: List[Frame] = []
        self.eof = False
        self.reset = False  # the connection ended with ECONNRESET/EPIPE
        self._buf = bytearray()
        self._seen = 0  # frames already returned by wait_for
        self._decoded: dict = {}  # id(HEADERS frame) -> its fields

    # ---- sending ------------------------------------------------------------

    def send(self, *parts: Any) -> None:
        data = b"".join(p if isinstance(p, (bytes, bytearray)) else p.serialize() for p in parts)
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as exc:
            self.reset = True
            raise Closed(str(exc)) from exc

    def handshake(self, settings: Optional[dict] = None, ack: bool = True) -> SettingsFrame:
        """Preface and SETTINGS; returns the server's SETTINGS (ACKed if ``ack``)."""
        frame = SettingsFrame(0)
        frame.settings = dict(settings or {})
        self.send(PREFACE, frame)
        theirs = self.wait_for(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags)
        if ack:
            self.send(SettingsFrame(0, flags=["ACK"]))
        return theirs

    def headers(
        self, stream_id: int, headers: list, end_stream: bool = True, end_headers: bool = True
    ) -> HeadersFrame:
        flags = (["END_STREAM"] if end_stream else []) + (["END_HEADERS"] if end_headers else [])
        return HeadersFrame(stream_id, self.encoder.encode(headers), flags=flags)

    # ---- receiving ----------------------------------------------------------

    def _parse(self) -> None:
        buf = self._buf
        while len(buf) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(bytes(buf[:9])))
            if len(buf) < 9 + length:
                return
            frame.parse_body(memoryview(bytes(buf[9 : 9 + length])))
            del buf[: 9 + length]
            self.frames.append(frame)

    def _recv(self, timeout: Optional[float]) -> bool:
        """Read once (waiting at most ``timeout``); False on timeout."""
        if self.eof:
            return False
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return False
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
            data = b""
        if not data:
            self.eof = True
            return True
        self._buf += data
        self._parse()
        return True

    def drain(self) -> None:
        """Take whatever the server sent so far, without waiting."""
        while self._recv(0) and not self.eof:
            pass

    def wait_for(self, predicate: Callable[[Frame], Any], timeout: float = TIMEOUT) -> Frame:
        """The first frame not returned before that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            while self._seen < len(self.frames):
                frame = self.frames[self._seen]
                self._seen += 1
                if predicate(frame):
                    return frame
            if self.eof:
                raise Closed(f"closed by the server; frames: {self.summary()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no such frame within {timeout}s; frames: {self.summary()}")
            self._recv(left)

    def wait_closed(self, timeout: float = TIMEOUT) -> List[Frame]:
        """Read until the server closes; returns every frame received."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"still open after {timeout}s; frames: {self.summary()}")
            self._recv(left)
        return self.frames

    def goaway(self, timeout: float = TIMEOUT) -> GoAwayFrame:
        """The next GOAWAY (all of them are in :attr:`frames`)."""
        return self.wait_for(lambda f: isinstance(f, GoAwayFrame), timeout)

    def goaways(self) -> List[GoAwayFrame]:
        return [f for f in self.frames if isinstance(f, GoAwayFrame)]

    def rst(self, stream_id: int, timeout: float = TIMEOUT) -> RstStreamFrame:
        return self.wait_for(
            lambda f: isinstance(f, RstStreamFrame) and f.stream_id == stream_id, timeout
        )

    def response(self, stream_id: int, timeout: float = TIMEOUT) -> Tuple[int, bytes]:
        """(status, body) of a stream, from every frame received on it so
        far and those to come; RST_STREAM or closing fails."""
        deadline = time.monotonic() + timeout
        while True:
            status = None
            body = bytearray()
            for frame in [f for f in self.frames if f.stream_id == stream_id]:
                if isinstance(frame, RstStreamFrame):
                    raise AssertionError(
                        f"stream {stream_id} reset: {ErrorCode(frame.error_code)!r}"
                    )
                if isinstance(frame, HeadersFrame):
                    fields = dict(self._decode(frame))
                    if fields.get(b":status", b"1")[:1] != b"1":
                        status = int(fields[b":status"])
                elif frame.type == 0x0:  # DATA
                    body += frame.data
                if "END_STREAM" in frame.flags:
                    assert status is not None
                    self._seen = max(self._seen, self.frames.index(frame) + 1)
                    return status, bytes(body)
            if self.eof:
                raise Closed(f"closed by the server; frames: {self.summary()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no response within {timeout}s; frames: {self.summary()}")
            self._recv(left)

    def _decode(self, frame: HeadersFrame) -> list:
        # The server's dynamic table spans all streams: decode every header
        # block in order once, and remember the result per frame.
        cache = self._decoded
        if id(frame) not in cache:
            for f in self.frames:
                if isinstance(f, HeadersFrame) and id(f) not in cache:
                    cache[id(f)] = self.decoder.decode(f.data, raw=True)
                if f is frame:
                    break
        return cache[id(frame)]

    def open(self) -> bool:
        """Whether the server still keeps the connection (a PING is answered)."""
        try:
            self.send(PingFrame(0, opaque_data=b"stillthr"))
            self.wait_for(
                lambda f: isinstance(f, PingFrame) and f.opaque_data == b"stillthr", TIMEOUT
            )
        except (Closed, TimeoutError):
            return False
        return True

    def summary(self, last: int = 8) -> str:
        shown = [_describe(f) for f in self.frames[-last:]]
        return f"{len(self.frames)} frame(s), last: {', '.join(shown)}; eof={self.eof}"

    def close(self) -> None:
        self.sock.close()


def _describe(frame: Frame) -> str:
    if isinstance(frame, GoAwayFrame):
        return f"GOAWAY({frame.last_stream_id}, {_code(frame.error_code)})"
    if isinstance(frame, RstStreamFrame):
        return f"RST_STREAM({frame.stream_id}, {_code(frame.error_code)})"
    return f"{type(frame).__name__}({frame.stream_id})"


def _code(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


# ---------------------------------------------------------------------------
# Floods
# ---------------------------------------------------------------------------


class FloodResult:
    def __init__(self, sent: int, goaway: Optional[GoAwayFrame], closed: bool, seconds: float):
        #: Attack units sent when the server's GOAWAY (or the close) was seen.
        self.sent = sent
        self.goaway = goaway
        self.closed = closed
        self.seconds = seconds

    @property
    def code(self) -> Optional[ErrorCode]:
        return None if self.goaway is None else ErrorCode(self.goaway.error_code)

    def __repr__(self) -> str:
        return (
            f"FloodResult(sent={self.sent}, code={self.code!r}, closed={self.closed}, "
            f"{self.seconds:.2f}s)"
        )


def flood(
    client: RawClient,
    unit: Callable[[int], bytes],
    count: int,
    *,
    batch: int = 20,
    sync: bool = True,
    seconds: float = 20.0,
) -> FloodResult:
    """Send ``unit(i)`` for i in range(count), ``batch`` at a time; stop at
    the first GOAWAY or when the server closes.  Bounded by ``count`` and
    ``seconds``.

    ``sync``: after each batch, a PING whose ACK says the server has taken
    the batch, so ``sent`` is exact to one batch (the PINGs themselves add
    one glitch per batch).  Without it (inside a header block, where a PING
    is not allowed) the client waits up to 50 ms for an answer after each
    batch, and ``sent`` is an upper bound: the server takes the bytes in
    reads of its own size and answers when it gets to them."""
    start = time.monotonic()
    sent = 0
    while sent < count and time.monotonic() - start < seconds:
        n = min(batch, count - sent)
        data = b"".join(unit(sent + i) for i in range(n))
        opaque = (sent + n).to_bytes(8, "big")
        try:
            if sync:
                client.send(data + PingFrame(0, opaque_data=opaque).serialize())
                client.wait_for(
                    lambda f, opaque=opaque: (
                        isinstance(f, GoAwayFrame)
                        or (isinstance(f, PingFrame) and f.opaque_data == opaque)
                    )
                )
            else:
                client.send(data)
                client._recv(0.05)
                client.drain()
        except Closed:
            sent += n
            break
        sent += n
        if client.goaways() or client.eof:
            break
    deadline = time.monotonic() + (0.0 if sync else 1.0)
    while not client.goaways() and not client.eof and time.monotonic() < deadline:
        client._recv(deadline - time.monotonic())
    goaways = client.goaways()
    return FloodResult(sent, goaways[0] if goaways else None, client.eof, time.monotonic() - start)


# ---------------------------------------------------------------------------
# A well-behaved client: h2 over a blocking socket
# ---------------------------------------------------------------------------


def fetch(
    address: Tuple[str, int],
    path: str = "/",
    method: str = "GET",
    body: Optional[bytes] = None,
    timeout: float = TIMEOUT,
) -> Tuple[int, bytes]:
    """One request by the h2 package: (status, body)."""
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    conn.initiate_connection()
    deadline = time.monotonic() + timeout
    with socket.create_connection(address, timeout=timeout) as sock:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, request(path, method), end_stream=body is None)
        if body is not None:
            conn.send_data(sid, body, end_stream=True)
        sock.sendall(conn.data_to_send())
        status = None
        data = bytearray()
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before the response; got {status} {bytes(data)!r}")
            for event in conn.receive_data(chunk):
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, sid)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == sid:
                    assert status is not None
                    return status, bytes(data)
                elif isinstance(event, h2.events.StreamReset) and event.stream_id == sid:
                    raise ConnectionError(f"stream reset: {event.error_code!r}")
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise ConnectionError(f"GOAWAY {event.error_code!r}")
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
    raise TimeoutError(f"no response within {timeout}s")


def served(address: Tuple[str, int]) -> bool:
    """A well-behaved client gets ``hello``."""
    return fetch(address) == (200, b"hello")
