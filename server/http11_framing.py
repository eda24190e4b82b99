"""HTTP/1.1 response framing: status lines, content-length or chunked
bodies, chunked trailers, and the stream state that goes with them.

:class:`HTTP11Stream` is a :class:`~server.stream.Stream` with what one
HTTP/1.1 exchange needs beyond it; the functions here turn a response's
head and body into bytes queued on the stream (``out``), which the
connection writes when the exchange is first in line.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

from .errors import InvalidResponse
from .stream import Stream

if TYPE_CHECKING:
    from .connection import Connection

log = logging.getLogger("nghttp2.server")

Fields = List[Tuple[bytes, bytes]]

TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$").match
BAD_VALUE = re.compile(rb"[\r\n\0]").search
REASONS = {s.value: s.phrase.encode("ascii") for s in http.HTTPStatus}
_NO_BODY_STATUS = frozenset({204, 304})
# Field names found to be tokens; a server sends few distinct ones.
_TOKEN_NAMES: Set[bytes] = set()
_TOKEN_NAMES_MAX = 1024
# Whole response fields found valid (a token name, a value without CR, LF
# or NUL), short values only: one set lookup per field instead of a name
# lookup and a regex search.
_VALID_FIELDS: Set[Tuple[bytes, bytes]] = set()
_VALID_FIELDS_MAX = 1024
_VALID_VALUE_MAX = 64
# "content-length: N\r\n" lines made so far (bytes formatting costs ~2% of
# a small response).
_LENGTH_LINES: Dict[int, bytes] = {}
_LENGTH_LINES_MAX = 4096


_STATUS_LINES: Dict[int, bytes] = {}


def _status_line(status: int) -> bytes:
    """``HTTP/1.1 200 OK\\r\\n``, made once per status code."""
    line = b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b""))
    if 100 <= status <= 999:
        _STATUS_LINES[status] = line
    return line


def _length_line(length: int) -> bytes:
    line = b"content-length: %d\r\n" % length
    if len(_LENGTH_LINES) < _LENGTH_LINES_MAX:
        _LENGTH_LINES[length] = line
    return line


def _valid_field(name: bytes, value: bytes) -> bool:
    if (name not in _TOKEN_NAMES and not _token_name(name)) or BAD_VALUE(value):
        return False
    if len(value) <= _VALID_VALUE_MAX and len(_VALID_FIELDS) < _VALID_FIELDS_MAX:
        _VALID_FIELDS.add((name, value))
    return True


def _token_name(name: bytes) -> bool:
    if not TOKEN(name):
        return False
    if len(_TOKEN_NAMES) < _TOKEN_NAMES_MAX:
        _TOKEN_NAMES.add(name)
    return True


class HTTP11Stream(Stream):
    """One request and its response on an HTTP/1.1 connection."""

    __slots__ = (
        "keep_alive",
        "http10",
        "te_trailers",
        "length",
        "chunked_request",
        "unread",
        "request_done",
        "out",
        "started",
        "chunked",
        "remaining",
        "no_body",
        "ended",
        "close_after",
        "broken",
        "switch",
        "response_done",
    )

    def __init__(
        self,
        connection: Connection,
        stream_id: int,
        now: float,
        headers: Fields,
        method: Optional[bytes],
        path: Optional[bytes],
        scheme: Optional[bytes],
        host: Optional[bytes],
    ) -> None:
        super().__init__(connection, stream_id, now, headers, method, path, scheme, host)
        self.keep_alive = True
        self.http10 = False
        self.te_trailers = False
        self.length: Optional[int] = None  # the request's content-length
        self.chunked_request = False
        self.unread = 0  # body bytes in a coroutine handler's inbox
        self.request_done = False
        self.out: List[bytes] = []  # response bytes, written when this is first in line
        self.started = False  # the final response head is in out
        self.chunked = False
        self.remaining: Optional[int] = None  # identity body bytes still due
        self.no_body = False  # HEAD, 204, 304: the head only
        self.ended = False  # the whole response is in out
        self.close_after = False
        self.broken = False  # failed mid-body: close once its bytes are out
        self.switch: Optional[Callable[[], asyncio.BaseProtocol]] = None
        self.response_done = False


def canned(connection: Connection, status: int, now: float) -> HTTP11Stream:
    """An answer of the server's own to a request no handler sees (400,
    431...), then the connection closes."""
    stream = HTTP11Stream(connection, 0, now, [], None, None, None, None)
    body = REASONS.get(status, b"Bad Request") + b"\n"
    stream.out.append(
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status, REASONS.get(status, b""), len(body), body)
    )
    stream.started = stream.ended = stream.close_after = True
    return stream


def head(
    ex: HTTP11Stream,
    status: int,
    fields: Fields,
    length: Optional[int],
    streamed: bool,
    draining: bool,
) -> None:
    """Queue the response head; ``length``: a known body's size."""
    handler_length = None
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _status_line(status)
    # One list of pieces, joined once: no bytes made per field.
    lines = [line]
    append = lines.append
    extend = lines.extend
    valid = _VALID_FIELDS
    for field in fields[1:]:
        name, value = field
        if field not in valid and not _valid_field(name, value):
            raise InvalidResponse(f"invalid response field {name!r}: {value!r}")
        if name == b"content-length":
            try:
                handler_length = int(value)
            except ValueError as exc:
                raise InvalidResponse(f"content-length {value!r} is not a number") from exc
            continue
        extend((name, b": ", value, b"\r\n"))
    head_request = ex.method == b"HEAD"
    no_body = head_request or status in _NO_BODY_STATUS
    if status == 304 or (head_request and length in (None, 0) and not streamed):
        length = handler_length if handler_length is not None else length
    if streamed:
        if no_body:
            if handler_length is not None:
                append(_LENGTH_LINES.get(handler_length) or _length_line(handler_length))
        elif handler_length is not None:
            ex.remaining = handler_length
            append(_LENGTH_LINES.get(handler_length) or _length_line(handler_length))
        elif ex.http10:
            ex.close_after = True
        else:
            ex.chunked = True
            append(b"transfer-encoding: chunked\r\n")
    elif length is not None and status != 204:
        append(_LENGTH_LINES.get(length) or _length_line(length))
    if not ex.keep_alive or draining or (ex.expect_continue and not ex.request_done):
        # A client still waiting to send its body (no 100 went) would send
        # it anyway, or never: the connection cannot go on.
        ex.close_after = True
    if ex.close_after or (ex.http10 and streamed and not ex.chunked and ex.remaining is None):
        append(b"connection: close\r\n")
    elif ex.http10:
        append(b"connection: keep-alive\r\n")
    append(b"\r\n")
    ex.no_body = no_body
    ex.started = True
    ex.out.append(b"".join(lines))


def frame(ex: HTTP11Stream, data: bytes) -> None:
    """Queue body bytes in the response's framing."""
    if ex.no_body:
        return
    if ex.chunked:
        ex.out.append(b"%x\r\n" % len(data))
        ex.out.append(data)
        ex.out.append(b"\r\n")
    elif ex.remaining is not None:
        if len(data) > ex.remaining:
            log.warning("stream %d: body longer than its content-length; cut", ex.id)
            data = data[: ex.remaining]
            ex.close_after = True
        ex.remaining -= len(data)
        ex.out.append(data)
    else:
        ex.out.append(data)


def end_body(ex: HTTP11Stream, trailers: Optional[List[Any]]) -> None:
    """Queue the end of the body (chunked: with trailers if the client
    asked for them with ``TE: trailers``)."""
    ex.ended = True
    if ex.no_body:
        return
    if ex.chunked:
        if trailers and ex.te_trailers:
            ex.out.append(b"0\r\n" + field_block(trailers) + b"\r\n")
        else:
            ex.out.append(b"0\r\n\r\n")
    elif ex.remaining:
        log.warning("stream %d: body shorter than its content-length", ex.id)
        ex.broken = True


def interim(status: int, fields: List[Any]) -> bytes:
    """A 1xx response's bytes."""
    return b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, REASONS.get(status, b""), field_block(fields))


def field_block(fields: List[Any]) -> bytes:
    """``name: value\\r\\n`` lines of ``(name, value)`` pairs, pseudo-headers skipped."""
    lines = []
    for name, value in fields:
        if name.__class__ is not bytes:  # trailers as handlers give them
            name = name.lower().encode("utf-8") if isinstance(name, str) else bytes(name)
        if value.__class__ is not bytes:
            value = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if name[:1] == b":":
            continue
        if not TOKEN(name) or BAD_VALUE(value):
            raise InvalidResponse(f"invalid field {name!r}: {value!r}")
        lines.append(name + b": " + value + b"\r\n")
    return b"".join(lines)
