"""Handlers the interop tests serve with ``python -m nghttp2 --handler``
(run with this folder as the working directory)."""

from __future__ import annotations

from nghttp2.server import BaseRequestHandler


class Hello(BaseRequestHandler):
    """``hello world`` (12 bytes) for every path; ``/healthz`` answers the
    load balancer's health check."""

    def on_headers(self) -> None:
        if self.path == b"/healthz":
            self.send_response(200, [("content-type", "text/plain")], b"ok\n")
        else:
            self.send_response(200, [("content-type", "text/plain")], b"hello world\n")
