"""Drop-in for nghttp2's removed Python binding: ``import nghttp2``.

Only re-exports; everything lives in :mod:`nghttp2_cffi` and :mod:`server`.
"""

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
    "HDDeflater",
    "HDInflater",
    "HDTableEntry",
    "HTTP2Server",
    "InvalidResponse",
    "PushError",
    "ResponseAlreadySent",
    "ServerError",
    "print_hd_table",
]
