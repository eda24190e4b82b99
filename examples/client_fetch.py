"""Fetch paths from one HTTP/2 server over a single connection.

    python examples/client_fetch.py https://127.0.0.1:8443 / /style.css --cacert ca.pem
    python examples/client_fetch.py http://127.0.0.1:8080 /big.bin --stream

Prints each response's status, size and trailers, and what the server pushed.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import time

from nghttp2.client import Client


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", help="http:// (h2c, prior knowledge) or https:// (TLS, ALPN h2)")
    parser.add_argument("paths", nargs="*", default=["/"])
    parser.add_argument("--cacert", help="trust this CA (PEM) instead of the system's")
    parser.add_argument("--insecure", action="store_true", help="do not verify the certificate")
    parser.add_argument("--no-push", action="store_true", help="SETTINGS_ENABLE_PUSH = 0")
    parser.add_argument("--stream", action="store_true", help="read bodies chunk by chunk")
    args = parser.parse_args()

    context = None
    if args.url.startswith("https:"):
        context = ssl.create_default_context(cafile=args.cacert)
        if args.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE

    async with Client(args.url, ssl=context, enable_push=not args.no_push) as c:
        start = time.perf_counter()
        if args.stream:
            for path in args.paths:
                size = 0
                async with c.stream("GET", path) as r:
                    async for chunk in r.aiter_bytes():
                        size += len(chunk)
                print(f"{r.status} {path} {size} bytes (streamed)")
        else:
            responses = await asyncio.gather(*[c.get(path) for path in args.paths])
            for path, r in zip(args.paths, responses):
                trailers = f" trailers {r.trailers.items()}" if len(r.trailers) else ""
                print(f"{r.status} {path} {len(r.content)} bytes{trailers}")
        for path, pushed in c.pushed.items():
            body = await pushed.aread()
            print(f"  pushed {pushed.status} {path} {len(body)} bytes")
        print(f"{time.perf_counter() - start:.3f}s on one connection")


if __name__ == "__main__":
    asyncio.run(main())
