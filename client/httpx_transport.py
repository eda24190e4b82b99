"""httpx transports on this client: httpx's API, nghttp2's HTTP/2.

``httpx.AsyncClient(transport=AsyncHTTPTransport())`` and
``httpx.Client(transport=HTTPTransport())``: everything above the transport
(URLs, redirects, cookies, auth, decoding) stays httpx's own; requests go
over one multiplexed HTTP/2 connection per origin (a :class:`~client.Client`
each).  Origins that do not speak HTTP/2 (ALPN says ``http/1.1``, or an
``http://`` URL without ``http2_prior_knowledge``) get httpx's own HTTP/1.1
transport, so swapping the transport in never breaks a working program.

Also reachable as :mod:`nghttp2.httpx`.  Needs httpx (``pip install
nghttp2-cffi[httpx]``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl as _ssl
import threading
import typing
from typing import Any, AsyncIterator, Dict, Iterator, Optional, Tuple, Union

import httpx

from nghttp2_cffi import NGHTTP2Error

from .client import Client, Timeout
from .connection import ClientConnection, Fields
from .errors import (
    ClientError,
    ClientTimeout,
    ConnectError,
    ConnectTimeout,
    NegotiationError,
    PoolTimeout,
    ReadTimeout,
    WriteTimeout,
)
from .response import Response, ResponseStream

__all__ = ["AsyncHTTPTransport", "HTTPTransport", "NetworkStream"]

T = typing.TypeVar("T")

#: RFC 9113 section 8.2.2: header fields never sent over HTTP/2 (``te`` is
#: kept when it says ``trailers``).
_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
#: A sent request that the server certainly did not process (GOAWAY below
#: its stream, REFUSED_STREAM) is sent again this often when its body can be
#: replayed.
MAX_RETRIES = 3
#: httpx's default limits (of the HTTP/1.1 transport).
_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
_HTTP2 = b"HTTP/2"
_HTTP11: Any = object()  # an origin marked as HTTP/1.1-only


def _http2_available() -> bool:
    try:
        import h2  # noqa: F401
    except ImportError:
        return False
    return True


def _map_error(exc: ClientError, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception for one of the client's."""
    cls: type[httpx.TransportError]
    if isinstance(exc, ClientTimeout):
        if isinstance(exc, ConnectTimeout):
            cls = httpx.ConnectTimeout
        elif isinstance(exc, WriteTimeout):
            cls = httpx.WriteTimeout
        elif isinstance(exc, PoolTimeout):
            cls = httpx.PoolTimeout
        elif isinstance(exc, ReadTimeout):
            cls = httpx.ReadTimeout
        else:
            cls = httpx.TimeoutException
    elif isinstance(exc, ConnectError):
        cls = httpx.ConnectError
    else:
        # Stream resets, GOAWAY, the server closing the connection or
        # breaking the protocol: what httpcore reports as a remote error.
        cls = httpx.RemoteProtocolError
    return cls(str(exc), request=request)


def _request_fields(request: httpx.Request) -> Fields:
    """The HTTP/2 header fields of ``request``: pseudo-header fields from
    the method and URL, ``host`` as ``:authority``, names in lower case,
    nothing connection-specific."""
    url = request.url
    authority = b""
    fields: Fields = [
        (b":method", request.method.encode("ascii")),
        (b":scheme", url.raw_scheme),
        (b":authority", b""),
        (b":path", url.raw_path),
    ]
    append = fields.append
    for name, value in request.headers.raw:
        name = name.lower()
        if name == b"host":
            authority = value
        elif name[:1] == b":":
            raise httpx.LocalProtocolError(
                f"{name.decode('latin-1')!r}: pseudo-header fields come from the method "
                "and the URL",
                request=request,
            )
        elif name in _CONNECTION_SPECIFIC or (name == b"te" and value.lower() != b"trailers"):
            continue
        else:
            append((name, value))
    if not authority:
        authority = url.netloc
    fields[2] = (b":authority", authority)
    return fields


def _timeout(request: httpx.Request) -> Timeout:
    t = request.extensions.get("timeout")
    if not t:
        return Timeout(None, None, None)
    return Timeout(t.get("connect"), t.get("read"), t.get("write"), t.get("pool"))


class NetworkStream:
    """The ``network_stream`` response extension: the connection's socket
    details through ``get_extra_info`` (``ssl_object``, ``client_addr``,
    ``server_addr``, ``socket``, ``is_readable``), as httpcore's streams
    give them.  The connection is HTTP/2, shared by other requests: it
    offers no ``read``/``write``."""

    __slots__ = ("conn",)

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn

    def get_extra_info(self, info: str) -> Any:
        transport = self.conn.transport
        if transport is None:
            return None
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "is_readable":
            return not transport.is_closing()
        return transport.get_extra_info(info)


class _Origin:
    """One origin's client, and the network stream of its connection."""

    __slots__ = ("client", "net")

    def __init__(self, client: Client) -> None:
        self.client = client
        self.net: Optional[NetworkStream] = None

    def network_stream(self, conn: ClientConnection) -> NetworkStream:
        net = self.net
        if net is None or net.conn is not conn:
            net = self.net = NetworkStream(conn)
        return net


class _Body:
    """A response body as it arrives: everything buffered is taken at once
    (one chunk, fewer passes through httpx's decoders); trailers go into the
    response's ``trailers`` extension at the end."""

    __slots__ = ("extensions", "request", "response", "stream")

    def __init__(
        self, request: httpx.Request, response: Response, extensions: Dict[str, Any]
    ) -> None:
        self.request = request
        self.response = response
        stream = response._stream
        assert stream is not None
        self.stream: ResponseStream = stream
        self.extensions = extensions

    async def read_some(self) -> bytes:
        """The next bytes of the body; b"" at its end."""
        s = self.stream
        chunks = s.chunks
        while True:
            if chunks:
                if len(chunks) == 1:
                    data = chunks.popleft()
                else:
                    data = b"".join(chunks)
                    chunks.clear()
                s.conn.consume(s.stream_id, len(data))
                return data
            if s.ended:
                self._take_trailers()
                return b""
            if s.error is not None:
                error = s.error
                if isinstance(error, ClientError):
                    raise _map_error(error, self.request) from error
                raise error
            try:
                await s.wait(self.response.read_timeout, "body data")
            except ReadTimeout as exc:
                raise _map_error(exc, self.request) from exc

    def take_buffered(self) -> Optional[bytes]:
        """The whole body if it has all arrived (None otherwise)."""
        s = self.stream
        if not s.ended:
            return None
        chunks = s.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        if data:
            s.conn.consume(s.stream_id, len(data))
        self._take_trailers()
        return data

    def _take_trailers(self) -> None:
        if self.stream.has_trailers:  # else response.trailers would be made
            trailers = self.response.trailers.raw
            if trailers:
                self.extensions["trailers"] = httpx.Headers(trailers)

    async def aclose(self) -> None:
        await self.response.aclose()


class _AsyncResponseStream(_Body, httpx.AsyncByteStream):
    """A response body for httpx: its own async iterator (no async
    generator to set up, hook and finalize per response), starting with
    what came with the headers (usually the whole body of a small
    response)."""

    __slots__ = ("first",)

    def __init__(
        self, request: httpx.Request, response: Response, extensions: Dict[str, Any]
    ) -> None:
        super().__init__(request, response, extensions)
        self.first = self.take_buffered()  # b"": nothing more to give

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        first = self.first
        if first is not None:
            if not first:
                raise StopAsyncIteration
            self.first = b""
            return first
        data = await self.read_some()
        if not data:
            self.first = b""
            raise StopAsyncIteration
        return data

    async def aclose(self) -> None:
        s = self.stream
        if s.closed and s.upload_task is None and not s.chunks:
            return  # nothing left to stop (the usual case: read to the end)
        await self.response.aclose()


class AsyncHTTPTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` speaking HTTP/2 through nghttp2.

    ``verify``, ``cert``, ``trust_env``: as for ``httpx.AsyncHTTPTransport``
    (an ``ssl.SSLContext``, a CA bundle path, True or False).
    ``http2_prior_knowledge``: speak h2c to ``http://`` origins without
    asking (else they go to httpx's HTTP/1.1 transport).  ``limits``,
    ``retries``, ``local_address``, ``uds``, ``socket_options``: given to
    the HTTP/1.1 transport of origins that do not speak HTTP/2.
    ``stream_window``: the receive window of each stream, the most a
    response buffers while it is not read.

    Each HTTP/2 origin gets one connection, kept and shared by all its
    requests; pushes are refused (SETTINGS_ENABLE_PUSH = 0).  A request
    the server did not process (GOAWAY, REFUSED_STREAM) is sent again on a
    new connection when its body is not a stream.  Responses carry the
    ``http_version`` (``b"HTTP/2"``), ``stream_id``, ``network_stream``
    and, once the body is read, ``trailers`` (an ``httpx.Headers``, when
    the server sent any) extensions.
    """

    def __init__(
        self,
        verify: Union[_ssl.SSLContext, str, bool] = True,
        cert: Any = None,
        trust_env: bool = True,
        *,
        http2_prior_knowledge: bool = False,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        retries: int = 0,
        local_address: Optional[str] = None,
        uds: Optional[str] = None,
        socket_options: Optional[typing.Iterable[Any]] = None,
        stream_window: Optional[int] = None,
        _http11: Optional[httpx.AsyncBaseTransport] = None,
        _batch_writes: bool = True,
    ) -> None:
        self._ssl = httpx.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
        self.http2_prior_knowledge = http2_prior_knowledge
        self._stream_window = stream_window
        self._origins: Dict[Tuple[bytes, bytes, Optional[int]], Any] = {}
        self._connecting: Dict[Tuple[bytes, bytes, Optional[int]], asyncio.Lock] = {}
        self._closed = False
        self._batch_writes = _batch_writes
        # The HTTP/1.1 transport shares the SSL context (the certificates
        # are loaded once); offering h2 there too keeps a race between its
        # ALPN list and ours harmless.
        self._http11 = _http11 or httpx.AsyncHTTPTransport(
            verify=self._ssl,
            http2=_http2_available(),
            limits=limits,
            retries=retries,
            local_address=local_address,
            uds=uds,
            socket_options=socket_options,
        )

    async def __aenter__(self) -> AsyncHTTPTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.raw_scheme, url.raw_host, url.port)
        origin = self._origins.get(key)
        if origin is None:
            origin = await self._origin(url, key, request)
        if origin is _HTTP11:
            return await self._http11.handle_async_request(request)
        body: Any
        try:
            body = request.content
        except httpx.RequestNotRead:
            if not isinstance(request.stream, httpx.AsyncByteStream):
                raise RuntimeError(
                    "Attempted to send a sync request body with an AsyncClient"
                ) from None
            body = request.stream
        response, ext = await self._send(origin, request, body or None)
        reader = _AsyncResponseStream(request, response, ext)
        result = httpx.Response(
            status_code=response.status or 0,
            headers=response.headers.raw,
            stream=reader,
            extensions=ext,
        )
        reader.extensions = result.extensions  # httpx keeps a copy
        return result

    async def _origin(
        self, url: httpx.URL, key: Tuple[bytes, bytes, Optional[int]], request: httpx.Request
    ) -> Any:
        scheme = url.scheme
        if (scheme == "http" and not self.http2_prior_knowledge) or scheme not in ("http", "https"):
            self._origins[key] = _HTTP11  # httpx's own transport says no to other schemes
            return _HTTP11
        if self._closed:
            raise RuntimeError("the transport is closed")
        # One connection attempt per origin at a time; origins do not wait
        # for each other.
        lock = self._connecting.get(key)
        if lock is None:
            lock = self._connecting[key] = asyncio.Lock()
        async with lock:
            origin = self._origins.get(key)
            if origin is not None:
                return origin
            host = url.raw_host.decode("ascii")
            if ":" in host:
                host = f"[{host}]"
            port = url.port or (443 if scheme == "https" else 80)
            kwargs: Dict[str, Any] = {"enable_push": False}
            if self._stream_window is not None:
                kwargs["stream_window"] = self._stream_window
            client = Client(
                f"{scheme}://{host}:{port}", ssl=self._ssl if scheme == "https" else None, **kwargs
            )
            client.batch_writes = self._batch_writes
            if scheme == "https":
                # Offer HTTP/1.1 too: a server that knows only it then says so
                # instead of failing the handshake.
                self._ssl.set_alpn_protocols(["h2", "http/1.1"])
            try:
                await client._connection(_timeout(request).connect)
            except NegotiationError as exc:
                if scheme == "http":
                    raise _map_error(exc, request) from exc
                await client.aclose()
                self._origins[key] = _HTTP11
                return _HTTP11
            except ClientError as exc:
                await client.aclose()
                raise _map_error(exc, request) from exc
            origin = self._origins[key] = _Origin(client)
            self._connecting.pop(key, None)
            return origin

    async def _send(
        self, origin: _Origin, request: httpx.Request, body: Any
    ) -> Tuple[Response, Dict[str, Any]]:
        """Send ``request`` on ``origin``'s connection; its response and
        extensions once the headers arrived."""
        t = _timeout(request)
        client = origin.client
        replayable = body is None or isinstance(body, bytes)
        attempts = 0
        while True:
            response = Response(request.method, client.origin, read_timeout=t.read)
            try:
                # The fields are made for each attempt and passed on, not
                # kept here: the client drops them once they are sent, and
                # the request waits for its response holding nine objects
                # fewer (fewer garbage collections).
                await client.send_prepared(_request_fields(request), body, response, t)
            except ClientError as exc:
                attempts += 1
                if exc.retryable and replayable and attempts <= MAX_RETRIES:
                    continue
                raise _map_error(exc, request) from exc
            except (ValueError, NGHTTP2Error) as exc:  # nghttp2 refused the header fields
                raise httpx.LocalProtocolError(str(exc), request=request) from exc
            break
        stream = response._stream
        assert stream is not None
        return response, {
            "http_version": _HTTP2,
            "stream_id": stream.stream_id,
            "network_stream": origin.network_stream(stream.conn),
        }

    async def aclose(self) -> None:
        """Close every connection, HTTP/2 and HTTP/1.1."""
        self._closed = True
        origins = [o for o in self._origins.values() if o is not _HTTP11]
        self._origins.clear()
        for origin in origins:
            await origin.client.aclose()
        await self._http11.aclose()


class _LoopRunner:
    """The sync transport's private event loop, run by the threads that
    wait on it: the first caller drives the loop until its own call is
    done; a caller arriving meanwhile hands its call to that loop and waits,
    and takes the driving over if the driver finishes first.  So a lone
    thread pays no hop to a loop thread (measured: 11 us a call instead of
    47), and threads sharing the transport still multiplex their requests.
    A thread already running an event loop hands its call to a helper
    thread (it cannot run a second loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._driving = threading.Lock()
        self._changed = threading.Condition()
        self._helper: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._waiters = 0  # threads waiting on _changed (changed under it)

    def run(self, coro: typing.Coroutine[Any, Any, T]) -> T:
        # (_get_running_loop: None, where get_running_loop raises: no
        # exception per request.)
        if asyncio.events._get_running_loop() is not None:
            if self._helper is None:
                self._helper = concurrent.futures.ThreadPoolExecutor(
                    thread_name_prefix="nghttp2-httpx"
                )
            return self._helper.submit(self.run, coro).result()
        if self._driving.acquire(blocking=False):
            try:
                return self.loop.run_until_complete(coro)
            finally:
                self._release()
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        future.add_done_callback(self._notify)
        driving = self._driving
        while True:
            with self._changed:
                self._waiters += 1
                try:
                    self._changed.wait_for(lambda: future.done() or not driving.locked())
                finally:
                    self._waiters -= 1
            if future.done():
                return future.result()
            if driving.acquire(blocking=False):
                try:
                    if not future.done():
                        wrapped = asyncio.wrap_future(future, loop=self.loop)
                        self.loop.run_until_complete(wrapped)
                finally:
                    self._release()
                return future.result()

    def _release(self) -> None:
        self._driving.release()
        # A thread that starts waiting after this read sees the lock free
        # before it waits (it counts itself under _changed first).
        if self._waiters:
            self._notify()

    def _notify(self, _: object = None) -> None:
        with self._changed:
            self._changed.notify_all()

    def close(self, coro: typing.Coroutine[Any, Any, None]) -> None:
        if self.loop.is_closed():
            coro.close()
            return
        self.run(coro)
        with self._driving:
            self.loop.close()
        if self._helper is not None:
            self._helper.shutdown()


class _SyncResponseStream(httpx.SyncByteStream):
    """A response body read by running the transport's loop: what has
    arrived is taken in one pass."""

    __slots__ = ("body", "first", "runner")

    def __init__(self, body: _Body, first: Optional[bytes], runner: _LoopRunner) -> None:
        self.body = body
        self.first = first  # the whole body, when it came with the headers
        self.runner = runner

    def __iter__(self) -> Iterator[bytes]:
        first = self.first
        if first is not None:
            self.first = None
            if first:
                yield first
            return
        read = self.body.read_some
        run = self.runner.run
        while True:
            data = run(read())
            if not data:
                return
            yield data

    def close(self) -> None:
        s = self.body.stream
        task = s.upload_task
        if self.runner.loop.is_closed() or (
            s.closed and (task is None or task.done()) and not s.chunks
        ):
            return  # nothing left to stop (the usual case: read to the end)
        self.runner.run(self.body.aclose())


async def _sync_body(stream: httpx.SyncByteStream) -> AsyncIterator[bytes]:
    """A synchronous request body read in a worker thread, so a file or a
    slow iterator never blocks the loop."""
    loop = asyncio.get_running_loop()
    iterator = iter(stream)
    while True:
        chunk = await loop.run_in_executor(None, next, iterator, b"")
        if not chunk:
            return  # the end (httpx's streams give no empty chunks)
        yield chunk


class HTTPTransport(httpx.BaseTransport):
    """An ``httpx.BaseTransport`` speaking HTTP/2 through nghttp2: the
    asyncio client on a private event loop, run by the calling thread
    while it sends a request or reads a body (threads sharing the transport
    multiplex their requests on one connection per origin).  Arguments
    as for :class:`AsyncHTTPTransport`; HTTP/1.1 origins go to
    ``httpx.HTTPTransport``."""

    def __init__(
        self,
        verify: Union[_ssl.SSLContext, str, bool] = True,
        cert: Any = None,
        trust_env: bool = True,
        *,
        http2_prior_knowledge: bool = False,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        retries: int = 0,
        local_address: Optional[str] = None,
        uds: Optional[str] = None,
        socket_options: Optional[typing.Iterable[Any]] = None,
        stream_window: Optional[int] = None,
    ) -> None:
        ssl = httpx.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
        self._http11 = httpx.HTTPTransport(
            verify=ssl,
            http2=_http2_available(),
            limits=limits,
            retries=retries,
            local_address=local_address,
            uds=uds,
            socket_options=socket_options,
        )
        self._async = AsyncHTTPTransport(
            ssl,
            http2_prior_knowledge=http2_prior_knowledge,
            stream_window=stream_window,
            _http11=_NoTransport(),
            # One request at a time per thread: nothing to wait for before
            # writing it (a loop turn less per request).
            _batch_writes=False,
        )
        self._runner = _LoopRunner()

    def __enter__(self) -> HTTPTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.raw_scheme, url.raw_host, url.port)
        transport = self._async
        if transport._origins.get(key) is _HTTP11:
            return self._http11.handle_request(request)
        runner = self._runner
        result = runner.run(self._start(request))
        if result is None:
            return self._http11.handle_request(request)
        status, headers, ext, body, first = result
        response = httpx.Response(
            status_code=status,
            headers=headers,
            stream=_SyncResponseStream(body, first, runner),
            extensions=ext,
        )
        body.extensions = response.extensions  # httpx keeps a copy
        return response

    async def _start(
        self, request: httpx.Request
    ) -> Optional[Tuple[int, Fields, Dict[str, Any], _Body, Optional[bytes]]]:
        transport = self._async
        url = request.url
        key = (url.raw_scheme, url.raw_host, url.port)
        origin = transport._origins.get(key)
        if origin is None:
            origin = await transport._origin(url, key, request)
        if origin is _HTTP11:
            return None
        body: Any
        try:
            body = request.content
        except httpx.RequestNotRead:
            stream = request.stream
            if not isinstance(stream, httpx.SyncByteStream):
                raise RuntimeError(
                    "Attempted to send an async request body with a sync Client"
                ) from None
            body = _sync_body(stream)
        response, ext = await transport._send(origin, request, body or None)
        reader = _Body(request, response, ext)
        # A response that came whole with its headers is handed over with
        # them: reading it costs the caller no second trip to the loop.
        first = reader.take_buffered()
        return response.status or 0, response.headers.raw, ext, reader, first

    def close(self) -> None:
        """Close every connection."""
        self._runner.close(self._async.aclose())
        self._http11.close()


class _NoTransport(httpx.AsyncBaseTransport):
    """The HTTP/1.1 side of the sync transport's async core: never used (the
    sync transport sends HTTP/1.1 requests itself)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("HTTP/1.1 requests go through httpx.HTTPTransport")
