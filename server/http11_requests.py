"""Reading HTTP/1.1 requests: what the parser finds becomes streams.

:class:`RequestReading` is the part of :class:`~server.http11.HTTP11Protocol`
that listens to the :class:`~server.http11_parser.RequestParser`:
:meth:`RequestReading.on_request_head` is where an HTTP/1.1 request head is
complete (host, target form, framing, ``Expect``, ``Upgrade``), and the
body chunks and ends it queues are dispatched to the handlers once the
parser has returned (:meth:`RequestReading._dispatch`).  It also holds the
connection's HTTP/1.1 state and its reading pauses.
"""

from __future__ import annotations

import abc
import collections
import logging
from typing import TYPE_CHECKING, List, Optional, Tuple, Union

from nghttp2_cffi import ErrorCode

from . import http11_framing as framing
from .connection import TOO_LARGE_BODY, Connection, peer
from .http11_framing import HTTP11Stream
from .http11_parser import ChunkedBody, LengthBody, RequestParser, Stop
from .validation import FIELD_OVERHEAD, check_http11_head, check_trailer_field

if TYPE_CHECKING:
    from .server import HTTP2Server

log = logging.getLogger("nghttp2.server")

# Why reading is paused (a bit each).
PAUSE_WRITE = 1  # the client does not read our responses
PAUSE_BODY = 2  # a coroutine handler has not read the body so far
PAUSE_PIPELINE = 4  # too many requests waiting for their answers
PAUSE_HELD = 8  # bytes held after an Upgrade request, beyond what we keep

# Parser events, dispatched once the parser returned.
_HEADERS, _DATA, _END, _TOO_LARGE, _MALFORMED = range(5)
_NO_FIELD = (b"", b"")  # a pseudo-header's place in a request's header list, until it is known
# The fields on_request_head looks at.
_SPECIAL_FIELDS = frozenset(
    {
        b"host",
        b"cookie",
        b"content-length",
        b"transfer-encoding",
        b"expect",
        b"te",
        b"upgrade",
        b"http2-settings",
    }
)
# on_close's error code for a request whose body was malformed.
_PROTOCOL_ERROR = int(ErrorCode.PROTOCOL_ERROR)


class RequestReading(Connection):
    """HTTP/1.1 requests into streams (the base of HTTP11Protocol)."""

    http_version = "1.1"
    # Coroutine callbacks start eagerly here too (Connection.eager_start):
    # a response given in the first step is written with the round's other
    # answers (see HTTP11Protocol.data_received).  Before those writes were
    # batched the eager start cost CPU here: each answer was written between
    # two reads and woke the client, which preempted the server.

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
        self._head_since: Optional[float] = None
        self._trailer_size = 0  # validation: the request's trailer fields so far

    @abc.abstractmethod
    def _accept_h2c(
        self,
        method: bytes,
        path: bytes,
        host: bytes,
        fields: framing.Fields,
        upgrade: bytes,
        http2_settings: List[bytes],
    ) -> bool:
        """Take the request as an h2c upgrade (see :mod:`server.http11_upgrade`);
        False: it is not one."""

    # ---- parser callbacks (handlers run after the parser returns) ------------

    def on_request_begin(self) -> None:
        if self._closing:
            raise Stop
        if self._head_since is None:
            self._head_since = self._loop.time()
        self._idle_since = None

    def on_request_head(
        self,
        method: bytes,
        url: bytes,
        version: str,
        head_fields: framing.Fields,
        keep_alive: bool,
        upgrade_asked: bool,
    ) -> None:
        """Where an HTTP/1.1 request head is complete: it becomes a stream
        (or an h2c upgrade), or is refused."""
        self._head_since = None
        host = path = None
        length = None
        chunked = expect = te_trailers = False
        upgrade = None
        http2_settings: Optional[List[bytes]] = None
        cookies: Optional[List[bytes]] = None
        # The stream's header list, made once: the pseudo-headers' places
        # are filled in once the loop has found Host.
        headers: framing.Fields = [_NO_FIELD, _NO_FIELD, _NO_FIELD, _NO_FIELD]
        for field in head_fields:
            name = field[0]
            if name not in _SPECIAL_FIELDS:  # one set lookup for most fields
                headers.append(field)
                continue
            if name == b"host":
                if host is not None:
                    self._bad_request(400, "more than one Host")
                    raise Stop
                host = field[1]
            elif name == b"cookie":
                if cookies is None:
                    cookies = []
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
                if http2_settings is None:
                    http2_settings = []
                http2_settings.append(field[1])
            headers.append(field)
        if cookies is not None:
            headers.append((b"cookie", b"; ".join(cookies)))
        # validation: request line, Host and framing (RFC 9112 sections 3, 6)
        rejection = check_http11_head(method, url, version, host, head_fields if chunked else None)
        if rejection is not None:
            self._bad_request(*rejection)
            raise Stop
        if url[:1] == b"/" or url == b"*" or method == b"CONNECT":
            path = url
        else:  # absolute-form: scheme://authority/path (checked above)
            authority, slash, tail = url.partition(b"://")[2].partition(b"/")
            host, path = authority, slash + tail or b"/"
        if host is None:  # HTTP/1.0 (checked above)
            sockname = self.transport.get_extra_info("sockname") if self.transport else None
            host = peer(sockname).encode("ascii") if sockname else b"localhost"
        has_body = chunked or bool(length)
        if (
            upgrade is not None
            and upgrade_asked
            and self.scheme == b"http"
            and not self.streams
            and not self._pending
            and not has_body
            and self._accept_h2c(method, path, host, headers[4:], upgrade, http2_settings or [])
        ):
            self._requests += 1
            return

        sid = self._next_id
        self._next_id += 2
        scheme = self.scheme
        headers[0] = (b":method", method)
        headers[1] = (b":scheme", scheme)
        headers[2] = (b":authority", host)
        headers[3] = (b":path", path)
        ex = HTTP11Stream(self, sid, self._loop.time(), headers, method, path, scheme, host)
        ex.keep_alive = keep_alive
        ex.http10 = version == "1.0"
        ex.te_trailers = te_trailers
        ex.expect_continue = expect and has_body and not ex.http10
        ex.length = length
        ex.chunked_request = chunked
        self._current = ex
        self._exchanges.append(ex)
        self.streams[sid] = ex
        ex.handler = self.handler_class(self, sid)
        self._requests += 1
        if upgrade is not None and upgrade_asked:
            self._upgrade_candidate = ex
        self._pending.append((_HEADERS, ex, b""))
        limit = self.limits.max_concurrent_streams
        if limit is not None and len(self._exchanges) >= limit:
            self._pause(PAUSE_PIPELINE)

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
        if ex is None:
            return
        if ex.trailers is None:
            ex.trailers = []
            self._trailer_size = 0
        # validation: framing fields refused, the size bounded
        self._trailer_size += len(name) + len(value) + FIELD_OVERHEAD
        rejection = check_trailer_field(name, self._trailer_size, self.limits.max_header_list_size)
        if rejection is not None:
            self._reject_body(ex, *rejection)
            raise Stop
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
        ex = self._current
        if ex is None:  # in a head
            self._bad_request(status, reason)
        else:  # validation: in a body or its trailers
            self._reject_body(ex, status, reason)

    def body_received(self) -> int:
        ex = self._current
        return ex.received if ex is not None else 0

    def _close_parser(self) -> None:
        """Done with the parser, outside its feed (a hand-over, the end of
        the connection): freed now, not by a collection (see
        RequestParser.close)."""
        parser, self._parser = self._parser, None
        if parser is not None:
            parser.close()

    def _stop_parsing(self) -> None:
        """Parse nothing more on this connection."""
        self._parser = None
        self._body = None
        self._current = None
        self._head_since = None

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
                        self._pause(PAUSE_BODY)
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
            elif kind == _MALFORMED:  # validation: see _reject_body
                self._finish(ex, _PROTOCOL_ERROR)
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

    def _reject_body(self, ex: HTTP11Stream, status: int, reason: str) -> None:
        """validation: ``ex``'s body or trailers are malformed, its head was
        not.  A handler not started yet never is: the client gets
        ``status``.  A started one sees its body end with an error
        (``on_close(PROTOCOL_ERROR)``; ASGI: ``http.disconnect``), after the
        server answered ``status`` if it had not answered yet.  Either way
        the connection closes."""
        self._closing = True
        if any(kind == _HEADERS and item is ex for kind, item, _ in self._pending):
            self._pending = [event for event in self._pending if event[1] is not ex]
            self._exchanges.remove(ex)
            del self.streams[ex.id]
            ex.handler = None  # type: ignore[assignment] # never called: no cycle left
            self._bad_request(status, reason)
            return
        log.info("%s: %d: %s", peer(self.client_address), status, reason)
        ex.failed = True
        if ex.status is None:
            ex.close_after = True
            self._drop_body_source(ex)
            self._answer_plain(ex, status, framing.REASONS.get(status, b"Bad Request") + b"\n")
        elif not ex.ended:
            ex.broken = ex.ended = True  # HTTP/1.1 can only cut the connection
        else:
            ex.close_after = True
        self._pending.append((_MALFORMED, ex, b""))  # on_close once the parser returned

    def _bad_request(self, status: int, reason: str) -> None:
        """Answer a request we cannot parse (no handler sees it), then close."""
        log.info("%s: %d: %s", peer(self.client_address), status, reason)
        self._closing = True
        self._exchanges.append(framing.canned(self, status, self._loop.time()))

    def _finish(self, ex: HTTP11Stream, error_code: int) -> None:
        if self.streams.pop(ex.id, None) is None:
            return
        if ex.unread:
            ex.unread = 0
            self._unpause(PAUSE_BODY)
        self._close_stream(ex, error_code)

    def _abort(self, reason: str) -> None:
        log.info("%s: closing: %s", peer(self.client_address), reason)
        self._closed = True
        self._parser = None
        if self.transport is not None:
            self.transport.close()

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
