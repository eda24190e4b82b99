"""The HTTP/1.1 request parser: httptools (llhttp) behind a small adapter.

httptools (llhttp, the parser of Node.js and of uvicorn's default) parsed
a typical browser GET about 13-25x faster than h11 on CPython in a
micro-benchmark, and no slower on PyPy.  :class:`RequestParser` gets its
callbacks, bounds the request head (``max_header_list_size``: 431) and
the bytes of a chunked body that are not its data (its trailers: 431 too),
and hands the connection whole request heads, body chunks, trailer fields
and message ends, in that order, through the :class:`ParserListener` calls.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Protocol, Tuple

import httptools

Fields = List[Tuple[bytes, bytes]]


class Stop(Exception):
    """Raised in a parser callback: parse nothing more on this connection."""


class ParserListener(Protocol):
    """What the connection does with what the parser finds."""

    def on_request_begin(self) -> None: ...

    def on_request_head(
        self,
        method: bytes,
        target: bytes,
        version: str,
        fields: Fields,
        keep_alive: bool,
        upgrade: bool,
    ) -> None:
        """A whole request head: ``version`` ``"1.1"`` or ``"1.0"``;
        ``fields`` with names lower-cased, values as sent, in order;
        ``upgrade``: the request asks to switch protocols (``Connection:
        upgrade`` and ``Upgrade``, or CONNECT), and llhttp stops after its
        head."""

    def on_request_body(self, data: bytes) -> None: ...

    def on_request_trailer(self, name: bytes, value: bytes) -> None: ...

    def on_request_end(self) -> None: ...

    def on_bad_request(self, status: int, reason: str) -> None:
        """Refuse the request with ``status``: its head, or once the head
        was passed on, its body or trailers."""

    def body_received(self) -> int:
        """Body bytes of the request being parsed so far."""


class CallbackFailed(Exception):
    """A listener call raised (a bug): its exception is the ``__cause__``."""


class ParseError(Exception):
    """The bytes are not HTTP/1.1 (answer 400 and close)."""


class UpgradeRequested(Exception):
    """The parser stopped after a request asking to Upgrade; ``rest``: the
    bytes after its head."""

    def __init__(self, rest: bytes) -> None:
        super().__init__(rest)
        self.rest = rest


class RequestParser:
    """Feeds httptools and turns its callbacks into listener calls."""

    on_body: Callable[[bytes], None]
    on_message_complete: Callable[[], None]

    def __init__(self, listener: ParserListener, max_head_size: int) -> None:
        self.listener = listener
        self.max_head_size = max_head_size
        # Body chunks and message ends go to the listener straight from
        # httptools (which looks its callbacks up once, here): no call between.
        self.on_body = listener.on_request_body
        self.on_message_complete = listener.on_request_end
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._fields: Fields = []
        #: Inside a request head.
        self.in_head = False
        self._head_size = 0  # as HTTP/2 counts it (32 bytes a field more)
        self._head_raw = 0  # bytes of the head so far
        self._chunk_len = 0
        self._chunk_raw: Optional[int] = None  # validation: see on_chunk_header

    def close(self) -> None:
        """Done with this parser: httptools' parser holds it (to call it
        back), a cycle with the listener's bound methods in it that only a
        collection would free; dropping httptools' parser frees it all now."""
        self._parser = None  # type: ignore[assignment]

    def feed(self, data: bytes) -> None:
        """Parse ``data``.  Raises :class:`Stop` (a callback stopped parsing),
        :class:`ParseError`, or :class:`UpgradeRequested`."""
        self._chunk_len = len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            raise UpgradeRequested(data[exc.args[0] :]) from None
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, Stop):
                raise Stop from None
            raise CallbackFailed() from exc.__context__
        except httptools.HttpParserError as exc:
            raise ParseError(str(exc)) from None
        if self.in_head:
            self._head_raw += len(data)
            if self._head_raw > self.max_head_size:
                self.listener.on_bad_request(431, "request head too large")
                raise Stop
        elif self._chunk_raw is not None:
            # validation: the bytes in a chunk that are not its data (the
            # last chunk's trailers) count like a head's.
            self._chunk_raw += len(data)
            if self._chunk_raw - self.listener.body_received() > self.max_head_size:
                self.listener.on_bad_request(431, "request trailers too large")
                raise Stop

    # ---- httptools callbacks -------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_head = True
        self._url = b""
        self._fields = []
        self._head_size = 0
        self._head_raw = -self._chunk_len  # counted from the next chunk on
        self.listener.on_request_begin()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_head:  # a trailer of a chunked request
            self.listener.on_request_trailer(name.lower(), value)
            return
        self._fields.append((name.lower(), value))
        self._head_size += len(name) + len(value) + 32
        if self._head_size > self.max_head_size:
            self.listener.on_bad_request(431, "request header fields too large")
            raise Stop

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self._parser
        self.listener.on_request_head(
            parser.get_method(),
            self._url,
            parser.get_http_version(),
            self._fields,
            parser.should_keep_alive(),
            parser.should_upgrade(),
        )

    # validation: httptools holds a trailer line whole until it ends; these
    # two (called for chunked bodies only) let feed() bound it.
    def on_chunk_header(self) -> None:
        self._chunk_raw = self.listener.body_received() - self._chunk_len

    def on_chunk_complete(self) -> None:
        self._chunk_raw = None


class ChunkedBody:
    """A chunked request body (RFC 9112 section 7.1) parsed without
    httptools: the body of an Upgrade request the server declines, which
    llhttp leaves unparsed after the head."""

    def __init__(self, listener: ParserListener, max_line: int) -> None:
        self.listener = listener
        self.max_line = max_line
        self._buffer = b""
        self._left = 0  # bytes of the current chunk still to come
        self._state = 0  # 0: size line, 1: data, 2: CRLF after data, 3: trailers
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """Parse ``data``; returns what follows the body.  Raises ParseError."""
        buf = self._buffer + data
        pos = 0
        listener = self.listener
        while not self.done:
            if self._state == 1:
                take = min(self._left, len(buf) - pos)
                if take == 0:
                    break
                listener.on_request_body(buf[pos : pos + take])
                pos += take
                self._left -= take
                if self._left == 0:
                    self._state = 2
                continue
            end = buf.find(b"\r\n", pos)
            if end < 0:
                if len(buf) - pos > self.max_line:
                    raise ParseError("chunked body line too long")
                break
            line = buf[pos:end]
            pos = end + 2
            if 10 in line or 13 in line:  # LF, CR (see validation._HASH), as llhttp
                raise ParseError("bare CR or LF in a chunked body")
            if self._state == 0:
                size = line.split(b";", 1)[0].strip()
                if not size or size.strip(b"0123456789abcdefABCDEF"):
                    raise ParseError("invalid chunk size")
                self._left = int(size, 16)
                self._state = 1 if self._left else 3
            elif self._state == 2:
                if line:
                    raise ParseError("chunk data longer than its size")
                self._state = 0
            elif line:  # a trailer field
                name, sep, value = line.partition(b":")
                if not sep:
                    raise ParseError("invalid trailer field")
                listener.on_request_trailer(name.strip().lower(), value.strip())
            else:
                self.done = True
                listener.on_request_end()
        self._buffer = buf[pos:] if not self.done else b""
        return buf[pos:] if self.done else b""


class LengthBody:
    """A content-length request body parsed without httptools (see
    :class:`ChunkedBody`)."""

    def __init__(self, listener: ParserListener, length: int) -> None:
        self.listener = listener
        self._left = length
        self.done = length == 0

    def feed(self, data: bytes) -> bytes:
        take = min(self._left, len(data))
        if take:
            self.listener.on_request_body(data[:take])
            self._left -= take
        if self._left == 0 and not self.done:
            self.done = True
            self.listener.on_request_end()
        return data[take:]


def body_reader(
    listener: ParserListener, chunked: bool, length: Optional[int], max_line: int
) -> ChunkedBody | LengthBody:
    """A parser of a request body alone, framed as its head said."""
    if chunked:
        return ChunkedBody(listener, max_line)
    return LengthBody(listener, length or 0)
