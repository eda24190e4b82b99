"""Helpers of the binding's in-memory tests (tests/test_*.py): moving bytes
between two sessions, reading frames and events.  Imported by name (the
tests directory is on sys.path: pytest puts a conftest's folder there), as a
conftest cannot be."""

from __future__ import annotations

import hashlib
from typing import List, Optional, Tuple

import pytest
from hyperframe.frame import Frame

from nghttp2_cffi import DataReceived, Event, Session

#: The client connection preface (RFC 9113 section 3.4).
MAGIC = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def pump(
    a: Session, b: Session, limit: int = 0, rounds: int = 10_000
) -> Tuple[List[Event], List[Event]]:
    """Move bytes both ways until neither side has anything to send
    (``limit``: bytes per ``data_to_send``).

    Returns ``(events a saw, events b saw)``.  Fails the test if the two
    sessions still talk after ``rounds`` round trips (a livelock).
    """
    seen_a: List[Event] = []
    seen_b: List[Event] = []
    for _ in range(rounds):
        out_a = a.data_to_send(limit)
        out_b = b.data_to_send(limit)
        if not out_a and not out_b:
            seen_a += a.events()
            seen_b += b.events()
            return seen_a, seen_b
        if out_a:
            seen_b += b.receive_data(out_a)
        if out_b:
            seen_a += a.receive_data(out_b)
    pytest.fail(f"sessions still exchanging bytes after {rounds} rounds")


def raw_frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """A frame as bytes, valid or not (hyperframe refuses to build bad ones)."""
    return (
        len(payload).to_bytes(3, "big")
        + bytes([kind, flags])
        + stream_id.to_bytes(4, "big")
        + payload
    )


def parse_frames(data: bytes) -> list:
    """The hyperframe frames in ``data``."""
    frames = []
    view = memoryview(data)
    while view:
        frame, length = Frame.parse_frame_header(view[:9])
        frame.parse_body(view[9 : 9 + length])
        frames.append(frame)
        view = view[9 + length :]
    return frames


def pattern(n: int, seed: int = 0) -> bytes:
    """n bytes that are not all alike, so misplaced chunks would show."""
    block = hashlib.sha256(b"%d" % seed).digest() * 2048  # 64 KiB
    return (block * (n // len(block) + 1))[:n]


def of(events: list, cls: type, stream_id: Optional[int] = None) -> list:
    """The events of class ``cls`` (on ``stream_id``, if given)."""
    return [
        e
        for e in events
        if isinstance(e, cls) and (stream_id is None or getattr(e, "stream_id", None) == stream_id)
    ]


def body_of(events: list, stream_id: int) -> bytes:
    """The body our session received on ``stream_id``."""
    return b"".join(e.data for e in of(events, DataReceived, stream_id))
