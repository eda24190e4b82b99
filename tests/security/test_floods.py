"""Floods and resource attacks against the real server, over sockets.

Each attack runs from this thread against a server in a thread of its own
(or a subprocess for the memory test), bounded in frames and seconds.  It
must end with the connection closed by a GOAWAY of the fitting code, well
before the attack's budget; the process's memory stays bounded; and a
well-behaved client is served meanwhile and right after.

The exact number of frames taken before the GOAWAY is measured on a server
Session built with the server's own options (a socket adds read batching,
so over TCP only an upper bound is seen); the same attack on a Session or
a server with the defence turned off is NOT closed, which shows the defence
is what closes it.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Callable, ClassVar, List, Optional, Tuple

import hpack
import pytest
from hpack.hpack import encode_integer
from hyperframe.frame import (
    DataFrame,
    GoAwayFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from security_handlers import Handler
from security_support import (
    GET,
    MAX_STREAM_ID,
    PREFACE,
    TIMEOUT,
    Closed,
    RawClient,
    ThreadServer,
    fetch,
    flood,
    parse_frames,
    raw_frame,
    request,
    rss_kib,
    served,
)

from nghttp2.server import HTTP2Server
from nghttp2.server.limits import Limits
from nghttp2_cffi import (
    FEATURES,
    ErrorCode,
    FloodedError,
    RequestReceived,
    Session,
    SettingCode,
)

#: Attack units each flood may send (the budget: the server must close long before).
BUDGET = 20_000
#: Growth of this process's RSS (client and server) allowed during one flood.
RSS_BOUND_KIB = 64 * 1024


# ---------------------------------------------------------------------------
# The attacks: a setup (frames sent once) and a unit (frames sent per step)
# ---------------------------------------------------------------------------

_enc = hpack.Encoder()
_GET_BLOCK = _enc.encode(GET)
_POST_BLOCK = hpack.Encoder().encode(request("/count", "POST"))


def _headers(sid: int, block: bytes, end_stream: bool) -> bytes:
    return raw_frame(0x1, 0x4 | (0x1 if end_stream else 0), sid, block)


def rapid_reset_unit(i: int) -> bytes:
    sid = 1 + 2 * i
    # The same literal block every time (no dynamic table state to keep).
    return _headers(sid, _LITERAL_GET, False) + RstStreamFrame(sid, error_code=8).serialize()


def _literal(name: bytes, value: bytes, indexing: bool = False) -> bytes:
    """An HPACK literal field with a new name (RFC 7541 6.2.1/6.2.2), no Huffman."""
    return (
        (b"\x40" if indexing else b"\x00")
        + bytes(encode_integer(len(name), 7))
        + name
        + bytes(encode_integer(len(value), 7))
        + value
    )


_LITERAL_GET = b"".join(_literal(n.encode(), v.encode()) for n, v in GET)

Attack = Tuple[bytes, Callable[[int], bytes]]

ATTACKS = {
    # CVE-2023-44487: open a stream and cancel it at once, again and again.
    "rapid_reset": (b"", rapid_reset_unit),
    # CVE-2024-27316 and kin: a header block that never ends.
    "continuation": (raw_frame(0x1, 0x1, 1, _GET_BLOCK[:1]), lambda i: raw_frame(0x9, 0, 1)),
    "ping": (b"", lambda i: PingFrame(0, opaque_data=struct.pack(">Q", i)).serialize()),
    "settings": (b"", lambda i: SettingsFrame(0, settings={4: 65535}).serialize()),
    # CVE-2019-9518: empty DATA frames on an open request.
    "empty_data": (_headers(1, _POST_BLOCK, False), lambda i: DataFrame(1).serialize()),
    "window_update": (b"", lambda i: WindowUpdateFrame(0, window_increment=1).serialize()),
    "priority": (
        b"",
        lambda i: PriorityFrame(1 + 2 * (i % 1000), depends_on=0, stream_weight=16).serialize(),
    ),
}


class GoodClient(threading.Thread):
    """Fetches ``/`` again and again until stopped: the innocent bystander."""

    def __init__(self, address: Tuple[str, int]) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.results: List[object] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set() or not self.results:
            try:
                self.results.append(fetch(self.address))
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.results.append(exc)

    def stop(self) -> List[object]:
        self.done.set()
        self.join(TIMEOUT * 2)
        assert not self.is_alive()
        return self.results


@pytest.mark.parametrize("name", list(ATTACKS))
def test_flood_is_closed_with_enhance_your_calm(serve: Callable[..., ThreadServer], name: str):
    server = serve()
    setup, unit = ATTACKS[name]
    bystander = GoodClient(server.address)
    bystander.start()
    before = rss_kib()
    client = RawClient(server.address)
    client.handshake()
    if setup:
        client.send(setup)
    # A PING inside a header block is a protocol error: no sync there.
    sync = name != "continuation"
    result = flood(client, unit, BUDGET, sync=sync, batch=20 if sync else 4)
    client.wait_closed()
    grown = rss_kib() - before
    results = bystander.stop()
    print(f"{name}: {result}; RSS +{grown} KiB; bystander served {len(results)} time(s)")
    assert result.code == ErrorCode.ENHANCE_YOUR_CALM, client.summary()
    assert client.eof
    if sync:
        # The glitch bucket: 1,000 tokens and 100 a second (the PINGs that
        # sync each batch count too).
        assert result.sent <= 1000 + 100 * (result.seconds + 1) + 20, result
    else:
        # Closed after max_continuations (8) frames (exact on a Session,
        # below); over the socket, an upper bound: batches of 4, each given
        # 50 ms for the answer.
        assert result.sent < 1000, result
    assert grown < RSS_BOUND_KIB
    assert results and all(r == (200, b"hello") for r in results), results
    assert served(server.address)
    client.close()


class CountingHandler(Handler):
    made: ClassVar[List[int]] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        CountingHandler.made.append(self.stream_id)


def test_streams_reset_in_the_read_that_opened_them_get_no_handler(
    serve: Callable[..., ThreadServer],
):
    """HEADERS (a complete request) and its RST_STREAM in one read: the
    stream is closed before any handler could answer, so none is made (a
    handler's answer on the closed stream used to fail with
    StreamClosedError, an ERROR with a traceback in the log per stream: a
    log flood for a Rapid Reset attacker).  Reset in a later read, the
    handler runs as usual."""
    CountingHandler.made = []
    server = serve(CountingHandler)
    client = RawClient(server.address)
    client.handshake()
    deferred = b"".join(_literal(n.encode(), v.encode()) for n, v in request("/deferred"))
    client.send(
        b"".join(
            _headers(1 + 2 * i, deferred, True)
            + RstStreamFrame(1 + 2 * i, error_code=8).serialize()
            for i in range(50)
        )
    )
    assert client.open()
    assert CountingHandler.made == []
    client.send(_headers(101, deferred, True))
    client.wait_for(lambda f: f.stream_id == 101)
    client.send(RstStreamFrame(101, error_code=8))
    assert client.open()
    assert CountingHandler.made == [101]


# ---------------------------------------------------------------------------
# Exact counts on a Session with the server's options; the defences off
# ---------------------------------------------------------------------------


def server_session(limits: Optional[Limits] = None) -> Session:
    """A server Session as HTTP2Server makes one for ``limits``."""
    config = HTTP2Server(("127.0.0.1", 0), Handler, limits=limits).session_config
    session = Session("server", config=config)
    session.data_to_send()
    session.receive_data(PREFACE + SettingsFrame(0).serialize())
    session.receive_data(SettingsFrame(0, flags=["ACK"]).serialize())
    session.data_to_send()
    return session


def frames_until_flooded(
    session: Session, setup: bytes, unit: Callable[[int], bytes], budget: int
) -> Tuple[int, Optional[FloodedError], float]:
    """Feed ``unit(i)`` one at a time (answers taken after each); returns
    (units accepted before FloodedError, the error, seconds)."""
    start = time.monotonic()
    if setup:
        session.receive_data(setup)
    for i in range(budget):
        try:
            session.receive_data(unit(i))
        except FloodedError as exc:
            return i, exc, time.monotonic() - start
        session.data_to_send()
    return budget, None, time.monotonic() - start


def goaway_of(session: Session) -> GoAwayFrame:
    frames = parse_frames(session.data_to_send())
    goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert goaways, frames
    return goaways[-1]


# (attack, the Limits field with its burst, tokens refilled per second)
EXACT = {
    "rapid_reset": ("glitch", 1000, 100),
    "ping": ("glitch", 1000, 100),
    "settings": ("glitch", 1000, 100),
    "empty_data": ("glitch", 1000, 100),
    "window_update": ("glitch", 1000, 100),
    "priority": ("glitch", 1000, 100),
}


@pytest.mark.parametrize("name", list(EXACT))
def test_token_buckets_close_after_burst_frames(name: str):
    setup, unit = ATTACKS[name]
    _, burst, rate = EXACT[name]
    session = server_session()
    accepted, error, seconds = frames_until_flooded(session, setup, unit, BUDGET)
    print(f"{name}: closed after {accepted} frame(s) in {seconds:.2f}s")
    assert error is not None, f"{name}: {BUDGET} frames accepted"
    assert error.error_code == ErrorCode.ENHANCE_YOUR_CALM
    assert ErrorCode(goaway_of(session).error_code) == ErrorCode.ENHANCE_YOUR_CALM
    # The burst, plus what the bucket refilled meanwhile (and one second of
    # slack for libnghttp2's whole-second refills).
    assert burst - 1 <= accepted <= burst + rate * (seconds + 1)
    assert not session.want_read


def test_continuation_flood_closes_after_max_continuations():
    setup, unit = ATTACKS["continuation"]
    session = server_session()
    accepted, error, _ = frames_until_flooded(session, setup, unit, BUDGET)
    assert error is not None and error.error_code == ErrorCode.ENHANCE_YOUR_CALM
    assert ErrorCode(goaway_of(session).error_code) == ErrorCode.ENHANCE_YOUR_CALM
    assert accepted == Limits().max_continuations


DEFENCE_OFF = {
    "rapid_reset": Limits(glitch_burst=0, stream_reset_rate=(10**9, 10**9)),
    "continuation": Limits(max_continuations=10**9),
    "ping": Limits(glitch_burst=0),
    "settings": Limits(glitch_burst=0),
    "empty_data": Limits(glitch_burst=0),
    "window_update": Limits(glitch_burst=0),
    "priority": Limits(glitch_burst=0),
}


@pytest.mark.parametrize("name", list(DEFENCE_OFF))
def test_without_the_defence_the_flood_is_not_closed(name: str):
    setup, unit = ATTACKS[name]
    budget = 5000
    session = server_session(DEFENCE_OFF[name])
    accepted, error, _ = frames_until_flooded(session, setup, unit, budget)
    assert error is None and accepted == budget
    assert session.want_read


@pytest.mark.skipif(
    not FEATURES["stream_reset_rate_limit"],
    reason="the linked libnghttp2 has no stream reset rate limit",
)
def test_rapid_reset_backstop_in_libnghttp2():
    """With the glitch bucket off, libnghttp2's own, looser Rapid Reset limit
    (Limits.stream_reset_rate) still closes the connection, with
    INTERNAL_ERROR, after about its burst."""
    session = server_session(Limits(glitch_burst=0))
    burst, rate = Limits().stream_reset_rate
    start = time.monotonic()
    for i in range(BUDGET):
        session.receive_data(rapid_reset_unit(i))
        frames = parse_frames(session.data_to_send())
        goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
        if goaways:
            break
    seconds = time.monotonic() - start
    assert goaways, f"{BUDGET} resets accepted"
    assert ErrorCode(goaways[0].error_code) == ErrorCode.INTERNAL_ERROR
    assert burst - 1 <= i <= burst + rate * (seconds + 1)


def test_rapid_reset_without_the_defence_is_served_in_full(serve: Callable[..., ThreadServer]):
    """Over a socket too: with the reset limit off all 20,000 streams are
    opened and reset, and the connection stays."""
    server = serve(limits=DEFENCE_OFF["rapid_reset"])
    client = RawClient(server.address)
    client.handshake()
    result = flood(client, rapid_reset_unit, BUDGET)
    assert result.goaway is None and not result.closed
    assert result.sent == BUDGET
    assert client.open()


# ---------------------------------------------------------------------------
# HPACK bomb
# ---------------------------------------------------------------------------

BOMB_VALUE = b"a" * 4000  # fits the default 4,096-byte dynamic table


def hpack_bomb(references: int) -> bytes:
    """A request header block that inserts one ~4 KB field into the dynamic
    table and then names it ``references`` times, one byte each (index 62)."""
    return _LITERAL_GET + _literal(b"x-bomb", BOMB_VALUE, indexing=True) + b"\xbe" * references


def test_hpack_bomb_is_closed_with_enhance_your_calm(serve: Callable[..., ThreadServer]):
    server = serve()
    block = hpack_bomb(3000)  # ~3 KB on the wire, 12 MB inflated
    before = rss_kib()
    client = RawClient(server.address)
    client.handshake()
    client.send(raw_frame(0x1, 0x5, 1, block))
    goaway = client.goaway()
    client.wait_closed()
    grown = rss_kib() - before
    print(f"HPACK bomb: {len(block)} bytes on the wire; RSS +{grown} KiB")
    assert ErrorCode(goaway.error_code) == ErrorCode.ENHANCE_YOUR_CALM
    assert grown < RSS_BOUND_KIB
    assert served(server.address)


def test_hpack_bomb_inflates_past_the_limit_on_a_session():
    session = server_session()
    with pytest.raises(FloodedError) as info:
        session.receive_data(raw_frame(0x1, 0x5, 1, hpack_bomb(3000)))
    assert info.value.error_code == ErrorCode.ENHANCE_YOUR_CALM
    assert ErrorCode(goaway_of(session).error_code) == ErrorCode.ENHANCE_YOUR_CALM


def test_hpack_bomb_without_the_limit_inflates(serve: Callable[..., ThreadServer]):
    """Defence off: 1,000 one-byte references become 4 MB of header fields."""
    limits = Limits(max_header_list_size=10**9)
    session = server_session(limits)
    block = hpack_bomb(1000)
    events = session.receive_data(raw_frame(0x1, 0x5, 1, block))
    (request_event,) = [e for e in events if isinstance(e, RequestReceived)]
    inflated = sum(len(n) + len(v) for n, v in request_event.headers)
    assert inflated > 1000 * len(BOMB_VALUE) > 500 * len(block)
    server = serve(limits=limits)
    client = RawClient(server.address)
    client.handshake()
    client.send(raw_frame(0x1, 0x5, 1, block))
    assert client.response(1) == (200, b"hello")


# ---------------------------------------------------------------------------
# Stream ids
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheduling", ["RFC 9218", "RFC 7540"])
def test_stream_id_exhaustion(serve: Callable[..., ThreadServer], scheduling: str):
    """A client that jumps to the last stream id (2^31-1) is served and has
    no stream id left; what it tries next does not hurt the server.  A lower
    id far below it is ignored (the session remembers the peer's latest
    2,048 stream ids only; RFC 9113 5.1.1 would have PROTOCOL_ERROR, which
    test_conformance checks within that window).  HEADERS again on the
    closed last id: GOAWAY STREAM_CLOSED under either scheduling (under RFC
    9218 libnghttp2 keeps no closed streams: the session's own record
    answers).  Push ids are the server's: a client cannot make it run out
    of them."""
    if scheduling == "RFC 7540":
        server = serve(settings={SettingCode.NO_RFC7540_PRIORITIES: 0})
    else:
        server = serve()
    client = RawClient(server.address)
    client.handshake()
    client.send(client.headers(MAX_STREAM_ID, GET))
    assert client.response(MAX_STREAM_ID) == (200, b"hello")
    seen = len(client.frames)
    client.send(client.headers(1, GET))
    assert client.open()
    assert [type(f).__name__ for f in client.frames[seen:]] == ["PingFrame"]
    client.send(client.headers(MAX_STREAM_ID, GET))
    goaway = client.goaway()
    assert ErrorCode(goaway.error_code) == ErrorCode.STREAM_CLOSED
    assert goaway.last_stream_id == MAX_STREAM_ID
    client.wait_closed()
    assert served(server.address)


# ---------------------------------------------------------------------------
# Slowloris
# ---------------------------------------------------------------------------


def drip(client: RawClient, data: bytes, interval: float, seconds: float) -> int:
    """Send ``data`` one byte every ``interval`` s, for at most ``seconds``;
    returns how many bytes went before the server closed (len(data) if not)."""
    deadline = time.monotonic() + seconds
    for i in range(len(data)):
        if time.monotonic() > deadline:
            return i
        try:
            client.send(data[i : i + 1])
        except Closed:
            return i
        client._recv(interval)
        if client.eof:
            return i + 1
    return len(data)


SLOW = Limits(header_timeout=0.5)


def test_slowloris_preface_is_closed_by_header_timeout(serve: Callable[..., ThreadServer]):
    server = serve(limits=SLOW)
    client = RawClient(server.address)
    data = PREFACE + SettingsFrame(0).serialize()
    sent = drip(client, data, 0.1, 10.0)
    if not client.eof:
        client.wait_closed()
    print(f"slowloris (preface): closed after {sent} of {len(data)} bytes")
    assert sent < len(data)
    assert served(server.address)


def test_slowloris_headers_are_closed_by_header_timeout(serve: Callable[..., ThreadServer]):
    server = serve(limits=SLOW)
    client = RawClient(server.address)
    client.handshake()
    data = client.headers(1, GET + [("x-slow", "s" * 200)]).serialize()
    sent = drip(client, data, 0.05, 10.0)
    frames = client.wait_closed()
    print(f"slowloris (HEADERS): closed after {sent} of {len(data)} bytes")
    assert sent < len(data)
    goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
    assert goaways and ErrorCode(goaways[-1].error_code) == ErrorCode.NO_ERROR
    assert served(server.address)


def test_slowloris_without_header_timeout_stays(serve: Callable[..., ThreadServer]):
    """Defence off: the same drip for 2 s (four header timeouts above) is
    not closed."""
    server = serve(limits=Limits(header_timeout=None))
    client = RawClient(server.address)
    client.handshake()
    data = client.headers(1, GET + [("x-slow", "s" * 200)]).serialize()
    sent = drip(client, data, 0.05, 2.0)
    client._recv(0.2)
    assert not client.eof and not client.goaways() and 0 < sent < len(data)
    # The rest of the block: the request completes and is answered.
    client.send(data[sent:])
    assert client.response(1) == (200, b"hello")


# ---------------------------------------------------------------------------
# Clients that never read
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_clients_that_never_read_leave_memory_bounded(spawn: Callable[..., object]):
    """50 clients each ask for a 100 MiB body with windows wide open and
    never read: the server's RSS stays within +200 MiB (backpressure stops
    producing the body), and another client is served meanwhile."""
    proc = spawn()
    address = proc.address  # type: ignore[attr-defined]
    baseline = proc.rss_kib()  # type: ignore[attr-defined]
    clients = []
    for _ in range(50):
        client = RawClient(address)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        client.handshake({4: 2**31 - 1})
        client.send(
            WindowUpdateFrame(0, window_increment=2**31 - 1 - 65535),
            client.headers(1, request("/big")),
        )
        clients.append(client)
    peak = baseline
    served_meanwhile = []
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        peak = max(peak, proc.rss_kib())  # type: ignore[attr-defined]
        served_meanwhile.append(fetch(address))
        time.sleep(0.1)
    peak = max(peak, proc.rss_kib())  # type: ignore[attr-defined]
    print(
        f"never-reading clients: server RSS {baseline} KiB -> peak {peak} KiB "
        f"(+{(peak - baseline) // 1024} MiB); {len(served_meanwhile)} requests served meanwhile"
    )
    assert peak - baseline < 200 * 1024
    assert served_meanwhile and all(r == (200, b"hello") for r in served_meanwhile)
    # The bodies were on their way: the server was stopped by backpressure,
    # not by anything else.
    clients[0].drain()
    assert [f for f in clients[0].frames if isinstance(f, DataFrame) and f.stream_id == 1]
    for client in clients:
        client.close()
