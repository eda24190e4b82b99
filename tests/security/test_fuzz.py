"""Fuzzing with hypothesis: random and mutated frame sequences (see
fuzz_frames.py), fed to a server Session directly and to the real server
over a socket.

Bounded for CI (a few hundred to a couple of thousand examples, well under
a minute each); ``--fuzz-long`` or ``FUZZ_EXAMPLES=N`` for longer runs, and
tools/fuzz_session.py for hours.  No example database is written (runs are
reproducible from the seed hypothesis prints on failure).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Iterator, List

import pytest
from fuzz_frames import client_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_handlers import Handler
from security_support import TIMEOUT, ThreadServer, fetch

from nghttp2.server import HTTP2Server
from nghttp2.server.limits import Limits
from nghttp2_cffi import (
    DataReceived,
    NGHTTP2Error,
    ProtocolError,
    RequestReceived,
    Session,
    lib,
)


def _examples(default: int) -> int:
    value = os.environ.get("FUZZ_EXAMPLES")
    return int(value) if value else default


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=_examples(examples),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


#: What HTTP2Server gives each connection's Session (limits and defences on).
CONFIG = HTTP2Server(("127.0.0.1", 0), Handler).session_config


# ---------------------------------------------------------------------------
# (a) a server Session, directly
# ---------------------------------------------------------------------------


def feed(chunks: List[bytes], answers: Any) -> Session:
    """Feed ``chunks`` to a server Session as the server would, answering
    requests as ``answers`` (a hypothesis data object) says; returns it."""
    session = Session("server", config=CONFIG)
    session.data_to_send()
    for chunk in chunks:
        terminated = False
        try:
            events = session.receive_data(chunk)
        except ProtocolError:  # FloodedError included: the allowed ending
            events = session.events()
            terminated = True
        for event in events:
            try:
                if isinstance(event, RequestReceived):
                    how = answers.draw(st.sampled_from(["bytes", "empty", "open", "reset", "none"]))
                    sid = event.stream_id
                    if how == "bytes":
                        session.send_response(sid, [(b":status", b"200")], b"x" * 100)
                    elif how == "empty":
                        session.send_response(sid, [(b":status", b"204")])
                    elif how == "open":
                        session.send_response(sid, [(b":status", b"200")], end_stream=False)
                        session.send_data(sid, b"y" * 70_000)
                    elif how == "reset":
                        session.reset_stream(sid, 8)
                elif isinstance(event, DataReceived) and event.data:
                    session.acknowledge_received_data(len(event.data), event.stream_id)
            except NGHTTP2Error:
                pass  # our own call refused (the stream closed meanwhile): fine
        session.data_to_send()  # must not raise, terminated or not
        assert session.events() is not None
        _check_bodies(session)
        if terminated:
            assert session.data_to_send() == b""  # the GOAWAY went out above
            break
    return session


def _check_bodies(session: Session) -> None:
    """Session._bodies holds only streams libnghttp2 still knows: no leak."""
    for sid in session._bodies:
        assert lib.nghttp2_session_get_stream_local_close(session.raw, sid) >= 0, sid


@fuzz_settings(800)
@given(chunks=client_bytes(), answers=st.data())
def test_fuzz_session(chunks: List[bytes], answers: Any):
    session = feed(chunks, answers)
    session.close()


# ---------------------------------------------------------------------------
# (b) the real server, over a socket
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[ThreadServer]:
    server = ThreadServer(Handler, access_log=False, limits=Limits(response_timeout=2.0))
    yield server
    server.stop()
    assert not server.errors, "\n".join(server.errors)


def attack(address: Any, chunks: List[bytes]) -> bytes:
    """Send ``chunks``, half-close, read until the server closes (bounded)."""
    received = bytearray()
    with socket.create_connection(address, timeout=TIMEOUT) as sock:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # EPIPE, ECONNRESET, ENOTCONN: the server closed first, fine
            return bytes(received)
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert time.monotonic() < deadline, "the server kept a half-closed connection open"
            try:
                data = sock.recv(1 << 16)
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
    return bytes(received)


@fuzz_settings(800)
@given(chunks=client_bytes())
def test_fuzz_server(fuzz_server: ThreadServer, chunks: List[bytes]):
    seen = len(fuzz_server.errors)
    attack(fuzz_server.address, chunks)
    assert fetch(fuzz_server.address) == (200, b"hello")
    new_errors = fuzz_server.errors[seen:]
    del fuzz_server.errors[seen:]  # each example answers for its own
    assert not new_errors, "\n".join(new_errors)
