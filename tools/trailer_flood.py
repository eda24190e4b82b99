#!/usr/bin/env python3
"""Chunked-trailer flood against the HTTP/1.1 server (issue 12, section 4).

    python tools/trailer_flood.py            # FLOOD_MIB=64: stop after that much

Two attacks on one in-process server: many small trailer fields, and one
trailer line that never ends.  Prints what was sent before the server
answered, its answer, and the process's RSS before and after.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Tuple

from nghttp2.server import BaseRequestHandler, HTTP2Server

HEAD = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"


class Handler(BaseRequestHandler):
    def on_request_done(self) -> None:
        self.send_response(200, body=b"ok")


def rss_mib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return 0


async def flood(port: int, first: bytes, piece: bytes, limit: int) -> Tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEAD + first)
    sent = 0
    answer = b""
    try:
        while sent < limit and not answer:
            writer.write(piece)
            sent += len(piece)
            await writer.drain()
            try:
                answer += await asyncio.wait_for(reader.read(4096), 0.0001)
            except asyncio.TimeoutError:
                pass
    except ConnectionError:
        pass
    try:
        answer += await asyncio.wait_for(reader.read(), 5)
    except (ConnectionError, asyncio.TimeoutError):
        pass
    writer.close()
    return sent, answer.split(b"\r\n")[0]


async def main() -> None:
    limit = int(os.environ.get("FLOOD_MIB", "64")) * 2**20
    server = HTTP2Server(("127.0.0.1", 0), Handler, access_log=False)
    await server.start()
    port = server.address[1]
    many = b"".join(b"x-t%d: %s\r\n" % (i, b"v" * 50) for i in range(1000))
    for name, first, piece in (
        ("many trailer fields", b"", many),
        ("one endless trailer line", b"x-big: ", b"v" * 65536),
    ):
        before, started = rss_mib(), time.monotonic()
        sent, answer = await flood(port, first, piece, limit)
        print(
            f"{name}: sent {sent / 2**20:.1f} MiB, answer {answer.decode() or '(none)'!r}, "
            f"RSS {before} -> {rss_mib()} MiB, {time.monotonic() - started:.1f} s"
        )
    await server.shutdown(timeout=1)


if __name__ == "__main__":
    asyncio.run(main())
