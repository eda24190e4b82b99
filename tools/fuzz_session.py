#!/usr/bin/env python3
"""Long fuzz runs of a server Session (the CI runs are short: tests/security/test_fuzz.py).

    python tools/fuzz_session.py --seconds 600                   # atheris if installed
    python tools/fuzz_session.py --engine hypothesis --seconds 600
    python tools/fuzz_session.py --engine atheris --corpus /tmp/h2corpus --seconds 3600

Each input is what a client sends after its connection preface; it is fed,
in up to three reads, to a Session made with HTTP2Server's options (limits
and flood defences on), which answers every request.  A finding is any
exception from receive_data() other than ProtocolError (FloodedError
included), any from data_to_send(), or a body the Session keeps for a
stream libnghttp2 no longer knows; atheris writes the input to crash-*,
hypothesis prints the shrunk example.

atheris (``pip install atheris``; wheels for CPython 3.11 on x86-64 Linux)
sees coverage of the Python layers only: libnghttp2 and the C glue are not
built with its instrumentation, so inputs that reach new C paths look no
more interesting to it than others.  The corpus is seeded with frame
sequences from the hypothesis strategies (tests/security/fuzz_frames.py),
which get past the preface and the HPACK decoder.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "security")]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


class Finding(Exception):
    """An invariant broke (the fuzzers report it as a crash)."""


def _setup() -> Any:
    """Import the code under test (inside atheris's instrumentation when used)."""
    global lib, NGHTTP2Error, ProtocolError, RequestReceived, DataReceived, Session, CONFIG
    from security_handlers import Handler

    from nghttp2.server import HTTP2Server
    from nghttp2_cffi import (
        DataReceived,
        NGHTTP2Error,
        ProtocolError,
        RequestReceived,
        Session,
        lib,
    )

    CONFIG = HTTP2Server(("127.0.0.1", 0), Handler).session_config


def split(data: bytes) -> List[bytes]:
    """The first two bytes choose where the rest is cut into reads."""
    if len(data) < 2:
        return [PREFACE + SETTINGS + data]
    body = PREFACE + SETTINGS + data[2:]
    a, b = sorted((data[0] * len(body) // 256, data[1] * len(body) // 256))
    return [piece for piece in (body[:a], body[a:b], body[b:]) if piece]


def feed(reads: List[bytes]) -> None:
    session = Session("server", config=CONFIG)
    try:
        session.data_to_send()
        for chunk in reads:
            terminated = False
            try:
                events = session.receive_data(chunk)
            except ProtocolError:
                events = session.events()
                terminated = True
            for event in events:
                try:
                    if isinstance(event, RequestReceived):
                        sid = event.stream_id
                        if sid % 4 == 1:
                            session.send_response(sid, [(b":status", b"200")], b"x" * 100)
                        else:
                            session.send_response(sid, [(b":status", b"200")], end_stream=False)
                            session.send_data(sid, b"y" * 70_000, end_stream=sid % 8 == 3)
                    elif isinstance(event, DataReceived) and event.data:
                        session.acknowledge_received_data(len(event.data), event.stream_id)
                except NGHTTP2Error:
                    pass  # refused by the API: the stream is gone
            session.data_to_send()
            for sid in session._bodies:
                if lib.nghttp2_session_get_stream_local_close(session.raw, sid) < 0:
                    raise Finding(f"Session keeps the body of unknown stream {sid}")
            if terminated:
                break
    finally:
        session.close()


def seed_corpus(corpus: Path, count: int) -> None:
    from fuzz_frames import client_bytes

    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    strategy = client_bytes()
    prefix = len(PREFACE)
    for i in range(count):
        data = b"".join(strategy.example())[prefix:]
        (corpus / f"seed-{i:05d}").write_bytes(bytes([i % 256, (i * 7) % 256]) + data)


def run_atheris(seconds: int, corpus: Optional[Path], extra: List[str]) -> int:
    import atheris

    with atheris.instrument_imports():
        _setup()

    def one_input(data: bytes) -> None:
        feed(split(data))

    argv = [sys.argv[0], f"-max_total_time={seconds}", *extra]
    if corpus is not None:
        seed_corpus(corpus, 300)
        argv.append(str(corpus))
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
    return 0


def run_hypothesis(seconds: int) -> int:
    from fuzz_frames import client_bytes
    from hypothesis import HealthCheck, given, settings

    _setup()

    @settings(
        max_examples=2000,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(reads=client_bytes(max_frames=30))
    def check(reads: List[bytes]) -> None:
        feed(reads)

    start = time.monotonic()
    rounds = 0
    while time.monotonic() - start < seconds:
        check()  # a new random seed each round
        rounds += 1
        print(f"{rounds * 2000} examples, {time.monotonic() - start:.0f}s: no finding", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["auto", "atheris", "hypothesis"], default="auto")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--corpus", type=Path, help="atheris corpus folder (seeded if empty)")
    args, extra = parser.parse_known_args()
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "hypothesis"
    print(f"fuzzing a server Session for {args.seconds}s with {engine}", flush=True)
    if engine == "atheris":
        corpus = args.corpus or Path(os.environ.get("TMPDIR", "/tmp")) / "nghttp2-cffi-corpus"
        return run_atheris(args.seconds, corpus, extra)
    return run_hypothesis(args.seconds)


if __name__ == "__main__":
    sys.exit(main())
