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

__all__ = [
    "DEFAULT_HEADER_TABLE_SIZE",
    "DEFLATE_MAX_HEADER_TABLE_SIZE",
    "HDDeflater",
    "HDInflater",
    "HDTableEntry",
    "print_hd_table",
]
