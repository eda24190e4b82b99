"""RFC 9218 extensible priorities over sockets: our server under a
frame-level ``h2`` client, where an urgent response overtakes a 50 MiB bulk
download on the same connection (and does not where RFC 9218 is off), and
the priority API of handlers and of our Client.  tests/test_priority.py has
the binding's side, in memory.
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

from nghttp2.client import Client
from nghttp2.server import BaseRequestHandler
from nghttp2_cffi import SettingCode

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
