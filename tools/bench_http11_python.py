#!/usr/bin/env python3
"""The Python cost of an HTTP/1.1 request, without sockets or the kernel.

50 HTTP/1.1 connections (HTTP11Protocol, the server's own) get a no-op
transport; each loop round feeds every connection one keep-alive request,
as ``h2load --h1 -c50`` sends it, through the server's read buffer
(``buffer_updated``), then lets the loop run once (tasks, the batched
writes).  What is left of a request's server CPU time over loopback is the
kernel's (a recv, a send, a share of epoll_wait: ~8 us on the 2-core
machine of docs/performance.md), which this leaves out on purpose: it
swings with the machine's load, this much less.

Serves tools/bench_handlers/ours.py (``handler``) or asgi_app.py
(``asgi``), ``/small``; figures are microseconds of process CPU time per
request, the best of ``--repeats``.

  .venv/bin/python tools/bench_http11_python.py handler asgi
  .venv/bin/python tools/bench_http11_python.py asgi --loop asyncio --profile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
from typing import Any, List, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_handlers"))

from nghttp2.server import HTTP2Server
from nghttp2.server.http11 import HTTP11Protocol

REQUEST = (
    b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nuser-agent: h2load nghttp2/1.52.0\r\n\r\n"
)
CONNECTIONS = 50


class NullTransport:
    """Takes the writes; counts them."""

    def __init__(self) -> None:
        self.writes = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def write(self, data: bytes) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        raise RuntimeError("the server closed a benchmark connection")

    def set_write_buffer_limits(self, high: Any = None, low: Any = None) -> None:
        pass


async def measure(kind: str, rounds: int, repeats: int, profile: bool) -> float:
    server: HTTP2Server
    if kind == "asgi":
        from asgi_app import app  # type: ignore[import-not-found]

        from nghttp2.server.asgi import ASGIServer

        server = ASGIServer(("127.0.0.1", 0), app, access_log=False, lifespan="off")
    else:
        from ours import BenchHandler  # type: ignore[import-not-found]

        server = HTTP2Server(("127.0.0.1", 0), BenchHandler, access_log=False)
    connections: List[Tuple[HTTP11Protocol, NullTransport]] = []
    for _ in range(CONNECTIONS):
        protocol, transport = HTTP11Protocol(server), NullTransport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        connections.append((protocol, transport))
    size = len(REQUEST)
    buffer = server.read_buffer

    async def serve(rounds: int) -> None:
        for _ in range(rounds):
            for protocol, _transport in connections:
                buffer[:size] = REQUEST
                protocol.buffer_updated(size)
            await asyncio.sleep(0)

    await serve(200)  # warm-up: caches, the first connection facts
    best = float("inf")
    for _ in range(repeats):
        writes = sum(t.writes for _, t in connections)
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        start = time.process_time()
        await serve(rounds)
        elapsed = time.process_time() - start
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        requests = rounds * CONNECTIONS
        assert sum(t.writes for _, t in connections) - writes == requests, "one write per answer"
        best = min(best, elapsed / requests * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kinds", nargs="*", default=["handler", "asgi"])
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--rounds", type=int, default=2000, help="requests per connection")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one repeat")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    for kind in args.kinds:
        figure = asyncio.run(
            measure(kind, args.rounds, 1 if args.profile else args.repeats, args.profile)
        )
        print(f"{kind:8s} {args.loop:8s} {figure:6.2f} us of Python per request", flush=True)


if __name__ == "__main__":
    main()
