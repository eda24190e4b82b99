"""The handler the security tests serve, in-process and as
``python -m nghttp2 --handler security_handlers:Handler`` in a subprocess.

One class, the path picks the behaviour:

- ``/`` (anything else): 200 ``hello``, once the request is complete.
- ``/count``: 200 with the number of request body bytes received.
- ``/early``: answers 200 at once (begin_response) and then only reads.
- ``/never``: never answers.
- ``/deferred``: 200 whose body generator defers and is never resumed.
- ``/slow``: 200 at once, then :data:`SLOW_CHUNKS` chunks of
  :data:`SLOW_CHUNK` bytes, one every :data:`SLOW_PAUSE` seconds.
- ``/big``: a :data:`BIG` byte body made by a generator from one shared
  64 KiB block (no per-client copy of the body exists anywhere).
"""

from __future__ import annotations

import asyncio
from typing import Optional, Tuple

from nghttp2.server import DATA_DEFERRED, DATA_EOF, DATA_OK, BaseRequestHandler
from nghttp2.server.errors import ClientDisconnected

SLOW_CHUNK = 64 * 1024
SLOW_CHUNKS = 10
SLOW_PAUSE = 0.15
BIG = 100 * 1024 * 1024
_BLOCK = b"x" * (64 * 1024)


def slow_body() -> bytes:
    """What ``/slow`` sends, in full."""
    return b"".join(bytes([65 + i]) * SLOW_CHUNK for i in range(SLOW_CHUNKS))


class Handler(BaseRequestHandler):
    def on_headers(self) -> None:
        self.received = 0
        path = self.path or b""
        if path == b"/early":
            self.send_response(200, body=lambda size: (None, DATA_DEFERRED))
        elif path == b"/slow":
            self.begin_response(200, [("content-length", str(SLOW_CHUNK * SLOW_CHUNKS))])
            asyncio.get_running_loop().create_task(self._slow())

    def on_data(self, data: bytes) -> None:
        self.received += len(data)

    def on_request_done(self) -> None:
        path = self.path or b""
        if path in (b"/never", b"/early", b"/slow"):
            return
        if path == b"/count":
            self.send_response(200, body=str(self.received))
        elif path == b"/deferred":
            self.send_response(200, body=lambda size: (b"first", DATA_DEFERRED))
        elif path == b"/big":
            self.send_response(200, [("content-length", str(BIG))], body=_big_body())
        else:
            self.send_response(200, body=b"hello")

    async def _slow(self) -> None:
        try:
            for i in range(SLOW_CHUNKS):
                await asyncio.sleep(SLOW_PAUSE)
                await self.write(bytes([65 + i]) * SLOW_CHUNK)
            self.end_response()
        except ClientDisconnected:
            pass  # the client went away: nothing to finish


def _big_body():  # type: ignore[no-untyped-def]
    left = [BIG]

    def generate(size: int) -> Tuple[Optional[bytes], int]:
        n = min(size, len(_BLOCK), left[0])
        left[0] -= n
        chunk = _BLOCK if n == len(_BLOCK) else _BLOCK[:n]
        return chunk, DATA_EOF if left[0] == 0 else DATA_OK

    return generate
