"""Response, and the stream sink that feeds it."""

from __future__ import annotations

import asyncio
import collections
import json as _json
from functools import cached_property
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Optional

from nghttp2_cffi import ErrorCode
from nghttp2_cffi.priority import as_priority

from .connection import Fields, StreamSink
from .errors import ClientError, ReadTimeout, StreamResetError, WriteTimeout
from .headers import Headers

if TYPE_CHECKING:
    from .connection import ClientConnection


class ResponseNotRead(ClientError):
    """``content`` of a streamed response that was not read (``await r.aread()``)."""


class StreamConsumed(ClientError):
    """A streamed response body can be iterated once."""


class HTTPStatusError(ClientError):
    """:meth:`Response.raise_for_status` on a 4xx or 5xx response."""

    def __init__(self, message: str, response: Response) -> None:
        super().__init__(message)
        self.response = response


def _split_status(fields: Fields) -> tuple[Optional[int], Fields]:
    """``:status`` and the regular fields of a response header block (the
    list is nghttp2_cffi's event's, ours to change)."""
    if fields and fields[0][0] == b":status" and (len(fields) == 1 or fields[1][0][:1] != b":"):
        # The usual block (nghttp2 checks that pseudo-header fields come
        # first): no second list.
        code = int(fields[0][1])
        del fields[0]
        return code, fields
    status = None
    rest: Fields = []
    for name, value in fields:
        if name == b":status":
            status = int(value)
        elif name[:1] != b":":
            rest.append((name, value))
    return status, rest


async def _within(
    conn: ClientConnection, waiter: asyncio.Future[Any], timeout: Optional[float]
) -> bool:
    """Await ``waiter`` (woken with None); False when ``timeout`` seconds
    passed first.  The connection's :class:`~client.connection.Deadlines`
    instead of ``asyncio.wait_for`` or a timer per wait: a fraction of
    their cost, paid on every wait of every request."""
    if timeout is None:
        await waiter
        return True
    deadlines = conn.deadlines(timeout)
    deadlines.add(waiter)
    try:
        return await waiter is not False
    finally:
        deadlines.discard(waiter)


class ResponseStream(StreamSink):
    """Buffers one stream's response until its reader takes it; the bytes
    taken are acknowledged then, so the server sends at the reader's pace."""

    #: Trailers arrived (``response.trailers`` is made on first use).
    has_trailers = False

    def __init__(
        self,
        conn: ClientConnection,
        response: Response,
        on_push: Optional[Callable[[Response, Response], None]] = None,
    ) -> None:
        self.conn = conn
        self.response = response
        self.stream_id = 0
        self.chunks: collections.deque[bytes] = collections.deque()
        self.headers_received = False
        self.ended = False  # the server ended the stream: the response is complete
        self.closed = False
        self.error: Optional[BaseException] = None
        self.discard = False  # nobody will read: acknowledge at once
        self.uploading = False
        self.upload_task: Optional[asyncio.Task[None]] = None
        self.data_requested = False
        self.on_push = on_push
        self._waiter: Optional[asyncio.Future[Any]] = None
        self._drain_waiter: Optional[asyncio.Future[Any]] = None

    # ---- from the connection -----------------------------------------------

    def on_informational(self, headers: Fields) -> None:
        self.response.informational.append(Headers(_split_status(headers)[1]))

    def on_response(self, headers: Fields, end_stream: bool) -> None:
        r = self.response
        r.status, raw = _split_status(headers)
        r.headers = Headers(raw)
        self.headers_received = True
        if end_stream:
            self.ended = True
        self.wake()

    def on_data(self, conn: ClientConnection, stream_id: int, data: bytes, end: bool) -> None:
        if data:
            if self.discard:
                conn.consume(stream_id, len(data))
            else:
                self.chunks.append(data)
        if end:
            self.ended = True
        self.wake()

    def on_trailers(self, headers: Fields) -> None:
        self.has_trailers = True
        self.response.trailers = Headers(_split_status(headers)[1])
        self.ended = True
        self.wake()

    def on_closed(self, error_code: int, error: Optional[ClientError]) -> None:
        self.closed = True
        if not self.ended and self.error is None:
            self.error = error or StreamResetError(
                self.stream_id,
                error_code,
                f"stream {self.stream_id} closed ({ErrorCode(error_code).name}) "
                "before the response was complete",
            )
        if self.discard:
            self.release_buffer()
        self.wake()
        self.wake_upload()

    def on_push_promise(self, promised_stream_id: int, headers: Fields) -> Optional[StreamSink]:
        if self.on_push is None:
            return None
        pseudo = {name: value for name, value in headers if name[:1] == b":"}
        path = pseudo.get(b":path", b"/").decode("latin-1")
        url = (
            f"{pseudo.get(b':scheme', b'https').decode('latin-1')}://"
            f"{pseudo.get(b':authority', b'').decode('latin-1')}{path}"
        )
        pushed = Response(
            pseudo.get(b":method", b"GET").decode("latin-1"),
            url,
            read_timeout=self.response.read_timeout,
        )
        pushed.path = path
        pushed.request_headers = Headers([(n, v) for n, v in headers if n[:1] != b":"])
        pushed.promised_by = self.response
        child = ResponseStream(self.conn, pushed)
        child.stream_id = promised_stream_id
        pushed.stream_id = promised_stream_id
        pushed._stream = child
        self.response.pushed.append(pushed)
        self.on_push(self.response, pushed)
        return child

    def on_data_requested(self) -> None:
        self.data_requested = True
        self.wake_upload()

    # ---- waiting -------------------------------------------------------

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def wake_upload(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: Optional[float], what: str) -> None:
        """Wait for the next event on the stream; ReadTimeout after ``timeout``."""
        # _within inlined: this wait is on every request's path.
        waiter = self._waiter = self.conn.loop.create_future()
        deadlines = None
        if timeout is not None:
            deadlines = self.conn.deadlines(timeout)
            deadlines.add(waiter)
        try:
            if await waiter is False:
                raise ReadTimeout(
                    f"no {what} from the server within {timeout}s (stream {self.stream_id})"
                )
        finally:
            self._waiter = None
            if deadlines is not None:
                deadlines.discard(waiter)

    async def wait_drained(self, timeout: Optional[float]) -> None:
        """Wait until the request body may take more; WriteTimeout after ``timeout``."""
        self._drain_waiter = self.conn.loop.create_future()
        try:
            if not await _within(self.conn, self._drain_waiter, timeout):
                raise WriteTimeout(
                    f"the request body of stream {self.stream_id} could not be sent for "
                    f"{timeout}s (the server's flow-control window stayed closed)"
                )
        finally:
            self._drain_waiter = None

    def fail(self, exc: BaseException) -> None:
        if not self.ended and self.error is None:
            self.error = exc
        self.wake()

    def release_buffer(self) -> None:
        """Acknowledge what nobody will read."""
        n = sum(len(c) for c in self.chunks)
        self.chunks.clear()
        if n:
            self.conn.consume(self.stream_id, n)


class Response:
    """An HTTP/2 response.

    ``status`` (int), ``headers`` (:class:`~client.Headers`), ``trailers``
    (:class:`~client.Headers`, empty without trailers; complete once the body
    is read), ``content`` (bytes, once read), ``pushed`` (the responses the
    server pushed with this one), ``informational`` (1xx header blocks),
    ``stream_id``, ``http_version`` (``"HTTP/2"``).

    A pushed response (in ``Client.pushed`` and ``response.pushed``) exists
    from its PUSH_PROMISE on: ``status`` is None until its headers arrive;
    ``await pushed.aread()`` waits for them and the body.
    """

    http_version = "HTTP/2"
    # What most responses never change is a class attribute, and the
    # containers are made on first use (cached_property): a Response is
    # made per request, and each object less is less for the collector.
    path: Optional[str] = None
    status: Optional[int] = None
    #: For a pushed response: the response it was promised with.
    promised_by: Optional[Response] = None
    stream_id: Optional[int] = None
    _stream: Optional[ResponseStream] = None
    _content: Optional[bytes] = None
    _iterating = False

    def __init__(self, method: str, url: str, *, read_timeout: Optional[float] = None) -> None:
        self.method = method
        self.url = url
        self.read_timeout = read_timeout

    @cached_property
    def headers(self) -> Headers:
        return Headers()

    @cached_property
    def trailers(self) -> Headers:
        return Headers()

    @cached_property
    def informational(self) -> list[Headers]:
        return []

    @cached_property
    def pushed(self) -> list[Response]:
        return []

    @cached_property
    def request_headers(self) -> Headers:
        """For a pushed response: the promised request's header fields."""
        return Headers()

    def __repr__(self) -> str:
        return f"<Response [{self.status}] {self.method} {self.url}>"

    # ---- the body ------------------------------------------------------

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise ResponseNotRead(
                "the body of a streamed or pushed response must be read first: await r.aread()"
            )
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode(self.charset or "utf-8", errors="replace")

    @property
    def charset(self) -> Optional[str]:
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip('"')
        return None

    def json(self, **kwargs: Any) -> Any:
        return _json.loads(self.content, **kwargs)

    @property
    def is_pushed(self) -> bool:
        return self.promised_by is not None

    @property
    def is_complete(self) -> bool:
        """Whether the server sent the whole response (END_STREAM)."""
        return self._stream is not None and self._stream.ended

    def raise_for_status(self) -> Response:
        if self.status is not None and self.status >= 400:
            kind = "client error" if self.status < 500 else "server error"
            raise HTTPStatusError(f"{self.status} {kind} for {self.method} {self.url}", self)
        return self

    async def wait_headers(self) -> None:
        """Wait for the response's header block (read timeout applies)."""
        s = self._stream
        assert s is not None
        while not s.headers_received:
            if s.error is not None:
                raise s.error
            # While the request body is still going out, the server may
            # rightly wait for it: the read timeout starts after it.
            await s.wait(None if s.uploading else self.read_timeout, "response headers")

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body chunk by chunk, as it arrives.  Each chunk taken lets
        the server send as much again, so memory stays bounded by the
        stream window whatever the body's size."""
        if self._content is not None:
            if self._content:
                yield self._content
            return
        if self._iterating:
            raise StreamConsumed("the response body was already iterated")
        self._iterating = True
        s = self._stream
        assert s is not None
        await self.wait_headers()
        conn = s.conn
        chunks = s.chunks
        while True:
            if chunks:
                chunk = chunks.popleft()
                conn.consume(s.stream_id, len(chunk))
                yield chunk
            elif s.ended:
                return
            elif s.error is not None:
                raise s.error
            else:
                await s.wait(self.read_timeout, "body data")

    async def aread(self) -> bytes:
        """The whole body (kept in ``content``)."""
        if self._content is None:
            parts = [chunk async for chunk in self.aiter_bytes()]
            self._content = parts[0] if len(parts) == 1 else b"".join(parts)
        return self._content

    def set_priority(self, urgency: int, incremental: bool = False) -> None:
        """Ask the server to reschedule this response (RFC 9218 PRIORITY_UPDATE):
        ``urgency`` 0 (most urgent) to 7.  Servers that do not schedule by
        RFC 9218 are not told (they would not listen)."""
        s = self._stream
        if s is None or s.stream_id == 0:
            raise ClientError("the request was not sent")
        s.conn.send_priority_update(s.stream_id, as_priority((urgency, incremental)))

    async def aclose(self) -> None:
        """Stop the response: reset the stream if the server is not done
        with it, and acknowledge what was buffered."""
        s = self._stream
        if s is None:
            return
        s.discard = True
        if not s.closed:
            s.conn.reset_stream(s.stream_id, ErrorCode.CANCEL)
        s.release_buffer()
        task = s.upload_task
        if task is not None and not task.done():
            task.cancel()
