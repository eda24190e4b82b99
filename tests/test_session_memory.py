"""Client Session <-> server Session, in memory."""

from __future__ import annotations

from nghttp2_cffi import (
    DataReceived,
    RequestReceived,
    ResponseReceived,
    Session,
    StreamClosed,
)

REQUEST = [(":method", "GET"), (":scheme", "http"), (":authority", "example"), (":path", "/")]


def pump(a: Session, b: Session) -> list:
    """Move bytes both ways until both are quiet; the events b and a saw."""
    seen = []
    for _ in range(20):
        out_a, out_b = a.data_to_send(), b.data_to_send()
        if not out_a and not out_b:
            break
        seen += b.receive_data(out_a) if out_a else []
        seen += a.receive_data(out_b) if out_b else []
    return seen


def test_small_exchange():
    client, server = Session("client"), Session("server")
    sid = client.send_request(REQUEST)
    events = server.receive_data(client.data_to_send())
    (req,) = [e for e in events if isinstance(e, RequestReceived)]
    assert req.stream_id == sid and req.end_stream
    assert req.headers[3] == (b":path", b"/")
    server.send_response(sid, [(":status", "200")], b"hello")
    events = client.receive_data(server.data_to_send())
    kinds = [type(e) for e in events]
    assert ResponseReceived in kinds and StreamClosed in kinds
    data = b"".join(e.data for e in events if isinstance(e, DataReceived))
    assert data == b"hello"
