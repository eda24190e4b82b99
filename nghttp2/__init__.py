"""Drop-in for nghttp2's removed Python binding: ``import nghttp2``.

Only re-exports; everything lives in :mod:`nghttp2_cffi`, :mod:`nghttp2.server`
and :mod:`nghttp2.client`.  ``BaseRequestHandler`` here is
:class:`nghttp2.server.handler.LegacyRequestHandler`: like the removed binding, its
``push()`` to a client that takes no pushes returns None instead of raising.
"""

from nghttp2.client import (
    BaseResponseHandler,
    Client,
    ClientError,
    ClientTimeout,
    ConnectError,
    ConnectionClosedError,
    ConnectTimeout,
    GoAwayError,
    HTTP2Client,
    NegotiationError,
    ReadTimeout,
    RemoteProtocolError,
    StreamResetError,
    WriteTimeout,
)
from nghttp2.server import (
    DATA_DEFERRED,
    DATA_EOF,
    DATA_OK,
    HTTP2Server,
    InvalidResponse,
    PushDisabled,
    PushError,
    ResponseAlreadySent,
    ServerError,
)
from nghttp2.server.handler import LegacyRequestHandler as BaseRequestHandler
from nghttp2_cffi._version import __version__
from nghttp2_cffi.hpack import (
    DEFAULT_HEADER_TABLE_SIZE,
    DEFLATE_MAX_HEADER_TABLE_SIZE,
    HDDeflater,
    HDInflater,
    HDTableEntry,
    print_hd_table,
)

__all__ = [
    "DATA_DEFERRED",
    "DATA_EOF",
    "DATA_OK",
    "DEFAULT_HEADER_TABLE_SIZE",
    "DEFLATE_MAX_HEADER_TABLE_SIZE",
    "BaseRequestHandler",
    "BaseResponseHandler",
    "Client",
    "ClientError",
    "ClientTimeout",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosedError",
    "GoAwayError",
    "HDDeflater",
    "HDInflater",
    "HDTableEntry",
    "HTTP2Client",
    "HTTP2Server",
    "InvalidResponse",
    "NegotiationError",
    "PushDisabled",
    "PushError",
    "ReadTimeout",
    "RemoteProtocolError",
    "ResponseAlreadySent",
    "ServerError",
    "StreamResetError",
    "WriteTimeout",
    "__version__",
    "print_hd_table",
]
