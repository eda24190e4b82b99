"""What every connection does for its handlers, whatever the protocol.

:class:`Connection` is the base of :class:`~server.protocol.HTTP2Protocol`
and :class:`~server.http11.HTTP11Protocol`: it admits connections (the
connection cap, TCP_NODELAY, the write buffer limit), runs handler
callbacks (a coroutine becomes a task; an exception answers 500 through the
subclass's ``_fail``), pulls streamed bodies (generators, files read off the
event loop), ticks the timeouts, closes handlers (failing their pending
reads and writes with :class:`~server.errors.ClientDisconnected`,
cancelling their task when the client went away) and writes the access log.
A subclass provides ``flush()``, ``_fail(handler)``, the hooks
``_release``, ``_expired``, ``_close_now`` and ``_file_data``, and the
handler-facing calls (``start_response``...).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
import stat
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from nghttp2_cffi import DEFAULT_PRIORITY, ErrorCode, Priority

from .errors import ClientDisconnected, InvalidResponse
from .handler import DATA_DEFERRED, DATA_EOF

if TYPE_CHECKING:
    from .handler import BaseRequestHandler, BodyGenerator, Fields
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

_CANCEL = int(ErrorCode.CANCEL)
_ERROR_BODY = b"Internal Server Error\n"
_TIMEOUT_BODY = b"Service Unavailable: the handler did not answer in time\n"
_TOO_LARGE_BODY = b"Payload Too Large\n"


class Connection(asyncio.BufferedProtocol):
    """The protocol-neutral part of a server connection (``http2`` in handlers)."""

    #: The protocol version, as access log lines and ``scope["http_version"]`` say it.
    http_version = "2"

    server: HTTP2Server
    limits: Limits
    client_address: Any
    transport: Optional[asyncio.Transport]
    handlers: Dict[int, BaseRequestHandler]
    _loop: asyncio.AbstractEventLoop
    _busy: bool
    _closed: bool
    _timer: Optional[asyncio.TimerHandle]
    #: Coroutine handlers (ASGI apps) running (counted from their first step:
    #: one cancelled before it never runs): a stream reset under one does
    #: not stop it, so HTTP2Protocol refuses new streams past a bound.
    _tasks = 0

    # Reads go into the server's one buffer (reads are never interleaved in a
    # loop): a plain Protocol would get a fresh 256 KiB bytes per read, which
    # the allocator maps and unmaps each time (~17% of the CPU with 1000
    # connections, measured with py-spy).
    def get_buffer(self, sizehint: int) -> memoryview:
        return self.server.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.server.read_buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def _fail(self, handler: BaseRequestHandler) -> None:
        raise NotImplementedError

    def start_response(
        self, handler: BaseRequestHandler, status: int, fields: Fields, body: Any
    ) -> None:
        raise NotImplementedError

    def send_shutdown_notice(self) -> None:
        """Shutting down: finish what is in flight, take nothing new."""
        raise NotImplementedError

    def send_final_goaway(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def stream_priority(self, handler: BaseRequestHandler) -> Priority:
        """The RFC 9218 priority the connection gives the handler's response
        (HTTP/1.1 sends one response at a time: the default)."""
        return DEFAULT_PRIORITY

    def set_stream_priority(
        self, handler: BaseRequestHandler, priority: Priority, ignore_client_signal: bool
    ) -> None:
        """Reschedule the handler's response (HTTP/1.1: nothing to schedule)."""

    # ---- opening and losing the connection ---------------------------------

    def _admit(self) -> bool:
        """connection_made, once the protocol is settled: the connection cap,
        TCP_NODELAY, the write buffer limit.  False: refused (and closed)."""
        transport = self.transport
        assert transport is not None
        max_connections = self.limits.max_connections
        if max_connections is not None and len(self.server.connections) >= max_connections:
            log.warning(
                "%s: refused: %d connections open", _peer(self.client_address), max_connections
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
        handlers, self.handlers = self.handlers, {}
        for handler in handlers.values():
            # The client went away: every open stream is cancelled.
            self._close_handler(handler, _CANCEL)
        self.transport = None

    def _release(self) -> None:
        """connection_lost: drop the protocol's own state."""

    def _stop(self) -> None:
        """This connection is done (lost, or handed to another protocol): no
        more timeouts, and the server forgets it."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.server.connections.discard(self)

    # ---- handler callbacks -------------------------------------------------

    def _call(self, handler: BaseRequestHandler, method: Any, *args: Any) -> bool:
        """Run a handler callback; on an exception answer 500 or reset."""
        try:
            result = method(*args)
            if result is not None and asyncio.iscoroutine(result):
                task = self._loop.create_task(self._run(handler, result))
                if handler._task is None or handler._task.done():
                    handler._task = task
            return True
        except Exception:  # noqa: BLE001 - logged by _handler_failed
            self._handler_failed(handler)
            return False

    async def _run(self, handler: BaseRequestHandler, coro: Any) -> None:
        self._tasks += 1
        try:
            await coro
        except (asyncio.CancelledError, ClientDisconnected):
            pass
        except Exception:  # noqa: BLE001 - logged by _handler_failed
            self._handler_failed(handler)
        finally:
            self._tasks -= 1
        inbox = handler._inbox
        if inbox is not None and not inbox.done:
            # A coroutine on_headers returned (answered, failed) without
            # reading the whole body: nobody will.  What came and what comes
            # is dropped with its window opened, or the upload would stall.
            unread = sum(map(len, inbox.chunks))
            inbox.chunks.clear()
            inbox.close(RuntimeError("the request body was dropped: on_headers returned"))
            if unread:
                self.consumed(handler, unread)
        if not self._busy:
            self.flush()

    def consumed(self, handler: BaseRequestHandler, amount: int) -> None:
        """A coroutine handler read (or dropped) ``amount`` body bytes."""
        raise NotImplementedError

    def _handler_failed(self, handler: BaseRequestHandler) -> None:
        """In an ``except`` block: log the handler's exception, answer 500 or reset."""
        log.exception(
            "%s: handler %s failed on stream %d",
            _peer(self.client_address),
            type(handler).__name__,
            handler.stream_id,
        )
        self._fail(handler)

    def _answer_plain(self, handler: BaseRequestHandler, status: int, body: bytes) -> None:
        """A canned text/plain answer of the server's own (413, 500, 503)."""
        self.start_response(
            handler,
            status,
            [(b":status", b"%d" % status), (b"content-type", b"text/plain")],
            body,
        )

    # ---- streamed bodies ---------------------------------------------------

    def _next_chunk(
        self, handler: BaseRequestHandler, generator: BodyGenerator, size: int
    ) -> Optional[Tuple[Optional[bytes], int]]:
        """Call a body generator: ``(data, flag)``, or None when it raised
        (the handler is failed)."""
        try:
            data, flag = generator(size)
        except Exception:
            log.exception("body generator of stream %d failed", handler.stream_id)
            self._fail(handler)
            return None
        if data:
            handler._body_bytes += len(data)
        if flag == DATA_EOF:
            handler._generator = None
        elif flag == DATA_DEFERRED:
            handler._deferred = True  # until resume()
            handler._progress_at = self._loop.time()
        return data, flag

    def _read_file(self, handler: BaseRequestHandler, reader: Any) -> None:
        """Read the next chunk of a file body off the event loop; it goes to
        ``_file_data``."""
        future = self._loop.run_in_executor(None, reader.read, FILE_CHUNK)
        future.add_done_callback(lambda f: self._file_read(handler, f))

    def _file_read(self, handler: BaseRequestHandler, future: asyncio.Future[bytes]) -> None:
        reader = handler._reader
        if self._closed or handler.stream_id not in self.handlers or reader is None:
            # The stream is gone; closing its file may have failed this read.
            if not future.cancelled():
                future.exception()  # retrieved: no "exception never retrieved" log
            return
        exc = future.exception()
        if exc is not None:
            log.error("reading the body of stream %d failed: %r", handler.stream_id, exc)
            self._fail(handler)
        else:
            data = future.result()
            # At the end of a regular file the body ends with its last chunk,
            # not one read later (HTTP/2 clients that count content-length,
            # curl for one, would reset the stream meanwhile).
            eof = not data or _at_end_of_file(reader)
            if data:
                handler._body_bytes += len(data)
            if eof:
                handler._reader = None
                if getattr(handler, "_owns_reader", False):
                    reader.close()  # no read is in flight now
            self._file_data(handler, data or b"", eof)
        self.flush()

    def _file_data(self, handler: BaseRequestHandler, data: bytes, eof: bool) -> None:
        """A chunk of a file body (``eof``: its last) to send."""
        raise NotImplementedError

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
            log.info("%s: closing: %s (timeout)", _peer(self.client_address), reason)
            self._close_now(error_code)
            return
        response_timeout = self.limits.response_timeout
        if response_timeout is not None and self.handlers:
            self._busy = True
            try:
                self._expire_handlers(now - response_timeout)
            finally:
                self._busy = False
            self.flush()
        self._arm_timer()

    def _expired(self, now: float) -> Optional[Tuple[str, int]]:
        """The connection timeout that passed, as ``(why, GOAWAY error
        code)``, or None."""
        raise NotImplementedError

    def _close_now(self, error_code: int) -> None:
        """Close the connection (HTTP/2: GOAWAY ``error_code`` first)."""
        raise NotImplementedError

    def _expire_handlers(self, deadline: float) -> None:
        """503 for handlers that have not answered since ``deadline``; a
        deferred body not resumed since then is given up (``_fail``); a
        response whose client has kept its window shut since then is
        reset (slow read, CVE-2019-9517)."""
        handlers = self.handlers
        for handler in list(handlers.values()):
            if handler._progress_at > deadline or handlers.get(handler.stream_id) is not handler:
                continue
            if handler.status is None and not handler.pushed:
                log.warning(
                    "%s: stream %d: no response in time, answering 503",
                    _peer(self.client_address),
                    handler.stream_id,
                )
                self._answer_plain(handler, 503, _TIMEOUT_BODY)
            elif handler._deferred:
                log.warning(
                    "%s: stream %d: deferred body not resumed in time, giving up",
                    _peer(self.client_address),
                    handler.stream_id,
                )
                handler._deferred = False
                handler._generator = None
                self._fail(handler)
            elif self._window_shut(handler):
                if not handler._stalled_at:
                    handler._stalled_at = self._loop.time()
                elif handler._stalled_at <= deadline:
                    log.warning(
                        "%s: stream %d: the client kept its window shut, resetting",
                        _peer(self.client_address),
                        handler.stream_id,
                    )
                    self._reset_stalled(handler)
            elif handler._stalled_at:
                handler._stalled_at = 0.0

    def _window_shut(self, handler: BaseRequestHandler) -> bool:
        """Whether ``handler``'s response waits for the client to open its
        flow-control window (HTTP/2 only)."""
        return False

    def _reset_stalled(self, handler: BaseRequestHandler) -> None:
        raise NotImplementedError

    # ---- closing handlers --------------------------------------------------

    def _close_handler(self, handler: BaseRequestHandler, error_code: int) -> None:
        if handler._inbox is not None or handler._drained is not None or handler._task is not None:
            gone = ClientDisconnected(
                f"stream {handler.stream_id} closed ({ErrorCode(error_code).name})"
            )
            if handler._inbox is not None and not handler._inbox.done:
                handler._inbox.close(gone)
            if handler._drained is not None:
                if not handler._drained.done():
                    handler._drained.set_exception(gone)
                    handler._drained.exception()  # retrieved: no "never retrieved" warning
                handler._drained = None
            task = handler._task
            if error_code and task is not None and not task.done():
                task.cancel()
        reader = handler._reader
        if reader is not None or handler._generator is not None:
            handler._generator = handler._reader = None
            if reader is not None and getattr(handler, "_owns_reader", False):
                reader.close()
        try:
            handler.on_close(error_code)
        except Exception:
            log.exception("handler %s failed in on_close", type(handler).__name__)
        if self.server.access_log and handler.status is not None:
            self._log_access(handler, error_code)

    def _log_access(self, handler: BaseRequestHandler, error_code: int) -> None:
        duration = (self._loop.time() - handler._started) * 1000 if handler._started else 0.0
        access_log.info(
            '%s "%s %s HTTP/%s" %s %d %s %.1fms%s',
            _peer(self.client_address),
            (handler.method or b"-").decode("latin-1"),
            (handler.path or b"-").decode("latin-1"),
            self.http_version,
            handler.status,
            handler._body_bytes,
            "P" if handler.pushed else "-",
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


def _resolve(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)


_COROUTINE_FUNCTIONS: Dict[Any, bool] = {}


def _is_coroutine_function(func: Any) -> bool:
    known = _COROUTINE_FUNCTIONS.get(func)
    if known is None:
        known = _COROUTINE_FUNCTIONS[func] = asyncio.iscoroutinefunction(func)
    return known


def _content_length(headers: List[Tuple[bytes, bytes]]) -> Optional[int]:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _peer(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)
