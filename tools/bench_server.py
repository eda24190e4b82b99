#!/usr/bin/env python3
"""Server benchmark: our server against nghttpd, granian, uvicorn and hypercorn.

Each server serves the same four paths (tools/bench_handlers/): our
callback (handler) API runs ours.py, nghttpd (C) serves plain files, and
every ASGI server -- ours-asgi, granian, uvicorn, hypercorn -- runs the
same ASGI application, asgi_app.py.  Like is compared with like: the
tables list the callback API and the ASGI servers apart, ratios are taken
within one API, and the only cross-API figures are two of issue 14's
targets, labelled "callback API vs <peer>'s ASGI".  h2load drives them:

  (a) small    12-byte response, h2c, -c10 -m10                  req/s
  (b) tls      the same over TLS (ALPN h2, self-signed cert)     req/s
  (c) large    1 MiB response, h2c, -c4 -m4                      MB/s
  (d) conns    12-byte response, -c1000 -m1 (1000 connections)   req/s
  (e) upload   1 MiB POST bodies read through on_data, -c4 -m4   MB/s (sent)
  (f) deferred 12-byte bodies deferred (DATA_DEFERRED) and resumed from the
               loop, -c10 -m100 (1000 streams in flight); for the ASGI peers
               an app that awaits asyncio.sleep(0) first; nghttpd: n/a
  (g) h1       12-byte response, HTTP/1.1 keep-alive, h2load --h1 -c50   req/s
               (nghttpd: n/a, it speaks HTTP/2 only)
  memory       RSS per idle HTTP/2 connection with 1000 open (preface +
               SETTINGS, then nothing), for every server; RSS growth of ours
               over 1M requests (50k with --quick)

Our server runs as ``ours`` (asyncio), ``ours-uvloop`` (--loop uvloop, when
uvloop is installed), ``ours-pypy`` (the same command under PyPy, from the
repo's .venv-pypy, made on first use as tools/test_pypy.sh makes it, when
pypy3 is installed; ``ours-pypy-uvloop`` too, should uvloop ever import on
PyPy: uvloop 0.23 builds there but its module does not load on PyPy 7.3.11)
for (a) only, ``ours-2w`` (--workers 2: scaling from 1 to 2 processes), and
``ours-asgi``: the peers' ASGI application (asgi_app.py) on our server.
One server process each, pinned to core 0, with h2load pinned to core 1
(``ours-2w`` gets both cores, so it shares one with h2load).  Each workload
starts fresh servers side by side and warms every one of them up alike with
untimed h2load passes of the same workload, about 3 s of load in all (PyPy's
JIT needs them; the others get the same, to keep it fair), then runs 3
rounds over them (round-robin, so that load from elsewhere on a shared
machine hits all alike) and keeps each server's best run.  Run sizes: as
many requests as the server did in about 5 s of its last warm-up pass,
capped per workload (200,000 for (a)).  Latency percentiles come from
h2load's --log-file; peak RSS is VmHWM of the serving process(es).  Beside
the wall-clock figures, the CPU time the server process used in each run
(/proc/PID/stat) gives requests (or MB) per server CPU-second, a figure
that load from other processes on a shared machine disturbs far less, and
CPU% tells whether the server was the bottleneck (~100%) or h2load was;
both come from the same (best) run as the wall-clock figure beside them.
Then come the ratios within one API (ours-asgi/granian, ours-asgi/uvicorn,
ours/nghttpd, ...), and issue 14's targets: each a ratio, its threshold,
met or not, judged on CPython (ours, ours-uvloop, ours-asgi; PyPy shown).
Peers' settings: granian --http 2 (--http 1 for (g)); uvicorn --http
httptools for (g) and --http zttp --http2 for the HTTP/2 workloads (its
only HTTP/2; without zttp those say n/a), its default loop (uvloop when
installed); nghttpd -w/-W at our Limits' receive windows.
PyPy takes its GC settings from the environment, which the servers inherit
(PYPY_GC_NURSERY: its default is half the cache /proc/cpuinfo reports).

  python tools/bench_server.py             # the full run, ~30 minutes
  python tools/bench_server.py --quick     # CI smoke test: tiny counts, exit 1 if a request fails
  python tools/bench_server.py --json      # JSON instead of tables
  python tools/bench_server.py --profile DIR   # also py-spy our server under (a), (c), (d)
  python tools/bench_server.py --markdown docs/performance.md   # also write the tables there
  python tools/bench_server.py --from-json REPORT --markdown FILE  # a --save'd report, no run

Peers are used when installed: nghttpd (``apt-get install nghttp2-server``),
granian, uvicorn (with httptools, and zttp for HTTP/2) and hypercorn (the
``bench`` extra); h2load (``nghttp2-client``) is required.  The exit status is 1 when
any request to one of our servers failed, or nothing could run; peers'
failures are reported in the tables only.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import resource
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from nghttp2.server.tls import write_development_certificate  # noqa: E402

HANDLERS = REPO / "tools" / "bench_handlers"
BIN = Path(sys.executable).parent

SMALL = b"hello world\n"
LARGE_SIZE = 1 << 20
MIB = float(1 << 20)
#: Seconds of load per timed run in full mode (before the per-workload cap).
RUN_SECONDS = 5.0
#: Seconds of untimed load every server gets before its timed runs (full
#: mode), in passes of about WARMUP_PASS_SECONDS each.  PyPy's JIT settles
#: after well under a second of (a) here; each workload takes its own code
#: paths (TLS, uploads, deferred bodies, new connections), so each warms up.
WARMUP_SECONDS = 3.0
WARMUP_PASS_SECONDS = 1.0
#: PyPy: Debian's pypy3 and the venv it gets here (shared with
#: tools/test_pypy.sh and tools/bench_protocol.py).
PYPY_VENV = REPO / ".venv-pypy"
PYPY_PYTHON = PYPY_VENV / "bin" / "python"
#: Connections kept open for the idle-memory measurement.
IDLE_CONNECTIONS = 1000
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"


# ---- workloads --------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    key: str
    name: str
    title: str
    path: str
    clients: int
    streams: int
    n_full: int  # cap on requests per timed run
    n_quick: int
    tls: bool = False
    upload: bool = False
    metric: str = "req/s"  # or "MB/s"
    h1: bool = False  # HTTP/1.1 keep-alive (h2load --h1) instead of HTTP/2

    def h2load_shape(self) -> str:
        return ("--h1 " if self.h1 else "") + f"-c{self.clients} -m{self.streams}"


WORKLOADS = [
    Workload("a", "small", "12 B response, h2c", "/small", 10, 10, 200_000, 2_000),
    Workload("b", "tls", "12 B response, TLS", "/small", 10, 10, 200_000, 2_000, tls=True),
    Workload("c", "large", "1 MiB response, h2c", "/1m", 4, 4, 20_000, 40, metric="MB/s"),
    Workload("d", "conns", "12 B, 1000 connections", "/small", 1000, 1, 200_000, 2_000),
    Workload(
        "e",
        "upload",
        "1 MiB POST upload, h2c",
        "/upload",
        4,
        4,
        20_000,
        40,
        upload=True,
        metric="MB/s",
    ),
    Workload("f", "deferred", "12 B deferred+resumed", "/deferred", 10, 100, 200_000, 2_000),
    Workload("g", "h1", "12 B, HTTP/1.1 keep-alive", "/small", 50, 1, 200_000, 2_000, h1=True),
]
BY_KEY = {w.key: w for w in WORKLOADS}


@dataclass(frozen=True)
class Target:
    """One of issue 14's targets: ``api`` (our callback API or our ASGI
    server) / ``peer`` on ``workload``, at least ``goal``, by wall clock or
    per server CPU-second (``by_cpu``)."""

    workload: str
    api: str  # "callback" | "asgi"
    peer: str
    goal: float
    by_cpu: bool = False

    @property
    def label(self) -> str:
        workload = BY_KEY[self.workload]
        peer_api = SERVER_API.get(self.peer, "asgi")
        if self.api == peer_api:
            ours = "ours-asgi" if self.api == "asgi" else "ours (callback)"
            pair = f"{ours}/{self.peer}"
        else:  # said outright: our callback API against the peer's ASGI server
            pair = f"callback API vs {self.peer}'s ASGI"
        by = ", per server CPU-s" if self.by_cpu else ""
        return f"({workload.key}) {workload.name}: {pair} {workload.metric}{by}"


#: Issue 14's targets, each a ratio in one run (CPython, one process):
#: ASGI >= 1.0x granian's ASGI and >= 1.5x uvicorn on every workload of the
#: issue's table (a, b, c, d, g); the callback API >= 1.5x granian at 1000
#: connections, >= 0.5x nghttpd on (a) and (b), >= 0.9x nghttpd on (c) by
#: wall clock and per server CPU-second; HTTP/1.1 callback >= 1.5x uvicorn.
TARGETS: List[Target] = [
    *(Target(key, "asgi", "granian", 1.0) for key in "abcdg"),
    *(Target(key, "asgi", "uvicorn", 1.5) for key in "abcdg"),
    Target("d", "callback", "granian", 1.5),
    Target("a", "callback", "nghttpd", 0.5),
    Target("b", "callback", "nghttpd", 0.5),
    Target("c", "callback", "nghttpd", 0.9),
    Target("c", "callback", "nghttpd", 0.9, by_cpu=True),
    Target("g", "callback", "uvicorn", 1.5),
]
IDLE_TARGET_KIB = 30.0
GROWTH_TARGET_PERCENT = 1.0
#: Streams uvicorn (zttp) serves on one HTTP/2 connection before it calls it
#: a flood: its HTTP/2 runs are cut to this many requests per h2load client.
UVICORN_H2_STREAMS = 4096
#: Which API each peer serves: nghttpd serves files (C, no application
#: code), the comparison point of our callback API; the others run
#: asgi_app.py.
SERVER_API = {
    "nghttpd": "callback",
    "granian": "asgi",
    "uvicorn": "asgi",
    "hypercorn": "asgi",
}
#: Ratios printed besides the targets: (numerator, denominator), the same
#: API on both sides, on every workload both ran; our variants against
#: ``ours``/``ours-asgi`` too (PyPy/CPython, uvloop/asyncio, base/this).
SAME_API_RATIOS: List[Tuple[str, str]] = [
    ("ours-asgi", "granian"),
    ("ours-asgi", "uvicorn"),
    ("ours-asgi", "hypercorn"),
    ("ours", "nghttpd"),
    ("ours-uvloop", "nghttpd"),
    ("ours-pypy", "nghttpd"),
    ("ours-uvloop", "ours"),
    ("ours-pypy", "ours"),
    ("ours", "base"),
    ("ours-asgi", "base-asgi"),
]


# ---- servers ----------------------------------------------------------------


@dataclass
class ServerSpec:
    name: str
    kind: str  # ours | nghttpd | granian | uvicorn | hypercorn
    loop: str = "asyncio"
    workers: int = 1
    only: Tuple[str, ...] = ()  # workloads it runs (empty: all it supports)
    missing: str = ""  # why it cannot run, if it cannot
    python: str = ""  # ours: the interpreter (empty: this one)
    repo: str = ""  # ours: the checkout to run (empty: this one); see --baseline
    asgi: bool = False  # ours: serve asgi_app:app (the peers' app) instead of the handler
    h2_missing: str = ""  # why it cannot serve HTTP/2 (uvicorn without zttp)
    #: HTTP/2 requests one connection may carry (0: no limit); runs are cut
    #: to this many per h2load client
    h2_streams_per_connection: int = 0

    @property
    def ours(self) -> bool:
        return self.kind == "ours"

    def unsupported(self, workload: Workload) -> str:
        """Why this server does not run ``workload`` ("" if it does)."""
        if self.only and workload.key not in self.only:
            return "not run"
        if self.kind == "nghttpd" and workload.key == "f":
            return "n/a"
        if self.kind == "nghttpd" and workload.h1:
            return "n/a (nghttpd speaks HTTP/2 only)"
        if self.kind == "hypercorn" and workload.h1:
            # h11 answers "HTTP/1.1 200 " (no reason phrase), for which
            # h2load 1.52 records no status: every request counts as failed
            return 'n/a (h2load records no status for h11\'s "HTTP/1.1 200 ")'
        if not workload.h1 and self.h2_missing:
            return self.h2_missing
        return ""


def _find(name: str) -> Optional[str]:
    local = BIN / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def _pypy_stale() -> bool:
    """The PyPy build of the C module is missing or older than its sources."""
    modules = list((REPO / "nghttp2_cffi").glob("_nghttp2.pypy*.so"))
    sources = [*(REPO / "csrc").iterdir(), REPO / "build_ffi.py"]
    newest = max(p.stat().st_mtime for p in sources)
    return not modules or min(p.stat().st_mtime for p in modules) < newest


def pypy_python() -> Tuple[str, str]:
    """(interpreter, "") for ours-pypy, or ("", why it cannot run).

    The interpreter is .venv-pypy's: made on first use as tools/test_pypy.sh
    makes it (``pypy3 -m venv``, ``pip install -e .``, which brings the
    server's httptools and wsproto; both install on PyPy), completed when
    the server's imports fail, and its C module rebuilt when csrc/ or
    build_ffi.py changed since it was built."""
    python = str(PYPY_PYTHON)
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", str(REPO)]
    check = [python, "-c", "import nghttp2.server, httptools, wsproto"]

    def step(argv: List[str], what: str) -> str:
        proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
        if proc.returncode:
            return f"{what} failed: {(proc.stdout + proc.stderr).strip()[-300:]}"
        return ""

    if not PYPY_PYTHON.exists():
        pypy = shutil.which("pypy3")
        if pypy is None:
            return "", "pypy3 is not installed (apt-get install pypy3 pypy3-dev pypy3-venv)"
        sys.stderr.write(f"creating {PYPY_VENV} for ours-pypy (once)...\n")
        error = step([pypy, "-m", "venv", str(PYPY_VENV)], "pypy3 -m venv") or step(
            pip, "pip install -e . (PyPy)"
        )
        if error:
            return "", error
    if subprocess.run(check, cwd=REPO, capture_output=True).returncode:
        sys.stderr.write(f"installing the package and its dependencies in {PYPY_VENV}...\n")
        error = step(pip, "pip install -e . (PyPy)") or step(check, "import nghttp2.server (PyPy)")
        if error:
            return "", error
    if _pypy_stale():
        # Through pip (an isolated, current setuptools): build_ffi.py run by
        # the venv's own setuptools fails on pyproject's `license = "MIT"`.
        sys.stderr.write("building the C module for PyPy...\n")
        error = step(pip, "pip install -e . (PyPy, the C module)")
        if error:
            return "", error
    return python, ""


def _imports(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def baseline_specs(checkout: str) -> List[ServerSpec]:
    """``base`` and ``base-asgi``: our server from another checkout (its own
    ``.venv``, made by its tools/setup.sh), so that a change is measured
    before and after in one run; the ``ours/this`` column is then the
    speed-up."""
    root = Path(checkout).resolve()
    python = root / ".venv" / "bin" / "python"
    missing = "" if python.exists() else f"no {python} (run tools/setup.sh in {root})"
    return [
        ServerSpec("base", "ours", python=str(python), repo=str(root), missing=missing),
        ServerSpec(
            "base-asgi", "ours", python=str(python), repo=str(root), asgi=True, missing=missing
        ),
    ]


def server_specs(wanted: Optional[List[str]]) -> List[ServerSpec]:
    try:
        import uvloop  # noqa: F401

        uvloop_missing = ""
    except ImportError:
        uvloop_missing = "uvloop is not installed (pip install uvloop)"
    pypy_names = {"ours-pypy", "ours-pypy-uvloop"}
    pypy, pypy_missing = ("", "") if wanted and not pypy_names & set(wanted) else pypy_python()
    pypy_uvloop_missing = pypy_missing
    if pypy and not _imports(pypy, "uvloop"):
        pypy_uvloop_missing = "uvloop does not import on this PyPy"
    specs = [
        ServerSpec("ours", "ours"),
        ServerSpec("ours-uvloop", "ours", loop="uvloop", missing=uvloop_missing),
        ServerSpec("ours-pypy", "ours", python=pypy, missing=pypy_missing),
        ServerSpec(
            "ours-pypy-uvloop", "ours", loop="uvloop", python=pypy, missing=pypy_uvloop_missing
        ),
        ServerSpec("ours-2w", "ours", workers=2, only=("a",)),
        # The ASGI row: granian's and hypercorn's application on our server.
        ServerSpec("ours-asgi", "ours", asgi=True),
        ServerSpec(
            "nghttpd",
            "nghttpd",
            missing="" if _find("nghttpd") else "apt-get install nghttp2-server",
        ),
        ServerSpec("granian", "granian", missing="" if _find("granian") else "pip install granian"),
        # uvicorn: HTTP/1.1 through httptools; HTTP/2 only through zttp
        # (uvicorn >= 0.55: --http zttp --http2; zttp needs Python 3.11+).
        ServerSpec(
            "uvicorn",
            "uvicorn",
            missing=""
            if _find("uvicorn") and importlib.util.find_spec("httptools")
            else "pip install uvicorn httptools",
            h2_missing=""
            if importlib.util.find_spec("zttp")
            else "n/a: uvicorn serves HTTP/2 only with --http zttp (pip install zttp)",
            # uvicorn 0.55 with zttp 0.0.35 answers the 4097th stream of a
            # connection with GOAWAY ENHANCE_YOUR_CALM ("HTTP/2 flood
            # detected"), whatever the pace (h2load -c1 -m1 too)
            h2_streams_per_connection=UVICORN_H2_STREAMS,
        ),
        ServerSpec(
            "hypercorn", "hypercorn", missing="" if _find("hypercorn") else "pip install hypercorn"
        ),
    ]
    if wanted:
        unknown = set(wanted) - {s.name for s in specs}
        if unknown:
            raise SystemExit(f"unknown server(s): {', '.join(sorted(unknown))}")
        specs = [s for s in specs if s.name in wanted]
    else:  # ours-pypy-uvloop only where it can run (not on PyPy 7.3.11)
        specs = [s for s in specs if not (s.name == "ours-pypy-uvloop" and s.missing)]
    return specs


def window_bits() -> Tuple[int, int]:
    """log2 of our server's default receive windows (Limits'
    initial_window_size, connection_window_size): nghttpd's -w and -W."""
    from nghttp2.server.limits import Limits

    limits = Limits()
    return (
        max(limits.initial_window_size.bit_length() - 1, 16),
        max(limits.connection_window_size.bit_length() - 1, 16),
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pinned(cores: Optional[str], argv: List[str]) -> List[str]:
    if cores is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", cores, *argv]


class Files:
    """Temporary files every server shares: certificate, docroot, upload body."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.docroot = root / "htdocs"
        self.docroot.mkdir()
        (self.docroot / "small").write_bytes(SMALL)
        (self.docroot / "upload").write_bytes(SMALL)  # nghttpd answers POSTs with the file
        (self.docroot / "1m").write_bytes(b"x" * LARGE_SIZE)
        self.upload = root / "upload.bin"
        self.upload.write_bytes(b"u" * LARGE_SIZE)
        self.cert = root / "cert.pem"
        self.key = root / "key.pem"
        self.tls_error = ""
        try:
            write_development_certificate(self.cert, self.key)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            self.tls_error = f"no certificate for the TLS workloads: {exc}"


class Server:
    """One running server process."""

    def __init__(
        self, spec: ServerSpec, tls: bool, files: Files, cores: Optional[str], h1: bool = False
    ) -> None:
        self.spec = spec
        self.tls = tls
        self.h1 = h1  # serves the HTTP/1.1 workload (granian and uvicorn start differently)
        self.port = _free_port()
        proto = "h1" if h1 else "tls" if tls else "h2c"
        self.log = files.root / f"{spec.name}-{proto}-{self.port}.log"
        argv, env = self._command(files)
        self.argv = argv
        with open(self.log, "wb") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                _pinned(cores, argv),
                env=env,
                cwd=str(files.root),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def _command(self, files: Files) -> Tuple[List[str], Dict[str, str]]:
        spec, port = self.spec, str(self.port)
        env = dict(os.environ)
        repo = Path(spec.repo) if spec.repo else REPO
        env["PYTHONPATH"] = os.pathsep.join(
            [str(HANDLERS), str(repo)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        if spec.kind == "ours":
            # Checkouts before the nghttp2.server rename run as `-m server`.
            module = "nghttp2" if (repo / "nghttp2" / "__main__.py").exists() else "server"
            argv = [
                spec.python or sys.executable,
                "-m",
                module,
                "--host",
                "127.0.0.1",
                "--port",
                port,
                *(["--asgi", "asgi_app:app"] if spec.asgi else ["--handler", "ours:BenchHandler"]),
                "--no-access-log",
                "--log-level",
                "warning",
                "--loop",
                spec.loop,
                "--workers",
                str(spec.workers),
            ]
            argv += (
                ["--cert", str(files.cert), "--key", str(files.key)] if self.tls else ["--no-tls"]
            )
        elif spec.kind == "nghttpd":
            # Our receive windows, so that (e) uploads flow alike: nghttpd's
            # -w/-W set 2**N-1 (its default is 64 KiB, N=16).
            stream_bits, connection_bits = window_bits()
            argv = [
                str(_find("nghttpd")),
                "-n1",
                "-w",
                str(stream_bits),
                "-W",
                str(connection_bits),
                "-a",
                "127.0.0.1",
                "-d",
                str(files.docroot),
                port,
            ]
            argv += [str(files.key), str(files.cert)] if self.tls else ["--no-tls"]
        elif spec.kind == "granian":
            argv = [
                str(_find("granian")),
                "--interface",
                "asgi",
                "--http",
                "1" if self.h1 else "2",
                "--workers",
                "1",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--no-ws",
                "--backlog",
                "1024",
                "--log-level",
                "warning",
                "asgi_app:app",
            ]
            if self.tls:
                argv += ["--ssl-certificate", str(files.cert), "--ssl-keyfile", str(files.key)]
        elif spec.kind == "uvicorn":
            argv = [
                str(_find("uvicorn")),
                "--host",
                "127.0.0.1",
                "--port",
                port,
                # HTTP/1.1: httptools (the C parser); HTTP/2: zttp, its only way
                *(["--http", "httptools"] if self.h1 else ["--http", "zttp", "--http2"]),
                "--workers",
                "1",
                "--backlog",
                "1024",
                "--no-access-log",
                "--log-level",
                "warning",
                "asgi_app:app",
            ]
            if self.tls:
                argv += ["--ssl-certfile", str(files.cert), "--ssl-keyfile", str(files.key)]
        elif spec.kind == "hypercorn":
            config = files.root / f"hypercorn-{port}.toml"
            lines = [
                f'bind = ["127.0.0.1:{port}"]',
                "workers = 0",  # serve in this process, no supervisor
                "backlog = 1024",
                # hypercorn closes a connection after 1000 requests by default
                "keep_alive_max_requests = 1000000000",
            ]
            if self.tls:
                lines += [f'certfile = "{files.cert}"', f'keyfile = "{files.key}"']
            config.write_text("\n".join(lines) + "\n")
            argv = [str(_find("hypercorn")), "--config", str(config), "asgi_app:app"]
        else:
            raise ValueError(spec.kind)
        return argv, env

    def wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.spec.name} exited with {self.proc.returncode}: {self.output()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.spec.name} did not listen within {timeout:.0f}s")

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    # -- memory of the serving process(es) --

    def serving_pids(self) -> List[int]:
        """The processes that serve: the leaves of the process tree (the
        server itself, or its workers)."""
        children: Dict[int, List[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        leaves, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            kids = children.get(pid, [])
            if kids:
                todo.extend(kids)
            else:
                leaves.append(pid)
        return leaves

    def _status_kib(self, key: str) -> int:
        total = 0
        for pid in self.serving_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU time of the serving processes (all threads)."""
        ticks = 0
        for pid in self.serving_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        return self._status_kib("VmRSS")

    def peak_rss_kib(self) -> int:
        return self._status_kib("VmHWM")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


# ---- h2load -----------------------------------------------------------------


@dataclass
class Run:
    requests: int
    succeeded: int
    failed: int
    seconds: float
    req_s: float
    mb_s: float  # MiB/s received (uploads: MiB/s of request bodies sent)
    p50_ms: float
    p90_ms: float
    p99_ms: float
    ok: bool
    error: str = ""
    cpu_s: float = 0.0  # server CPU time during the run
    per_cpu: float = 0.0  # requests (MB/s workloads: MiB) per server CPU-second


def _seconds(text: str) -> float:
    for unit, scale in (("ms", 1e-3), ("us", 1e-6), ("s", 1.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)


def _percentiles(log: Path) -> Tuple[float, float, float]:
    durations = []
    with open(log) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                durations.append(int(parts[2]))
    if not durations:
        nan = float("nan")
        return nan, nan, nan
    durations.sort()

    def pct(p: float) -> float:
        return durations[min(len(durations) - 1, int(p * len(durations)))] / 1000.0

    return pct(0.50), pct(0.90), pct(0.99)


def h2load(
    server: Server,
    workload: Workload,
    n: int,
    files: Files,
    cores: Optional[str],
    timeout: float = 600.0,
) -> Run:
    n = max(n, workload.clients)
    log = files.root / "h2load-requests.log"
    with contextlib.suppress(FileNotFoundError):
        log.unlink()  # h2load appends
    argv = [
        "h2load",
        "-n",
        str(n),
        "-c",
        str(workload.clients),
        "-m",
        str(workload.streams),
        "--log-file",
        str(log),
    ]
    if workload.upload:
        argv += ["-d", str(files.upload)]
    if workload.h1:
        argv.append("--h1")
    argv.append(server.url(workload.path))
    try:
        proc = subprocess.run(_pinned(cores, argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Run(n, 0, n, timeout, 0, 0, 0, 0, 0, False, f"h2load timed out after {timeout}s")
    out = proc.stdout
    fields: Dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith("finished in"):
            parts = line.replace(",", "").split()
            fields["seconds"] = _seconds(parts[2])
        elif line.startswith("requests:"):
            nums = [int(tok) for tok in line.replace(",", "").split() if tok.isdigit()]
            fields["total"], fields["succeeded"] = nums[0], nums[3]
            fields["failed"] = nums[4] + nums[5] + nums[6]
        elif line.startswith("status codes:"):
            fields["2xx"] = int(line.split(":", 1)[1].split()[0])
        elif line.startswith("traffic:"):
            fields["bytes"] = int(line.split("(", 1)[1].split(")", 1)[0])
    if "seconds" not in fields or "succeeded" not in fields:
        return Run(
            n,
            0,
            n,
            0,
            0,
            0,
            0,
            0,
            0,
            False,
            f"h2load exited with {proc.returncode}: {(out + proc.stderr)[-600:]}",
        )
    seconds = max(fields["seconds"], 1e-9)
    ok = (
        fields["succeeded"] == n
        and fields["failed"] == 0
        and fields.get("2xx") == n
        and proc.returncode == 0
    )
    moved = fields["succeeded"] * LARGE_SIZE if workload.upload else fields.get("bytes", 0)
    p50, p90, p99 = _percentiles(log)
    error = (
        ""
        if ok
        else (f"{n - fields['succeeded']} of {n} requests failed ({fields.get('2xx', 0)} 2xx)")
    )
    return Run(
        n,
        fields["succeeded"],
        fields["failed"],
        seconds,
        fields["succeeded"] / seconds,
        moved / MIB / seconds,
        p50,
        p90,
        p99,
        ok,
        error,
    )


# ---- one (workload, server) measurement -------------------------------------


@dataclass
class Result:
    workload: str
    server: str
    metric: str
    value: float = 0.0  # best run's req/s or MB/s
    req_s: float = 0.0
    mb_s: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    peak_rss_kib: int = 0
    per_cpu: float = 0.0  # best run's requests (or MiB) per server CPU-second
    cpu_percent: float = 0.0  # best run's server CPU time / wall time
    requests_per_run: int = 0
    warmup_passes: int = 0  # untimed h2load passes before the timed runs
    warmup_seconds: float = 0.0
    runs: List[Dict[str, Any]] = field(default_factory=list)
    ok: bool = True
    skipped: str = ""
    error: str = ""
    note: str = ""


class Bench:
    def __init__(self, args: argparse.Namespace, files: Files) -> None:
        self.args = args
        self.files = files
        self.quick: bool = args.quick
        self.runs = 1 if self.quick else args.runs
        self.cpus = os.cpu_count() or 1
        pin = self.cpus >= 2 and not args.no_pin
        self.server_cores = "0" if pin else None
        self.client_cores = "1" if pin else None
        self.notes: List[str] = []
        self._cache: Dict[Tuple[str, bool, bool], Server] = {}

    # servers: in quick mode one process per (server, tls) serves every
    # workload; in full mode each workload gets a fresh process, so that its
    # peak RSS is its own.
    def server(self, spec: ServerSpec, tls: bool, fresh: bool = False, h1: bool = False) -> Server:
        key = (spec.name, tls, h1)
        if fresh and key in self._cache:
            self.release(self._cache[key], force=True)
        if key in self._cache:
            return self._cache[key]
        cores = (
            self.server_cores
            if spec.workers == 1
            else ("0,1" if self.server_cores is not None else None)
        )
        server = Server(spec, tls, self.files, cores, h1)
        try:
            server.wait_listening()
            self._probe(server)
        except RuntimeError:
            server.stop()
            raise
        self._cache[key] = server
        return server

    def release(self, server: Server, force: bool = False) -> None:
        if force or not self.quick:
            server.stop()
            self._cache.pop((server.spec.name, server.tls, server.h1), None)

    def stop_all(self) -> None:
        for server in list(self._cache.values()):
            server.stop()
        self._cache.clear()

    def _probe(self, server: Server, patience: float = 20.0) -> None:
        """A few requests until the server answers (granian's worker and
        hypercorn take a moment after the socket is bound)."""
        probe = Workload("probe", "probe", "", "/small", 1, 1, 10, 10, tls=server.tls, h1=server.h1)
        deadline = time.monotonic() + patience
        while True:
            run = h2load(server, probe, 10, self.files, self.client_cores, timeout=patience)
            if run.ok:
                return
            if time.monotonic() > deadline or server.proc.poll() is not None:
                raise RuntimeError(
                    f"{server.spec.name} does not answer: {run.error}\n{server.output()}"
                )
            time.sleep(0.2)

    def measure(self, workload: Workload, specs: List[ServerSpec]) -> List[Result]:
        """Every server on one workload.  The servers run side by side (idle
        but for the one under load) and the timed runs go round-robin, so a
        burst of load from elsewhere on the machine hits all of them alike."""
        results: List[Result] = []
        live: List[Tuple[Result, Server]] = []
        for spec in specs:
            result = Result(workload.key, spec.name, workload.metric)
            results.append(result)
            if spec.missing:
                result.skipped = spec.missing
            elif spec.unsupported(workload):
                result.skipped = spec.unsupported(workload)
            elif workload.tls and self.files.tls_error:
                result.skipped = self.files.tls_error
            else:
                try:
                    live.append((result, self.server(spec, workload.tls, h1=workload.h1)))
                except RuntimeError as exc:
                    result.ok, result.error = False, str(exc)
        warmups: Dict[str, List[Run]] = {}
        runs: Dict[str, List[Run]] = {}
        try:
            sizes: Dict[str, int] = {}
            for result, server in live:
                warmups[result.server] = self._warm_up(server, workload)
                last = warmups[result.server][-1]
                sizes[result.server] = workload.n_quick
                if not self.quick and last.ok:
                    sizes[result.server] = self._size(workload, last, RUN_SECONDS)
            for _ in range(0 if self.quick else self.runs):
                for result, server in live:
                    if all(r.ok for r in warmups[result.server]):
                        runs.setdefault(result.server, []).append(
                            self._run(server, workload, sizes[result.server])
                        )
            for result, server in live:
                self._summarize(
                    result,
                    workload,
                    warmups[result.server],
                    runs.get(result.server, []),
                    sizes[result.server],
                )
                result.peak_rss_kib = server.peak_rss_kib()
        finally:
            for _, server in live:
                self.release(server)
        return results

    @staticmethod
    def _size(workload: Workload, last: Run, seconds: float) -> int:
        """Requests for about ``seconds`` of load at ``last``'s rate."""
        return int(min(workload.n_full, max(workload.n_quick, last.req_s * seconds)))

    def _warm_up(self, server: Server, workload: Workload) -> List[Run]:
        """Untimed passes, the same for every server: one of n_quick
        requests (all of --quick), then in full mode more, each sized from
        the one before to about WARMUP_PASS_SECONDS, until WARMUP_SECONDS of
        load have gone by.  The last pass, at warm speed, sizes the timed
        runs."""
        passes = [self._run(server, workload, workload.n_quick)]
        spent = passes[0].seconds
        while not self.quick and passes[-1].ok and spent < WARMUP_SECONDS:
            seconds = min(WARMUP_PASS_SECONDS, max(0.2, WARMUP_SECONDS - spent))
            passes.append(self._run(server, workload, self._size(workload, passes[-1], seconds)))
            spent += passes[-1].seconds
        return passes

    def _run(self, server: Server, workload: Workload, n: int) -> Run:
        cap = server.spec.h2_streams_per_connection
        if cap and not workload.h1 and n > cap * workload.clients:
            n = cap * workload.clients
            note = (
                f"{server.spec.name}: HTTP/2 runs cut to {cap} requests per connection "
                f"(its limit; e.g. ({workload.key}) {n:,} requests), so they are shorter"
            )
            if not any(x.startswith(f"{server.spec.name}: HTTP/2 runs cut") for x in self.notes):
                self.notes.append(note)
        before = server.cpu_seconds()
        run = h2load(server, workload, n, self.files, self.client_cores)
        run.cpu_s = server.cpu_seconds() - before
        if not run.ok and server.proc.poll() is not None:
            run.error += f" (the server exited with {server.proc.returncode})"
        if run.cpu_s > 0:
            moved = run.mb_s if workload.metric == "MB/s" else run.req_s
            run.per_cpu = moved * run.seconds / run.cpu_s
        return run

    def _summarize(
        self, result: Result, workload: Workload, warmups: List[Run], runs: List[Run], n: int
    ) -> None:
        failed = [r for r in warmups + runs if not r.ok]
        if failed:
            result.ok, result.error = False, failed[0].error
        timed = warmups[:1] if self.quick else runs  # --quick times its one pass
        result.warmup_passes = len(warmups)
        result.warmup_seconds = sum(r.seconds for r in warmups)
        result.runs = [asdict(r) for r in timed]
        result.requests_per_run = max((r.requests for r in timed), default=n)
        if not timed:
            return
        best = max(timed, key=lambda r: r.mb_s if workload.metric == "MB/s" else r.req_s)
        result.req_s, result.mb_s = best.req_s, best.mb_s
        result.value = best.mb_s if workload.metric == "MB/s" else best.req_s
        result.p50_ms, result.p90_ms, result.p99_ms = best.p50_ms, best.p90_ms, best.p99_ms
        result.cpu_percent = 100.0 * best.cpu_s / best.seconds if best.seconds else 0.0
        # per CPU-s of the same run as the wall-clock figure beside it
        result.per_cpu = best.per_cpu

    # ---- memory ----

    def _fresh_server(self, spec: ServerSpec, entry: Dict[str, Any]) -> Optional[Server]:
        """A new h2c server for a memory measurement, or None with why in ``entry``."""
        if spec.missing or spec.h2_missing:
            entry["skipped"] = spec.missing or spec.h2_missing
            return None
        try:
            return self.server(spec, False, fresh=True)
        except RuntimeError as exc:
            entry.update(ok=False, error=str(exc))
            return None

    def idle_memory(self, spec: ServerSpec) -> Dict[str, Any]:
        """RSS per idle connection: 1000 h2c connections, each having sent
        the preface and SETTINGS and received the server's SETTINGS."""
        entry: Dict[str, Any] = {"server": spec.name}
        server = self._fresh_server(spec, entry)
        if server is None:
            return entry
        socks: List[socket.socket] = []
        try:
            self._warm_up(server, BY_KEY["a"])  # code and JIT warm before RSS counts
            time.sleep(0.3)
            before = server.rss_kib()
            selector = selectors.DefaultSelector()  # epoll: fds above 1024
            for _ in range(IDLE_CONNECTIONS):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                sock.sendall(H2_PREFACE + EMPTY_SETTINGS)
                socks.append(sock)
                selector.register(sock, selectors.EVENT_READ)
            answered = 0
            deadline = time.monotonic() + 20
            while selector.get_map() and time.monotonic() < deadline:
                for key, _ in selector.select(0.5):
                    sock = key.fileobj  # type: ignore[assignment]
                    selector.unregister(sock)
                    if sock.recv(65536):  # the server's SETTINGS
                        answered += 1
                        sock.sendall(SETTINGS_ACK)
            selector.close()
            time.sleep(0.5 if self.quick else 2.0)
            after = server.rss_kib()
            entry.update(
                connections=IDLE_CONNECTIONS,
                answered=answered,
                rss_before_kib=before,
                rss_after_kib=after,
                kib_per_connection=(after - before) / IDLE_CONNECTIONS,
                ok=answered == IDLE_CONNECTIONS,
            )
            if answered != IDLE_CONNECTIONS:
                entry["error"] = f"only {answered} of {IDLE_CONNECTIONS} connections answered"
        finally:
            for sock in socks:
                sock.close()
            self.release(server, force=True)
        return entry

    def growth(self, spec: ServerSpec) -> Dict[str, Any]:
        """RSS growth over 1M requests of (a) (50k with --quick), in 5 runs of
        new connections, after a warm-up."""
        total = 50_000 if self.quick else 1_000_000
        chunks = 5
        entry: Dict[str, Any] = {"server": spec.name, "requests": total}
        server = self._fresh_server(spec, entry)
        if server is None:
            return entry
        try:
            warm = h2load(server, BY_KEY["a"], total // chunks, self.files, self.client_cores)
            time.sleep(0.3)
            before = server.rss_kib()
            trail, ok = [before], warm.ok
            for _ in range(chunks):
                run = h2load(server, BY_KEY["a"], total // chunks, self.files, self.client_cores)
                ok = ok and run.ok
                time.sleep(0.3)
                trail.append(server.rss_kib())
            after = trail[-1]
            entry.update(
                rss_before_kib=before,
                rss_after_kib=after,
                rss_trail_kib=trail,
                growth_percent=100.0 * (after - before) / before if before else 0.0,
                ok=ok,
            )
            if not ok:
                entry["error"] = "requests failed"
        finally:
            self.release(server, force=True)
        return entry


# ---- profile ----------------------------------------------------------------


#: Requests per h2load invocation while profiling: (d) needs new connections
#: all the time, as in the benchmark, so h2load is started again and again.
PROFILE_REQUESTS = {"a": 200_000, "c": 5_000, "d": 20_000}


def profile(bench: Bench, outdir: Path, seconds: float) -> Dict[str, Any]:
    """py-spy our server (asyncio) under (a), (c) and (d): a flame graph
    (SVG), the raw collapsed stacks, and the top functions by own and total
    time."""
    pyspy = _find("py-spy")
    if pyspy is None:
        return {"skipped": "py-spy is not installed (pip install py-spy)"}
    outdir.mkdir(parents=True, exist_ok=True)
    spec = ServerSpec("ours", "ours")
    report: Dict[str, Any] = {}
    for key, n in PROFILE_REQUESTS.items():
        workload = BY_KEY[key]
        server = bench.server(spec, False)
        try:
            h2load(server, workload, workload.n_quick, bench.files, bench.client_cores)
            pid = server.serving_pids()[0]
            raw = outdir / f"profile-{workload.name}.txt"
            svg = outdir / f"profile-{workload.name}.svg"
            h2load_argv = [
                "h2load",
                "-n",
                str(n),
                "-c",
                str(workload.clients),
                "-m",
                str(workload.streams),
                server.url(workload.path),
            ]
            loop = f"while :; do {' '.join(h2load_argv)} >/dev/null 2>&1; done"
            load = subprocess.Popen(
                _pinned(bench.client_cores, ["sh", "-c", loop]), start_new_session=True
            )
            try:
                time.sleep(0.5)
                for fmt, out in (("raw", raw), ("flamegraph", svg)):
                    # --native (C frames: cffi, libnghttp2, libc) needs
                    # py-spy to stop the process for each sample
                    subprocess.run(
                        [
                            pyspy,
                            "record",
                            "--pid",
                            str(pid),
                            "--native",
                            "--function",
                            "--rate",
                            "250",
                            "--duration",
                            str(int(seconds)),
                            "--format",
                            fmt,
                            "--output",
                            str(out),
                        ],
                        capture_output=True,
                        check=True,
                        timeout=seconds + 60,
                    )
            finally:
                os.killpg(load.pid, signal.SIGTERM)
                load.wait(10)
            report[workload.name] = {"svg": str(svg), "raw": str(raw), **_top(raw)}
        finally:
            bench.release(server, force=True)
    return report


def _frame(frame: str) -> str:
    """``func (file:line)`` -> ``func (file)``; an unresolved native frame
    ``0x7f.. (libfoo.so.1)`` -> ``[libfoo.so.1]``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    if name.startswith("0x"):
        return f"[{where}]"
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def _top(raw: Path, count: int = 25) -> Dict[str, Any]:
    """Top functions of py-spy's raw (collapsed) stacks: by own time (the
    innermost frame) and by total time (anywhere on the stack; frames found
    in nearly every sample, the event loop's own, are left out)."""
    own: Dict[str, int] = {}
    total: Dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, weight = line.rpartition(" ")
        if not stack or not weight.isdigit():
            continue
        n = int(weight)
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames:
            continue
        samples += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for name in set(frames):
            total[name] = total.get(name, 0) + n
    total = {k: v for k, v in total.items() if v < 0.97 * samples}

    def table(d: Dict[str, int]) -> List[Tuple[str, float]]:
        return [
            (k, 100.0 * v / max(samples, 1))
            for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:count]
        ]

    return {"samples": samples, "own": table(own), "total": table(total)}


# ---- reporting --------------------------------------------------------------


def _fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def our_api(name: str) -> str:
    """``callback`` or ``asgi`` for one of our servers judged against the
    targets (one process: not ours-2w), "" for the others."""
    if name in ("ours-asgi", "base-asgi"):
        return "asgi"
    if (name.startswith("ours") and name != "ours-2w") or name == "base":
        return "callback"
    return ""


def server_api(name: str) -> str:
    """The API a server of the report runs: ``asgi`` or ``callback``."""
    if name in SERVER_API:
        return SERVER_API[name]
    return "asgi" if name.endswith("asgi") else "callback"


#: The servers whose meeting a target counts (the issue: CPython, one process).
JUDGED = ("ours", "ours-uvloop", "ours-asgi")


def _cell(r: Optional[Result], digits: int = 0) -> str:
    if r is None:
        return "-"
    if r.skipped:
        return "n/a" if r.skipped.startswith("n/a") else "-"
    if not r.value:
        return "failed"
    cell = f"{_fmt(r.value, digits)} [{_fmt(r.per_cpu, digits)}]"
    return cell if r.ok else cell + " (failed requests)"


def same_api_ratios(results: List[Result]) -> List[Dict[str, Any]]:
    """SAME_API_RATIOS on every workload both servers ran: wall clock and
    per server CPU-second, each from the same run as its figure."""
    value = {(r.workload, r.server): r for r in results if r.value and r.ok}
    rows = []
    for num, den in SAME_API_RATIOS:
        cells = {}
        for w in WORKLOADS:
            a, b = value.get((w.key, num)), value.get((w.key, den))
            if a and b:
                by_cpu = a.per_cpu / b.per_cpu if a.per_cpu and b.per_cpu else None
                cells[w.key] = {"wall": a.value / b.value, "by_cpu": by_cpu}
        if cells:
            rows.append({"ratio": f"{num}/{den}", "values": cells})
    return rows


def print_tables(report: Dict[str, Any]) -> None:
    results = [Result(**r) for r in report["results"]]
    print(f"\nServer benchmark ({report['mode']}; {report['machine']})")
    if report.get("commit"):
        print(f"  commit {report['commit']}, {report.get('date', '')}: {report.get('command', '')}")
    print("  " + "; ".join(f"{k} {v}" for k, v in report["versions"].items()))
    header = (
        f"  {'server':<16} {'req/s':>9} {'MB/s':>8} {'p50 ms':>7} {'p90 ms':>7} "
        f"{'p99 ms':>7} {'peak RSS':>10} {'CPU%':>5} {'per CPU-s':>10}"
    )
    print(
        "\nLatency: per request, from h2load's log.  CPU%: the server's CPU time / wall "
        "time.\nper CPU-s: requests (MB/s workloads: MiB) per second of server CPU time, "
        "in the\nsame (best) run as the wall-clock figure.  Callback API: our handler "
        "(bench_handlers/ours.py)\nand nghttpd's files; ASGI: bench_handlers/asgi_app.py "
        "on every ASGI server."
    )
    print("\n" + header + "\n  " + "-" * (len(header) - 2))
    for workload in WORKLOADS:
        rows = [r for r in results if r.workload == workload.key]
        if not rows:
            continue
        print(
            f"({workload.key}) {workload.title}, h2load {workload.h2load_shape()}"
            f"{' -d 1MiB-file' if workload.upload else ''}   [{workload.metric}]"
        )
        for api, title in (("callback", "callback API"), ("asgi", "ASGI app")):
            group = [r for r in rows if server_api(r.server) == api]
            if group:
                print(f"  {title}:")
            for r in group:
                if r.skipped:
                    print(f"  {r.server:<16} -- {r.skipped}")
                    continue
                if not r.value:
                    print(f"  {r.server:<16} FAILED: {r.error[:90]}")
                    continue
                flag = "" if r.ok else "  FAILED: " + r.error[:60]
                print(
                    f"  {r.server:<16} {_fmt(r.req_s):>9} {_fmt(r.mb_s, 1):>8} "
                    f"{r.p50_ms:>7.2f} {r.p90_ms:>7.2f} {r.p99_ms:>7.2f} "
                    f"{r.peak_rss_kib / 1024:>6.1f} MiB {r.cpu_percent:>5.0f} "
                    f"{_fmt(r.per_cpu):>10}{flag}"
                )
    ratios = report.get("ratios") or []
    if ratios:
        keys = [w.key for w in WORKLOADS if any(w.key in row["values"] for row in ratios)]
        print("\nRatios, the same API on both sides (wall clock [per server CPU-second])")
        print(f"  {'':<22}" + "".join(f"  {'(' + k + ')':>13}" for k in keys))
        for row in ratios:
            cells = ""
            for k in keys:
                c = row["values"].get(k)
                text = ""
                if c:
                    text = f"{c['wall']:.2f}" + (
                        f" [{c['by_cpu']:.2f}]" if c["by_cpu"] is not None else ""
                    )
                cells += f"  {text:>13}"
            print(f"  {row['ratio']:<22}{cells}")
    if report.get("idle"):
        print(f"\nMemory per idle HTTP/2 connection ({IDLE_CONNECTIONS} open, h2c)")
        for e in report["idle"]:
            if "skipped" in e:
                print(f"  {e['server']:<16} -- {e['skipped']}")
            elif "kib_per_connection" in e:
                bad = "" if e.get("ok") else f"  FAILED: {e.get('error')}"
                print(
                    f"  {e['server']:<16} {e['kib_per_connection']:>7.1f} KiB/connection  "
                    f"(RSS {e['rss_before_kib'] / 1024:.1f} -> "
                    f"{e['rss_after_kib'] / 1024:.1f} MiB){bad}"
                )
            else:
                print(f"  {e['server']:<16} FAILED: {e.get('error', '')[:100]}")
    if report.get("growth"):
        print("\nRSS growth over requests of (a) (after a warm-up; RSS after each fifth)")
        for e in report["growth"]:
            if "skipped" in e:
                print(f"  {e['server']:<16} -- {e['skipped']}")
            elif "growth_percent" in e:
                trail = " ".join(f"{k / 1024:.1f}" for k in e["rss_trail_kib"])
                bad = "" if e.get("ok") else f"  FAILED: {e.get('error')}"
                print(
                    f"  {e['server']:<16} {e['requests']:>9,} requests: "
                    f"{e['growth_percent']:+.2f}%  (MiB: {trail}){bad}"
                )
            else:
                print(f"  {e['server']:<16} FAILED: {e.get('error', '')[:100]}")
    if report["targets"]:
        print(
            "\nTargets of issue 14 (CPython, one process: met when ours, ours-uvloop or"
            "\nours-asgi meets it; other servers of ours shown for information)"
        )
        for t in report["targets"]:
            cells = []
            for s, v in t["values"].items():
                cells.append(f"{s} {v:.2f}{t['unit']} " + ("met" if t["met"][s] else "NOT met"))
            state = "met" if t["judged_met"] else "NOT met"
            print(f"  {t['target']:<62} {t['goal']:>7}  {state:<7}  " + "; ".join(cells))
    if report.get("scaling"):
        s = report["scaling"]
        print(
            f"\nWorkers on (a): 2 workers / 1 worker = {s['ratio']:.2f}x "
            f"({_fmt(s['one'])} -> {_fmt(s['two'])} req/s; the 2 workers share the "
            "machine's 2 cores with h2load)"
        )
    for note in report["notes"]:
        print(f"\nnote: {note}")
    if report.get("profile"):
        for name, prof in report["profile"].items():
            if name == "skipped":
                print(f"\nprofile: skipped: {prof}")
                continue
            key = next(w.key for w in WORKLOADS if w.name == name)
            print(
                f"\nProfile of ours under ({key}) {name}: "
                f"{prof['samples']} samples; flame graph {prof['svg']}"
            )
            print("  own time (the function itself):")
            for fn, pct in prof["own"][:20]:
                print(f"    {pct:5.1f}%  {fn}")
            print("  total time (inclusive):")
            for fn, pct in prof["total"][:20]:
                print(f"    {pct:5.1f}%  {fn}")


MARK_BEGIN = "<!-- tools/bench_server.py --markdown: begin (generated; do not edit) -->"
MARK_END = "<!-- tools/bench_server.py --markdown: end -->"


def markdown(report: Dict[str, Any]) -> str:
    """The report as Markdown: when, where, what was measured and how to
    get it again, then the callback-API table, the ASGI table, the
    same-API ratios and issue 14's targets."""
    results = [Result(**r) for r in report["results"]]
    servers = report["servers"]
    by = {(r.workload, r.server): r for r in results}
    keys = [w for w in WORKLOADS if any(r.workload == w.key for r in results)]
    try:
        busy = ", other jobs running" if float(report.get("load", 0)) >= 1.0 else ""
    except ValueError:
        busy = ""
    out = [
        (
            f"Measured {report.get('date', '?')} at commit `{report.get('commit', '?')}` on "
            f"{report['machine']} ({report['mode']} mode; load average at the start "
            f"{report.get('load', '?')}{busy}):"
        ),
        "",
        f"    {report.get('command', '')}",
        "",
        "Versions: " + "; ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".",
        "",
        "Each cell: the best run's figure [per server CPU-second, from that same run].",
    ]
    groups = (
        ("callback", "Callback API (our handler, `bench_handlers/ours.py`; nghttpd serves files)"),
        ("asgi", "ASGI (`bench_handlers/asgi_app.py` on every server)"),
    )
    for api, title in groups:
        cols = [s for s in servers if server_api(s) == api and s != "ours-2w"]
        if not cols:
            continue
        out += ["", f"**{title}**", ""]
        out.append("| workload | " + " | ".join(cols) + " |")
        out.append("|---" * (len(cols) + 1) + "|")
        for w in keys:
            cells = [_cell(by.get((w.key, s)), 1 if w.metric == "MB/s" else 0) for s in cols]
            shape = w.h2load_shape() + (" -d 1MiB-file" if w.upload else "")
            label = f"({w.key}) {w.title}, `{shape}` {w.metric}"
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    ratios = report.get("ratios") or []
    if ratios:
        rkeys = [w.key for w in keys if any(w.key in row["values"] for row in ratios)]
        out += ["", "**Ratios, the same API on both sides** (wall clock [per CPU-s])", ""]
        out.append("| ratio | " + " | ".join(f"({k})" for k in rkeys) + " |")
        out.append("|---" * (len(rkeys) + 1) + "|")
        for row in ratios:
            cells = []
            for k in rkeys:
                c = row["values"].get(k)
                if not c:
                    cells.append("")
                    continue
                cpu = f" [{c['by_cpu']:.2f}]" if c["by_cpu"] is not None else ""
                cells.append(f"{c['wall']:.2f}{cpu}")
            out.append(f"| {row['ratio']} | " + " | ".join(cells) + " |")
    if report["targets"]:
        out += [
            "",
            (
                "**Issue 14's targets** (CPython, one process: met when `ours`, `ours-uvloop` "
                "or `ours-asgi` meets it)"
            ),
            "",
            "| target | goal | measured | met |",
            "|---|---|---|---|",
        ]
        for t in report["targets"]:
            measured = ", ".join(f"{s} {v:.2f}{t['unit']}" for s, v in t["values"].items())
            state = "met" if t["judged_met"] else "**not met**"
            out.append(f"| {t['target']} | {t['goal']} | {measured} | {state} |")
        for t in report.get("targets_not_measured") or []:
            out.append(f"| {t['target']} | {t['goal']} | not measured in this run | - |")
    return "\n".join(out) + "\n"


def write_markdown(path: Path, text: str) -> None:
    """Put ``text`` between the markers in ``path`` (appended with them
    when the file has none)."""
    old = path.read_text() if path.exists() else ""
    block = f"{MARK_BEGIN}\n{text}{MARK_END}"
    if MARK_BEGIN in old and MARK_END in old:
        head, rest = old.split(MARK_BEGIN, 1)
        tail = rest.split(MARK_END, 1)[1]
        new = head + block + tail
    else:
        new = old + ("\n" if old and not old.endswith("\n") else "") + block + "\n"
    path.write_text(new)


def targets(
    results: List[Result],
    idle: List[Dict[str, Any]],
    growth: List[Dict[str, Any]],
    servers: List[str],
) -> Tuple[List[Dict[str, Any]], List[Dict[str, str]]]:
    """Issue 14's targets measured in this run (and the labels of those
    that were not: a peer or one of ours did not run)."""
    value = {(r.workload, r.server): r.value for r in results if r.value and r.ok}
    per_cpu = {(r.workload, r.server): r.per_cpu for r in results if r.per_cpu and r.ok}
    rows: List[Dict[str, Any]] = []
    missing: List[Dict[str, str]] = []
    for t in TARGETS:
        figures = per_cpu if t.by_cpu else value
        row: Dict[str, Any] = {
            "target": t.label,
            "goal": f">= {t.goal:g}",
            "unit": "x",
            "values": {},
            "met": {},
        }
        if (t.workload, t.peer) in figures:
            for s in servers:
                if our_api(s) == t.api and (t.workload, s) in figures:
                    ratio = figures[(t.workload, s)] / figures[(t.workload, t.peer)]
                    row["values"][s] = ratio
                    row["met"][s] = ratio >= t.goal
        if row["values"]:
            rows.append(row)
        else:
            missing.append({"target": t.label, "goal": row["goal"]})
    callback = [s for s in servers if our_api(s) == "callback"]
    row = {
        "target": "memory: KiB per idle connection",
        "goal": f"<= {IDLE_TARGET_KIB:g}",
        "unit": " KiB",
        "values": {},
        "met": {},
    }
    for e in idle:
        if e["server"] in callback and "kib_per_connection" in e:
            row["values"][e["server"]] = e["kib_per_connection"]
            row["met"][e["server"]] = e["kib_per_connection"] <= IDLE_TARGET_KIB
    if row["values"]:
        rows.append(row)
    for e in growth:
        if "growth_percent" not in e or e["server"] not in callback:
            continue
        found = [r for r in rows if r["target"].startswith("memory: RSS growth")]
        if found:
            row = found[0]
        else:
            row = {
                "target": f"memory: RSS growth over {e['requests']:,} requests",
                "goal": f"< {GROWTH_TARGET_PERCENT:g}%",
                "unit": "%",
                "values": {},
                "met": {},
            }
            rows.append(row)
        row["values"][e["server"]] = e["growth_percent"]
        row["met"][e["server"]] = e["growth_percent"] < GROWTH_TARGET_PERCENT
    if not any(r["target"].startswith("memory: KiB") for r in rows):
        missing.append(
            {"target": "memory: KiB per idle connection", "goal": f"<= {IDLE_TARGET_KIB:g}"}
        )
    if not any(r["target"].startswith("memory: RSS growth") for r in rows):
        missing.append(
            {
                "target": "memory: RSS growth over 1M requests",
                "goal": f"< {GROWTH_TARGET_PERCENT:g}%",
            }
        )
    for row in rows:
        row["met_by"] = [s for s in row["values"] if row["met"].get(s)]
        judged = [s for s in row["values"] if s in JUDGED]
        # memory rows judge whichever of ours ran (PyPy alone: PyPy)
        row["judged_met"] = any(row["met"][s] for s in (judged or row["values"]))
    return rows, missing


def versions(specs: List[ServerSpec]) -> Dict[str, str]:
    out: Dict[str, str] = {"python": platform.python_version()}
    for python in sorted({s.python for s in specs if s.python and not s.missing}):
        # PyPy sizes its GC nursery from /proc/cpuinfo's "cache size" (half
        # of it) unless PYPY_GC_NURSERY says otherwise: a VM reporting a
        # huge cache gets a huge nursery, and 8x that before the first major
        # collection, which the RSS figures show.
        code = (
            "import gc, sys, platform as p; v = sys.pypy_version_info; "
            "print('%d.%d.%d (Python %s), GC nursery %s' % "
            "(v[0], v[1], v[2], p.python_version(), gc.get_stats().nursery_size))"
        )
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
        out["pypy"] = proc.stdout.strip() or "?"
    try:
        import nghttp2_cffi

        out["libnghttp2"] = str(nghttp2_cffi.VERSION)
    except Exception:  # noqa: BLE001 - informational only
        pass
    for dist in ("granian", "uvicorn", "httptools", "zttp", "hypercorn", "uvloop"):
        try:
            from importlib.metadata import version

            out[dist] = version(dist)
        except Exception:  # noqa: BLE001 - not installed
            pass
    for tool in ("nghttpd", "h2load"):
        path = _find(tool)
        if path:
            proc = subprocess.run([path, "--version"], capture_output=True, text=True)
            out[tool] = (proc.stdout.split() or ["?"])[-1]
    return out


def git_commit() -> str:
    """This checkout's commit, ``+changes`` when tracked files differ from
    it (the generated docs aside: they are what --markdown rewrites)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!docs/performance.md",
                ":!README.md",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if changed else "")


def raise_fd_limit(want: int = 8192) -> None:
    """1000 connections need more descriptors than the common 1024; children
    (servers, h2load) inherit the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI smoke test: tiny counts, one run, exit 1 if a request fails",
    )
    parser.add_argument("--full", action="store_true", help="the full run (the default)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--save", metavar="FILE", help="also write the JSON report to FILE")
    parser.add_argument(
        "--markdown",
        metavar="FILE",
        help="also write the tables as Markdown (commit, date, machine, command) into FILE, "
        "between its markers, e.g. docs/performance.md",
    )
    parser.add_argument(
        "--from-json",
        metavar="REPORT",
        help="run nothing: print (and with --markdown, write) the tables of a --save'd report",
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per server (best kept)")
    parser.add_argument(
        "--servers",
        help="comma-separated subset: ours,ours-uvloop,ours-pypy,ours-pypy-uvloop,ours-2w,"
        "ours-asgi,nghttpd,granian,uvicorn,hypercorn",
    )
    parser.add_argument("--workloads", help="comma-separated subset of a,b,c,d,e,f,g,idle,growth")
    parser.add_argument(
        "--baseline",
        metavar="CHECKOUT",
        help="also run our server from this other checkout (servers base, base-asgi), e.g. "
        "`git worktree add /tmp/base COMMIT && /tmp/base/tools/setup.sh`",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="also profile ours (py-spy) under (a), (c), (d), files to DIR",
    )
    parser.add_argument("--profile-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.quick and args.full:
        parser.error("--quick or --full, not both")
    if args.from_json:
        saved: Dict[str, Any] = json.loads(Path(args.from_json).read_text())
        # targets and ratios as this version states them
        saved_results = [Result(**r) for r in saved["results"]]
        saved["targets"], saved["targets_not_measured"] = targets(
            saved_results, saved["idle"], saved["growth"], saved["servers"]
        )
        saved["ratios"] = same_api_ratios(saved_results)
        print_tables(saved)
        if args.markdown:
            write_markdown(Path(args.markdown), markdown(saved))
        return 0
    command = shlex.join(["tools/bench_server.py", *(sys.argv[1:] if argv is None else argv)])
    commit, load = git_commit(), os.getloadavg()[0]
    if shutil.which("h2load") is None:
        print("error: h2load is required (apt-get install nghttp2-client)", file=sys.stderr)
        return 1
    raise_fd_limit()
    # SIGTERM unwinds like Ctrl-C, so that every server started gets stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wanted = args.servers.split(",") if args.servers else None
    base = baseline_specs(args.baseline) if args.baseline else []
    if wanted:
        base = [s for s in base if s.name in wanted]
        wanted = [name for name in wanted if not name.startswith("base")]
    specs = (server_specs(wanted) if wanted is None or wanted else []) + base
    chosen = (
        set(args.workloads.split(","))
        if args.workloads
        else ({w.key for w in WORKLOADS} | {"idle", "growth"})
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        files = Files(Path(tmp))
        bench = Bench(args, files)
        results: List[Result] = []
        idle: List[Dict[str, Any]] = []
        growth: List[Dict[str, Any]] = []
        prof: Dict[str, Any] = {}
        try:
            for workload in WORKLOADS:
                if workload.key not in chosen:
                    continue
                chosen_specs = [s for s in specs if not s.only or workload.key in s.only]
                for result in bench.measure(workload, chosen_specs):
                    results.append(result)
                    if not args.json:
                        state = result.skipped or (
                            f"{result.value:,.1f} {workload.metric}"
                            + ("" if result.ok else f"  FAILED: {result.error[:200]}")
                        )
                        print(
                            f"  [{time.monotonic() - started:5.1f}s] ({workload.key}) "
                            f"{result.server:<12} {state}",
                            file=sys.stderr,
                            flush=True,
                        )
            if "idle" in chosen:
                idle = [bench.idle_memory(spec) for spec in specs if spec.workers == 1]
            if "growth" in chosen:
                growth = [bench.growth(spec) for spec in specs if spec.ours and spec.workers == 1]
            if args.profile:
                prof = profile(bench, Path(args.profile), args.profile_seconds)
        finally:
            bench.stop_all()
        names = [s.name for s in specs]
        value = {(r.workload, r.server): r for r in results}
        scaling = None
        one, two = value.get(("a", "ours")), value.get(("a", "ours-2w"))
        if one and two and one.value and two.value:
            scaling = {"one": one.value, "two": two.value, "ratio": two.value / one.value}
        notes = list(bench.notes)
        if args.quick:
            notes.append(
                "quick mode: tiny counts, one run; peak RSS is per server process "
                "across all workloads; figures are not comparable"
            )
        target_rows, not_measured = targets(results, idle, growth, names)
        report = {
            "mode": "quick" if args.quick else "full",
            "machine": f"{platform.machine()}, {bench.cpus} cores, "
            + ("server on core 0, h2load on core 1" if bench.server_cores else "no pinning"),
            "versions": versions(specs),
            "servers": names,
            "results": [asdict(r) for r in results],
            "idle": idle,
            "growth": growth,
            "targets": target_rows,
            "targets_not_measured": not_measured,
            "ratios": same_api_ratios(results),
            "commit": commit,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": command,
            "load": f"{load:.1f}",
            "scaling": scaling,
            "notes": notes,
            "profile": prof,
            "seconds": time.monotonic() - started,
        }
    if args.save:
        Path(args.save).write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown:
        write_markdown(Path(args.markdown), markdown(report))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_tables(report)
        print(f"\n({report['seconds']:.0f} s)")
    ours_results = [r for r in results if r.server.startswith("ours") and not r.skipped]
    ours_memory = [
        e for e in idle + growth if e["server"].startswith("ours") and "skipped" not in e
    ]
    failures = [f"({r.workload}) {r.server}: {r.error}" for r in ours_results if not r.ok]
    failures += [f"memory {e['server']}: {e.get('error')}" for e in ours_memory if not e.get("ok")]
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    if not ours_results and not ours_memory and not prof:
        print("error: none of our servers ran", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
