"""HTTP2Protocol: one asyncio protocol per connection.

It feeds received bytes to a server :class:`~nghttp2_cffi.Session`, turns
its events into handler callbacks, and writes what the session produces,
no further ahead than the transport's write buffer allows.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
import stat
from typing import TYPE_CHECKING, Any, Dict, List, Optional, cast

from nghttp2_cffi import (
    DEFAULT_PRIORITY,
    DataReceived,
    DataRequested,
    ErrorCode,
    GoAwayReceived,
    Priority,
    ProtocolError,
    PushDisabledError,
    RequestReceived,
    Session,
    SettingsAcknowledged,
    StreamClosed,
    TrailersReceived,
    lib,
)

from .connection import Connection, _content_length, _is_coroutine_function, _peer, _resolve
from .errors import ClientDisconnected, InvalidResponse, PushDisabled
from .handler import DATA_DEFERRED, DATA_EOF, BaseRequestHandler, Fields, HeaderList, Inbox

if TYPE_CHECKING:
    from .server import HTTP2Server

log = logging.getLogger("server")
access_log = logging.getLogger("server.access")

# How much to take from nghttp2 per write: big bodies go out in pieces this
# size, so the transport's pause_writing() stops them in time.
WRITE_CHUNK = 256 * 1024
# Reads of file bodies, off the event loop.
FILE_CHUNK = 64 * 1024
# handler.write() waits while more than this is queued for its stream.
STREAM_HIGH_WATER = 256 * 1024

_INTERNAL_ERROR = int(ErrorCode.INTERNAL_ERROR)
_PROTOCOL_ERROR = int(ErrorCode.PROTOCOL_ERROR)
_CANCEL = int(ErrorCode.CANCEL)
_ERROR_BODY = b"Internal Server Error\n"
_TIMEOUT_BODY = b"Service Unavailable: the handler did not answer in time\n"
_TOO_LARGE_BODY = b"Payload Too Large\n"


class HTTP2Protocol(Connection):
    """The server side of one HTTP/2 connection (``http2`` in handlers)."""

    def __init__(self, server: HTTP2Server) -> None:
        self.server = server
        self.handler_class = server.handler_class
        self.transport: Optional[asyncio.Transport] = None
        self.session: Optional[Session] = None
        self.handlers: dict[int, BaseRequestHandler] = {}
        self.client_address: Any = None
        self.client_certificate: Optional[Dict[str, Any]] = None
        self.scheme = b"http"
        self._paused = False
        self._closed = False
        # True inside data_received and flush, which write on their way out:
        # responses given there wait for that; others are written at once.
        self._busy = False
        self._loop = asyncio.get_running_loop()
        self.limits = server.limits
        # Timeouts: one timer per connection ticks over every deadline.
        self._timer: Optional[asyncio.TimerHandle] = None
        self._opened_at = 0.0
        self._idle_since: Optional[float] = None
        self._settings_acked = False
        self._requests = 0

    # ---- asyncio.Protocol ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Any transport with the asyncio.Transport methods (uvloop's too).
        self.transport = cast(asyncio.Transport, transport)
        self.client_address = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.scheme = b"https"
            protocol = ssl_object.selected_alpn_protocol()
            if protocol != "h2":
                log.info(
                    "%s: TLS client did not negotiate h2 (ALPN %r); closing",
                    _peer(self.client_address),
                    protocol,
                )
                transport.close()
                self._closed = True
                return
            self.client_certificate = ssl_object.getpeercert() or None
        max_connections = self.limits.max_connections
        if max_connections is not None and len(self.server.connections) >= max_connections:
            log.warning(
                "%s: refused: %d connections open", _peer(self.client_address), max_connections
            )
            transport.close()
            self._closed = True
            return
        self.transport.set_write_buffer_limits(high=WRITE_CHUNK)
        self.session = Session("server", **self.server.session_options)
        window = self.limits.connection_window_size
        if window and window > 65535:
            self.session.set_local_window_size(window)
        self.server.connections.add(self)
        self._opened_at = self._idle_since = self._loop.time()
        self._arm_timer()
        self.flush()

    def accept_upgrade(self, settings_payload: bytes, request: Fields, head_request: bool) -> None:
        """Serve an HTTP/1.1 ``Upgrade: h2c`` request as stream 1 (RFC 7540
        section 3.2), right after connection_made and the 101: ``request`` is
        its header list in HTTP/2 form, ``settings_payload`` the decoded
        ``HTTP2-Settings``."""
        session = self.session
        if session is None:
            return
        session.upgrade(settings_payload, head_request)
        self._busy = True
        try:
            self._new_request(RequestReceived(1, request, True))
        finally:
            self._busy = False
        self.flush()

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None:
            return
        self._busy = True
        try:
            try:
                events = session.receive_data(data)
            except ProtocolError as exc:
                log.info(
                    "%s: closing the connection: %s (GOAWAY %s)",
                    _peer(self.client_address),
                    exc.message,
                    exc.error_code.name,
                )
                events = session.events()
            if events:
                self._dispatch(events)
        finally:
            self._busy = False
        self.flush()

    def pause_writing(self) -> None:
        self._paused = True
        if self.transport is not None:
            # A client that does not read gets nothing more read from it either.
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self.transport is not None and not self._closed:
            self.transport.resume_reading()
        self.flush()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.server.connections.discard(self)
        handlers, self.handlers = self.handlers, {}
        for handler in handlers.values():
            # The client went away: every open stream is cancelled.
            self._close_handler(handler, _CANCEL)
        if self.session is not None:
            self.session.close()
            self.session = None
        self.transport = None

    # ---- writing -------------------------------------------------------

    def flush(self) -> None:
        """Write what nghttp2 has for the peer, until the transport pushes back."""
        session = self.session
        transport = self.transport
        if session is None or transport is None or self._closed or self._busy:
            return
        self._busy = True
        try:
            while not self._paused:
                data = session.data_to_send(WRITE_CHUNK)
                events = session.events()
                if data:
                    transport.write(data)
                if events:
                    self._dispatch(events)
                elif len(data) < WRITE_CHUNK:
                    break
        finally:
            self._busy = False
        if self.session is not None and not session.want_read and not session.want_write:
            self._closed = True
            transport.close()

    # ---- events to callbacks -------------------------------------------

    def _dispatch(self, events: List[Any]) -> None:
        # Events are told apart by identity of their class (the fastest test),
        # which mypy cannot narrow on: hence List[Any].
        handlers = self.handlers
        for event in events:
            cls = event.__class__
            if cls is RequestReceived:
                self._new_request(event)
            elif cls is DataReceived:
                self._data(event)
            elif cls is StreamClosed:
                handler = handlers.pop(event.stream_id, None)
                if handler is not None:
                    self._close_handler(handler, event.error_code)
                    if not handlers:
                        self._idle_since = self._loop.time()
            elif cls is DataRequested:
                handler = handlers.get(event.stream_id)
                if handler is not None:
                    if handler._drained is not None:
                        _resolve(handler._drained)
                        handler._drained = None
                    handler._unsent = 0
                    self._pull_body(handler, event.max_length)
            elif cls is TrailersReceived:
                handler = handlers.get(event.stream_id)
                if handler is not None:
                    handler.trailers = event.headers
                    if handler._inbox is not None:
                        handler._inbox.close()
                    self._call(handler, handler.on_request_done)
            elif cls is SettingsAcknowledged:
                self._settings_acked = True
            elif cls is GoAwayReceived:
                log.debug("%s: GOAWAY %s", _peer(self.client_address), event)

    def _new_request(self, event: RequestReceived) -> None:
        sid = event.stream_id
        session = self.session
        if session is not None and lib.nghttp2_session_get_stream_local_close(session.raw, sid) < 0:
            # Reset in the same read that opened it (Rapid Reset does so):
            # no handler, whose answer would fail on the closed stream.
            return
        handler = self.handler_class(self, sid)
        handler._started = handler._progress_at = self._loop.time()
        headers = handler.headers
        cookies = []
        for field in event.headers:
            name = field[0]
            if name[:1] == b":":
                if name == b":method":
                    handler.method = field[1]
                elif name == b":path":
                    handler.path = field[1]
                elif name == b":scheme":
                    handler.scheme = field[1]
                elif name == b":authority":
                    handler.host = field[1]
            elif name == b"cookie":
                cookies.append(field[1])
                continue
            elif name == b"host" and handler.host is None:
                handler.host = field[1]
            headers.append(field)
        if cookies:
            headers.append((b"cookie", b"; ".join(cookies)))
        if handler.host is None:
            self.session.reset_stream(sid, _PROTOCOL_ERROR)  # type: ignore[union-attr]
            return
        self.handlers[sid] = handler
        self._requests += 1
        self._idle_since = None
        if self.limits.max_body_size is not None and not event.end_stream:
            length = _content_length(headers)
            if length is not None and self._body_too_large(handler, length):
                return
        if _is_coroutine_function(type(handler).on_headers):
            handler._inbox = inbox = Inbox()
            if event.end_stream:
                inbox.close()
        if self._call(handler, handler.on_headers) and event.end_stream:
            self._call(handler, handler.on_request_done)

    def _data(self, event: DataReceived) -> None:
        sid = event.stream_id
        data = event.data
        session = self.session
        assert session is not None
        handler = self.handlers.get(sid)
        if handler is None:
            session.acknowledge_received_data(len(data), sid)
            return
        if data:
            handler._received += len(data)
            # A CONNECT stream (RFC 8441: a WebSocket) is a tunnel, not a
            # request body: what it carries is limited by its own protocol.
            if handler.method != b"CONNECT" and self._body_too_large(handler, handler._received):
                session.acknowledge_received_data(len(data), sid)
                return
            inbox = handler._inbox
            if inbox is None:
                self._call(handler, handler.on_data, data)
                session.acknowledge_received_data(len(data), sid)
            else:
                # The stream's window opens as the handler reads (consumed()).
                session.acknowledge_connection_data(len(data))
                inbox.put(data)
        if event.end_stream:
            if handler._inbox is not None:
                handler._inbox.close()
            limit = self.limits.max_body_size
            if limit is not None and handler._received > limit and handler.method != b"CONNECT":
                return  # refused with a 413 (_body_too_large): not the handler's to answer
            self._call(handler, handler.on_request_done)

    def _body_too_large(self, handler: BaseRequestHandler, size: int) -> bool:
        """413 (or RST_STREAM once answering) when ``size`` passes the limit."""
        limit = self.limits.max_body_size
        if limit is None or size <= limit:
            return False
        session = self.session
        log.warning(
            "%s: request body over %d bytes on stream %d",
            _peer(self.client_address),
            limit,
            handler.stream_id,
        )
        if session is not None and handler.stream_id in self.handlers:
            if handler.status is None:
                handler.status = 413
                session.send_response(
                    handler.stream_id,
                    [(b":status", b"413"), (b"content-type", b"text/plain")],
                    _TOO_LARGE_BODY,
                )
                # Stop the upload once the answer is out (RFC 9113 8.1): an
                # RST_STREAM queued now would go first and discard the answer.
                self._loop.call_soon(self._stop_upload, handler)
            elif handler.status != 413:
                session.reset_stream(handler.stream_id, _CANCEL)
            elif self._answer_sent(handler.stream_id):
                session.reset_stream(handler.stream_id, int(ErrorCode.NO_ERROR))
        return True

    def _answer_sent(self, stream_id: int) -> bool:
        """Whether the response of ``stream_id`` has gone out to its END_STREAM."""
        session = self.session
        return (
            session is not None
            and lib.nghttp2_session_get_stream_local_close(session.raw, stream_id) == 1
        )

    def _stop_upload(self, handler: BaseRequestHandler) -> None:
        """After a 413: RST_STREAM NO_ERROR once the answer is out (else the
        next DATA frame of the upload tries again, in _body_too_large)."""
        session = self.session
        if session is None or self.handlers.get(handler.stream_id) is not handler:
            return
        if self._answer_sent(handler.stream_id):
            session.reset_stream(handler.stream_id, int(ErrorCode.NO_ERROR))
            self.flush()

    def _fail(self, handler: BaseRequestHandler) -> None:
        session = self.session
        if session is None or handler.stream_id not in self.handlers:
            return
        if handler.status is None:
            handler.status = 500
            handler._generator = handler._reader = None
            try:
                session.send_response(
                    handler.stream_id,
                    [(b":status", b"500"), (b"content-type", b"text/plain")],
                    _ERROR_BODY,
                )
                return
            except Exception:  # the stream is past answering
                log.debug("cannot send 500 on stream %d", handler.stream_id, exc_info=True)
        try:
            session.reset_stream(handler.stream_id, _INTERNAL_ERROR)
        except Exception:  # already closed
            log.debug("cannot reset stream %d", handler.stream_id, exc_info=True)

    # ---- responses (called by handlers) ------------------------------------

    def start_response(
        self, handler: BaseRequestHandler, status: int, fields: Fields, body: Any
    ) -> None:
        session = self.session
        sid = handler.stream_id
        if session is None or sid not in self.handlers:
            raise ClientDisconnected(f"stream {sid} is closed: the client reset it or left")
        if body is not None and handler.method == b"HEAD":
            # RFC 9110 9.3.2: no body; DATA here is a PROTOCOL_ERROR to clients.
            if isinstance(body, io.IOBase) and getattr(handler, "_owns_reader", False):
                body.close()
            body = None
        if body is None or body.__class__ is bytes:
            handler._body_bytes = len(body) if body else 0
            session.send_response(sid, fields, body)
        elif isinstance(body, str):
            body = body.encode("utf-8")
            handler._body_bytes = len(body)
            session.send_response(sid, fields, body)
        elif isinstance(body, (bytearray, memoryview)):
            body = bytes(body)
            handler._body_bytes = len(body)
            session.send_response(sid, fields, body)
        elif isinstance(body, io.BytesIO):
            data = body.read()
            handler._body_bytes = len(data)
            session.send_response(sid, fields, data)
        elif isinstance(body, io.IOBase):
            handler._reader = body
            session.send_response(sid, fields, end_stream=False)
        elif callable(body):
            handler._generator = body
            session.send_response(sid, fields, end_stream=False)
        else:
            raise InvalidResponse(
                "body must be None, str, bytes, an io.IOBase or a generator "
                f"callable(size) -> (data, flag), not {type(body).__name__}"
            )
        handler.status = status
        if not self._busy:
            self.flush()

    def send_informational(self, handler: BaseRequestHandler, fields: Fields) -> None:
        if self.session is None:
            raise ClientDisconnected("the connection is closed")
        self.session.send_informational_response(handler.stream_id, fields)
        if not self._busy:
            self.flush()

    def begin_response(self, handler: BaseRequestHandler, status: int, fields: Fields) -> None:
        if self.session is None or handler.stream_id not in self.handlers:
            raise ClientDisconnected(f"stream {handler.stream_id} is closed")
        self.session.send_response(handler.stream_id, fields, end_stream=False)
        handler.status = status
        if not self._busy:
            self.flush()

    async def write(self, handler: BaseRequestHandler, data: bytes) -> None:
        session = self.session
        if session is None or handler.stream_id not in self.handlers:
            raise ClientDisconnected(f"stream {handler.stream_id} is closed")
        if handler.status is None:
            raise InvalidResponse("write() comes after begin_response()")
        if data:
            session.send_data(handler.stream_id, data)
            handler._body_bytes += len(data)
            handler._unsent += len(data)
            if not self._busy:
                self.flush()
        while handler._unsent > STREAM_HIGH_WATER and handler.stream_id in self.handlers:
            if handler._drained is None:
                handler._drained = self._loop.create_future()
            await handler._drained

    def end_response(self, handler: BaseRequestHandler, trailers: Optional[HeaderList]) -> None:
        session = self.session
        if session is None or handler.stream_id not in self.handlers:
            raise ClientDisconnected(f"stream {handler.stream_id} is closed")
        if trailers:
            session.send_trailers(handler.stream_id, trailers)
        else:
            session.end_stream(handler.stream_id)
        if not self._busy:
            self.flush()

    def stream_priority(self, handler: BaseRequestHandler) -> Priority:
        session = self.session
        if session is None or handler.stream_id not in self.handlers:
            return DEFAULT_PRIORITY
        return session.get_stream_priority(handler.stream_id)

    def set_stream_priority(
        self, handler: BaseRequestHandler, priority: Priority, ignore_client_signal: bool
    ) -> None:
        session = self.session
        if session is None or handler.stream_id not in self.handlers:
            raise ClientDisconnected(f"stream {handler.stream_id} is closed")
        session.set_stream_priority(
            handler.stream_id, priority, ignore_client_signal=ignore_client_signal
        )
        if not self._busy:
            self.flush()

    def consumed(self, handler: BaseRequestHandler, amount: int) -> None:
        """A coroutine handler read ``amount`` body bytes: open the window."""
        if self.session is not None and handler.stream_id in self.handlers:
            self.session.acknowledge_stream_data(amount, handler.stream_id)
            if not self._busy:
                self.flush()

    def push_promise(self, handler: BaseRequestHandler, request: Fields) -> BaseRequestHandler:
        session = self.session
        if session is None or handler.stream_id not in self.handlers:
            raise ClientDisconnected(f"stream {handler.stream_id} is closed")
        try:
            promised_id = session.push_promise(handler.stream_id, request)
        except PushDisabledError as exc:
            raise PushDisabled(
                "the client disabled server push (SETTINGS_ENABLE_PUSH = 0)"
            ) from exc
        promised = self.handler_class(self, promised_id)
        promised.pushed = True
        promised._started = promised._progress_at = self._loop.time()
        self.handlers[promised_id] = promised
        return promised

    def resume_body(self, handler: BaseRequestHandler) -> None:
        if handler._deferred and handler.stream_id in self.handlers:
            handler._deferred = False
            self._pull_body(handler, 16384)
            if not self._busy:
                self.flush()

    def _pull_body(self, handler: BaseRequestHandler, max_length: int) -> None:
        session = self.session
        if session is None:
            return
        sid = handler.stream_id
        generator = handler._generator
        if generator is not None:
            if handler._deferred:
                return  # the generator said DATA_DEFERRED: wait for resume()
            try:
                data, flag = generator(max_length)
            except Exception:
                log.exception("body generator of stream %d failed", sid)
                self._fail(handler)
                return
            if data:
                handler._body_bytes += len(data)
            if flag == DATA_EOF:
                handler._generator = None
                session.send_data(sid, data or b"", end_stream=True)
            elif flag == DATA_DEFERRED:
                if data:
                    session.send_data(sid, data)
                handler._deferred = True
                handler._progress_at = self._loop.time()
            elif data:
                session.send_data(sid, data)
            else:
                # DATA_OK with nothing: ask again on the next loop iteration.
                self._loop.call_soon(self._repull, handler, max_length)
            return
        reader = handler._reader
        if reader is not None:
            future = self._loop.run_in_executor(None, reader.read, FILE_CHUNK)
            future.add_done_callback(lambda f: self._file_chunk(handler, f))

    def _repull(self, handler: BaseRequestHandler, max_length: int) -> None:
        if handler.stream_id in self.handlers:
            self._pull_body(handler, max_length)
            self.flush()

    def _file_chunk(self, handler: BaseRequestHandler, future: asyncio.Future[bytes]) -> None:
        session = self.session
        reader = handler._reader
        if session is None or handler.stream_id not in self.handlers or reader is None:
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
            # At the end of a regular file END_STREAM goes with the last chunk,
            # not one read later (clients that count content-length, curl for
            # one, would reset the stream meanwhile).
            eof = not data or _at_end_of_file(reader)
            if data:
                handler._body_bytes += len(data)
            if eof:
                handler._reader = None
                if getattr(handler, "_owns_reader", False):
                    reader.close()  # no read is in flight now
                session.send_data(handler.stream_id, data or b"", end_stream=True)
            else:
                session.send_data(handler.stream_id, data)
        self.flush()

    # ---- timeouts ------------------------------------------------------

    def _arm_timer(self) -> None:
        timers = self.limits.timers()
        if timers and not self._closed:
            # Tick a few times per shortest timeout, at most once a second.
            tick = min(1.0, max(0.05, min(timers) / 4))
            self._timer = self._loop.call_later(tick, self._tick)

    def _tick(self) -> None:
        self._timer = None
        session = self.session
        if session is None or self._closed:
            return
        limits = self.limits
        now = self._loop.time()
        age = now - self._opened_at
        reason = None
        if (
            limits.settings_timeout is not None
            and not self._settings_acked
            and age > limits.settings_timeout
        ):
            reason, code = "SETTINGS not acknowledged", ErrorCode.SETTINGS_TIMEOUT
        elif (
            limits.header_timeout is not None and not self._requests and age > limits.header_timeout
        ):
            reason, code = "no complete request headers", ErrorCode.NO_ERROR
        elif (
            limits.idle_timeout is not None
            and self._idle_since is not None
            and now - self._idle_since > limits.idle_timeout
        ):
            reason, code = "idle", ErrorCode.NO_ERROR
        if reason is not None:
            log.info("%s: closing: %s (timeout)", _peer(self.client_address), reason)
            session.terminate(code)
            self.flush()
            if self.transport is not None and not self._closed:
                self._closed = True
                self.transport.close()
            return
        if limits.response_timeout is not None and self.handlers:
            self._expire_handlers(now - limits.response_timeout)
            self.flush()
        self._arm_timer()

    def _expire_handlers(self, deadline: float) -> None:
        for handler in list(self.handlers.values()):
            started = handler._progress_at
            if started > deadline:
                continue
            if handler.status is None and not handler.pushed:
                log.warning(
                    "%s: stream %d: no response in time, answering 503",
                    _peer(self.client_address),
                    handler.stream_id,
                )
                handler.status = 503
                assert self.session is not None
                self.session.send_response(
                    handler.stream_id,
                    [(b":status", b"503"), (b"content-type", b"text/plain")],
                    _TIMEOUT_BODY,
                )
            elif handler._deferred:
                log.warning(
                    "%s: stream %d: deferred body not resumed in time, resetting",
                    _peer(self.client_address),
                    handler.stream_id,
                )
                handler._deferred = False
                handler._generator = None
                assert self.session is not None
                self.session.reset_stream(handler.stream_id, _INTERNAL_ERROR)

    # ---- shutdown ------------------------------------------------------

    def send_shutdown_notice(self) -> None:
        if self.session is not None and not self._closed:
            self.session.send_shutdown_notice()
            self.flush()

    def send_final_goaway(self) -> None:
        if self.session is not None and not self._closed:
            self.session.send_goaway(ErrorCode.NO_ERROR)
            self.flush()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _at_end_of_file(reader: Any) -> bool:
    """Whether ``reader``, an ``open(path, "rb")`` of a regular file, has no more bytes."""
    if not isinstance(reader, io.BufferedReader) or not isinstance(reader.raw, io.FileIO):
        return False
    try:
        info = os.fstat(reader.fileno())
        return stat.S_ISREG(info.st_mode) and reader.tell() >= info.st_size
    except (OSError, ValueError):
        return False
