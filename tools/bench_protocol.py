#!/usr/bin/env python3
"""Protocol-layer benchmark: complete in-memory HTTP/2 exchanges.

A client session and a server session talk to each other in memory, with
no sockets, for three implementations:

- ours: ``nghttp2_cffi.Session`` (cffi over libnghttp2)
- ngh2: ``ngh2.Connection`` (Cython over libnghttp2; CPython only)
- h2:   ``h2.connection.H2Connection`` (pure Python)

Each workload is one "exchange"; the connection and its HPACK state are
reused across exchanges and the handshake happens before the timer starts.
Every side consumes what it receives (the server reads the request headers
and body, the client the response headers and body), and each workload's
result is checked once before it is timed.

Workloads:
  small      GET, 4 header fields -> 204
  headers32  GET with a 32-field header block -> 204
  trickle5   the 32-field request fed to the server 5 bytes at a time -> 204
  body32k    POST with a 32 KiB body sent in two 16 KiB chunks; the server
             collects the body, then answers 204
  multi100   100 GETs sent at once, served at once (200 + 12-byte body),
             the responses received at once (figures are per batch)

Figures are microseconds (of CPU time) per exchange, the best (min) of
several repeats; the implementations' runs alternate.
``--pypy`` (the default when /usr/bin/pypy3 exists) also runs ours and h2
under PyPy, in a venv made once at .venv-pypy/ in the repo.

  .venv/bin/python tools/bench_protocol.py            # full run
  .venv/bin/python tools/bench_protocol.py --quick    # smoke test, seconds
  .venv/bin/python tools/bench_protocol.py --json     # JSON instead of the table
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parent.parent
PYPY = Path("/usr/bin/pypy3")
PYPY_VENV = REPO / ".venv-pypy"
IS_PYPY = platform.python_implementation() == "PyPy"

WORKLOADS = ["small", "headers32", "trickle5", "body32k", "multi100"]
IMPLS = ["ours", "ngh2", "h2"]

REQ = [
    (b":method", b"GET"),
    (b":scheme", b"http"),
    (b":authority", b"example.com"),
    (b":path", b"/"),
]
REQ32 = REQ + [(b"x-field-%02d" % i, b"value-%02d-abcdefghijkl" % i) for i in range(28)]
POST = [
    (b":method", b"POST"),
    (b":scheme", b"http"),
    (b":authority", b"example.com"),
    (b":path", b"/upload"),
    (b"content-length", b"32768"),
]
CHUNK_A = b"a" * 16384
CHUNK_B = b"b" * 16384
RESP204 = [(b":status", b"204")]
RESP200 = [(b":status", b"200"), (b"content-length", b"12")]
BODY12 = b"hello world\n"
BATCH = 100
TRICKLE = 5

Headers = list[tuple[bytes, bytes]]
Exchange = Callable[[], Any]
Check = Callable[[Any], None]


def _check_get(req: Headers) -> Check:
    def check(result: Any) -> None:
        got, status = result
        assert [(bytes(k), bytes(v)) for k, v in got] == req, got
        assert [(bytes(k), bytes(v)) for k, v in status] == RESP204, status

    return check


def _check_post(result: Any) -> None:
    got, chunks, status = result
    assert [(bytes(k), bytes(v)) for k, v in got] == POST, got
    assert b"".join(chunks) == CHUNK_A + CHUNK_B, len(b"".join(chunks))
    assert [(bytes(k), bytes(v)) for k, v in status] == RESP204, status


def _check_multi(result: Any) -> None:
    served, responses, bodies = result
    assert served == BATCH, served
    assert responses == BATCH, responses
    assert len(bodies) == BATCH, len(bodies)
    assert all(b == BODY12 for b in bodies), bodies[:3]


def _workloads(
    get: Callable[[Headers, int], Exchange],
    body32k: Callable[[], Exchange],
    multi100: Callable[[], Exchange],
) -> dict[str, tuple[Exchange, Check]]:
    """The workloads of one implementation, from its three exchange makers
    (written out per implementation: their APIs differ, and the timed code
    stays free of indirection)."""
    return {
        "small": (get(REQ, 0), _check_get(REQ)),
        "headers32": (get(REQ32, 0), _check_get(REQ32)),
        "trickle5": (get(REQ32, TRICKLE), _check_get(REQ32)),
        "body32k": (body32k(), _check_post),
        "multi100": (multi100(), _check_multi),
    }


# ---- ours ---------------------------------------------------------------


def ours_workloads() -> dict[str, tuple[Exchange, Check]]:
    import nghttp2_cffi as m

    RequestReceived = m.RequestReceived
    ResponseReceived = m.ResponseReceived
    DataReceived = m.DataReceived

    def pair() -> tuple[Any, Any]:
        c, s = m.Session("client"), m.Session("server")
        for _ in range(5):
            out = c.data_to_send()
            if out:
                s.receive_data(out)
            out = s.data_to_send()
            if out:
                c.receive_data(out)
        return c, s

    def get(req: Headers, step: int) -> Exchange:
        c, s = pair()

        def run() -> Any:
            c.send_request(req)
            data = c.data_to_send()
            if step:
                events = []
                for i in range(0, len(data), step):
                    events += s.receive_data(data[i : i + step])
            else:
                events = s.receive_data(data)
            got = None
            for e in events:
                if isinstance(e, RequestReceived):
                    got = e.headers
                    s.send_response(e.stream_id, RESP204)
            status = None
            for e in c.receive_data(s.data_to_send()):
                if isinstance(e, ResponseReceived):
                    status = e.headers
            return got, status

        return run

    def body32k() -> Exchange:
        c, s = pair()

        def run() -> Any:
            sid = c.send_request(POST, end_stream=False)
            c.send_data(sid, CHUNK_A)
            c.send_data(sid, CHUNK_B, end_stream=True)
            got = None
            chunks = []
            for e in s.receive_data(c.data_to_send()):
                if isinstance(e, DataReceived):
                    chunks.append(e.data)
                    if e.end_stream:
                        s.send_response(e.stream_id, RESP204)
                elif isinstance(e, RequestReceived):
                    got = e.headers
            status = None
            for e in c.receive_data(s.data_to_send()):
                if isinstance(e, ResponseReceived):
                    status = e.headers
            return got, chunks, status

        return run

    def multi100() -> Exchange:
        c, s = pair()

        def run() -> Any:
            for _ in range(BATCH):
                c.send_request(REQ)
            served = 0
            for e in s.receive_data(c.data_to_send()):
                if isinstance(e, RequestReceived):
                    s.send_response(e.stream_id, RESP200, BODY12)
                    served += 1
            responses = 0
            bodies = []
            for e in c.receive_data(s.data_to_send()):
                if isinstance(e, ResponseReceived):
                    responses += 1
                elif isinstance(e, DataReceived):
                    bodies.append(e.data)
            return served, responses, bodies

        return run

    return _workloads(get, body32k, multi100)


# ---- ngh2 ---------------------------------------------------------------


def ngh2_workloads() -> dict[str, tuple[Exchange, Check]]:
    import ngh2

    RequestReceived = ngh2.RequestReceived
    ResponseReceived = ngh2.ResponseReceived
    DataReceived = ngh2.DataReceived

    def pair() -> tuple[Any, Any]:
        c, s = ngh2.Connection(ngh2.Role.CLIENT), ngh2.Connection(ngh2.Role.SERVER)
        c.initiate_connection()
        s.initiate_connection()
        for _ in range(5):
            out = c.data_to_send()
            if out:
                s.receive_data(out)
                s.events()
            out = s.data_to_send()
            if out:
                c.receive_data(out)
                c.events()
        return c, s

    def get(req: Headers, step: int) -> Exchange:
        c, s = pair()

        def run() -> Any:
            c.send_request(req, end_stream=True)
            data = c.data_to_send()
            if step:
                events = []
                for i in range(0, len(data), step):
                    s.receive_data(data[i : i + step])
                    events += s.events()
            else:
                s.receive_data(data)
                events = s.events()
            got = None
            for e in events:
                if isinstance(e, RequestReceived):
                    got = e.headers
                    s.send_response(e.stream_id, RESP204, end_stream=True)
            status = None
            c.receive_data(s.data_to_send())
            for e in c.events():
                if isinstance(e, ResponseReceived):
                    status = e.headers
            return got, status

        return run

    def body32k() -> Exchange:
        c, s = pair()

        def run() -> Any:
            sid = c.send_request(POST, end_stream=False)
            c.send_data(sid, CHUNK_A)
            c.send_data(sid, CHUNK_B, end_stream=True)
            got = None
            chunks = []
            s.receive_data(c.data_to_send())
            for e in s.events():
                if isinstance(e, DataReceived):
                    chunks.append(e.data)
                    if e.end_stream:
                        s.send_response(e.stream_id, RESP204, end_stream=True)
                elif isinstance(e, RequestReceived):
                    got = e.headers
            status = None
            c.receive_data(s.data_to_send())
            for e in c.events():
                if isinstance(e, ResponseReceived):
                    status = e.headers
            return got, chunks, status

        return run

    def multi100() -> Exchange:
        c, s = pair()

        def run() -> Any:
            for _ in range(BATCH):
                c.send_request(REQ, end_stream=True)
            served = 0
            s.receive_data(c.data_to_send())
            for e in s.events():
                if isinstance(e, RequestReceived):
                    s.send_response(e.stream_id, RESP200, end_stream=False)
                    s.send_data(e.stream_id, BODY12, end_stream=True)
                    served += 1
            responses = 0
            bodies = []
            c.receive_data(s.data_to_send())
            for e in c.events():
                if isinstance(e, ResponseReceived):
                    responses += 1
                elif isinstance(e, DataReceived):
                    bodies.append(e.data)
            return served, responses, bodies

        return run

    return _workloads(get, body32k, multi100)


# ---- h2 -----------------------------------------------------------------


def h2_workloads() -> dict[str, tuple[Exchange, Check]]:
    from h2.config import H2Configuration
    from h2.connection import H2Connection
    from h2.events import DataReceived, RequestReceived, ResponseReceived, StreamEnded

    def pair() -> tuple[Any, Any]:
        c = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        s = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        c.initiate_connection()
        s.initiate_connection()
        for _ in range(5):
            out = c.data_to_send()
            if out:
                s.receive_data(out)
            out = s.data_to_send()
            if out:
                c.receive_data(out)
        return c, s

    def get(req: Headers, step: int) -> Exchange:
        c, s = pair()

        def run() -> Any:
            sid = c.get_next_available_stream_id()
            c.send_headers(sid, req, end_stream=True)
            data = c.data_to_send()
            if step:
                events = []
                for i in range(0, len(data), step):
                    events += s.receive_data(data[i : i + step])
            else:
                events = s.receive_data(data)
            got = None
            for e in events:
                if isinstance(e, RequestReceived):
                    got = e.headers
                    s.send_headers(e.stream_id, RESP204, end_stream=True)
            status = None
            for e in c.receive_data(s.data_to_send()):
                if isinstance(e, ResponseReceived):
                    status = e.headers
            return got, status

        return run

    def body32k() -> Exchange:
        c, s = pair()

        def run() -> Any:
            sid = c.get_next_available_stream_id()
            c.send_headers(sid, POST, end_stream=False)
            c.send_data(sid, CHUNK_A)
            c.send_data(sid, CHUNK_B, end_stream=True)
            got = None
            chunks = []
            for e in s.receive_data(c.data_to_send()):
                if isinstance(e, DataReceived):
                    chunks.append(e.data)
                    s.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                elif isinstance(e, StreamEnded):
                    s.send_headers(e.stream_id, RESP204, end_stream=True)
                elif isinstance(e, RequestReceived):
                    got = e.headers
            status = None
            for e in c.receive_data(s.data_to_send()):
                if isinstance(e, ResponseReceived):
                    status = e.headers
            return got, chunks, status

        return run

    def multi100() -> Exchange:
        c, s = pair()

        def run() -> Any:
            for _ in range(BATCH):
                c.send_headers(c.get_next_available_stream_id(), REQ, end_stream=True)
            served = 0
            for e in s.receive_data(c.data_to_send()):
                if isinstance(e, RequestReceived):
                    s.send_headers(e.stream_id, RESP200)
                    s.send_data(e.stream_id, BODY12, end_stream=True)
                    served += 1
            responses = 0
            bodies = []
            for e in c.receive_data(s.data_to_send()):
                if isinstance(e, ResponseReceived):
                    responses += 1
                elif isinstance(e, DataReceived):
                    bodies.append(e.data)
                    c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            return served, responses, bodies

        return run

    return _workloads(get, body32k, multi100)


FACTORIES = {"ours": ours_workloads, "ngh2": ngh2_workloads, "h2": h2_workloads}


# ---- timing -------------------------------------------------------------


# CPU time of this process: on a shared machine, time spent waiting for a
# core does not count (cache effects of the neighbours still do).
timer = time.process_time


def calibrate(fn: Exchange, target: float, warmup: float) -> int:
    """Calls per timed run (about ``target`` seconds), after ``warmup``
    seconds of calls (the JIT's, on PyPy)."""
    calls = 0
    t0 = timer()
    while True:
        fn()
        calls += 1
        elapsed = timer() - t0
        if elapsed >= warmup and calls >= 2:
            return max(1, int(target / (elapsed / calls)))


def run_impls(impls: list[str], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """{impl: {workload: µs}} for the implementations importable here.

    The timed runs of the implementations alternate (ours, ngh2, h2, ours,
    ...), so that a change in the machine's load hits all of them alike; each
    figure is the best run.
    """
    warmup = args.warmup if args.warmup is not None else (1.0 if IS_PYPY else 0.05)
    factories: dict[str, dict[str, tuple[Exchange, Check]]] = {}
    for impl in impls:
        try:
            factories[impl] = FACTORIES[impl]()
        except ImportError as exc:
            sys.stderr.write(f"skipping {impl}: {exc}\n")
    results: dict[str, dict[str, float]] = {impl: {} for impl in factories}
    for name in args.workloads:
        runs = {}
        for impl, workloads in factories.items():
            fn, check = workloads[name]
            check(fn())  # correctness, once, before timing
            runs[impl] = (fn, range(calibrate(fn, args.target, warmup)))
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(args.repeats):
            for impl, (fn, loop) in runs.items():
                t0 = timer()
                for _ in loop:
                    fn()
                best[impl] = min(best[impl], (timer() - t0) / len(loop))
        for impl, seconds in best.items():
            results[impl][name] = seconds * 1e6
    return results


# ---- PyPy ---------------------------------------------------------------


def _pypy_python() -> Path:
    """The .venv-pypy interpreter, with the package built for it (made once;
    the C module is rebuilt when csrc/ or build_ffi.py changed since)."""
    python = PYPY_VENV / "bin" / "python"
    quiet = ["-q", "--disable-pip-version-check"]
    if not python.exists():
        sys.stderr.write(f"creating {PYPY_VENV} (once)...\n")
        subprocess.run([str(PYPY), "-m", "venv", str(PYPY_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", *quiet, "-e", str(REPO)], check=True)
        # h2 as a pure-Python reference under the same JIT; optional.
        subprocess.run([str(python), "-m", "pip", "install", *quiet, "h2"], check=False)
    modules = list((REPO / "nghttp2_cffi").glob("_nghttp2.pypy*.so"))
    sources = [*(REPO / "csrc").iterdir(), REPO / "build_ffi.py"]
    newest = max(p.stat().st_mtime for p in sources)
    if not modules or min(p.stat().st_mtime for p in modules) < newest:
        sys.stderr.write("building the C module for PyPy...\n")
        subprocess.run(
            [str(python), "build_ffi.py"], cwd=REPO, check=True, stdout=subprocess.DEVNULL
        )
    return python


def run_pypy(impls: list[str], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    python = _pypy_python()
    cmd = [
        str(python),
        str(Path(__file__).resolve()),
        "--worker",
        "--impls",
        ",".join(impls),
        "--repeats",
        str(args.repeats),
        "--target",
        str(args.target),
        "--workloads",
        ",".join(args.workloads),
    ]
    if args.warmup is not None:
        cmd += ["--warmup", str(args.warmup)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return {f"{impl} pypy": figures for impl, figures in json.loads(out).items()}


# ---- report -------------------------------------------------------------


def table(results: dict[str, dict[str, float]], workloads: list[str]) -> str:
    columns = [c for c in ("ours", "ngh2", "h2", "ours pypy", "h2 pypy") if c in results]
    ratios = []
    if "ours" in results and "ngh2" in results:
        ratios.append(("ours/ngh2", "ours", "ngh2"))
    if "ours" in results and "h2" in results:
        ratios.append(("h2/ours", "h2", "ours"))
    if "ours pypy" in results and "ngh2" in results:
        ratios.append(("ours pypy/ngh2", "ours pypy", "ngh2"))
    head = ["workload (µs/exchange)", *columns, *(r[0] for r in ratios)]
    rows = [head, ["---"] * len(head)]
    for w in workloads:
        row = [w]
        row += [f"{results[c][w]:.1f}" if w in results[c] else "-" for c in columns]
        for _, num, den in ratios:
            a, b = results[num].get(w), results[den].get(w)
            row.append(f"{a / b:.2f}" if a and b else "-")
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny run (CI smoke test)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--pypy",
        dest="pypy",
        action="store_true",
        default=None,
        help="also run ours and h2 under PyPy (default: if /usr/bin/pypy3 exists)",
    )
    p.add_argument("--no-pypy", dest="pypy", action="store_false")
    p.add_argument("--impls", default=",".join(IMPLS), help="comma-separated, of: ours,ngh2,h2")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated")
    p.add_argument("--repeats", type=int, default=7, help="timed runs; the best counts")
    p.add_argument("--target", type=float, default=0.1, help="seconds per timed run")
    p.add_argument("--warmup", type=float, default=None, help="seconds of calls before timing")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.workloads = [w for w in args.workloads.split(",") if w]
    unknown = set(args.workloads) - set(WORKLOADS)
    if unknown:
        p.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    if args.quick:
        args.repeats, args.target, args.warmup = 2, 0.002, 0.0
    impls = [i for i in args.impls.split(",") if i]

    if args.worker:
        json.dump(run_impls(impls, args), sys.stdout)
        return 0

    results = run_impls(impls, args)
    if args.pypy is None:
        args.pypy = PYPY.exists() and not IS_PYPY
    if args.pypy:
        pypy_impls = [i for i in impls if i != "ngh2"]  # ngh2 is built for CPython only
        if pypy_impls:
            results.update(run_pypy(pypy_impls, args))
    if args.json:
        json.dump(
            {
                "python": sys.version.split()[0],
                "implementation": platform.python_implementation(),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "load_average": os.getloadavg()[0],
                "unit": "CPU microseconds per exchange, best of the repeats",
                "results": results,
            },
            sys.stdout,
            indent=2,
        )
        print()
    else:
        print(
            f"Python {sys.version.split()[0]} ({platform.python_implementation()}), "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
            f"best of {args.repeats}"
        )
        print(table(results, args.workloads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
