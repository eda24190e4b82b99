"""ClientConnection: the client side of one HTTP/2 connection.

An :class:`asyncio.Protocol` around a client :class:`~nghttp2_cffi.Session`:
it feeds received bytes to the session, hands each stream's events to that
stream's *sink*, and writes what the session produces no further ahead than
the transport's write buffer allows.

Flow control follows consumption: the session runs with
``auto_window_update=False`` and a sink calls :meth:`ClientConnection.consume`
once its reader has taken the bytes, so a stream's unread data is bounded by
its window (``stream_window``).  The connection window is opened to its
maximum, so an unread stream never stalls the others.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl as _ssl
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from nghttp2_cffi import (
    CallbackError,
    DataReceived,
    DataRequested,
    ErrorCode,
    GoAwayReceived,
    GoAwaySent,
    HeaderListTooLargeError,
    InformationalResponseReceived,
    NGHTTP2Error,
    PingAcknowledged,
    Priority,
    ProtocolError,
    PushPromiseReceived,
    ResponseReceived,
    Session,
    SessionConfig,
    SettingCode,
    SettingsReceived,
    StreamClosed,
    StreamReset,
    TrailersReceived,
)
from nghttp2_cffi.config import DEFAULT_MAX_HEADER_LIST_SIZE
from nghttp2_cffi.session import IN_PLACE_READ

from .errors import (
    ClientError,
    ConnectError,
    ConnectionClosedError,
    ConnectTimeout,
    GoAwayError,
    NegotiationError,
    PoolTimeout,
    RemoteProtocolError,
    StreamResetError,
)

log = logging.getLogger("nghttp2.client")

#: Header fields as nghttp2_cffi gives and takes them.
Fields = List[Tuple[bytes, bytes]]

#: How much to take from nghttp2 per write: request bodies go out in pieces
#: this size, so the transport's pause_writing() stops them in time.
WRITE_CHUNK = 256 * 1024
#: Default receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE):
#: the most a stream buffers while nobody reads it.
DEFAULT_STREAM_WINDOW = 1 << 20
#: The receive window of the connection: the largest allowed.  Streams are
#: bounded by their own windows; this one must never be what stalls them.
CONNECTION_WINDOW = (1 << 31) - 1
#: Streams the server may push at once (our SETTINGS_MAX_CONCURRENT_STREAMS).
DEFAULT_MAX_PUSHES = 100
_UNLIMITED = (1 << 31) - 1
#: The most read from the socket at once (asyncio's own read size).
READ_SIZE = 256 * 1024
#: One read buffer per event loop, shared by its connections (reads are
#: never interleaved within a loop, and each is copied out at once).
_read_buffers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, memoryview] = (
    weakref.WeakKeyDictionary()
)


def _read_buffer(loop: asyncio.AbstractEventLoop) -> memoryview:
    buf = _read_buffers.get(loop)
    if buf is None:
        buf = _read_buffers[loop] = memoryview(bytearray(READ_SIZE))
    return buf


class StreamSink:
    """What a stream's events go to.  Every method may be overridden."""

    #: Set by the connection when the stream took a concurrency slot.
    slot = False

    def on_informational(self, headers: Fields) -> None:
        """A 1xx response."""

    def on_response(self, headers: Fields, end_stream: bool) -> None:
        """The final response's header block."""

    def on_data(self, conn: ClientConnection, stream_id: int, data: bytes, end: bool) -> None:
        """A body chunk: call ``conn.consume(stream_id, len(data))`` once read."""
        conn.consume(stream_id, len(data))

    def on_trailers(self, headers: Fields) -> None:
        """The trailing header block; the response is complete."""

    def on_reset(self, error_code: int) -> None:
        """The server sent RST_STREAM."""

    def on_closed(self, error_code: int, error: Optional[ClientError]) -> None:
        """The stream closed.  ``error``: why, when it did not close cleanly."""

    def on_push_promise(self, promised_stream_id: int, headers: Fields) -> Optional[StreamSink]:
        """The server promised a push on this stream: return the pushed
        stream's sink to accept it, None to refuse it (RST_STREAM CANCEL)."""
        return None

    def on_data_requested(self) -> None:
        """The request body sent everything it was given and may take more."""


class Deadlines:
    """Waits that give up after the same number of seconds, by the
    future each waits on.  They expire in the order they began, so one
    timer serves them all: a wait costs a dict entry instead of a
    ``call_later`` (a TimerHandle pushed on the loop's heap, cancelled and
    cleared from it again), one per request.  An expired wait's future
    gets the result False."""

    __slots__ = ("loop", "timeout", "timer", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        #: Waiting futures and their deadlines, earliest first.
        self.waiters: Dict[asyncio.Future[Any], float] = {}
        self.timer: Optional[asyncio.TimerHandle] = None

    def add(self, waiter: asyncio.Future[Any]) -> None:
        deadline = self.loop.time() + self.timeout
        self.waiters[waiter] = deadline
        if self.timer is None:
            self.timer = self.loop.call_at(deadline, self._expire)

    def discard(self, waiter: asyncio.Future[Any]) -> None:
        self.waiters.pop(waiter, None)

    def _expire(self) -> None:
        self.timer = None
        now = self.loop.time()
        waiters = self.waiters
        expired = []
        for waiter, deadline in waiters.items():
            if deadline > now:
                self.timer = self.loop.call_at(deadline, self._expire)
                break
            expired.append(waiter)
        for waiter in expired:
            del waiters[waiter]
            if not waiter.done():
                waiter.set_result(False)


class Unavailable(Exception):
    """Internal: the connection takes no new streams (GOAWAY, closed); the
    request was not sent and may go on a new connection.  ``reason`` is what
    to raise if it cannot."""

    def __init__(self, reason: ClientError) -> None:
        self.reason = reason
        super().__init__(str(reason))


class ClientConnection(asyncio.BufferedProtocol):
    """One HTTP/2 connection to a server, client side."""

    def __init__(
        self,
        *,
        enable_push: bool = True,
        stream_window: int = DEFAULT_STREAM_WINDOW,
        max_pushes: int = DEFAULT_MAX_PUSHES,
        settings: Optional[Dict[int, int]] = None,
        max_header_list_size: Optional[int] = DEFAULT_MAX_HEADER_LIST_SIZE,
        batch_writes: bool = True,
    ) -> None:
        local: Dict[int, int] = {
            SettingCode.ENABLE_PUSH: int(bool(enable_push)),
            SettingCode.MAX_CONCURRENT_STREAMS: max_pushes,
            SettingCode.INITIAL_WINDOW_SIZE: stream_window,
            # RFC 9218: this client signals priorities with `priority` fields
            # and PRIORITY_UPDATE, never with RFC 7540's PRIORITY.
            SettingCode.NO_RFC7540_PRIORITIES: 1,
        }
        if settings:
            local.update(settings)
        self.local_settings = local
        # nghttp2_cffi's safe defaults (glitch bucket, flood limits) with a
        # header-list bound the caller may raise: a response header block
        # past it (an HPACK bomb) ends the connection (RemoteProtocolError).
        self.session = Session(
            "client",
            config=SessionConfig(
                settings=local,
                auto_window_update=False,
                max_header_list_size=max_header_list_size,
            ),
        )
        self.session.set_local_window_size(CONNECTION_WINDOW)
        self.transport: Optional[asyncio.Transport] = None
        self.streams: dict[int, StreamSink] = {}
        self.loop = asyncio.get_running_loop()
        self._read_buffer = _read_buffer(self.loop)
        #: The server's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until said).
        self.max_outbound = _UNLIMITED
        self.open_outbound = 0
        self._slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.goaway: Optional[GoAwayReceived] = None
        #: Why the connection ended (None while it is up).
        self.closed_reason: Optional[ClientError] = None
        self._failure: Optional[ClientError] = None  # what ends it (protocol, ALPN)
        self._settings_seen: asyncio.Future[None] = self.loop.create_future()
        self._lost: asyncio.Future[None] = self.loop.create_future()
        self._pings: dict[bytes, asyncio.Future[None]] = {}
        self._deadlines: dict[float, Deadlines] = {}
        self._ping_count = 0
        self._first_bytes = b""
        self._paused = False
        self._busy = False
        self._again = False
        self._flush_scheduled = False
        #: Requests and acknowledgements wait for the end of the loop turn
        #: to go out together (see flush_soon); False writes them at once.
        self.batch_writes = batch_writes
        self._closing = False
        self.peername: Any = None

    # ---- asyncio.Protocol ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peername = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            protocol = ssl_object.selected_alpn_protocol()
            if protocol != "h2":
                self._failure = NegotiationError(
                    f"the server did not select HTTP/2 with ALPN (selected {protocol!r}); "
                    "it may only speak HTTP/1.1"
                )
                transport.close()
                return
        transport.set_write_buffer_limits(high=WRITE_CHUNK)
        self.flush()

    # A plain Protocol gets a fresh 256 KiB bytes per read, which the
    # allocator maps, shrinks and unmaps each time (mmap, mremap, munmap:
    # measured with strace, one of each per sync httpx request).
    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        # A large read (a body) is parsed in the buffer (IN_PLACE_READ).
        view = self._read_buffer[:nbytes]
        self.data_received(view if nbytes >= IN_PLACE_READ else bytes(view))

    def data_received(self, data: Union[bytes, memoryview]) -> None:
        if self.closed_reason is not None or self.transport is None:
            return
        if not self._settings_seen.done() and len(self._first_bytes) < 64:
            self._first_bytes += data[:64]
        try:
            events = self.session.receive_data(data)
        except ProtocolError as exc:
            self._failure = self._failure or self._protocol_failure(exc)
            log.info("%s: closing the connection: %s", self.peername, self._failure)
            events = self.session.events()
        self._busy = True
        try:
            if events:
                self._dispatch(events)
        finally:
            self._busy = False
        self.flush()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self.flush()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self.closed_reason is not None:
            return
        reason = self._failure
        if reason is None:
            if self.goaway is not None:
                g = self.goaway
                reason = GoAwayError(g.last_stream_id, g.error_code, g.debug_data)
            elif self._closing:
                reason = ConnectionClosedError("the client closed the connection")
            else:
                detail = f": {exc}" if exc else ""
                reason = ConnectionClosedError(f"the server closed the connection{detail}")
        self.closed_reason = reason
        streams, self.streams = self.streams, {}
        for sid, sink in streams.items():
            self._close_sink(sid, sink, ErrorCode.CANCEL, self._stream_error(sid, reason))
        self._fail_waiters(reason)
        for fut in self._pings.values():
            if not fut.done():
                fut.set_exception(reason)
        self._pings.clear()
        for deadlines in self._deadlines.values():
            if deadlines.timer is not None:
                deadlines.timer.cancel()
        self._deadlines.clear()
        if not self._settings_seen.done():
            self._settings_seen.set_exception(reason)
            self._settings_seen.exception()  # handshake() re-raises it; mark it seen
        if not self._lost.done():
            self._lost.set_result(None)
        self.session.close()
        self.transport = None

    # ---- connection state ----------------------------------------------

    @property
    def is_available(self) -> bool:
        """Whether new requests may start on this connection."""
        return (
            self.closed_reason is None
            and self.goaway is None
            and not self._closing
            and self._failure is None
        )

    @property
    def is_idle(self) -> bool:
        return not self.streams and not self._slot_waiters

    async def handshake(self) -> None:
        """Wait for the server's first SETTINGS (its connection preface)."""
        await asyncio.shield(self._settings_seen)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._lost)

    def _unavailable(self) -> Unavailable:
        if self.closed_reason is not None:
            return Unavailable(self.closed_reason)
        if self._failure is not None:
            return Unavailable(self._failure)
        if self.goaway is not None:
            g = self.goaway
            return Unavailable(GoAwayError(g.last_stream_id, g.error_code, g.debug_data))
        return Unavailable(ConnectionClosedError("the connection is closing"))

    def deadlines(self, timeout: float) -> Deadlines:
        """The waits of this connection that give up after ``timeout`` seconds."""
        d = self._deadlines.get(timeout)
        if d is None:
            d = self._deadlines[timeout] = Deadlines(self.loop, timeout)
        return d

    # ---- concurrency slots (the server's MAX_CONCURRENT_STREAMS) ----------

    def take_slot(self) -> bool:
        """Take a free stream now if there is one (nobody waiting first)."""
        if self.open_outbound < self.max_outbound and not self._slot_waiters and self.is_available:
            self.open_outbound += 1
            return True
        return False

    async def acquire_slot(self, timeout: Optional[float] = None) -> None:
        """Wait until the server allows one more stream, and take it.

        Raises :class:`Unavailable` when the connection stops taking streams,
        :class:`~client.errors.PoolTimeout` after waiting ``timeout`` seconds.
        """
        if not self.is_available:
            raise self._unavailable()
        if self.open_outbound < self.max_outbound and not self._slot_waiters:
            self.open_outbound += 1
            return
        fut: asyncio.Future[None] = self.loop.create_future()
        self._slot_waiters.append(fut)
        try:
            if timeout is None:
                await fut
            else:
                try:
                    await asyncio.wait_for(fut, timeout)
                except asyncio.TimeoutError:
                    raise PoolTimeout(
                        f"no free stream within {timeout}s (the server allows "
                        f"{self.max_outbound} at once)"
                    ) from None
        except (asyncio.CancelledError, PoolTimeout):
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.release_slot()  # granted just as we were cancelled
            else:
                try:
                    self._slot_waiters.remove(fut)
                except ValueError:
                    pass
            raise

    def release_slot(self) -> None:
        self.open_outbound -= 1
        self._grant_slots()

    def _grant_slots(self) -> None:
        waiters = self._slot_waiters
        while waiters and self.open_outbound < self.max_outbound:
            fut = waiters.popleft()
            if not fut.done():
                self.open_outbound += 1
                fut.set_result(None)

    def _fail_waiters(self, reason: ClientError) -> None:
        waiters, self._slot_waiters = self._slot_waiters, collections.deque()
        for fut in waiters:
            if not fut.done():
                fut.set_exception(Unavailable(reason))

    # ---- streams ---------------------------------------------------------

    def submit(
        self, headers: Fields, body: Any, end_stream: bool, sink: StreamSink, *, slot: bool = False
    ) -> int:
        """Send a request; its events go to ``sink``.  Returns the stream id.

        ``slot``: the caller holds a slot from :meth:`acquire_slot`, released
        when the stream closes.  Raises :class:`Unavailable` if the
        connection no longer takes streams.
        """
        if not self.is_available:
            raise self._unavailable()
        try:
            sid = self.session.send_request(headers, body, end_stream=end_stream)
        except NGHTTP2Error as exc:
            if self.goaway is not None or self.closed_reason is not None:
                raise self._unavailable() from exc
            raise
        sink.slot = slot
        self.streams[sid] = sink
        self.flush_soon()
        return sid

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        if stream_id in self.streams and self.closed_reason is None:
            self.session.send_data(stream_id, data, end_stream=end_stream)
            self.flush()

    def send_priority_update(self, stream_id: int, priority: Priority) -> None:
        """RFC 9218 PRIORITY_UPDATE for ``stream_id`` (sent only to servers
        that announced SETTINGS_NO_RFC7540_PRIORITIES = 1)."""
        if stream_id in self.streams and self.closed_reason is None:
            self.session.send_priority_update(stream_id, priority)
            self.flush()

    def consume(self, stream_id: int, amount: int) -> None:
        """``amount`` body bytes of ``stream_id`` were read: let the server
        send as much again."""
        if amount and self.closed_reason is None:
            self.session.acknowledge_received_data(amount, stream_id)
            self.flush_soon()

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.CANCEL) -> None:
        """Cancel a stream; its sink gets ``on_closed`` when it closes."""
        if self.closed_reason is not None:
            return
        try:
            self.session.reset_stream(stream_id, error_code)
        except NGHTTP2Error:
            log.debug("cannot reset stream %d", stream_id, exc_info=True)
        self.flush()

    async def ping(self) -> float:
        """Send a PING; return the seconds until its acknowledgement."""
        if self.closed_reason is not None:
            raise self.closed_reason
        self._ping_count += 1
        data = self._ping_count.to_bytes(8, "big")
        fut: asyncio.Future[None] = self.loop.create_future()
        self._pings[data] = fut
        start = self.loop.time()
        self.session.ping(data)
        self.flush()
        try:
            await fut
        finally:
            self._pings.pop(data, None)
        return self.loop.time() - start

    def close(self, error_code: int = ErrorCode.NO_ERROR) -> None:
        """GOAWAY, then close the transport once it is written."""
        if self.closed_reason is not None or self._closing:
            return
        self._closing = True
        if self.transport is None:
            return
        try:
            self.session.terminate(error_code)
        except NGHTTP2Error:
            log.debug("cannot send GOAWAY", exc_info=True)
        self.flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    # ---- writing ---------------------------------------------------------

    def flush_soon(self) -> None:
        """Flush once the loop has run what is ready: requests started
        together (and the WINDOW_UPDATEs of bodies read together) go out in
        one write.  Measured: 100 concurrent GETs through httpx spent a
        sixth of their client CPU in one socket send each.

        Without ``batch_writes`` (one request at a time, as a synchronous
        caller sends them) it flushes now: a loop turn less per request."""
        if not self.batch_writes:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def flush(self) -> None:
        """Write what nghttp2 has for the server, until the transport pushes back."""
        if self._busy:
            self._again = True
            return
        transport = self.transport
        if transport is None or self.closed_reason is not None:
            return
        session = self.session
        self._busy = True
        try:
            while not self._paused:
                self._again = False
                try:
                    data = session.data_to_send(WRITE_CHUNK)
                except CallbackError as exc:
                    # A reader body failed; the session reset its stream.
                    log.warning("%s: a request body failed: %r", self.peername, exc.__cause__)
                    continue
                events = session.events()
                if data:
                    transport.write(data)
                if events:
                    self._dispatch(events)
                elif len(data) < WRITE_CHUNK and not self._again:
                    break
        finally:
            self._busy = False
        if self.transport is not None and not session.want_read and not session.want_write:
            self.transport.close()

    # ---- events to sinks -------------------------------------------------

    def _dispatch(self, events: List[Any]) -> None:
        streams = self.streams
        for event in events:
            cls = event.__class__
            if cls is DataReceived:
                sid = event.stream_id
                sink = streams.get(sid)
                if sink is not None:
                    sink.on_data(self, sid, event.data, event.end_stream)
                elif event.data:
                    self.session.acknowledge_received_data(len(event.data), sid)
            elif cls is ResponseReceived:
                sink = streams.get(event.stream_id)
                if sink is not None:
                    sink.on_response(event.headers, event.end_stream)
            elif cls is StreamClosed:
                sid = event.stream_id
                sink = streams.pop(sid, None)
                if sink is not None:
                    error = None
                    if event.error_code:
                        error = self._reset_error(sid, event.error_code)
                    self._close_sink(sid, sink, event.error_code, error)
            elif cls is DataRequested:
                sink = streams.get(event.stream_id)
                if sink is not None:
                    sink.on_data_requested()
            elif cls is TrailersReceived:
                sink = streams.get(event.stream_id)
                if sink is not None:
                    sink.on_trailers(event.headers)
            elif cls is InformationalResponseReceived:
                sink = streams.get(event.stream_id)
                if sink is not None:
                    sink.on_informational(event.headers)
            elif cls is StreamReset:
                sink = streams.get(event.stream_id)
                if sink is not None:
                    sink.on_reset(event.error_code)
            elif cls is PushPromiseReceived:
                self._push_promise(event)
            elif cls is SettingsReceived:
                self._settings(event.settings)
            elif cls is GoAwayReceived:
                self._goaway(event)
            elif cls is GoAwaySent:
                self._goaway_sent(event)
            elif cls is PingAcknowledged:
                fut = self._pings.get(event.data)
                if fut is not None and not fut.done():
                    fut.set_result(None)

    def _close_sink(
        self, sid: int, sink: StreamSink, error_code: int, error: Optional[ClientError]
    ) -> None:
        if sink.slot:
            sink.slot = False
            self.release_slot()
        try:
            sink.on_closed(error_code, error)
        except Exception:
            log.exception("stream %d: on_closed failed", sid)

    def _push_promise(self, event: PushPromiseReceived) -> None:
        parent = self.streams.get(event.stream_id)
        child = None
        if parent is not None:
            try:
                child = parent.on_push_promise(event.promised_stream_id, event.headers)
            except Exception:
                log.exception("stream %d: on_push_promise failed", event.stream_id)
        if child is None:
            self.session.reset_stream(event.promised_stream_id, ErrorCode.CANCEL)
        else:
            self.streams[event.promised_stream_id] = child

    def _settings(self, settings: Dict[int, int]) -> None:
        limit = settings.get(SettingCode.MAX_CONCURRENT_STREAMS)
        if limit is not None:
            self.max_outbound = limit
            self._grant_slots()
        if not self._settings_seen.done():
            self._settings_seen.set_result(None)

    def _goaway(self, event: GoAwayReceived) -> None:
        self.goaway = event
        log.debug("%s: GOAWAY %s", self.peername, event)
        # Requests still waiting for a slot were never sent: they may go
        # elsewhere.  Streams above last_stream_id are closed by nghttp2
        # with REFUSED_STREAM (see _reset_error).
        self._fail_waiters(GoAwayError(event.last_stream_id, event.error_code, event.debug_data))

    def _goaway_sent(self, event: GoAwaySent) -> None:
        # nghttp2 ends the session itself on some peer errors (no SETTINGS
        # first, for one) without failing receive_data: its GOAWAY says so.
        if event.error_code and self._failure is None and not self._closing:
            code = ErrorCode(event.error_code)
            if not self._settings_seen.done():
                self._failure = self._preface_failure(f"GOAWAY {code.name} sent")
            else:
                self._failure = RemoteProtocolError(
                    f"the server broke the HTTP/2 protocol (GOAWAY {code.name} sent)", code
                )

    # ---- errors ----------------------------------------------------------

    def _reset_error(self, sid: int, error_code: int) -> ClientError:
        g = self.goaway
        if g is not None and sid > g.last_stream_id and sid & 1:
            return GoAwayError(g.last_stream_id, g.error_code, g.debug_data, stream_id=sid)
        if self._failure is not None:
            return self._failure
        return StreamResetError(sid, error_code)

    def _stream_error(self, sid: int, reason: ClientError) -> ClientError:
        if isinstance(reason, GoAwayError) and sid & 1:
            return GoAwayError(
                reason.last_stream_id, reason.error_code, reason.debug_data, stream_id=sid
            )
        return reason

    def _protocol_failure(self, exc: ProtocolError) -> ClientError:
        if isinstance(exc, HeaderListTooLargeError):
            return RemoteProtocolError(
                f"the server sent a header list over max_header_list_size ({exc.limit} bytes, "
                "RFC 9113 sizes): an HPACK bomb, or a response that needs "
                "Client(max_header_list_size=...) raised",
                exc.error_code,
            )
        if not self._settings_seen.done():
            return self._preface_failure(exc.message)
        return RemoteProtocolError(
            f"the server broke the HTTP/2 protocol: {exc.message}", exc.error_code
        )

    def _preface_failure(self, detail: str) -> NegotiationError:
        head = self._first_bytes
        if head.startswith(b"HTTP/"):
            status_line = head.split(b"\r")[0].decode("latin-1")
            return NegotiationError(
                f"the server answered the HTTP/2 preface with HTTP/1 ({status_line!r}); "
                "it does not support h2c with prior knowledge"
            )
        return NegotiationError(
            f"the server did not answer with an HTTP/2 connection preface ({detail})"
        )


async def open_connection(
    factory: Callable[[], ClientConnection],
    host: str,
    port: int,
    *,
    ssl: Optional[_ssl.SSLContext],
    server_hostname: Optional[str],
    timeout: Optional[float],
    origin: str,
) -> ClientConnection:
    """Connect and wait for the server's first SETTINGS (within ``timeout``
    seconds in all); failures raise :class:`~client.errors.ClientError`."""
    loop = asyncio.get_running_loop()

    async def open_and_handshake() -> ClientConnection:
        _, conn = await loop.create_connection(
            factory, host, port, ssl=ssl, server_hostname=server_hostname
        )
        try:
            await conn.handshake()
        except BaseException:
            conn.abort()
            raise
        return conn

    try:
        if timeout is None:
            return await open_and_handshake()
        return await asyncio.wait_for(open_and_handshake(), timeout)
    except asyncio.TimeoutError:
        raise ConnectTimeout(f"connecting to {origin} took more than {timeout}s") from None
    except ClientError:
        raise
    except _ssl.SSLError as exc:
        raise ConnectError(f"TLS with {origin} failed: {exc}") from exc
    except OSError as exc:
        raise ConnectError(f"cannot connect to {origin}: {exc}") from exc
