"""Fixtures of the server tests: real sockets on 127.0.0.1, real clients.

Everything runs in the test's own event loop: the server under test, the
frame-level ``h2`` client (asyncio streams) and the subprocess clients
(``nghttp``, ``h2load``, ``curl``, via ``asyncio.create_subprocess_exec``), so
the server keeps serving while a client runs.  Every wait is bounded by a
timeout that fails the test; no assertion is about time.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import ssl
import sys
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Tuple

import h2.config
import h2.connection
import h2.events
import h2.settings
import net_support
import pytest
import pytest_asyncio
import trustme

from nghttp2.server import HTTP2Server
from nghttp2.server.asgi import ASGIServer

#: Upper bound of any single wait in these tests (a hang fails, it never passes).
TIMEOUT = 10.0

CLIENTS = ("nghttp", "h2load", "curl")


def pytest_collection_modifyitems(config: Any, items: list) -> None:
    missing = [name for name in CLIENTS if shutil.which(name) is None]
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"HTTP/2 client(s) not installed: {', '.join(missing)}")
    for item in items:
        if "clients" in item.keywords:
            item.add_marker(skip)


# ---------------------------------------------------------------------------
# Certificates (``ca``, ``server_cert`` and ``server_ssl`` are in tests/conftest.py)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The CA certificate as a PEM file (``curl --cacert``)."""
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts the CA and offers ALPN ``h2``."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(ctx)
    ctx.set_alpn_protocols(["h2"])
    return ctx


# ---------------------------------------------------------------------------
# The server under test, in the test's loop.
# ---------------------------------------------------------------------------


@pytest_asyncio.fixture
async def start_server() -> AsyncIterator[Callable[..., Any]]:
    """``await start_server(Handler, ssl=None, **kwargs)``: an HTTP2Server
    listening on 127.0.0.1, port 0; shut down (or closed) after the test."""
    servers: List[HTTP2Server] = []

    async def start(handler_class: type, ssl: Optional[ssl.SSLContext] = None, **kwargs: Any):
        server = HTTP2Server(("127.0.0.1", 0), handler_class, ssl=ssl, **kwargs)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await asyncio.wait_for(server.shutdown(timeout=2), TIMEOUT)


@pytest_asyncio.fixture
async def serve_asgi() -> AsyncIterator[Callable[..., Any]]:
    """``await serve_asgi(app, ssl=None, **kwargs)``: an ASGIServer on
    127.0.0.1, port 0, shut down after the test."""
    servers: List[ASGIServer] = []

    async def start(app: Any, ssl: Any = None, **kwargs: Any) -> ASGIServer:
        server = ASGIServer(("127.0.0.1", 0), app, ssl=ssl, **kwargs)
        await asyncio.wait_for(server.start(), TIMEOUT)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await asyncio.wait_for(server.shutdown(timeout=2), TIMEOUT)


def url(server: HTTP2Server, path: str = "/") -> str:
    host, port = server.address
    return f"{'https' if server.ssl else 'http'}://{host}:{port}{path}"


@pytest.fixture
def server_url() -> Callable[..., str]:
    """``server_url(server, "/path")``: the URL of a path on a running server."""
    return url


# ---------------------------------------------------------------------------
# Subprocess clients, awaited in the loop.
# ---------------------------------------------------------------------------


class Completed:
    def __init__(self, argv: Tuple[str, ...], returncode: int, stdout: bytes, stderr: bytes):
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def check(self) -> Completed:
        assert self.returncode == 0, (
            f"{' '.join(self.argv)} exited {self.returncode}\n"
            f"stdout: {self.out[-2000:]}\nstderr: {self.err[-2000:]}"
        )
        return self

    def __repr__(self) -> str:
        return f"Completed({self.argv!r}, rc={self.returncode})"


async def run_client(
    *argv: str,
    input: Optional[bytes] = None,
    timeout: float = TIMEOUT,
    env: Optional[Dict[str, str]] = None,
) -> Completed:
    """Run a client program without blocking the loop; kill it at ``timeout``."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(input), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        stdout, stderr = await proc.communicate()
        pytest.fail(
            f"{' '.join(argv)} did not finish within {timeout}s\n"
            f"stdout: {stdout[-2000:]!r}\nstderr: {stderr[-2000:]!r}"
        )
    assert proc.returncode is not None
    return Completed(tuple(argv), proc.returncode, stdout, stderr)


@pytest.fixture
def run() -> Callable[..., Any]:
    """``await run("nghttp", "-v", url, timeout=...)`` -> Completed."""
    return run_client


@pytest.fixture
def python() -> str:
    return sys.executable


# ---------------------------------------------------------------------------
# A frame-level client: the h2 package over an asyncio socket.
# ---------------------------------------------------------------------------


class _ClientConnection(h2.connection.H2Connection):
    """h2 closes its state machine on any GOAWAY, so streams a graceful
    GOAWAY lets finish could not be read; on NO_ERROR it stays open here."""

    def _receive_goaway_frame(self, frame: Any) -> Any:
        state = self.state_machine.state
        result = super()._receive_goaway_frame(frame)
        if frame.error_code == 0:
            self.state_machine.state = state
        return result


class Stream:
    """What an h2 client saw on one stream."""

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.headers: Optional[List[Tuple[bytes, bytes]]] = None
        self.data = bytearray()
        self.trailers: Optional[List[Tuple[bytes, bytes]]] = None
        self.ended = False
        self.reset: Optional[int] = None  # RST_STREAM error code

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None

    @property
    def status(self) -> Optional[int]:
        for name, value in self.headers or ():
            if name == b":status":
                return int(value)
        return None

    def header(self, name: bytes) -> Optional[bytes]:
        for key, value in self.headers or ():
            if key == name:
                return value
        return None


class H2Client:
    """An HTTP/2 client over a real socket, driven frame by frame with ``h2``.

    ``events`` holds every h2 event, ``streams`` what each stream received,
    ``pushes`` the PushedStreamReceived events, ``goaways`` the
    ConnectionTerminated ones.  ``read_body=False`` stops acknowledging
    received DATA, so the server runs into flow control.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        enable_push: bool,
        authority: str,
        scheme: str,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.authority = authority
        self.scheme = scheme
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = _ClientConnection(config)
        if not enable_push:
            self.conn.local_settings = h2.settings.Settings(
                client=True, initial_values={h2.settings.SettingCodes.ENABLE_PUSH: 0}
            )
        self.conn.initiate_connection()
        self.events: List[Any] = []
        self.streams: Dict[int, Stream] = {}
        self.pushes: List[h2.events.PushedStreamReceived] = []
        self.goaways: List[h2.events.ConnectionTerminated] = []
        self.eof = False
        self.read_body = True

    @classmethod
    async def connect(
        cls,
        address: Tuple[str, int],
        *,
        ssl: Optional[ssl.SSLContext] = None,
        enable_push: bool = True,
    ) -> H2Client:
        host, port = address[:2]
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ssl, server_hostname=host if ssl else None),
            TIMEOUT,
        )
        client = cls(reader, writer, enable_push, f"{host}:{port}", "https" if ssl else "http")
        await client.flush()
        return client

    def _stream(self, stream_id: int) -> Stream:
        stream = self.streams.get(stream_id)
        if stream is None:
            stream = self.streams[stream_id] = Stream(stream_id)
        return stream

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)
            await self.writer.drain()

    async def request(
        self,
        path: str = "/",
        method: str = "GET",
        headers: Optional[List[Tuple[str, str]]] = None,
        body: Optional[bytes] = None,
    ) -> int:
        sid = self.conn.get_next_available_stream_id()
        fields = [
            (":method", method),
            (":scheme", self.scheme),
            (":authority", self.authority),
            (":path", path),
        ]
        fields += headers or []
        self.conn.send_headers(sid, fields, end_stream=body is None)
        self._stream(sid)
        await self.flush()
        if body is not None:
            await self.send_body(sid, body)
        return sid

    async def open_upload(self, path: str, headers: Optional[List[Tuple[str, str]]] = None) -> int:
        """A POST's headers without END_STREAM: the body follows (send_body)."""
        sid = self.conn.get_next_available_stream_id()
        fields = [
            (":method", "POST"),
            (":scheme", self.scheme),
            (":authority", self.authority),
            (":path", path),
        ]
        self.conn.send_headers(sid, fields + (headers or []), end_stream=False)
        self._stream(sid)
        await self.flush()
        return sid

    async def send_body(self, sid: int, body: bytes) -> None:
        view = memoryview(body)
        while True:
            window = min(
                self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size
            )
            if window > 0 and view:
                chunk, view = view[:window], view[window:]
                self.conn.send_data(sid, bytes(chunk), end_stream=not view)
                await self.flush()
                if not view:
                    return
            elif not view:
                self.conn.end_stream(sid)
                await self.flush()
                return
            else:
                await self.read_once()

    async def read_once(self) -> None:
        if self.eof:
            raise ConnectionError("the server closed the connection")
        data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
        if not data:
            self.eof = True
            return
        for event in self.conn.receive_data(data):
            self.events.append(event)
            cls = type(event)
            if cls is h2.events.ResponseReceived:
                self._stream(event.stream_id).headers = event.headers
            elif cls is h2.events.DataReceived:
                self._stream(event.stream_id).data += event.data
                if self.read_body and event.flow_controlled_length:
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
            elif cls is h2.events.TrailersReceived:
                self._stream(event.stream_id).trailers = event.headers
            elif cls is h2.events.StreamEnded:
                self._stream(event.stream_id).ended = True
            elif cls is h2.events.StreamReset:
                self._stream(event.stream_id).reset = event.error_code
            elif cls is h2.events.PushedStreamReceived:
                self.pushes.append(event)
                self._stream(event.pushed_stream_id)
            elif cls is h2.events.ConnectionTerminated:
                self.goaways.append(event)
        await self.flush()

    async def wait_for(self, predicate: Callable[[], Any]) -> None:
        """Read until ``predicate()`` holds; the server closing first fails."""
        while not predicate():
            if self.eof:
                raise ConnectionError("the server closed the connection first")
            await self.read_once()

    async def response(self, stream_id: int) -> Stream:
        stream = self._stream(stream_id)
        await self.wait_for(lambda: stream.done)
        return stream

    async def get(self, path: str = "/", **kwargs: Any) -> Stream:
        return await self.response(await self.request(path, **kwargs))

    async def wait_closed(self) -> None:
        """Read until the server closes the connection."""
        while not self.eof:
            await self.read_once()

    def abort(self) -> None:
        """Drop the connection without a word (RST on the socket)."""
        self.writer.transport.abort()

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT)
        except (ConnectionError, ssl.SSLError):
            pass


@pytest_asyncio.fixture
async def h2_connect() -> AsyncIterator[Callable[..., Any]]:
    """``await h2_connect(server or (host, port), ssl=None, enable_push=True)`` -> H2Client."""
    clients: List[H2Client] = []

    async def connect(
        server: Any, *, ssl: Optional[ssl.SSLContext] = None, enable_push: bool = True
    ) -> H2Client:
        address = server.address if isinstance(server, HTTP2Server) else server
        client = await H2Client.connect(address, ssl=ssl, enable_push=enable_push)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()


# ---------------------------------------------------------------------------
# Python programs run as subprocesses (the tutorial, ``python -m nghttp2``).
# ---------------------------------------------------------------------------

REPO = str(Path(__file__).resolve().parents[2])


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on right now (the program binds it next)."""
    return net_support.free_port()


class Program:
    """A Python program under test, started with ``sys.executable``."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stdout = b""
        self.stderr = b""
        # Lines read along with the one read_line_with looked for: the next
        # read_line_with looks through them first.
        self._unsearched: List[str] = []

    async def wait_listening(self, port: int) -> None:
        """Poll until ``port`` accepts a connection; fail if the program exits."""
        for _ in range(int(TIMEOUT / 0.05)):
            if self.proc.returncode is not None:
                await self.finish()
                pytest.fail(f"the program exited {self.proc.returncode}:\n{self.err}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        pytest.fail(f"nothing listens on port {port} after {TIMEOUT}s")

    async def read_line_with(self, text: str) -> str:
        """Read stdout and stderr lines until one contains ``text``."""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        while self._unsearched:
            line = self._unsearched.pop(0)
            if text in line:
                return line
        streams = {self.proc.stdout: "out", self.proc.stderr: "err"}
        pending = {asyncio.ensure_future(s.readline()): s for s in streams}
        seen = []
        found = None
        try:
            while pending and found is None:
                done, _ = await asyncio.wait(
                    pending, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    pytest.fail(f"no line with {text!r} in {TIMEOUT}s; saw {seen!r}")
                for future in done:  # every line read is kept, not only the one looked for
                    stream = pending.pop(future)
                    line = future.result().decode("utf-8", "replace")
                    if not line:
                        continue  # that stream ended
                    seen.append(line)
                    if streams[stream] == "out":
                        self.stdout += line.encode()
                    else:
                        self.stderr += line.encode()
                    if found is not None:
                        self._unsearched.append(line)
                    elif text in line:
                        found = line
                    else:
                        pending[asyncio.ensure_future(stream.readline())] = stream
            if found is not None:
                return found
            pytest.fail(f"the program ended without a line with {text!r}; saw {seen!r}")
        finally:
            for future in pending:
                future.cancel()

    def kill(self) -> None:
        """SIGKILL the program and its worker processes (its session)."""
        if self.proc.returncode is None:
            self.proc.kill()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    async def stop(self, signum: int) -> int:
        """Send ``signum``, wait for the exit, return the exit status."""
        self.proc.send_signal(signum)
        return await self.finish()

    async def finish(self) -> int:
        try:
            out, err = await asyncio.wait_for(self.proc.communicate(), TIMEOUT)
        except asyncio.TimeoutError:
            self.kill()
            out, err = await self.proc.communicate()
            pytest.fail(f"the program did not exit within {TIMEOUT}s:\n{err.decode()}")
        self.stdout += out
        self.stderr += err
        assert self.proc.returncode is not None
        return self.proc.returncode

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")


@pytest_asyncio.fixture
async def spawn() -> AsyncIterator[Callable[..., Any]]:
    """``await spawn(*args, cwd=None, env=None, pass_fds=())``: ``python
    *args`` with the repository on PYTHONPATH (``env``: variables to set
    over the test's own); killed after the test if still running."""
    programs: List[Program] = []

    async def start(
        *args: str,
        cwd: Optional[str] = None,
        env: Optional[Dict[str, str]] = None,
        pass_fds: Tuple[int, ...] = (),
        executable: Optional[str] = None,
    ) -> Program:
        env = dict(os.environ, **(env or {}))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        proc = await asyncio.create_subprocess_exec(
            executable or sys.executable,
            *args,
            pass_fds=pass_fds,
            start_new_session=True,  # its worker processes are killed with it
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
        program = Program(proc)
        programs.append(program)
        return program

    yield start
    for program in programs:
        program.kill()  # and any worker processes left behind
        await program.proc.communicate()
