"""What the linked libnghttp2 is and can do."""

from __future__ import annotations

from ._nghttp2 import ffi, lib

_info = lib.nghttp2_version(0)

#: Version of the libnghttp2 loaded at run time, e.g. ``"1.52.0"``.
VERSION: str = ffi.string(_info.version_str).decode("ascii")
#: The same as a number, ``0x013400`` for 1.52.0.
VERSION_NUM: int = _info.version_num
#: The version of the nghttp2.h this module was compiled against.
COMPILED_VERSION_NUM: int = lib.NGHTTP2_VERSION_NUM

#: Optional features of the libnghttp2 compiled against, by name.
FEATURES: dict[str, bool] = {
    "ssize_api": bool(lib.N2C_HAS_SSIZE_API),
    "stream_reset_rate_limit": bool(lib.N2C_HAS_STREAM_RESET_RATE_LIMIT),
    "max_continuations": bool(lib.N2C_HAS_MAX_CONTINUATIONS),
    "max_settings": bool(lib.N2C_HAS_MAX_SETTINGS),
    "max_outbound_ack": bool(lib.N2C_HAS_MAX_OUTBOUND_ACK),
    "no_rfc9113_leading_and_trailing_ws_validation": bool(lib.N2C_HAS_NO_RFC9113_WS_VALIDATION),
    "server_fallback_rfc7540_priorities": bool(lib.N2C_HAS_SERVER_FALLBACK_RFC7540_PRIORITIES),
    # RFC 9218: nghttp2_session_get_extpri_stream_priority and
    # nghttp2_extpri_parse_priority (1.53+); without them the Session follows
    # the client's priority signals itself and parses Priority fields in Python.
    "extpri_get": bool(lib.N2C_HAS_EXTPRI_GET),
    "extpri_parse": bool(lib.N2C_HAS_EXTPRI_PARSE),
}
