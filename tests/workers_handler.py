"""Handler for tests/test_server_workers.py, loaded by ``python -m nghttp2 --handler
workers_handler:PidHandler`` in a subprocess."""

from __future__ import annotations

import asyncio
import os

from nghttp2.server import DATA_DEFERRED, DATA_EOF, BaseRequestHandler


class PidHandler(BaseRequestHandler):
    """``/pid``: the serving process's pid.  ``/slow``: the pid, half a
    second later (the body is deferred and resumed by a timer)."""

    def on_headers(self) -> None:
        body = str(os.getpid()).encode()
        if self.path != b"/slow":
            self.send_response(200, [("content-type", "text/plain")], body)
            return
        ready = []

        def generate(size: int) -> tuple:
            if not ready:
                ready.append(True)
                asyncio.get_running_loop().call_later(0.5, self.resume)
                return None, DATA_DEFERRED
            return body, DATA_EOF

        self.send_response(200, [("content-type", "text/plain")], generate)
