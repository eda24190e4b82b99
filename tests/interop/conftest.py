"""Fixtures of the interop tests: our server against peers that are not ours
(grpcio, the h2 package, HAProxy with h2load), on 127.0.0.1 only.

Every wait is bounded and fails the test when it runs out; no assertion is
about time.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable, Iterator, List

import pytest
import pytest_asyncio
from interop_support import TIMEOUT, Processes

from nghttp2.server import HTTP2Server


@pytest_asyncio.fixture
async def start_server() -> AsyncIterator[Callable[..., Any]]:
    """``await start_server(Handler, **kwargs)``: an HTTP2Server on
    127.0.0.1, a free port, in the test's loop; shut down after the test."""
    servers: List[HTTP2Server] = []

    async def start(handler_class: type, **kwargs: Any) -> HTTP2Server:
        kwargs.setdefault("access_log", False)
        server = HTTP2Server(("127.0.0.1", 0), handler_class, **kwargs)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await asyncio.wait_for(server.shutdown(timeout=2), TIMEOUT)


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Subprocesses of the test, killed and reaped after it."""
    procs = Processes()
    yield procs
    procs.stop_all()
