"""HTTP2Protocol: one asyncio protocol per connection.

It feeds received bytes to a server :class:`~nghttp2_cffi.Session`, turns
its events into handler callbacks, and writes what the session produces,
no further ahead than the transport's write buffer allows.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, cast

from nghttp2_cffi import (
    DEFAULT_PRIORITY,
    DataReceived,
    DataRequested,
    ErrorCode,
    GoAwayReceived,
    NGHTTP2Error,
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

from .connection import (
    _ERROR_BODY,
    _TOO_LARGE_BODY,
    STREAM_HIGH_WATER,
    WRITE_CHUNK,
    Connection,
    _content_length,
    _is_coroutine_function,
    _peer,
    _resolve,
    _response_body,
)
from .errors import ClientDisconnected, InvalidResponse, PushDisabled
from .handler import DATA_DEFERRED, DATA_EOF, BaseRequestHandler, Fields, HeaderList, Inbox
from .validation import check_http2_request

if TYPE_CHECKING:
    from .server import HTTP2Server

log = logging.getLogger("nghttp2.server")

_INTERNAL_ERROR = int(ErrorCode.INTERNAL_ERROR)
_PROTOCOL_ERROR = int(ErrorCode.PROTOCOL_ERROR)
_CANCEL = int(ErrorCode.CANCEL)
_REFUSED_STREAM = int(ErrorCode.REFUSED_STREAM)


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
        if not self._admit():
            return
        self.session = Session("server", config=self.server.session_config)
        window = self.limits.connection_window_size
        if window and window > 65535:
            self.session.set_local_window_size(window)
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

    def _release(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

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
        assert session is not None  # events come from it
        if lib.nghttp2_session_get_stream_local_close(session.raw, sid) < 0:
            # Reset in the same read that opened it (Rapid Reset does so):
            # no handler, whose answer would fail on the closed stream.
            return
        if self._tasks >= 2 * self.limits.max_concurrent_streams:
            # Handlers still running for streams gone (reset: MadeYouReset
            # with a slow app) count too: past max_concurrent_streams of
            # them, new streams are refused.
            session.reset_stream(sid, _REFUSED_STREAM)
            return
        handler = self.handler_class(self, sid)
        handler._started = handler._progress_at = self._loop.time()
        # The handler keeps the event's list: nghttp2 has checked it, with the
        # pseudo-headers first.  Only cookie crumbs (RFC 9113 8.2.3) make a copy.
        handler.headers = headers = event.headers
        cookies = 0
        for name, value in headers:
            if name[0] == 58:  # b":"
                if name == b":method":
                    handler.method = value
                elif name == b":path":
                    handler.path = value
                elif name == b":scheme":
                    handler.scheme = value
                elif name == b":authority":
                    handler.host = value
            elif name == b"cookie":
                cookies += 1
            elif name == b"host" and handler.host is None:
                handler.host = value
        if cookies > 1:
            crumbs = b"; ".join([v for k, v in headers if k == b"cookie"])
            handler.headers = headers = [f for f in headers if f[0] != b"cookie"]
            headers.append((b"cookie", crumbs))
        # validation: what libnghttp2 lets through (userinfo, '#', bytes >= 0x80)
        if handler.host is None or check_http2_request(handler.path, handler.host) is not None:
            session.reset_stream(sid, _PROTOCOL_ERROR)
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
            elif inbox.done:
                # Its on_headers returned without reading the body (Connection._run).
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
                self._answer_plain(handler, 413, _TOO_LARGE_BODY)
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
            handler._generator = handler._reader = None
            try:
                self._answer_plain(handler, 500, _ERROR_BODY)
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
        elif body is not None and body.__class__ is not bytes:
            body = _response_body(body)  # bytes, an io.IOBase or a generator
        if body is None or body.__class__ is bytes:
            handler._body_bytes = len(body) if body else 0
            session.send_response(sid, fields, body)
        elif isinstance(body, io.IOBase):
            handler._reader = body
            session.send_response(sid, fields, end_stream=False)
        else:
            handler._generator = body
            session.send_response(sid, fields, end_stream=False)
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
        generator = handler._generator
        if generator is not None:
            if handler._deferred:
                return  # the generator said DATA_DEFERRED: wait for resume()
            chunk = self._next_chunk(handler, generator, max_length)
            if chunk is None:
                return
            data, flag = chunk
            if flag == DATA_EOF:
                session.send_data(handler.stream_id, data or b"", end_stream=True)
            elif data:
                session.send_data(handler.stream_id, data)
            elif flag != DATA_DEFERRED:
                # DATA_OK with nothing: ask again on the next loop iteration.
                self._loop.call_soon(self._repull, handler, max_length)
            return
        reader = handler._reader
        if reader is not None:
            self._read_file(handler, reader)

    def _repull(self, handler: BaseRequestHandler, max_length: int) -> None:
        if handler.stream_id in self.handlers:
            self._pull_body(handler, max_length)
            self.flush()

    def _file_data(self, handler: BaseRequestHandler, data: bytes, eof: bool) -> None:
        assert self.session is not None
        self.session.send_data(handler.stream_id, data, end_stream=eof)

    # ---- timeouts ------------------------------------------------------

    def _window_shut(self, handler: BaseRequestHandler) -> bool:
        session = self.session
        sid = handler.stream_id
        if session is None or handler.status is None or not session.has_open_body(sid):
            return False
        try:
            return session.remote_window_size(sid) <= 0 or session.remote_window_size() <= 0
        except NGHTTP2Error:
            return False

    def _reset_stalled(self, handler: BaseRequestHandler) -> None:
        if self.session is not None:
            self.session.reset_stream(handler.stream_id, _CANCEL)

    def _expired(self, now: float) -> Optional[Tuple[str, int]]:
        limits = self.limits
        age = now - self._opened_at
        if (
            limits.settings_timeout is not None
            and not self._settings_acked
            and age > limits.settings_timeout
        ):
            return "SETTINGS not acknowledged", ErrorCode.SETTINGS_TIMEOUT
        if limits.header_timeout is not None and not self._requests and age > limits.header_timeout:
            return "no complete request headers", ErrorCode.NO_ERROR
        if (
            limits.idle_timeout is not None
            and self._idle_since is not None
            and now - self._idle_since > limits.idle_timeout
        ):
            return "idle", ErrorCode.NO_ERROR
        return None

    def _close_now(self, error_code: int) -> None:
        assert self.session is not None
        self.session.terminate(error_code)
        self.flush()
        if self.transport is not None and not self._closed:
            self._closed = True
            self.transport.close()

    # ---- shutdown ------------------------------------------------------

    def send_shutdown_notice(self) -> None:
        if self.session is not None and not self._closed:
            self.session.send_shutdown_notice()
            self.flush()

    def send_final_goaway(self) -> None:
        if self.session is not None and not self._closed:
            self.session.send_goaway(ErrorCode.NO_ERROR)
            self.flush()
