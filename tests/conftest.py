"""Shared pytest fixtures.

Sections are owned by different layers of the test suite; keep each one
self-contained so they can grow independently.
"""

from __future__ import annotations

from typing import Callable, Iterator, List, Tuple

import pytest
from session_support import pump as pump_sessions

from nghttp2_cffi import Event, Session

# ---------------------------------------------------------------------------
# nghttp2_cffi layer: sessions in memory, no sockets.
# ---------------------------------------------------------------------------

Pump = Callable[..., Tuple[List[Event], List[Event]]]


@pytest.fixture
def pump() -> Pump:
    """``pump(a, b)``: exchange bytes until quiet; returns both event lists."""
    return pump_sessions


@pytest.fixture
def pair() -> Iterator[Tuple[Session, Session]]:
    """A client and a server Session that have exchanged SETTINGS."""
    client, server = Session("client"), Session("server")
    pump_sessions(client, server)
    yield client, server
    client.close()
    server.close()
