"""Helpers of the interop tests (tests/interop/), imported by name: pytest
puts this folder on sys.path for its test modules."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import net_support
from net_support import free_port as free_port  # for the interop tests

#: Upper bound of any single wait (a hang fails, it never passes).
TIMEOUT = 20.0
ROOT = Path(__file__).resolve().parents[2]


def wait_for_port(
    port: int, proc: Optional[subprocess.Popen] = None, timeout: float = TIMEOUT
) -> None:
    """Block until 127.0.0.1:port accepts connections (or fail the test)."""
    net_support.wait_for_port(port, proc, timeout)


class Processes:
    """Subprocesses a test starts; stopped (and reaped) after it."""

    def __init__(self) -> None:
        self.procs: List[subprocess.Popen] = []

    def start(
        self, argv: Sequence[str], *, env: Optional[Dict[str, str]] = None, cwd: Any = None
    ) -> subprocess.Popen:
        proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        self.procs.append(proc)
        return proc

    def python(self, *args: str, **kwargs: Any) -> subprocess.Popen:
        env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        return self.start([sys.executable, *args], env={**env, **kwargs.pop("env", {})}, **kwargs)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:  # pragma: no cover - reported, not hidden
                pass
            if proc.stdout is not None:
                proc.stdout.close()


@functools.cache
def grpc_example() -> Any:
    """examples/grpc_server.py as a module (loaded once: its protobuf modules
    may be registered only once per process)."""
    path = ROOT / "examples" / "grpc_server.py"
    spec = importlib.util.spec_from_file_location("grpc_server_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def start_instance(processes: Processes, port: int) -> subprocess.Popen:
    """``python -m nghttp2 --no-tls --handler interop_handlers:Hello --port
    PORT`` (12-byte answers, /healthz), listening when this returns."""
    proc = processes.python(
        "-m", "nghttp2", "--no-tls", "--no-access-log",
        "--handler", "interop_handlers:Hello", "--port", str(port),
        cwd=Path(__file__).resolve().parent,
    )  # fmt: skip
    wait_for_port(port, proc)
    return proc


# ---- h2load -----------------------------------------------------------------

#: Requests of one h2load run (-n), over 10 connections of 10 streams each.
REQUESTS = 20_000
#: h2load's counts when every request got its response.
ALL_OK = {
    "total": REQUESTS,
    "started": REQUESTS,
    "done": REQUESTS,
    "succeeded": REQUESTS,
    "failed": 0,
    "errored": 0,
    "timeout": 0,
}
_RESULT = re.compile(
    r"requests: (?P<total>\d+) total, (?P<started>\d+) started, (?P<done>\d+) done, "
    r"(?P<succeeded>\d+) succeeded, (?P<failed>\d+) failed, (?P<errored>\d+) errored, "
    r"(?P<timeout>\d+) timeout"
)


def run_h2load(
    url: str, stop_at: str = "", victim: Optional[subprocess.Popen] = None
) -> Tuple[Dict[str, int], float, str]:
    """``h2load -n 20000 -c 10 -m 10 url``; SIGTERM to ``victim`` when h2load
    prints ``stop_at`` (``"progress: 30% done"``).  Returns the request
    counts, the req/s and the output."""
    argv = ["h2load", "-n", str(REQUESTS), "-c", "10", "-m", "10", url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(TIMEOUT * 2, proc.kill)
    watchdog.start()
    lines: List[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if stop_at and stop_at in line and victim is not None:
                victim.send_signal(signal.SIGTERM)
                stop_at = ""
        proc.wait()
    finally:
        watchdog.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
    out = "".join(lines)
    assert proc.returncode == 0, f"h2load exited {proc.returncode}:\n{out}"
    m = _RESULT.search(out)
    assert m is not None, out
    rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    assert rate is not None, out
    return {k: int(v) for k, v in m.groupdict().items()}, float(rate.group(1)), out
