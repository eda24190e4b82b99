"""Sockets and subprocesses for the test folders that start real servers
(tests/client, tests/server, tests/interop); imported by name (pytest puts
tests/ on sys.path for tests/conftest.py)."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Optional

import pytest


def free_port() -> int:
    """A port nothing listens on right now (the program binds it next)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: Optional[subprocess.Popen], timeout: float) -> None:
    """Block until 127.0.0.1:``port`` accepts connections; fail the test if
    ``proc`` exits first or ``timeout`` seconds pass (``proc`` is killed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            if isinstance(out, bytes):
                out = out.decode(errors="replace")
            pytest.fail(f"{proc.args} exited {proc.returncode} before listening:\n{out[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    if proc is not None:
        proc.kill()
    pytest.fail(f"nothing listens on 127.0.0.1:{port} after {timeout}s")
