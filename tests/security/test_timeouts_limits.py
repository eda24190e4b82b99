"""Every limit and timeout of server.limits.Limits, with small values, over
real sockets: what the client sees when it passes one, and that it is not
closed while it stays within it."""

from __future__ import annotations

import time
from typing import Callable, Tuple

import pytest
from hyperframe.frame import (
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from security_support import (
    GET,
    RawClient,
    ThreadServer,
    request,
    served,
)

from nghttp2.server.limits import Limits
from nghttp2_cffi import ErrorCode

Serve = Callable[..., ThreadServer]


def settings_acked(client: RawClient) -> None:
    client.wait_for(lambda f: isinstance(f, SettingsFrame) and "ACK" in f.flags)


# ---- max_concurrent_streams ---------------------------------------------------


def test_max_concurrent_streams_after_settings_ack(serve: Serve):
    """One stream over the acknowledged limit: libnghttp2 treats it as a
    connection error (GOAWAY PROTOCOL_ERROR, last stream the 100th) -- RFC
    9113 5.1.2 allows that or a stream error, PROTOCOL_ERROR or
    REFUSED_STREAM."""
    server = serve()
    limit = server.limits.max_concurrent_streams
    assert limit == 100
    client = RawClient(server.address)
    settings = client.handshake()
    assert settings.settings[SettingsFrame.MAX_CONCURRENT_STREAMS] == limit
    settings_acked(client)
    for i in range(limit):
        client.send(client.headers(1 + 2 * i, request("/never")))
    assert client.open()  # 100 streams open: fine
    client.send(client.headers(1 + 2 * limit, request("/never")))
    goaway = client.goaway()
    assert ErrorCode(goaway.error_code) == ErrorCode.PROTOCOL_ERROR
    assert goaway.last_stream_id == 2 * limit - 1
    client.wait_closed()
    assert served(server.address)


def test_max_concurrent_streams_before_settings_ack(serve: Serve):
    """Before the client acknowledged our SETTINGS the stream over the
    limit is refused alone (RST_STREAM REFUSED_STREAM: safe to retry) and
    the others go on."""
    server = serve(limits=Limits(max_concurrent_streams=10))
    client = RawClient(server.address)
    client.handshake(ack=False)
    for i in range(10):
        client.send(client.headers(1 + 2 * i, request("/never")))
    client.send(client.headers(21, request("/never")))
    rst = client.rst(21)
    assert ErrorCode(rst.error_code) == ErrorCode.REFUSED_STREAM
    client.send(SettingsFrame(0, flags=["ACK"]))
    assert client.open()
    assert not [f for f in client.frames if isinstance(f, RstStreamFrame) and f.stream_id != 21]


# ---- max_header_list_size -------------------------------------------------------


def test_max_header_list_size(serve: Serve):
    server = serve(limits=Limits(max_header_list_size=4096))
    client = RawClient(server.address)
    settings = client.handshake()
    assert settings.settings[SettingsFrame.MAX_HEADER_LIST_SIZE] == 4096
    client.send(client.headers(1, GET + [("x-fill", "a" * 3000)]))
    assert client.response(1) == (200, b"hello")  # within the limit
    client.send(client.headers(3, GET + [("x-fill", "a" * 5000)]))
    goaway = client.goaway()
    assert ErrorCode(goaway.error_code) == ErrorCode.ENHANCE_YOUR_CALM
    client.wait_closed()
    assert served(server.address)


# ---- max_body_size --------------------------------------------------------------

SMALL_BODY = Limits(max_body_size=1000)


def answered_then_reset(client: RawClient, stream_id: int) -> Tuple[int, bytes]:
    """The whole answer (to END_STREAM), and only then RST_STREAM NO_ERROR."""
    status, body = client.response(stream_id)
    rst = client.rst(stream_id)
    assert ErrorCode(rst.error_code) == ErrorCode.NO_ERROR
    return status, body


def test_max_body_size_content_length_413(serve: Serve):
    """RFC 9113 8.1: a complete answer, then RST_STREAM NO_ERROR to stop the
    upload.  (The RST_STREAM used to be queued with the answer and went
    first: the client got a bare reset and no 413.)"""
    server = serve(limits=SMALL_BODY)
    client = RawClient(server.address)
    client.handshake()
    client.send(
        client.headers(1, request("/count", "POST", [("content-length", "2000")]), end_stream=False)
    )
    assert answered_then_reset(client, 1) == (413, b"Payload Too Large\n")
    # Within the limit, on the same connection.
    client.send(
        client.headers(
            3, request("/count", "POST", [("content-length", "1000")]), end_stream=False
        ),
        DataFrame(3, b"x" * 1000, flags=["END_STREAM"]),
    )
    assert client.response(3) == (200, b"1000")


def test_max_body_size_outgrown_before_the_answer_413(serve: Serve):
    server = serve(limits=SMALL_BODY)
    client = RawClient(server.address)
    client.handshake()
    client.send(
        client.headers(1, request("/count", "POST"), end_stream=False), DataFrame(1, b"x" * 800)
    )
    client.send(DataFrame(1, b"x" * 800))
    assert answered_then_reset(client, 1)[0] == 413


def test_max_body_size_whole_upload_in_one_packet(serve: Serve):
    """The upload, over the limit, ends in the same read as it passes it:
    the 413 stands, the handler is not called to answer again."""
    server = serve(limits=SMALL_BODY)
    client = RawClient(server.address)
    client.handshake()
    client.send(
        client.headers(1, request("/count", "POST"), end_stream=False),
        DataFrame(1, b"x" * 800),
        DataFrame(1, b"x" * 800),
        DataFrame(1, b"x" * 800),
        DataFrame(1, b"", flags=["END_STREAM"]),
    )
    status, _ = client.response(1)
    assert status == 413
    assert client.open()
    assert not [
        f
        for f in client.frames
        if isinstance(f, RstStreamFrame) and f.error_code != ErrorCode.NO_ERROR
    ]


def test_max_body_size_upload_ends_before_the_413_is_out(serve: Serve):
    """The client's window holds the 413's body back, then the upload ends:
    the handler is not asked to answer the refused request (it used to be,
    and failed with ResponseAlreadySent: a 500-path error in the log and
    RST_STREAM INTERNAL_ERROR)."""
    server = serve(limits=SMALL_BODY)
    client = RawClient(server.address)
    client.handshake({SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    client.send(
        client.headers(1, request("/count", "POST"), end_stream=False), DataFrame(1, b"x" * 1600)
    )
    client.wait_for(lambda f: isinstance(f, HeadersFrame) and f.stream_id == 1)
    client.send(DataFrame(1, b"", flags=["END_STREAM"]))
    client.send(WindowUpdateFrame(1, window_increment=1000))
    assert client.response(1) == (413, b"Payload Too Large\n")
    assert client.open()
    assert not [f for f in client.frames if isinstance(f, RstStreamFrame)]


def test_max_body_size_outgrown_after_the_answer_resets(serve: Serve):
    """The handler already answered (/early): the stream is reset (CANCEL)."""
    server = serve(limits=SMALL_BODY)
    client = RawClient(server.address)
    client.handshake()
    client.send(client.headers(1, request("/early", "POST"), end_stream=False))
    client.wait_for(lambda f: isinstance(f, HeadersFrame) and f.stream_id == 1)
    client.send(DataFrame(1, b"x" * 800))
    assert client.open()
    client.send(DataFrame(1, b"x" * 800))
    assert ErrorCode(client.rst(1).error_code) == ErrorCode.CANCEL
    assert client.open()


def test_max_body_size_off(serve: Serve):
    server = serve(limits=Limits(max_body_size=None))
    client = RawClient(server.address)
    client.handshake()
    client.send(
        client.headers(
            1, request("/count", "POST", [("content-length", "2000")]), end_stream=False
        ),
        DataFrame(1, b"x" * 2000, flags=["END_STREAM"]),
    )
    assert client.response(1) == (200, b"2000")


# ---- max_connections ------------------------------------------------------------


def test_max_connections(serve: Serve):
    server = serve(limits=Limits(max_connections=2))
    first, second = RawClient(server.address), RawClient(server.address)
    first.handshake()
    second.handshake()
    third = RawClient(server.address)
    third.send(b"PRI")  # whatever it sends, it is closed at once
    frames = third.wait_closed()
    assert frames == [] and not third._buf
    # The two within the limit are served.
    for client in (first, second):
        client.send(client.headers(1, GET))
        assert client.response(1) == (200, b"hello")
    first.close()
    deadline = time.monotonic() + 10
    while server.connections() > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert served(server.address)  # a place came free


# ---- settings_timeout ------------------------------------------------------------


def test_settings_timeout(serve: Serve):
    server = serve(limits=Limits(settings_timeout=0.3))
    silent = RawClient(server.address)
    silent.handshake(ack=False)
    polite = RawClient(server.address)
    polite.handshake(ack=True)
    goaway = silent.goaway()
    assert ErrorCode(goaway.error_code) == ErrorCode.SETTINGS_TIMEOUT
    silent.wait_closed()
    time.sleep(0.5)  # past the timeout for the one that acknowledged
    assert polite.open()


# ---- idle_timeout -----------------------------------------------------------------


def test_idle_timeout(serve: Serve):
    server = serve(limits=Limits(idle_timeout=0.3))
    idle = RawClient(server.address)
    idle.handshake()
    busy = RawClient(server.address)
    busy.handshake()
    idle.send(idle.headers(1, GET))
    assert idle.response(1) == (200, b"hello")
    busy.send(busy.headers(1, request("/never")))  # a stream stays open
    goaway = idle.goaway()
    assert ErrorCode(goaway.error_code) == ErrorCode.NO_ERROR
    assert goaway.last_stream_id == 1
    idle.wait_closed()
    time.sleep(0.4)
    assert busy.open()  # not idle: a stream is open


def test_one_timer_ticks_over_every_connection(serve: Serve):
    """The server's one timer, not one per connection (at 1000 connections
    those were 1000 call_later a second), and every connection's idle
    timeout still passes."""
    server = serve(limits=Limits(idle_timeout=0.3))
    clients = [RawClient(server.address) for _ in range(5)]
    for client in clients:
        client.handshake()
    assert server.connections() == 5

    def timers() -> list:
        # The asyncio loop's pending TimerHandles (the thread's loop is asyncio's).
        return [h for h in server.loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]

    owners = server.call(lambda: [getattr(h._callback, "__self__", None) for h in timers()])
    assert owners == [server.server]
    for client in clients:
        goaway = client.goaway()
        assert ErrorCode(goaway.error_code) == ErrorCode.NO_ERROR
        client.wait_closed()
    assert server.connections() == 0


# ---- header_timeout ---------------------------------------------------------------


def test_header_timeout(serve: Serve):
    server = serve(limits=Limits(header_timeout=0.3, idle_timeout=None))
    silent = RawClient(server.address)
    silent.handshake()
    asked = RawClient(server.address)
    asked.handshake()
    asked.send(asked.headers(1, GET))
    assert asked.response(1) == (200, b"hello")
    goaway = silent.goaway()
    assert ErrorCode(goaway.error_code) == ErrorCode.NO_ERROR
    silent.wait_closed()
    time.sleep(0.4)
    assert asked.open()  # its request headers came in time


def test_header_timeout_before_the_preface(serve: Serve):
    """A connection that sends nothing is closed too (before it is known to
    speak HTTP/2 there is no GOAWAY to send)."""
    server = serve(limits=Limits(header_timeout=0.3))
    client = RawClient(server.address)
    assert client.wait_closed() == []


# ---- response_timeout -------------------------------------------------------------


def test_response_timeout_503(serve: Serve):
    server = serve(limits=Limits(response_timeout=0.3))
    client = RawClient(server.address)
    client.handshake()
    client.send(client.headers(1, request("/never")))
    status, body = client.response(1)
    assert status == 503
    assert body == b"Service Unavailable: the handler did not answer in time\n"
    assert client.open()


def test_response_timeout_deferred_body_reset(serve: Serve):
    server = serve(limits=Limits(response_timeout=0.3))
    client = RawClient(server.address)
    client.handshake()
    client.send(client.headers(1, request("/deferred")))
    rst = client.rst(1)
    assert ErrorCode(rst.error_code) == ErrorCode.INTERNAL_ERROR
    got = [f for f in client.frames if f.stream_id == 1]
    assert isinstance(got[0], HeadersFrame)
    assert b"".join(f.data for f in got if isinstance(f, DataFrame)) == b"first"
    assert client.open()


@pytest.mark.parametrize("path", ["/never", "/deferred"])
def test_response_timeout_off(serve: Serve, path: str):
    """Defence off: the same handlers are left alone past the timeout above."""
    server = serve(limits=Limits(response_timeout=None))
    client = RawClient(server.address)
    client.handshake()
    client.send(client.headers(1, request(path)))
    time.sleep(0.6)
    assert client.open()
    assert not [f for f in client.frames if isinstance(f, (RstStreamFrame, GoAwayFrame))]
    assert not [f for f in client.frames if isinstance(f, DataFrame) and f.data != b"first"]


def test_limits_reach_the_command_line():
    """Every Limits field is a flag of python -m nghttp2 (the subprocess tests use them)."""
    from nghttp2.server.__main__ import limits_from, parse_args

    args = parse_args(
        ["--header-timeout", "0.5", "--max-connections", "none", "--stream-reset-rate", "10,5"]
    )
    limits = limits_from(args)
    assert limits.header_timeout == 0.5
    assert limits.max_connections is None
    assert tuple(limits.stream_reset_rate) == (10, 5)


def test_zero_window_client_is_not_held_forever(serve: Serve):
    server = serve(limits=Limits(response_timeout=0.3, idle_timeout=0.3))
    client = RawClient(server.address)
    client.handshake({SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    client.send(client.headers(1, GET))
    client.wait_for(lambda f: isinstance(f, HeadersFrame) and f.stream_id == 1)
    # Ten response timeouts later the stream (or the connection) is gone.
    try:
        client.wait_for(
            lambda f: (
                isinstance(f, GoAwayFrame) or (isinstance(f, RstStreamFrame) and f.stream_id == 1)
            ),
            timeout=3.0,
        )
    except TimeoutError:
        pytest.fail("stream 1 still held after 3 s without any window")
