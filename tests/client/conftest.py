"""Fixtures of the client tests: real servers on 127.0.0.1.

- ``serve``: our HTTP2Server in the test's loop (port 0), with ``App``;
- ``h2_peer``: a scripted server on the ``h2`` library, for what a real
  server will not do on demand (GOAWAY with a chosen last_stream_id,
  REFUSED_STREAM, protocol errors);
- ``nghttpd`` and ``granian``: real servers in subprocesses (skipped, saying
  why, when not installed).

Every wait is bounded; no assertion is about time.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, ClassVar, Dict, Iterator, List, Optional

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest
import pytest_asyncio
import trustme
from net_support import free_port, wait_for_port

from nghttp2.server import DATA_EOF, DATA_OK, BaseRequestHandler, HTTP2Server, PushError
from nghttp2.server.limits import Limits

#: Bound of a single wait in these tests (a hang fails the test).
TIMEOUT = 10.0
PATTERN = bytes(range(256)) * 256  # 64 KiB


# ---------------------------------------------------------------------------
# Certificates (``ca``, ``server_cert`` and ``server_ssl`` are in tests/conftest.py)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cert_files(server_cert: trustme.LeafCert, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """(certificate chain, private key) as PEM files, for subprocess servers."""
    d = tmp_path_factory.mktemp("cert")
    cert, key = d / "cert.pem", d / "key.pem"
    with open(cert, "wb") as f:
        f.writelines(blob.bytes() for blob in server_cert.cert_chain_pems)
    server_cert.private_key_pem.write_to_path(str(key))
    return str(cert), str(key)


@pytest.fixture
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture(params=["h2c", "tls"])
def tls(request: pytest.FixtureRequest) -> bool:
    """The servers in subprocesses, over h2c and over TLS."""
    return request.param == "tls"


@pytest.fixture
def tls_options(tls: bool, client_ssl: ssl.SSLContext) -> Dict[str, Any]:
    """The Client keyword arguments for ``tls``."""
    return {"ssl": client_ssl} if tls else {}


# ---------------------------------------------------------------------------
# Memory: peak growth while a body streams through
# ---------------------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory growth over a block: Python's traced allocations
    (tracemalloc, CPython only) and the process's resident set, sampled by
    :meth:`sample` (call it as the body streams)."""

    def __init__(self) -> None:
        try:
            import tracemalloc
        except ImportError:  # PyPy
            tracemalloc = None  # type: ignore[assignment]
        self._tm = tracemalloc
        self.traced: Optional[int] = None
        self.rss = 0
        self._rss0 = 0
        self._base = 0

    def __enter__(self) -> PeakMemory:
        if self._tm is None:
            gc.collect()
        self._rss0 = _rss()
        if self._tm is not None:
            self._tm.start()
            self._base = self._tm.get_traced_memory()[0]
        return self

    def sample(self) -> None:
        if self._tm is None:
            # PyPy frees garbage lazily (major collections at 1.82x growth):
            # count what is alive, not what the collector has yet to reclaim.
            gc.collect()
        self.rss = max(self.rss, _rss() - self._rss0)

    def __exit__(self, *exc: object) -> None:
        self.sample()
        if self._tm is not None:
            self.traced = self._tm.get_traced_memory()[1] - self._base
            self._tm.stop()

    def __str__(self) -> str:
        traced = "n/a" if self.traced is None else f"{self.traced / 2**20:.1f} MiB"
        return f"peak growth: traced {traced}, RSS {self.rss / 2**20:.1f} MiB"


@pytest.fixture
def peak_memory() -> Callable[[], PeakMemory]:
    return PeakMemory


# ---------------------------------------------------------------------------
# Our server, with a handler for every feature the client tests need
# ---------------------------------------------------------------------------


class App(BaseRequestHandler):
    """Routes by path; ``state`` (a dict, per test) records what happened."""

    state: ClassVar[Dict[str, Any]] = {}

    def on_headers(self) -> None:
        self.body = b""
        self.received = 0
        st = self.state
        st.setdefault("connections", set()).add(self.client_address)
        path = (self.path or b"").split(b"?")[0]
        self.route = path
        if path == b"/count":
            st["active"] = st.get("active", 0) + 1
            st["max_active"] = max(st.get("max_active", 0), st["active"])
        elif path == b"/push":
            try:
                self.push("/pushed.css", headers=[("content-type", "text/css")], body=b"p{}")
                self.push("/pushed.js", body=PATTERN[:5000])
                st["pushed"] = True
            except PushError as exc:
                st["push_error"] = str(exc)
        elif path == b"/reset":
            # Reset at once, before any response, with the code asked for.
            code = int(self.path.split(b"code=")[1])
            self.http2.session.reset_stream(self.stream_id, code)
            self.http2.flush()

    def on_data(self, data: bytes) -> None:
        self.received += len(data)
        if self.route != b"/count-upload":
            self.body += data

    def on_request_done(self) -> None:
        route = self.route
        st = self.state
        if route == b"/hello":
            # The server sends whatever body it is given, even to HEAD: the
            # handler leaves it out (a body on HEAD is a PROTOCOL_ERROR).
            body = None if self.method == b"HEAD" else b"hello"
            self.send_response(200, [("content-type", "text/plain"), ("content-length", "5")], body)
        elif route == b"/echo":
            fields = [(n, v) for n, v in self.headers if n.startswith(b"x-")]
            fields.append((b"x-method", self.method))
            self.send_response(200, fields, self.body)
        elif route == b"/count-upload":
            self.send_response(200, body=str(self.received))
        elif route == b"/big":
            size = int(self.path.split(b"size=")[1])
            left = [size]

            def generate(n: int) -> tuple:
                chunk = PATTERN[: min(len(PATTERN), left[0])]
                left[0] -= len(chunk)
                return chunk, (DATA_EOF if left[0] <= 0 else DATA_OK)

            self.send_response(200, [("content-length", str(size))], generate)
        elif route == b"/push":
            self.send_response(200, body=b"main")
        elif route == b"/count":
            loop = asyncio.get_running_loop()
            loop.call_later(0.02, self._finish_count)
        elif route == b"/never":
            st["never"] = True  # never answered: the client's read timeout
        elif route == b"/trailers":
            self.task = asyncio.ensure_future(self._trailers())
        elif route == b"/stall":
            self.begin_response(200)
            self.task = asyncio.ensure_future(self.write(b"first"))
        elif route == b"/reset":
            pass
        else:
            self.send_response(404, body=b"not found")

    def _finish_count(self) -> None:
        self.state["active"] -= 1
        if self.stream_id in self.http2.handlers:
            self.send_response(200, body=str(self.stream_id))

    async def _trailers(self) -> None:
        self.begin_response(200, [("trailer", "x-checksum")])
        await self.write(b"part1,")
        await self.write(b"part2")
        self.end_response([("x-checksum", "c0ffee"), ("x-count", "2")])

    def on_close(self, error_code: int) -> None:
        route = getattr(self, "route", self.path)  # pushed streams had no on_headers
        self.state.setdefault("closed", []).append((route, error_code))


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[HTTP2Server]]]:
    """``await serve(tls=None, limits=None)``: our server with a fresh App."""
    servers: List[HTTP2Server] = []

    async def start(
        tls: Optional[ssl.SSLContext] = None, limits: Optional[Limits] = None, **kwargs: Any
    ) -> HTTP2Server:
        handler = type("App", (App,), {"state": {}})
        srv = HTTP2Server(
            ("127.0.0.1", 0), handler, ssl=tls, limits=limits, access_log=False, **kwargs
        )
        await srv.start()
        srv.state = handler.state  # type: ignore[attr-defined]
        srv.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{srv.address[1]}"  # type: ignore[attr-defined]
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.close()


# ---------------------------------------------------------------------------
# A scripted server on the h2 library (an independent HTTP/2 implementation)
# ---------------------------------------------------------------------------


class H2Peer:
    """One asyncio server; each connection runs ``script(peer, conn, event,
    writer)`` for every h2 event, ``conn`` being the h2 H2Connection (its
    output is written after the script returns; ``writer`` is for raw bytes)."""

    def __init__(self, script: Callable[..., Any], settings: Optional[dict] = None) -> None:
        self.script = script
        self.settings = settings or {}
        self.server: Optional[asyncio.AbstractServer] = None
        self.writers: List[asyncio.StreamWriter] = []
        self.events: List[Any] = []
        self.port = 0
        self.connections = 0
        self.error: Optional[BaseException] = None
        #: Acknowledge received DATA (opening the client's window again).
        self.ack = True

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        self.connections += 1
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        if self.settings:
            conn.local_settings = h2.settings.Settings(client=False, initial_values=self.settings)
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    self.events.append(event)
                    result = self.script(self, conn, event, writer)
                    if asyncio.iscoroutine(result):
                        await result
                    if isinstance(event, h2.events.DataReceived) and self.ack:
                        try:
                            conn.acknowledge_received_data(
                                event.flow_controlled_length, event.stream_id
                            )
                        except h2.exceptions.StreamClosedError:
                            pass  # reset by the script; the connection window is h2's
                out = conn.data_to_send()
                if out:
                    writer.write(out)
                    await writer.drain()
        except Exception as exc:  # noqa: BLE001 - the test reads peer.error
            self.error = exc
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in self.writers:
            w.close()


@pytest_asyncio.fixture
async def h2_peer() -> AsyncIterator[Callable[..., Awaitable[H2Peer]]]:
    peers: List[H2Peer] = []

    async def start(script: Callable[..., Any], settings: Optional[dict] = None) -> H2Peer:
        peer = H2Peer(script, settings)
        await peer.start()
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.close()


# ---------------------------------------------------------------------------
# Subprocess servers: nghttpd and granian
# ---------------------------------------------------------------------------


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def htdocs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("htdocs")
    (d / "index.html").write_bytes(b"<html>hello from nghttpd</html>\n")
    (d / "style.css").write_bytes(b"body { color: black }\n")
    (d / "data.bin").write_bytes(PATTERN * 4)  # 256 KiB
    with open(d / "big.bin", "wb") as f:
        f.truncate(100 * 1024 * 1024)  # sparse: 100 MiB of zeros
    return d


@pytest.fixture(scope="module")
def nghttpd(htdocs: Path, cert_files: tuple) -> Iterator[Callable[..., str]]:
    """``nghttpd(tls=False, *extra_args)`` -> the base URL of a running nghttpd
    serving ``htdocs`` (pushing /style.css with /index.html)."""
    exe = shutil.which("nghttpd")
    if exe is None:
        pytest.skip("nghttpd not installed (Debian package nghttp2-server)")
    procs: Dict[tuple, tuple] = {}

    def start(tls: bool = False, *extra: str) -> str:
        key = (tls, *extra)
        if key not in procs:
            port = free_port()
            args = [
                exe,
                "-a",
                "127.0.0.1",
                "-d",
                str(htdocs),
                "-p/index.html=/style.css",
                "--trailer=x-trailer: yes",
                "--echo-upload",
                *extra,
                str(port),
            ]
            if tls:
                args += [cert_files[1], cert_files[0]]  # <PRIVATE_KEY> <CERT>
            else:
                args.insert(1, "--no-tls")
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            wait_for_port(port, proc, TIMEOUT)
            procs[key] = (proc, f"{'https' if tls else 'http'}://127.0.0.1:{port}")
        return procs[key][1]

    yield start
    for proc, _ in procs.values():
        stop(proc)


GRANIAN_APP = textwrap.dedent(
    """
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if path == "/echo":
            payload = body
        elif path.startswith("/big/"):
            size = int(path.rsplit("/", 1)[1])
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", str(size).encode())]})
            chunk = b"g" * 65536
            while size > 0:
                part = chunk[:size]
                size -= len(part)
                await send({"type": "http.response.body", "body": part,
                            "more_body": size > 0})
            return
        else:
            payload = ("granian " + scope["method"] + " " + path).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"x-http-version", scope["http_version"].encode())]})
        await send({"type": "http.response.body", "body": payload})
    """
)


@pytest.fixture(scope="module")
def granian(tmp_path_factory: pytest.TempPathFactory, cert_files: tuple) -> Iterator[Callable]:
    """``granian(tls=False)`` -> the base URL of granian serving a tiny ASGI app."""
    exe = shutil.which("granian") or os.path.join(os.path.dirname(sys.executable), "granian")
    if not os.path.exists(exe):
        pytest.skip("granian not installed (pip install granian)")
    d = tmp_path_factory.mktemp("granian")
    (d / "client_test_app.py").write_text(GRANIAN_APP)
    procs: Dict[bool, tuple] = {}

    def start(tls: bool = False) -> str:
        if tls not in procs:
            port = free_port()
            args = [
                exe,
                "--interface",
                "asgi",
                "--http",
                "2",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--no-ws",
            ]
            if tls:
                args += ["--ssl-certificate", cert_files[0], "--ssl-keyfile", cert_files[1]]
            args.append("client_test_app:app")
            proc = subprocess.Popen(
                args, cwd=str(d), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            wait_for_port(port, proc, TIMEOUT)
            procs[tls] = (proc, f"{'https' if tls else 'http'}://127.0.0.1:{port}")
        return procs[tls][1]

    yield start
    for proc, _ in procs.values():
        stop(proc)
