"""HTTP/1.1 beside HTTP/2 on the same port, for the same handlers.

:class:`HTTP11Protocol` is the server's protocol for every new connection
(unless ``HTTP2Server(http1=False)``), and it steps aside for HTTP/2 at once:

- over TLS, ALPN ``h2`` hands the transport to an
  :class:`~server.protocol.HTTP2Protocol`; ``http/1.1`` (or no ALPN) stays;
- in the clear, the first bytes decide: the HTTP/2 client preface
  (``PRI * HTTP/2.0``...) is HTTP/2 with prior knowledge, anything else
  HTTP/1.1.  Only the first bytes are looked at: HTTP/2 pays nothing after;
- ``Upgrade: h2c`` (RFC 7540 section 3.2, what ``curl --http2`` sends) on a
  request without a body, first on its connection: ``101 Switching
  Protocols``, then HTTP/2, the request becoming stream 1 (its
  ``HTTP2-Settings`` go to ``nghttp2_session_upgrade2``).  An h2c upgrade of
  a request with a body is declined (RFC 9110 7.8 lets a server ignore
  Upgrade): the request is served over HTTP/1.1.

The parts: :mod:`server.http11_parser` (httptools behind an adapter),
:mod:`server.http11_framing` (the response's bytes), :mod:`server.http11_upgrade`
(the preface sniff, h2c, switching protocols) and this module, the
connection: keep-alive, pipelining, pauses, limits, writing.  Handlers
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
import collections
import logging
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple, Union, cast

from . import http11_framing as framing
from .connection import GENERATOR_CHUNK, TOO_LARGE_BODY, Connection, peer
from .errors import InvalidResponse, ResponseAlreadySent
from .http11_framing import HTTP11Stream
from .http11_parser import (
    CallbackFailed,
    ChunkedBody,
    LengthBody,
    ParseError,
    RequestHead,
    RequestParser,
    Stop,
    UpgradeRequested,
    body_reader,
)
from .http11_upgrade import H2CRequest, h2c_request, sniff_http2_preface, start_h2c, switch_response
from .protocol import HTTP2Protocol

if TYPE_CHECKING:
    from .handler import BaseRequestHandler, Fields, HeaderList
    from .server import HTTP2Server
    from .stream import Stream

log = logging.getLogger("nghttp2.server")

# Why reading is paused (a bit each).
_PAUSE_WRITE = 1  # the client does not read our responses
_PAUSE_BODY = 2  # a coroutine handler has not read the body so far
_PAUSE_PIPELINE = 4  # too many requests waiting for their answers
_PAUSE_HELD = 8  # bytes held after an Upgrade request, beyond what we keep

# Parser events, dispatched once the parser returned.
_HEADERS, _DATA, _END, _TOO_LARGE = range(4)


class HTTP11Protocol(Connection):
    """The server side of one HTTP/1.1 connection (``http2`` in handlers,
    whose name the handler API keeps)."""

    http_version = "1.1"

    def __init__(self, server: HTTP2Server) -> None:
        super().__init__(server)
        self._pause_reasons = 0
        self._reading_paused = False
        self._parser: Optional[RequestParser] = None
        # The body of a declined Upgrade request, which llhttp leaves unparsed.
        self._body: Optional[Union[ChunkedBody, LengthBody]] = None
        self._sniff: Optional[bytes] = None  # cleartext: the first bytes, until they decide
        self._exchanges: collections.deque[HTTP11Stream] = collections.deque()
        self._pending: List[Tuple[int, HTTP11Stream, bytes]] = []
        self._current: Optional[HTTP11Stream] = None  # the request being parsed
        self._next_id = 1
        self._closing = False  # no more requests: close once the answers are out
        self._draining = False  # shutting down: answers say connection: close
        self._upgrade_candidate: Optional[HTTP11Stream] = None
        self._upgrade_ex: Optional[HTTP11Stream] = None  # waits for switch_protocols or an answer
        self._held: Optional[bytearray] = None  # bytes after that request
        self._h2c: Optional[H2CRequest] = None
        self._head_since: Optional[float] = None

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
            http2 = sniff_http2_preface(data)
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
                    self._pause(_PAUSE_HELD)
            return
        self._busy = True
        try:
            self._feed(data)
            if self._pending:
                self._dispatch()
        finally:
            self._busy = False
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
        self._pause(_PAUSE_WRITE)

    def resume_writing(self) -> None:
        self._paused = False
        self._unpause(_PAUSE_WRITE)
        self.flush()

    def _release(self) -> None:
        self._parser = None
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
                self._stop_parsing()
                self._bad_request(400, f"malformed request: {exc}")
                return

    def on_request_begin(self) -> None:
        if self._closing:
            raise Stop
        if self._head_since is None:
            self._head_since = self._loop.time()
        self._idle_since = None

    def on_request_head(self, head: RequestHead) -> None:
        """Where an HTTP/1.1 request head is complete: it becomes a stream
        (or an h2c upgrade), or is refused."""
        self._head_since = None
        method = head.method
        url = head.target
        host = path = None
        length = None
        chunked = expect = te_trailers = False
        upgrade = None
        http2_settings: List[bytes] = []
        fields = []
        cookies = []
        for field in head.fields:
            name = field[0]
            if name == b"host":
                if host is not None:
                    self._bad_request(400, "more than one Host")
                    raise Stop
                host = field[1]
            elif name == b"cookie":
                cookies.append(field[1])
                continue
            elif name == b"content-length":
                length = int(field[1])
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"expect":
                expect = field[1].lower() == b"100-continue"
            elif name == b"te":
                te_trailers = b"trailers" in field[1].lower()
            elif name == b"upgrade":
                upgrade = field[1]
            elif name == b"http2-settings":
                http2_settings.append(field[1])
            fields.append(field)
        if cookies:
            fields.append((b"cookie", b"; ".join(cookies)))
        if url[:1] == b"/" or url == b"*" or method == b"CONNECT":
            path = url
        else:  # absolute-form: scheme://authority/path
            _, sep, rest = url.partition(b"://")
            if not sep:
                self._bad_request(400, "malformed request target")
                raise Stop
            authority, slash, tail = rest.partition(b"/")
            host, path = authority, slash + tail or b"/"
        if host is None:
            if head.version != "1.0":
                self._bad_request(400, "HTTP/1.1 request without Host")
                raise Stop
            sockname = self.transport.get_extra_info("sockname") if self.transport else None
            host = peer(sockname).encode("ascii") if sockname else b"localhost"
        has_body = chunked or bool(length)
        if (
            upgrade is not None
            and head.upgrade
            and self.scheme == b"http"
            and not self.streams
            and not self._pending
            and not has_body
        ):
            h2c = h2c_request(method, path, host, fields, upgrade, http2_settings)
            if h2c is not None:
                self._h2c = h2c
                self._requests += 1
                return

        sid = self._next_id
        self._next_id += 2
        ex = HTTP11Stream(self, sid, self._loop.time())
        ex.method = method
        ex.path = path
        ex.scheme = self.scheme
        ex.host = host
        ex.headers = [
            (b":method", method),
            (b":scheme", self.scheme),
            (b":authority", host),
            (b":path", path),
        ] + fields
        ex.keep_alive = head.keep_alive
        ex.http10 = head.version == "1.0"
        ex.te_trailers = te_trailers
        ex.expect_continue = expect and has_body and not ex.http10
        ex.length = length
        ex.chunked_request = chunked
        self._current = ex
        self._exchanges.append(ex)
        self._attach(ex)
        self._requests += 1
        if upgrade is not None and head.upgrade:
            self._upgrade_candidate = ex
        self._pending.append((_HEADERS, ex, b""))
        limit = self.limits.max_concurrent_streams
        if limit is not None and len(self._exchanges) >= limit:
            self._pause(_PAUSE_PIPELINE)

    def on_request_body(self, data: bytes) -> None:
        ex = self._current
        if ex is None:
            return
        ex.received += len(data)
        limit = self.limits.max_body_size
        if limit is not None and ex.received > limit:
            self._pending.append((_TOO_LARGE, ex, b""))
            raise Stop
        self._pending.append((_DATA, ex, data))

    def on_request_trailer(self, name: bytes, value: bytes) -> None:
        ex = self._current
        if ex is not None:
            if ex.trailers is None:
                ex.trailers = []
            ex.trailers.append((name, value))

    def on_request_end(self) -> None:
        ex = self._current
        if ex is None:  # an h2c upgrade: the parser raises HttpParserUpgrade next
            return
        if ex is self._upgrade_candidate and (ex.chunked_request or ex.length):
            return  # llhttp skipped the body: it is read by _body, see _upgrade()
        self._current = None
        if not ex.keep_alive:
            self._closing = True
        self._pending.append((_END, ex, b""))

    def on_bad_request(self, status: int, reason: str) -> None:
        self._bad_request(status, reason)

    def _stop_parsing(self) -> None:
        """Parse nothing more on this connection."""
        self._parser = None
        self._body = None
        self._current = None
        self._head_since = None

    def _upgrade(self, rest: bytes) -> Optional[bytes]:
        """The parser stopped after a request asking to Upgrade; returns what
        to parse next, or None."""
        self._parser = None
        h2c, self._h2c = self._h2c, None
        if h2c is not None:
            start_h2c(self, h2c, rest)
            return None
        ex, self._upgrade_candidate = self._upgrade_candidate, None
        if ex is None:
            self._closing = True
            return None
        if ex.chunked_request or ex.length:
            # The upgrade is declined (its body is a request body): read the
            # body as the head frames it, then parse on.
            self._body = body_reader(
                self, ex.chunked_request, ex.length, self.limits.max_header_list_size
            )
            return rest
        # No body: wait for the handler to switch protocols or answer.
        self._upgrade_ex = ex
        self._held = bytearray(rest)
        return None

    def _resume_parsing(self) -> None:
        """After a declined Upgrade: parse what came after it."""
        self._upgrade_ex = None
        held, self._held = self._held, None
        self._unpause(_PAUSE_HELD)
        if self._closing or self._closed:
            return
        self._parser = RequestParser(self, self.limits.max_header_list_size)
        if held:
            self._loop.call_soon(self._feed_held, bytes(held))

    def _feed_held(self, data: bytes) -> None:
        if not self._closed and self._parser is not None:
            self.data_received(data)

    # ---- parser events to handler callbacks -------------------------------

    def _dispatch(self) -> None:
        pending, self._pending = self._pending, []
        streams = self.streams
        for kind, ex, data in pending:
            if streams.get(ex.id) is not ex:
                continue
            if kind == _DATA:
                if not self._request_body(ex, data):
                    ex.unread += len(data)
                    if ex.unread > self.limits.initial_window_size:
                        self._pause(_PAUSE_BODY)
            elif kind == _HEADERS:
                limit = self.limits.max_body_size
                if limit is not None and ex.length is not None and ex.length > limit:
                    self._too_large(ex)
                else:
                    self._request_head(ex, not (ex.chunked_request or ex.length))
            elif kind == _END:
                ex.request_done = True
                if (ex.chunked_request or ex.length) and ex.status != 413:
                    self._request_done(ex)
                if ex.response_done:
                    self._finish(ex, 0)
            else:  # _TOO_LARGE
                self._too_large(ex)

    def _too_large(self, ex: HTTP11Stream) -> None:
        log.warning(
            "%s: request body over %s bytes", peer(self.client_address), self.limits.max_body_size
        )
        ex.failed = True
        self._stop_parsing()
        self._closing = True
        if ex.status is None:
            ex.close_after = True
            self._drop_body_source(ex)
            self._answer_plain(ex, 413, TOO_LARGE_BODY)
        else:
            ex.broken = True
            ex.ended = True

    def _bad_request(self, status: int, reason: str) -> None:
        """Answer a request we cannot parse (no handler sees it), then close."""
        log.info("%s: %d: %s", peer(self.client_address), status, reason)
        self._closing = True
        self._exchanges.append(framing.canned(self, status, self._loop.time()))

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

    def _abort(self, reason: str) -> None:
        log.info("%s: closing: %s", peer(self.client_address), reason)
        self._closed = True
        self._parser = None
        if self.transport is not None:
            self.transport.close()

    def _response_done(self, ex: HTTP11Stream) -> None:
        ex.response_done = True
        if ex.close_after:
            self._closing = True
            self._stop_parsing()
        limit = self.limits.max_concurrent_streams
        if limit is None or len(self._exchanges) < limit:
            self._unpause(_PAUSE_PIPELINE)
        if ex.id and (ex.request_done or self._closing):
            self._finish(ex, 0)
        if ex is self._upgrade_ex:
            self._resume_parsing()
        parser = self._parser
        if not self._exchanges and self._current is None and not (parser and parser.in_head):
            self._idle_since = self._loop.time()

    def _finish(self, ex: HTTP11Stream, error_code: int) -> None:
        if self.streams.pop(ex.id, None) is None:
            return
        if ex.unread:
            ex.unread = 0
            self._unpause(_PAUSE_BODY)
        self._close_stream(ex, error_code)

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
                self._unpause(_PAUSE_BODY)

    # ---- switching protocols -------------------------------------------

    def switch_protocols(
        self,
        handler: BaseRequestHandler,
        headers: Any,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
    ) -> None:
        """Answer ``101 Switching Protocols`` with ``headers`` and give the
        connection to ``protocol_factory()`` (see the module docstring)."""
        ex = cast(HTTP11Stream, handler.exchange)
        self._open(ex)
        if ex is not self._upgrade_ex:
            raise InvalidResponse("switch_protocols() answers a request that asked to Upgrade")
        if ex.status is not None:
            raise ResponseAlreadySent(f"stream {ex.id} has already answered")
        ex.out.append(switch_response(headers))
        ex.status = 101
        ex.started = ex.ended = True
        ex.switch = protocol_factory
        if not self._busy:
            self.flush()

    def _switch(self, ex: HTTP11Stream) -> None:
        """The 101 is written: the connection goes to the new protocol."""
        self.streams.pop(ex.id, None)
        if self.server.access_log:
            self._log_access(ex, 0)
        held, self._held = self._held, None
        try:
            protocol = ex.switch()  # type: ignore[misc]
        except Exception:
            log.exception(
                "%s: the protocol factory of switch_protocols() failed", peer(self.client_address)
            )
            self._abort("switching protocols failed")
            return
        self.hand_over(protocol, bytes(held or b""))

    def hand_over(self, protocol: asyncio.BaseProtocol, data: bytes) -> None:
        """Give the transport to ``protocol``, with ``data`` already received."""
        transport = self.transport
        assert transport is not None
        self._stop()
        self._parser = None
        self.transport = None
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self._reading_paused:
            transport.resume_reading()
        if data and not transport.is_closing():
            protocol.data_received(data)  # type: ignore[attr-defined]

    # ---- reading pauses ------------------------------------------------

    def _pause(self, reason: int) -> None:
        self._pause_reasons |= reason
        if not self._reading_paused and self.transport is not None and not self._closed:
            self._reading_paused = True
            self.transport.pause_reading()

    def _unpause(self, reason: int) -> None:
        self._pause_reasons &= ~reason
        if (
            self._reading_paused
            and not self._pause_reasons
            and self.transport is not None
            and not self._closed
        ):
            self._reading_paused = False
            self.transport.resume_reading()

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
