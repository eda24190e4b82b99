"""ASGIHandler: one ASGI ``http`` (or ``websocket``) connection per stream,
built on the handler API, so it runs on every transport that implements it.

The request body reaches the application through ``receive()`` one chunk at
a time, and the client's window opens only as it reads.  The response
headers wait for the first body message: a response that fits one
``http.response.body`` goes out in one call, its body served from C.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, List, MutableMapping, Optional, Tuple
from urllib import parse

from nghttp2_cffi import NGHTTP2Error, SettingCode

from ..errors import ClientDisconnected, InvalidResponse, PushError
from ..handler import BaseRequestHandler
from ..tls import asgi_tls_extension

log = logging.getLogger("nghttp2.server.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Fields = List[Tuple[bytes, bytes]]

#: ``scope["asgi"]`` of http and websocket scopes.
ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}

# RFC 9113 section 8.2.2: dropped from responses over HTTP/2.
_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
_DISCONNECT = {"type": "http.disconnect"}

# Where a response is.
_IDLE = 0  # nothing from the app yet
_PENDING = 1  # http.response.start received; headers not sent yet
_SENDING = 2  # headers sent, body under way
_TRAILERS = 3  # body complete, trailers to come
_COMPLETE = 4


def _as_bytes(value: Any) -> bytes:
    if value.__class__ is bytes:
        return value
    if isinstance(value, str):
        return value.encode("latin-1")
    return bytes(value)


def encode_fields(headers: Any, strip_connection_specific: bool) -> Fields:
    """ASGI ``[name, value]`` pairs as lower-case bytes tuples.

    Pseudo-headers are refused; connection-specific fields are dropped when
    ``strip_connection_specific`` (HTTP/2 forbids them).
    """
    fields = []
    for name, value in headers or ():
        name = (name if name.__class__ is bytes else _as_bytes(name)).lower()
        if name[:1] == b":":
            raise InvalidResponse(f"an ASGI app cannot send the pseudo-header {name!r}")
        if strip_connection_specific and name in _CONNECTION_SPECIFIC:
            continue
        fields.append((name, value if value.__class__ is bytes else _as_bytes(value)))
    return fields


def decode_path(raw: bytes) -> tuple[str, bytes, bytes]:
    """``(path, raw_path, query_string)`` of a request target."""
    raw_path, _, query = raw.partition(b"?")
    try:
        text = raw_path.decode("ascii")
    except UnicodeDecodeError:
        text = raw_path.decode("utf-8", "replace")
    return (parse.unquote(text) if "%" in text else text), raw_path, query


def _address(value: Any) -> Optional[tuple[Any, int]]:
    if isinstance(value, tuple) and len(value) >= 2:
        return (value[0], value[1])
    return None


class _Connection:
    """What every scope of one connection shares, worked out once."""

    __slots__ = ("client", "server", "http_version", "push", "tls", "proxy")

    def __init__(self, conn: Any) -> None:
        self.client = _address(conn.client_address)
        transport = getattr(conn, "transport", None)
        self.server = _address(transport.get_extra_info("sockname")) if transport else None
        self.tls = asgi_tls_extension(transport.get_extra_info("ssl_object")) if transport else None
        self.proxy = getattr(getattr(conn, "server", None), "proxy_headers", None)
        self.http_version: str = getattr(conn, "http_version", "2")
        # The client's SETTINGS precede its first request; one that turns
        # push off later gets its push messages ignored (PushError).
        session = getattr(conn, "session", None)
        self.push = bool(
            self.http_version == "2"
            and session is not None
            and session.remote_settings[SettingCode.ENABLE_PUSH]
        )


def _connection(conn: Any) -> _Connection:
    info: Optional[_Connection] = conn.asgi_info
    if info is None:
        info = conn.asgi_info = _Connection(conn)
    return info


class ASGIHandler(BaseRequestHandler):
    """Runs the ASGI application once per request.

    Make a subclass bound to an application with :func:`asgi_handler`.  The
    app is not cancelled when the client goes away: ``receive()`` returns
    ``http.disconnect`` (``websocket.disconnect``) at once, and ``send()``
    raises :class:`~server.errors.ClientDisconnected`, an ``OSError``.
    """

    #: The ASGI 3 application.
    app: ASGIApp
    #: The prefix a proxy mounts the app at (``--root-path``), without a final /.
    root_path = ""
    #: The lifespan state: each scope gets a shallow copy (None: no lifespan).
    state: Optional[dict[str, Any]] = None
    #: WebSocket options (see :class:`server.asgi.websocket.WebSocketOptions`).
    websocket_options: Any = None
    #: The server's open WebSockets (closed with 1001 when it shuts down).
    open_websockets: Optional[set[Any]] = None
    #: The app hears of a vanished client through receive() and send(); it
    #: is not cancelled under its feet.
    cancel_on_close = False
    _info: _Connection  # set first thing in on_headers

    # Where the request is; class attributes are the defaults, so that a
    # request sets only what changes (BaseRequestHandler.__init__ is all
    # the per-request set-up).
    _response = _IDLE
    _status = 0
    _fields: Fields  # set by http.response.start
    _trailer_fields: Optional[Fields] = None
    _want_trailers = False
    _head = False
    _strip = False
    _body_done = False
    #: True once the stream closed or the client left.
    gone = False
    _gone_waiter: Optional[asyncio.Future[None]] = None
    websocket: Any = None

    # ---- the handler API's callbacks -------------------------------------

    async def on_headers(self) -> None:  # type: ignore[override] # a coroutine handler
        stream = self.exchange
        self._info = info = _connection(stream.connection)
        http_version = info.http_version
        # The host handler code sees: :authority over a host field (RFC 9113
        # section 8.3.1), an absolute-form target's authority over Host (RFC
        # 9112 section 3.2.2).
        host = stream.host
        headers: Fields = [(b"host", host)] if host else []
        protocol = None
        upgrade = te_trailers = False
        for field in stream.headers:
            name = field[0]
            if name[:1] == b":":
                if name == b":protocol":
                    protocol = field[1]
                continue
            if name == b"host":
                continue  # validation: the app's host is stream.host, see above
            if name == b"upgrade":
                upgrade = upgrade or field[1].lower() == b"websocket"
            elif name == b"te":
                te_trailers = te_trailers or b"trailers" in field[1].lower()
            headers.append(field)
        method = stream.method or b""
        if method == b"CONNECT":
            if protocol is not None and protocol.lower() == b"websocket":
                from .websocket import WebSocketCycle

                self.websocket = WebSocketCycle(self, headers, http_version)
                await self.websocket.run()
                return
            self.send_response(
                405, [(b"content-type", b"text/plain")], b"CONNECT tunnels are not served here\n"
            )
            return
        if upgrade and http_version != "2":  # an HTTP/1.1 Upgrade: websocket
            from .websocket import WebSocketCycle

            self.websocket = WebSocketCycle(self, headers, http_version)
            await self.websocket.run()
            return
        await self._serve_http(headers, method, http_version, te_trailers)

    def on_close(self, error_code: int) -> None:
        self.gone = True
        waiter = self._gone_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- scope -----------------------------------------------------------

    def base_scope(self, kind: str, headers: Fields, http_version: str) -> dict[str, Any]:
        """The keys http and websocket scopes share."""
        info = self._info
        path, raw_path, query = decode_path(self.path or b"")
        scheme = self.exchange.connection.scheme == b"https"
        client = info.client
        proxy = info.proxy
        if proxy is not None:
            client, forwarded = proxy.resolve(client, "https" if scheme else "http", headers)
            scheme = forwarded == "https"
        root_path = self.root_path
        if root_path:  # as uvicorn: the path the client asked for, prefix included
            path, raw_path = root_path + path, root_path.encode() + raw_path
        scope = {
            "type": kind,
            "asgi": ASGI_VERSION,
            "http_version": http_version,
            "scheme": ("https" if scheme else "http")
            if kind == "http"
            else ("wss" if scheme else "ws"),
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": root_path,
            "headers": headers,
            "client": client,
            "server": info.server,
        }
        if self.state is not None:
            scope["state"] = dict(self.state)
        return scope

    def _push_allowed(self) -> bool:
        return not self.pushed and self._info.push

    # ---- http ------------------------------------------------------------

    async def _serve_http(
        self, headers: Fields, method: bytes, http_version: str, te_trailers: bool
    ) -> None:
        scope = self.base_scope("http", headers, http_version)
        scope["method"] = method.decode("ascii", "replace")
        if http_version == "2":
            extensions: dict[str, Any] = {
                "http.response.trailers": {},
                "http.response.early_hint": {},
            }
            if self._push_allowed():
                extensions["http.response.push"] = {}
            scope["extensions"] = extensions
        else:
            # HTTP/1.1 sends 103 (not to HTTP/1.0 clients) and chunked
            # trailers to clients that asked for them with TE: trailers.
            extensions = {"http.response.early_hint": {}}
            if te_trailers:
                extensions["http.response.trailers"] = {}
            scope["extensions"] = extensions
        if self._info.tls is not None:
            extensions["tls"] = self._info.tls
        if method == b"HEAD":
            self._head = True
        if http_version == "2":
            self._strip = True
        await self.app(scope, self._receive, self._send)
        if self._response != _COMPLETE and not self.gone:
            if self.status is not None and self._response < _SENDING:
                return  # the server answered already (the response timeout's 503)
            raise RuntimeError(
                "the ASGI app returned without "
                + ("starting" if self._response == _IDLE else "completing")
                + " its response"
            )

    async def _receive(self) -> Message:
        if self.gone or self._response == _COMPLETE:
            return _DISCONNECT
        stream = self.exchange
        inbox = stream.inbox
        if not self._body_done:
            if inbox is None:  # a pushed request: no body
                self._body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if not inbox.chunks and not inbox.done:
                stream.want_body()
                while not inbox.chunks and not inbox.done:
                    await inbox.wait()
            if inbox.error is not None or self.gone:
                return _DISCONNECT
            chunk = b""
            if inbox.chunks:
                chunk = inbox.chunks.popleft()
                stream.consumed(len(chunk))
            more = bool(inbox.chunks) or not inbox.done
            self._body_done = not more
            return {"type": "http.request", "body": chunk, "more_body": more}
        # The body is read: wait for the client to leave or the response to end.
        if not self.gone and self._response != _COMPLETE:
            self._gone_waiter = waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._gone_waiter = None
        return _DISCONNECT

    def _complete(self) -> None:
        self._response = _COMPLETE
        waiter = self._gone_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if self.gone:
            raise ClientDisconnected(f"stream {self.stream_id}: the client has gone")
        state = self._response
        if kind == "http.response.body":
            if state == _PENDING:
                body = message.get("body", b"")
                more = message.get("more_body", False)
                stream = self.exchange
                if stream.status is not None:
                    raise RuntimeError(
                        f"stream {stream.id} was answered by the server "
                        f"({stream.status}) before the app's response"
                    )
                if not more and not self._want_trailers:
                    self._response = _COMPLETE
                    stream.connection.start_response(
                        stream,
                        self._status,
                        self._fields,
                        (body if body.__class__ is bytes else _as_bytes(body))
                        if body and not self._head
                        else None,
                    )
                    if self._gone_waiter is not None:
                        self._complete()
                    return
                self.http2.begin_response(self.exchange, self._status, self._fields)
                self._response = state = _SENDING
            elif state != _SENDING:
                raise RuntimeError(
                    "http.response.body before http.response.start"
                    if state == _IDLE
                    else "http.response.body after the body ended"
                )
            else:
                body = message.get("body", b"")
                more = message.get("more_body", False)
            if body and not self._head:
                await self.http2.write(self.exchange, _as_bytes(body))
            if not more:
                if self._want_trailers:
                    self._response = _TRAILERS
                else:
                    self.http2.end_response(self.exchange, None)
                    self._complete()
        elif kind == "http.response.start":
            if state != _IDLE:
                raise RuntimeError("http.response.start sent twice")
            status = message["status"]
            if not isinstance(status, int) or not 200 <= status <= 999:
                raise InvalidResponse(
                    f"http.response.start: status must be an int from 200 to 999, not {status!r}"
                )
            self._status = status
            fields = [(b":status", b"%d" % status)]
            fields += encode_fields(message.get("headers"), self._strip)
            self._fields = fields
            if message.get("trailers", False):
                self._want_trailers = True
            self._response = _PENDING
        elif kind == "http.response.trailers":
            if state != _TRAILERS:
                raise RuntimeError(
                    "http.response.trailers needs 'trailers': True in "
                    "http.response.start and comes after the last body message"
                )
            trailer_fields = encode_fields(message.get("headers"), self._strip)
            if self._trailer_fields:
                trailer_fields = self._trailer_fields + trailer_fields
            self._trailer_fields = trailer_fields
            if not message.get("more_trailers", False):
                self.http2.end_response(self.exchange, self._trailer_fields or None)
                self._complete()
        elif kind == "http.response.early_hint":
            if state >= _SENDING:
                log.debug(
                    "stream %d: early hint after the response headers: ignored", self.stream_id
                )
                return
            links = message.get("links") or ()
            fields = [(b":status", b"103")] + [(b"link", _as_bytes(link)) for link in links]
            self.http2.send_informational(self.exchange, fields)
        elif kind == "http.response.push":
            self._push(message)
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} on an http connection")

    def _push(self, message: Message) -> None:
        """Promise ``path`` and answer it by running the app on a new request."""
        if not self._push_allowed():
            log.debug("stream %d: push not allowed: ignored", self.stream_id)
            return
        path = _as_bytes(message["path"])
        request = [
            (b":method", b"GET"),
            (b":scheme", self.scheme or self.http2.scheme),
            (b":authority", self.host or b""),
            (b":path", path),
        ]
        request += encode_fields(message.get("headers"), True)
        try:
            promised = self.http2.push_promise(self.exchange, request)
        except (PushError, NGHTTP2Error) as exc:
            log.debug("stream %d: push of %r refused: %s", self.stream_id, path, exc)
            return
        # The pushed request goes through the connection's callback rules
        # (an exception answers 500), like a request from the client.
        self.http2.run_pushed(promised)


def asgi_handler(app: ASGIApp, **attributes: Any) -> type[ASGIHandler]:
    """An :class:`ASGIHandler` subclass that serves ``app``."""
    if not callable(app):
        raise TypeError(f"an ASGI application is a callable, not {type(app).__name__}")
    namespace = {"app": staticmethod(app), **attributes}
    return type("ASGIHandler", (ASGIHandler,), namespace)
