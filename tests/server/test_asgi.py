"""ASGI 3 over the server: a real Starlette application and raw ASGI apps,
driven by httpx (HTTP/2, h2c and TLS) and by the frame-level ``h2`` client.

WebSockets are in test_websocket.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import signal
import socket
import ssl
import struct
import sys
from pathlib import Path
from typing import Any, AsyncIterator, Callable, List, Optional

import h2.events
import httpx
import pytest

from nghttp2.server.asgi import ASGIServer, LifespanFailure
from nghttp2.server.errors import ClientDisconnected

starlette = pytest.importorskip("starlette", reason="the Starlette tests need starlette")

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import (  # noqa: E402
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route, WebSocketRoute  # noqa: E402
from starlette.websockets import WebSocket, WebSocketDisconnect  # noqa: E402

pytestmark = pytest.mark.asyncio

TIMEOUT = 10.0
REPO = Path(__file__).resolve().parents[2]
INTERNAL_ERROR = 0x2


async def wait(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, TIMEOUT)


# ---------------------------------------------------------------------------
# The applications
# ---------------------------------------------------------------------------


class Observed:
    """What the applications saw, for the tests to check."""

    def __init__(self) -> None:
        self.lifespan: List[str] = []
        self.waiting = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.messages: List[dict] = []
        self.send_error: Optional[BaseException] = None
        self.proceed = asyncio.Event()
        self.ws_disconnects: List[int] = []


def starlette_app(observed: Observed) -> Starlette:
    async def text(request: Request) -> Response:
        return PlainTextResponse("hello, asgi\n")

    async def as_json(request: Request) -> Response:
        return JSONResponse(
            {
                "path": request.url.path,
                "query": dict(request.query_params),
                "http_version": request.scope["http_version"],
                "scheme": request.url.scheme,
                "started": request.state.started,
            }
        )

    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(50):
                await asyncio.sleep(0)
                yield b"chunk %d\n" % i

        return StreamingResponse(chunks(), media_type="text/plain")

    async def echo(request: Request) -> Response:
        body = await request.body()
        return Response(
            body, media_type="application/octet-stream", headers={"x-length": str(len(body))}
        )

    async def upload(request: Request) -> Response:
        digest, size, chunks = hashlib.sha256(), 0, 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
            chunks += 1
        return JSONResponse({"size": size, "sha256": digest.hexdigest(), "chunks": chunks})

    async def wait_disconnect(request: Request) -> Response:
        observed.waiting.set()
        while True:
            message = await request.receive()
            observed.messages.append(message)
            if message["type"] == "http.disconnect":
                break
        observed.disconnected.set()
        return PlainTextResponse("nobody reads this")

    async def ws_echo(websocket: WebSocket) -> None:
        subprotocol = "chat" if "chat" in websocket.scope["subprotocols"] else None
        await websocket.accept(subprotocol=subprotocol)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    observed.ws_disconnects.append(message["code"])
                    return
                if message.get("text") is not None:
                    await websocket.send_text("echo: " + message["text"])
                else:
                    await websocket.send_bytes(message["bytes"])
        except WebSocketDisconnect as exc:
            observed.ws_disconnects.append(exc.code)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict]:
        observed.lifespan.append("startup")
        yield {"started": True}
        observed.lifespan.append("shutdown")

    return Starlette(
        routes=[
            Route("/text", text),
            Route("/json", as_json),
            Route("/stream", stream),
            Route("/echo", echo, methods=["POST"]),
            Route("/upload", upload, methods=["POST"]),
            Route("/wait-disconnect", wait_disconnect),
            WebSocketRoute("/ws", ws_echo),
        ],
        lifespan=lifespan,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def raw_app(observed: Observed) -> Callable[..., Any]:
    """ASGI without a framework: scope, trailers, early hints, push, errors."""

    async def read_body(receive: Any) -> bytes:
        body = b""
        while True:
            message = await receive()
            assert message["type"] == "http.request", message
            body += message.get("body", b"")
            if not message.get("more_body"):
                return body

    async def respond(send: Any, body: bytes, status: int = 200, headers: Any = ()) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain"), *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("this app has no lifespan")
        path = scope["path"]
        if path == "/scope":
            await read_body(receive)
            body = json.dumps(_jsonable(scope)).encode()
            await respond(send, body)
        elif path == "/trailers":
            await read_body(receive)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "trailers": True,
                    "headers": [(b"trailer", b"x-checksum")],
                }
            )
            await send({"type": "http.response.body", "body": b"part one, ", "more_body": True})
            await send({"type": "http.response.body", "body": b"part two"})
            await send(
                {
                    "type": "http.response.trailers",
                    "more_trailers": True,
                    "headers": [(b"x-checksum", b"abc123")],
                }
            )
            await send({"type": "http.response.trailers", "headers": [(b"x-more", b"yes")]})
        elif path == "/early":
            await send(
                {
                    "type": "http.response.early_hint",
                    "links": [b"</style.css>; rel=preload; as=style"],
                }
            )
            await respond(send, b"page with hints")
        elif path == "/push":
            if "http.response.push" in scope["extensions"]:
                await send(
                    {
                        "type": "http.response.push",
                        "path": "/pushed",
                        "headers": [(b"accept", b"text/css")],
                    }
                )
            await respond(send, b"page")
        elif path == "/pushed":
            accept = dict(scope["headers"]).get(b"accept", b"")
            await respond(send, b"pushed " + scope["method"].encode() + b" " + accept)
        elif path == "/error":
            raise RuntimeError("boom before start")
        elif path == "/error-late":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"half", "more_body": True})
            raise RuntimeError("boom mid-body")
        elif path == "/no-response":
            return
        elif path == "/incomplete":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"half", "more_body": True})
        elif path == "/slow-reader":
            first = await receive()
            observed.messages.append(first)
            await observed.proceed.wait()
            size = len(first["body"])
            if first["more_body"]:
                size += len(await read_body(receive))
            await respond(send, str(size).encode())
        elif path == "/disconnect":
            await read_body(receive)
            observed.waiting.set()
            message = await receive()
            observed.messages.append(message)
            try:
                await respond(send, b"too late")
            except OSError as exc:
                observed.send_error = exc
            observed.disconnected.set()
        elif path == "/connection-headers":
            await respond(
                send,
                b"ok",
                headers=[
                    (b"Connection", b"keep-alive"),
                    (b"Transfer-Encoding", b"chunked"),
                    (b"X-Mixed-Case", b"kept"),
                ],
            )
        elif path == "/head":
            await respond(send, b"a body HEAD must not carry", headers=[(b"content-length", b"26")])
        else:
            await respond(send, b"not found", status=404)

    return app


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture
def observed() -> Observed:
    return Observed()


def base_url(server: ASGIServer) -> str:
    host, port = server.address
    return f"{'https' if server.ssl else 'http'}://{host}:{port}"


# ---------------------------------------------------------------------------
# Starlette over HTTP/2 with httpx
# ---------------------------------------------------------------------------


async def test_starlette_over_h2c(serve_asgi, observed):
    server = await serve_asgi(starlette_app(observed))
    url = base_url(server)
    async with httpx.AsyncClient(http1=False, http2=True, timeout=TIMEOUT) as client:
        r = await client.get(url + "/text")
        assert (r.status_code, r.http_version, r.text) == (200, "HTTP/2", "hello, asgi\n")
        assert r.headers["content-type"].startswith("text/plain")

        r = await client.get(url + "/json?a=1&b=two")
        assert r.json() == {
            "path": "/json",
            "query": {"a": "1", "b": "two"},
            "http_version": "2",
            "scheme": "http",
            "started": True,
        }

        r = await client.get(url + "/stream")
        assert r.text == "".join(f"chunk {i}\n" for i in range(50))

        body = os.urandom(3 * 1024 * 1024 + 17)  # several times the stream window
        r = await client.post(url + "/echo", content=body)
        assert r.status_code == 200
        assert r.headers["x-length"] == str(len(body))
        assert r.content == body

        r = await client.get(url + "/missing")
        assert r.status_code == 404
    assert len(server.connections) <= 1


async def test_starlette_over_tls(serve_asgi, observed, server_ssl, client_ssl):
    server = await serve_asgi(starlette_app(observed), ssl=server_ssl)
    url = base_url(server)
    async with httpx.AsyncClient(
        http1=False, http2=True, verify=client_ssl, timeout=TIMEOUT
    ) as client:
        r = await client.get(url + "/json")
        assert r.http_version == "HTTP/2"
        assert r.json()["scheme"] == "https"
        body = os.urandom(200_000)
        r = await client.post(url + "/upload", content=body)
        assert r.json()["size"] == len(body)
        assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()


async def test_streamed_upload_arrives_in_chunks(serve_asgi, observed):
    server = await serve_asgi(starlette_app(observed))

    async def body() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b"z" * 16384

    async with httpx.AsyncClient(http1=False, http2=True, timeout=TIMEOUT) as client:
        r = await client.post(base_url(server) + "/upload", content=body())
    result = r.json()
    assert result["size"] == 64 * 16384
    assert result["sha256"] == hashlib.sha256(b"z" * 64 * 16384).hexdigest()
    assert result["chunks"] > 1  # streamed to the app, not buffered whole


# ---------------------------------------------------------------------------
# Lifespan
# ---------------------------------------------------------------------------


async def test_lifespan_startup_before_listening_and_shutdown_after(observed):
    server = ASGIServer(("127.0.0.1", 0), starlette_app(observed))
    await wait(server.start())
    assert observed.lifespan == ["startup"]
    assert server.lifespan.supported
    async with httpx.AsyncClient(http1=False, http2=True, timeout=TIMEOUT) as client:
        r = await client.get(base_url(server) + "/json")
        assert r.json()["started"] is True  # the lifespan state reached the request
    await wait(server.shutdown(timeout=2))
    assert observed.lifespan == ["startup", "shutdown"]


async def test_lifespan_startup_failed_aborts_start():
    async def app(scope: dict, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    server = ASGIServer(("127.0.0.1", 0), app)
    with pytest.raises(LifespanFailure, match="no database"):
        await wait(server.start())
    assert not server.sockets  # never listened


async def test_app_without_lifespan_is_served(serve_asgi, observed, caplog):
    caplog.set_level(logging.INFO, logger="nghttp2.server.asgi")
    server = await serve_asgi(raw_app(observed))
    assert not server.lifespan.supported
    assert any("does not support lifespan" in r.getMessage() for r in caplog.records)
    async with httpx.AsyncClient(http1=False, http2=True, timeout=TIMEOUT) as client:
        r = await client.get(base_url(server) + "/nothing-here")
    assert r.status_code == 404


async def test_lifespan_on_requires_support(observed):
    server = ASGIServer(("127.0.0.1", 0), raw_app(observed), lifespan="on")
    with pytest.raises(LifespanFailure, match="no lifespan"):
        await wait(server.start())


async def test_lifespan_off_never_runs_it(serve_asgi, observed):
    server = await serve_asgi(starlette_app(observed), lifespan="off")
    assert observed.lifespan == []
    await wait(server.shutdown(timeout=2))
    assert observed.lifespan == []


# ---------------------------------------------------------------------------
# The scope
# ---------------------------------------------------------------------------


async def test_http_scope_over_h2(serve_asgi, observed, h2_connect):
    server = await serve_asgi(raw_app(observed))
    client = await h2_connect(server)
    response = await client.get("/scope?x=%20y&z", headers=[("x-custom", "Value")])
    scope = json.loads(bytes(response.data))
    host, port = server.address
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert scope["http_version"] == "2"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == {"bytes": "/scope"}
    assert scope["query_string"] == {"bytes": "x=%20y&z"}
    assert scope["root_path"] == ""
    assert scope["server"] == [host, port]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["client"][1] == client.writer.get_extra_info("sockname")[1]
    headers = [(n["bytes"], v["bytes"]) for n, v in scope["headers"]]
    assert ("host", f"{host}:{port}") in headers  # from :authority
    assert ("x-custom", "Value") in headers
    assert not any(name.startswith(":") for name, _ in headers)
    assert all(name == name.lower() for name, _ in headers)
    assert scope["extensions"] == {
        "http.response.push": {},
        "http.response.trailers": {},
        "http.response.early_hint": {},
    }


async def test_path_is_decoded_and_raw_path_kept(serve_asgi, observed, h2_connect):
    server = await serve_asgi(raw_app(observed))
    client = await h2_connect(server)
    response = await client.get("/sc%6fpe/../%E2%82%AC?q=%E2%82%AC")
    assert response.status == 404  # the decoded path is not /scope
    response = await client.get("/%73cope")
    scope = json.loads(bytes(response.data))
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == {"bytes": "/%73cope"}


async def test_host_header_is_not_duplicated(serve_asgi, observed, h2_connect):
    server = await serve_asgi(raw_app(observed))
    client = await h2_connect(server)
    response = await client.get("/scope", headers=[("host", client.authority)])
    headers = json.loads(bytes(response.data))["headers"]
    hosts = [v["bytes"] for n, v in headers if n["bytes"] == "host"]
    assert hosts == [client.authority]


async def test_push_extension_only_when_the_client_allows_push(serve_asgi, observed, h2_connect):
    server = await serve_asgi(raw_app(observed))
    client = await h2_connect(server, enable_push=False)
    scope = json.loads(bytes((await client.get("/scope")).data))
    assert "http.response.push" not in scope["extensions"]
    response = await client.get("/push")
    assert bytes(response.data) == b"page"
    assert client.pushes == []


# ---------------------------------------------------------------------------
# Responses: trailers, early hints, push, HEAD, headers
# ---------------------------------------------------------------------------


async def test_trailers(serve_asgi, observed, h2_connect):
    server = await serve_asgi(raw_app(observed))
    client = await h2_connect(server)
    response = await client.get("/trailers")
    assert response.status == 200
    assert bytes(response.data) == b"part one, part two"
    assert response.trailers == [(b"x-checksum", b"abc123"), (b"x-more", b"yes")]


async def test_early_hints(serve_asgi, observed, h2_connect):
    server = await serve_asgi(raw_app(observed))
    client = await h2_connect(server)
    sid = await client.request("/early")
    response = await client.response(sid)
    informational = [
        e
        for e in client.events
        if isinstance(e, h2.events.InformationalResponseReceived) and e.stream_id == sid
    ]
    assert len(informational) == 1
    assert (b":status", b"103") in informational[0].headers
    assert (b"link", b"</style.css>; rel=preload; as=style") in informational[0].headers
    assert response.status == 200 and bytes(response.data) == b"page with hints"


async def test_push_runs_the_app_for_the_pushed_path(serve_asgi, observed, h2_connect):
    server = await serve_asgi(raw_app(observed))
    client = await h2_connect(server)
    response = await client.get("/push")
    assert bytes(response.data) == b"page"
    assert len(client.pushes) == 1
    promise = client.pushes[0]
    assert dict(promise.headers)[b":path"] == b"/pushed"
    assert (b"accept", b"text/css") in promise.headers
    pushed = await client.response(promise.pushed_stream_id)
    assert pushed.status == 200
    assert bytes(pushed.data) == b"pushed GET text/css"


async def test_head_response_carries_no_body(serve_asgi, observed, h2_connect):
    server = await serve_asgi(raw_app(observed))
    client = await h2_connect(server)
    response = await client.get("/head", method="HEAD")
    assert response.status == 200
    assert response.header(b"content-length") == b"26"
    assert bytes(response.data) == b""


async def test_connection_specific_headers_are_dropped_over_h2(serve_asgi, observed, h2_connect):
    server = await serve_asgi(raw_app(observed))
    client = await h2_connect(server)
    response = await client.get("/connection-headers")
    assert response.status == 200
    names = [name for name, _ in response.headers]
    assert b"connection" not in names and b"transfer-encoding" not in names
    assert response.header(b"x-mixed-case") == b"kept"


# ---------------------------------------------------------------------------
# Request bodies: flow control
# ---------------------------------------------------------------------------


async def test_request_body_is_not_read_ahead_of_the_app(serve_asgi, observed, h2_connect):
    server = await serve_asgi(raw_app(observed))
    window = server.limits.initial_window_size
    client = await h2_connect(server)
    body = b"b" * (window * 4)
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(
        sid,
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", client.authority),
            (":path", "/slow-reader"),
        ],
    )
    client._stream(sid)
    sent = 0
    # Send what the windows allow, then let the server answer a PING: every
    # WINDOW_UPDATE it would send for this stream is on the wire by then.
    for _ in range(3):
        while client.conn.local_flow_control_window(sid) > 0 and sent < len(body):
            size = min(
                client.conn.local_flow_control_window(sid),
                client.conn.max_outbound_frame_size,
                len(body) - sent,
            )
            client.conn.send_data(sid, body[sent : sent + size])
            sent += size
        client.conn.ping(b"flowctl!")
        await client.flush()
        acks = sum(isinstance(e, h2.events.PingAckReceived) for e in client.events)
        await client.wait_for(
            lambda acks=acks: (
                sum(isinstance(e, h2.events.PingAckReceived) for e in client.events) > acks
            )
        )
    await wait(_until(lambda: len(observed.messages) >= 1))
    # The app took one chunk and stops reading: the stream window opened by
    # that chunk at most, never by the whole body.
    assert observed.messages[0]["more_body"] is True
    assert sent <= window + len(observed.messages[0]["body"])
    assert sent < len(body)
    observed.proceed.set()
    await client.send_body(sid, body[sent:])
    response = await client.response(sid)
    assert bytes(response.data) == str(len(body)).encode()


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------------
# Disconnects
# ---------------------------------------------------------------------------


async def test_starlette_sees_http_disconnect_when_the_client_resets(
    serve_asgi, observed, h2_connect, caplog
):
    server = await serve_asgi(starlette_app(observed))
    client = await h2_connect(server)
    sid = await client.request("/wait-disconnect")
    await wait(observed.waiting.wait())
    client.conn.reset_stream(sid)
    await client.flush()
    await wait(observed.disconnected.wait())
    assert observed.messages[-1] == {"type": "http.disconnect"}
    # The app answering after the disconnect is not an error.
    await asyncio.sleep(0)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # The connection serves on.
    assert (await client.get("/text")).status == 200


@pytest.mark.parametrize("how", ["reset", "abort"])
async def test_http_disconnect_and_send_raising_oserror(serve_asgi, observed, h2_connect, how):
    server = await serve_asgi(raw_app(observed))
    client = await h2_connect(server)
    sid = await client.request("/disconnect", method="POST", body=b"payload")
    await wait(observed.waiting.wait())
    if how == "reset":
        client.conn.reset_stream(sid)
        await client.flush()
    else:
        client.abort()
    await wait(observed.disconnected.wait())
    assert observed.messages == [{"type": "http.disconnect"}]
    assert isinstance(observed.send_error, ClientDisconnected)
    assert isinstance(observed.send_error, OSError)


# ---------------------------------------------------------------------------
# Application errors
# ---------------------------------------------------------------------------


def errors_logged(caplog: Any, text: str) -> list:
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.exc_info and text in str(r.exc_info[1])
    ]


async def test_exception_before_the_response_answers_500(serve_asgi, observed, h2_connect, caplog):
    server = await serve_asgi(raw_app(observed))
    client = await h2_connect(server)
    response = await client.get("/error")
    assert response.status == 500
    assert len(errors_logged(caplog, "boom before start")) == 1


async def test_exception_mid_body_resets_the_stream(serve_asgi, observed, h2_connect, caplog):
    server = await serve_asgi(raw_app(observed))
    client = await h2_connect(server)
    response = await client.get("/error-late")
    assert response.status == 200
    assert response.reset == INTERNAL_ERROR
    assert len(errors_logged(caplog, "boom mid-body")) == 1


@pytest.mark.parametrize(
    ("path", "status", "reset", "text"),
    [
        ("/no-response", 500, None, "without starting"),
        ("/incomplete", 200, INTERNAL_ERROR, "without completing"),
    ],
)
async def test_app_returning_without_a_complete_response(
    serve_asgi, observed, h2_connect, caplog, path, status, reset, text
):
    server = await serve_asgi(raw_app(observed))
    client = await h2_connect(server)
    response = await client.get(path)
    assert response.status == status
    assert response.reset == reset
    assert len(errors_logged(caplog, text)) == 1


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------


async def _start_cli(*args: str, cwd: Path) -> tuple:
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(cwd),
        env=env,
    )
    return proc


async def test_cli_serves_an_asgi_app(tmp_path):
    proc = await _start_cli("--asgi", "examples.asgi_app:app", "--no-tls", "--port", "0", cwd=REPO)
    try:
        line = (await wait(proc.stdout.readline())).decode()
        match = re.search(r"on (http://\S+/) ", line)
        assert match, line
        async with httpx.AsyncClient(http1=False, http2=True, timeout=TIMEOUT) as client:
            r = await client.get(match.group(1))
        assert r.status_code == 200 and r.http_version == "HTTP/2"
        assert "WebSocket" in r.text
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        _, stderr = await wait(proc.communicate())
    assert proc.returncode == 0, stderr.decode()


async def test_cli_lifespan_failure_is_a_clear_error(tmp_path):
    (tmp_path / "failing_app.py").write_text(
        "async def app(scope, receive, send):\n"
        "    await receive()\n"
        "    await send({'type': 'lifespan.startup.failed', 'message': 'cache unreachable'})\n"
    )
    proc = await _start_cli("--asgi", "failing_app:app", "--no-tls", "--port", "0", cwd=tmp_path)
    stdout, stderr = await wait(proc.communicate())
    assert proc.returncode == 1
    assert "error: ASGI lifespan startup failed: cache unreachable" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert b"Serving" not in stdout


async def test_cli_rejects_a_bad_app_spec(tmp_path):
    proc = await _start_cli("--asgi", "no_such_module:app", "--no-tls", cwd=tmp_path)
    _, stderr = await wait(proc.communicate())
    assert proc.returncode != 0
    assert "cannot load ASGI app 'no_such_module:app'" in stderr.decode()


# ---------------------------------------------------------------------------
# HTTP/1.1 (server/http11.py): the same apps, the same handler interface
# ---------------------------------------------------------------------------

http11 = pytest.mark.skipif(
    importlib.util.find_spec("server.http11") is None,
    reason="HTTP/1.1 (server/http11.py) is not in this tree",
)


@http11
async def test_starlette_over_http11(serve_asgi, observed):
    server = await serve_asgi(starlette_app(observed))
    url = base_url(server)
    async with httpx.AsyncClient(http1=True, http2=False, timeout=TIMEOUT) as client:
        r = await client.get(url + "/text")
        assert (r.status_code, r.http_version, r.text) == (200, "HTTP/1.1", "hello, asgi\n")
        r = await client.get(url + "/json?a=1")
        assert r.json() == {
            "path": "/json",
            "query": {"a": "1"},
            "http_version": "1.1",
            "scheme": "http",
            "started": True,
        }
        r = await client.get(url + "/stream")
        assert r.text == "".join(f"chunk {i}\n" for i in range(50))
        body = os.urandom(3 * 1024 * 1024 + 17)
        r = await client.post(url + "/echo", content=body)
        assert r.content == body

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(64):
                yield b"z" * 16384

        r = await client.post(url + "/upload", content=chunks())  # chunked
        assert r.json()["size"] == 64 * 16384


@http11
async def test_starlette_over_tls_http11(serve_asgi, observed, server_ssl, ca):
    server = await serve_asgi(starlette_app(observed), ssl=server_ssl)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with httpx.AsyncClient(
        http1=True, http2=False, verify=context, timeout=TIMEOUT
    ) as client:
        r = await client.get(base_url(server) + "/json")
    assert r.http_version == "HTTP/1.1"
    assert r.json()["scheme"] == "https" and r.json()["http_version"] == "1.1"


@http11
async def test_http11_scope_and_extensions(serve_asgi, observed):
    server = await serve_asgi(raw_app(observed))
    host, port = server.address
    async with httpx.AsyncClient(http1=True, http2=False, timeout=TIMEOUT) as client:
        scope = (await client.get(base_url(server) + "/scope?q=1")).json()
        assert scope["http_version"] == "1.1"
        assert scope["method"] == "GET" and scope["path"] == "/scope"
        assert scope["query_string"] == {"bytes": "q=1"}
        assert scope["server"] == [host, port]
        headers = [(n["bytes"], v["bytes"]) for n, v in scope["headers"]]
        assert ("host", f"{host}:{port}") in headers
        assert not any(name.startswith(":") for name, _ in headers)
        assert scope["extensions"] == {"http.response.early_hint": {}}
        scope = (await client.get(base_url(server) + "/scope", headers={"te": "trailers"})).json()
        assert scope["extensions"] == {"http.response.early_hint": {}, "http.response.trailers": {}}


@http11
async def test_http_disconnect_over_http11(serve_asgi, observed):
    server = await serve_asgi(starlette_app(observed))
    host, port = server.address
    _, writer = await wait(asyncio.open_connection(host, port))
    writer.write(f"GET /wait-disconnect HTTP/1.1\r\nhost: {host}:{port}\r\n\r\n".encode())
    await writer.drain()
    await wait(observed.waiting.wait())
    # The client leaves: RST (a FIN alone is a half-close that still gets
    # its answer over cleartext HTTP/1.1).
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
    await wait(observed.disconnected.wait())
    assert observed.messages[-1] == {"type": "http.disconnect"}


@http11
@pytest.mark.clients
async def test_h2c_upgrade_serves_stream_1_over_http2(serve_asgi, observed, run):
    server = await serve_asgi(starlette_app(observed))
    result = (await run("curl", "-sS", "--http2", base_url(server) + "/json")).check()
    assert json.loads(result.out)["http_version"] == "2"
