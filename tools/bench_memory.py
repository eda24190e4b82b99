#!/usr/bin/env python3
"""Memory per connection of the server: RSS growth per silent TCP connection
on the TLS port, per idle HTTP/2-over-TLS connection, and per idle h2c
connection (cleartext, the reference).

Each measurement starts a fresh server process (a one-line handler, every
timeout and the connection cap off), opens a few connections of the kind
and closes them (warm-up), reads the server's RSS, opens N connections and
keeps them open, waits for the RSS to settle, and prints (RSS after - RSS
before) / N.  Idle connections have done their handshake (TLS, ALPN h2) and
exchanged the connection preface and SETTINGS, and then say nothing.

    .venv/bin/python tools/bench_memory.py              # N = 300
    .venv/bin/python tools/bench_memory.py -n 1000 --json
    # the same against another copy of the server package (before/after):
    .venv/bin/python tools/bench_memory.py --pythonpath /tmp/before
    # 2000 silent connections against max_connections=100:
    .venv/bin/python tools/bench_memory.py --flood 2000,100

Linux only (it reads /proc/PID/status).  Light: no load, N sockets at most
at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

SERVER = r"""
import dataclasses, ssl, sys
from nghttp2.server import BaseRequestHandler, HTTP2Server
from nghttp2.server.limits import Limits
from nghttp2.server.tls import server_context

class Hello(BaseRequestHandler):
    def on_headers(self):
        self.send_response(200, body=b"ok")

mode, cert, key, cap = sys.argv[1:5]
off = ("max_connections", "idle_timeout", "header_timeout", "settings_timeout",
       "handshake_timeout", "response_timeout")
names = {f.name for f in dataclasses.fields(Limits)}
kwargs = {name: None for name in off if name in names}
kwargs["max_connections"] = int(cap) if cap != "none" else None
limits = Limits(**kwargs)
context = server_context(cert, key) if mode == "tls" else None
server = HTTP2Server(("127.0.0.1", 0), Hello, ssl=context, limits=limits, access_log=False)

async def main():
    await server.start()
    print(server.address[1], flush=True)
    await server.serve()

import asyncio
asyncio.run(main())
"""

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = struct.pack(">I", 0)[1:] + b"\x04\x00\x00\x00\x00\x00"  # empty SETTINGS
SETTINGS_ACK = struct.pack(">I", 0)[1:] + b"\x04\x01\x00\x00\x00\x00"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def settled_rss(pid: int, timeout: float = 5.0) -> int:
    """RSS once two readings 0.3 s apart agree (or at ``timeout``)."""
    last = rss_kib(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = rss_kib(pid)
        if now == last:
            return now
        last = now
    return last


class Server:
    def __init__(
        self, mode: str, cert: Path, key: Path, pythonpath: Optional[str], cap: str = "none"
    ) -> None:
        env = dict(os.environ)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, mode, str(cert), str(key), cap],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            cwd=tempfile.gettempdir(),  # not the repository: --pythonpath decides
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def silent(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port))


def idle_h2(port: int, context: Optional[ssl.SSLContext]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    if context is not None:
        sock = context.wrap_socket(sock, server_hostname="localhost")
        assert sock.selected_alpn_protocol() == "h2"
    sock.sendall(PREFACE + SETTINGS)
    sock.settimeout(10)
    received = b""
    while len(received) < 9:  # the server's SETTINGS frame header at least
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        received += chunk
    sock.sendall(SETTINGS_ACK)
    return sock


def measure(kind: str, n: int, cert: Path, key: Path, pythonpath: Optional[str]) -> float:
    mode = "clear" if kind == "h2c" else "tls"
    context = None
    if kind == "h2-tls":
        context = ssl.create_default_context(cafile=str(cert))
        context.set_alpn_protocols(["h2"])
    server = Server(mode, cert, key, pythonpath)
    try:

        def connect() -> socket.socket:
            return silent(server.port) if kind == "silent-tls" else idle_h2(server.port, context)

        warm = [connect() for _ in range(20)]
        time.sleep(0.5)
        for sock in warm:
            sock.close()
        before = settled_rss(server.proc.pid)
        held: List[socket.socket] = [connect() for _ in range(n)]
        time.sleep(0.5)
        after = settled_rss(server.proc.pid)
        for sock in held:
            sock.close()
        return (after - before) / n
    finally:
        server.stop()


def flood(n: int, cap: int, cert: Path, key: Path, pythonpath: Optional[str]) -> Dict[str, float]:
    """``n`` silent connections to a TLS server capped at ``cap`` (handshake
    timeout off): how many it still holds after 2 s, and its RSS growth."""
    server = Server("tls", cert, key, pythonpath, str(cap))
    try:
        before = settled_rss(server.proc.pid)
        held = [silent(server.port) for _ in range(n)]
        time.sleep(2.0)
        after = settled_rss(server.proc.pid)
        still_open = 0
        for sock in held:
            sock.setblocking(False)
            try:
                still_open += sock.recv(1) != b""  # EOF: closed by the server
            except BlockingIOError:
                still_open += 1  # nothing to read: held
            except OSError:
                pass  # reset by the server
            sock.close()
        return {
            "connections": n,
            "cap": cap,
            "held": still_open,
            "rss_before_mib": before / 1024,
            "rss_after_mib": after / 1024,
        }
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300, help="connections held (default 300)")
    parser.add_argument(
        "--kinds",
        default="silent-tls,h2-tls,h2c",
        help="comma-separated subset of silent-tls,h2-tls,h2c",
    )
    parser.add_argument("--pythonpath", help="put this first on the server's PYTHONPATH")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--flood",
        metavar="N,CAP",
        help="instead: N silent connections against max_connections=CAP (e.g. 2000,100): "
        "how many are held, and the RSS",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from nghttp2.server.tls import write_development_certificate

    results: Dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        write_development_certificate(cert, key)
        if args.flood:
            count, cap = (int(x) for x in args.flood.split(","))
            report = flood(count, cap, cert, key, args.pythonpath)
            if args.json:
                print(json.dumps(report))
            else:
                print(
                    f"{count} silent TLS connections, max_connections={cap}: "
                    f"{report['held']} held; RSS {report['rss_before_mib']:.1f} -> "
                    f"{report['rss_after_mib']:.1f} MiB"
                )
            return 0
        for kind in args.kinds.split(","):
            results[kind] = measure(kind, args.n, cert, key, args.pythonpath)
    if args.json:
        print(json.dumps({"n": args.n, "kib_per_connection": results}))
    else:
        labels = {
            "silent-tls": "silent TCP connection on the TLS port",
            "h2-tls": "idle HTTP/2 connection over TLS",
            "h2c": "idle h2c connection (cleartext)",
        }
        print(f"RSS per connection, {args.n} connections held ({sys.implementation.name}):")
        for kind, kib in results.items():
            print(f"  {labels[kind]:<40} {kib:7.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
