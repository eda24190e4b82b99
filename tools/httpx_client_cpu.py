"""Client CPU per request of small GETs through httpx, for A/B comparisons
and profiles of the client side of tools/bench_httpx.py.

    .venv/bin/python tools/httpx_client_cpu.py KIND... [-n 2000] [-c 100]
        [--reps 3] [--nogc] [--profile DIR]

KIND: ``ours`` (AsyncClient on nghttp2.httpx.AsyncHTTPTransport), ``httpx``
(httpx's own HTTP/2), ``null`` (an AsyncClient whose transport returns a
canned response at once: what httpx itself costs, the floor of any
transport), ``null-yield`` (the same after one loop turn, as a transport
on a network must wait), ``raw`` (nghttp2.client.Client without httpx); ``sync-ours``,
``sync-httpx``, ``sync-null``: ``n`` GETs one after another on an
``httpx.Client``.  Async kinds run ``n`` GETs, ``c`` at a time, on one
connection, as bench_httpx.py's first workload.  Prints the process's CPU
time per request (``time.process_time``) for each repetition; compare the
best of several runs, alternating the checkouts.  ``--profile DIR``:
cProfile the last repetition into ``DIR/KIND.prof``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import sys
import time
from typing import Any, Awaitable, Callable

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_httpx

from nghttp2.client import Client
from nghttp2.httpx import AsyncHTTPTransport, HTTPTransport

BODY = b"hello, world"
_HEADERS = [(b"content-type", b"text/plain")]


class NullTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=_HEADERS, content=BODY)


class YieldingNullTransport(httpx.AsyncBaseTransport):
    """The null transport, but each request waits one loop turn for its
    response, as any transport on a network must (the gather's tasks then
    also queue on their semaphore)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)
        return httpx.Response(200, headers=_HEADERS, content=BODY)


class SyncNullTransport(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=_HEADERS, content=BODY)


class GCTimer:
    """The time the garbage collector runs, from gc.callbacks."""

    def __init__(self) -> None:
        self.total = 0.0
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: Any) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._start


GC_TIMER = GCTimer()


async def gather(get: Callable[[], Awaitable[Any]], n: int, c: int) -> None:
    sem = asyncio.Semaphore(c)

    async def one() -> None:
        async with sem:
            await get()

    await asyncio.gather(*[one() for _ in range(n)])


async def run_async(kind: str, url: str, args: argparse.Namespace) -> None:
    get: Callable[[], Awaitable[Any]]
    if kind == "raw":
        client = Client(url)
        await client.get("/small")

        async def get_raw() -> None:
            assert (await client.get("/small")).content == BODY

        get, close = get_raw, client.aclose
    else:
        if kind == "ours":
            hc = httpx.AsyncClient(transport=AsyncHTTPTransport(http2_prior_knowledge=True))
        elif kind == "null":
            hc = httpx.AsyncClient(transport=NullTransport())
        elif kind == "null-yield":
            hc = httpx.AsyncClient(transport=YieldingNullTransport())
        elif kind == "httpx":
            hc = httpx.AsyncClient(http1=False, http2=True)
        else:
            raise SystemExit(f"unknown kind {kind!r}")
        await hc.get(url + "/small")

        async def get_httpx() -> None:
            assert (await hc.get(url + "/small")).content == BODY

        get, close = get_httpx, hc.aclose
    for rep in range(args.reps):
        prof = cProfile.Profile() if args.profile and rep == args.reps - 1 else None
        if prof:
            prof.enable()
        collections = [g["collections"] for g in gc.get_stats()]
        gc_time = GC_TIMER.total
        cpu, wall = time.process_time(), time.perf_counter()
        await gather(get, args.n, args.c)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        collections = [g["collections"] - c for g, c in zip(gc.get_stats(), collections)]
        gc_time = GC_TIMER.total - gc_time
        if prof:
            prof.disable()
            prof.dump_stats(os.path.join(args.profile, f"{kind}.prof"))
        print(
            f"{kind}: {cpu / args.n * 1e6:.0f} us cpu/req, {args.n / wall:,.0f} req/s, "
            f"gc collections by generation {collections} "
            f"taking {gc_time / args.n * 1e6:.0f} us/req",
            flush=True,
        )
    await close()


def run_sync(kind: str, url: str, args: argparse.Namespace) -> None:
    if kind == "sync-ours":
        hc = httpx.Client(transport=HTTPTransport(http2_prior_knowledge=True))
    elif kind == "sync-null":
        hc = httpx.Client(transport=SyncNullTransport())
    elif kind == "sync-httpx":
        hc = httpx.Client(http1=False, http2=True)
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    with hc:
        hc.get(url + "/small")
        for rep in range(args.reps):
            prof = cProfile.Profile() if args.profile and rep == args.reps - 1 else None
            if prof:
                prof.enable()
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(args.n):
                assert hc.get(url + "/small").content == BODY
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if prof:
                prof.disable()
                prof.dump_stats(os.path.join(args.profile, f"{kind}.prof"))
            print(
                f"{kind}: {cpu / args.n * 1e6:.0f} us cpu/req, {wall / args.n * 1e6:.0f} us/req",
                flush=True,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kinds", nargs="+")
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("-c", type=int, default=100)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--nogc", action="store_true", help="run with the garbage collector off")
    p.add_argument("--profile", metavar="DIR")
    args = p.parse_args()
    if args.nogc:
        gc.disable()
    proc, url, _ = bench_httpx.start_server(False)
    try:
        for kind in args.kinds:
            if kind.startswith("sync-"):
                run_sync(kind, url, args)
            else:
                asyncio.run(run_async(kind, url, args))
    finally:
        proc.terminate()
        proc.wait(5)


if __name__ == "__main__":
    main()
