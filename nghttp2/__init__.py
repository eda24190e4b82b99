"""Drop-in for nghttp2's removed Python binding: ``import nghttp2``.

Only re-exports; everything lives in :mod:`nghttp2_cffi`, :mod:`server`
and :mod:`client`.
"""

from client import (
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
from nghttp2_cffi.hpack import (
    DEFAULT_HEADER_TABLE_SIZE,
    DEFLATE_MAX_HEADER_TABLE_SIZE,
    HDDeflater,
    HDInflater,
    HDTableEntry,
    print_hd_table,
)
from server import (
    DATA_DEFERRED,
    DATA_EOF,
    DATA_OK,
    BaseRequestHandler,
    HTTP2Server,
    InvalidResponse,
    PushError,
    ResponseAlreadySent,
    ServerError,
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
    "PushError",
    "ReadTimeout",
    "RemoteProtocolError",
    "ResponseAlreadySent",
    "ServerError",
    "StreamResetError",
    "WriteTimeout",
    "print_hd_table",
]
