"""Our Session against the ``h2`` library, an independent implementation:
our server with an h2 client, our client with an h2 server.  In memory."""

from __future__ import annotations

import io

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
from session_support import body_of, of, pattern

from nghttp2_cffi import (
    DataReceived,
    ErrorCode,
    GoAwayReceived,
    InformationalResponseReceived,
    PingAcknowledged,
    PingReceived,
    PushDisabledError,
    PushPromiseReceived,
    RequestReceived,
    ResponseReceived,
    Session,
    SessionConfig,
    SettingCode,
    SettingsAcknowledged,
    SettingsReceived,
    StreamClosed,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)

GET = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"example.com"),
    (b":path", b"/"),
]
POST = [
    (b":method", b"POST"),
    (b":scheme", b"https"),
    (b":authority", b"example.com"),
    (b":path", b"/upload"),
]


class H2Peer:
    """An h2 connection that acknowledges what it receives (unless told
    not to) and sends queued bodies as its flow-control windows allow."""

    def __init__(
        self, client_side: bool, auto_ack: bool = True, settings: dict | None = None
    ) -> None:
        config = h2.config.H2Configuration(client_side=client_side, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.auto_ack = auto_ack
        self.outgoing: dict[int, list] = {}  # stream id -> [data, end_stream, trailers]
        self.events: list = []

    def send_body(
        self, stream_id: int, data: bytes, end_stream: bool = True, trailers=None
    ) -> None:
        self.outgoing[stream_id] = [data, end_stream, trailers]
        self.flush()

    def flush(self) -> None:
        conn = self.conn
        for sid in list(self.outgoing):
            data, end_stream, trailers = self.outgoing[sid]
            while data:
                room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if room <= 0:
                    break
                conn.send_data(sid, data[:room])
                data = data[room:]
            self.outgoing[sid][0] = data
            if not data:
                del self.outgoing[sid]
                if trailers is not None:
                    conn.send_headers(sid, trailers, end_stream=True)
                elif end_stream:
                    conn.end_stream(sid)

    def receive(self, data: bytes) -> list:
        events = self.conn.receive_data(data)
        for event in events:
            if isinstance(event, h2.events.DataReceived) and self.auto_ack:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self.events += events
        self.flush()
        return events


def exchange(ours: Session, peer: H2Peer) -> tuple[list, list]:
    """Move bytes until both are quiet; (events ours saw, events h2 saw)."""
    seen_ours: list = []
    seen_h2: list = []
    for _ in range(10_000):
        out = ours.data_to_send()
        if out:
            seen_h2 += peer.receive(out)
        theirs = peer.conn.data_to_send()
        if theirs:
            seen_ours += ours.receive_data(theirs)
        if not out and not theirs:
            return seen_ours + ours.events(), seen_h2
    pytest.fail("no quiescence")


def h2_body(events: list, stream_id: int) -> bytes:
    return b"".join(e.data for e in of(events, h2.events.DataReceived, stream_id))


def h2_headers(headers) -> list:
    return [(bytes(n), bytes(v)) for n, v in headers]


# ---- our server, h2 client ----------------------------------------------------


@pytest.fixture
def with_h2_client():
    server, client = Session("server"), H2Peer(client_side=True)
    seen_s, seen_c = exchange(server, client)
    assert of(seen_s, SettingsReceived) and of(seen_c, h2.events.RemoteSettingsChanged)
    assert of(seen_c, h2.events.SettingsAcknowledged) and of(seen_s, SettingsAcknowledged)
    return server, client


def test_h2_client_get(with_h2_client):
    server, client = with_h2_client
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, GET + [(b"user-agent", b"h2")], end_stream=True)
    seen_s, _ = exchange(server, client)
    (req,) = of(seen_s, RequestReceived)
    assert req.stream_id == sid and req.end_stream
    assert req.headers == GET + [(b"user-agent", b"h2")]
    server.send_response(sid, [(":status", "200"), ("content-type", "text/plain")], b"hello h2")
    seen_s, seen_c = exchange(server, client)
    (resp,) = of(seen_c, h2.events.ResponseReceived)
    assert h2_headers(resp.headers) == [(b":status", b"200"), (b"content-type", b"text/plain")]
    assert h2_body(seen_c, sid) == b"hello h2"
    assert of(seen_c, h2.events.StreamEnded)[0].stream_id == sid
    assert StreamClosed(sid, 0) in seen_s


def test_h2_client_accepts_our_str_header_names(with_h2_client):
    # h2 validates what it receives: str names must reach it lower-cased.
    server, client = with_h2_client
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, GET, end_stream=True)
    exchange(server, client)
    server.send_response(sid, [(":status", "200"), ("X-Mixed-Case", "Value"), ("X-N", 7)])
    _, seen_c = exchange(server, client)
    (resp,) = of(seen_c, h2.events.ResponseReceived)
    assert h2_headers(resp.headers) == [
        (b":status", b"200"),
        (b"x-mixed-case", b"Value"),
        (b"x-n", b"7"),
    ]
    assert not of(seen_c, h2.events.StreamReset)


def test_h2_client_large_upload_and_download(with_h2_client):
    server, client = with_h2_client
    up, down = pattern(3 * 2**20 + 1, 1), pattern(2 * 2**20 + 5, 2)
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, POST)
    client.send_body(sid, up)
    seen_s, seen_c = exchange(server, client)
    assert body_of(seen_s, sid) == up
    assert of(seen_s, DataReceived)[-1].end_stream
    # Our server opened h2's windows by itself.
    updates = of(seen_c, h2.events.WindowUpdated)
    assert {u.stream_id for u in updates} >= {0, sid}
    server.send_response(sid, [(":status", "200")], down)
    seen_s, seen_c = exchange(server, client)
    assert h2_body(seen_c, sid) == down
    assert of(seen_c, h2.events.StreamEnded)
    assert of(seen_s, WindowUpdated), "h2's acknowledgements reached us"


def test_h2_client_streamed_reader_response(with_h2_client):
    server, client = with_h2_client
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, GET, end_stream=True)
    exchange(server, client)
    data = pattern(500_000, 3)
    server.send_response(sid, [(":status", "200")], io.BytesIO(data))
    _, seen_c = exchange(server, client)
    assert h2_body(seen_c, sid) == data


def test_h2_client_trailers_both_ways(with_h2_client):
    server, client = with_h2_client
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, POST + [(b"te", b"trailers")])
    client.send_body(sid, b"grpc-frame", trailers=[(b"x-client-trailer", b"yes")])
    seen_s, _ = exchange(server, client)
    assert body_of(seen_s, sid) == b"grpc-frame"
    assert of(seen_s, TrailersReceived) == [TrailersReceived(sid, [(b"x-client-trailer", b"yes")])]
    server.send_response(sid, [(":status", "200")], b"reply", trailers=[("grpc-status", "0")])
    _, seen_c = exchange(server, client)
    assert h2_body(seen_c, sid) == b"reply"
    (trailers,) = of(seen_c, h2.events.TrailersReceived)
    assert h2_headers(trailers.headers) == [(b"grpc-status", b"0")]
    assert of(seen_c, h2.events.StreamEnded)


def test_h2_client_informational_response(with_h2_client):
    server, client = with_h2_client
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, POST + [(b"expect", b"100-continue")])
    exchange(server, client)
    server.send_informational_response(sid, [(":status", "100")])
    _, seen_c = exchange(server, client)
    (info,) = of(seen_c, h2.events.InformationalResponseReceived)
    assert h2_headers(info.headers) == [(b":status", b"100")]
    client.send_body(sid, b"now the body")
    seen_s, _ = exchange(server, client)
    assert body_of(seen_s, sid) == b"now the body"


def test_h2_client_receives_push(with_h2_client):
    server, client = with_h2_client
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, GET, end_stream=True)
    exchange(server, client)
    pushed_request = [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", b"example.com"),
        (b":path", b"/style.css"),
    ]
    promised = server.push_promise(sid, pushed_request)
    server.send_response(promised, [(":status", "200")], b"body{}")
    server.send_response(sid, [(":status", "200")], b"<html>")
    _, seen_c = exchange(server, client)
    (push,) = of(seen_c, h2.events.PushedStreamReceived)
    assert push.parent_stream_id == sid and push.pushed_stream_id == promised
    assert h2_headers(push.headers) == pushed_request
    assert h2_body(seen_c, promised) == b"body{}"
    assert h2_body(seen_c, sid) == b"<html>"
    ended = {e.stream_id for e in of(seen_c, h2.events.StreamEnded)}
    assert ended == {sid, promised}


def test_h2_client_with_push_disabled():
    server = Session("server")
    client = H2Peer(client_side=True, settings={h2.settings.SettingCodes.ENABLE_PUSH: 0})
    exchange(server, client)
    assert server.remote_settings[SettingCode.ENABLE_PUSH] == 0
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, GET, end_stream=True)
    exchange(server, client)
    with pytest.raises(PushDisabledError):
        server.push_promise(sid, GET[:3] + [(b":path", b"/x")])
    server.send_response(sid, [(":status", "204")])
    _, seen_c = exchange(server, client)
    assert not of(seen_c, h2.events.PushedStreamReceived)
    assert of(seen_c, h2.events.StreamEnded)


def test_h2_client_resets_and_is_reset(with_h2_client):
    server, client = with_h2_client
    a = client.conn.get_next_available_stream_id()
    client.conn.send_headers(a, POST)
    b = a + 2
    client.conn.send_headers(b, GET, end_stream=True)
    exchange(server, client)
    client.conn.reset_stream(a, h2.errors.ErrorCodes.CANCEL)
    seen_s, _ = exchange(server, client)
    assert of(seen_s, StreamReset) == [StreamReset(a, ErrorCode.CANCEL)]
    assert StreamClosed(a, ErrorCode.CANCEL) in seen_s
    server.send_response(b, [(":status", "200")], pattern(200_000, 4))
    server.reset_stream(b, ErrorCode.REFUSED_STREAM)
    seen_s, seen_c = exchange(server, client)
    (reset,) = of(seen_c, h2.events.StreamReset)
    assert reset.stream_id == b and reset.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
    assert reset.remote_reset
    assert StreamClosed(b, ErrorCode.REFUSED_STREAM) in seen_s
    assert server._bodies == {}


def test_h2_client_stalls_at_our_window():
    server = Session("server", config=SessionConfig(auto_window_update=False))
    client = H2Peer(client_side=True)
    exchange(server, client)
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, POST)
    data = pattern(200_000, 5)
    client.send_body(sid, data)
    seen_s, _ = exchange(server, client)
    got = body_of(seen_s, sid)
    assert len(got) == 65535
    assert client.conn.local_flow_control_window(sid) == 0
    assert client.outgoing, "h2 still holds the rest"
    # Nothing more moves until we acknowledge.
    seen_s, _ = exchange(server, client)
    assert of(seen_s, DataReceived) == []
    received = got
    while len(received) < len(data):
        server.acknowledge_received_data(len(got), sid)
        seen_s, seen_c = exchange(server, client)
        assert of(seen_c, h2.events.WindowUpdated), "our acknowledgement opened h2's window"
        got = body_of(seen_s, sid)
        assert 0 < len(got) <= 65535
        received += got
    assert received == data


def test_h2_client_ping_and_settings(with_h2_client):
    server, client = with_h2_client
    client.conn.ping(b"h2-ping!")
    client.conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 33})
    seen_s, seen_c = exchange(server, client)
    assert of(seen_s, PingReceived) == [PingReceived(b"h2-ping!")]
    (ack,) = of(seen_c, h2.events.PingAckReceived)
    assert ack.ping_data == b"h2-ping!"
    assert of(seen_s, SettingsReceived) == [
        SettingsReceived({SettingCode.MAX_CONCURRENT_STREAMS: 33})
    ]
    assert of(seen_c, h2.events.SettingsAcknowledged)
    server.ping(b"ours-abc")
    server.update_settings({SettingCode.MAX_CONCURRENT_STREAMS: 5})
    seen_s, seen_c = exchange(server, client)
    assert of(seen_c, h2.events.PingReceived)[0].ping_data == b"ours-abc"
    assert of(seen_s, PingAcknowledged) == [PingAcknowledged(b"ours-abc")]
    (changed,) = of(seen_c, h2.events.RemoteSettingsChanged)
    assert changed.changed_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS].new_value == 5
    assert of(seen_s, SettingsAcknowledged)


def test_h2_client_sees_goaway(with_h2_client):
    server, client = with_h2_client
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, GET, end_stream=True)
    exchange(server, client)
    server.send_goaway(ErrorCode.NO_ERROR, debug_data=b"maintenance")
    _, seen_c = exchange(server, client)
    (gone,) = of(seen_c, h2.events.ConnectionTerminated)
    assert gone.error_code == h2.errors.ErrorCodes.NO_ERROR
    assert gone.last_stream_id == sid
    assert gone.additional_data == b"maintenance"


def test_h2_client_many_streams(with_h2_client):
    server, client = with_h2_client
    sids = []
    for i in range(60):
        sid = client.conn.get_next_available_stream_id()
        client.conn.send_headers(sid, GET[:3] + [(b":path", b"/%d" % i)], end_stream=True)
        sids.append(sid)
    seen_s, _ = exchange(server, client)
    reqs = of(seen_s, RequestReceived)
    assert [r.stream_id for r in reqs] == sids
    for r in reqs:
        path = dict(r.headers)[b":path"]
        server.send_response(r.stream_id, [(":status", "200")], path * 1000)
    _, seen_c = exchange(server, client)
    for i, sid in enumerate(sids):
        assert h2_body(seen_c, sid) == b"/%d" % i * 1000


# ---- our client, h2 server ----------------------------------------------------


@pytest.fixture
def with_h2_server():
    client, server = Session("client"), H2Peer(client_side=False)
    exchange(client, server)
    return client, server


def test_h2_server_get(with_h2_server):
    client, server = with_h2_server
    sid = client.send_request(GET + [(b"accept", b"text/html")])
    _, seen_h = exchange(client, server)
    (req,) = of(seen_h, h2.events.RequestReceived)
    assert req.stream_id == sid
    assert h2_headers(req.headers) == GET + [(b"accept", b"text/html")]
    assert of(seen_h, h2.events.StreamEnded)[0].stream_id == sid
    server.conn.send_headers(sid, [(b":status", b"200"), (b"server", b"h2")])
    server.send_body(sid, b"from h2")
    seen_c, _ = exchange(client, server)
    assert of(seen_c, ResponseReceived) == [
        ResponseReceived(sid, [(b":status", b"200"), (b"server", b"h2")], False)
    ]
    assert body_of(seen_c, sid) == b"from h2"
    assert StreamClosed(sid, 0) in seen_c


def test_h2_server_large_bodies(with_h2_server):
    client, server = with_h2_server
    up, down = pattern(2 * 2**20 + 11, 6), pattern(4 * 2**20 + 13, 7)
    sid = client.send_request(POST, up)
    _, seen_h = exchange(client, server)
    assert h2_body(seen_h, sid) == up
    assert of(seen_h, h2.events.StreamEnded)
    server.conn.send_headers(sid, [(b":status", b"200")])
    server.send_body(sid, down)
    seen_c, seen_h = exchange(client, server)
    assert body_of(seen_c, sid) == down
    assert of(seen_h, h2.events.WindowUpdated), "we opened h2's windows"


def test_h2_server_trailers_both_ways(with_h2_server):
    client, server = with_h2_server
    sid = client.send_request(POST, b"request", trailers=[("x-req-t", "1")])
    _, seen_h = exchange(client, server)
    assert h2_body(seen_h, sid) == b"request"
    (trailers,) = of(seen_h, h2.events.TrailersReceived)
    assert h2_headers(trailers.headers) == [(b"x-req-t", b"1")]
    server.conn.send_headers(sid, [(b":status", b"200")])
    server.send_body(sid, b"response", trailers=[(b"x-resp-t", b"2")])
    seen_c, _ = exchange(client, server)
    assert body_of(seen_c, sid) == b"response"
    assert of(seen_c, TrailersReceived) == [TrailersReceived(sid, [(b"x-resp-t", b"2")])]
    assert StreamClosed(sid, 0) in seen_c


def test_h2_server_streamed_request(with_h2_server):
    client, server = with_h2_server
    sid = client.send_request(POST, end_stream=False)
    exchange(client, server)
    for part in (b"one ", b"two ", b"three"):
        client.send_data(sid, part)
    client.end_stream(sid)
    _, seen_h = exchange(client, server)
    assert h2_body(seen_h, sid) == b"one two three"
    assert of(seen_h, h2.events.StreamEnded)


def test_h2_server_informational_and_push(with_h2_server):
    client, server = with_h2_server
    sid = client.send_request(GET)
    exchange(client, server)
    server.conn.send_headers(sid, [(b":status", b"103"), (b"link", b"</a.js>")])
    pushed_req = GET[:3] + [(b":path", b"/a.js")]
    promised = server.conn.get_next_available_stream_id()
    server.conn.push_stream(sid, promised, pushed_req)
    server.conn.send_headers(promised, [(b":status", b"200")])
    server.send_body(promised, b"js();")
    server.conn.send_headers(sid, [(b":status", b"200")], end_stream=True)
    seen_c, _ = exchange(client, server)
    assert of(seen_c, InformationalResponseReceived) == [
        InformationalResponseReceived(sid, [(b":status", b"103"), (b"link", b"</a.js>")])
    ]
    assert of(seen_c, PushPromiseReceived) == [PushPromiseReceived(sid, promised, pushed_req)]
    assert of(seen_c, ResponseReceived, promised) == [
        ResponseReceived(promised, [(b":status", b"200")], False)
    ]
    assert body_of(seen_c, promised) == b"js();"
    assert of(seen_c, ResponseReceived, sid)[0].end_stream
    closed = {e.stream_id for e in of(seen_c, StreamClosed)}
    assert closed == {sid, promised}


def test_h2_server_resets(with_h2_server):
    client, server = with_h2_server
    a = client.send_request(GET)
    b = client.send_request(POST, end_stream=False)
    exchange(client, server)
    server.conn.reset_stream(a, h2.errors.ErrorCodes.INTERNAL_ERROR)
    seen_c, _ = exchange(client, server)
    assert of(seen_c, StreamReset) == [StreamReset(a, ErrorCode.INTERNAL_ERROR)]
    assert StreamClosed(a, ErrorCode.INTERNAL_ERROR) in seen_c
    client.reset_stream(b, ErrorCode.CANCEL)
    seen_c, seen_h = exchange(client, server)
    (reset,) = of(seen_h, h2.events.StreamReset)
    assert reset.stream_id == b and reset.error_code == h2.errors.ErrorCodes.CANCEL
    assert StreamClosed(b, ErrorCode.CANCEL) in seen_c
    assert client._bodies == {}


def test_h2_server_stalls_at_our_window():
    client = Session("client", config=SessionConfig(auto_window_update=False))
    server = H2Peer(client_side=False)
    exchange(client, server)
    sid = client.send_request(GET)
    exchange(client, server)
    data = pattern(150_000, 8)
    server.conn.send_headers(sid, [(b":status", b"200")])
    server.send_body(sid, data)
    seen_c, _ = exchange(client, server)
    received = body_of(seen_c, sid)
    assert len(received) == 65535
    assert server.conn.local_flow_control_window(sid) == 0
    while len(received) < len(data):
        client.acknowledge_received_data(len(body_of(seen_c, sid)), sid)
        seen_c, seen_h = exchange(client, server)
        assert of(seen_h, h2.events.WindowUpdated)
        received += body_of(seen_c, sid)
    assert received == data
    assert StreamClosed(sid, 0) in seen_c


def test_h2_server_goaway_and_ping(with_h2_server):
    client, server = with_h2_server
    client.ping(b"client!!")
    seen_c, seen_h = exchange(client, server)
    assert of(seen_h, h2.events.PingReceived)[0].ping_data == b"client!!"
    assert of(seen_c, PingAcknowledged) == [PingAcknowledged(b"client!!")]
    sid = client.send_request(GET)
    exchange(client, server)
    server.conn.close_connection(
        h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, additional_data=b"too fast", last_stream_id=sid
    )
    seen_c, _ = exchange(client, server)
    assert of(seen_c, GoAwayReceived) == [
        GoAwayReceived(sid, ErrorCode.ENHANCE_YOUR_CALM, b"too fast")
    ]
