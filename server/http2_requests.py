"""HTTP/2 requests, from the session's events to handler callbacks.

:class:`RequestEvents` is the receiving half of
:class:`~server.protocol.HTTP2Protocol`: a request's head becomes a
:class:`~server.stream.Stream` with its handler (after the checks
libnghttp2 leaves to the server, and the bound on handlers still running),
DATA goes to its body with the window kept shut until the handler reads,
and the body-size limit answers 413.  Sending is the protocol's
(:mod:`server.protocol`), as HTTP/1.1's reading is
:mod:`server.http11_requests`.
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional

from nghttp2_cffi import (
    DataReceived,
    DataRequested,
    ErrorCode,
    GoAwayReceived,
    RequestReceived,
    Session,
    SettingsAcknowledged,
    StreamClosed,
    TrailersReceived,
)

from .connection import TOO_LARGE_BODY, Connection, content_length, peer
from .stream import Stream
from .validation import check_http2_request

log = logging.getLogger("nghttp2.server")

_NO_ERROR = int(ErrorCode.NO_ERROR)
_PROTOCOL_ERROR = int(ErrorCode.PROTOCOL_ERROR)
_CANCEL = int(ErrorCode.CANCEL)
_REFUSED_STREAM = int(ErrorCode.REFUSED_STREAM)


class RequestEvents(Connection):
    """Turns a server session's events into streams and callbacks."""

    session: Optional[Session]
    _settings_acked: bool

    # ---- events to callbacks -------------------------------------------

    def _dispatch(self, events: List[Any]) -> None:
        # Events are told apart by identity of their class (the fastest test),
        # which mypy cannot narrow on: hence List[Any].
        streams = self.streams
        now = 0.0  # the loop's time, once per batch of requests
        for event in events:
            cls = event.__class__
            if cls is RequestReceived:
                if not now:
                    now = self._loop.time()
                self._new_request(event, now)
            elif cls is DataReceived:
                self._data(event)
            elif cls is StreamClosed:
                stream = streams.pop(event.stream_id, None)
                if stream is not None:
                    self._close_stream(stream, event.error_code)
                    if not streams:
                        self._idle_since = self._loop.time()
            elif cls is DataRequested:
                stream = streams.get(event.stream_id)
                if stream is not None:
                    self._sent(stream)
                    self._pull_body(stream, event.max_length)
            elif cls is TrailersReceived:
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.trailers = event.headers
                    self._request_done(stream)
            elif cls is SettingsAcknowledged:
                self._settings_acked = True
            elif cls is GoAwayReceived:
                log.debug("%s: GOAWAY %s", peer(self.client_address), event)

    def _new_request(self, event: RequestReceived, now: float) -> None:
        """Where an HTTP/2 request (or an h2c upgrade's) becomes a stream."""
        sid = event.stream_id
        session = self.session
        assert session is not None  # events come from it
        if session.local_closed(sid) is None:
            # Reset in the same read that opened it (Rapid Reset does so):
            # no handler, whose answer would fail on the closed stream.
            return
        if self._tasks >= 2 * self.limits.max_concurrent_streams:
            # Handlers still running for streams gone (reset: MadeYouReset
            # with a slow app) count too: past max_concurrent_streams of
            # them, new streams are refused.
            session.reset_stream(sid, _REFUSED_STREAM)
            return
        # The stream keeps the event's list: nghttp2 has checked it, with the
        # pseudo-headers first.  Only cookie crumbs (RFC 9113 8.2.3) make a copy.
        headers = event.headers
        method = path = scheme = host = None
        cookies = 0
        expect = False
        for name, value in headers:
            if name[0] == 58:  # b":"
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":scheme":
                    scheme = value
                elif name == b":authority":
                    host = value
            elif name == b"cookie":
                cookies += 1
            elif name == b"host":
                if host is None:
                    host = value
            elif name == b"expect":
                expect = value.lower() == b"100-continue"
        # validation: what libnghttp2 lets through (userinfo, '#', bytes >= 0x80)
        if host is None or check_http2_request(path, host) is not None:
            session.reset_stream(sid, _PROTOCOL_ERROR)
            return
        if cookies > 1:
            crumbs = b"; ".join([v for k, v in headers if k == b"cookie"])
            headers = [f for f in headers if f[0] != b"cookie"]
            headers.append((b"cookie", crumbs))
        stream = Stream(self, sid, now, headers, method, path, scheme, host)
        end_stream = event.end_stream
        stream.expect_continue = expect and not end_stream
        self.streams[sid] = stream
        stream.handler = self.handler_class(self, sid)
        self._requests += 1
        self._idle_since = None
        if self.limits.max_body_size is not None and not end_stream:
            length = content_length(headers)
            if length is not None and self._body_too_large(stream, length):
                return
        self._request_head(stream, end_stream)

    def _data(self, event: DataReceived) -> None:
        sid = event.stream_id
        data = event.data
        session = self.session
        assert session is not None
        stream = self.streams.get(sid)
        if stream is None:
            session.acknowledge_received_data(len(data), sid)
            return
        if data:
            stream.received += len(data)
            # A CONNECT stream (RFC 8441: a WebSocket) is a tunnel, not a
            # request body: what it carries is limited by its own protocol.
            if stream.method != b"CONNECT" and self._body_too_large(stream, stream.received):
                session.acknowledge_received_data(len(data), sid)
                return
            if self._request_body(stream, data):
                session.acknowledge_received_data(len(data), sid)
            else:
                # The stream's window opens as the handler reads (consumed()).
                session.acknowledge_connection_data(len(data))
        if event.end_stream:
            limit = self.limits.max_body_size
            if limit is not None and stream.received > limit and stream.method != b"CONNECT":
                if stream.inbox is not None:
                    stream.inbox.close()
                return  # refused with a 413 (_body_too_large): not the handler's to answer
            self._request_done(stream)

    def _body_too_large(self, stream: Stream, size: int) -> bool:
        """413 (or RST_STREAM once answering) when ``size`` passes the limit."""
        limit = self.limits.max_body_size
        if limit is None or size <= limit:
            return False
        session = self.session
        log.warning(
            "%s: request body over %d bytes on stream %d",
            peer(self.client_address),
            limit,
            stream.id,
        )
        if session is not None and stream.is_open():
            if stream.status is None:
                self._answer_plain(stream, 413, TOO_LARGE_BODY)
                # Stop the upload once the answer is out (RFC 9113 8.1): an
                # RST_STREAM queued now would go first and discard the answer.
                self._loop.call_soon(self._stop_upload, stream)
            elif stream.status != 413:
                session.reset_stream(stream.id, _CANCEL)
            elif session.local_closed(stream.id):
                session.reset_stream(stream.id, _NO_ERROR)
        return True

    def _stop_upload(self, stream: Stream) -> None:
        """After a 413: RST_STREAM NO_ERROR once the answer is out (else the
        next DATA frame of the upload tries again, in _body_too_large)."""
        session = self.session
        if session is None or not stream.is_open():
            return
        if session.local_closed(stream.id):
            session.reset_stream(stream.id, _NO_ERROR)
            self.flush()
