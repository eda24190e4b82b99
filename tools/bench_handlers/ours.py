"""The benchmark's handler for our server (``python -m nghttp2 --handler
ours:BenchHandler`` with this folder on ``PYTHONPATH``).

Paths, the same for every server in tools/bench_server.py:
  /small     12-byte response
  /1m        1 MiB response
  /upload    POST: the body is read through on_data, then a 12-byte response
  /deferred  12-byte body from a generator that first answers DATA_DEFERRED
             and is resumed from the event loop (loop.call_soon)
"""

from __future__ import annotations

import asyncio

from nghttp2.server import DATA_DEFERRED, DATA_EOF, BaseRequestHandler

SMALL = b"hello world\n"
LARGE = b"x" * (1 << 20)
SMALL_HEADERS = [("content-type", "text/plain"), ("content-length", "12")]
LARGE_HEADERS = [("content-type", "text/plain"), ("content-length", str(len(LARGE)))]


class BenchHandler(BaseRequestHandler):
    received = 0

    def on_headers(self) -> None:
        path = self.path
        if path == b"/small":
            self.send_response(200, SMALL_HEADERS, SMALL)
        elif path == b"/1m":
            self.send_response(200, LARGE_HEADERS, LARGE)
        elif path == b"/deferred":
            self.send_response(200, SMALL_HEADERS, self._deferred_body())
        elif path == b"/upload":
            self.received = 0  # answered in on_request_done
        else:
            self.send_response(404, None, b"not found\n")

    def on_data(self, data: bytes) -> None:
        self.received += len(data)

    def on_request_done(self) -> None:
        if self.path == b"/upload" and self.status is None:
            self.send_response(200, SMALL_HEADERS, SMALL)

    def _deferred_body(self):  # type: ignore[no-untyped-def]
        state = {"resumed": False}

        def body(size: int) -> tuple:
            if not state["resumed"]:
                state["resumed"] = True
                asyncio.get_running_loop().call_soon(self.resume)
                return None, DATA_DEFERRED
            return SMALL, DATA_EOF

        return body
