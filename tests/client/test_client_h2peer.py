"""Client against a scripted server on the h2 library: GOAWAY with a chosen
last_stream_id, REFUSED_STREAM, early responses, 1xx, trailers, protocol
errors and flow-control stalls, which a real server does not do on demand."""

from __future__ import annotations

import asyncio
import gc
import os

import h2.events
import hpack
import pytest
from hyperframe.frame import ContinuationFrame, GoAwayFrame, HeadersFrame

from nghttp2.client import (
    Client,
    GoAwayError,
    PoolTimeout,
    RemoteProtocolError,
    StreamResetError,
    Timeout,
    WriteTimeout,
)
from nghttp2_cffi import ErrorCode, SettingCode

TIMEOUT = 10.0

pytestmark = pytest.mark.asyncio


def respond(conn, stream_id: int, body: bytes = b"ok", status: int = 200) -> None:
    conn.send_headers(stream_id, [(b":status", str(status).encode())])
    conn.send_data(stream_id, body, end_stream=True)


async def test_goaway_fails_streams_above_last_stream_id_as_retryable(h2_peer) -> None:
    seen = []

    def script(peer, conn, event, writer):
        if isinstance(event, h2.events.RequestReceived):
            if peer.connections > 1:  # the client came back on a new connection
                respond(conn, event.stream_id, b"second connection")
                return
            seen.append(event.stream_id)
            if len(seen) == 3:
                # h2 sends nothing after its own GOAWAY: write the frame raw,
                # then answer stream 1 (<= last_stream_id) after it.
                writer.write(conn.data_to_send())
                goaway = GoAwayFrame(0, last_stream_id=seen[0], error_code=0)
                writer.write(goaway.serialize())
                respond(conn, seen[0], b"first")

    peer = await h2_peer(script)
    async with Client(peer.url) as c:
        results = await asyncio.wait_for(
            asyncio.gather(*[c.get(f"/{i}") for i in range(3)], return_exceptions=True),
            TIMEOUT,
        )
        first, *refused = results
        assert first.content == b"first"
        for exc in refused:
            assert isinstance(exc, GoAwayError), exc
            assert exc.retryable
            assert exc.last_stream_id == 1
            assert exc.error_code == ErrorCode.NO_ERROR
            assert "safe to retry" in str(exc)
        assert sorted(exc.stream_id for exc in refused) == [3, 5]
        # The next request goes on a new connection by itself.
        r = await asyncio.wait_for(c.get("/again"), TIMEOUT)
        assert r.content == b"second connection"
    assert peer.connections == 2


async def test_goaway_with_an_error_then_close(h2_peer) -> None:
    def script(peer, conn, event, writer):
        if isinstance(event, h2.events.RequestReceived):
            conn.close_connection(
                error_code=ErrorCode.ENHANCE_YOUR_CALM, last_stream_id=0, additional_data=b"calm"
            )
            writer.write(conn.data_to_send())
            writer.close()

    peer = await h2_peer(script)
    async with Client(peer.url) as c:
        with pytest.raises(GoAwayError) as info:
            await asyncio.wait_for(c.get("/"), TIMEOUT)
    assert info.value.error_code == ErrorCode.ENHANCE_YOUR_CALM
    assert info.value.retryable  # stream 1 > last_stream_id 0: not processed
    assert info.value.debug_data == b"calm"


async def test_refused_stream_is_retryable(h2_peer) -> None:
    def script(peer, conn, event, writer):
        if isinstance(event, h2.events.RequestReceived):
            conn.reset_stream(event.stream_id, error_code=ErrorCode.REFUSED_STREAM)

    peer = await h2_peer(script)
    async with Client(peer.url) as c:
        with pytest.raises(StreamResetError) as info:
            await asyncio.wait_for(c.get("/"), TIMEOUT)
    assert info.value.error_code == ErrorCode.REFUSED_STREAM
    assert info.value.retryable


async def test_informational_response_and_trailers(h2_peer) -> None:
    def script(peer, conn, event, writer):
        if isinstance(event, h2.events.RequestReceived):
            sid = event.stream_id
            conn.send_headers(sid, [(b":status", b"103"), (b"link", b"</a.css>; rel=preload")])
            conn.send_headers(sid, [(b":status", b"200"), (b"trailer", b"grpc-status")])
            conn.send_data(sid, b"body")
            conn.send_headers(
                sid, [(b"grpc-status", b"0"), (b"grpc-message", b"fine")], end_stream=True
            )

    peer = await h2_peer(script)
    async with Client(peer.url) as c:
        r = await asyncio.wait_for(c.get("/"), TIMEOUT)
    assert r.status == 200
    assert [h["link"] for h in r.informational] == ["</a.css>; rel=preload"]
    assert r.content == b"body"
    assert r.trailers.items() == [("grpc-status", "0"), ("grpc-message", "fine")]


async def test_early_response_stops_the_upload(h2_peer) -> None:
    """A server may answer before the body is in and reset with NO_ERROR."""
    pulled = []

    def script(peer, conn, event, writer):
        if isinstance(event, h2.events.RequestReceived):
            conn.send_headers(event.stream_id, [(b":status", b"413")])
            conn.send_data(event.stream_id, b"too big", end_stream=True)
            if event.stream_ended is None:  # the body is still coming: stop it
                conn.reset_stream(event.stream_id, error_code=0)

    async def endless():
        while True:
            pulled.append(1)
            yield b"x" * 16384
            await asyncio.sleep(0.001)

    peer = await h2_peer(script)
    async with Client(peer.url) as c:
        r = await asyncio.wait_for(c.post("/upload", content=endless()), TIMEOUT)
        assert (r.status, r.content) == (413, b"too big")
        n = len(pulled)
        await asyncio.sleep(0.05)
        assert len(pulled) == n  # the body is no longer pulled
        assert (await asyncio.wait_for(c.get("/"), TIMEOUT)).status == 413
    assert peer.error is None


async def test_write_timeout_when_the_window_never_opens(h2_peer) -> None:
    def script(peer, conn, event, writer):
        pass  # reads, never answers, never acknowledges

    peer = await h2_peer(script, settings={SettingCode.INITIAL_WINDOW_SIZE: 100})
    peer.ack = False
    async with Client(peer.url, timeout=Timeout(connect=5, read=5, write=0.2)) as c:
        with pytest.raises(WriteTimeout):
            await asyncio.wait_for(c.post("/", content=iter([b"x" * 1000] * 3)), TIMEOUT)


async def test_protocol_error_from_the_server(h2_peer) -> None:
    def script(peer, conn, event, writer):
        if isinstance(event, h2.events.RequestReceived):
            # A DATA frame on stream 0: a connection error (RFC 9113 6.1).
            writer.write(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")

    peer = await h2_peer(script)
    async with Client(peer.url) as c:
        with pytest.raises(RemoteProtocolError) as info:
            await asyncio.wait_for(c.get("/"), TIMEOUT)
    assert info.value.error_code == ErrorCode.PROTOCOL_ERROR


async def test_concurrency_limit_from_an_independent_server(h2_peer) -> None:
    open_streams = set()
    peak = []
    pending = []

    def script(peer, conn, event, writer):
        if isinstance(event, h2.events.RequestReceived):
            open_streams.add(event.stream_id)
            peak.append(len(open_streams))
            pending.append(event.stream_id)
            if len(pending) == 3:  # answer in batches: the client must wait
                for sid in pending:
                    open_streams.discard(sid)
                    respond(conn, sid, str(sid).encode())
                pending.clear()

    peer = await h2_peer(script, settings={SettingCode.MAX_CONCURRENT_STREAMS: 3})
    async with Client(peer.url) as c:
        rs = await asyncio.wait_for(asyncio.gather(*[c.get("/") for _ in range(30)]), TIMEOUT)
    assert len({r.content for r in rs}) == 30
    assert max(peak) == 3


async def test_pool_timeout_waiting_for_a_free_stream(h2_peer) -> None:
    answered = []

    def script(peer, conn, event, writer):
        if isinstance(event, h2.events.RequestReceived) and answered:
            respond(conn, event.stream_id, b"later")

    peer = await h2_peer(script, settings={SettingCode.MAX_CONCURRENT_STREAMS: 1})
    async with Client(peer.url, timeout=Timeout(connect=5, read=5, pool=0.2)) as c:
        first = asyncio.ensure_future(c.get("/first"))  # never answered: takes the one stream
        await asyncio.sleep(0.1)
        with pytest.raises(PoolTimeout):
            await asyncio.wait_for(c.get("/second"), TIMEOUT)
        assert not c.connection._slot_waiters  # the waiter left the queue
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        answered.append(True)
        r = await asyncio.wait_for(c.get("/third"), TIMEOUT)  # the slot came back
        assert r.content == b"later"


# ---- bounded memory: header lists --------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hpack_bomb(frame_size: int = 16384, frames: int = 2) -> bytes:
    """A response header block that inflates ~130x: one 4 KiB field stored
    in the dynamic table, then one-byte references to it (the issue's 135 KB
    block inflated to 512 MiB; this one, ~32 KiB, to ~116 MB)."""
    stored = hpack.Encoder().encode([(b"x-bomb", b"a" * 4000)], huffman=False)
    block = b"\x88" + stored  # :status 200, then the 4 KiB literal (indexed)
    return block + b"\xbe" * (frame_size * frames - len(block))  # index 62


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
async def test_hpack_bomb_in_a_response_fails_with_bounded_memory(h2_peer) -> None:
    block = _hpack_bomb()

    def script(peer, conn, event, writer):
        if isinstance(event, h2.events.RequestReceived):
            writer.write(conn.data_to_send())
            # One HEADERS and one CONTINUATION frame, written raw (h2 would
            # not send what it cannot decode itself).
            head = HeadersFrame(event.stream_id, data=block[:16384])
            tail = ContinuationFrame(event.stream_id, data=block[16384:], flags=["END_HEADERS"])
            writer.write(head.serialize() + tail.serialize())

    peer = await h2_peer(script)
    gc.collect()
    before = _rss()
    async with Client(peer.url) as c:
        with pytest.raises(RemoteProtocolError) as info:
            await asyncio.wait_for(c.get("/"), TIMEOUT)
    growth = _rss() - before
    assert info.value.error_code == ErrorCode.ENHANCE_YOUR_CALM
    assert "max_header_list_size (65536 bytes" in str(info.value)
    assert "Client(max_header_list_size=...)" in str(info.value)
    # Unbounded, the client held the ~116 MB list (several times over in
    # RSS); bounded, it stops after 17 fields (64 KiB).
    assert growth < 16 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB"


async def test_the_header_list_bound_can_be_raised(h2_peer) -> None:
    big = [(b"x-field-%d" % i, b"v" * 3000) for i in range(30)]  # ~91 KiB (RFC 9113 sizes)

    def script(peer, conn, event, writer):
        if isinstance(event, h2.events.RequestReceived):
            conn.send_headers(event.stream_id, [(b":status", b"200"), *big], end_stream=True)

    peer = await h2_peer(script)
    async with Client(peer.url) as c:
        with pytest.raises(RemoteProtocolError, match="max_header_list_size"):
            await asyncio.wait_for(c.get("/"), TIMEOUT)
    async with Client(peer.url, max_header_list_size=1 << 20) as c:
        r = await asyncio.wait_for(c.get("/"), TIMEOUT)
    assert r.status == 200
    assert r.headers["x-field-29"] == "v" * 3000
