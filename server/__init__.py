"""An asyncio HTTP/2 server on nghttp2_cffi, with the handler and server-push
API of nghttp2's removed Python binding."""

from .errors import (
    ClientDisconnected,
    InvalidResponse,
    PushDisabled,
    PushError,
    ResponseAlreadySent,
    ServerError,
)
from .handler import DATA_DEFERRED, DATA_EOF, DATA_OK, BaseRequestHandler, LegacyRequestHandler
from .protocol import HTTP2Protocol
from .server import HTTP2Server

__all__ = [
    "DATA_DEFERRED",
    "DATA_EOF",
    "DATA_OK",
    "BaseRequestHandler",
    "ClientDisconnected",
    "HTTP2Protocol",
    "HTTP2Server",
    "InvalidResponse",
    "LegacyRequestHandler",
    "PushDisabled",
    "PushError",
    "ResponseAlreadySent",
    "ServerError",
]
