"""RFC 9218 extensible priorities in the binding, in memory: the Priority
field parser (nghttp2's where the library has one, ours elsewhere, both
against one table), the Session API on both sides, and nghttp2's scheduler
ordering DATA by urgency.  tests/interop/test_priorities.py has the same
over sockets, with the server and the client.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import pytest
from session_support import pump

from nghttp2_cffi import (
    DEFAULT_PRIORITY,
    FEATURES,
    DataReceived,
    InvalidArgumentError,
    Priority,
    PriorityUpdated,
    Session,
    SessionConfig,
    SettingCode,
    StreamClosedError,
    lib,
    parse_priority,
)
from nghttp2_cffi.priority import _parse, as_priority

RFC9218 = {SettingCode.NO_RFC7540_PRIORITIES: 1}
GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", b"/")]


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


def test_parsed_values_are_kept_bounded() -> None:
    """parse_priority keeps valid values it parsed (clients repeat a few
    on every request), up to a bound; invalid ones are parsed every time."""
    from nghttp2_cffi import priority as module

    for _ in range(2):
        assert parse_priority(b"u=0, i") == Priority(0, True)
        with pytest.raises(ValueError, match="not a valid Priority"):
            parse_priority(b"u=9")
    assert parse_priority(b"i", Priority(5, False)) == Priority(5, True)  # per base
    assert parse_priority(b"i") == Priority(3, True)
    for n in range(2 * module._PARSED_MAX):
        assert parse_priority(b"u=1, x=%d" % n) == Priority(1, False)
    assert len(module._PARSED) <= module._PARSED_MAX


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
    client = Session("client", config=SessionConfig(settings=client_settings or {}))
    server = Session(
        "server",
        config=SessionConfig(
            settings=RFC9218 if server_settings is None else server_settings,
            fallback_rfc7540_priorities=fallback,
        ),
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


def test_priority_updates_for_closed_streams_leave_nothing() -> None:
    """A PRIORITY_UPDATE for a stream already closed: where nghttp2 cannot
    be asked for a stream's priority (1.52), the session kept one record per
    such stream for as long as the connection lived."""
    client, server = _pair()
    closed = []
    for _ in range(20):
        sid = client.send_request([*GET, (b"priority", b"u=2")])
        pump(client, server)
        server.send_response(sid, [(b":status", b"204")])
        pump(client, server)
        closed.append(sid)
    for sid in closed:
        client.send_priority_update(sid, (5, True))
    _, events = pump(client, server)
    assert [e.stream_id for e in events if isinstance(e, PriorityUpdated)] == closed
    assert not server._priorities and not server._header_priorities
    # A stream not opened yet keeps its signal (RFC 9218 section 7.1).
    idle = closed[-1] + 2
    client.send_priority_update(idle, (1, False))
    pump(client, server)
    sid = client.send_request(GET)
    assert sid == idle
    pump(client, server)
    assert server.get_stream_priority(sid) == Priority(1, False)


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
    client = Session(
        "client", config=SessionConfig(settings={SettingCode.INITIAL_WINDOW_SIZE: 1 << 24})
    )
    client.set_local_window_size(1 << 30)
    server = Session("server", config=SessionConfig(settings=server_settings))
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
