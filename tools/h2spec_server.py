"""The tutorial's server (nghttp2's Python tutorial, tests/server/test_tutorial.py
TUTORIAL_1) for h2spec: ``h2spec_server.py PORT [--tls]``.

With ``--tls`` it serves over TLS with a self-signed development certificate
(ALPN h2); otherwise cleartext, where HTTP/1.1 and prior-knowledge HTTP/2
share the port.  The server's defaults are kept: RFC 9218 priorities on
(SETTINGS_NO_RFC7540_PRIORITIES = 1), the floods' limits as shipped.
"""

from __future__ import annotations

import sys

import nghttp2
from nghttp2.server.tls import development_context


class Handler(nghttp2.BaseRequestHandler):
    def on_headers(self) -> None:
        res = b"nghttp2 FTW\n"
        self.send_response(status=200, headers=[("content-length", str(len(res)))], body=res)


def main() -> None:
    port = int(sys.argv[1])
    ssl = None
    if "--tls" in sys.argv[2:]:
        ssl = development_context()
    server = nghttp2.HTTP2Server(("127.0.0.1", port), Handler, ssl=ssl, access_log=False)
    server.serve_forever()


if __name__ == "__main__":
    main()
