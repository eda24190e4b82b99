"""httpx on nghttp2.httpx's transports against httpx's own HTTP/2, in one run.

    .venv/bin/python tools/bench_httpx.py [--requests 2000] [--concurrency 100]
        [--size-mib 50] [--sequential 500] [--tls]

Starts this project's server (handler API) in a subprocess on 127.0.0.1 and
runs each workload with ``httpx.AsyncClient(http2=True)`` (h2c: ``http1=False``)
and with ``AsyncClient(transport=nghttp2.httpx.AsyncHTTPTransport(...))``, the
synchronous ones with ``httpx.Client``: wall time and the client process's CPU
time (``time.process_time``), then ours/httpx ratios (> 1: ours is better).
The concurrent GETs run once more on httpx with a null transport (a canned
response after one loop turn): httpx's own cost per request, the floor
under any transport and so the ceiling of the ratios.
Absolute figures swing between runs on a shared machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import tempfile
import time
from typing import Any, Awaitable, Callable, Dict, List, Tuple

import httpx

from nghttp2.httpx import AsyncHTTPTransport, HTTPTransport

CHUNK = b"x" * (1 << 16)


def serve(port: int, cert_dir: str) -> None:
    """The server side (``--serve PORT``): /small, /upload, /download?size=N."""
    from nghttp2.server import DATA_EOF, DATA_OK, BaseRequestHandler, HTTP2Server

    class Handler(BaseRequestHandler):
        def on_headers(self) -> None:
            self.received = 0

        def on_data(self, data: bytes) -> None:
            self.received += len(data)

        def on_request_done(self) -> None:
            path = self.path or b"/"
            if path.startswith(b"/download"):
                left = [int(path.split(b"size=")[1])]

                def generate(n: int) -> Tuple[bytes, int]:
                    chunk = CHUNK[: min(n, left[0])]
                    left[0] -= len(chunk)
                    return chunk, DATA_EOF if left[0] <= 0 else DATA_OK

                self.send_response(200, [("content-length", str(left[0]))], generate)
            elif path == b"/upload":
                self.send_response(200, body=str(self.received).encode())
            else:
                self.send_response(200, [("content-type", "text/plain")], b"hello, world")

    ctx = None
    if cert_dir:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(cert_dir, "cert.pem"), os.path.join(cert_dir, "key.pem"))

    async def main() -> None:
        srv = HTTP2Server(("127.0.0.1", port), Handler, ssl=ctx, access_log=False)
        await srv.start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def start_server(tls: bool) -> Tuple[subprocess.Popen[bytes], str, Any]:
    cert_dir = ""
    verify: Any = True
    if tls:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        cert_dir = tempfile.mkdtemp(prefix="bench-httpx-")
        cert.private_key_pem.write_to_path(os.path.join(cert_dir, "key.pem"))
        with open(os.path.join(cert_dir, "cert.pem"), "wb") as f:
            f.writelines(blob.bytes() for blob in cert.cert_chain_pems)
        verify = ssl.create_default_context()
        ca.configure_trust(verify)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--cert-dir", cert_dir],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise SystemExit("the server did not start")
    return proc, f"{'https' if tls else 'http'}://127.0.0.1:{port}", verify


def async_client(ours: bool, tls: bool, verify: Any) -> httpx.AsyncClient:
    timeout = httpx.Timeout(120.0)
    if ours:
        transport = AsyncHTTPTransport(verify=verify, http2_prior_knowledge=not tls)
        return httpx.AsyncClient(transport=transport, timeout=timeout)
    return httpx.AsyncClient(http1=tls, http2=True, verify=verify, timeout=timeout)


def sync_client(ours: bool, tls: bool, verify: Any) -> httpx.Client:
    timeout = httpx.Timeout(120.0)
    if ours:
        transport = HTTPTransport(verify=verify, http2_prior_knowledge=not tls)
        return httpx.Client(transport=transport, timeout=timeout)
    return httpx.Client(http1=tls, http2=True, verify=verify, timeout=timeout)


Result = Tuple[float, float]  # wall seconds, client CPU seconds


async def measure_async(work: Callable[[], Awaitable[None]]) -> Result:
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure_sync(work: Callable[[], None]) -> Result:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


class NullTransport(httpx.AsyncBaseTransport):
    """The floor: a canned response after one loop turn (as a transport on
    a network must wait), so what is measured is httpx itself."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)
        return httpx.Response(
            200, headers=[(b"content-type", b"text/plain")], content=b"hello, world"
        )


async def null_floor(url: str, n: int, c: int) -> Result:
    """The concurrent small GETs on httpx with :class:`NullTransport`."""
    async with httpx.AsyncClient(transport=NullTransport()) as client:
        sem = asyncio.Semaphore(c)

        async def one() -> None:
            async with sem:
                r = await client.get(url + "/small")
                assert r.content == b"hello, world"

        async def many() -> None:
            await asyncio.gather(*[one() for _ in range(n)])

        return await measure_async(many)


def run(args: argparse.Namespace, url: str, verify: Any) -> Dict[str, Dict[bool, Result]]:
    results: Dict[str, Dict[bool, Result]] = {}
    size = int(args.size_mib * (1 << 20))
    n, c = args.requests, args.concurrency

    for ours in (False, True):

        async def workloads(ours: bool = ours) -> None:
            async with async_client(ours, args.tls, verify) as client:
                await client.get(url + "/small")  # connect outside the figures

                async def many() -> None:
                    sem = asyncio.Semaphore(c)

                    async def one() -> None:
                        async with sem:
                            r = await client.get(url + "/small")
                            assert r.content == b"hello, world"

                    await asyncio.gather(*[one() for _ in range(n)])

                async def upload() -> None:
                    r = await client.post(url + "/upload", content=b"u" * size)
                    assert int(r.text) == size

                async def streamed_upload() -> None:
                    async def body() -> Any:
                        for _ in range(size // len(CHUNK)):
                            yield CHUNK

                    r = await client.post(url + "/upload", content=body())
                    assert int(r.text) == size // len(CHUNK) * len(CHUNK)

                async def download() -> None:
                    got = 0
                    async with client.stream("GET", f"{url}/download?size={size}") as r:
                        async for chunk in r.aiter_bytes():
                            got += len(chunk)
                    assert got == size

                for name, work in (
                    (f"{n} GETs, {c} concurrent", many),
                    (f"{args.size_mib:g} MiB POST (bytes)", upload),
                    (f"{args.size_mib:g} MiB POST (async iterator)", streamed_upload),
                    (f"{args.size_mib:g} MiB GET (aiter_bytes)", download),
                ):
                    results.setdefault(name, {})[ours] = await measure_async(work)

        asyncio.run(workloads())

        with sync_client(ours, args.tls, verify) as client:
            client.get(url + "/small")

            def sequential(client: httpx.Client = client) -> None:
                for _ in range(args.sequential):
                    assert client.get(url + "/small").content == b"hello, world"

            def sync_download(client: httpx.Client = client) -> None:
                got = 0
                with client.stream("GET", f"{url}/download?size={size}") as r:
                    for chunk in r.iter_bytes():
                        got += len(chunk)
                assert got == size

            name = f"sync Client: {args.sequential} GETs one after another"
            results.setdefault(name, {})[ours] = measure_sync(sequential)
            name = f"sync Client: {args.size_mib:g} MiB GET (iter_bytes)"
            results.setdefault(name, {})[ours] = measure_sync(sync_download)
    floor = asyncio.run(null_floor(url, n, c))
    results["floor"] = {False: floor, True: floor}
    return results


def report(results: Dict[str, Dict[bool, Result]], args: argparse.Namespace) -> None:
    print(
        f"httpx {httpx.__version__}, {'TLS' if args.tls else 'h2c'}, our server in a subprocess; "
        "ratios > 1: ours is better"
    )
    head = f"{'workload':<48} {'httpx s':>9} {'ours s':>9} {'speed x':>8} {'cpu x':>7}"
    print(head)
    print("-" * len(head))
    rows: List[str] = []
    floor = results.pop("floor")[False]
    for name, r in results.items():
        (hw, hc), (ow, oc) = r[False], r[True]
        rows.append(f"{name:<48} {hw:9.3f} {ow:9.3f} {hw / ow:8.1f} {hc / max(oc, 1e-9):7.1f}")
    print("\n".join(rows))
    many = next(iter(results.values()))
    (hw, hc), (ow, oc) = many[False], many[True]
    n = args.requests
    print(
        f"\nrequests/s (concurrent GETs): httpx {n / hw:,.0f}, ours {n / ow:,.0f}; "
        f"client CPU per request: httpx {hc / n * 1e6:,.0f} us, ours {oc / n * 1e6:,.0f} us"
    )
    fw, fc = floor
    print(
        f"floor (httpx on a null transport, same GETs): {n / fw:,.0f} req/s, client CPU per "
        f"request {fc / n * 1e6:,.0f} us: no transport can beat httpx's own by more than "
        f"{hc / fc:.1f}x in client CPU (ours: {hc / oc:.1f}x)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--size-mib", type=float, default=50)
    p.add_argument("--sequential", type=int, default=500)
    p.add_argument("--tls", action="store_true")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--cert-dir", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.serve, args.cert_dir)
        return
    proc, url, verify = start_server(args.tls)
    try:
        report(run(args, url, verify), args)
    finally:
        proc.terminate()
        proc.wait(5)


if __name__ == "__main__":
    main()
