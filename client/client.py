"""Client: an asyncio HTTP/2 client for one origin."""

from __future__ import annotations

import asyncio
import io
import logging
import ssl as _ssl
from typing import Any, AsyncIterator, Iterable, Mapping, Optional, Tuple, Union
from urllib.parse import urlencode, urlsplit

from nghttp2_cffi import ErrorCode
from nghttp2_cffi.config import DEFAULT_MAX_HEADER_LIST_SIZE
from nghttp2_cffi.priority import PriorityInput, as_priority

from .connection import (
    DEFAULT_MAX_PUSHES,
    DEFAULT_STREAM_WINDOW,
    ClientConnection,
    Fields,
    Unavailable,
    open_connection,
)
from .errors import ClientError
from .response import Response, ResponseStream

log = logging.getLogger("nghttp2.client")

HeaderInput = Union[
    Mapping[Union[str, bytes], Union[str, bytes]],
    Iterable[Tuple[Union[str, bytes], Union[str, bytes]]],
]
Content = Union[bytes, bytearray, memoryview, str, Any, None]

USER_AGENT = b"nghttp2-cffi-client/0.1"
#: Request body chunk size for file-like bodies.
READ_CHUNK = 64 * 1024
#: How often a request that found the connection going away (GOAWAY before
#: it was sent) is moved to a new connection.
MAX_RECONNECTS = 3

# RFC 9113 section 8.2.2: never sent over HTTP/2.
_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
_UNSET: Any = object()


class Timeout:
    """Timeouts in seconds (None: no limit).

    - ``connect``: TCP connect, TLS handshake and the server's SETTINGS.
    - ``read``: waiting for the response headers (counted from the end of
      the request body) and then for each body chunk.
    - ``write``: a request body waiting for the server's flow-control window.
    - ``pool``: a request waiting for a free stream (the server's
      MAX_CONCURRENT_STREAMS); None by default: such a request waits its
      turn.  Wrap the call in ``asyncio.wait_for``/``asyncio.timeout`` for a
      deadline on the whole.
    """

    __slots__ = ("connect", "pool", "read", "write")

    def __init__(
        self,
        connect: Optional[float] = 10.0,
        read: Optional[float] = 60.0,
        write: Optional[float] = 60.0,
        pool: Optional[float] = None,
    ) -> None:
        self.connect = connect
        self.read = read
        self.write = write
        self.pool = pool

    @classmethod
    def of(cls, value: Union[Timeout, float, None]) -> Timeout:
        """A Timeout from a Timeout, one number for connect, read and write
        (``pool`` stays None), or None."""
        if isinstance(value, Timeout):
            return value
        return cls(value, value, value)

    def __repr__(self) -> str:
        return (
            f"Timeout(connect={self.connect}, read={self.read}, write={self.write}, "
            f"pool={self.pool})"
        )


DEFAULT_TIMEOUT = Timeout()


def _bytes(value: Union[str, bytes, int]) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode("ascii")
    return bytes(value)


def _header_pairs(headers: Optional[HeaderInput]) -> list[tuple[bytes, bytes]]:
    if not headers:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for name, value in items:
        name_b = _bytes(name).lower()
        if name_b in _CONNECTION_SPECIFIC:
            raise ValueError(
                f"{name_b.decode('latin-1')!r} is connection-specific and not allowed in HTTP/2"
            )
        if name_b[:1] == b":":
            raise ValueError("pseudo-headers come from the method and the URL")
        value_b = _bytes(value)
        if name_b == b"te" and value_b.lower() != b"trailers":
            raise ValueError("the only TE value HTTP/2 allows is 'trailers'")
        out.append((name_b, value_b))
    return out


def _is_streaming(content: Content) -> bool:
    return content is not None and not isinstance(content, (bytes, bytearray, memoryview, str))


async def _body_chunks(body: Any) -> AsyncIterator[bytes]:
    """A request body given as an async iterable, an iterable of bytes or a
    file-like object, as bytes chunks."""
    if hasattr(body, "__aiter__"):
        async for chunk in body:
            yield _bytes(chunk)
    elif hasattr(body, "read"):
        read = body.read
        blocking = not isinstance(body, io.BytesIO) and hasattr(body, "fileno")
        loop = asyncio.get_running_loop()
        while True:
            chunk = (
                await loop.run_in_executor(None, read, READ_CHUNK) if blocking else read(READ_CHUNK)
            )
            if not chunk:
                return
            yield _bytes(chunk)
    elif hasattr(body, "__iter__"):
        for chunk in body:
            yield _bytes(chunk)
    else:
        raise TypeError(
            "content must be bytes, str, an (async) iterable of bytes or a file-like "
            f"object, not {type(body).__name__}"
        )


class Client:
    """An HTTP/2 client for one origin: ``Client("https://host:port")``.

    ``http://`` URLs speak h2c with prior knowledge; ``https://`` ones TLS
    with ALPN ``h2`` (``ssl``: None/True for the default context, or an
    ``ssl.SSLContext``; ALPN ``h2`` is set on it).  Connecting fails with
    :class:`~client.NegotiationError` when the server does not speak HTTP/2.

    All requests share one connection, multiplexed; requests beyond the
    server's MAX_CONCURRENT_STREAMS wait for a free stream.  When the server
    sends GOAWAY, requests not yet sent go to a new connection; those it did
    not process fail with a retryable :class:`~client.GoAwayError`.

    ``enable_push``: accept server pushes into :attr:`pushed` (path ->
    :class:`Response`) and ``response.pushed``; False announces
    SETTINGS_ENABLE_PUSH = 0.  ``stream_window``: the receive window of each
    stream, the most a response buffers while it is not read.
    ``max_header_list_size``: the largest response header list taken (RFC
    9113 sizes; 64 KiB by default, as SETTINGS_MAX_HEADER_LIST_SIZE says):
    a larger one, an HPACK bomb say, ends the connection with
    :class:`~client.RemoteProtocolError`.  None: no bound.
    ``headers``: sent with every request.  ``timeout``: a
    :class:`Timeout`, a number for all of them, or None.
    """

    def __init__(
        self,
        base_url: str,
        *,
        ssl: Union[_ssl.SSLContext, bool, None] = None,
        timeout: Union[Timeout, float, None] = DEFAULT_TIMEOUT,
        headers: Optional[HeaderInput] = None,
        enable_push: bool = True,
        stream_window: int = DEFAULT_STREAM_WINDOW,
        max_pushes: int = DEFAULT_MAX_PUSHES,
        server_hostname: Optional[str] = None,
        max_header_list_size: Optional[int] = DEFAULT_MAX_HEADER_LIST_SIZE,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
        self.scheme = url.scheme
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        default_port = self.port == (443 if url.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = host if default_port else f"{host}:{self.port}"
        self.origin = f"{self.scheme}://{self.authority}"
        self.base_path = url.path.rstrip("/")
        if url.scheme == "https":
            if ssl is None or ssl is True:
                ssl = _ssl.create_default_context()
            elif ssl is False:
                raise ValueError("https:// needs TLS; use an http:// URL for h2c")
            ssl.set_alpn_protocols(["h2"])
            self.ssl: Optional[_ssl.SSLContext] = ssl
        else:
            if isinstance(ssl, _ssl.SSLContext) or ssl is True:
                raise ValueError("ssl was given for an http:// URL; use https://")
            self.ssl = None
        self.server_hostname = server_hostname
        self.timeout = Timeout.of(timeout)
        self.headers = [(b"user-agent", USER_AGENT)]
        extra = _header_pairs(headers)
        names = {name for name, _ in extra}
        self.headers = [f for f in self.headers if f[0] not in names] + extra
        self.enable_push = enable_push
        self.stream_window = stream_window
        self.max_pushes = max_pushes
        self.max_header_list_size = max_header_list_size
        #: Pushed responses by path (the latest push of a path wins).
        self.pushed: dict[str, Response] = {}
        self._conn: Optional[ClientConnection] = None
        self._old: set[ClientConnection] = set()
        self._lock: Optional[asyncio.Lock] = None
        self._closed = False
        #: Given to new connections (see ClientConnection.flush_soon): False
        #: for callers that send one request at a time.
        self.batch_writes = True

    def __repr__(self) -> str:
        return f"<Client {self.origin}>"

    # ---- connecting ------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Connect now (requests connect on demand otherwise)."""
        await self._connection()

    @property
    def connection(self) -> Optional[ClientConnection]:
        """The current connection (None before the first one)."""
        return self._conn

    async def _connection(self, connect_timeout: Any = _UNSET) -> ClientConnection:
        if self._closed:
            raise ClientError("the client is closed")
        conn = self._conn
        if conn is not None and conn.is_available:
            return conn
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            conn = self._conn
            if conn is not None and conn.is_available:
                return conn
            if conn is not None:
                self._retire(conn)
            self._conn = None
            self._conn = await self._open(
                self.timeout.connect if connect_timeout is _UNSET else connect_timeout
            )
            return self._conn

    def _retire(self, conn: ClientConnection) -> None:
        """A connection that takes no new streams: it closes itself once its
        streams are done (nghttp2 stops wanting to read after GOAWAY)."""
        self._old = {c for c in self._old if c.closed_reason is None}
        if conn.closed_reason is None:
            if conn.is_idle:
                conn.close()
            else:
                self._old.add(conn)

    async def _open(self, connect_timeout: Optional[float]) -> ClientConnection:
        return await open_connection(
            lambda: ClientConnection(
                enable_push=self.enable_push,
                stream_window=self.stream_window,
                max_pushes=self.max_pushes,
                max_header_list_size=self.max_header_list_size,
                batch_writes=self.batch_writes,
            ),
            self.host,
            self.port,
            ssl=self.ssl,
            server_hostname=self.server_hostname or self.host if self.ssl else None,
            timeout=connect_timeout,
            origin=self.origin,
        )

    async def aclose(self) -> None:
        """Close every connection (GOAWAY); streams still open fail."""
        self._closed = True
        conns = [c for c in (self._conn, *self._old) if c is not None]
        self._old.clear()
        for conn in conns:
            conn.close()
        waiting = [c.wait_closed() for c in conns if c.closed_reason is None]
        if waiting:
            _, pending = await asyncio.wait(
                [asyncio.ensure_future(w) for w in waiting], timeout=1.0
            )
            for fut in pending:
                fut.cancel()
            for conn in conns:
                if conn.closed_reason is None:
                    conn.abort()

    async def ping(self) -> float:
        """PING the server; returns the round-trip time in seconds."""
        conn = await self._connection()
        return await conn.ping()

    # ---- requests --------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str = "/",
        *,
        headers: Optional[HeaderInput] = None,
        content: Content = None,
        params: Optional[Mapping[str, Any]] = None,
        timeout: Union[Timeout, float, None] = _UNSET,
        priority: Optional[PriorityInput] = None,
    ) -> Response:
        """Send a request and read the whole response.

        ``url``: a path (joined to the base URL's path) or an absolute URL
        of this client's origin.  ``content``: bytes or str (UTF-8), or a
        body streamed from an async iterable, an iterable of bytes or a
        file-like object, as the server's flow control allows.
        ``priority``: ``(urgency, incremental)`` or an urgency, 0 (most
        urgent) to 7, sent as the RFC 9218 ``priority`` header field.
        """
        async with self.stream(
            method,
            url,
            headers=headers,
            content=content,
            params=params,
            timeout=timeout,
            priority=priority,
        ) as response:
            await response.aread()
        return response

    async def get(self, url: str = "/", **kwargs: Any) -> Response:
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str = "/", **kwargs: Any) -> Response:
        return await self.request("HEAD", url, **kwargs)

    async def options(self, url: str = "/", **kwargs: Any) -> Response:
        return await self.request("OPTIONS", url, **kwargs)

    async def delete(self, url: str = "/", **kwargs: Any) -> Response:
        return await self.request("DELETE", url, **kwargs)

    async def post(self, url: str = "/", content: Content = None, **kwargs: Any) -> Response:
        return await self.request("POST", url, content=content, **kwargs)

    async def put(self, url: str = "/", content: Content = None, **kwargs: Any) -> Response:
        return await self.request("PUT", url, content=content, **kwargs)

    async def patch(self, url: str = "/", content: Content = None, **kwargs: Any) -> Response:
        return await self.request("PATCH", url, content=content, **kwargs)

    def stream(
        self,
        method: str,
        url: str = "/",
        *,
        headers: Optional[HeaderInput] = None,
        content: Content = None,
        params: Optional[Mapping[str, Any]] = None,
        timeout: Union[Timeout, float, None] = _UNSET,
        priority: Optional[PriorityInput] = None,
    ) -> _StreamContext:
        """``async with client.stream("GET", path) as r:`` — ``r`` has its
        status and headers; read the body with ``r.aiter_bytes()`` at your
        own pace (the server waits for you).  Leaving the block early
        resets the stream.  ``priority`` as for :meth:`request`;
        ``r.set_priority()`` changes it later."""
        return _StreamContext(self, method, url, headers, content, params, timeout, priority)

    def _target(self, url: str, params: Optional[Mapping[str, Any]]) -> str:
        if "://" in url:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            if parts.scheme != self.scheme or parts.hostname != self.host or port != self.port:
                raise ValueError(f"{url!r} is not on this client's origin {self.origin}")
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
        else:
            path = url or "/"
            if not path.startswith("/"):
                path = "/" + path
            path = self.base_path + path
        if params:
            path += ("&" if "?" in path else "?") + urlencode(params, doseq=True)
        return path

    async def _send(
        self,
        method: str,
        url: str,
        headers: Optional[HeaderInput],
        content: Content,
        params: Optional[Mapping[str, Any]],
        timeout: Any,
        priority: Optional[PriorityInput] = None,
    ) -> Response:
        t = self.timeout if timeout is _UNSET else Timeout.of(timeout)
        path = self._target(url, params)
        method = method.upper()
        extra = _header_pairs(headers)
        authority = self.authority.encode("ascii")
        names = set()
        fields_extra = []
        for name, value in extra:
            if name == b"host":
                authority = value  # HTTP/2 says it with :authority
                continue
            names.add(name)
            fields_extra.append((name, value))
        fields = [
            (b":method", method.encode("ascii")),
            (b":scheme", self.scheme.encode("ascii")),
            (b":authority", authority),
            (b":path", path.encode("utf-8")),
        ]
        fields += [f for f in self.headers if f[0] not in names]
        fields += fields_extra
        if priority is not None:
            value = as_priority(priority).field_value()
            if value:  # the default priority goes without saying
                fields.append((b"priority", value))
        streaming = _is_streaming(content)
        body: Any = None
        if not streaming and content is not None:
            body = content.encode("utf-8") if isinstance(content, str) else bytes(content)
            if b"content-length" not in names and (body or method not in ("GET", "HEAD")):
                fields.append((b"content-length", str(len(body)).encode("ascii")))
        response = Response(method, self.origin + path, read_timeout=t.read)
        response.path = path
        return await self.send_prepared(fields, content if streaming else body, response, t)

    async def send_prepared(
        self, fields: Fields, content: Content, response: Response, timeout: Timeout
    ) -> Response:
        """Send a request given as its complete HTTP/2 header fields and
        return ``response`` once its headers arrived (for adapters such as
        the httpx transport, which build the fields themselves).

        ``fields``: the pseudo-header fields first, then lower-case names,
        nothing connection-specific, content-length included where known.
        ``content``: None, bytes (sent from C), or a body to stream (an
        async iterable, an iterable of bytes or a file-like object).
        ``response``: a new :class:`Response` for the request (its
        ``read_timeout`` applies); ``timeout``: its connect, write and pool
        phases apply.
        """
        t = timeout
        streaming = _is_streaming(content)
        body = None if streaming else content
        on_push = self._on_push if self.enable_push else None
        attempts = 0
        while True:
            # The usual case without a coroutine each: connected, a stream free.
            conn = self._conn
            if conn is None or self._closed or not conn.is_available:
                conn = await self._connection(t.connect)
            try:
                if not conn.take_slot():
                    await conn.acquire_slot(t.pool)
            except Unavailable as exc:
                attempts += 1
                if attempts > MAX_RECONNECTS:
                    raise exc.reason from None
                continue
            stream = ResponseStream(conn, response, on_push)
            try:
                sid = conn.submit(fields, body or None, not streaming, stream, slot=True)
            except Unavailable as exc:
                conn.release_slot()
                attempts += 1
                if attempts > MAX_RECONNECTS:
                    raise exc.reason from None
                continue
            except BaseException:
                conn.release_slot()
                raise
            break
        del fields  # sent (nghttp2 copied them): not kept while waiting
        stream.stream_id = response.stream_id = sid
        response._stream = stream
        if streaming:
            stream.uploading = True
            stream.upload_task = asyncio.ensure_future(self._upload(stream, content, t.write))
        try:
            # Response.wait_headers inlined: a coroutine less per request.
            while not stream.headers_received:
                if stream.error is not None:
                    raise stream.error
                read_timeout = None if stream.uploading else response.read_timeout
                await stream.wait(read_timeout, "response headers")
        except BaseException:
            await response.aclose()
            raise
        return response

    async def _upload(self, stream: ResponseStream, content: Any, timeout: Optional[float]) -> None:
        """Send a streamed request body, one chunk at a time: the next is
        taken only when nghttp2 has sent the previous one."""
        conn, sid = stream.conn, stream.stream_id
        try:
            async for chunk in _body_chunks(content):
                if stream.closed:
                    return
                if not chunk:
                    continue
                stream.data_requested = False
                conn.send_data(sid, chunk)
                while not stream.data_requested and not stream.closed:
                    await stream.wait_drained(timeout)
            if not stream.closed:
                conn.send_data(sid, b"", end_stream=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the request raises it
            stream.fail(exc)  # first: the reset below closes the stream
            if not stream.closed:
                conn.reset_stream(sid, ErrorCode.CANCEL)
        finally:
            stream.uploading = False
            stream.wake()

    def _on_push(self, parent: Response, pushed: Response) -> None:
        assert pushed.path is not None
        self.pushed[pushed.path] = pushed


class _StreamContext:
    def __init__(
        self,
        client: Client,
        method: str,
        url: str,
        headers: Optional[HeaderInput],
        content: Content,
        params: Optional[Mapping[str, Any]],
        timeout: Any,
        priority: Optional[PriorityInput] = None,
    ) -> None:
        self._args = (method, url, headers, content, params, timeout, priority)
        self._client = client
        self._response: Optional[Response] = None

    async def __aenter__(self) -> Response:
        self._response = await self._client._send(*self._args)
        return self._response

    async def __aexit__(self, *exc: object) -> None:
        if self._response is not None:
            await self._response.aclose()
