"""Shared pytest fixtures.

Sections are owned by different layers of the test suite; keep each one
self-contained so they can grow independently.
"""

from __future__ import annotations

from typing import Callable, Iterator, List, Tuple

import pytest

from nghttp2_cffi import Event, Session

# ---------------------------------------------------------------------------
# nghttp2_cffi layer: sessions in memory, no sockets.
# ---------------------------------------------------------------------------

Pump = Callable[..., Tuple[List[Event], List[Event]]]


def _pump(a: Session, b: Session, rounds: int = 10_000) -> Tuple[List[Event], List[Event]]:
    """Move bytes both ways until neither side has anything to send.

    Returns ``(events a saw, events b saw)``.  Fails the test if the two
    sessions still talk after ``rounds`` round trips (a livelock).
    """
    seen_a: List[Event] = []
    seen_b: List[Event] = []
    for _ in range(rounds):
        out_a = a.data_to_send()
        out_b = b.data_to_send()
        if not out_a and not out_b:
            seen_a += a.events()
            seen_b += b.events()
            return seen_a, seen_b
        if out_a:
            seen_b += b.receive_data(out_a)
        if out_b:
            seen_a += a.receive_data(out_b)
    pytest.fail(f"sessions still exchanging bytes after {rounds} rounds")


@pytest.fixture
def pump() -> Pump:
    """``pump(a, b)``: exchange bytes until quiet; returns both event lists."""
    return _pump


@pytest.fixture
def pair() -> Iterator[Tuple[Session, Session]]:
    """A client and a server Session that have exchanged SETTINGS."""
    client, server = Session("client"), Session("server")
    _pump(client, server)
    yield client, server
    client.close()
    server.close()
