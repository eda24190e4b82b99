"""What every connection does for its streams, whatever the protocol.

:class:`Connection` is the base of :class:`~server.protocol.HTTP2Protocol`
and :class:`~server.http11.HTTP11Protocol`.  They differ only in how a
response travels, and implement that as one small interface:

- :meth:`Connection.send_head`: the response head (with the whole body when
  it is bytes);
- :meth:`Connection.send_data`: body bytes, ``end`` on the last;
- :meth:`Connection.send_trailers`: the end of the body, with trailers;
- :meth:`Connection.send_interim`: a 1xx response;
- :meth:`Connection.reset`: give up a response (HTTP/2: RST_STREAM;
  HTTP/1.1: close the connection once what was sent is out);
- :meth:`Connection.consumed`: reading the body, the handler read some.

Everything above it is written once, here: the handler-facing calls
(``start_response``, ``begin_response``, ``write``, ``end_response``,
``send_informational``, ``push_promise`` refused, ``resume_body``), 100
Continue, running callbacks (a coroutine becomes a task, an ``async def
on_data`` is fed in order, an exception answers 500), streamed bodies
(generators, files read off the event loop), the connection cap, the
timeouts, closing streams and the access log.
"""

from __future__ import annotations

import abc
import asyncio
import io
import logging
import os
import socket
import stat
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from nghttp2_cffi import DEFAULT_PRIORITY, ErrorCode, Priority

from .errors import ClientDisconnected, InvalidResponse, PushDisabled
from .handler import DATA_DEFERRED, DATA_EOF
from .stream import Inbox, Stream

if TYPE_CHECKING:
    from .handler import BaseRequestHandler, Fields, HeaderList
    from .limits import Limits
    from .server import HTTP2Server

log = logging.getLogger("nghttp2.server")
access_log = logging.getLogger("nghttp2.server.access")

# How much to take from nghttp2 per write (HTTP/1.1: the write buffer's high
# mark too): big bodies go out in pieces this size, so the transport's
# pause_writing() stops them in time.
WRITE_CHUNK = 256 * 1024
# Reads of file bodies, off the event loop.
FILE_CHUNK = 64 * 1024
# handler.write() waits while more than this is queued for its stream.
STREAM_HIGH_WATER = 256 * 1024
#: Bytes asked of a body generator when the protocol does not say (an
#: HTTP/2 DATA frame's worth).
GENERATOR_CHUNK = 16384

_CANCEL = int(ErrorCode.CANCEL)
_INTERNAL_ERROR = int(ErrorCode.INTERNAL_ERROR)
_ERROR_BODY = b"Internal Server Error\n"
_TIMEOUT_BODY = b"Service Unavailable: the handler did not answer in time\n"
TOO_LARGE_BODY = b"Payload Too Large\n"
_CONTINUE: Fields = [(b":status", b"100")]


class Connection(asyncio.BufferedProtocol, abc.ABC):
    """The protocol-neutral part of a server connection (``http2`` in handlers)."""

    #: The protocol version, as access log lines and ``scope["http_version"]`` say it.
    http_version = "2"

    def __init__(self, server: HTTP2Server) -> None:
        self.server = server
        self.handler_class = server.handler_class
        self.limits: Limits = server.limits
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
        # Timeouts: one timer per connection ticks over every deadline.
        self._timer: Optional[asyncio.TimerHandle] = None
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
    def flush(self) -> None:
        """Write what is ready, as far as the transport takes it."""

    @abc.abstractmethod
    def send_head(
        self, stream: Stream, status: int, fields: Fields, body: Optional[bytes], streamed: bool
    ) -> bool:
        """Send the response head; ``body``: the whole body, or None with
        ``streamed`` (then :meth:`send_data` follows) or without (no body).
        Returns whether body data may follow (False: HEAD, 204, 304, or the
        body went with the head)."""

    @abc.abstractmethod
    def send_data(self, stream: Stream, data: bytes, end: bool) -> None:
        """Send body bytes; ``end``: the last of them."""

    @abc.abstractmethod
    def send_trailers(self, stream: Stream, trailers: HeaderList) -> None:
        """End the body with trailer fields."""

    @abc.abstractmethod
    def send_interim(self, stream: Stream, fields: Fields) -> None:
        """Send a 1xx response (``fields[0]`` is its ``:status``)."""

    @abc.abstractmethod
    def reset(self, stream: Stream, error_code: int) -> None:
        """Give up the stream's response, half sent or not."""

    @abc.abstractmethod
    def consumed(self, stream: Stream, amount: int) -> None:
        """A handler read (or dropped) ``amount`` body bytes: let the client
        send more."""

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

    def _window_shut(self, stream: Stream) -> bool:
        """Whether the response waits for the client to open its
        flow-control window (HTTP/2 only)."""
        return False

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

    def _open(self, stream: Stream) -> None:
        """Raise ClientDisconnected unless the stream can still be answered."""
        if self._closed or self.streams.get(stream.id) is not stream:
            raise ClientDisconnected(f"stream {stream.id} is closed: the client reset it or left")

    def _request_head(self, stream: Stream, end_stream: bool) -> None:
        """A request head is complete (both protocols): limits, then the
        handler's on_headers (and on_request_done when there is no body)."""
        handler = stream.handler
        handler_type = type(handler)
        if _is_coroutine_function(handler_type.on_headers):
            stream.inbox = Inbox()
        elif not end_stream and _is_coroutine_function(handler_type.on_data):
            stream.inbox = Inbox()
            stream.ordered = True
        if end_stream:
            stream.expect_continue = False
            if stream.inbox is not None:
                stream.inbox.close()
        if not self._call(stream, handler.on_headers):
            stream.failed = True
            return
        if end_stream:
            if not stream.ordered:
                self._call(stream, handler.on_request_done)
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

    def _stop(self) -> None:
        """This connection is done (lost, or handed to another protocol): no
        more timeouts, and the server forgets it."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.server.connections.discard(self)

    # ---- handler callbacks -------------------------------------------------

    def _call(self, stream: Stream, method: Any, *args: Any) -> bool:
        """Run a handler callback; on an exception answer 500 or reset."""
        try:
            result = method(*args)
            if result is not None and asyncio.iscoroutine(result):
                task = self._loop.create_task(self._run(stream, result))
                if stream.task is None or stream.task.done():
                    stream.task = task
            return True
        except Exception:  # noqa: BLE001 - logged by _handler_failed
            self._handler_failed(stream)
            return False

    async def _run(self, stream: Stream, coro: Any) -> None:
        try:
            await coro
        except (asyncio.CancelledError, ClientDisconnected):
            pass
        except Exception:  # noqa: BLE001 - logged by _handler_failed
            self._handler_failed(stream)
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
            type(stream.handler).__name__,
            stream.id,
        )
        self._fail(stream)

    def _fail(self, stream: Stream) -> None:
        """A callback or a body failed: answer 500, or reset past the head."""
        if self._closed or self.streams.get(stream.id) is not stream:
            return
        if stream.status is None:
            self._drop_body_source(stream)
            try:
                self._answer_plain(stream, 500, _ERROR_BODY)
                return
            except Exception:  # the stream is past answering
                log.debug("cannot send 500 on stream %d", stream.id, exc_info=True)
        self._drop_body_source(stream)
        try:
            self.reset(stream, _INTERNAL_ERROR)
        except Exception:  # already closed
            log.debug("cannot reset stream %d", stream.id, exc_info=True)
        if not self._busy:
            self.flush()

    def _answer_plain(self, stream: Stream, status: int, body: bytes) -> None:
        """A canned text/plain answer of the server's own (413, 500, 503)."""
        self.start_response(
            stream,
            status,
            [(b":status", b"%d" % status), (b"content-type", b"text/plain")],
            body,
        )

    # ---- responses (called by handlers) ------------------------------------

    def start_response(self, stream: Stream, status: int, fields: Fields, body: Any) -> None:
        """The response head and its whole body (bytes, a file, a generator)."""
        self._open(stream)
        if body is not None and body.__class__ is not bytes:
            body = _response_body(body)  # bytes, an io.IOBase or a generator
        if body is None or body.__class__ is bytes:
            self.send_head(stream, status, fields, body, False)
            stream.status = status
            if body and stream.method != b"HEAD":
                stream.body_bytes = len(body)
        else:
            follows = self.send_head(stream, status, fields, None, True)
            stream.status = status
            if follows:
                if isinstance(body, io.IOBase):
                    stream.reader = body
                else:
                    stream.generator = body
            else:  # HEAD, 204, 304
                if isinstance(body, io.IOBase) and stream.owns_reader:
                    body.close()
                self.send_data(stream, b"", True)
        if not self._busy:
            self.flush()

    def begin_response(self, stream: Stream, status: int, fields: Fields) -> None:
        """The response head; the body follows with :meth:`write`."""
        self._open(stream)
        self.send_head(stream, status, fields, None, True)
        stream.status = status
        if not self._busy:
            self.flush()

    async def write(self, stream: Stream, data: bytes) -> None:
        """Body data after :meth:`begin_response`; waits while more than
        STREAM_HIGH_WATER of the stream's is queued."""
        self._open(stream)
        if stream.status is None:
            raise InvalidResponse("write() comes after begin_response()")
        if data:
            self.send_data(stream, data, False)
            stream.body_bytes += len(data)
            stream.unsent += len(data)
            if not self._busy:
                self.flush()
        while stream.unsent > STREAM_HIGH_WATER and stream.is_open():
            if stream.drained is None:
                stream.drained = self._loop.create_future()
            await stream.drained

    def _sent(self, stream: Stream) -> None:
        """What write() queued is on its way: writers blocked on it go on."""
        stream.unsent = 0
        drained = stream.drained
        if drained is not None:
            stream.drained = None
            if not drained.done():
                drained.set_result(None)

    def end_response(self, stream: Stream, trailers: Optional[HeaderList]) -> None:
        """End the body begun with :meth:`begin_response`."""
        self._open(stream)
        if stream.status is None:
            raise InvalidResponse("end_response() comes after begin_response()")
        if trailers:
            self.send_trailers(stream, trailers)
        else:
            self.send_data(stream, b"", True)
        if not self._busy:
            self.flush()

    def send_informational(self, stream: Stream, fields: Fields) -> None:
        """A 1xx response before the final one."""
        self._open(stream)
        if fields[0][1] == b"100":
            if stream.continue_sent:
                return
            stream.continue_sent = True
            stream.expect_continue = False
        self.send_interim(stream, fields)
        if not self._busy:
            self.flush()

    def send_continue(self, stream: Stream) -> None:
        """100 Continue, to a client that asked for it, before the response."""
        stream.expect_continue = False
        if stream.status is None and not stream.continue_sent and stream.is_open():
            self.send_informational(stream, _CONTINUE)

    def resume_body(self, stream: Stream) -> None:
        """A deferred body generator has data again."""
        if stream.deferred and stream.is_open():
            stream.deferred = False
            self._pull_body(stream, GENERATOR_CHUNK)
            if not self._busy:
                self.flush()

    # ---- streamed bodies ---------------------------------------------------

    def _pull_body(self, stream: Stream, size: int) -> bool:
        """More of a generator's or a file's body; True when a generator
        gave something (data, its end, or a failure) to write now."""
        generator = stream.generator
        if generator is not None:
            if stream.deferred:
                return False
            try:
                data, flag = generator(size)
            except Exception:
                log.exception("body generator of stream %d failed", stream.id)
                self._fail(stream)
                return True
            if data:
                stream.body_bytes += len(data)
            if flag == DATA_EOF:
                stream.generator = None
                self.send_data(stream, data or b"", True)
            elif data:
                if flag == DATA_DEFERRED:
                    self._defer(stream)
                self.send_data(stream, data, False)
            elif flag == DATA_DEFERRED:
                self._defer(stream)
                return False
            else:
                # DATA_OK with nothing: ask again on the next loop iteration.
                self._loop.call_soon(self._repull, stream, size)
                return False
            return True
        reader = stream.reader
        if reader is not None and not stream.reading:
            stream.reading = True
            future = self._loop.run_in_executor(None, reader.read, FILE_CHUNK)
            future.add_done_callback(lambda f: self._file_read(stream, f))
        return False

    def _defer(self, stream: Stream) -> None:
        stream.deferred = True  # until resume()
        stream.progress_at = self._loop.time()

    def _repull(self, stream: Stream, size: int) -> None:
        if stream.is_open():
            self._pull_body(stream, size)
            self.flush()

    def _file_read(self, stream: Stream, future: asyncio.Future[bytes]) -> None:
        stream.reading = False
        reader = stream.reader
        if reader is None or not stream.is_open():
            # The stream is gone; closing its file may have failed this read.
            if not future.cancelled():
                future.exception()  # retrieved: no "exception never retrieved" log
            return
        exc = future.exception()
        if exc is not None:
            log.error("reading the body of stream %d failed: %r", stream.id, exc)
            self._fail(stream)
        else:
            data = future.result()
            # At the end of a regular file the body ends with its last chunk,
            # not one read later (HTTP/2 clients that count content-length,
            # curl for one, would reset the stream meanwhile).
            eof = not data or _at_end_of_file(reader)
            if data:
                stream.body_bytes += len(data)
            if eof:
                stream.reader = None
                if stream.owns_reader:
                    reader.close()  # no read is in flight now
            self.send_data(stream, data or b"", eof)
        self.flush()

    def _drop_body_source(self, stream: Stream) -> None:
        """Forget the generator or file the body came from (closing a file
        the server owns)."""
        reader = stream.reader
        stream.generator = stream.reader = None
        stream.deferred = False
        if reader is not None and stream.owns_reader:
            reader.close()

    # ---- timeouts ----------------------------------------------------------

    def _arm_timer(self) -> None:
        timers = self.limits.timers()
        if timers and not self._closed:
            # Tick a few times per shortest timeout, at most once a second.
            tick = min(1.0, max(0.05, min(timers) / 4))
            self._timer = self._loop.call_later(tick, self._tick)

    def _tick(self) -> None:
        """One timer per connection ticks over every deadline."""
        self._timer = None
        if self._closed or self.transport is None:
            return
        now = self._loop.time()
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
        self._arm_timer()

    def _expire_streams(self, deadline: float) -> None:
        """503 for streams that have not answered since ``deadline``; a
        deferred body not resumed since then is given up (``_fail``); a
        response whose client has kept its window shut since then is
        reset (slow read, CVE-2019-9517)."""
        streams = self.streams
        for stream in list(streams.values()):
            if stream.progress_at > deadline or streams.get(stream.id) is not stream:
                continue
            if stream.status is None and not stream.pushed:
                log.warning(
                    "%s: stream %d: no response in time, answering 503",
                    peer(self.client_address),
                    stream.id,
                )
                self._answer_plain(stream, 503, _TIMEOUT_BODY)
            elif stream.deferred:
                log.warning(
                    "%s: stream %d: deferred body not resumed in time, giving up",
                    peer(self.client_address),
                    stream.id,
                )
                self._drop_body_source(stream)
                self._fail(stream)
            elif self._window_shut(stream):
                if not stream.stalled_at:
                    stream.stalled_at = self._loop.time()
                elif stream.stalled_at <= deadline:
                    log.warning(
                        "%s: stream %d: the client kept its window shut, resetting",
                        peer(self.client_address),
                        stream.id,
                    )
                    self.reset(stream, _CANCEL)
            elif stream.stalled_at:
                stream.stalled_at = 0.0

    # ---- closing streams ---------------------------------------------------

    def _close_stream(self, stream: Stream, error_code: int) -> None:
        """The stream is over (``error_code`` 0: cleanly): wake its readers
        and writers, cancel its task if the client left, tell the handler."""
        handler = stream.handler
        inbox = stream.inbox
        if inbox is not None or stream.drained is not None or stream.task is not None:
            gone = ClientDisconnected(f"stream {stream.id} closed ({ErrorCode(error_code).name})")
            if inbox is not None and not inbox.done:
                inbox.close(gone)
            drained = stream.drained
            if drained is not None:
                stream.drained = None
                if not drained.done():
                    drained.set_exception(gone)
                    drained.exception()  # retrieved: no "never retrieved" warning
            task = stream.task
            if error_code and task is not None and not task.done() and handler.cancel_on_close:
                task.cancel()
        if stream.reader is not None or stream.generator is not None:
            self._drop_body_source(stream)
        try:
            handler.on_close(error_code)
        except Exception:
            log.exception("handler %s failed in on_close", type(handler).__name__)
        if self.server.access_log and stream.status is not None:
            self._log_access(stream, error_code)

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


def _response_body(body: Any) -> Any:
    """A response body as the protocols send it: bytes (or None) when known
    now, else the ``io.IOBase`` or generator to pull it from."""
    if body is None or body.__class__ is bytes:
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, io.BytesIO):
        return body.read()
    if isinstance(body, io.IOBase) or callable(body):
        return body
    raise InvalidResponse(
        "body must be None, str, bytes, an io.IOBase or a generator "
        f"callable(size) -> (data, flag), not {type(body).__name__}"
    )


def _at_end_of_file(reader: Any) -> bool:
    """Whether ``reader``, an ``open(path, "rb")`` of a regular file, has no more bytes."""
    if not isinstance(reader, io.BufferedReader) or not isinstance(reader.raw, io.FileIO):
        return False
    try:
        info = os.fstat(reader.fileno())
        return stat.S_ISREG(info.st_mode) and reader.tell() >= info.st_size
    except (OSError, ValueError):
        return False


_COROUTINE_FUNCTIONS: Dict[Any, bool] = {}


def _is_coroutine_function(func: Any) -> bool:
    known = _COROUTINE_FUNCTIONS.get(func)
    if known is None:
        known = _COROUTINE_FUNCTIONS[func] = asyncio.iscoroutinefunction(func)
    return known


def content_length(headers: List[Tuple[bytes, bytes]]) -> Optional[int]:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def peer(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)
