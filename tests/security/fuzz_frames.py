"""Hypothesis strategies for the fuzz tests (and tools/fuzz_session.py):
sequences of HTTP/2 frames a client might send, built with hyperframe and
hpack so most of them parse and reach deep into the server, then cut into
random reads and, sometimes, mutated byte by byte."""

from __future__ import annotations

import struct
from typing import Any, List, Tuple

import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import strategies as st

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

#: A few ids reused often (so frames meet streams in every state), and any.
stream_ids = st.one_of(
    st.sampled_from([1, 1, 3, 3, 5, 7, 0, 2, 2**31 - 1]),
    st.integers(0, 2**31 - 1),
)
PATHS = [b"/", b"/count", b"/never", b"/early", b"/deferred", b"/big", b"/slow", b"*", b""]

_pseudo = st.sampled_from(
    [
        (b":method", b"GET"),
        (b":method", b"POST"),
        (b":method", b"CONNECT"),
        (b":method", b"HEAD"),
        (b":scheme", b"http"),
        (b":scheme", b"https"),
        (b":authority", b"localhost"),
        (b":protocol", b"websocket"),
        (b":status", b"200"),
        (b":foo", b"bar"),
    ]
)
_regular = st.one_of(
    st.sampled_from(
        [
            (b"content-length", b"0"),
            (b"content-length", b"3"),
            (b"content-length", b"99999999999"),
            (b"content-length", b"-1"),
            (b"te", b"trailers"),
            (b"te", b"gzip"),
            (b"connection", b"close"),
            (b"transfer-encoding", b"chunked"),
            (b"host", b"localhost"),
            (b"cookie", b"a=b"),
            (b"cookie", b"c=d"),
            (b"priority", b"u=0, i"),
            (b"X-Upper", b"x"),
            (b"expect", b"100-continue"),
        ]
    ),
    st.tuples(st.binary(max_size=12), st.binary(max_size=40)),
)


@st.composite
def header_fields(draw: Any) -> List[Tuple[bytes, bytes]]:
    """Mostly a valid request, sometimes broken in one of many ways."""
    fields = [
        (b":method", draw(st.sampled_from([b"GET", b"POST", b"GET", b"PUT"]))),
        (b":scheme", b"http"),
        (b":authority", b"localhost"),
        (b":path", draw(st.sampled_from(PATHS))),
    ]
    if draw(st.booleans()):
        fields = draw(st.permutations(fields))
    if draw(st.integers(0, 3)) == 0:
        del fields[draw(st.integers(0, len(fields) - 1))]
    extra = draw(st.lists(st.one_of(_regular, _pseudo), max_size=4))
    return fields + extra


def make(cls: Any, stream_id: int, *args: Any, **kwargs: Any) -> Any:
    """A hyperframe frame on ``stream_id`` even where hyperframe would refuse
    it (PING on a stream, DATA on stream 0...): the wrong stream is part of
    the fuzz."""
    f = (
        cls(1 if stream_id == 0 else stream_id, *args, **kwargs)
        if cls.stream_association != ("no-stream")
        else cls(0, *args, **kwargs)
    )
    f.stream_id = stream_id
    return f


@st.composite
def frame(draw: Any, encoder: hpack.Encoder) -> bytes:
    kind = draw(
        st.sampled_from(
            [
                "headers",
                "headers",
                "headers",
                "data",
                "data",
                "priority",
                "rst",
                "settings",
                "push_promise",
                "ping",
                "goaway",
                "window_update",
                "continuation",
                "raw",
            ]
        )
    )
    sid = draw(stream_ids)
    if kind == "headers":
        block = encoder.encode(draw(header_fields()))
        flags = {"END_HEADERS"}
        if draw(st.booleans()):
            flags.add("END_STREAM")
        pieces = 1 if draw(st.integers(0, 4)) else draw(st.integers(2, 4))
        if pieces == 1 or len(block) < pieces:
            f = make(HeadersFrame, sid, block, flags=flags)
            if draw(st.integers(0, 5)) == 0:
                f.flags.add("PRIORITY")
                f.depends_on, f.stream_weight = draw(stream_ids), draw(st.integers(0, 255))
            if draw(st.integers(0, 5)) == 0:
                f.flags.add("PADDED")
                f.pad_length = draw(st.integers(0, 30))
            return f.serialize()
        cut = len(block) // pieces
        out = make(HeadersFrame, sid, block[:cut], flags=flags - {"END_HEADERS"}).serialize()
        for i in range(1, pieces):
            last = i == pieces - 1
            out += make(
                ContinuationFrame,
                sid,
                block[i * cut :] if last else block[i * cut : (i + 1) * cut],
                flags={"END_HEADERS"} if last else set(),
            ).serialize()
        return out
    if kind == "data":
        flags = {"END_STREAM"} if draw(st.booleans()) else set()
        f = make(DataFrame, sid, draw(st.binary(max_size=200)), flags=flags)
        if draw(st.integers(0, 5)) == 0:
            f.flags.add("PADDED")
            f.pad_length = draw(st.integers(0, 30))
        return f.serialize()
    if kind == "priority":
        return make(
            PriorityFrame,
            sid,
            depends_on=draw(stream_ids),
            stream_weight=draw(st.integers(0, 255)),
            exclusive=draw(st.booleans()),
        ).serialize()
    if kind == "rst":
        return make(RstStreamFrame, sid, error_code=draw(st.integers(0, 20))).serialize()
    if kind == "settings":
        if draw(st.integers(0, 3)) == 0:
            return SettingsFrame(0, flags={"ACK"}).serialize()
        settings = draw(
            st.dictionaries(
                st.one_of(st.integers(1, 9), st.integers(0, 0xFFFF)),
                st.one_of(
                    st.sampled_from([0, 1, 2, 16384, 65535, 2**24, 2**31 - 1, 2**31]),
                    st.integers(0, 2**32 - 1),
                ),
                max_size=4,
            )
        )
        return SettingsFrame(0, settings=settings).serialize()
    if kind == "push_promise":
        return make(
            PushPromiseFrame,
            sid,
            promised_stream_id=draw(stream_ids),
            data=encoder.encode(draw(header_fields())),
            flags={"END_HEADERS"},
        ).serialize()
    if kind == "ping":
        return make(
            PingFrame,
            0 if draw(st.integers(0, 5)) else sid,
            opaque_data=draw(st.binary(min_size=8, max_size=8)),
            flags={"ACK"} if draw(st.booleans()) else set(),
        ).serialize()
    if kind == "goaway":
        return GoAwayFrame(
            0,
            last_stream_id=draw(stream_ids),
            error_code=draw(st.integers(0, 20)),
            additional_data=draw(st.binary(max_size=20)),
        ).serialize()
    if kind == "window_update":
        return make(
            WindowUpdateFrame,
            sid,
            window_increment=draw(
                st.one_of(st.integers(0, 2**31 - 1), st.sampled_from([0, 1, 65535, 2**31 - 1]))
            ),
        ).serialize()
    if kind == "continuation":
        flags = {"END_HEADERS"} if draw(st.booleans()) else set()
        return make(
            ContinuationFrame, sid, encoder.encode(draw(header_fields())), flags=flags
        ).serialize()
    # A frame of any type, flags and payload (length field right or not).
    payload = draw(st.binary(max_size=64))
    length = len(payload) if draw(st.integers(0, 4)) else draw(st.integers(0, 2**24 - 1))
    return (
        length.to_bytes(3, "big")
        + bytes([draw(st.integers(0, 255)), draw(st.integers(0, 255))])
        + struct.pack(">I", sid | (draw(st.integers(0, 1)) << 31))
        + payload
    )


@st.composite
def client_bytes(draw: Any, max_frames: int = 12) -> List[bytes]:
    """What a client sends after its preface: SETTINGS (maybe acking ours),
    then frames; mutated sometimes; cut into the reads the server gets."""
    encoder = hpack.Encoder()
    first = SettingsFrame(
        0,
        settings=draw(
            st.dictionaries(
                st.sampled_from([1, 2, 3, 4, 5, 6, 8, 9]),
                st.sampled_from([0, 1, 100, 16384, 65535, 2**20]),
                max_size=3,
            )
        ),
    ).serialize()
    if draw(st.booleans()):
        first += SettingsFrame(0, flags={"ACK"}).serialize()
    body = b"".join(draw(st.lists(frame(encoder), min_size=1, max_size=max_frames)))
    if draw(st.integers(0, 3)) == 0 and body:
        data = bytearray(body)
        for _ in range(draw(st.integers(1, 4))):
            if not data:
                break
            i = draw(st.integers(0, len(data) - 1))
            how = draw(st.integers(0, 2))
            if how == 0:
                data[i] = draw(st.integers(0, 255))
            elif how == 1:
                del data[i : i + draw(st.integers(1, 9))]
            else:
                data[i:i] = draw(st.binary(min_size=1, max_size=9))
        body = bytes(data)
    data = PREFACE + first + body
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=4))))
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)]) if data[a:b]]
