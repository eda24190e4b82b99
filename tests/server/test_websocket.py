"""ASGI WebSockets: over HTTP/2 by extended CONNECT (RFC 8441), driven by
the ``h2`` package with wsproto's frame layer on a raw socket; over HTTP/1.1
by the ``websockets`` package."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import ssl
from typing import Any, Callable, List, Optional, Tuple

import h2.events
import h2.settings
import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, Pong, TextMessage

from nghttp2.server.asgi import ASGIServer, WebSocketOptions
from nghttp2.server.limits import Limits

websockets = pytest.importorskip("websockets", reason="the HTTP/1.1 tests need websockets")

from websockets.asyncio.client import connect as websockets_connect  # noqa: E402
from websockets.exceptions import (  # noqa: E402
    ConnectionClosed,
    ConnectionClosedError,
    InvalidStatus,
)

pytestmark = pytest.mark.asyncio

TIMEOUT = 10.0
CANCEL = 0x8
ENABLE_CONNECT_PROTOCOL = h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL


async def wait(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, TIMEOUT)


# ---------------------------------------------------------------------------
# The application: raw ASGI, so every message is visible
# ---------------------------------------------------------------------------


class Seen:
    def __init__(self) -> None:
        self.scopes: List[dict] = []
        self.disconnects: List[dict] = []
        self.closed = asyncio.Event()
        self.send_error: Optional[BaseException] = None


def ws_app(seen: Seen) -> Callable[..., Any]:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan here")
        if scope["type"] == "http":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": f"page {scope['path']}".encode()})
            return
        seen.scopes.append(scope)
        assert (await receive()) == {"type": "websocket.connect"}
        path = scope["path"]
        if path == "/deny":
            await send({"type": "websocket.close"})
            return
        if path == "/deny-with-body":
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b"log in first"})
            return
        if path == "/no-accept":
            return
        if path == "/crash-before-accept":
            raise RuntimeError("boom before accept")
        subprotocol = "chat" if "chat" in scope["subprotocols"] else None
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": subprotocol,
                "headers": [(b"x-accepted", b"yes")],
            }
        )
        if path == "/server-close":
            await send({"type": "websocket.send", "text": "bye soon"})
            await send({"type": "websocket.close", "code": 4000, "reason": "done"})
            seen.disconnects.append(await receive())
            seen.closed.set()
            return
        if path == "/crash":
            raise RuntimeError("boom after accept")
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    seen.disconnects.append(message)
                    try:
                        await send({"type": "websocket.send", "text": "too late"})
                    except OSError as exc:
                        seen.send_error = exc
                    return
                if message.get("text") is not None:
                    await send({"type": "websocket.send", "text": "echo: " + message["text"]})
                else:
                    await send({"type": "websocket.send", "bytes": message["bytes"]})
        finally:
            seen.closed.set()

    return app


@pytest.fixture
def seen() -> Seen:
    return Seen()


# ---------------------------------------------------------------------------
# A WebSocket client over HTTP/2: h2 for the stream, wsproto for the frames
# ---------------------------------------------------------------------------


class H2WebSocket:
    """An RFC 8441 WebSocket on one stream of the ``h2_connect`` client."""

    def __init__(self, client: Any, stream_id: int) -> None:
        self.client = client
        self.stream_id = stream_id
        self.stream = client._stream(stream_id)
        self.ws = Connection(ConnectionType.CLIENT)
        self.events: List[Event] = []

    @classmethod
    async def open(
        cls,
        client: Any,
        path: str = "/ws",
        headers: Optional[List[Tuple[str, str]]] = None,
        version: str = "13",
    ) -> H2WebSocket:
        # RFC 8441 section 3: only once the server said it takes :protocol.
        await client.wait_for(lambda: client.conn.remote_settings.get(ENABLE_CONNECT_PROTOCOL) == 1)
        sid = client.conn.get_next_available_stream_id()
        fields = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", client.scheme),
            (":path", path),
            (":authority", client.authority),
            ("sec-websocket-version", version),
        ]
        client.conn.send_headers(sid, fields + (headers or []))
        socket = cls(client, sid)
        await client.flush()
        await client.wait_for(lambda: socket.stream.headers is not None or socket.stream.done)
        return socket

    @property
    def status(self) -> Optional[int]:
        return self.stream.status

    async def send(self, event: Event) -> None:
        """One wsproto event, as many DATA frames as the windows allow."""
        data = memoryview(self.ws.send(event))
        conn = self.client.conn
        while data:
            window = min(
                conn.local_flow_control_window(self.stream_id), conn.max_outbound_frame_size
            )
            if window <= 0:
                await self.client.read_once()
                continue
            conn.send_data(self.stream_id, bytes(data[:window]))
            data = data[window:]
            await self.client.flush()

    async def next_event(self) -> Event:
        while not self.events:
            if self.stream.data:
                self.ws.receive_data(bytes(self.stream.data))
                self.stream.data.clear()
                self.events += list(self.ws.events())
                continue
            if self.stream.done:
                raise ConnectionError("the stream ended without another WebSocket frame")
            await self.client.read_once()
        return self.events.pop(0)

    async def message(self) -> Any:
        """The next whole message (text or bytes), skipping pongs."""
        parts: list = []
        while True:
            event = await self.next_event()
            if isinstance(event, (TextMessage, BytesMessage)):
                parts.append(event.data)
                if event.message_finished:
                    return ("" if isinstance(event, TextMessage) else b"").join(parts)
            elif not isinstance(event, Pong):
                raise AssertionError(f"expected a message, got {event!r}")


# ---------------------------------------------------------------------------
# HTTP/2
# ---------------------------------------------------------------------------


async def test_server_announces_extended_connect(serve_asgi, seen, h2_connect):
    server = await serve_asgi(ws_app(seen))
    client = await h2_connect(server)
    await client.wait_for(
        lambda: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in client.events)
    )
    assert client.conn.remote_settings[ENABLE_CONNECT_PROTOCOL] == 1


async def test_no_extended_connect_with_websocket_false(serve_asgi, seen, h2_connect):
    server = await serve_asgi(ws_app(seen), websocket=False)
    client = await h2_connect(server)
    response = await client.get("/")  # the server's SETTINGS have arrived by now
    assert response.status == 200
    assert client.conn.remote_settings.get(ENABLE_CONNECT_PROTOCOL, 0) == 0


async def test_echo_over_h2(serve_asgi, seen, h2_connect):
    server = await serve_asgi(ws_app(seen))
    client = await h2_connect(server)
    socket = await H2WebSocket.open(
        client, "/ws?room=1", headers=[("sec-websocket-protocol", "x, chat")]
    )
    assert socket.status == 200
    assert socket.stream.header(b"sec-websocket-protocol") == b"chat"
    assert socket.stream.header(b"x-accepted") == b"yes"

    await socket.send(TextMessage("héllo"))
    assert await socket.message() == "echo: héllo"
    await socket.send(BytesMessage(b"\x00\xff" * 10))
    assert await socket.message() == b"\x00\xff" * 10
    # A fragmented message arrives whole.
    await socket.send(TextMessage("frag", message_finished=False))
    await socket.send(TextMessage("mented"))
    assert await socket.message() == "echo: fragmented"
    await socket.send(Ping(b"are you there"))
    event = await socket.next_event()
    assert isinstance(event, Pong) and event.payload == b"are you there"

    await socket.send(CloseConnection(code=1000, reason="bye"))
    event = await socket.next_event()
    assert isinstance(event, CloseConnection) and event.code == 1000
    await client.wait_for(lambda: socket.stream.ended)  # the server ended its half
    await wait(seen.closed.wait())
    assert seen.disconnects == [{"type": "websocket.disconnect", "code": 1000, "reason": "bye"}]
    assert isinstance(seen.send_error, OSError)

    scope = seen.scopes[0]
    host, port = server.address
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert scope["http_version"] == "2"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/ws" and scope["raw_path"] == b"/ws"
    assert scope["query_string"] == b"room=1"
    assert scope["subprotocols"] == ["x", "chat"]
    assert scope["server"] == (host, port)
    assert (b"host", client.authority.encode()) in scope["headers"]
    assert not any(name.startswith(b":") for name, _ in scope["headers"])
    assert scope["extensions"] == {"websocket.http.response": {}}


async def test_wss_over_tls(serve_asgi, seen, h2_connect, server_ssl, client_ssl):
    server = await serve_asgi(ws_app(seen), ssl=server_ssl)
    client = await h2_connect(server, ssl=client_ssl)
    socket = await H2WebSocket.open(client)
    assert socket.status == 200
    await socket.send(TextMessage("secure"))
    assert await socket.message() == "echo: secure"
    assert seen.scopes[0]["scheme"] == "wss"


async def test_pages_and_websockets_share_one_connection(serve_asgi, seen, h2_connect):
    server = await serve_asgi(ws_app(seen))
    client = await h2_connect(server)
    first = await H2WebSocket.open(client)
    await first.send(TextMessage("one"))
    page = await client.get("/page-a")
    assert bytes(page.data) == b"page /page-a"
    second = await H2WebSocket.open(client)
    await second.send(TextMessage("two"))
    await first.send(TextMessage("three"))
    page_sid = await client.request("/page-b")
    assert await first.message() == "echo: one"
    assert await second.message() == "echo: two"
    assert await first.message() == "echo: three"
    page = await client.response(page_sid)
    assert bytes(page.data) == b"page /page-b"
    assert {first.stream_id, second.stream_id, page_sid} == {1, 5, 7}
    assert len(server.connections) == 1


async def test_large_message_across_windows(serve_asgi, seen, h2_connect):
    server = await serve_asgi(ws_app(seen))
    window = server.limits.initial_window_size
    client = await h2_connect(server)
    socket = await H2WebSocket.open(client)
    payload = os.urandom(3 * window + 1)
    await socket.send(BytesMessage(payload))
    assert await socket.message() == payload


async def test_message_too_big_closes_with_1009(serve_asgi, seen, h2_connect):
    server = await serve_asgi(
        ws_app(seen), websocket_options=WebSocketOptions(max_message_size=1000)
    )
    client = await h2_connect(server)
    socket = await H2WebSocket.open(client)
    await socket.send(TextMessage("small"))
    assert await socket.message() == "echo: small"
    await socket.send(BytesMessage(b"x" * 1001))
    event = await socket.next_event()
    assert isinstance(event, CloseConnection) and event.code == 1009
    await wait(seen.closed.wait())
    assert seen.disconnects[0]["code"] == 1009


async def test_server_initiated_close(serve_asgi, seen, h2_connect):
    server = await serve_asgi(ws_app(seen))
    client = await h2_connect(server)
    socket = await H2WebSocket.open(client, "/server-close")
    assert await socket.message() == "bye soon"
    event = await socket.next_event()
    assert isinstance(event, CloseConnection) and (event.code, event.reason) == (4000, "done")
    await client.wait_for(lambda: socket.stream.ended)
    await socket.send(event.response())  # the client's half of the closing handshake
    client.conn.end_stream(socket.stream_id)
    await client.flush()
    await wait(seen.closed.wait())
    assert seen.disconnects == [{"type": "websocket.disconnect", "code": 4000, "reason": "done"}]


async def test_client_reset_is_a_1006_disconnect(serve_asgi, seen, h2_connect):
    server = await serve_asgi(ws_app(seen))
    client = await h2_connect(server)
    socket = await H2WebSocket.open(client)
    await socket.send(TextMessage("ping"))
    assert await socket.message() == "echo: ping"
    client.conn.reset_stream(socket.stream_id, CANCEL)
    await client.flush()
    await wait(seen.closed.wait())
    assert seen.disconnects == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]
    assert isinstance(seen.send_error, OSError)
    assert (await client.get("/still-here")).status == 200


async def test_lost_connection_is_a_1006_disconnect(serve_asgi, seen, h2_connect):
    server = await serve_asgi(ws_app(seen))
    client = await h2_connect(server)
    socket = await H2WebSocket.open(client)
    await socket.send(TextMessage("ping"))
    assert await socket.message() == "echo: ping"
    client.abort()
    await wait(seen.closed.wait())
    assert seen.disconnects[0]["code"] == 1006


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/deny", 403, b"WebSocket refused\n"),
        ("/no-accept", 403, b"WebSocket refused\n"),
        ("/deny-with-body", 401, b"log in first"),
        ("/crash-before-accept", 500, b"Internal Server Error\n"),
    ],
)
async def test_denials_are_http_responses(serve_asgi, seen, h2_connect, path, status, body):
    server = await serve_asgi(ws_app(seen))
    client = await h2_connect(server)
    socket = await H2WebSocket.open(client, path)
    response = await client.response(socket.stream_id)
    assert response.status == status
    assert bytes(response.data) == body


async def test_crash_after_accept_closes_with_1011(serve_asgi, seen, h2_connect, caplog):
    server = await serve_asgi(ws_app(seen))
    client = await h2_connect(server)
    socket = await H2WebSocket.open(client, "/crash")
    assert socket.status == 200
    event = await socket.next_event()
    assert isinstance(event, CloseConnection) and event.code == 1011
    assert any("boom after accept" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


async def test_wrong_version_is_refused(serve_asgi, seen, h2_connect):
    server = await serve_asgi(ws_app(seen))
    client = await h2_connect(server)
    socket = await H2WebSocket.open(client, version="8")
    response = await client.response(socket.stream_id)
    assert response.status == 400
    assert response.header(b"sec-websocket-version") == b"13"
    assert seen.scopes == []


# ---------------------------------------------------------------------------
# HTTP/1.1: Upgrade: websocket, answered through switch_protocols()
# ---------------------------------------------------------------------------

http11 = pytest.mark.skipif(
    importlib.util.find_spec("server.http11") is None,
    reason="HTTP/1.1 (server/http11.py) is not in this tree",
)


def ws_url(server: ASGIServer, path: str) -> str:
    host, port = server.address
    return f"{'wss' if server.ssl else 'ws'}://{host}:{port}{path}"


@http11
async def test_echo_over_http11_with_websockets(serve_asgi, seen):
    server = await serve_asgi(ws_app(seen))
    async with websockets_connect(
        ws_url(server, "/ws?room=2"), subprotocols=["chat"], max_size=None
    ) as ws:
        assert ws.subprotocol == "chat"
        assert ws.response.headers["x-accepted"] == "yes"
        assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
        await ws.send("héllo")
        assert await wait(ws.recv()) == "echo: héllo"
        payload = os.urandom(3 * 1024 * 1024)  # past the read-ahead high-water mark
        await ws.send(payload)
        assert await wait(ws.recv()) == payload
        pong = await ws.ping(b"ping?")
        await wait(pong)
    assert ws.close_code == 1000
    await wait(seen.closed.wait())
    assert seen.disconnects == [{"type": "websocket.disconnect", "code": 1000, "reason": ""}]
    assert isinstance(seen.send_error, OSError)
    scope = seen.scopes[0]
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/ws" and scope["query_string"] == b"room=2"
    assert scope["subprotocols"] == ["chat"]
    assert not any(name.startswith(b":") for name, _ in scope["headers"])


@http11
async def test_wss_over_tls_http11(serve_asgi, seen, server_ssl, ca):
    server = await serve_asgi(ws_app(seen), ssl=server_ssl)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with websockets_connect(ws_url(server, "/ws"), ssl=context) as ws:
        await ws.send("secure")
        assert await wait(ws.recv()) == "echo: secure"
    assert seen.scopes[0]["scheme"] == "wss"
    assert seen.scopes[0]["http_version"] == "1.1"


@http11
async def test_server_initiated_close_over_http11(serve_asgi, seen):
    server = await serve_asgi(ws_app(seen))
    async with websockets_connect(ws_url(server, "/server-close")) as ws:
        assert await wait(ws.recv()) == "bye soon"
        with pytest.raises(ConnectionClosed):
            await wait(ws.recv())
    assert (ws.close_code, ws.close_reason) == (4000, "done")
    await wait(seen.closed.wait())
    assert seen.disconnects == [{"type": "websocket.disconnect", "code": 4000, "reason": "done"}]


@http11
async def test_message_too_big_over_http11(serve_asgi, seen):
    server = await serve_asgi(
        ws_app(seen), websocket_options=WebSocketOptions(max_message_size=1000)
    )
    async with websockets_connect(ws_url(server, "/ws")) as ws:
        await ws.send(b"x" * 1001)
        with pytest.raises(ConnectionClosedError):
            await wait(ws.recv())
    assert ws.close_code == 1009


@http11
async def test_lost_connection_over_http11(serve_asgi, seen):
    server = await serve_asgi(ws_app(seen))
    ws = await websockets_connect(ws_url(server, "/ws"))
    await ws.send("ping")
    assert await wait(ws.recv()) == "echo: ping"
    ws.transport.abort()
    await wait(seen.closed.wait())
    assert seen.disconnects[0]["code"] == 1006


@http11
@pytest.mark.parametrize(("path", "status"), [("/deny", 403), ("/deny-with-body", 401)])
async def test_denials_over_http11(serve_asgi, seen, path, status):
    server = await serve_asgi(ws_app(seen))
    with pytest.raises(InvalidStatus) as info:
        await websockets_connect(ws_url(server, path))
    assert info.value.response.status_code == status


async def test_body_size_limit_does_not_cap_a_websocket_stream(serve_asgi, seen, h2_connect):
    # max_body_size bounds request bodies; a WebSocket's CONNECT stream is a
    # tunnel that may carry more over its life (its messages have their own cap).
    server = await serve_asgi(ws_app(seen), limits=Limits(max_body_size=10_000))
    client = await h2_connect(server)
    socket = await H2WebSocket.open(client)
    for i in range(5):
        payload = bytes([i]) * 5000
        await socket.send(BytesMessage(payload))
        assert await socket.message() == payload
    assert socket.stream.reset is None


async def test_shutdown_closes_websockets_with_1001_over_h2(seen, h2_connect, caplog):
    server = ASGIServer(("127.0.0.1", 0), ws_app(seen))
    await wait(server.start())
    client = await h2_connect(server)
    socket = await H2WebSocket.open(client)
    await socket.send(TextMessage("hi"))
    assert await socket.message() == "echo: hi"
    stopping = asyncio.ensure_future(server.shutdown(timeout=5))
    event = await socket.next_event()
    assert isinstance(event, CloseConnection) and event.code == 1001
    await socket.send(event.response())
    client.conn.end_stream(socket.stream_id)
    await client.flush()
    await wait(stopping)
    assert seen.disconnects == [
        {"type": "websocket.disconnect", "code": 1001, "reason": "the server is shutting down"}
    ]
    assert not server.websockets
    assert not [r for r in caplog.records if "aborting" in r.getMessage()]


@http11
async def test_shutdown_closes_websockets_with_1001_over_http11(seen):
    server = ASGIServer(("127.0.0.1", 0), ws_app(seen))
    await wait(server.start())
    async with websockets_connect(ws_url(server, "/ws")) as ws:
        await ws.send("hi")
        assert await wait(ws.recv()) == "echo: hi"
        await wait(server.shutdown(timeout=5))
        with pytest.raises(ConnectionClosed):
            await wait(ws.recv())
    assert (ws.close_code, ws.close_reason) == (1001, "the server is shutting down")
    assert seen.disconnects == [
        {"type": "websocket.disconnect", "code": 1001, "reason": "the server is shutting down"}
    ]
    assert not server.websockets


@http11
async def test_close_drops_http11_websockets_at_once(seen):
    server = ASGIServer(("127.0.0.1", 0), ws_app(seen))
    await wait(server.start())
    async with websockets_connect(ws_url(server, "/ws")) as ws:
        await ws.send("hi")
        assert await wait(ws.recv()) == "echo: hi"
        server.close()
        with pytest.raises(ConnectionClosed):
            await wait(ws.recv())
    assert ws.close_code == 1006  # no closing handshake
    await wait(seen.closed.wait())
    assert seen.disconnects[0]["code"] == 1006
    await wait(server.shutdown())  # lifespan (none here) and nothing else left
