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

Requests are parsed by httptools (llhttp, the parser of Node.js and of
uvicorn's default): in a micro-benchmark of a typical browser GET it parsed
about 13-25x faster than h11 on CPython and no slower on PyPy.  Handlers
see what they see over HTTP/2: ``headers`` starts with ``:method``,
``:scheme``, ``:authority`` and ``:path`` (then the fields as sent, names
lower-cased, cookies joined); every body kind, ``begin_response``/
``write``/``end_response``, ``send_informational`` and coroutine handlers
work alike.  Differences: ``push()`` raises :class:`~server.errors.PushDisabled`;
trailers go out as chunked trailers only to clients that sent ``TE:
trailers`` (else they are dropped); a failure after the response headers
closes the connection (HTTP/1.1 has no RST_STREAM).  Keep-alive,
pipelining (answers in request order), chunked bodies both ways, ``Expect:
100-continue`` (100 is sent once ``on_headers`` returned without answering),
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
import base64
import binascii
import collections
import http
import io
import logging
import re
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple, cast

import httptools

from .connection import (
    _ERROR_BODY,
    _TOO_LARGE_BODY,
    STREAM_HIGH_WATER,
    Connection,
    _is_coroutine_function,
    _peer,
    _resolve,
    _response_body,
)
from .errors import ClientDisconnected, InvalidResponse, PushDisabled, ResponseAlreadySent
from .handler import DATA_DEFERRED, DATA_EOF, BaseRequestHandler, Inbox
from .protocol import HTTP2Protocol
from .validation import FIELD_OVERHEAD, check_http11_head, check_trailer_field

if TYPE_CHECKING:
    from .server import HTTP2Server

log = logging.getLogger("nghttp2.server")

#: The HTTP/2 client connection preface (RFC 9113 section 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


# Bytes of a first line without its end that still wait for the decision;
# past them it is HTTP/1.1's (a long request line is served as before).
SNIFF_LIMIT = 1024
_NOT_IN_REQUEST_LINE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def speaks_http2(data: bytes, max_line: int) -> Optional[bool]:
    """Which protocol the first bytes of a cleartext connection speak: True
    for HTTP/2 (its preface, or anything that is not an HTTP/1.x request:
    nghttp2 then answers an invalid preface with GOAWAY PROTOCOL_ERROR, as
    RFC 9113 section 3.4 asks), False for HTTP/1.1, None while undecided.

    A request line ends in ``HTTP/`` and a version (``GET / HTTP/2.0`` stays
    HTTP/1.1's to refuse); bytes that begin like the preface are HTTP/2's.
    Up to ``max_line`` bytes wait for the line's end; more go to HTTP/1.1.
    """
    head = data[:24]
    if PREFACE.startswith(head) or head.startswith(PREFACE[:14]):
        return None if len(data) < 24 else True
    start = len(data) - len(data.lstrip(b"\r\n"))  # RFC 9112 2.2: leading CRLFs
    end = data.find(b"\n", start)
    if _NOT_IN_REQUEST_LINE.search(data, start, len(data) if end < 0 else end):
        return True  # binary: no request line
    if end < 0:
        return None if len(data) <= max_line else False
    version = data[start:end].rstrip(b"\r").rpartition(b" ")[2]
    return not version.startswith(b"HTTP/")


#: Bytes asked of a body generator at a time (an HTTP/2 DATA frame's worth).
GENERATOR_CHUNK = 16384

# Why reading is paused (a bit each).
_PAUSE_WRITE = 1  # the client does not read our responses
_PAUSE_BODY = 2  # a coroutine handler has not read the body so far
_PAUSE_PIPELINE = 4  # too many requests waiting for their answers
_PAUSE_HELD = 8  # bytes held after an Upgrade request, beyond what we keep

# Parser events, dispatched once the parser returned.
_HEADERS, _DATA, _END, _TOO_LARGE, _MALFORMED = range(5)
_PROTOCOL_ERROR = 1  # on_close's error code for a request whose body was malformed

_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$").match
_BAD_VALUE = re.compile(rb"[\r\n\0]").search
Fields = List[Tuple[bytes, bytes]]
_REASONS = {s.value: s.phrase.encode("ascii") for s in http.HTTPStatus}
_NO_BODY_STATUS = frozenset({204, 304})
# Never copied into an h2c request's HTTP/2 header list (RFC 9113 8.2.2).
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        b"http2-settings",
        b"host",
    }
)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_H2C_SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"


class _Stop(Exception):
    """Raised in a parser callback: parse nothing more on this connection."""


class _Exchange:
    """One request and its response on an HTTP/1.1 connection."""

    __slots__ = (
        "handler",
        "keep_alive",
        "http10",
        "head_request",
        "te_trailers",
        "expect_continue",
        "continue_sent",
        "length",
        "chunked_request",
        "received",
        "unread",
        "request_done",
        "failed",
        "out",
        "started",
        "chunked",
        "remaining",
        "no_body",
        "ended",
        "close_after",
        "broken",
        "reading",
        "switch",
        "trailers",
        "response_done",
    )

    def __init__(self, handler: Optional[BaseRequestHandler]) -> None:
        # None only for the canned 400/431 answers, which no handler code sees.
        self.handler: BaseRequestHandler = handler  # type: ignore[assignment]
        self.keep_alive = True
        self.http10 = False
        self.head_request = False
        self.te_trailers = False
        self.expect_continue = False
        self.continue_sent = False
        self.length: Optional[int] = None  # the request's content-length
        self.chunked_request = False
        self.received = 0
        self.unread = 0  # body bytes in a coroutine handler's inbox
        self.request_done = False
        self.failed = False  # on_headers raised: no more callbacks
        self.out: List[bytes] = []  # response bytes, written when this is first in line
        self.started = False  # the final response head is in out
        self.chunked = False
        self.remaining: Optional[int] = None  # identity body bytes still due
        self.no_body = False  # HEAD, 204, 304: the head only
        self.ended = False  # the whole response is in out
        self.close_after = False
        self.broken = False  # failed mid-body: close once its bytes are out
        self.reading = False  # a file read is under way
        self.switch: Optional[Callable[[], asyncio.BaseProtocol]] = None
        self.trailers: Optional[Fields] = None
        self.response_done = False


class HTTP11Protocol(Connection):
    """The server side of one HTTP/1.1 connection (``http2`` in handlers,
    whose name the handler API keeps)."""

    http_version = "1.1"

    def __init__(self, server: HTTP2Server) -> None:
        self.server = server
        self.handler_class = server.handler_class
        self.transport: Optional[asyncio.Transport] = None
        self.handlers: dict[int, BaseRequestHandler] = {}
        self.client_address: Any = None
        self.client_certificate: Optional[Dict[str, Any]] = None
        self.scheme = b"http"
        self.limits = server.limits
        self._loop = asyncio.get_running_loop()
        self._busy = False
        self._closed = False
        self._paused = False
        self._pause_reasons = 0
        self._reading_paused = False
        self._parser: Any = None
        self._sniff: Optional[bytes] = None  # cleartext: the first bytes, until they decide
        self._exchanges: collections.deque[_Exchange] = collections.deque()
        self._by_id: dict[int, _Exchange] = {}
        self._pending: List[Tuple[int, _Exchange, bytes]] = []
        self._current: Optional[_Exchange] = None  # the request being parsed
        self._next_id = 1
        self._closing = False  # no more requests: close once the answers are out
        self._draining = False  # shutting down: answers say connection: close
        self._upgrade_candidate: Optional[_Exchange] = None
        self._upgrade_ex: Optional[_Exchange] = None  # waits for switch_protocols or an answer
        self._held: Optional[bytearray] = None  # bytes after that request
        self._replay: Optional[_Exchange] = None
        self._replay_head = False
        self._h2c: Optional[Tuple[bytes, bytes, bytes, Fields, bytes]] = None
        # The request head being parsed.
        self._url = b""
        self._fields: Fields = []
        self._in_head = False
        self._head_size = 0
        self._head_raw = 0
        self._chunk_len = 0
        self._trailer_size = 0  # validation: the trailer fields' size so far
        self._chunk_raw: Optional[int] = None  # validation: see on_chunk_header
        # Timeouts: one timer per connection.
        self._timer: Optional[asyncio.TimerHandle] = None
        self._opened_at = 0.0
        self._head_since: Optional[float] = None
        self._idle_since: Optional[float] = None
        self._requests = 0

    # ---- asyncio.Protocol ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Any transport with the asyncio.Transport methods (uvloop's too).
        self.transport = cast(asyncio.Transport, transport)
        self.client_address = transport.get_extra_info("peername")
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            if ssl_object.selected_alpn_protocol() == "h2":
                self._hand_over(HTTP2Protocol(self.server), b"")
                return
            self.scheme = b"https"
            self.client_certificate = ssl_object.getpeercert() or None
        else:
            self._sniff = b""
        if not self._admit():
            return
        self._parser = httptools.HttpRequestParser(self)
        self._opened_at = self._head_since = self._loop.time()
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        if self._sniff is not None:
            data = self._sniff + data
            h2 = speaks_http2(data, SNIFF_LIMIT)
            if h2 is None:
                self._sniff = data
                return
            if h2:
                self._hand_over(HTTP2Protocol(self.server), data)
                return
            self._sniff = None
        if self._parser is None:
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
        self._exchanges.clear()
        self._by_id.clear()

    # ---- parsing (httptools callbacks; handlers run after the parser returns)

    def _feed(self, data: bytes) -> None:
        while True:
            self._chunk_len = len(data)
            try:
                self._parser.feed_data(data)
            except httptools.HttpParserUpgrade as exc:
                rest = self._upgrade(data[exc.args[0] :])
                if rest is None:
                    return
                data = rest
                continue
            except httptools.HttpParserCallbackError as exc:
                self._stop_parsing()
                if not isinstance(exc.__context__, _Stop):
                    log.error(
                        "%s: HTTP/1.1 parser callback failed",
                        _peer(self.client_address),
                        exc_info=exc.__context__,
                    )
                    self._closing = True
                return
            except httptools.HttpParserError as exc:
                ex = self._current  # validation: an error in a body (or its trailers)
                self._stop_parsing()
                if ex is not None:
                    self._reject_body(ex, 400, f"malformed request body: {exc}")
                else:
                    self._bad_request(400, f"malformed request: {exc}")
                return
            if self._in_head:
                self._head_raw += len(data)
                if self._head_raw > self.limits.max_header_list_size:
                    self._stop_parsing()
                    self._bad_request(431, "request head too large")
            elif self._chunk_raw is not None and self._current is not None:
                # validation: the bytes in a chunk that are not its data
                # (the last chunk's trailers) count like a head's.
                self._chunk_raw += len(data)
                if self._chunk_raw - self._current.received > self.limits.max_header_list_size:
                    self._reject_body(self._current, 431, "request trailers too large")
                    self._stop_parsing()
            return

    def on_message_begin(self) -> None:
        if self._replay is not None:
            return
        if self._closing:
            raise _Stop
        self._in_head = True
        self._url = b""
        self._fields = []
        self._head_size = 0
        self._head_raw = -self._chunk_len  # counted from the next chunk on
        if self._head_since is None:
            self._head_since = self._loop.time()
        self._idle_since = None

    def on_url(self, url: bytes) -> None:
        if self._replay is None:
            self._url += url
            self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._replay_head:
            return
        if self._in_head:
            self._fields.append((name.lower(), value))
            self._head_size += len(name) + len(value) + 32
            if self._head_size > self.limits.max_header_list_size:
                self._bad_request(431, "request header fields too large")
                raise _Stop
        elif self._current is not None:  # a trailer of a chunked request
            if self._current.trailers is None:
                self._current.trailers = []
                self._trailer_size = 0
            name = name.lower()
            # validation: framing fields refused, the size bounded
            self._trailer_size += len(name) + len(value) + FIELD_OVERHEAD
            rejection = check_trailer_field(
                name, self._trailer_size, self.limits.max_header_list_size
            )
            if rejection is not None:
                self._reject_body(self._current, *rejection)
                raise _Stop
            self._current.trailers.append((name, value))

    # validation: httptools holds a trailer line whole until it ends; these
    # two (called for chunked bodies only) let _feed bound it.
    def on_chunk_header(self) -> None:
        ex = self._current
        if ex is not None:
            self._chunk_raw = ex.received - self._chunk_len

    def on_chunk_complete(self) -> None:
        self._chunk_raw = None

    def on_headers_complete(self) -> None:
        if self._replay is not None:
            self._replay_head = False
            self._in_head = False
            self._current = self._replay
            return
        self._in_head = False
        self._head_since = None
        parser = self._parser
        method = parser.get_method()
        url = self._url
        host = path = None
        length = None
        chunked = expect = te_trailers = False
        upgrade = None
        http2_settings: List[bytes] = []
        fields = []
        cookies = []
        for field in self._fields:
            name = field[0]
            if name == b"host":
                if host is not None:
                    self._bad_request(400, "more than one Host")
                    raise _Stop
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
        version = parser.get_http_version()
        # validation: request line, Host and framing (RFC 9112 sections 3, 6)
        rejection = check_http11_head(method, url, version, host, self._fields if chunked else None)
        if rejection is not None:
            self._bad_request(*rejection)
            raise _Stop
        if url[:1] == b"/" or url == b"*" or method == b"CONNECT":
            path = url
        else:  # absolute-form: scheme://authority/path
            _, sep, rest = url.partition(b"://")
            if not sep:
                self._bad_request(400, "malformed request target")
                raise _Stop
            authority, slash, tail = rest.partition(b"/")
            host, path = authority, slash + tail or b"/"
        if host is None:
            if version != "1.0":
                self._bad_request(400, "HTTP/1.1 request without Host")
                raise _Stop
            sockname = self.transport.get_extra_info("sockname") if self.transport else None
            host = _peer(sockname).encode("ascii") if sockname else b"localhost"

        if (
            upgrade is not None
            and parser.should_upgrade()
            and self.scheme == b"http"
            and not self.handlers
            and not self._pending
            and b"h2c" in _tokens(upgrade)
            and len(http2_settings) == 1
            and not chunked
            and not length
        ):
            payload = _settings_payload(http2_settings[0])
            if payload is not None:
                self._h2c = (method, path, host, fields, payload)
                self._requests += 1
                return

        sid = self._next_id
        self._next_id += 2
        handler = self.handler_class(self, sid)  # type: ignore[arg-type]
        handler._started = handler._progress_at = self._loop.time()
        handler.method = method
        handler.path = path
        handler.scheme = self.scheme
        handler.host = host
        handler.headers = [
            (b":method", method),
            (b":scheme", self.scheme),
            (b":authority", host),
            (b":path", path),
        ] + fields
        ex = _Exchange(handler)
        ex.keep_alive = parser.should_keep_alive()
        ex.http10 = version == "1.0"
        ex.head_request = method == b"HEAD"
        ex.te_trailers = te_trailers
        ex.expect_continue = expect and not ex.http10
        ex.length = length
        ex.chunked_request = chunked
        self._current = ex
        self._exchanges.append(ex)
        self._by_id[sid] = ex
        self.handlers[sid] = handler
        self._requests += 1
        if upgrade is not None and parser.should_upgrade():
            self._upgrade_candidate = ex
        self._pending.append((_HEADERS, ex, b""))
        limit = self.limits.max_concurrent_streams
        if limit is not None and len(self._exchanges) >= limit:
            self._pause(_PAUSE_PIPELINE)

    def on_body(self, body: bytes) -> None:
        ex = self._current
        if ex is None:
            return
        ex.received += len(body)
        limit = self.limits.max_body_size
        if limit is not None and ex.received > limit:
            self._pending.append((_TOO_LARGE, ex, b""))
            raise _Stop
        self._pending.append((_DATA, ex, body))

    def on_message_complete(self) -> None:
        ex = self._current
        if ex is None:  # an h2c upgrade: the parser raises HttpParserUpgrade next
            return
        if ex is self._upgrade_candidate and (ex.chunked_request or ex.length):
            return  # llhttp skipped the body: it is parsed again, see _upgrade()
        self._current = None
        self._replay = None
        if not ex.keep_alive:
            self._closing = True
        self._pending.append((_END, ex, b""))

    def _stop_parsing(self) -> None:
        """Parse nothing more on this connection."""
        self._parser = None
        self._current = None
        self._in_head = False
        self._head_since = None
        self._chunk_raw = None

    def _upgrade(self, rest: bytes) -> Optional[bytes]:
        """The parser stopped after a request asking to Upgrade; returns what
        to parse next, or None."""
        h2c, self._h2c = self._h2c, None
        if h2c is not None:
            self._parser = None
            self._start_h2c(h2c, rest)
            return None
        ex, self._upgrade_candidate = self._upgrade_candidate, None
        if ex is None:
            self._parser = None
            self._closing = True
            return None
        if ex.chunked_request or ex.length:
            # llhttp leaves the body of an Upgrade request unparsed: the
            # upgrade is declined, so parse it with a new parser, fed a head
            # that says only how the body is framed.
            self._parser = httptools.HttpRequestParser(self)
            self._replay = self._current = ex
            self._replay_head = True
            framing = (
                b"transfer-encoding: chunked"
                if ex.chunked_request
                else b"content-length: %d" % (ex.length or 0)
            )
            return b"PUT / HTTP/1.1\r\n" + framing + b"\r\n\r\n" + rest
        # No body: wait for the handler to switch protocols or answer.
        self._parser = None
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
        self._parser = httptools.HttpRequestParser(self)
        if held:
            self._loop.call_soon(self._feed_held, bytes(held))

    def _feed_held(self, data: bytes) -> None:
        if not self._closed and self._parser is not None:
            self.data_received(data)

    # ---- parser events to handler callbacks -------------------------------

    def _dispatch(self) -> None:
        pending, self._pending = self._pending, []
        for kind, ex, data in pending:
            handler = ex.handler
            if handler.stream_id not in self.handlers:
                continue
            if kind == _DATA:
                if ex.failed:
                    continue
                inbox = handler._inbox
                if inbox is None:
                    self._call(handler, handler.on_data, data)
                elif inbox.done:
                    pass  # its on_headers returned without reading the body (Connection._run)
                else:
                    inbox.put(data)
                    ex.unread += len(data)
                    if ex.unread > self.limits.initial_window_size:
                        self._pause(_PAUSE_BODY)
            elif kind == _HEADERS:
                self._begin_request(ex)
            elif kind == _END:
                ex.request_done = True
                if ex.trailers is not None:
                    handler.trailers = ex.trailers
                if handler._inbox is not None:
                    handler._inbox.close()
                if not ex.failed and handler.status != 413:
                    self._call(handler, handler.on_request_done)
                if ex.response_done:
                    self._finish(ex, 0)
            elif kind == _MALFORMED:  # validation: see _reject_body
                self._finish(ex, _PROTOCOL_ERROR)
            else:  # _TOO_LARGE
                self._too_large(ex)

    def _begin_request(self, ex: _Exchange) -> None:
        handler = ex.handler
        limit = self.limits.max_body_size
        if limit is not None and ex.length is not None and ex.length > limit:
            self._too_large(ex)
            return
        if _is_coroutine_function(type(handler).on_headers):
            handler._inbox = Inbox()
        if not self._call(handler, handler.on_headers):
            ex.failed = True
        if (
            ex.expect_continue
            and handler.status is None
            and not ex.continue_sent
            and not ex.request_done
        ):
            ex.continue_sent = True
            ex.out.append(_CONTINUE)

    def _too_large(self, ex: _Exchange) -> None:
        handler = ex.handler
        log.warning(
            "%s: request body over %s bytes", _peer(self.client_address), self.limits.max_body_size
        )
        ex.failed = True
        self._stop_parsing()
        self._closing = True
        if handler.status is None:
            ex.close_after = True
            handler._generator = handler._reader = None
            self._answer_plain(handler, 413, _TOO_LARGE_BODY)
        else:
            ex.broken = True
            ex.ended = True

    def _reject_body(self, ex: _Exchange, status: int, reason: str) -> None:
        """validation: ``ex``'s body or trailers are malformed, its head was
        not.  A handler not started yet never is: the client gets
        ``status``.  A started one sees its body end with an error
        (``on_close(PROTOCOL_ERROR)``; ASGI: ``http.disconnect``), after the
        server answered ``status`` if it had not answered yet.  Either way
        the connection closes."""
        self._closing = True
        handler = ex.handler
        if any(kind == _HEADERS and item is ex for kind, item, _ in self._pending):
            self._pending = [event for event in self._pending if event[1] is not ex]
            self._exchanges.remove(ex)
            self._by_id.pop(handler.stream_id, None)
            self.handlers.pop(handler.stream_id, None)
            self._bad_request(status, reason)
            return
        log.info("%s: %d: %s", _peer(self.client_address), status, reason)
        ex.failed = True
        if handler.status is None:
            ex.close_after = True
            handler._generator = handler._reader = None
            self._answer_plain(handler, status, _REASONS.get(status, b"Bad Request") + b"\n")
        elif not ex.ended:
            ex.broken = ex.ended = True  # HTTP/1.1 can only cut the connection
        else:
            ex.close_after = True
        self._pending.append((_MALFORMED, ex, b""))  # on_close once the parser returned

    def _bad_request(self, status: int, reason: str) -> None:
        """Answer a request we cannot parse (no handler sees it), then close."""
        log.info("%s: %d: %s", _peer(self.client_address), status, reason)
        self._closing = True
        ex = _Exchange(None)
        body = _REASONS.get(status, b"Bad Request") + b"\n"
        ex.out.append(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, _REASONS.get(status, b""), len(body), body)
        )
        ex.started = ex.ended = ex.close_after = True
        self._exchanges.append(ex)

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
                    handler = ex.handler
                    if handler is not None and handler._unsent:
                        handler._unsent = 0
                        if handler._drained is not None:
                            _resolve(handler._drained)
                            handler._drained = None
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
                if not ex.started or not self._pull(ex):
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
        log.info("%s: closing: %s", _peer(self.client_address), reason)
        self._closed = True
        self._parser = None
        if self.transport is not None:
            self.transport.close()

    def _response_done(self, ex: _Exchange) -> None:
        ex.response_done = True
        if ex.close_after:
            self._closing = True
            self._stop_parsing()
        limit = self.limits.max_concurrent_streams
        if limit is None or len(self._exchanges) < limit:
            self._unpause(_PAUSE_PIPELINE)
        if ex.handler is not None and (ex.request_done or self._closing):
            self._finish(ex, 0)
        if ex is self._upgrade_ex:
            self._resume_parsing()
        if not self._exchanges and self._current is None and not self._in_head:
            self._idle_since = self._loop.time()

    def _finish(self, ex: _Exchange, error_code: int) -> None:
        handler = ex.handler
        if self.handlers.pop(handler.stream_id, None) is None:
            return
        self._by_id.pop(handler.stream_id, None)
        if ex.unread:
            ex.unread = 0
            self._unpause(_PAUSE_BODY)
        self._close_handler(handler, error_code)

    def _pull(self, ex: _Exchange) -> bool:
        """More of a generator's or a file's body (first in line only); True
        when there is something to write now."""
        handler = ex.handler
        generator = handler._generator
        if generator is not None:
            if handler._deferred:
                return False
            chunk = self._next_chunk(handler, generator, GENERATOR_CHUNK)
            if chunk is None:
                return bool(ex.out) or ex.broken
            data, flag = chunk
            if data:
                self._frame(ex, data)
            if flag == DATA_EOF:
                self._end_body(ex, None)
            elif not data and flag != DATA_DEFERRED:
                # DATA_OK with nothing: ask again on the next loop iteration.
                self._loop.call_soon(self.flush)
                return False
            return True
        reader = handler._reader
        if reader is not None and not ex.reading:
            ex.reading = True
            self._read_file(handler, reader)
        return False

    def _file_data(self, handler: BaseRequestHandler, data: bytes, eof: bool) -> None:
        ex = self._by_id[handler.stream_id]
        ex.reading = False
        if data:
            self._frame(ex, data)
        if eof:
            self._end_body(ex, None)

    def _frame(self, ex: _Exchange, data: bytes) -> None:
        """Queue body bytes in the response's framing."""
        if ex.no_body:
            return
        if ex.chunked:
            ex.out.append(b"%x\r\n" % len(data))
            ex.out.append(data)
            ex.out.append(b"\r\n")
        elif ex.remaining is not None:
            if len(data) > ex.remaining:
                log.warning(
                    "stream %d: body longer than its content-length; cut", ex.handler.stream_id
                )
                data = data[: ex.remaining]
                ex.close_after = True
            ex.remaining -= len(data)
            ex.out.append(data)
        else:
            ex.out.append(data)

    def _end_body(self, ex: _Exchange, trailers: Optional[List[Any]]) -> None:
        ex.ended = True
        if ex.no_body:
            return
        if ex.chunked:
            if trailers and ex.te_trailers:
                ex.out.append(b"0\r\n" + _field_block(trailers) + b"\r\n")
            else:
                ex.out.append(b"0\r\n\r\n")
        elif ex.remaining:
            log.warning("stream %d: body shorter than its content-length", ex.handler.stream_id)
            ex.broken = True

    def _head(
        self, ex: _Exchange, status: int, fields: Fields, length: Optional[int], streamed: bool
    ) -> None:
        """Queue the response head; ``length``: a known body's size."""
        handler_length = None
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b""))]
        append = lines.append
        for name, value in fields[1:]:
            if not _TOKEN(name) or _BAD_VALUE(value):
                raise InvalidResponse(f"invalid response field {name!r}: {value!r}")
            if name == b"content-length":
                try:
                    handler_length = int(value)
                except ValueError as exc:
                    raise InvalidResponse(f"content-length {value!r} is not a number") from exc
                continue
            append(name + b": " + value + b"\r\n")
        no_body = ex.head_request or status in _NO_BODY_STATUS
        if status == 304 or (ex.head_request and length in (None, 0) and not streamed):
            length = handler_length if handler_length is not None else length
        if streamed:
            if no_body:
                if handler_length is not None:
                    append(b"content-length: %d\r\n" % handler_length)
            elif handler_length is not None:
                ex.remaining = handler_length
                append(b"content-length: %d\r\n" % handler_length)
            elif ex.http10:
                ex.close_after = True
            else:
                ex.chunked = True
                append(b"transfer-encoding: chunked\r\n")
        elif length is not None and status != 204:
            append(b"content-length: %d\r\n" % length)
        if (
            not ex.keep_alive
            or self._draining
            or (ex.expect_continue and not ex.continue_sent and not ex.request_done)
        ):
            ex.close_after = True
        if ex.close_after or (ex.http10 and streamed and not ex.chunked and ex.remaining is None):
            append(b"connection: close\r\n")
        elif ex.http10:
            append(b"connection: keep-alive\r\n")
        append(b"\r\n")
        ex.no_body = no_body
        ex.started = True
        ex.out.append(b"".join(lines))

    # ---- responses (called by handlers) ------------------------------------

    def _exchange(self, handler: BaseRequestHandler) -> _Exchange:
        ex = self._by_id.get(handler.stream_id)
        if ex is None or self._closed or ex.handler is not handler:
            raise ClientDisconnected(f"stream {handler.stream_id} is closed")
        return ex

    def start_response(
        self, handler: BaseRequestHandler, status: int, fields: Fields, body: Any
    ) -> None:
        ex = self._exchange(handler)
        if body is not None and body.__class__ is not bytes:
            body = _response_body(body)  # bytes, an io.IOBase or a generator
        streamed = body is not None and body.__class__ is not bytes
        self._head(ex, status, fields, None if streamed else len(body or b""), streamed)
        handler.status = status
        if not streamed:
            handler._body_bytes = len(body or b"")
            if body and not ex.no_body:
                ex.out.append(body)
            self._end_body(ex, None)
        elif ex.no_body:
            self._end_body(ex, None)
            if isinstance(body, io.IOBase) and getattr(handler, "_owns_reader", False):
                body.close()
        elif isinstance(body, io.IOBase):
            handler._reader = body
        else:
            handler._generator = body
        if not self._busy:
            self.flush()

    def send_informational(self, handler: BaseRequestHandler, fields: Fields) -> None:
        ex = self._exchange(handler)
        if ex.http10:
            return  # RFC 9110 15.2: no 1xx to an HTTP/1.0 client
        status = int(fields[0][1])
        if status == 100:
            if ex.continue_sent:
                return
            ex.continue_sent = True
        ex.out.append(
            b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, _REASONS.get(status, b""), _field_block(fields))
        )
        if not self._busy:
            self.flush()

    def begin_response(self, handler: BaseRequestHandler, status: int, fields: Fields) -> None:
        ex = self._exchange(handler)
        self._head(ex, status, fields, None, True)
        handler.status = status
        if not self._busy:
            self.flush()

    async def write(self, handler: BaseRequestHandler, data: bytes) -> None:
        ex = self._exchange(handler)
        if handler.status is None:
            raise InvalidResponse("write() comes after begin_response()")
        if ex.ended:
            raise InvalidResponse("write() after end_response()")
        if data:
            self._frame(ex, data)
            handler._body_bytes += len(data)
            handler._unsent += len(data)
            if not self._busy:
                self.flush()
        while (
            handler._unsent > STREAM_HIGH_WATER
            and handler.stream_id in self.handlers
            and not self._closed
        ):
            if handler._drained is None:
                handler._drained = self._loop.create_future()
            await handler._drained

    def end_response(self, handler: BaseRequestHandler, trailers: Optional[List[Any]]) -> None:
        ex = self._exchange(handler)
        if handler.status is None:
            raise InvalidResponse("end_response() comes after begin_response()")
        if not ex.ended:
            self._end_body(ex, trailers)
        if not self._busy:
            self.flush()

    def consumed(self, handler: BaseRequestHandler, amount: int) -> None:
        ex = self._by_id.get(handler.stream_id)
        if ex is not None and ex.unread:
            ex.unread = max(0, ex.unread - amount)
            if ex.unread <= self.limits.initial_window_size // 2:
                self._unpause(_PAUSE_BODY)

    def push_promise(self, handler: BaseRequestHandler, request: Fields) -> BaseRequestHandler:
        raise PushDisabled("server push needs HTTP/2 (this is an HTTP/1.1 connection)")

    def resume_body(self, handler: BaseRequestHandler) -> None:
        if handler._deferred and handler.stream_id in self.handlers:
            handler._deferred = False
            if not self._busy:
                self.flush()

    def switch_protocols(
        self,
        handler: BaseRequestHandler,
        headers: Any,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
    ) -> None:
        """Answer ``101 Switching Protocols`` with ``headers`` and give the
        connection to ``protocol_factory()`` (see the module docstring)."""
        ex = self._exchange(handler)
        if ex is not self._upgrade_ex:
            raise InvalidResponse("switch_protocols() answers a request that asked to Upgrade")
        if handler.status is not None:
            raise ResponseAlreadySent(f"stream {handler.stream_id} has already answered")
        fields = [(b":status", b"101")]
        for name, value in headers:
            fields.append(
                (
                    name.lower().encode("latin-1")
                    if isinstance(name, str)
                    else bytes(name).lower(),
                    value.encode("latin-1") if isinstance(value, str) else bytes(value),
                )
            )
        for name, value in fields[1:]:
            if not _TOKEN(name) or _BAD_VALUE(value):
                raise InvalidResponse(f"invalid response field {name!r}: {value!r}")
        handler.status = 101
        ex.out.append(b"HTTP/1.1 101 Switching Protocols\r\n" + _field_block(fields) + b"\r\n")
        ex.started = ex.ended = True
        ex.switch = protocol_factory
        if not self._busy:
            self.flush()

    def _switch(self, ex: _Exchange) -> None:
        """The 101 is written: the connection goes to the new protocol."""
        handler = ex.handler
        self.handlers.pop(handler.stream_id, None)
        self._by_id.pop(handler.stream_id, None)
        if self.server.access_log:
            self._log_access(handler, 0)
        held, self._held = self._held, None
        try:
            protocol = ex.switch()  # type: ignore[misc]
        except Exception:
            log.exception(
                "%s: the protocol factory of switch_protocols() failed", _peer(self.client_address)
            )
            self._abort("switching protocols failed")
            return
        self._hand_over(protocol, bytes(held or b""))

    def _fail(self, handler: BaseRequestHandler) -> None:
        ex = self._by_id.get(handler.stream_id)
        if ex is None or self._closed:
            return
        ex.failed = True
        if handler.status is None:
            handler._generator = handler._reader = None
            try:
                self._answer_plain(handler, 500, _ERROR_BODY)
                return
            except Exception:
                log.debug("cannot send 500 on stream %d", handler.stream_id, exc_info=True)
        if ex.ended:
            return  # the response is complete: nothing to take back
        # Past the headers HTTP/1.1 can only cut the connection.
        handler._generator = handler._reader = None
        ex.broken = ex.ended = True
        if not self._busy:
            self.flush()

    # ---- handing the connection over -----------------------------------

    def _hand_over(self, protocol: asyncio.BaseProtocol, data: bytes) -> None:
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

    def _start_h2c(self, request: Tuple[bytes, bytes, bytes, Fields, bytes], rest: bytes) -> None:
        method, path, host, fields, payload = request
        transport = self.transport
        assert transport is not None
        transport.write(_H2C_SWITCH)
        h2 = HTTP2Protocol(self.server)
        self._hand_over(h2, b"")
        if h2.session is None:
            return
        connection_options = set()
        for name, value in fields:
            if name == b"connection":
                connection_options.update(_tokens(value))
        headers = [
            (b":method", method),
            (b":scheme", b"http"),
            (b":authority", host),
            (b":path", path),
        ]
        for name, value in fields:
            if name in _HOP_BY_HOP or name in connection_options:
                continue
            if name == b"te" and value.lower() != b"trailers":
                continue
            headers.append((name, value))
        try:
            h2.accept_upgrade(payload, headers, method == b"HEAD")
        except Exception:
            log.exception("%s: h2c upgrade failed", _peer(self.client_address))
            transport.close()
            return
        if rest and not transport.is_closing():
            h2.data_received(rest)

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

    # ---- timeouts ------------------------------------------------------

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

    # ---- shutdown (HTTP2Server.shutdown) -----------------------------------

    def send_shutdown_notice(self) -> None:
        """Answer what is in flight with ``connection: close``; take no more."""
        self._draining = True
        self._closing = True
        if self._current is None:
            self._parser = None
        self._maybe_close()

    def send_final_goaway(self) -> None:
        self.send_shutdown_notice()


def _tokens(value: bytes) -> Set[bytes]:
    return {token.strip().lower() for token in value.split(b",")}


def _field_block(fields: List[Any]) -> bytes:
    """``name: value\\r\\n`` lines of ``(name, value)`` pairs, pseudo-headers skipped."""
    lines = []
    for name, value in fields:
        if name.__class__ is not bytes:  # trailers as handlers give them
            name = name.lower().encode("utf-8") if isinstance(name, str) else bytes(name)
        if value.__class__ is not bytes:
            value = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if name[:1] == b":":
            continue
        if not _TOKEN(name) or _BAD_VALUE(value):
            raise InvalidResponse(f"invalid field {name!r}: {value!r}")
        lines.append(name + b": " + value + b"\r\n")
    return b"".join(lines)


def _settings_payload(value: bytes) -> Optional[bytes]:
    """The HTTP2-Settings header (base64url, unpadded) decoded, or None."""
    try:
        payload = base64.urlsafe_b64decode(value.strip() + b"=" * (-len(value.strip()) % 4))
    except (binascii.Error, ValueError):
        return None
    return payload if len(payload) % 6 == 0 else None
