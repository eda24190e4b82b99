"""What the server does with a client that breaks RFC 9113 / RFC 7541: the
exact GOAWAY or RST_STREAM code libnghttp2 sends, for frames built by hand
(raw bytes, HPACK literals without Huffman, so nothing validates them on
the way out); the connection is closed on a connection error and kept on a
stream error, and a bystander connection opened before is served after.

Where libnghttp2 answers a stream error with a connection error, RFC 9113
5.4 allows it ("an endpoint MAY choose to treat a stream error as a
connection error"); those cases say so.  One case departs from the RFC:
a HEADERS frame with a stream id lower than one already used is ignored
(RFC 9113 5.1.1 asks for PROTOCOL_ERROR); libnghttp2 cannot tell such an
id from a stream it closed and forgot, and ignores both.
"""

from __future__ import annotations

import struct
from typing import Callable, List, NamedTuple, Optional, Tuple

import pytest
from hpack.hpack import encode_integer
from hyperframe.frame import RstStreamFrame, SettingsFrame
from security_support import (
    PREFACE,
    RawClient,
    ThreadServer,
    raw_frame,
    served,
)

from nghttp2.server.http11 import speaks_http2
from nghttp2.server.limits import Limits
from nghttp2_cffi import ErrorCode

Serve = Callable[..., ThreadServer]
Fields = List[Tuple[bytes, bytes]]

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x5, 0x6, 0x7, 0x8, 0x9
END_STREAM, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x4, 0x8, 0x20


def literal(name: bytes, value: bytes) -> bytes:
    """RFC 7541 6.2.2: literal without indexing, new name, no Huffman."""
    return (
        b"\x00"
        + bytes(encode_integer(len(name), 7))
        + name
        + bytes(encode_integer(len(value), 7))
        + value
    )


def headers(stream_id: int, fields: Fields, end_stream: bool = True) -> bytes:
    block = b"".join(literal(n, v) for n, v in fields)
    return raw_frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream_id, block)


def settings(*pairs: Tuple[int, int]) -> bytes:
    return raw_frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def window_update(stream_id: int, increment: int) -> bytes:
    return raw_frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def req(path: bytes = b"/", method: bytes = b"GET") -> Fields:
    return [
        (b":method", method),
        (b":scheme", b"http"),
        (b":authority", b"localhost"),
        (b":path", path),
    ]


GET = req()
NEVER = req(b"/never")  # a stream that stays open (the handler never answers)
POST = req(b"/count", b"POST")


class Case(NamedTuple):
    send: bytes
    #: "GOAWAY" (connection error), "RST_STREAM" (stream 1 reset), or
    #: "served" (stream 1 gets its 200)
    outcome: str
    code: Optional[ErrorCode] = None
    limits: Optional[Limits] = None


P, FC, FS, SC, CE = (
    ErrorCode.PROTOCOL_ERROR,
    ErrorCode.FLOW_CONTROL_ERROR,
    ErrorCode.FRAME_SIZE_ERROR,
    ErrorCode.STREAM_CLOSED,
    ErrorCode.COMPRESSION_ERROR,
)

CASES = {
    # ---- frames on the wrong stream (RFC 9113 6.x: connection errors)
    "DATA on stream 0": Case(raw_frame(DATA, END_STREAM, 0, b"x"), "GOAWAY", P),
    "HEADERS on stream 0": Case(headers(0, GET), "GOAWAY", P),
    "SETTINGS on stream 1": Case(raw_frame(SETTINGS, 0, 1), "GOAWAY", P),
    "PING on stream 1": Case(raw_frame(PING, 0, 1, b"12345678"), "GOAWAY", P),
    "GOAWAY on stream 1": Case(raw_frame(GOAWAY, 0, 1, bytes(8)), "GOAWAY", P),
    # ---- idle streams (5.1)
    "DATA on an idle stream": Case(raw_frame(DATA, END_STREAM, 1, b"x"), "GOAWAY", P),
    "RST_STREAM on an idle stream": Case(raw_frame(RST_STREAM, 0, 1, bytes(4)), "GOAWAY", P),
    "WINDOW_UPDATE on an idle stream": Case(window_update(1, 100), "GOAWAY", P),
    "PRIORITY on an idle stream is allowed": Case(
        raw_frame(PRIORITY, 0, 3, struct.pack(">IB", 0, 15)) + headers(1, GET), "served"
    ),
    # ---- stream ids (5.1.1)
    "even stream id from a client": Case(headers(2, GET), "GOAWAY", P),
    "PUSH_PROMISE from a client": Case(
        raw_frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack(">I", 2) + literal(b"a", b"b")),
        "GOAWAY",
        P,
    ),
    # ---- SETTINGS values and lengths (6.5)
    "ENABLE_PUSH=2": Case(settings((0x2, 2)), "GOAWAY", P),
    "INITIAL_WINDOW_SIZE=2^31": Case(settings((0x4, 2**31)), "GOAWAY", FC),
    "MAX_FRAME_SIZE below 2^14": Case(settings((0x5, 2**14 - 1)), "GOAWAY", P),
    "MAX_FRAME_SIZE above 2^24-1": Case(settings((0x5, 2**24)), "GOAWAY", P),
    "SETTINGS length not a multiple of 6": Case(raw_frame(SETTINGS, 0, 0, bytes(5)), "GOAWAY", FS),
    "SETTINGS ACK with a payload": Case(raw_frame(SETTINGS, 0x1, 0, bytes(6)), "GOAWAY", FS),
    "unknown SETTINGS are ignored": Case(settings((0x99, 7)) + headers(1, GET), "served"),
    # ---- other frame lengths (4.2, 6.x)
    "PING of 7 bytes": Case(raw_frame(PING, 0, 0, bytes(7)), "GOAWAY", FS),
    "PRIORITY of 4 bytes (a stream error made a connection error)": Case(
        raw_frame(PRIORITY, 0, 1, bytes(4)), "GOAWAY", FS
    ),
    "RST_STREAM of 3 bytes": Case(
        headers(1, NEVER) + raw_frame(RST_STREAM, 0, 1, bytes(3)), "GOAWAY", FS
    ),
    "DATA over MAX_FRAME_SIZE": Case(
        headers(1, POST, end_stream=False) + raw_frame(DATA, 0, 1, bytes(2**14 + 1)), "GOAWAY", FS
    ),
    "HEADERS over MAX_FRAME_SIZE": Case(
        raw_frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            b"".join(literal(n, v) for n, v in GET) + literal(b"x-a", bytes(2**14)),
        ),
        "GOAWAY",
        FS,
    ),
    "padding longer than the frame": Case(
        raw_frame(HEADERS, END_HEADERS | PADDED, 1, b"\x10" + literal(b"a", b"b")), "GOAWAY", P
    ),
    # ---- flow control (6.9)
    "WINDOW_UPDATE overflowing the connection window": Case(
        window_update(0, 2**31 - 1), "GOAWAY", FC
    ),
    "WINDOW_UPDATE overflowing a stream window": Case(
        headers(1, NEVER) + window_update(1, 2**31 - 1), "RST_STREAM", FC
    ),
    "WINDOW_UPDATE of 0 on the connection": Case(window_update(0, 0), "GOAWAY", P),
    "WINDOW_UPDATE of 0 on a stream (a stream error made a connection error)": Case(
        headers(1, NEVER) + window_update(1, 0), "GOAWAY", P
    ),
    "DATA beyond the stream window": Case(
        headers(1, POST, end_stream=False) + raw_frame(DATA, 0, 1, bytes(2000)),
        "RST_STREAM",
        FC,
        Limits(initial_window_size=1000),
    ),
    "DATA beyond the connection window": Case(
        b"".join(
            headers(s, POST, end_stream=False) + raw_frame(DATA, 0, s, bytes(2**14))
            for s in (1, 3, 5, 7, 9)
        ),
        "GOAWAY",
        FC,
        Limits(connection_window_size=None),
    ),
    # ---- stream states (5.1)
    "HEADERS on a half-closed (remote) stream (made a connection error)": Case(
        headers(1, NEVER) + headers(1, [(b"x-a", b"b")]), "GOAWAY", SC
    ),
    "DATA on a half-closed (remote) stream (made a connection error)": Case(
        headers(1, NEVER) + raw_frame(DATA, 0, 1, b"x"), "GOAWAY", SC
    ),
    # ---- closed streams (5.1): RFC 9218 scheduling keeps no closed streams in
    # libnghttp2; the session's own record answers (before: ignored)
    "DATA after the client's RST_STREAM": Case(
        headers(1, NEVER, False) + raw_frame(RST_STREAM, 0, 1, bytes(4)) + raw_frame(DATA, 0, 1),
        "GOAWAY",
        SC,
    ),
    "HEADERS after the client's RST_STREAM": Case(
        headers(1, NEVER, False) + raw_frame(RST_STREAM, 0, 1, bytes(4)) + headers(1, GET),
        "GOAWAY",
        SC,
    ),
    "decreasing stream id (5.1.1)": Case(headers(3, req(b"/never")) + headers(1, GET), "GOAWAY", P),
    # ---- header blocks (6.10, 4.3)
    "CONTINUATION without HEADERS": Case(
        raw_frame(CONTINUATION, END_HEADERS, 1, literal(b"a", b"b")), "GOAWAY", P
    ),
    "PING inside a header block": Case(
        raw_frame(HEADERS, END_STREAM, 1, literal(b":method", b"GET"))
        + raw_frame(PING, 0, 0, bytes(8)),
        "GOAWAY",
        P,
    ),
    "PRIORITY depending on itself": Case(
        raw_frame(PRIORITY, 0, 1, struct.pack(">IB", 1, 15)), "GOAWAY", P
    ),
    "HEADERS depending on itself": Case(
        raw_frame(
            HEADERS,
            END_HEADERS | END_STREAM | PRIORITY_FLAG,
            1,
            struct.pack(">IB", 1, 15) + b"".join(literal(n, v) for n, v in GET),
        ),
        "GOAWAY",
        P,
    ),
    # ---- HPACK (RFC 7541): COMPRESSION_ERROR
    "HPACK index 0": Case(raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x80"), "GOAWAY", CE),
    "HPACK index out of range": Case(
        raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xff\x10"), "GOAWAY", CE
    ),
    "HPACK table size update above SETTINGS_HEADER_TABLE_SIZE": Case(
        raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x3f\xe1\x3f\x82\x86\x84"), "GOAWAY", CE
    ),
    "HPACK table size update after a field": Case(
        raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x82\x86\x84\x20"), "GOAWAY", CE
    ),
    # ---- malformed requests (8.1.1, 8.2, 8.3): stream errors
    "content-length above the body": Case(
        headers(1, POST + [(b"content-length", b"10")], end_stream=False)
        + raw_frame(DATA, END_STREAM, 1, b"abc"),
        "RST_STREAM",
        P,
    ),
    "content-length below the body": Case(
        headers(1, POST + [(b"content-length", b"2")], end_stream=False)
        + raw_frame(DATA, END_STREAM, 1, b"abc"),
        "RST_STREAM",
        P,
    ),
    "missing :path": Case(headers(1, GET[:3]), "RST_STREAM", P),
    "empty :path": Case(headers(1, GET[:3] + [(b":path", b"")]), "RST_STREAM", P),
    "duplicate :method": Case(headers(1, GET + [(b":method", b"GET")]), "RST_STREAM", P),
    "pseudo-header after a regular one": Case(
        headers(1, GET[:3] + [(b"x-a", b"b"), GET[3]]), "RST_STREAM", P
    ),
    "pseudo-header in trailers": Case(
        headers(1, POST, end_stream=False) + headers(1, [(b":path", b"/")]), "RST_STREAM", P
    ),
    "unknown pseudo-header": Case(headers(1, GET + [(b":foo", b"x")]), "RST_STREAM", P),
    ":status in a request": Case(headers(1, GET + [(b":status", b"200")]), "RST_STREAM", P),
    "CONNECT without :authority": Case(headers(1, [(b":method", b"CONNECT")]), "RST_STREAM", P),
    "upper-case field name": Case(headers(1, GET + [(b"X-Up", b"x")]), "RST_STREAM", P),
    "empty field name": Case(headers(1, GET + [(b"", b"x")]), "RST_STREAM", P),
    "newline in a field value": Case(headers(1, GET + [(b"x-a", b"a\nb")]), "RST_STREAM", P),
    "connection": Case(headers(1, GET + [(b"connection", b"close")]), "RST_STREAM", P),
    "keep-alive": Case(headers(1, GET + [(b"keep-alive", b"5")]), "RST_STREAM", P),
    "proxy-connection": Case(headers(1, GET + [(b"proxy-connection", b"x")]), "RST_STREAM", P),
    "transfer-encoding": Case(
        headers(1, GET + [(b"transfer-encoding", b"chunked")]), "RST_STREAM", P
    ),
    "upgrade": Case(headers(1, GET + [(b"upgrade", b"h2c")]), "RST_STREAM", P),
    "te other than trailers": Case(headers(1, GET + [(b"te", b"gzip")]), "RST_STREAM", P),
    # ---- what is allowed
    "te: trailers": Case(headers(1, GET + [(b"te", b"trailers")]), "served"),
    "host instead of :authority": Case(
        headers(
            1,
            [
                (b":method", b"GET"),
                (b":scheme", b"http"),
                (b":path", b"/"),
                (b"host", b"localhost"),
            ],
        ),
        "served",
    ),
    "unknown frame types are ignored": Case(
        raw_frame(0xFA, 0, 0, b"junk") + raw_frame(0xFA, 0xFF, 1, b"junk") + headers(1, GET),
        "served",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_conformance(serve: Serve, name: str):
    case = CASES[name]
    server = serve(limits=case.limits) if case.limits else serve()
    bystander = RawClient(server.address)
    bystander.handshake()
    client = RawClient(server.address)
    client.handshake()
    client.send(case.send)
    if case.outcome == "GOAWAY":
        goaway = client.goaway()
        assert ErrorCode(goaway.error_code) == case.code, client.summary()
        client.wait_closed()
        assert not [f for f in client.frames if isinstance(f, RstStreamFrame)]
    elif case.outcome == "RST_STREAM":
        rst = client.rst(1)
        assert ErrorCode(rst.error_code) == case.code, client.summary()
        assert client.open() and not client.goaways()
        # The connection still serves.
        client.send(headers(11, GET))
        assert client.response(11) == (200, b"hello")
    elif case.outcome == "served":
        assert client.response(1) == (200, b"hello")
        assert client.open() and not client.goaways()
    else:
        assert case.outcome == "ignored"
        assert client.open() and not client.goaways()
        assert not [f for f in client.frames if f.stream_id == 1]
    bystander.send(headers(1, GET))
    assert bystander.response(1) == (200, b"hello")


@pytest.mark.parametrize("frame", ["DATA", "HEADERS"])
def test_frames_on_a_stream_closed_by_end_stream(serve: Serve, frame: str):
    """RFC 9113 5.1 (h2spec 5.1/11, 5.1/12): after the client's END_STREAM
    and the answer, DATA or HEADERS on the stream is a connection error
    STREAM_CLOSED (before: ignored, the client left waiting)."""
    server = serve()
    client = RawClient(server.address)
    client.handshake()
    client.send(headers(1, GET))
    assert client.response(1) == (200, b"hello")
    client.send(raw_frame(DATA, END_STREAM, 1, b"x") if frame == "DATA" else headers(1, GET))
    goaway = client.goaway()
    assert ErrorCode(goaway.error_code) == ErrorCode.STREAM_CLOSED
    client.wait_closed()
    assert served(server.address)


def test_frames_in_flight_on_a_stream_the_server_reset_are_ignored(serve: Serve):
    """A stream the server reset while the client was still sending may get
    the client's frames in flight: ignored (RFC 9113 5.1), the connection
    stays."""
    server = serve()
    client = RawClient(server.address)
    client.handshake()
    client.send(
        headers(1, POST + [(b"content-length", b"1")], False) + raw_frame(DATA, 0, 1, b"xx")
    )
    assert ErrorCode(client.rst(1).error_code) == ErrorCode.PROTOCOL_ERROR
    client.send(raw_frame(DATA, END_STREAM, 1, b"x"))
    client.send(headers(3, GET))
    assert client.response(3) == (200, b"hello")
    assert client.open() and not client.goaways()


# ---- the preface (3.4) --------------------------------------------------------------


def test_bad_preface_http2_only(serve: Serve):
    """RFC 9113 3.4: an invalid preface is a connection error PROTOCOL_ERROR."""
    server = serve(http1=False)
    client = RawClient(server.address)
    client.send(PREFACE[:20] + b"XXXX" + SettingsFrame(0).serialize())
    goaway = client.goaway()
    assert ErrorCode(goaway.error_code) == ErrorCode.PROTOCOL_ERROR
    client.wait_closed()
    assert served(server.address)


@pytest.mark.parametrize(
    "preface",
    [PREFACE[:20] + b"XXXX", b"INVALID CONNECTION PREFACE\r\n\r\n", b"\x00\x00\x12\x04\x00" * 6],
    ids=["PRI gone wrong", "h2spec 3.5/2", "binary"],
)
def test_bad_preface_beside_http1_is_http2s_to_refuse(serve: Serve, preface: bytes):
    """Beside HTTP/1.1 (the default), bytes that are neither the HTTP/2
    preface nor an HTTP/1.x request line (h2spec 3.5/2 sends ``INVALID
    CONNECTION PREFACE``) are an invalid HTTP/2 preface: GOAWAY
    PROTOCOL_ERROR, no ``HTTP/1.1 400``.  (Before: a 400.)"""
    server = serve()
    client = RawClient(server.address)
    client.send(preface + SettingsFrame(0).serialize())
    goaway = client.goaway()
    assert ErrorCode(goaway.error_code) == ErrorCode.PROTOCOL_ERROR
    client.wait_closed()
    assert not bytes(client._buf).startswith(b"HTTP/")
    assert served(server.address)


@pytest.mark.parametrize(
    ("data", "decision"),
    [
        (b"", None),
        (PREFACE[:10], None),
        (PREFACE, True),
        (PREFACE[:20] + b"XXXX", True),
        (b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nhost: a\r\n\r\n", False),
        (b"\r\nPOST /x HTTP/1.0\r\n", False),
        (b"GET / HTTP/2.0\r\n", False),  # HTTP/1.1's to refuse (505)
        (b"GET / HT", None),
        (b"INVALID CONNECTION PREFACE\r\n", True),
        (b"GET /\r\n", True),  # HTTP/0.9
        (b"\x00\x00\x12\x04", True),  # binary: no line end needed
        (b"GET /" + b"a" * 100, False),  # longer than a line may wait
    ],
)
def test_speaks_http2(data: bytes, decision: Optional[bool]):
    assert speaks_http2(data, 64) is decision


@pytest.mark.parametrize("http1", [True, False])
def test_first_frame_not_settings(serve: Serve, http1: bool):
    server = serve(http1=http1)
    client = RawClient(server.address)
    client.send(PREFACE + raw_frame(PING, 0, 0, bytes(8)))
    goaway = client.goaway()
    assert ErrorCode(goaway.error_code) == ErrorCode.PROTOCOL_ERROR
    client.wait_closed()
    assert served(server.address)


def test_goaway_names_the_last_stream_taken(serve: Serve):
    """A connection error after requests: the GOAWAY's last stream id is the
    last one the server processed."""
    server = serve()
    client = RawClient(server.address)
    client.handshake()
    client.send(headers(1, GET), headers(3, GET))
    assert client.response(3) == (200, b"hello")
    client.send(raw_frame(DATA, 0, 0, b"x"))
    goaway = client.goaway()
    assert (goaway.last_stream_id, ErrorCode(goaway.error_code)) == (3, ErrorCode.PROTOCOL_ERROR)
    client.wait_closed()
