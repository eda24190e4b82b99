"""Errors: the exception hierarchy, malformed input from a frame-level peer
(hyperframe + hpack), misuse of the API, and exceptions raised by bodies."""

from __future__ import annotations

import struct

import hpack
import pytest
from hyperframe.frame import (
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
)
from session_support import MAGIC, parse_frames, raw_frame

from nghttp2_cffi import (
    CallbackError,
    DataReceived,
    ErrorCode,
    FloodedError,
    GoAwaySent,
    InvalidArgumentError,
    NGHTTP2Error,
    PingReceived,
    ProtocolError,
    RequestReceived,
    ResponseReceived,
    Session,
    SessionConfig,
    SettingCode,
    StreamClosed,
    StreamClosedError,
    StreamReset,
    StreamStateError,
    TrailersReceived,
    lib,
)
from nghttp2_cffi.errors import (
    ERR_TOO_MANY_CONTINUATIONS,
    OutOfMemoryError,
    check,
    error_for,
    strerror,
)

GET = [(":method", "GET"), (":scheme", "http"), (":authority", "example"), (":path", "/")]
POST = [(":method", "POST"), (":scheme", "http"), (":authority", "example"), (":path", "/")]


# ---- exception hierarchy ------------------------------------------------------

ALL_CODES = sorted(
    [(name, getattr(lib, name)) for name in dir(lib) if name.startswith("NGHTTP2_ERR_")],
    key=lambda item: item[1],
)


def test_every_error_code_is_known():
    # The cdef exposes them all (nghttp2.h 1.52 has 41); -905 comes on top.
    assert len(ALL_CODES) >= 41
    assert all(code < 0 for _, code in ALL_CODES)


@pytest.mark.parametrize(("name", "code"), ALL_CODES + [("TOO_MANY_CONTINUATIONS", -905)])
def test_every_negative_code_maps_to_an_nghttp2_error(name: str, code: int):
    exc = error_for(code)
    assert isinstance(exc, NGHTTP2Error), name
    assert exc.code == code
    text = strerror(code)
    assert text == lib_strerror(code) and text
    assert text in str(exc) and str(code) in str(exc)
    with pytest.raises(type(exc)) as info:
        check(code)
    assert info.value.code == code


def lib_strerror(code: int) -> str:
    from nghttp2_cffi import ffi

    return ffi.string(lib.nghttp2_strerror(code)).decode()


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (lib.NGHTTP2_ERR_INVALID_ARGUMENT, InvalidArgumentError),
        (lib.NGHTTP2_ERR_STREAM_CLOSED, StreamClosedError),
        (lib.NGHTTP2_ERR_STREAM_SHUT_WR, StreamClosedError),
        (lib.NGHTTP2_ERR_INVALID_STREAM_STATE, StreamStateError),
        (lib.NGHTTP2_ERR_CALLBACK_FAILURE, CallbackError),
        (lib.NGHTTP2_ERR_FLOODED, FloodedError),
        (ERR_TOO_MANY_CONTINUATIONS, FloodedError),
        (lib.NGHTTP2_ERR_NOMEM, OutOfMemoryError),
        # Returned by submit_* on the wrong side, not by a peer.
        (lib.NGHTTP2_ERR_PROTO, InvalidArgumentError),
    ],
)
def test_specific_classes(code: int, cls: type):
    assert type(error_for(code)) is cls


def test_out_of_memory_is_also_a_memory_error():
    assert isinstance(error_for(lib.NGHTTP2_ERR_NOMEM), MemoryError)


def test_invalid_argument_is_also_a_value_error():
    assert isinstance(error_for(lib.NGHTTP2_ERR_INVALID_ARGUMENT), ValueError)


@pytest.mark.parametrize(
    ("code", "http2_code"),
    [
        (lib.NGHTTP2_ERR_BAD_CLIENT_MAGIC, ErrorCode.PROTOCOL_ERROR),
        (lib.NGHTTP2_ERR_HEADER_COMP, ErrorCode.COMPRESSION_ERROR),
        (lib.NGHTTP2_ERR_FLOW_CONTROL, ErrorCode.FLOW_CONTROL_ERROR),
        (lib.NGHTTP2_ERR_FRAME_SIZE_ERROR, ErrorCode.FRAME_SIZE_ERROR),
        (lib.NGHTTP2_ERR_FLOODED, ErrorCode.ENHANCE_YOUR_CALM),
        (ERR_TOO_MANY_CONTINUATIONS, ErrorCode.ENHANCE_YOUR_CALM),
    ],
)
def test_protocol_errors_carry_the_http2_code(code: int, http2_code: ErrorCode):
    exc = error_for(code)
    assert isinstance(exc, ProtocolError)
    assert exc.error_code is http2_code


def test_check_passes_non_negative_values():
    assert check(0) == 0
    assert check(7) == 7


def test_unknown_negative_code():
    exc = error_for(-12345)
    assert type(exc) is NGHTTP2Error and exc.code == -12345
    assert "Unknown error code" in str(exc)


def test_error_code_enum_accepts_unknown_codes():
    assert ErrorCode(0xABC).name == "UNKNOWN_0xabc"
    assert ErrorCode(0xABC) == 0xABC
    assert ErrorCode(8) is ErrorCode.CANCEL
    with pytest.raises(ValueError, match="not a valid ErrorCode"):
        ErrorCode(2**32)
    with pytest.raises(ValueError, match="not a valid ErrorCode"):
        ErrorCode(-1)


# ---- malformed input: a hand-made client against our server ----------------------


def headers_frame(stream_id: int, headers: list, end_stream: bool = True, encoder=None) -> bytes:
    frame = HeadersFrame(stream_id)
    frame.data = (encoder or hpack.Encoder()).encode(headers)
    frame.flags.add("END_HEADERS")
    if end_stream:
        frame.flags.add("END_STREAM")
    return frame.serialize()


def settings_frame(settings: dict | None = None) -> bytes:
    frame = SettingsFrame(0)
    frame.settings = settings or {}
    return frame.serialize()


def attack(data: bytes, *, preface: bool = True, side: str = "server", **options) -> tuple:
    """Feed ``data`` to a fresh session (after the client preface and an
    empty SETTINGS when ``preface``); return (events, exception or None,
    frames it answered with)."""
    session = Session(side, config=SessionConfig(**options))
    session.data_to_send()
    exc = None
    if preface:
        data = (MAGIC if side == "server" else b"") + settings_frame() + data
    try:
        events = session.receive_data(data)
    except NGHTTP2Error as e:
        exc = e
        events = session.events()
    frames = parse_frames(session.data_to_send())
    events += session.events()
    return events, exc, frames, session


def goaway_code(frames: list) -> int | None:
    codes = [f.error_code for f in frames if isinstance(f, GoAwayFrame)]
    assert len(codes) <= 1
    return codes[0] if codes else None


def rst_codes(frames: list) -> dict[int, int]:
    return {f.stream_id: f.error_code for f in frames if isinstance(f, RstStreamFrame)}


def test_garbage_instead_of_client_preface():
    server = Session("server")
    server.data_to_send()
    with pytest.raises(ProtocolError) as info:
        server.receive_data(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
    exc = info.value
    assert exc.code == lib.NGHTTP2_ERR_BAD_CLIENT_MAGIC
    assert exc.error_code == ErrorCode.PROTOCOL_ERROR
    frames = parse_frames(server.data_to_send())
    (goaway,) = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert goaway.error_code == ErrorCode.PROTOCOL_ERROR
    assert goaway.last_stream_id == 0
    assert GoAwaySent(0, ErrorCode.PROTOCOL_ERROR) in server.events()
    assert not server.want_read and not server.want_write


def test_first_frame_not_settings():
    events, _, frames, _ = attack(MAGIC + PingFrame(0).serialize(), preface=False)
    assert goaway_code(frames) == ErrorCode.PROTOCOL_ERROR
    assert not [e for e in events if isinstance(e, PingReceived)]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(
            raw_frame(0x1, 0x5, 0, hpack.Encoder().encode(GET)),
            ErrorCode.PROTOCOL_ERROR,
            id="HEADERS-on-stream-0",
        ),
        pytest.param(
            raw_frame(0x0, 0x1, 0, b"abc"), ErrorCode.PROTOCOL_ERROR, id="DATA-on-stream-0"
        ),
        pytest.param(
            raw_frame(0x3, 0, 0, b"\0\0\0\x08"),
            ErrorCode.PROTOCOL_ERROR,
            id="RST_STREAM-on-stream-0",
        ),
        pytest.param(
            raw_frame(0x6, 0, 1, b"\0" * 8), ErrorCode.PROTOCOL_ERROR, id="PING-on-stream-1"
        ),
        pytest.param(
            raw_frame(0x4, 0, 1, b""), ErrorCode.PROTOCOL_ERROR, id="SETTINGS-on-stream-1"
        ),
        pytest.param(headers_frame(2, GET), ErrorCode.PROTOCOL_ERROR, id="even-stream-from-client"),
        pytest.param(
            raw_frame(0x0, 0x1, 1, b"abc"), ErrorCode.PROTOCOL_ERROR, id="DATA-on-idle-stream"
        ),
        pytest.param(
            raw_frame(0x9, 0x4, 1, hpack.Encoder().encode(GET)),
            ErrorCode.PROTOCOL_ERROR,
            id="CONTINUATION-without-HEADERS",
        ),
        pytest.param(
            headers_frame(1, GET, end_stream=False)
            + raw_frame(0x5, 0x4, 1, b"\0\0\0\x02" + hpack.Encoder().encode(GET)),
            ErrorCode.PROTOCOL_ERROR,
            id="PUSH_PROMISE-from-client",
        ),
        pytest.param(
            settings_frame({SettingCode.INITIAL_WINDOW_SIZE: 2**31}),
            ErrorCode.FLOW_CONTROL_ERROR,
            id="SETTINGS-INITIAL_WINDOW_SIZE-2^31",
        ),
        pytest.param(
            settings_frame({SettingCode.ENABLE_PUSH: 2}),
            ErrorCode.PROTOCOL_ERROR,
            id="SETTINGS-ENABLE_PUSH-2",
        ),
        pytest.param(
            settings_frame({SettingCode.MAX_FRAME_SIZE: 16383}),
            ErrorCode.PROTOCOL_ERROR,
            id="SETTINGS-MAX_FRAME_SIZE-too-small",
        ),
        pytest.param(
            settings_frame({SettingCode.MAX_FRAME_SIZE: 2**24}),
            ErrorCode.PROTOCOL_ERROR,
            id="SETTINGS-MAX_FRAME_SIZE-too-large",
        ),
        pytest.param(
            raw_frame(0x4, 0, 0, b"\0" * 5), ErrorCode.FRAME_SIZE_ERROR, id="SETTINGS-length-5"
        ),
        pytest.param(
            raw_frame(0x4, 0x1, 0, b"\0\x03\0\0\0\x01"),
            ErrorCode.FRAME_SIZE_ERROR,
            id="SETTINGS-ACK-with-payload",
        ),
        pytest.param(
            raw_frame(0x6, 0, 0, b"\0" * 7), ErrorCode.FRAME_SIZE_ERROR, id="PING-length-7"
        ),
        pytest.param(
            raw_frame(0x8, 0, 0, b"\0\0\0\0"),
            ErrorCode.PROTOCOL_ERROR,
            id="WINDOW_UPDATE-0-on-connection",
        ),
        pytest.param(
            raw_frame(0x8, 0, 0, struct.pack(">I", 2**31 - 1)),
            ErrorCode.FLOW_CONTROL_ERROR,
            id="connection-window-overflow",
        ),
        pytest.param(
            headers_frame(1, GET, end_stream=False) + raw_frame(0x0, 0, 1, b"x" * 16385),
            ErrorCode.FRAME_SIZE_ERROR,
            id="DATA-above-MAX_FRAME_SIZE",
        ),
        pytest.param(
            raw_frame(0x1, 0x5, 1, b"\xbf\xff"), ErrorCode.COMPRESSION_ERROR, id="invalid-HPACK"
        ),
        pytest.param(
            raw_frame(0x1, 0x5, 1, b"\x3f\xe1\x3f"),
            ErrorCode.COMPRESSION_ERROR,
            id="HPACK-table-size-above-SETTINGS",
        ),
    ],
)
def test_connection_errors(data: bytes, code: ErrorCode):
    events, exc, frames, session = attack(data)
    assert goaway_code(frames) == code
    assert [e.error_code for e in events if isinstance(e, GoAwaySent)] == [code]
    assert exc is None or (isinstance(exc, ProtocolError) and exc.error_code == code)
    assert not session.want_read and not session.want_write
    assert not [e for e in events if isinstance(e, RequestReceived) and e.stream_id != 1]


def test_window_update_zero_on_a_stream():
    # RFC 9113 6.9 allows a stream error; nghttp2 closes the connection.
    data = headers_frame(1, GET, end_stream=False) + raw_frame(0x8, 0, 1, b"\0\0\0\0")
    _, _, frames, _ = attack(data)
    assert goaway_code(frames) == ErrorCode.PROTOCOL_ERROR


def test_stream_window_overflow_is_a_stream_error():
    data = headers_frame(1, GET, end_stream=False) + raw_frame(
        0x8, 0, 1, struct.pack(">I", 2**31 - 1)
    )
    events, exc, frames, _ = attack(data)
    assert exc is None
    assert goaway_code(frames) is None
    assert rst_codes(frames) == {1: ErrorCode.FLOW_CONTROL_ERROR}
    assert StreamClosed(1, ErrorCode.FLOW_CONTROL_ERROR) in events


def test_data_beyond_the_window():
    # With automatic window updates nghttp2 credits the window as soon as it
    # has queued a WINDOW_UPDATE; without them a peer exceeding it is caught.
    data = headers_frame(1, POST, end_stream=False) + b"".join(
        raw_frame(0x0, 0, 1, b"x" * 16384) for _ in range(5)
    )
    _, _, frames, _ = attack(data, auto_window_update=False)
    assert goaway_code(frames) == ErrorCode.FLOW_CONTROL_ERROR


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(GET + [("X-Upper", "v")], id="uppercase-name"),
        pytest.param(GET[:3], id="missing-:path"),
        pytest.param(GET[1:], id="missing-:method"),
        pytest.param([GET[1], GET[0], GET[2], ("x-a", "1"), GET[3]], id="pseudo-after-regular"),
        pytest.param(GET + [(":path", "/again")], id="duplicate-:path"),
        pytest.param(GET + [(":status", "200")], id="response-pseudo-in-request"),
        pytest.param(GET + [("connection", "keep-alive")], id="connection-specific"),
        pytest.param(GET + [("te", "gzip")], id="te-not-trailers"),
        pytest.param(GET + [("x-bad", "a\r\nb")], id="CRLF-in-value"),
    ],
)
def test_malformed_requests_reset_the_stream(headers: list):
    events, exc, frames, session = attack(headers_frame(1, headers))
    assert exc is None
    assert goaway_code(frames) is None
    assert rst_codes(frames) == {1: ErrorCode.PROTOCOL_ERROR}
    assert StreamClosed(1, ErrorCode.PROTOCOL_ERROR) in events
    assert not [e for e in events if isinstance(e, RequestReceived)]
    # The connection survives a stream error.
    good = session.receive_data(headers_frame(3, GET))
    assert [e.stream_id for e in good if isinstance(e, RequestReceived)] == [3]


def test_content_length_mismatch_resets_the_stream():
    headers = POST + [("content-length", "10")]
    data = headers_frame(1, headers, end_stream=False) + raw_frame(0x0, 0x1, 1, b"abc")
    events, _, frames, _ = attack(data)
    assert rst_codes(frames) == {1: ErrorCode.PROTOCOL_ERROR}
    assert StreamClosed(1, ErrorCode.PROTOCOL_ERROR) in events


def test_unknown_frame_types_are_ignored():
    events, exc, frames, _ = attack(raw_frame(0xFA, 0, 0, b"extension") + headers_frame(1, GET))
    assert exc is None and goaway_code(frames) is None
    assert [e.stream_id for e in events if isinstance(e, RequestReceived)] == [1]


def test_client_rejects_push_when_disabled():
    client = Session("client", config=SessionConfig(settings={SettingCode.ENABLE_PUSH: 0}))
    sid = client.send_request(GET)
    client.data_to_send()
    ack = SettingsFrame(0, flags=["ACK"]).serialize()
    encoder = hpack.Encoder()
    promise = PushPromiseFrame(sid, promised_stream_id=2, flags=["END_HEADERS"])
    promise.data = encoder.encode(GET[:3] + [(":path", "/pushed")])
    client.receive_data(settings_frame() + ack + promise.serialize())
    frames = parse_frames(client.data_to_send())
    assert goaway_code(frames) == ErrorCode.PROTOCOL_ERROR


def test_client_rejects_response_without_status():
    client = Session("client")
    sid = client.send_request(GET)
    client.data_to_send()
    events = client.receive_data(settings_frame() + headers_frame(sid, [("server", "x")]))
    frames = parse_frames(client.data_to_send())
    events += client.events()
    assert rst_codes(frames) == {sid: ErrorCode.PROTOCOL_ERROR}
    assert not [e for e in events if isinstance(e, ResponseReceived)]
    assert StreamClosed(sid, ErrorCode.PROTOCOL_ERROR) in events


# ---- floods --------------------------------------------------------------------


def test_ping_flood():
    _, exc, frames, _ = attack(PingFrame(0).serialize() * 5000)
    assert isinstance(exc, FloodedError)
    assert exc.error_code == ErrorCode.ENHANCE_YOUR_CALM
    assert goaway_code(frames) == ErrorCode.ENHANCE_YOUR_CALM


def test_settings_flood():
    _, exc, frames, _ = attack(settings_frame() * 5000)
    assert isinstance(exc, FloodedError)
    assert goaway_code(frames) == ErrorCode.ENHANCE_YOUR_CALM


def test_continuation_flood():
    block = hpack.Encoder().encode(GET)
    data = raw_frame(0x1, 0x1, 1, block[:1]) + raw_frame(0x9, 0, 1, b"") * 100
    _, exc, frames, _ = attack(data)
    assert isinstance(exc, FloodedError)
    assert exc.code == ERR_TOO_MANY_CONTINUATIONS
    assert exc.error_code == ErrorCode.ENHANCE_YOUR_CALM
    assert goaway_code(frames) == ErrorCode.ENHANCE_YOUR_CALM


def test_rapid_reset_flood():
    from nghttp2_cffi import FEATURES

    if not FEATURES["stream_reset_rate_limit"]:
        pytest.skip("the linked libnghttp2 has no stream reset rate limit")
    server = Session("server", config=SessionConfig(stream_reset_rate=(10, 1)))
    server.data_to_send()
    server.receive_data(MAGIC + settings_frame())
    encoder = hpack.Encoder()
    resets = 0
    code = None
    for sid in range(1, 400, 2):
        events = server.receive_data(
            headers_frame(sid, GET, end_stream=False, encoder=encoder)
            + RstStreamFrame(sid, error_code=ErrorCode.CANCEL).serialize()
        )
        resets += len([e for e in events if isinstance(e, StreamReset)])
        code = goaway_code(parse_frames(server.data_to_send()))
        if code is not None:
            break
    # nghttp2 itself answers a rapid-reset flood, with INTERNAL_ERROR.
    assert code == ErrorCode.INTERNAL_ERROR
    assert 10 <= resets < 100
    assert not server.want_read


def test_too_many_settings():
    if not __import__("nghttp2_cffi").FEATURES["max_settings"]:
        pytest.skip("the linked libnghttp2 cannot limit SETTINGS entries")
    frame = SettingsFrame(0)
    frame.settings = {0x10 + i: 1 for i in range(10)}
    _, _, frames, _ = attack(frame.serialize(), max_settings=4)
    assert goaway_code(frames) == ErrorCode.ENHANCE_YOUR_CALM


# ---- misuse of the API ------------------------------------------------------------


@pytest.fixture
def live(pair, pump):
    """A pair with one finished exchange on stream 1."""
    client, server = pair
    sid = client.send_request(GET)
    pump(client, server)
    server.send_response(sid, [(":status", "200")], b"done")
    pump(client, server)
    return client, server, sid


def test_send_data_without_open_body(live):
    client, _, sid = live
    with pytest.raises(StreamStateError, match="no open body"):
        client.send_data(sid, b"x")
    with pytest.raises(StreamStateError):
        client.send_data(99, b"x")
    with pytest.raises(StreamStateError):
        client.send_trailers(sid, [("x", "y")])
    with pytest.raises(StreamStateError):
        client.end_stream(sid)


def test_send_data_after_end_stream(pair, pump):
    client, server = pair
    sid = client.send_request(POST, end_stream=False)
    client.send_data(sid, b"a", end_stream=True)
    with pytest.raises(StreamStateError):
        client.send_data(sid, b"b")
    with pytest.raises(StreamStateError):
        client.end_stream(sid)
    _, seen = pump(client, server)
    assert b"".join(e.data for e in seen if isinstance(e, DataReceived)) == b"a"


@pytest.mark.parametrize("body", [None, b"with a body"])
def test_submitting_on_a_closed_stream(live, pump, body):
    client, server, sid = live
    with pytest.raises(StreamClosedError):
        server.send_response(sid, [(":status", "200")], body)
    with pytest.raises(StreamClosedError):
        server.send_headers(sid, [(":status", "200")])
    with pytest.raises(StreamClosedError):
        server.push_promise(sid, GET)
    with pytest.raises(StreamClosedError):
        server.send_response(41, [(":status", "200")], body)  # never opened
    assert server._bodies == {}
    seen_c, _ = pump(client, server)
    assert not [e for e in seen_c if isinstance(e, ResponseReceived)]


def test_response_after_client_reset(pair, pump):
    client, server = pair
    sid = client.send_request(GET)
    pump(client, server)
    client.reset_stream(sid)
    pump(client, server)
    with pytest.raises(StreamClosedError):
        server.send_response(sid, [(":status", "200")], b"too late")


def test_second_response_on_a_stream(pair, pump):
    client, server = pair
    sid = client.send_request(POST, end_stream=False)
    pump(client, server)
    server.send_response(sid, [(":status", "200")], end_stream=False)
    with pytest.raises(StreamStateError):
        server.send_response(sid, [(":status", "200")], b"again")


def test_negative_acknowledgement():
    client = Session("client", config=SessionConfig(auto_window_update=False))
    with pytest.raises(ValueError, match="negative"):
        client.acknowledge_received_data(-1, 1)


@pytest.mark.parametrize(
    "headers",
    [
        GET + [("x-nul", "a\0b")],
        GET + [(b"x-nul\0name", b"v")],
        GET + [("x-end", "v\0")],
    ],
)
def test_header_values_with_nul(pair, headers):
    client, _ = pair
    with pytest.raises(InvalidArgumentError):
        client.send_request(headers)
    assert client.data_to_send() == b""  # nothing was queued


def test_nul_in_response_headers_and_trailers(pair, pump):
    client, server = pair
    sid = client.send_request(GET)
    pump(client, server)
    with pytest.raises(InvalidArgumentError):
        server.send_response(sid, [(":status", "200"), ("x", "\0")])
    # Trailers are parsed only once the body is done: a NUL found then would
    # fail inside nghttp2's send loop and kill the whole session.
    with pytest.raises(InvalidArgumentError, match="NUL"):
        server.send_response(sid, [(":status", "200")], b"body", trailers=[("t", "a\0")])
    server.send_response(sid, [(":status", "200")], end_stream=False)
    with pytest.raises(InvalidArgumentError, match="NUL"):
        server.send_trailers(sid, [("t\0x", "1")])
    server.send_trailers(sid, [("t", "ok")])
    seen_c, _ = pump(client, server)
    assert [e.headers for e in seen_c if isinstance(e, TrailersReceived)] == [[(b"t", b"ok")]]


def test_wrong_side_calls(pair):
    client, server = pair
    with pytest.raises(InvalidArgumentError, match="side"):
        server.send_request(GET)
    with pytest.raises(InvalidArgumentError, match="server"):
        client.push_promise(1, GET)
    with pytest.raises(NGHTTP2Error):
        client.send_response(1, [(":status", "200")])


def test_bad_arguments(pair):
    client, _ = pair
    with pytest.raises(TypeError, match="body must be"):
        client.send_request(POST, body=12345)
    with pytest.raises(ValueError, match="8 bytes"):
        client.ping(b"short")
    with pytest.raises(ValueError, match="side"):
        Session("proxy")
    with pytest.raises(InvalidArgumentError):
        client.update_settings({SettingCode.INITIAL_WINDOW_SIZE: 2**31})
    with pytest.raises(InvalidArgumentError):
        client.update_settings({SettingCode.ENABLE_PUSH: 2})


# ---- exceptions raised by a reader body ----------------------------------------------


class Exploding:
    """Gives ``good`` bytes, then raises."""

    def __init__(self, good: bytes, exc: BaseException) -> None:
        self.good = good
        self.exc = exc

    def read(self, n: int) -> bytes:
        if self.good:
            chunk, self.good = self.good[:n], self.good[n:]
            return chunk
        raise self.exc


def test_reader_exception_reaches_data_to_send(pair, pump):
    client, server = pair
    boom = RuntimeError("disk on fire")
    bad = client.send_request(POST, body=Exploding(b"a" * 1000, boom))
    good = client.send_request(POST, body=b"fine")
    with pytest.raises(CallbackError) as info:
        client.data_to_send()
    assert info.value.__cause__ is boom
    assert info.value.code == lib.NGHTTP2_ERR_CALLBACK_FAILURE
    # The bytes produced before the failure are not lost: both requests'
    # HEADERS (sent only once) come with the next call.
    out = client.data_to_send()
    frames = parse_frames(out)
    assert {f.stream_id for f in frames if isinstance(f, HeadersFrame)} == {bad, good}
    assert [f.error_code for f in frames if isinstance(f, RstStreamFrame)] == [
        ErrorCode.INTERNAL_ERROR
    ]
    seen = server.receive_data(out)
    assert {e.stream_id for e in seen if isinstance(e, RequestReceived)} == {bad, good}
    assert b"".join(e.data for e in seen if isinstance(e, DataReceived) and e.stream_id == bad) == (
        b"a" * 1000
    )
    assert StreamReset(bad, ErrorCode.INTERNAL_ERROR) in seen
    assert StreamClosed(bad, ErrorCode.INTERNAL_ERROR) in seen
    # The other stream keeps working.
    seen_c, seen_s = pump(client, server)
    assert StreamClosed(bad, ErrorCode.INTERNAL_ERROR) in seen_c
    got = b"".join(
        e.data for e in seen + seen_s if isinstance(e, DataReceived) and e.stream_id == good
    )
    assert got == b"fine"
    server.send_response(good, [(":status", "200")], b"ok")
    seen_c, _ = pump(client, server)
    assert b"".join(e.data for e in seen_c if isinstance(e, DataReceived)) == b"ok"
    assert bad not in client._bodies


def test_reader_exception_on_first_read_server_side(pair, pump):
    client, server = pair
    a = client.send_request(GET)
    b = client.send_request(GET)
    pump(client, server)
    server.send_response(a, [(":status", "200")], Exploding(b"", KeyError("gone")))
    server.send_response(b, [(":status", "200")], b"other")
    with pytest.raises(CallbackError) as info:
        server.data_to_send()
    assert isinstance(info.value.__cause__, KeyError)
    seen_c, _ = pump(client, server)
    assert StreamReset(a, ErrorCode.INTERNAL_ERROR) in seen_c
    assert (
        b"".join(e.data for e in seen_c if isinstance(e, DataReceived) and e.stream_id == b)
        == b"other"
    )
    assert server._bodies == {}


def test_reader_exception_with_limit(pair, pump):
    client, server = pair
    sid = client.send_request(POST, body=Exploding(b"z" * 300_000, ValueError("late")))
    received = []

    def step() -> None:
        chunk = client.data_to_send(8192)
        received.extend(server.receive_data(chunk))
        client.receive_data(server.data_to_send())

    with pytest.raises(CallbackError) as info:  # noqa: PT012 - raises on some step
        for _ in range(1000):
            step()
    assert isinstance(info.value.__cause__, ValueError)
    # Everything read before the failure reached the server.
    got = b"".join(e.data for e in received if isinstance(e, DataReceived))
    assert got == b"z" * len(got) and len(got) >= 65535
    _, seen_s = pump(client, server)
    assert StreamReset(sid, ErrorCode.INTERNAL_ERROR) in seen_s
