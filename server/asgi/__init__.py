"""ASGI 3 on the server: HTTP/2 (and HTTP/1.1) requests, WebSockets over
both (RFC 8441 extended CONNECT on HTTP/2), and the lifespan protocol.

    from nghttp2.server.asgi import ASGIServer
    ASGIServer(("127.0.0.1", 8443), app, ssl=context).serve_forever()

or ``python -m nghttp2 --asgi module:app``.
"""

from .http import ASGI_VERSION, ASGIHandler, asgi_handler
from .lifespan import Lifespan, LifespanFailure
from .server import ASGIServer, load_app
from .websocket import WebSocketOptions

__all__ = [
    "ASGI_VERSION",
    "ASGIHandler",
    "ASGIServer",
    "Lifespan",
    "LifespanFailure",
    "WebSocketOptions",
    "asgi_handler",
    "load_app",
]
