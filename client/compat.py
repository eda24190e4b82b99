"""HTTP2Client and BaseResponseHandler: the client API of nghttp2's removed
Python binding, on the same connection core as :class:`~client.Client`.

::

    class Handler(BaseResponseHandler):
        def on_headers(self):
            print(self.status, self.headers)
        def on_data(self, data):
            self.body += data          # (set self.body = b"" in __init__)
        def on_response_done(self):
            print(len(self.body))

    client = HTTP2Client(("127.0.0.1", 8080))
    client.send_request("GET", "/index.html", handler=Handler())
    client.run()          # or: client.loop.run_forever(), stopped by a handler
    client.close()

What differs from the old binding, on purpose:

- pseudo-headers go first in the request (the old binding put them after
  ``headers``, which strict servers reject), and a URL's fragment is not
  sent;
- a response's trailers land in ``handler.trailers`` and are followed by
  ``on_response_done()`` (the old binding appended them to ``headers`` and
  never called ``on_response_done``);
- a refused push is reset with CANCEL (the old binding used NO_ERROR);
- streams cut short by a lost connection get ``on_close(CANCEL)``;
- :meth:`HTTP2Client.run` (and ``await client.wait()``) runs until every
  request sent so far is done; ``ssl=True`` uses the default context.

As in the old binding, ``handler.status`` is the ``:status`` value as bytes
(``b"200"``) and ``handler.headers`` holds every field, pseudo-headers
included, as ``(bytes, bytes)`` pairs, cookies joined into one field.
"""

from __future__ import annotations

import asyncio
import io
import logging
import ssl as _ssl
from typing import Any, Optional, Union
from urllib.parse import urlparse

from nghttp2_cffi import ErrorCode

from .connection import ClientConnection, Fields, StreamSink, Unavailable, open_connection
from .errors import ClientError, ConnectError

log = logging.getLogger("nghttp2.client")


def _b(value: Union[str, bytes]) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


class BaseResponseHandler:
    """Handles one response (stream).  Override the callbacks:

    :meth:`on_headers` (``status``, ``headers`` are set), :meth:`on_data`
    per body chunk, :meth:`on_response_done`, :meth:`on_close`, and
    :meth:`on_push_promise` (refuses pushes unless overridden to call
    :meth:`accept_push`).  ``http2`` is the :class:`HTTP2Client`, so a
    handler can send follow-up requests with ``self.http2.send_request``.
    """

    def __init__(self, http2: Optional[HTTP2Client] = None, stream_id: int = -1) -> None:
        self.headers: Fields = []
        self.cookies: Optional[list[bytes]] = []
        #: The stream's id; -1 until the request is sent.
        self.stream_id = stream_id
        self.http2 = http2
        self.remote_address: Any = None
        self.scheme: Optional[bytes] = None
        self.method: Optional[bytes] = None
        self.host: Optional[bytes] = None
        self.path: Optional[bytes] = None
        #: The ``:status`` value as bytes (b"200"), once the headers arrived.
        self.status: Optional[bytes] = None
        #: True for the handler of a pushed response.
        self.pushed = False
        #: The trailing header fields, if the response had any.
        self.trailers: Optional[list[tuple[bytes, bytes]]] = None

    @property
    def server_address(self) -> Any:
        return self.remote_address

    def on_headers(self) -> None:
        """The response's header block arrived."""

    def on_data(self, data: bytes) -> None:
        """A chunk of the response body arrived."""

    def on_response_done(self) -> None:
        """The whole response arrived."""

    def on_close(self, error_code: int) -> None:
        """The stream closed (``error_code`` 0: cleanly)."""

    def on_push_promise(self, push_promise: BaseResponseHandler) -> None:
        """The server promised a push (``push_promise.path`` etc.).  The
        default refuses it; accept with ``self.accept_push(push_promise,
        handler)``."""
        self.reject_push(push_promise)

    def accept_push(
        self, push_promise: BaseResponseHandler, handler: Optional[BaseResponseHandler] = None
    ) -> None:
        """Accept a push, its response going to ``handler``; a falsy
        ``handler`` refuses it."""
        assert self.http2 is not None
        self.http2.push(push_promise, handler)

    def reject_push(self, push_promise: BaseResponseHandler) -> None:
        assert self.http2 is not None
        self.http2.push(push_promise, None)

    #: ``handler.push(push_promise, handler)``: accept (or, with None, refuse).
    push = accept_push


class _HandlerSink(StreamSink):
    """Turns a stream's events into a handler's callbacks."""

    def __init__(self, client: HTTP2Client, handler: BaseResponseHandler) -> None:
        self.client = client
        self.handler = handler
        self.done = False

    def _call(self, name: str, *args: Any) -> bool:
        try:
            getattr(self.handler, name)(*args)
            return True
        except Exception:
            log.exception(
                "%s.%s failed on stream %d",
                type(self.handler).__name__,
                name,
                self.handler.stream_id,
            )
            conn = self.client.connection
            if conn is not None:
                conn.reset_stream(self.handler.stream_id, ErrorCode.INTERNAL_ERROR)
            return False

    def _done(self) -> None:
        if not self.done:
            self.done = True
            self._call("on_response_done")

    def on_response(self, headers: Fields, end_stream: bool) -> None:
        h = self.handler
        cookies = h.cookies if h.cookies is not None else []
        for name, value in headers:
            if name == b":status":
                h.status = value
            if name == b"cookie":
                cookies.append(value)
            else:
                h.headers.append((name, value))
        if cookies:
            h.headers.append((b"cookie", b"; ".join(cookies)))
        h.cookies = None
        if self._call("on_headers") and end_stream:
            self._done()

    def on_data(self, conn: ClientConnection, stream_id: int, data: bytes, end: bool) -> None:
        ok = True
        if data:
            ok = self._call("on_data", data)
            conn.consume(stream_id, len(data))
        if end and ok:
            self._done()

    def on_trailers(self, headers: Fields) -> None:
        self.handler.trailers = headers
        self._done()

    def on_closed(self, error_code: int, error: Optional[ClientError]) -> None:
        if error is not None and not error_code:
            error_code = ErrorCode.CANCEL
        self._call("on_close", error_code)
        self.client._stream_closed()

    def on_push_promise(self, promised_stream_id: int, headers: Fields) -> Optional[StreamSink]:
        client = self.client
        promise = BaseResponseHandler(http2=client, stream_id=promised_stream_id)
        promise.remote_address = self.handler.remote_address
        for name, value in headers:
            if name == b":scheme":
                promise.scheme = value
            elif name == b":method":
                promise.method = value
            elif name in (b":authority", b"host"):
                promise.host = value
            elif name == b":path":
                promise.path = value
            promise.headers.append((name, value))
        pending = _PendingPush(client)
        client._promises[promised_stream_id] = pending
        self._call("on_push_promise", promise)
        # Decided inside the callback: the stream already has its sink.
        return client._promise_sink(promised_stream_id, pending)


class _PendingPush(StreamSink):
    """A promised stream waiting for accept_push/reject_push: its events are
    kept (and its data not acknowledged) until then."""

    def __init__(self, client: HTTP2Client) -> None:
        self.client = client
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self.decided: Optional[StreamSink] = None  # the handler's sink once accepted
        self.refused = False

    def on_response(self, headers: Fields, end_stream: bool) -> None:
        self.events.append(("on_response", (headers, end_stream)))

    def on_data(self, conn: ClientConnection, stream_id: int, data: bytes, end: bool) -> None:
        self.events.append(("on_data", (conn, stream_id, data, end)))

    def on_trailers(self, headers: Fields) -> None:
        self.events.append(("on_trailers", (headers,)))

    def on_closed(self, error_code: int, error: Optional[ClientError]) -> None:
        self.events.append(("on_closed", (error_code, error)))
        self.client._stream_closed()

    def replay(self, sink: StreamSink) -> None:
        events, self.events = self.events, []
        for name, args in events:
            getattr(sink, name)(*args)


class HTTP2Client:
    """HTTP/2 client: ``HTTP2Client((host, port), loop=None, ssl=None)``.

    Outside a running event loop the constructor connects at once (and
    raises :class:`~client.ConnectError` and the like); ``loop`` defaults to
    a new loop, made the current one.  Inside a running loop it connects in
    the background and :meth:`send_request` queues until then.

    ``ssl``: an ``ssl.SSLContext`` (ALPN ``h2`` is set on it), True for the
    default context, or None for h2c with prior knowledge.
    """

    def __init__(
        self,
        address: tuple[str, int],
        loop: Optional[asyncio.AbstractEventLoop] = None,
        ssl: Union[_ssl.SSLContext, bool, None] = None,
        *,
        enable_push: bool = True,
        connect_timeout: Optional[float] = 10.0,
    ) -> None:
        host, port = address
        self.address = (host, port)
        if ssl is True:
            ssl = _ssl.create_default_context()
        if ssl:
            assert isinstance(ssl, _ssl.SSLContext)
            ssl.set_alpn_protocols(["h2"])
        self.ssl: Optional[_ssl.SSLContext] = ssl or None
        self.scheme = "https" if ssl else "http"
        self.enable_push = enable_push
        self.connect_timeout = connect_timeout
        try:
            running: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None:
            loop = running
            if loop is None:
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
        self.loop = loop
        self.connection: Optional[ClientConnection] = None
        self.error: Optional[BaseException] = None
        self._queued: list[tuple[Fields, Any, BaseResponseHandler]] = []
        self._promises: dict[int, _PendingPush] = {}
        self._changed: Optional[asyncio.Event] = None
        if running is not None and running is loop:
            self._connect_task: Optional[asyncio.Task[None]] = loop.create_task(self._connect())
        else:
            self._connect_task = None
            loop.run_until_complete(self._connect())

    @property
    def io_loop(self) -> asyncio.AbstractEventLoop:
        return self.loop

    # ---- connecting ------------------------------------------------------

    async def _connect(self) -> None:
        host, port = self.address
        origin = f"{self.scheme}://{host}:{port}"
        try:
            conn = await open_connection(
                lambda: ClientConnection(enable_push=self.enable_push),
                host,
                port,
                ssl=self.ssl,
                server_hostname=host if self.ssl else None,
                timeout=self.connect_timeout,
                origin=origin,
            )
        except BaseException as exc:
            self.error = exc
            queued, self._queued = self._queued, []
            for _, _, handler in queued:
                try:
                    handler.on_close(ErrorCode.CANCEL)
                except Exception:
                    log.exception("on_close failed")
            self._notify()
            if self._connect_task is not None and isinstance(exc, Exception):
                log.error("HTTP2Client: %s", exc)
                return
            raise
        self.connection = conn
        log.info("connected to %s", origin)
        queued, self._queued = self._queued, []
        for fields, body, handler in queued:
            self._submit(fields, body, handler)

    # ---- requests --------------------------------------------------------

    def send_request(
        self,
        method: str = "GET",
        url: str = "/",
        headers: Optional[list[tuple[Union[str, bytes], Union[str, bytes]]]] = None,
        body: Union[str, bytes, io.IOBase, None] = None,
        handler: Optional[BaseResponseHandler] = None,
    ) -> BaseResponseHandler:
        """Send a request; its response goes to ``handler`` (a
        :class:`BaseResponseHandler`), which is returned.

        ``url``: a path, or an absolute URL whose scheme and authority are
        sent instead of the connection's.  ``body``: None, str (UTF-8),
        bytes or a file-like ``io.IOBase`` read in chunks.
        """
        parts = urlparse(url)
        scheme = parts.scheme or self.scheme
        host = parts.netloc or f"{self.address[0]}:{self.address[1]}"
        path = parts.path or "/"
        if parts.params:
            path += ";" + parts.params
        if parts.query:
            path += "?" + parts.query
        if handler is None:
            handler = BaseResponseHandler()
        if body is not None and not isinstance(body, (str, bytes, bytearray, io.IOBase)):
            raise TypeError("body must be None or an instance of str, bytes or io.IOBase")
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif isinstance(body, bytearray):
            body = bytes(body)
        fields = [
            (b":method", _b(method)),
            (b":scheme", _b(scheme)),
            (b":authority", _b(host)),
            (b":path", _b(path)),
        ]
        fields += [(_b(name).lower(), _b(value)) for name, value in headers or ()]
        handler.http2 = self
        handler.scheme, handler.method = fields[1][1], fields[0][1]
        handler.host, handler.path = fields[2][1], fields[3][1]
        if self.connection is None:
            if self.error is not None:
                raise ConnectError(f"not connected: {self.error}")
            self._queued.append((fields, body, handler))
        else:
            self._submit(fields, body, handler)
        return handler

    def _submit(self, fields: Fields, body: Any, handler: BaseResponseHandler) -> None:
        conn = self.connection
        assert conn is not None
        sink = _HandlerSink(self, handler)
        try:
            sid = conn.submit(fields, body or None, True, sink)
        except Unavailable as exc:
            raise exc.reason from None
        handler.stream_id = sid
        handler.remote_address = conn.peername

    # ---- pushes ----------------------------------------------------------

    def push(
        self, push_promise: BaseResponseHandler, handler: Optional[BaseResponseHandler]
    ) -> None:
        """Accept a promised push (its response goes to ``handler``), or
        refuse it when ``handler`` is falsy (RST_STREAM CANCEL)."""
        sid = push_promise.stream_id
        pending = self._promises.pop(sid, None)
        if pending is None:
            raise ClientError(f"push {sid} was already accepted or refused")
        conn = self.connection
        if handler:
            handler.status = push_promise.status
            handler.scheme, handler.method = push_promise.scheme, push_promise.method
            handler.host, handler.path = push_promise.host, push_promise.path
            handler.headers = list(push_promise.headers)
            handler.cookies = []
            handler.stream_id = sid
            handler.http2 = self
            handler.pushed = True
            handler.remote_address = push_promise.remote_address
            sink = _HandlerSink(self, handler)
            pending.decided = sink
            if conn is not None and conn.streams.get(sid) is pending:
                conn.streams[sid] = sink
            pending.replay(sink)
        else:
            pending.refused = True
            for name, args in pending.events:
                if name == "on_data":
                    args[0].consume(args[1], len(args[2]))
            pending.events.clear()
            if conn is not None and sid in conn.streams:
                conn.reset_stream(sid, ErrorCode.CANCEL)

    def _promise_sink(self, sid: int, pending: _PendingPush) -> Optional[StreamSink]:
        """The sink a promised stream starts with: the handler's if the
        push was accepted in on_push_promise, None if refused there."""
        if pending.decided is not None:
            return pending.decided
        if pending.refused:
            return None
        return pending

    # ---- running ---------------------------------------------------------

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _stream_closed(self) -> None:
        self._notify()

    @property
    def is_idle(self) -> bool:
        """No request is queued or in flight."""
        conn = self.connection
        return not self._queued and (conn is None or not conn.streams)

    async def wait(self) -> None:
        """Wait until every request sent so far (and every accepted push)
        is done, or the connection is gone."""
        if self._changed is None:
            self._changed = asyncio.Event()
        if self._connect_task is not None:
            await asyncio.shield(self._connect_task)
        while True:
            conn = self.connection
            if conn is None or conn.closed_reason is not None or self.is_idle:
                return
            self._changed.clear()
            await self._changed.wait()

    def run(self, timeout: Optional[float] = None) -> None:
        """Run the event loop until :meth:`wait` returns (``timeout``
        seconds at most: then ``TimeoutError``)."""
        if self.loop.is_running():
            raise RuntimeError("the event loop is running: use 'await client.wait()'")
        waiter = self.wait() if timeout is None else asyncio.wait_for(self.wait(), timeout)
        self.loop.run_until_complete(waiter)

    def close(self) -> None:
        """Send GOAWAY and close the connection (running the loop until it
        is closed when the loop is not running)."""
        conn = self.connection
        if conn is None:
            if self._connect_task is not None:
                self._connect_task.cancel()
            return
        conn.close()
        if not self.loop.is_running() and conn.closed_reason is None:
            try:
                self.loop.run_until_complete(asyncio.wait_for(conn.wait_closed(), 1.0))
            except asyncio.TimeoutError:
                conn.abort()
