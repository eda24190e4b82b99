"""Fixtures of the security tests (the helpers are in security_support.py:
a conftest module cannot be imported by name beside the other test folders'
conftests)."""

from __future__ import annotations

import os
import signal
from typing import Any, Callable, Iterator, List

import pytest
from security_support import TIMEOUT, Handler, ServerProcess, ThreadServer


def pytest_addoption(parser: Any) -> None:
    parser.addoption(
        "--fuzz-long",
        action="store_true",
        default=False,
        help="run the fuzz tests with many more examples (or set FUZZ_EXAMPLES=N)",
    )


def pytest_configure(config: Any) -> None:
    # Read by test_fuzz.py when it is imported (after this).
    try:
        long_run = config.getoption("--fuzz-long")
    except ValueError:  # not an initial conftest: the option was not added
        long_run = False
    if long_run:
        os.environ.setdefault("FUZZ_EXAMPLES", "20000")


@pytest.fixture
def serve() -> Iterator[Callable[..., ThreadServer]]:
    """``serve(Handler, limits=Limits(...), **HTTP2Server kwargs)``: a running
    ThreadServer; stopped after the test, which fails if anything reached
    the server's loop exception handler or its ERROR log."""
    servers: List[ThreadServer] = []

    def start(handler_class: type = Handler, **kwargs: Any) -> ThreadServer:
        kwargs.setdefault("access_log", False)
        server = ThreadServer(handler_class, **kwargs)
        servers.append(server)
        return server

    yield start
    errors = []
    for server in servers:
        server.stop()
        errors += server.errors
    assert not errors, "the server's loop or log saw errors:\n" + "\n".join(errors)


@pytest.fixture
def spawn() -> Iterator[Callable[..., ServerProcess]]:
    """``spawn("--header-timeout", "1", ...)``: ``python -m nghttp2`` serving
    security_handlers:Handler on a free port; killed after the test if alive."""
    procs: List[ServerProcess] = []

    def start(*flags: str, **kwargs: Any) -> ServerProcess:
        proc = ServerProcess(*flags, **kwargs)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.proc.poll() is None:
            proc.signal(signal.SIGKILL)
            proc.proc.wait(TIMEOUT)
        for pipe in (proc.proc.stdout, proc.proc.stderr):
            if pipe is not None:
                pipe.close()
