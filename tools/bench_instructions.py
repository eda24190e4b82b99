#!/usr/bin/env python3
"""CPU instructions per small HTTP/2 request, counted by callgrind.

Wall-clock and CPU-time benchmarks swing on a shared machine; an
instruction count does not.  This runs the server's HTTP/2 protocol in
process (no sockets, no event loop turns beyond what the app needs) under
``valgrind --tool=callgrind``, fed the same pre-built client bytes: batches
of 50 GET requests on one connection, answered by the benchmark's handler
(tools/bench_handlers/ours.py) or ASGI app (asgi_app.py).  The count per
request is the difference between a long and a short run divided by the
requests between them, so start-up and imports cancel out.

    tools/bench_instructions.py                       # this checkout
    tools/bench_instructions.py --baseline ../old     # and another, same run

A baseline is another checkout with its own ``.venv`` (tools/setup.sh).
Instruction counts leave out memory effects (cache misses, page faults,
system calls): they tell which Python path got longer, tools/bench_server.py
tells what it costs a client.  Needs valgrind (apt-get install valgrind).
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ROOT / "tools" / "bench_handlers"
PER_BATCH = 50

# Runs inside the checkout measured (its own .venv and sources).
RUNNER = r"""
import asyncio, os, pickle, sys
sys.path[:0] = [os.getcwd(), os.environ["BENCH_HANDLERS"]]
from nghttp2.server import HTTP2Server
from nghttp2.server.protocol import HTTP2Protocol

class Transport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.sent = 0
    def write(self, data): self.sent += len(data)
    def get_extra_info(self, name, default=None): return None
    def is_closing(self): return False
    def close(self): pass
    def set_write_buffer_limits(self, high=None, low=None): pass
    def pause_reading(self): pass
    def resume_reading(self): pass

async def main():
    batches = pickle.load(open(os.environ["BENCH_BATCHES"], "rb"))
    count = int(os.environ["BENCH_COUNT"])
    asgi = os.environ["BENCH_APP"] == "asgi"
    if asgi:
        from nghttp2.server.asgi.http import asgi_handler
        from asgi_app import app
        handler = asgi_handler(app)
    else:
        from ours import BenchHandler as handler
    server = HTTP2Server(("127.0.0.1", 0), handler, ssl=None, access_log=False)
    protocol = HTTP2Protocol(server)
    transport = Transport()
    protocol.connection_made(transport)
    for batch in batches[:count]:
        protocol.data_received(batch)
        if asgi:
            await asyncio.sleep(0)
    if transport.sent < count * int(os.environ["BENCH_PER_BATCH"]) * 12:
        sys.exit("the server did not answer every request")

asyncio.run(main())
"""


def make_batches(path: Path, batches: int) -> None:
    """The client's bytes: preface, SETTINGS, then batches of GET /small."""
    sys.path.insert(0, str(ROOT))
    from nghttp2_cffi import Session, SessionConfig, SettingCode

    client = Session("client")
    client.set_local_window_size(2**31 - 1)
    # A peer whose SETTINGS lift the client's stream bound: the batches are
    # made without the server's answers (its streams close as it answers).
    peer = Session(
        "server", config=SessionConfig(settings={SettingCode.MAX_CONCURRENT_STREAMS: 2**31 - 1})
    )
    first = client.data_to_send()
    client.receive_data(peer.data_to_send())
    first += client.data_to_send()
    request = [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", b"x"),
        (b":path", b"/small"),
    ]
    out = []
    for i in range(batches):
        for _ in range(PER_BATCH):
            client.send_request(request)
        out.append((first if i == 0 else b"") + client.data_to_send())
    path.write_bytes(pickle.dumps(out))


def instructions(checkout: Path, app: str, count: int, batches: Path, runner: Path) -> int:
    env = dict(
        os.environ,
        PYTHONHASHSEED="0",
        BENCH_HANDLERS=str(HANDLERS),
        BENCH_BATCHES=str(batches),
        BENCH_COUNT=str(count),
        BENCH_APP=app,
        BENCH_PER_BATCH=str(PER_BATCH),
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/out",
                str(checkout / ".venv" / "bin" / "python"),
                str(runner),
            ],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
        )
    if out.returncode:
        sys.exit(f"{checkout}: the run failed:\n{out.stderr[-2000:]}")
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        sys.exit(f"{checkout}: no instruction count in valgrind's output")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", action="append", default=[], metavar="CHECKOUT")
    parser.add_argument("--app", choices=["handler", "asgi", "both"], default="both")
    parser.add_argument("--short", type=int, default=20, help="batches in the short run")
    parser.add_argument("--long", type=int, default=100, help="batches in the long run")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("bench_instructions: valgrind is not installed (apt-get install valgrind)")
    checkouts = [ROOT, *(Path(b).resolve() for b in args.baseline)]
    for checkout in checkouts:
        if not (checkout / ".venv" / "bin" / "python").exists():
            sys.exit(f"bench_instructions: {checkout} has no .venv (run its tools/setup.sh)")
    apps = ["handler", "asgi"] if args.app == "both" else [args.app]
    requests = (args.long - args.short) * PER_BATCH
    with tempfile.TemporaryDirectory() as tmp:
        batches, runner = Path(tmp) / "batches.pkl", Path(tmp) / "runner.py"
        make_batches(batches, args.long)
        runner.write_text(RUNNER)
        print(f"instructions per small h2c request (callgrind; {requests} requests)")
        for app in apps:
            counts = {}
            for checkout in checkouts:
                short = instructions(checkout, app, args.short, batches, runner)
                long = instructions(checkout, app, args.long, batches, runner)
                counts[checkout] = (long - short) / requests
            ours = counts[ROOT]
            for checkout, count in counts.items():
                name = "this checkout" if checkout == ROOT else str(checkout)
                print(f"  {app:8} {count:10,.0f}  {count / ours:5.2f}x  {name}")


if __name__ == "__main__":
    main()
