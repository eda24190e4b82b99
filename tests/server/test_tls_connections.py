"""TLS connections cost and cap (issue 12 section 3): a connection counts
against ``max_connections`` from accept, not from the end of its handshake;
a handshake that does not finish within ``handshake_timeout`` is closed.
Counted from outside, with real sockets: a socket the server closed reads EOF
(or a reset), one it holds reads nothing."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import List, Tuple

import pytest

from nghttp2.server import BaseRequestHandler
from nghttp2.server.limits import Limits

TIMEOUT = 10.0


class _Hello(BaseRequestHandler):
    """``/``: hello; ``/big``: 4 MB of ``x`` then the upload's length."""

    received = 0

    def on_data(self, data: bytes) -> None:
        self.received += len(data)

    def on_request_done(self) -> None:
        if self.path == b"/big":
            self.send_response(200, body=b"x" * 4_000_000 + str(self.received).encode())
        else:
            self.send_response(200, body=b"hello\n")


class _Silent:
    """TCP connections to the TLS port that never say a word."""

    def __init__(self) -> None:
        self.writers: List[asyncio.StreamWriter] = []

    async def open(self, address: Tuple[str, int], count: int) -> List[asyncio.StreamReader]:
        readers = []
        for _ in range(count):
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), TIMEOUT)
            readers.append(reader)
            self.writers.append(writer)
        return readers

    def close(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers = []


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the server closes this (silent) connection within ``within`` seconds."""
    try:
        data = await asyncio.wait_for(reader.read(1), within)
    except asyncio.TimeoutError:
        return False
    except (ConnectionError, OSError):
        return True
    assert data == b"", data  # a silent client gets no bytes before its handshake
    return True


@pytest.mark.asyncio
async def test_cap_counts_tls_connections_from_accept(
    start_server, h2_connect, server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
):
    server = await start_server(
        _Hello, ssl=server_ssl, limits=Limits(max_connections=20, handshake_timeout=None)
    )
    # A real client, connected first, is served throughout.
    client = await h2_connect(server, ssl=client_ssl)
    assert (await client.get("/")).status == 200
    silent = _Silent()
    try:
        readers = await silent.open(server.address, 200)
        closed = await asyncio.gather(*(_closed_by_server(r, 1.5) for r in readers))
        held = closed.count(False)
        # 19 slots are left beside the real client; no more are held.
        assert held <= 19, f"{held} silent TLS connections held with max_connections=20"
        assert closed.count(True) >= 181
        assert (await client.get("/")).status == 200
    finally:
        silent.close()
    # Slots freed: a new client is served.
    await asyncio.sleep(0.2)
    other = await h2_connect(server, ssl=client_ssl)
    assert (await other.get("/")).status == 200
    await other.close()
    await client.close()


@pytest.mark.asyncio
async def test_handshake_timeout_closes_a_silent_connection(
    start_server, h2_connect, server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
):
    server = await start_server(_Hello, ssl=server_ssl, limits=Limits(handshake_timeout=1.0))
    silent = _Silent()
    try:
        started = time.monotonic()
        (reader,) = await silent.open(server.address, 1)
        assert await _closed_by_server(reader, 3.0), "still open 3 s after accept"
        assert time.monotonic() - started < 2.5
    finally:
        silent.close()
    # The timeout is the handshake's only: a client idle after it stays.
    client = await h2_connect(server, ssl=client_ssl)
    await asyncio.sleep(1.5)
    assert (await client.get("/")).status == 200
    await client.close()


@pytest.mark.asyncio
async def test_handshake_failures_leave_the_server_serving(
    start_server, h2_connect, server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
):
    server = await start_server(_Hello, ssl=server_ssl, limits=Limits(max_connections=5))
    for garbage in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05hello" * 3):
        for _ in range(10):  # more than the cap: failed handshakes free their slot
            reader, writer = await asyncio.open_connection(*server.address)
            writer.write(garbage)
            assert await _closed_by_server_any(reader, 3.0)
            writer.close()
    untrusting = ssl.create_default_context()  # does not trust the test CA
    untrusting.set_alpn_protocols(["h2"])
    with pytest.raises(ssl.SSLError):
        await asyncio.open_connection(*server.address, ssl=untrusting, server_hostname="localhost")
    client = await h2_connect(server, ssl=client_ssl)
    assert (await client.get("/")).status == 200
    await client.close()


async def _closed_by_server_any(reader: asyncio.StreamReader, within: float) -> bool:
    """Reads (a TLS alert may come first) until EOF; False at ``within``."""
    deadline = asyncio.get_running_loop().time() + within
    try:
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            if not await asyncio.wait_for(reader.read(65536), left):
                return True
    except asyncio.TimeoutError:
        return False
    except (ConnectionError, OSError):
        return True


@pytest.mark.asyncio
async def test_close_notify_and_large_bodies_over_tls(
    start_server, run, server_ssl: ssl.SSLContext, ca_file: str
):
    """A client that sends close_notify is closed cleanly; a large response
    and upload pass through the transport's flow control."""
    server = await start_server(_Hello, ssl=server_ssl)
    host, port = server.address
    url = f"https://localhost:{port}"
    for version in ("--http2", "--http1.1"):
        done = await run(
            "curl", "-sS", version, "--cacert", ca_file, "--resolve", f"localhost:{port}:{host}",
            "--data-binary", "@-", "-w", "\n%{http_version}", url + "/big",
            input=b"u" * 3_000_000,
        )  # fmt: skip
        done.check()
        body, _, http_version = done.stdout.rpartition(b"\n")
        assert body == b"x" * 4_000_000 + b"3000000"
        assert http_version in (b"2", b"1.1")


def test_handshake_timeout_is_a_flag():
    from nghttp2.server.__main__ import limits_from, parse_args

    assert Limits().handshake_timeout == 10.0
    assert limits_from(parse_args(["--handshake-timeout", "2.5"])).handshake_timeout == 2.5
    assert limits_from(parse_args(["--handshake-timeout", "none"])).handshake_timeout is None
