"""The removed nghttp2 binding's client API, unchanged, on nghttp2-cffi.

    python examples/client_compat.py 127.0.0.1 8080 /index.html

Accepts the server's pushes and prints every response.
"""

from __future__ import annotations

import sys

import nghttp2


class Handler(nghttp2.BaseResponseHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.body = b""

    def on_headers(self):
        print(f"{self.status.decode()} {self.path.decode()}{' (pushed)' if self.pushed else ''}")

    def on_data(self, data):
        self.body += data

    def on_push_promise(self, push_promise):
        self.accept_push(push_promise, Handler())

    def on_response_done(self):
        print(f"  {len(self.body)} bytes {self.path.decode()}")


def main() -> None:
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8080
    paths = sys.argv[3:] or ["/"]
    client = nghttp2.HTTP2Client((host, port), ssl=None)
    for path in paths:
        client.send_request("GET", path, handler=Handler())
    client.run(timeout=30)
    client.close()


if __name__ == "__main__":
    main()
