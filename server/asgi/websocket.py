"""The ASGI ``websocket`` scope.

Over HTTP/2 a WebSocket is an extended CONNECT stream (RFC 8441): the
request ``:method CONNECT``, ``:protocol websocket`` is answered ``200``
and the WebSocket frames travel in that stream's DATA, so one connection
carries pages and sockets; the stream's window opens as the app reads.
Over HTTP/1.1 the request is an ``Upgrade: websocket`` answered ``101
Switching Protocols`` (the connection's ``switch_protocols``), after which
the frames travel on the connection itself.  Either way wsproto's frame
layer (:class:`wsproto.connection.Connection`, without its HTTP/1.1
handshake) parses and produces the frames.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from typing import TYPE_CHECKING, Any, Optional

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason
from wsproto.handshake import server_extensions_handshake
from wsproto.utilities import LocalProtocolError, generate_accept_token, split_comma_header

from ..errors import ClientDisconnected, InvalidResponse
from .http import encode_fields

if TYPE_CHECKING:
    from .http import ASGIHandler, Message

log = logging.getLogger("nghttp2.server.asgi")

_VERSION = b"13"
_ABNORMAL = int(CloseReason.ABNORMAL_CLOSURE)


@dataclasses.dataclass(frozen=True)
class WebSocketOptions:
    #: A message longer than this closes the socket with 1009 (None: no limit).
    max_message_size: Optional[int] = 16 * 1024 * 1024
    #: Accept the permessage-deflate extension when the client offers it.
    per_message_deflate: bool = True
    #: Seconds to wait for the client's close frame after ours.
    close_timeout: float = 5.0
    #: HTTP/1.1: bytes read ahead of the app before reading pauses.
    read_high_water: int = 1024 * 1024


DEFAULT_OPTIONS = WebSocketOptions()


# ---- where the frames travel -----------------------------------------------


class StreamChannel:
    """Frames in the body of the handler's own stream (HTTP/2), or nothing
    at all (the HTTP/1.1 handshake request, before the switch)."""

    def __init__(self, handler: ASGIHandler) -> None:
        self.handler = handler
        self._ended = False

    @property
    def gone(self) -> bool:
        return self.handler.gone

    async def read(self) -> Optional[bytes]:
        """The next chunk; None once the stream ended, was reset or lost."""
        stream = self.handler.exchange
        inbox = stream.inbox
        if inbox is None:
            return None
        while not inbox.chunks and not inbox.done:
            await inbox.wait()
        if inbox.error is not None or not inbox.chunks:
            return None
        chunk = inbox.chunks.popleft()
        stream.consumed(len(chunk))
        return chunk

    async def write(self, data: bytes) -> None:
        await self.handler.write(data)

    def end_output(self) -> None:
        """END_STREAM after our close frame."""
        handler = self.handler
        if not handler.gone and not self._ended:
            self._ended = True
            try:
                handler.http2.end_response(handler.exchange, None)
            except ClientDisconnected:
                pass

    def close(self) -> None:
        self.end_output()

    def abort(self) -> None:
        """The connection's own abort covers the stream."""


class UpgradedChannel(asyncio.Protocol):
    """Frames on an HTTP/1.1 connection after ``101 Switching Protocols``:
    the connection's protocol from then on."""

    def __init__(self, high_water: int) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.gone = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._high_water = high_water
        self._eof = False
        self._reading_paused = False
        self._writing_paused = False
        self._waiter: Optional[asyncio.Future[None]] = None
        self._drained: Optional[asyncio.Future[None]] = None
        self._early: list[bytes] = []

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self._early:
            transport.write(b"".join(self._early))
            self._early = []

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > self._high_water and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.gone = self._eof = True
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # the channel
    async def read(self) -> Optional[bytes]:
        while not self._chunks and not self._eof:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if not self._chunks:
            return None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._reading_paused and self._buffered <= self._high_water // 2 and not self.gone:
            self._reading_paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        return chunk

    async def write(self, data: bytes) -> None:
        transport = self.transport
        if self.gone or (transport is not None and transport.is_closing()):
            raise ClientDisconnected("the WebSocket connection is closed")
        if transport is None:  # the 101 is not out yet
            self._early.append(data)
            return
        transport.write(data)
        while self._writing_paused and not self.gone:
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained
        if self.gone:
            raise ClientDisconnected("the WebSocket connection is closed")

    def end_output(self) -> None:
        """TCP stays open until the client's close frame (RFC 6455 7.1.1)."""

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


# ---- the ASGI side ---------------------------------------------------------


class WebSocketCycle:
    """One WebSocket: the ASGI ``receive``/``send`` pair of its app call."""

    def __init__(
        self, handler: ASGIHandler, headers: list[tuple[bytes, bytes]], http_version: str
    ) -> None:
        self.handler = handler
        self.headers = headers
        self.http_version = http_version
        self.options: WebSocketOptions = handler.websocket_options or DEFAULT_OPTIONS
        self.subprotocols: list[str] = []
        self.extension_offers: list[str] = []
        self._key: Optional[bytes] = None
        self._version: Optional[bytes] = None
        self._connection_upgrade = False
        for name, value in headers:
            if name == b"sec-websocket-protocol":
                self.subprotocols += split_comma_header(value)
            elif name == b"sec-websocket-extensions":
                self.extension_offers += split_comma_header(value)
            elif name == b"sec-websocket-key":
                self._key = value
            elif name == b"sec-websocket-version":
                self._version = value
            elif name == b"connection":
                self._connection_upgrade |= "upgrade" in split_comma_header(value.lower())
        self.channel: Any = StreamChannel(handler)
        self.ws: Optional[Connection] = None
        self._connect_sent = False
        self._accepted = False
        self._responded = False  # answered with HTTP instead: denied
        self._response_ended = False
        self._close_sent = False
        self._disconnect: Optional[tuple[int, str]] = None
        self._messages: collections.deque[dict[str, Any]] = collections.deque()
        self._parts: list[Any] = []
        self._size = 0

    def _handshake_error(self) -> Optional[str]:
        if self._version != _VERSION:
            return "WebSocket version 13 expected"
        if self.http_version != "2":
            if self.handler.method != b"GET":
                return "a WebSocket handshake is a GET"
            if not self._key or not self._connection_upgrade:
                return "a WebSocket handshake needs Connection: Upgrade and Sec-WebSocket-Key"
        return None

    async def run(self) -> None:
        handler = self.handler
        problem = self._handshake_error()
        if problem is not None:
            # RFC 6455 section 4.2.2 (RFC 8441 section 5 keeps the fields).
            status = 426 if self._version != _VERSION and self.http_version != "2" else 400
            handler.send_response(
                status,
                [(b"sec-websocket-version", _VERSION), (b"content-type", b"text/plain")],
                problem.encode() + b"\n",
            )
            return
        scope = handler.base_scope("websocket", self.headers, self.http_version)
        scope["subprotocols"] = self.subprotocols
        scope["extensions"] = {"websocket.http.response": {}}
        if handler._info.tls is not None:  # mutual TLS: the client's certificate
            scope["extensions"]["tls"] = handler._info.tls
        registry = handler.open_websockets
        if registry is not None:
            registry.add(self)
        try:
            await self._run_app(scope)
        finally:
            if registry is not None:
                registry.discard(self)

    async def _run_app(self, scope: dict[str, Any]) -> None:
        try:
            await self.handler.app(scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except Exception:
            if not self._accepted:
                raise  # nothing answered yet: the connection's rules answer 500
            log.exception("stream %d: the ASGI websocket app failed", self.handler.stream_id)
            await self._close_quietly(int(CloseReason.INTERNAL_ERROR))
        else:
            if self._accepted:
                await self._close_quietly(int(CloseReason.NORMAL_CLOSURE))
            elif not self._responded and not self.handler.gone:
                self._deny(403)  # ASGI: returning without accepting is a denial
        if self._accepted:
            await self._finish()

    def going_away(self) -> Optional[asyncio.Task[None]]:
        """The server shuts down: close an open WebSocket with 1001."""
        if not self._accepted or self._close_sent or self._disconnect is not None:
            return None
        return asyncio.get_running_loop().create_task(
            self._close_quietly(int(CloseReason.GOING_AWAY), "the server is shutting down")
        )

    def abort(self) -> None:
        self.channel.abort()

    @property
    def upgraded(self) -> bool:
        """Over HTTP/1.1: the connection is this WebSocket's alone."""
        return isinstance(self.channel, UpgradedChannel)

    async def _close_quietly(self, code: int, reason: str = "") -> None:
        if self._close_sent or self._disconnect is not None or self.channel.gone:
            return
        try:
            await self._close(code, reason)
        except ClientDisconnected:
            pass

    async def _finish(self) -> None:
        """Wait (a while) for the client's close frame, then let go."""
        if self._disconnect is None and self._close_sent and not self.channel.gone:
            try:
                await asyncio.wait_for(self._drain(), self.options.close_timeout)
            except asyncio.TimeoutError:
                log.debug(
                    "stream %d: no close frame from the client in time", self.handler.stream_id
                )
        self.channel.close()

    async def _drain(self) -> None:
        while self._disconnect is None:
            await self._read()
            self._messages.clear()

    # ---- receive ---------------------------------------------------------

    async def receive(self) -> Message:
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        while True:
            if self._messages:
                return self._messages.popleft()
            if self._disconnect is not None:
                code, reason = self._disconnect
                return {"type": "websocket.disconnect", "code": code, "reason": reason}
            if not self._accepted and (self._responded or self.handler.gone):
                self._disconnect = (_ABNORMAL, "")
                continue
            await self._read()

    async def _read(self) -> None:
        chunk = await self.channel.read()
        if chunk is None:
            # Reset, lost, or ended without a close frame.
            if self._disconnect is None:
                self._disconnect = (_ABNORMAL, "")
            self.channel.close()
            return
        ws = self.ws
        if ws is None:
            return  # before accept: nothing may arrive (RFC 8441 waits for 200)
        try:
            ws.receive_data(chunk)
        except LocalProtocolError:
            return  # after the closing handshake
        out = bytearray()
        for event in ws.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                self._parts.append(event.data)
                self._size += len(event.data)
                limit = self.options.max_message_size
                if limit is not None and self._size > limit:
                    out += self._close_frame(int(CloseReason.MESSAGE_TOO_BIG), "message too big")
                    self._disconnect = (int(CloseReason.MESSAGE_TOO_BIG), "message too big")
                    break
                if event.message_finished:
                    message: dict[str, Any] = {"type": "websocket.receive"}
                    if isinstance(event, TextMessage):
                        message["text"] = "".join(self._parts)
                    else:
                        message["bytes"] = b"".join(self._parts)
                    self._messages.append(message)
                    self._parts = []
                    self._size = 0
            elif isinstance(event, Ping):
                out += ws.send(event.response())
            elif isinstance(event, CloseConnection):
                # The client's close, its answer to ours, or its protocol
                # error (wsproto reports those as a close it wants sent).
                if not self._close_sent:
                    out += self._close_frame(event.code, event.reason or "")
                self._disconnect = (int(event.code), event.reason or "")
                break
        if out:
            try:
                await self.channel.write(bytes(out))
            except ClientDisconnected:
                self._disconnect = self._disconnect or (_ABNORMAL, "")
        if self._disconnect is not None:
            self.channel.end_output()
            if self._close_sent:
                self.channel.close()  # both close frames are through

    def _close_frame(self, code: int, reason: str) -> bytes:
        assert self.ws is not None
        self._close_sent = True
        try:
            return bytes(self.ws.send(CloseConnection(code=code, reason=reason or None)))
        except LocalProtocolError:
            return b""

    # ---- send ------------------------------------------------------------

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            if not self._accepted:
                raise RuntimeError("websocket.send before websocket.accept")
            if self._close_sent or self._disconnect is not None or self.channel.gone:
                raise ClientDisconnected(
                    f"stream {self.handler.stream_id}: the WebSocket is closed"
                )
            assert self.ws is not None
            data = message.get("bytes")
            if data is not None:
                frame = self.ws.send(BytesMessage(data=data))
            else:
                text = message.get("text")
                if text is None:
                    raise RuntimeError("websocket.send needs 'bytes' or 'text'")
                frame = self.ws.send(TextMessage(data=text))
            await self.channel.write(bytes(frame))
        elif kind == "websocket.accept":
            if self._accepted or self._responded:
                raise RuntimeError("websocket.accept after the handshake was answered")
            if self.handler.gone:
                raise ClientDisconnected(f"stream {self.handler.stream_id}: the client has gone")
            self._accept(message)
        elif kind == "websocket.close":
            if not self._accepted and not self._responded:
                self._deny(403)
            elif self._accepted and not (
                self._close_sent or self._disconnect is not None or self.channel.gone
            ):
                await self._close(message.get("code", 1000), message.get("reason") or "")
        elif kind == "websocket.http.response.start":
            if self._accepted or self._responded:
                raise RuntimeError("websocket.http.response.start after the handshake")
            status = message["status"]
            fields = [(b":status", str(status).encode("ascii"))]
            fields += encode_fields(message.get("headers"), self.http_version == "2")
            self._responded = True
            self.handler.http2.begin_response(self.handler.exchange, status, fields)
        elif kind == "websocket.http.response.body":
            if not self._responded or self._accepted or self._response_ended:
                raise RuntimeError("websocket.http.response.body without its start")
            body = message.get("body", b"")
            if body:
                await self.handler.write(body)
            if not message.get("more_body", False):
                self._response_ended = True
                self.handler.http2.end_response(self.handler.exchange, None)
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} on a websocket")

    def _accept(self, message: Message) -> None:
        handler = self.handler
        extensions: list[Extension] = []
        fields = []
        if self.options.per_message_deflate and self.extension_offers:
            deflate = PerMessageDeflate()
            accepted = server_extensions_handshake(self.extension_offers, [deflate])
            if accepted:
                extensions = [deflate]  # configured by the handshake from the offer
                fields.append((b"sec-websocket-extensions", accepted))
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            if subprotocol not in self.subprotocols:
                raise InvalidResponse(
                    f"subprotocol {subprotocol!r} was not offered (offered: {self.subprotocols})"
                )
            fields.append((b"sec-websocket-protocol", subprotocol.encode("ascii")))
        for name, value in encode_fields(message.get("headers"), self.http_version == "2"):
            if name == b"sec-websocket-protocol":
                raise InvalidResponse("use 'subprotocol', not a sec-websocket-protocol header")
            fields.append((name, value))
        self.ws = Connection(ConnectionType.SERVER, extensions)
        if self.http_version == "2":
            handler.http2.begin_response(handler.exchange, 200, [(b":status", b"200"), *fields])
        else:
            assert self._key is not None
            channel = UpgradedChannel(self.options.read_high_water)
            switch = [
                (b"upgrade", b"websocket"),
                (b"connection", b"Upgrade"),
                (b"sec-websocket-accept", generate_accept_token(self._key)),
                *fields,
            ]
            handler.http2.switch_protocols(handler, switch, lambda: channel)
            self.channel = channel
        self._accepted = True

    async def _close(self, code: int, reason: str) -> None:
        frame = self._close_frame(code, reason)
        if frame:
            await self.channel.write(frame)
        self.channel.end_output()

    def _deny(self, status: int) -> None:
        self._responded = self._response_ended = True
        self.handler.send_response(
            status, [(b"content-type", b"text/plain")], b"WebSocket refused\n"
        )
