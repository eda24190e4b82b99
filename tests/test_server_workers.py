"""The event-loop option and multi-process workers (server/workers.py).

Worker tests run ``python -m nghttp2 --workers 2`` in a subprocess and talk to
it with the ``h2`` package over plain sockets.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import h2.config
import h2.connection
import h2.events
import pytest
from workers_handler import PidHandler

from nghttp2.server import HTTP2Server
from nghttp2.server.workers import loop_factory, loop_name, run

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
TIMEOUT = 15.0

try:
    import uvloop  # noqa: F401

    HAVE_UVLOOP = True
except ImportError:
    HAVE_UVLOOP = False


# ---- the loop option -----------------------------------------------------


def test_loop_names() -> None:
    assert loop_factory("asyncio") is asyncio.new_event_loop
    assert loop_name("asyncio") == "asyncio"
    assert loop_name("auto") == ("uvloop" if HAVE_UVLOOP else "asyncio")
    # The default is "auto", as uvicorn's: uvloop when it is installed.
    assert loop_name() == loop_name(None) == loop_name("auto")
    assert HTTP2Server(("127.0.0.1", 0), PidHandler).loop is None
    with pytest.raises(ValueError, match="loop must be one of"):
        loop_factory("trio")


def test_missing_uvloop_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now fails
    with pytest.raises(ImportError, match="pip install uvloop"):
        loop_factory("uvloop")
    with pytest.raises(ImportError, match="pip install uvloop"):
        HTTP2Server(("127.0.0.1", 0), PidHandler, loop="uvloop")
    assert loop_factory("auto") is asyncio.new_event_loop
    assert loop_factory() is asyncio.new_event_loop  # the default, auto


def test_the_command_line_loop_default_is_auto() -> None:
    from nghttp2.server.__main__ import parse_args

    args = parse_args(["--no-tls"], environ={})
    assert args.loop == "auto"
    assert loop_name(args.loop) == ("uvloop" if HAVE_UVLOOP else "asyncio")


def test_missing_uvloop_on_the_command_line(tmp_path: Path) -> None:
    # A sitecustomize that hides uvloop, whether or not it is installed.
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['uvloop'] = None\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    proc = subprocess.run(
        [sys.executable, "-m", "nghttp2", "--no-tls", "--port", "0", "--loop", "uvloop"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 2
    assert "pip install uvloop" in proc.stderr


def test_run_uses_the_loop_factory() -> None:
    made: List[asyncio.AbstractEventLoop] = []

    def factory() -> asyncio.AbstractEventLoop:
        made.append(asyncio.new_event_loop())
        return made[-1]

    async def which() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    assert run(which(), factory) is made[0]
    assert made[0].is_closed()


def test_workers_must_be_positive() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            HTTP2Server(("127.0.0.1", 0), PidHandler, workers=bad)


@pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed (pip install uvloop)")
def test_serves_on_uvloop() -> None:
    async def main() -> Tuple[str, List[Tuple[int, bytes]]]:
        server = HTTP2Server(("127.0.0.1", 0), PidHandler, access_log=False)
        await server.start()
        try:
            loop = asyncio.get_running_loop()
            port = server.address[1]
            answers = await asyncio.wait_for(
                loop.run_in_executor(None, get_many, port, ["/pid"], 3.0), TIMEOUT
            )
            return type(loop).__module__, answers
        finally:
            await server.shutdown(timeout=1.0)

    module, answers = run(main(), "uvloop")
    assert module.startswith("uvloop")
    assert answers == [(200, str(os.getpid()).encode())]


# ---- worker processes ----------------------------------------------------


def get_many(port: int, paths: List[str], timeout: float = TIMEOUT) -> List[Tuple[int, bytes]]:
    """One connection, one request per path; ``[(status, body), ...]``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        ids = []
        for path in paths:
            sid = conn.get_next_available_stream_id()
            conn.send_headers(
                sid,
                [
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":authority", "127.0.0.1"),
                    (":path", path),
                ],
                end_stream=True,
            )
            ids.append(sid)
        sock.sendall(conn.data_to_send())
        status: Dict[int, int] = {}
        body: Dict[int, bytes] = dict.fromkeys(ids, b"")
        done: set = set()
        while len(done) < len(ids):
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status[event.stream_id] = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body[event.stream_id] += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    done.add(event.stream_id)
            sock.sendall(conn.data_to_send())
        return [(status.get(sid, 0), body[sid]) for sid in ids]
    finally:
        sock.close()


class Workers:
    """``python -m nghttp2 --workers N`` in a subprocess."""

    def __init__(self, count: int) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nghttp2",
                "--no-tls",
                "--port",
                "0",
                "--workers",
                str(count),
                "--handler",
                "workers_handler:PidHandler",
                "--no-access-log",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        self.output: List[str] = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            match = re.search(r"Serving .* on http://127\.0\.0\.1:(\d+)/", line)
            if match:
                self.port = int(match.group(1))
                return
        self.stop()
        pytest.fail("the workers did not start:\n" + "".join(self.output))

    def children(self) -> List[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=TIMEOUT)
        return "".join(self.output) + (out or "")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; Linux only")
def test_two_workers_share_the_port_and_stop_on_sigterm() -> None:
    workers = Workers(2)
    try:
        pids = workers.children()
        assert len(pids) == 2
        seen = set()
        # SO_REUSEPORT hashes each new connection to one worker; 200
        # connections all landing on one of two workers would be a bug.
        for _ in range(200):
            [(status, body)] = get_many(workers.port, ["/pid"])
            assert status == 200
            seen.add(int(body))
            if len(seen) == 2:
                break
        assert seen == set(pids)
    finally:
        output = workers.stop()
    assert workers.proc.returncode == 0, output
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        ), f"worker {pid} still runs"


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="needs nghttp (nghttp2-client)")
def test_sigterm_lets_in_flight_requests_finish() -> None:
    workers = Workers(2)
    try:
        # /slow answers 0.5 s after the request; SIGTERM the parent while the
        # request is in flight.  (nghttp, not h2: h2 refuses frames that
        # follow a GOAWAY.)
        client = subprocess.Popen(
            ["nghttp", f"http://127.0.0.1:{workers.port}/slow"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.25)
        workers.proc.send_signal(signal.SIGTERM)
        out, err = client.communicate(timeout=TIMEOUT)
    finally:
        output = workers.stop()
    assert workers.proc.returncode == 0, output
    assert client.returncode == 0, err
    assert int(out) in workers_pids(output)


def workers_pids(output: str) -> set:
    match = re.search(r"workers \(pids ([\d ]+)\)", output)
    assert match, output
    return {int(p) for p in match.group(1).split()}
