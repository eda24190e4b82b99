"""HTTP2Protocol: one asyncio protocol per connection.

It feeds received bytes to a server :class:`~nghttp2_cffi.Session` (whose
events become streams and callbacks in :mod:`server.http2_requests`),
implements the response interface over it, and writes what the session
produces, no further ahead than the transport's write buffer allows.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, List, Optional, Tuple, Union, cast

from nghttp2_cffi import (
    DEFAULT_PRIORITY,
    ErrorCode,
    NGHTTP2Error,
    Priority,
    ProtocolError,
    PushDisabledError,
    RequestReceived,
    Session,
)
from nghttp2_cffi.session import IN_PLACE_READ, WANT_WRITE

from .connection import WRITE_CHUNK, peer
from .errors import PushDisabled
from .handler import Fields, HeaderList
from .http2_requests import RequestEvents
from .stream import Stream

if TYPE_CHECKING:
    from .server import HTTP2Server

log = logging.getLogger("nghttp2.server")

_NO_ERROR = int(ErrorCode.NO_ERROR)
_PROTOCOL_ERROR = int(ErrorCode.PROTOCOL_ERROR)
_CANCEL = int(ErrorCode.CANCEL)
_REFUSED_STREAM = int(ErrorCode.REFUSED_STREAM)
_WANT_WRITE = WANT_WRITE


class HTTP2Protocol(RequestEvents):
    """The server side of one HTTP/2 connection (``http2`` in handlers)."""

    def __init__(self, server: HTTP2Server) -> None:
        super().__init__(server)
        self.session: Optional[Session] = None
        self._settings_acked = False
        #: Resets asked for while a read is dispatched, of streams with a
        #: response queued: sent after it (see :meth:`reset`).
        self._late_resets: Optional[List[Tuple[int, int]]] = None

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
                    peer(self.client_address),
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
        # Our SETTINGS go with what answers the client's first read, in one
        # write, when that read comes in this loop round (the h2c sniff hands
        # the connection over with it; a TLS read often brings it too); else
        # on their own, at the round's end.  One send(2) less per connection.
        self.flush_soon()

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
            self._new_request(RequestReceived(1, request, True), self._loop.time())
        finally:
            self._busy = False
        self.flush()

    def buffer_updated(self, nbytes: int) -> None:
        # A large read (a body) is parsed in the server's read buffer.
        view = self.server.read_buffer[:nbytes]
        self.data_received(view if nbytes >= IN_PLACE_READ else bytes(view))

    def data_received(self, data: Union[bytes, memoryview]) -> None:
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
                    peer(self.client_address),
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
        wants = -1  # session.wants(), when taken after the last change
        try:
            while not self._paused:
                wants = -1
                data = session.data_to_send(WRITE_CHUNK)
                events = session.events()
                if data:
                    transport.write(data)
                if events:
                    # Mostly the StreamClosed of the responses just taken:
                    # ask nghttp2 whether they made more to send rather than
                    # take another (empty) round of data_to_send.
                    self._dispatch(events)
                    if self.session is None:
                        break
                    if self._late_resets is not None:
                        continue
                    wants = session.wants()
                    if wants & _WANT_WRITE:
                        continue
                elif self._late_resets is not None:
                    resets, self._late_resets = self._late_resets, None
                    for stream_id, error_code in resets:
                        session.reset_stream(stream_id, error_code)
                    continue
                elif len(data) >= WRITE_CHUNK:
                    continue
                break
        finally:
            self._busy = False
        if self.session is not None and not (wants if wants >= 0 else session.wants()):
            self._closed = True
            transport.close()

    # ---- the response interface (see Connection) ----------------------------

    def send_head(
        self, stream: Stream, status: int, fields: Fields, body: Optional[bytes], streamed: bool
    ) -> bool:
        session = self.session
        assert session is not None  # the stream is open
        if streamed:
            session.send_response(stream.id, fields, end_stream=False)
            # RFC 9110 9.3.2: no body; DATA here is a PROTOCOL_ERROR to clients.
            return stream.method != b"HEAD"
        if body is not None and stream.method == b"HEAD":
            body = None
        session.send_response(stream.id, fields, body)
        return False

    def send_data(self, stream: Stream, data: bytes, end: bool) -> None:
        session = self.session
        assert session is not None
        if data and stream.method == b"HEAD":
            data = b""
        session.send_data(stream.id, data, end_stream=end)

    def send_trailers(self, stream: Stream, trailers: HeaderList) -> None:
        assert self.session is not None
        self.session.send_trailers(stream.id, trailers)

    def send_interim(self, stream: Stream, fields: Fields) -> None:
        assert self.session is not None
        self.session.send_informational_response(stream.id, fields)

    def reset(self, stream: Stream, error_code: int) -> None:
        session = self.session
        if session is None:
            return
        if self._busy and stream.status is not None:
            # A coroutine handler that failed past its response's head
            # within this read (it runs eagerly, see Connection._start):
            # what it queued goes first, then the reset, as if it had
            # written as it went.
            if self._late_resets is None:
                self._late_resets = []
            self._late_resets.append((stream.id, error_code))
            return
        session.reset_stream(stream.id, error_code)

    def consumed(self, stream: Stream, amount: int) -> None:
        """A handler read ``amount`` body bytes: open the stream's window.

        The WINDOW_UPDATE (nghttp2 queues one once half a window is read)
        goes out at the end of this loop round: an app reading the chunks
        of one read costs one flush, not one per chunk."""
        session = self.session
        if session is not None and stream.is_open():
            session.acknowledge_stream_data(amount, stream.id)
            if not self._busy:
                self.flush_soon()

    def stream_priority(self, stream: Stream) -> Priority:
        session = self.session
        if session is None or not stream.is_open():
            return DEFAULT_PRIORITY
        return session.get_stream_priority(stream.id)

    def set_stream_priority(
        self, stream: Stream, priority: Priority, ignore_client_signal: bool
    ) -> None:
        self._open(stream)
        assert self.session is not None
        self.session.set_stream_priority(
            stream.id, priority, ignore_client_signal=ignore_client_signal
        )
        if not self._busy:
            self.flush()

    def push_promise(self, stream: Stream, request: Fields) -> Stream:
        """Promise ``request`` (``:method``, ``:scheme``, ``:authority``,
        ``:path`` first) on ``stream``: the pushed stream, with its handler."""
        self._open(stream)
        session = self.session
        assert session is not None
        try:
            promised_id = session.push_promise(stream.id, request)
        except PushDisabledError as exc:
            raise PushDisabled(
                "the client disabled server push (SETTINGS_ENABLE_PUSH = 0)"
            ) from exc
        # The pseudo-headers come first, in handler.push's order.
        method, scheme, host, path = [value for _, value in request[:4]]
        promised = Stream(self, promised_id, self._loop.time(), request, method, path, scheme, host)
        promised.pushed = True
        self._attach(promised)
        return promised

    # ---- timeouts ------------------------------------------------------

    def _window_shut(self, stream: Stream) -> bool:
        session = self.session
        sid = stream.id
        if session is None or stream.status is None or not session.has_open_body(sid):
            return False
        try:
            return session.remote_window_size(sid) <= 0 or session.remote_window_size() <= 0
        except NGHTTP2Error:
            return False

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
