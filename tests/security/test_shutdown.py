"""Graceful shutdown: SIGTERM and SIGINT to ``python -m nghttp2`` while
requests are in flight, and HTTP2Server.shutdown(timeout) in-process.

The contract (RFC 9113 6.8): a GOAWAY with the last stream id 2^31-1 first
(the notice), then, a moment later, the final GOAWAY with the last stream
the server took; every stream up to it completes with its full body, none
above it is served; the process exits 0 within the grace period.
"""

from __future__ import annotations

import signal
import time
from typing import Callable

import pytest
from hyperframe.frame import GoAwayFrame, HeadersFrame, SettingsFrame, WindowUpdateFrame
from security_handlers import SLOW_CHUNK, SLOW_CHUNKS, SLOW_PAUSE, slow_body
from security_support import (
    MAX_STREAM_ID,
    TIMEOUT,
    RawClient,
    ThreadServer,
    request,
)

from nghttp2.server.server import SHUTDOWN_NOTICE_DELAY
from nghttp2_cffi import ErrorCode

#: HTTP2Server's default shutdown_timeout (python -m nghttp2 keeps it).
GRACE = 30.0
WIDE_OPEN = {SettingsFrame.INITIAL_WINDOW_SIZE: 2**31 - 1}


def test_slow_body_outlasts_the_notice():
    # The requests below must still be running when the final GOAWAY goes.
    assert SLOW_PAUSE * SLOW_CHUNKS > 4 * SHUTDOWN_NOTICE_DELAY
    assert len(slow_body()) == SLOW_CHUNK * SLOW_CHUNKS


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_drains_requests_in_flight(spawn: Callable[..., object], sig: int):
    proc = spawn()
    client = RawClient(proc.address)  # type: ignore[attr-defined]
    client.handshake(WIDE_OPEN)
    client.send(WindowUpdateFrame(0, window_increment=2**31 - 1 - 65535))
    in_flight = [1, 3, 5]
    for sid in in_flight:
        client.send(client.headers(sid, request("/slow")))
    for sid in in_flight:  # each handler has answered and is writing
        client.wait_for(lambda f, sid=sid: isinstance(f, HeadersFrame) and f.stream_id == sid)
    started = time.monotonic()
    proc.signal(sig)  # type: ignore[attr-defined]

    notice = client.goaway()
    assert (notice.last_stream_id, ErrorCode(notice.error_code)) == (
        MAX_STREAM_ID,
        ErrorCode.NO_ERROR,
    )
    # Sent while the notice stands: the server may still take it.
    client.send(client.headers(7, request("/")))
    final = client.goaway()
    assert ErrorCode(final.error_code) == ErrorCode.NO_ERROR
    assert final.last_stream_id in (5, 7)
    # After the final GOAWAY: never served.
    client.send(client.headers(9, request("/")))

    frames = client.wait_closed(GRACE)
    code = proc.wait(GRACE - (time.monotonic() - started))  # type: ignore[attr-defined]
    assert code == 0, proc.stderr()  # type: ignore[attr-defined]
    assert "Traceback" not in proc.stderr()  # type: ignore[attr-defined]
    for sid in in_flight:
        assert client.response(sid) == (200, slow_body())
    if final.last_stream_id == 7:
        assert client.response(7) == (200, b"hello")
    else:
        assert not [f for f in frames if f.stream_id == 7]
    assert not [f for f in frames if f.stream_id == 9]
    assert [f for f in frames if isinstance(f, GoAwayFrame)] == [notice, final]
    print(
        f"final GOAWAY last_stream_id={final.last_stream_id}; exit {code} after "
        f"{time.monotonic() - started:.2f}s"
    )


def test_shutdown_timeout_aborts_a_handler_that_never_finishes(serve: Callable[..., ThreadServer]):
    server = serve()
    client = RawClient(server.address)
    client.handshake()
    client.send(client.headers(1, request("/never")))
    assert client.open()  # the request has arrived
    assert server.server is not None
    started = time.monotonic()
    server.run(server.server.shutdown(timeout=0.5), TIMEOUT)
    elapsed = time.monotonic() - started
    frames = client.wait_closed()
    goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert [g.last_stream_id for g in goaways] == [MAX_STREAM_ID, 1]
    assert not [f for f in frames if isinstance(f, HeadersFrame)]  # never answered
    assert elapsed >= 0.5  # it did wait for the handler
    assert server.connections() == 0
