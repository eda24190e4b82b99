"""What every connection does for its streams, whatever the protocol.

:class:`Connection` is the base of :class:`~server.protocol.HTTP2Protocol`
and :class:`~server.http11.HTTP11Protocol`.  They differ only in how a
response travels, and implement that as one small interface (see
:mod:`server.response`, where the response API is written once above it):
``send_head``, ``send_data``, ``send_trailers``, ``send_interim``,
``reset``, and ``consumed`` for reading the body.

Here, once for both: the streams and their handlers, running callbacks (a
coroutine becomes a task started eagerly, see :mod:`server.tasks`; an
``async def on_data`` is fed the body in order; an exception answers 500),
the connection cap, the timeouts (one timer per server ticks over them
all), closing streams and the access log.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from nghttp2_cffi import DEFAULT_PRIORITY, ErrorCode, Priority

from .errors import ClientDisconnected, InvalidResponse, PushDisabled
from .response import GENERATOR_CHUNK, STREAM_HIGH_WATER, Responder, peer
from .stream import Inbox, Stream
from .tasks import CoroutineCallbacks

__all__ = [
    "GENERATOR_CHUNK",
    "STREAM_HIGH_WATER",
    "TOO_LARGE_BODY",
    "WRITE_CHUNK",
    "Connection",
    "access_log",
    "content_length",
    "peer",
]

from .handler import BaseRequestHandler

if TYPE_CHECKING:
    from .handler import Fields
    from .limits import Limits
    from .server import HTTP2Server

log = logging.getLogger("nghttp2.server")
access_log = logging.getLogger("nghttp2.server.access")

# How much to take from nghttp2 per write (HTTP/1.1: the write buffer's high
# mark too): big bodies go out in pieces this size, so the transport's
# pause_writing() stops them in time.
WRITE_CHUNK = 256 * 1024
_CANCEL = int(ErrorCode.CANCEL)
TOO_LARGE_BODY = b"Payload Too Large\n"


class Connection(Responder, CoroutineCallbacks, asyncio.BufferedProtocol):
    """The protocol-neutral part of a server connection (``http2`` in handlers)."""

    #: The protocol version, as access log lines and ``scope["http_version"]`` say it.
    http_version = "2"
    #: Coroutine callbacks run to their first suspension at once
    #: (:meth:`_start`), not from a task's first step in the next loop round.
    eager_start = True

    #: The ASGI adapter's facts about this connection (made by its first request).
    asgi_info: Any = None

    #: In the server's flush batch for this loop round (flush_soon).
    _flush_queued = False

    def __init__(self, server: HTTP2Server) -> None:
        self.server = server
        self.handler_class = server.handler_class
        self.limits: Limits = server.limits
        # What the handler class overrides (see _traits), looked up per
        # request: kept here for the connection's own handler class.
        self._handler_traits = _traits(self.handler_class)
        self.transport: Optional[asyncio.Transport] = None
        #: The open streams by id, each with its handler.
        self.streams: Dict[int, Stream] = {}
        self.client_address: Any = None
        self.client_certificate: Optional[Dict[str, Any]] = None
        self.scheme = b"http"
        self._loop = asyncio.get_running_loop()
        # True inside data_received and flush, which write on their way out:
        # responses given there wait for that; others are written at once.
        self._busy = False
        self._closed = False
        self._paused = False
        # Timeouts: the server's one timer ticks over every deadline (_tick).
        self._opened_at = 0.0
        self._idle_since: Optional[float] = None
        self._requests = 0

    @property
    def handlers(self) -> Dict[int, BaseRequestHandler]:
        """The open streams' handlers by stream id."""
        return {sid: stream.handler for sid, stream in self.streams.items()}

    # Reads go into the server's one buffer (reads are never interleaved in a
    # loop): a plain Protocol would get a fresh 256 KiB bytes per read, which
    # the allocator maps and unmaps each time (~17% of the CPU with 1000
    # connections, measured with py-spy).
    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.server.read_buffer[:nbytes]))

    # ---- what each protocol provides ---------------------------------------

    @abc.abstractmethod
    def data_received(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def send_shutdown_notice(self) -> None:
        """Shutting down: finish what is in flight, take nothing new."""

    @abc.abstractmethod
    def send_final_goaway(self) -> None: ...

    @abc.abstractmethod
    def _expired(self, now: float) -> Optional[Tuple[str, int]]:
        """The connection timeout that passed, as ``(why, GOAWAY error
        code)``, or None."""

    @abc.abstractmethod
    def _close_now(self, error_code: int) -> None:
        """Close the connection (HTTP/2: GOAWAY ``error_code`` first)."""

    def _release(self) -> None:
        """connection_lost: drop the protocol's own state."""

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def stream_priority(self, stream: Stream) -> Priority:
        """The RFC 9218 priority the connection gives the stream's response
        (HTTP/1.1 sends one response at a time: the default)."""
        return DEFAULT_PRIORITY

    def set_stream_priority(
        self, stream: Stream, priority: Priority, ignore_client_signal: bool
    ) -> None:
        """Reschedule the stream's response (HTTP/1.1: nothing to schedule)."""

    def push_promise(self, stream: Stream, request: Fields) -> Stream:
        """Promise ``request`` on ``stream``; the pushed stream, whose
        response follows with :meth:`start_response`."""
        raise PushDisabled("server push needs HTTP/2 (this is an HTTP/1.1 connection)")

    def switch_protocols(
        self,
        handler: BaseRequestHandler,
        headers: Any,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
    ) -> None:
        """``101 Switching Protocols`` (HTTP/1.1 only: see :mod:`server.http11`)."""
        raise InvalidResponse("switch_protocols() needs an HTTP/1.1 request that asked to Upgrade")

    # ---- streams -----------------------------------------------------------

    def _attach(self, stream: Stream) -> None:
        """Register ``stream`` and make its handler (which finds its stream
        in :attr:`streams`)."""
        sid = stream.id
        self.streams[sid] = stream
        try:
            stream.handler = self.handler_class(self, sid)
        except BaseException:
            del self.streams[sid]
            raise

    def run_pushed(self, stream: Stream) -> None:
        """Run the handler of a pushed stream as for a request without a body."""
        self._request_head(stream, True)

    def _request_head(self, stream: Stream, end_stream: bool) -> None:
        """A request's head passed the protocol's checks and limits: how its
        handler takes the body, then its on_headers (and on_request_done
        when there is no body, or 100 Continue when it wants one)."""
        handler = stream.handler
        cls = handler.__class__
        traits = self._handler_traits if cls is self.handler_class else _traits(cls)
        if end_stream:
            if traits & _READS_BODY:
                stream.inbox = inbox = Inbox()
                inbox.close()
            if not self._call(stream, handler.on_headers):
                stream.failed = True
            elif traits & _HAS_REQUEST_DONE:
                self._call(stream, handler.on_request_done)
            return
        if traits & (_READS_BODY | _ORDERED):
            stream.inbox = Inbox()
            stream.ordered = bool(traits & _ORDERED)
        if not self._call(stream, handler.on_headers):
            stream.failed = True
            return
        if stream.ordered:
            task = self._loop.create_task(self._feed_on_data(stream))
            if stream.task is None:
                stream.task = task
        elif stream.inbox is None and stream.expect_continue and stream.status is None:
            # on_headers returned without answering: it wants the body.
            self.send_continue(stream)

    def _request_body(self, stream: Stream, data: bytes) -> bool:
        """A chunk of a request body for the handler; True when its window
        opens at once (on_data was called, or nobody reads it), False when
        it opens as the handler reads (:meth:`consumed`)."""
        if stream.failed:
            return True
        inbox = stream.inbox
        if inbox is None:
            self._call(stream, stream.handler.on_data, data)
            return True
        if inbox.done:
            return True  # its on_headers returned without reading the body (_run)
        inbox.put(data)
        return False

    def _request_done(self, stream: Stream) -> None:
        """The request's body (and trailers) ended."""
        inbox = stream.inbox
        if inbox is not None:
            inbox.close()
            if stream.ordered:
                return  # _feed_on_data calls on_request_done after the last chunk
        if not stream.failed:
            self._call(stream, stream.handler.on_request_done)

    async def _feed_on_data(self, stream: Stream) -> None:
        """An ``async def on_data``: the chunks in order, one at a time, the
        window opening as each call returns; then on_request_done."""
        handler: Any = stream.handler  # its on_data is a coroutine function
        inbox = stream.inbox
        assert inbox is not None
        try:
            while True:
                while inbox.chunks:
                    chunk = inbox.chunks.popleft()
                    await handler.on_data(chunk)
                    stream.consumed(len(chunk))
                if inbox.done:
                    break
                stream.want_body()
                await inbox.wait()
            if inbox.error is None:
                await self._await_result(handler.on_request_done())
        except (asyncio.CancelledError, ClientDisconnected):
            pass
        except Exception:  # noqa: BLE001 - logged by _handler_failed
            stream.failed = True
            self._handler_failed(stream)
        self._drop_unread(stream)
        if not self._busy:
            self.flush()

    @staticmethod
    async def _await_result(result: Any) -> None:
        if result is not None and asyncio.iscoroutine(result):
            await result

    # ---- opening and losing the connection ---------------------------------

    def _admit(self) -> bool:
        """connection_made, once the protocol is settled: the connection cap,
        TCP_NODELAY, the write buffer limit.  False: refused (and closed)."""
        transport = self.transport
        assert transport is not None
        max_connections = self.limits.max_connections
        if max_connections is not None and len(self.server.connections) >= max_connections:
            log.warning(
                "%s: refused: %d connections open", peer(self.client_address), max_connections
            )
            transport.close()
            self._closed = True
            return False
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=WRITE_CHUNK)
        self.server.connections.add(self)
        return True

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._stop()
        self._release()
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            # The client went away: every open stream is cancelled.
            self._close_stream(stream, _CANCEL)
        self.transport = None

    def flush_soon(self) -> None:
        """Flush at the end of this loop round, with every other connection
        that asked (one call_soon for them all; once per connection).  A
        write wakes the client, which then preempts the server before its
        next read: answers and window updates given while reading go out
        together."""
        if self._flush_queued:
            return
        self._flush_queued = True
        batch = self.server.flush_batch
        if not batch:
            self._loop.call_soon(_flush_batch, batch)
        batch.append(self)

    def _stop(self) -> None:
        """This connection is done (lost, or handed to another protocol): no
        more timeouts, and the server forgets it."""
        self._closed = True
        self.server.connections.discard(self)

    # ---- handler callbacks -------------------------------------------------

    def _call(self, stream: Stream, method: Any, *args: Any) -> bool:
        """Run a handler callback; on an exception answer 500 or reset."""
        try:
            result = method(*args)
        except Exception:  # noqa: BLE001 - logged by _handler_failed
            self._handler_failed(stream)
            return False
        if result is not None and asyncio.iscoroutine(result):
            if self.eager_start:
                self._start(stream, result)
            else:
                task = self._loop.create_task(self._run(stream, result))
                if stream.task is None or stream.task.done():
                    stream.task = task
        return True

    def _finished(self, stream: Stream) -> None:
        """A coroutine callback returned (or failed)."""
        if not stream.ordered:
            self._drop_unread(stream)
        if not self._busy:
            self.flush()

    def _drop_unread(self, stream: Stream) -> None:
        inbox = stream.inbox
        if inbox is not None and not inbox.done:
            # The coroutine returned (answered, failed) without reading the
            # whole body: nobody will.  What came and what comes is dropped
            # with its window opened, or the upload would stall.
            unread = sum(map(len, inbox.chunks))
            inbox.chunks.clear()
            inbox.close(RuntimeError("the request body was dropped: the handler returned"))
            if unread:
                self.consumed(stream, unread)

    def _handler_failed(self, stream: Stream) -> None:
        """In an ``except`` block: log the handler's exception, answer 500 or reset."""
        log.exception(
            "%s: handler %s failed on stream %d",
            peer(self.client_address),
            self.handler_class.__name__,
            stream.id,
        )
        self._fail(stream)

    # ---- timeouts ----------------------------------------------------------

    def _arm_timer(self) -> None:
        """Put the connection's deadlines under the server's timer."""
        if not self._closed:
            self.server._watch_timeouts()

    def _tick(self, now: float) -> None:
        """The server's timer ticks over every connection's deadlines."""
        if self._closed or self.transport is None:
            return
        expired = self._expired(now)
        if expired is not None:
            reason, error_code = expired
            log.info("%s: closing: %s (timeout)", peer(self.client_address), reason)
            self._close_now(error_code)
            return
        response_timeout = self.limits.response_timeout
        if response_timeout is not None and self.streams:
            self._busy = True
            try:
                self._expire_streams(now - response_timeout)
            finally:
                self._busy = False
            self.flush()

    # ---- closing streams ---------------------------------------------------

    def _close_stream(self, stream: Stream, error_code: int) -> None:
        """The stream is over (``error_code`` 0: cleanly): wake its readers
        and writers, cancel its task if the client left, tell the handler."""
        handler = stream.handler
        inbox = stream.inbox
        if inbox is not None or stream.drained is not None or stream.task is not None:
            # The error for whoever still waits, made only for them (a
            # finished request has nobody: an ASGI one has its task).
            if inbox is not None and not inbox.done:
                inbox.close(_disconnected(stream, error_code))
            drained = stream.drained
            if drained is not None:
                stream.drained = None
                if not drained.done():
                    drained.set_exception(_disconnected(stream, error_code))
                    drained.exception()  # retrieved: no "never retrieved" warning
            task = stream.task
            if error_code and task is not None and not task.done() and handler.cancel_on_close:
                task.cancel()
        if stream.reader is not None or stream.generator is not None:
            self._drop_body_source(stream)
        cls = handler.__class__
        if (self._handler_traits if cls is self.handler_class else _traits(cls)) & _HAS_CLOSE:
            try:
                handler.on_close(error_code)
            except Exception:
                log.exception("handler %s failed in on_close", type(handler).__name__)
        if self.server.access_log and stream.status is not None:
            self._log_access(stream, error_code)
        # The handler keeps its stream (handler.exchange); the stream lets go
        # of the handler, so the two go with the last reference, not with
        # the cycle collector (which cost ~10% of a small request's time).
        stream.handler = None  # type: ignore[assignment]

    def _log_access(self, stream: Stream, error_code: int) -> None:
        duration = (self._loop.time() - stream.started) * 1000
        access_log.info(
            '%s "%s %s HTTP/%s" %s %d %s %.1fms%s',
            peer(self.client_address),
            (stream.method or b"-").decode("latin-1"),
            (stream.path or b"-").decode("latin-1"),
            self.http_version,
            stream.status,
            stream.body_bytes,
            "P" if stream.pushed else "-",
            duration,
            f" reset={ErrorCode(error_code).name}" if error_code else "",
        )


# What a handler class does, worked out once per class: how it takes the
# request body (through on_data as it comes; _READS_BODY: read_body() or
# iter_body() from an async on_headers; _ORDERED: fed in order to an async
# on_data), and which of the callbacks that do nothing by default it
# overrides (the others are not called: a call costs ~2% of a small request).
_READS_BODY = 1
_ORDERED = 2
_HAS_REQUEST_DONE = 4
_HAS_CLOSE = 8
_TRAITS: Dict[type, int] = {}


def _traits(handler_class: Any) -> int:
    """What ``handler_class`` overrides, as _READS_BODY... flags (cached)."""
    traits = _TRAITS.get(handler_class)
    if traits is not None:
        return traits
    traits = 0
    if asyncio.iscoroutinefunction(handler_class.on_headers):
        traits |= _READS_BODY
    elif asyncio.iscoroutinefunction(handler_class.on_data):
        traits |= _ORDERED
    if handler_class.on_request_done is not BaseRequestHandler.on_request_done:
        traits |= _HAS_REQUEST_DONE
    if handler_class.on_close is not BaseRequestHandler.on_close:
        traits |= _HAS_CLOSE
    _TRAITS[handler_class] = traits
    return traits


def _disconnected(stream: Stream, error_code: int) -> ClientDisconnected:
    """What a reader or writer of a closed stream gets."""
    return ClientDisconnected(f"stream {stream.id} closed ({ErrorCode(error_code).name})")


def _flush_batch(batch: List[Connection]) -> None:
    """Flush the connections that asked this loop round (flush_soon)."""
    connections = batch[:]
    batch.clear()
    for connection in connections:
        connection._flush_queued = False
        try:
            connection.flush()
        except Exception:  # a bug: the other connections' writes still go
            log.exception("%s: writing failed", peer(connection.client_address))
            connection.abort()


def content_length(headers: List[Tuple[bytes, bytes]]) -> Optional[int]:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
