"""Helpers of the interop tests (tests/interop/), imported by name: pytest
puts this folder on sys.path for its test modules."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytest

#: Upper bound of any single wait (a hang fails, it never passes).
TIMEOUT = 20.0
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, proc: Optional[subprocess.Popen] = None, timeout: float = TIMEOUT
) -> None:
    """Block until 127.0.0.1:port accepts connections (or fail the test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"{proc.args} exited {proc.returncode} before listening:\n{out}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


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
