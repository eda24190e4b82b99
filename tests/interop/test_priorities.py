"""RFC 9218 extensible priorities.

In memory: the Priority field parser (nghttp2's where the library has one,
ours elsewhere, both against one table), the Session API on both sides, and
nghttp2's scheduler ordering DATA by urgency.  Over sockets: our server
under a frame-level ``h2`` client, where an urgent response overtakes a
bulk download on the same connection, and our Client's priority API.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Iterator, List, Optional, Tuple

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from interop_support import TIMEOUT

from client import Client
from nghttp2_cffi import (
    DEFAULT_PRIORITY,
    FEATURES,
    DataReceived,
    InvalidArgumentError,
    Priority,
    PriorityUpdated,
    Session,
    SettingCode,
    StreamClosedError,
    lib,
    parse_priority,
)
from nghttp2_cffi.priority import _parse, as_priority
from server import BaseRequestHandler

RFC9218 = {SettingCode.NO_RFC7540_PRIORITIES: 1}
GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", b"/")]


def pump(a: Session, b: Session, limit: int = 0) -> Tuple[list, list]:
    """Move bytes both ways until quiet (``limit``: bytes per send)."""
    seen_a: list = []
    seen_b: list = []
    for _ in range(100_000):
        out_a, out_b = a.data_to_send(limit), b.data_to_send(limit)
        if not out_a and not out_b:
            return seen_a, seen_b
        if out_a:
            seen_b += b.receive_data(out_a)
        if out_b:
            seen_a += a.receive_data(out_b)
    pytest.fail("sessions still talking")


# ---- the Priority field ----------------------------------------------------

# (value, expected or None for "not a valid Priority field value"); the
# expectations are libnghttp2 1.64's nghttp2_extpri_parse_priority.
FIELDS = [
    ("u=1", (1, False)),
    ("u=1, i", (1, True)),
    ("i, u=1", (1, True)),
    ("u=1,i", (1, True)),
    ("u=1 ,i", (1, True)),
    ("u=1\t,\ti", (1, True)),
    (" u=1 ", (1, False)),
    ("", (3, False)),
    ("u=01", (1, False)),
    ("u=1, u=2", (2, False)),
    ("u=1, i=?0", (1, False)),
    ("i=?1;q", (3, True)),
    ("u=7;x=?1", (7, False)),
    ("u=1;a=b, i", (1, True)),
    ("x=(1 2), u=4", (4, False)),
    ("x=( 1  2 ), u=5", (5, False)),
    ("x=(1;a=2 b);c, u=6", (6, False)),
    ("x=tok/en:1, u=2", (2, False)),
    ('x="a\\"b", u=2', (2, False)),
    ("u=1, x=:aGk=:", (1, False)),
    ("a=@1, u=2", (2, False)),
    ("x=1.234, u=2", (2, False)),
    ("x=-0.5,u=0", (0, False)),
    ("*k=1, u=2", (2, False)),
    ("u=8", None),
    ("u=-1", None),
    ("u=1.5", None),
    ('u="1"', None),
    ("i=1", None),
    ("U=1", None),
    ("u=1,", None),
    ("u=1,,i", None),
    ("u=1 i", None),
    ("u=", None),
    ("u=1;", None),
    ("u=1;A=1", None),
    ("-k=1", None),
    ("x=?2, u=1", None),
    ('x="a\\b", u=2', None),
    ("x=1.2345, u=2", None),
    ("x=1234567890123.5,u=0", None),
    ("x=(1 2)(3), u=5", None),
    ("u=0000000000000001", None),
]


@pytest.mark.parametrize(("value", "expected"), FIELDS)
def test_parse_priority(value: str, expected: Optional[Tuple[int, bool]]) -> None:
    # parse_priority is nghttp2's parser on 1.53+, ours before; _parse is
    # ours everywhere: both must give the table's answers.
    for parse in (parse_priority, _parse):
        if expected is None:
            with pytest.raises(ValueError, match="Priority field value"):
                parse(value.encode(), DEFAULT_PRIORITY)
        else:
            assert parse(value.encode(), DEFAULT_PRIORITY) == Priority(*expected), parse


def test_parse_priority_starts_from_base() -> None:
    assert parse_priority(b"i", Priority(6, False)) == Priority(6, True)
    assert parse_priority("u=0") == Priority(0, False)


def test_priority_values() -> None:
    assert Priority(0, True).field_value() == b"u=0, i"
    assert Priority(3, False).field_value() == b""
    assert Priority(3, True).field_value() == b"i"
    for p in (Priority(0, True), Priority(7, False), Priority(3, True)):
        assert parse_priority(p.field_value()) == p
    assert as_priority(2) == Priority(2, False)
    assert as_priority((5, 1)) == Priority(5, True)
    with pytest.raises(ValueError, match="0 to 7"):
        as_priority(8)
    with pytest.raises(TypeError):
        as_priority(("1", False))  # type: ignore[arg-type]


# ---- the Session API ---------------------------------------------------------


def _pair(
    server_settings: Optional[Dict[int, int]] = None,
    client_settings: Optional[Dict[int, int]] = None,
    fallback: bool = False,
) -> Tuple[Session, Session]:
    client = Session("client", settings=client_settings or {})
    server = Session(
        "server",
        settings=RFC9218 if server_settings is None else server_settings,
        fallback_rfc7540_priorities=fallback,
    )
    pump(client, server)
    return client, server


def test_server_follows_client_signals() -> None:
    client, server = _pair()
    assert server.extensible_priorities and client.extensible_priorities
    a = client.send_request([*GET, (b"priority", b"u=1, i")])
    b = client.send_request(GET)
    c = client.send_request([*GET, (b"priority", b"u=1"), (b"priority", b"i")])
    d = client.send_request([*GET, (b"priority", b"u=1"), (b"priority", b"u=9")])
    pump(client, server)
    assert server.get_stream_priority(a) == Priority(1, True)
    assert server.get_stream_priority(b) == DEFAULT_PRIORITY
    assert server.get_stream_priority(c) == Priority(1, True)  # fields add up
    assert server.get_stream_priority(d) == DEFAULT_PRIORITY  # one bad field voids them

    client.send_priority_update(b, (6, True))
    _, events = pump(client, server)
    assert events == [PriorityUpdated(b, Priority(6, True), b"u=6, i")]
    assert server.get_stream_priority(b) == Priority(6, True)

    # A value nghttp2 cannot parse changes nothing; the event says so.
    client.send_priority_update(b, 0)
    assert lib.nghttp2_submit_priority_update(client.raw, 0, b, b"u=9", 3) == 0  # frame level
    _, events = pump(client, server)
    assert events == [
        PriorityUpdated(b, Priority(0, False), b"u=0"),
        PriorityUpdated(b, None, b"u=9"),
    ]
    assert server.get_stream_priority(b) == Priority(0, False)


def test_server_sets_priorities() -> None:
    client, server = _pair()
    a = client.send_request(GET)
    b = client.send_request(GET)
    pump(client, server)
    server.set_stream_priority(a, Priority(7, True))
    assert server.get_stream_priority(a) == Priority(7, True)
    server.set_stream_priority(b, 5, ignore_client_signal=True)
    client.send_priority_update(a, 1)
    client.send_priority_update(b, 1)
    pump(client, server)
    assert server.get_stream_priority(a) == Priority(1, False)  # the client may change it
    assert server.get_stream_priority(b) == Priority(5, False)  # not this one
    with pytest.raises(StreamClosedError):
        server.get_stream_priority(99)
    with pytest.raises(StreamClosedError):
        server.set_stream_priority(99, 1)
    with pytest.raises(ValueError, match="0 to 7"):
        server.set_stream_priority(a, 9)


def test_sides() -> None:
    client, server = _pair()
    sid = client.send_request(GET)
    pump(client, server)
    with pytest.raises(InvalidArgumentError, match="server side"):
        client.get_stream_priority(sid)
    with pytest.raises(InvalidArgumentError, match="send_priority_update"):
        client.set_stream_priority(sid, 0)
    with pytest.raises(InvalidArgumentError, match="set_stream_priority"):
        server.send_priority_update(sid, 0)


def test_closed_streams_are_forgotten() -> None:
    client, server = _pair()
    sid = client.send_request([*GET, (b"priority", b"u=0")])
    pump(client, server)
    server.set_stream_priority(sid, 6, ignore_client_signal=True)
    server.send_response(sid, [(b":status", b"200")], b"ok")
    pump(client, server)
    with pytest.raises(StreamClosedError):
        server.get_stream_priority(sid)
    # The session's own records (used where nghttp2 cannot be asked) are gone.
    assert not server._priorities and not server._header_priorities
    assert not server._priority_fixed


@pytest.mark.parametrize(
    ("server_settings", "client_settings", "fallback", "active"),
    [
        ({}, RFC9218, False, False),  # the server did not announce it
        ({SettingCode.NO_RFC7540_PRIORITIES: 0}, RFC9218, False, False),
        (RFC9218, {}, False, True),  # RFC 9218 for every client
        (RFC9218, {}, True, False),  # RFC 7540 for clients that do not announce it
        (RFC9218, RFC9218, True, True),
    ],
)
def test_when_rfc9218_applies(
    server_settings: Dict[int, int], client_settings: Dict[int, int], fallback: bool, active: bool
) -> None:
    if fallback and not FEATURES["server_fallback_rfc7540_priorities"]:
        pytest.skip("this libnghttp2 has no nghttp2_option_set_server_fallback_rfc7540_priorities")
    client, server = _pair(server_settings, client_settings, fallback)
    assert server.extensible_priorities is active
    sid = client.send_request([*GET, (b"priority", b"u=0, i")])
    pump(client, server)
    client.send_priority_update(sid, 1)  # sent only when the server announced RFC 9218
    _, events = pump(client, server)
    assert [e for e in events if isinstance(e, PriorityUpdated)] == (
        [PriorityUpdated(sid, Priority(1, False), b"u=1")] if active else []
    )
    assert server.get_stream_priority(sid) == (Priority(1, False) if active else DEFAULT_PRIORITY)


def _data_order(server_settings: Dict[int, int], priorities: List[bytes]) -> List[int]:
    """Stream ids of the DATA the client receives when the server answers
    every request at once with 256 KiB, requests sent in order with these
    ``priority`` fields (b"": none)."""
    client = Session("client", settings={SettingCode.INITIAL_WINDOW_SIZE: 1 << 24})
    client.set_local_window_size(1 << 30)
    server = Session("server", settings=server_settings)
    pump(client, server)
    sids = [client.send_request([*GET, (b"priority", p)] if p else GET) for p in priorities]
    pump(client, server)
    for sid in sids:
        server.send_response(sid, [(b":status", b"200")], b"x" * (256 * 1024))
    client_events, _ = pump(client, server, limit=16 * 1024)
    order = []
    for e in client_events:
        if isinstance(e, DataReceived) and e.data and (not order or order[-1] != e.stream_id):
            order.append(e.stream_id)
    return order


def test_scheduler_orders_by_urgency() -> None:
    # RFC 9218: the most urgent first, each non-incremental response whole.
    assert _data_order(RFC9218, [b"u=7", b"u=5", b"u=0"]) == [5, 3, 1]
    # Incremental responses of equal urgency share the connection.
    order = _data_order(RFC9218, [b"u=2, i", b"u=2, i"])
    assert len(order) > 2 and set(order) == {1, 3}
    # Equal urgency, not incremental: one after the other, in request order.
    assert _data_order(RFC9218, [b"", b""]) == [1, 3]
    # Without SETTINGS_NO_RFC7540_PRIORITIES the field means nothing: RFC
    # 7540's default tree shares the connection round-robin.
    order = _data_order({}, [b"u=7", b"u=5", b"u=0"])
    assert order[:6] == [1, 3, 5, 1, 3, 5]


# ---- over sockets: our server, an h2 client, our Client ----------------------

MIB = 1 << 20
#: Bulk bytes received before the urgent request goes out.
HEAD_START = 1 * MIB
#: Bulk bytes after which the urgent response counts as stuck behind the bulk.
CAP = 8 * MIB
_bodies: Dict[str, bytes] = {}


class PriorityHandler(BaseRequestHandler):
    """/bulk: 50 MiB; /urgent: 1 MiB; /demoted: /bulk, rescheduled to u=7 by
    the handler; /echo: the stream's priority as ``urgency,incremental``;
    /wait: that too, once a PRIORITY_UPDATE changed it."""

    def on_headers(self) -> Any:
        path = self.path or b""
        if path == b"/echo":
            p = self.priority
            return self.send_response(200, body=f"{p.urgency},{int(p.incremental)}")
        if path == b"/wait":
            return self._wait_for_update()
        if path == b"/demoted":
            self.set_priority(7)
            path = b"/bulk"
        self.send_response(200, body=_bodies[path.decode()])
        return None

    async def _wait_for_update(self) -> None:
        first = self.priority
        self.begin_response(200)
        for _ in range(int(TIMEOUT / 0.01)):
            if self.priority != first:
                break
            await asyncio.sleep(0.01)
        p = self.priority
        await self.write(f"{p.urgency},{int(p.incremental)}")
        self.end_response()


@pytest.fixture(scope="module", autouse=True)
def bodies() -> Iterator[None]:
    _bodies["/bulk"] = b"b" * (50 * MIB)
    _bodies["/urgent"] = b"u" * MIB
    _bodies["/urgent2m"] = b"u" * (2 * MIB)
    yield
    _bodies.clear()


def _request(path: str, priority: Optional[bytes]) -> List[Tuple[bytes, bytes]]:
    fields = [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", b"127.0.0.1"),
        (b":path", path.encode()),
    ]
    return fields + [(b"priority", priority)] if priority is not None else fields


async def _bulk_during_urgent(
    port: int,
    *,
    announce: bool,
    bulk: Optional[bytes],
    urgent: Optional[bytes],
    bulk_path: str = "/bulk",
) -> int:
    """Bulk bytes an h2 client receives between sending the urgent request
    and that response's END_STREAM (CAP: still not complete by then).

    The client opens the connection window (64 KiB, never enlarged) only as
    it processes DATA: the server can never run far ahead of it, so what it
    sends next is its scheduler's choice, not data already in the pipe.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    initial: Dict[int, int] = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16 * MIB}
    if announce:
        initial[int(SettingCode.NO_RFC7540_PRIORITIES)] = 1
    conn.local_settings = h2.settings.Settings(client=True, initial_values=initial)
    conn.initiate_connection()
    bulk_id = conn.get_next_available_stream_id()
    conn.send_headers(bulk_id, _request(bulk_path, bulk), end_stream=True)
    writer.write(conn.data_to_send())
    received: Dict[int, int] = {bulk_id: 0}
    urgent_id = 0
    at_urgent = 0
    try:
        while True:
            data = await asyncio.wait_for(reader.read(1 << 16), TIMEOUT)
            assert data, "the server closed the connection"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    received[event.stream_id] = received.get(event.stream_id, 0) + len(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == urgent_id:
                    assert received[urgent_id] == MIB
                    return received[bulk_id] - at_urgent
                elif isinstance(event, h2.events.StreamReset):
                    pytest.fail(f"stream {event.stream_id} reset: {event.error_code!r}")
            if not urgent_id and received[bulk_id] >= HEAD_START:
                urgent_id = conn.get_next_available_stream_id()
                conn.send_headers(urgent_id, _request("/urgent", urgent), end_stream=True)
                at_urgent = received[bulk_id]
            if urgent_id and received[bulk_id] - at_urgent >= CAP:
                return CAP
            writer.write(conn.data_to_send())
    finally:
        writer.close()


@pytest.mark.asyncio
async def test_urgent_response_overtakes_bulk_download(start_server: Any) -> None:
    server = await start_server(PriorityHandler)
    port = server.address[1]
    # The client announces RFC 9218 and asks: bulk u=7, urgent u=0.
    with_priorities = await _bulk_during_urgent(port, announce=True, bulk=b"u=7", urgent=b"u=0")
    # The same fields from a client that does not announce
    # SETTINGS_NO_RFC7540_PRIORITIES: the server keeps RFC 7540 for it, whose
    # default tree shares the connection round-robin.
    round_robin = await _bulk_during_urgent(port, announce=False, bulk=b"u=7", urgent=b"u=0")
    # RFC 9218 without fields: both u=3, not incremental: first come, first
    # served, so the urgent response waits behind the 50 MiB.
    first_come = await _bulk_during_urgent(port, announce=True, bulk=None, urgent=None)
    # The handler demotes a bulk response the client asked for at u=0.
    demoted = await _bulk_during_urgent(
        port, announce=True, bulk=b"u=0", urgent=None, bulk_path="/demoted"
    )
    print(
        f"\nbulk bytes received while a 1 MiB urgent response was sent: "
        f"RFC 9218 u=7 vs u=0: {with_priorities}, RFC 7540 (round-robin): {round_robin}, "
        f"RFC 9218 no fields: {first_come} (cap {CAP}), handler demoted bulk: {demoted}"
    )
    # Only what was in flight (at most one 64 KiB window) gets ahead of it.
    assert with_priorities <= 128 * 1024
    assert demoted <= 128 * 1024
    # Round-robin gives the bulk stream about as much as the urgent one.
    assert round_robin >= MIB // 2
    assert with_priorities * 4 <= round_robin
    assert first_come == CAP


@pytest.mark.asyncio
async def test_client_priority_api(start_server: Any) -> None:
    server = await start_server(PriorityHandler)
    async with Client(f"http://127.0.0.1:{server.address[1]}", timeout=TIMEOUT) as c:
        assert (await c.get("/echo", priority=(0, True))).text == "0,1"
        assert (await c.get("/echo", priority=6)).text == "6,0"
        assert (await c.get("/echo")).text == "3,0"
        async with c.stream("GET", "/wait", priority=5) as r:
            r.set_priority(1, True)  # PRIORITY_UPDATE
            assert (await r.aread()) == b"1,1"
