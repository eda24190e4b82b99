"""The C event builder (nghttp2_cffi._events, CPython) against the Python
loop it stands in for (Session._collect_py, PyPy's path): the same exchanges,
driven both ways, must give equal events, of the same types, and leave the
session in the same state."""

from __future__ import annotations

import platform
from typing import Any, Callable, List, Tuple

import pytest
from session_support import of, pattern

import nghttp2_cffi.session as session_module
from nghttp2_cffi import (
    DataReceived,
    Event,
    InformationalResponseReceived,
    RequestReceived,
    ResponseReceived,
    Session,
    SessionConfig,
    SettingCode,
    StreamClosed,
)

POST = [(":method", "POST"), (":scheme", "http"), (":authority", "example"), (":path", "/up")]
MANY = [
    (":method", "GET"),
    (":scheme", "https"),
    (":authority", "example.org:8443"),
    (":path", "/a/b?c=d&e=%20f"),
    ("accept", "*/*"),
    ("priority", "u=2"),
    ("x-empty", ""),
    ("cookie", "a=1"),
    ("cookie", "b=2"),
    ("x-long", "v" * 5000),
    ("x-bytes", b"\x80\xff tab\there"),
]
needs_c = pytest.mark.skipif(
    session_module._build is None,
    reason="nghttp2_cffi._events is not built here (PyPy, NGHTTP2_CFFI_PURE_EVENTS=1, "
    "or the optional extension failed to build)",
)


def exchange(chunk: int) -> Tuple[List[Event], List[Event], dict]:
    """A server and a client with requests of every shape, bodies sent as
    bytes (kept in the session's _bodies until the stream closes), streamed
    ones (DATA_REQUESTED records between the others), trailers, a reset, a
    ping, a PRIORITY_UPDATE, a 103 before a response; the client's bytes reach the server ``chunk``
    bytes at a time (DATA then comes from the glue's copy, not the input).
    Returns what each side saw and the server's state afterwards."""
    config = SessionConfig(settings={SettingCode.NO_RFC7540_PRIORITIES: 1})
    client, server = Session("client"), Session("server", config=config)
    seen_s: List[Event] = []
    seen_c: List[Event] = []

    def pump() -> None:
        for _ in range(1000):
            out_c = client.data_to_send()
            out_s = server.data_to_send()
            seen_s.extend(server.events())
            seen_c.extend(client.events())
            if not out_c and not out_s:
                return
            for i in range(0, len(out_c), chunk):
                seen_s.extend(server.receive_data(out_c[i : i + chunk]))
            if out_s:
                seen_c.extend(client.receive_data(out_s))
        pytest.fail("still talking")

    pump()
    ids = [client.send_request(MANY) for _ in range(3)]
    ids.append(client.send_request(POST, pattern(70_000, 1)))
    ids.append(client.send_request(POST, b"", trailers=[("x-sum", "0")]))
    ids.append(client.send_request(POST, pattern(10, 2), end_stream=False))
    pump()
    client.send_priority_update(ids[0], (1, True))
    client.ping(b"12345678")
    for sid in ids[:3]:
        server.send_response(sid, [(":status", "200"), ("x", "y")], pattern(40_000, sid))
    server.send_informational_response(ids[3], [(":status", "103"), ("link", "</s>")])
    server.send_response(ids[3], [(":status", "201")], end_stream=False)
    server.send_data(ids[3], b"part", end_stream=True)
    server.send_response(ids[4], [(":status", "204")])
    client.reset_stream(ids[5])
    pump()
    state = {"bodies": dict(server._bodies), "priorities": dict(server._priorities)}
    return seen_s, seen_c, state


def run_both(monkeypatch: pytest.MonkeyPatch, case: Callable[[], Any]) -> Tuple[Any, Any]:
    c_result = case()
    monkeypatch.setattr(session_module, "_build", None)
    return c_result, case()


@needs_c
@pytest.mark.parametrize("chunk", [1 << 20, 7])
def test_c_and_python_build_the_same_events(monkeypatch, chunk):
    (c_server, c_client, c_state), (py_server, py_client, py_state) = run_both(
        monkeypatch, lambda: exchange(chunk)
    )
    assert c_server == py_server
    assert c_client == py_client
    assert c_state == py_state
    assert c_state["bodies"] == {}  # popped as each stream closed
    # Same types, not only equal values: bools stay bools, lists lists.
    assert [type(e) for e in c_server] == [type(e) for e in py_server]
    for c_event, py_event in zip(c_server, py_server):
        for name in c_event.__slots__:
            c_value, py_value = getattr(c_event, name), getattr(py_event, name)
            assert type(c_value) is type(py_value), (c_event, name)
            if isinstance(c_value, list):
                assert all(type(f) is tuple and len(f) == 2 for f in c_value)
    requests = [e for e in c_server if isinstance(e, RequestReceived)]
    assert len(requests) == 6
    assert requests[0].headers[6] == (b"x-empty", b"")
    assert requests[0].headers[-1] == (b"x-bytes", b"\x80\xff tab\there")
    assert requests[0].end_stream is True and requests[3].end_stream is False
    responses = [e for e in c_client if isinstance(e, ResponseReceived)]
    assert [r.headers[0] for r in responses] == [(b":status", b"200")] * 3 + [
        (b":status", b"201"),
        (b":status", b"204"),
    ]
    assert of(c_client, InformationalResponseReceived)[0].headers[0] == (b":status", b"103")
    body = b"".join(e.data for e in c_server if isinstance(e, DataReceived) and e.stream_id == 7)
    assert body == pattern(70_000, 1)


@needs_c
def test_c_builds_the_commonest_records(monkeypatch):
    """Requests, DATA and closures go through C: counted at the one call
    that reaches it, with what it returned."""
    calls: List[Tuple[int, int]] = []
    build = session_module._build

    def counting(ev: int, start: int, stop: int, *rest: Any) -> int:
        end = build(ev, start, stop, *rest)
        calls.append((start, end))
        return end

    monkeypatch.setattr(session_module, "_build", counting)
    seen_s, _, _ = exchange(1 << 20)
    handled = sum(end - start for start, end in calls)
    built = [e for e in seen_s if type(e) in (RequestReceived, DataReceived, StreamClosed)]
    assert handled >= len(built) > 0


def test_pure_python_switch_and_flag():
    assert session_module.EVENTS_IN_C is (session_module._build is not None)
    if platform.python_implementation() != "CPython":
        assert session_module._build is None


@needs_c
def test_build_refuses_bad_arguments():
    build = session_module._build
    with pytest.raises(TypeError):
        build(0, 0, 0, 0, None, (), {}, True)  # a tuple for the event list
    with pytest.raises(TypeError):
        build(0, 0, 0, 0, None, [], [], True)  # a list for the bodies
    assert build(0, 0, 0, 0, None, [], {}, True) == 0  # nothing to read
