"""HTTP/1.1 beside HTTP/2 on the same port, for the same handlers.

:class:`HTTP11Protocol` is the server's protocol for every new connection
(unless ``HTTP2Server(http1=False)``), and it steps aside for HTTP/2 at once:

- over TLS, ALPN ``h2`` hands the transport to an
  :class:`~server.protocol.HTTP2Protocol`; ``http/1.1`` (or no ALPN) stays;
- in the clear, the first bytes decide: the HTTP/2 client preface
  (``PRI * HTTP/2.0``...) is HTTP/2 with prior knowledge, an HTTP/1.x
  request line HTTP/1.1; anything else goes to HTTP/2, which answers an
  invalid preface with GOAWAY PROTOCOL_ERROR.  Only the first bytes are
  looked at: HTTP/2 pays nothing after;
- ``Upgrade: h2c`` (RFC 7540 section 3.2, what ``curl --http2`` sends) on a
  request without a body, first on its connection: ``101 Switching
  Protocols``, then HTTP/2, the request becoming stream 1 (its
  ``HTTP2-Settings`` go to ``nghttp2_session_upgrade2``).  An h2c upgrade of
  a request with a body is declined (RFC 9110 7.8 lets a server ignore
  Upgrade): the request is served over HTTP/1.1.

The parts, each a module: :mod:`server.http11_parser` (httptools behind
an adapter), :mod:`server.http11_requests` (request heads and bodies into
streams: ``RequestReading``), :mod:`server.http11_upgrade` (the preface
sniff, h2c, switching protocols: ``UpgradeHandling``),
:mod:`server.http11_framing` (the response's bytes) and this module, the
connection itself: keep-alive, pipelining, writing in request order, the
response interface, timeouts.  Handlers
see what they see over HTTP/2: ``headers`` starts with ``:method``,
``:scheme``, ``:authority`` and ``:path`` (then the fields as sent, names
lower-cased, cookies joined); every body kind, ``begin_response``/
``write``/``end_response``, ``send_informational`` and coroutine handlers
work alike.  Differences: ``push()`` raises :class:`~server.errors.PushDisabled`;
trailers go out as chunked trailers only to clients that sent ``TE:
trailers`` (else they are dropped); a failure after the response headers
closes the connection (HTTP/1.1 has no RST_STREAM).  Keep-alive,
pipelining (answers in request order), chunked bodies both ways, ``Expect:
100-continue`` (100 is sent once the handler reads the body, or once a
synchronous ``on_headers`` returned without answering),
HEAD and ``Connection: close`` are handled here; :class:`~server.limits.Limits`
apply (``max_header_list_size`` -> 431, ``max_body_size`` -> 413,
``header_timeout``, ``idle_timeout`` between requests, ``response_timeout``,
``max_concurrent_streams`` bounds the pipeline, ``initial_window_size`` the
body a coroutine handler has not read yet).

Switching protocols (WebSocket and others): a request that asks
``Connection: Upgrade`` / ``Upgrade: <token>`` (other than an accepted h2c)
reaches its handler like any other; nothing after it is parsed until it is
answered.  The handler either answers normally (the upgrade is declined and
HTTP/1.1 goes on), or calls::

    self.http2.switch_protocols(self, headers, protocol_factory)

which sends ``101 Switching Protocols`` with ``headers`` (``(name, value)``
pairs; ``upgrade``/``connection`` are allowed here), then calls
``protocol_factory()`` for an :class:`asyncio.Protocol`, gives it the
transport (``transport.set_protocol``, ``connection_made``) and the bytes
the client sent after the request head (``data_received``).  From then on
the connection belongs to that protocol: the handler is forgotten without
``on_close`` (its task, if any, runs on), and ``connection_lost`` goes to
the new protocol.  ``switch_protocols`` raises
:class:`~server.errors.InvalidResponse` on a request that did not ask to
upgrade (or on HTTP/2: check ``self.http2.http_version == "1.1"``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Optional, Tuple, cast

from . import http11_framing as framing
from .connection import GENERATOR_CHUNK, peer
from .errors import InvalidResponse
from .http11_framing import HTTP11Stream
from .http11_parser import (
    CallbackFailed,
    ParseError,
    RequestParser,
    Stop,
    UpgradeRequested,
)
from .http11_requests import PAUSE_BODY, PAUSE_HELD, PAUSE_PIPELINE, PAUSE_WRITE
from .http11_upgrade import SNIFF_LIMIT, UpgradeHandling, speaks_http2
from .protocol import HTTP2Protocol

if TYPE_CHECKING:
    from .handler import Fields, HeaderList
    from .stream import Stream

log = logging.getLogger("nghttp2.server")


class HTTP11Protocol(UpgradeHandling):
    """The server side of one HTTP/1.1 connection (``http2`` in handlers,
    whose name the handler API keeps)."""

    # ---- asyncio.Protocol ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Any transport with the asyncio.Transport methods (uvloop's too).
        self.transport = cast(asyncio.Transport, transport)
        self.client_address = transport.get_extra_info("peername")
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            if ssl_object.selected_alpn_protocol() == "h2":
                self.hand_over(HTTP2Protocol(self.server), b"")
                return
            self.scheme = b"https"
            self.client_certificate = ssl_object.getpeercert() or None
        else:
            self._sniff = b""
        if not self._admit():
            return
        self._parser = RequestParser(self, self.limits.max_header_list_size)
        self._opened_at = self._head_since = self._loop.time()
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        if self._sniff is not None:
            data = self._sniff + data
            http2 = speaks_http2(data, SNIFF_LIMIT)
            if http2 is None:
                self._sniff = data
                return
            self._sniff = None
            if http2:
                self.hand_over(HTTP2Protocol(self.server), data)
                return
        if self._parser is None and self._body is None:
            if self._held is not None:
                self._held += data
                if len(self._held) > self.limits.max_header_list_size:
                    self._pause(PAUSE_HELD)
            return
        self._busy = True
        try:
            self._feed(data)
            if self._pending:
                self._dispatch()
        finally:
            self._busy = False
        exchanges = self._exchanges
        if exchanges and exchanges[0].out and exchanges[0].switch is None:
            # Answers are written at the end of the loop round, every
            # connection's together, not between reads: a write wakes the
            # client, which then preempts the server on its CPU before the
            # next read (0.7 involuntary context switches per request with
            # h2load --h1 -c50, 0.3 batched).
            self.flush_soon()
        else:
            self.flush()

    def eof_received(self) -> bool:
        # A client may half-close after its last request: answer it, then
        # close (TLS transports close at once whatever this says).
        self._closing = True
        self._stop_parsing()
        self._maybe_close()
        return self.scheme == b"http"

    def pause_writing(self) -> None:
        self._paused = True
        self._pause(PAUSE_WRITE)

    def resume_writing(self) -> None:
        self._paused = False
        self._unpause(PAUSE_WRITE)
        self.flush()

    def _release(self) -> None:
        self._close_parser()
        self._body = None
        self._exchanges.clear()

    # ---- parsing (handlers run after the parser returns) --------------------

    def _feed(self, data: bytes) -> None:
        while data:
            try:
                body = self._body
                if body is not None:
                    data = body.feed(data)
                    if not body.done:
                        return
                    # The declined Upgrade's body is read: what follows is a
                    # new request, for a new parser.
                    self._body = None
                    self._parser = RequestParser(self, self.limits.max_header_list_size)
                    continue
                parser = self._parser
                if parser is None:
                    return
                parser.feed(data)
                return
            except UpgradeRequested as upgrade:
                rest = self._upgrade(upgrade.rest)
                if rest is None:
                    return
                data = rest
            except Stop:
                self._stop_parsing()
                return
            except CallbackFailed as exc:
                self._stop_parsing()
                log.error(
                    "%s: HTTP/1.1 parser callback failed",
                    peer(self.client_address),
                    exc_info=exc.__cause__,
                )
                self._closing = True
                return
            except ParseError as exc:
                # In a head: 400; in a body (validation): see _reject_body.
                self.on_bad_request(400, f"malformed request: {exc}")
                self._stop_parsing()
                return

    # ---- writing -------------------------------------------------------

    def flush(self) -> None:
        """Write the answers in request order, as far as the transport takes them."""
        transport = self.transport
        if transport is None or self._closed or self._busy:
            return
        self._busy = True
        try:
            exchanges = self._exchanges
            while exchanges and not self._paused:
                ex = exchanges[0]
                if ex.out:
                    out = ex.out
                    transport.write(out[0] if len(out) == 1 else b"".join(out))
                    out.clear()
                    if ex.unsent:
                        self._sent(ex)
                if ex.broken:
                    self._abort("a response failed after its headers")
                    return
                if ex.ended:
                    if ex.switch is not None:
                        self._switch(ex)
                        return
                    exchanges.popleft()
                    self._response_done(ex)
                    continue
                if not ex.started or not self._pull_body(ex, GENERATOR_CHUNK):
                    break
        finally:
            self._busy = False
        self._maybe_close()

    def _maybe_close(self) -> None:
        if (
            self._closing
            and not self._exchanges
            and self._current is None
            and self.transport is not None
            and not self._closed
            and self._held is None
        ):
            self._closed = True
            self.transport.close()

    def _response_done(self, ex: HTTP11Stream) -> None:
        ex.response_done = True
        if ex.close_after:
            self._closing = True
            self._stop_parsing()
        limit = self.limits.max_concurrent_streams
        if limit is None or len(self._exchanges) < limit:
            self._unpause(PAUSE_PIPELINE)
        if ex.id and (ex.request_done or self._closing):
            self._finish(ex, 0)
        if ex is self._upgrade_ex:
            self._resume_parsing()
        parser = self._parser
        if not self._exchanges and self._current is None and not (parser and parser.in_head):
            self._idle_since = self._loop.time()

    # ---- the response interface (see Connection) ----------------------------

    def send_head(
        self, stream: Stream, status: int, fields: Fields, body: Optional[bytes], streamed: bool
    ) -> bool:
        ex = cast(HTTP11Stream, stream)
        length = None if streamed else len(body) if body else 0
        framing.head(ex, status, fields, length, streamed, self._draining)
        if streamed:
            return not ex.no_body
        if body and not ex.no_body:
            ex.out.append(body)
        framing.end_body(ex, None)
        return False

    def send_data(self, stream: Stream, data: bytes, end: bool) -> None:
        ex = cast(HTTP11Stream, stream)
        if ex.ended:
            if data:
                raise InvalidResponse("write() after end_response()")
            return
        if data:
            framing.frame(ex, data)
        if end:
            framing.end_body(ex, None)

    def send_trailers(self, stream: Stream, trailers: HeaderList) -> None:
        ex = cast(HTTP11Stream, stream)
        if not ex.ended:
            framing.end_body(ex, list(trailers))

    def send_interim(self, stream: Stream, fields: Fields) -> None:
        ex = cast(HTTP11Stream, stream)
        if not ex.http10:  # RFC 9110 15.2: no 1xx to an HTTP/1.0 client
            ex.out.append(framing.interim(int(fields[0][1]), fields))

    def reset(self, stream: Stream, error_code: int) -> None:
        ex = cast(HTTP11Stream, stream)
        if ex.ended:
            return  # the response is complete: nothing to take back
        # Past the headers HTTP/1.1 can only cut the connection.
        self._drop_body_source(ex)
        ex.broken = ex.ended = True
        if not self._busy:
            self.flush()

    def consumed(self, stream: Stream, amount: int) -> None:
        ex = cast(HTTP11Stream, stream)
        if ex.unread:
            ex.unread = max(0, ex.unread - amount)
            if ex.unread <= self.limits.initial_window_size // 2:
                self._unpause(PAUSE_BODY)

    # ---- timeouts and shutdown -------------------------------------------

    def _expired(self, now: float) -> Optional[Tuple[str, int]]:
        limits = self.limits
        if (
            limits.header_timeout is not None
            and self._head_since is not None
            and self._held is None
            and now - self._head_since > limits.header_timeout
        ):
            return "no complete request head", 0
        if (
            limits.idle_timeout is not None
            and self._idle_since is not None
            and not self._exchanges
            and now - self._idle_since > limits.idle_timeout
        ):
            return "idle", 0
        return None

    def _close_now(self, error_code: int) -> None:
        assert self.transport is not None
        self._closed = True
        self.transport.close()

    def send_shutdown_notice(self) -> None:
        """Answer what is in flight with ``connection: close``; take no more."""
        self._draining = True
        self._closing = True
        if self._current is None:
            self._parser = None
        self._maybe_close()

    def send_final_goaway(self) -> None:
        self.send_shutdown_notice()
