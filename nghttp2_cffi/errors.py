"""Exceptions: every failure nghttp2 reports becomes one of these.

All derive from :class:`NGHTTP2Error`, which carries nghttp2's (negative)
library code and its ``nghttp2_strerror`` text.  Errors caused by what the
peer sent are :class:`ProtocolError` and carry the HTTP/2 error code the
connection was closed with.
"""

from __future__ import annotations

from ._nghttp2 import ffi, lib
from .enums import ErrorCode


class NGHTTP2Error(Exception):
    """A failure reported by libnghttp2 (``code`` < 0, ``message``)."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message or strerror(code)
        super().__init__(f"{self.message} ({code})")


class InvalidArgumentError(NGHTTP2Error, ValueError):
    """An argument nghttp2 refused (bad stream id, header block, value...)."""


class StreamClosedError(NGHTTP2Error):
    """The stream is closed, closing or unknown to the session."""


class StreamStateError(NGHTTP2Error):
    """The stream cannot take this action in its current state."""


class NoAvailableStreamIDError(NGHTTP2Error):
    """The session has used up the stream ids it may open."""


class PushDisabledError(NGHTTP2Error):
    """The peer disabled server push (SETTINGS_ENABLE_PUSH = 0)."""


class SessionClosingError(NGHTTP2Error):
    """GOAWAY has been sent or received: no new streams on this session."""


class ProtocolError(NGHTTP2Error):
    """The peer broke the protocol; the session is terminated.

    ``error_code`` is the HTTP/2 error code of the GOAWAY queued for the
    peer; ``Session.data_to_send()`` returns it.
    """

    def __init__(self, code: int, error_code: ErrorCode, message: str | None = None) -> None:
        self.error_code = ErrorCode(error_code)
        super().__init__(code, message)


class FloodedError(ProtocolError):
    """The peer flooded the session (too many frames to answer, resets...)."""


class HeaderListTooLargeError(FloodedError):
    """The peer sent a header list over ``limit`` bytes (RFC 9113 sizes: name
    + value + 32 per field), the session's ``max_header_list_size``."""

    def __init__(self, code: int, limit: int) -> None:
        self.limit = limit
        super().__init__(
            code,
            ErrorCode.ENHANCE_YOUR_CALM,
            f"the peer sent a header list over max_header_list_size ({limit} bytes)",
        )


class CallbackError(NGHTTP2Error):
    """A callback failed; the exception it raised is the ``__cause__``."""


class OutOfMemoryError(NGHTTP2Error, MemoryError):
    """libnghttp2 could not allocate memory (``NGHTTP2_ERR_NOMEM``)."""


def strerror(code: int) -> str:
    return ffi.string(lib.nghttp2_strerror(code)).decode("ascii", "replace")


_BY_CODE: dict[int, type[NGHTTP2Error]] = {
    lib.NGHTTP2_ERR_INVALID_ARGUMENT: InvalidArgumentError,
    lib.NGHTTP2_ERR_INVALID_HEADER_BLOCK: InvalidArgumentError,
    lib.NGHTTP2_ERR_INVALID_STREAM_ID: InvalidArgumentError,
    lib.NGHTTP2_ERR_INSUFF_BUFSIZE: InvalidArgumentError,
    lib.NGHTTP2_ERR_STREAM_CLOSED: StreamClosedError,
    lib.NGHTTP2_ERR_STREAM_CLOSING: StreamClosedError,
    lib.NGHTTP2_ERR_STREAM_SHUT_WR: StreamClosedError,
    lib.NGHTTP2_ERR_INVALID_STREAM_STATE: StreamStateError,
    lib.NGHTTP2_ERR_DATA_EXIST: StreamStateError,
    lib.NGHTTP2_ERR_DEFERRED_DATA_EXIST: StreamStateError,
    lib.NGHTTP2_ERR_INVALID_STATE: StreamStateError,
    lib.NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE: NoAvailableStreamIDError,
    lib.NGHTTP2_ERR_PUSH_DISABLED: PushDisabledError,
    lib.NGHTTP2_ERR_START_STREAM_NOT_ALLOWED: SessionClosingError,
    lib.NGHTTP2_ERR_SESSION_CLOSING: SessionClosingError,
    lib.NGHTTP2_ERR_GOAWAY_ALREADY_SENT: SessionClosingError,
    lib.NGHTTP2_ERR_CALLBACK_FAILURE: CallbackError,
    lib.NGHTTP2_ERR_NOMEM: OutOfMemoryError,
    # Only submit_* functions return it, called on the wrong side (a request
    # from a server, a response or a push from a client); nghttp2_session_
    # mem_recv reports protocol violations by queueing GOAWAY instead.
    lib.NGHTTP2_ERR_PROTO: InvalidArgumentError,
}

_MESSAGES: dict[int, str] = {
    lib.NGHTTP2_ERR_PROTO: "Protocol error: not allowed on this side (client or server)",
}

#: nghttp2_session_mem_recv's answer to a CONTINUATION flood (1.61, and
#: backported by distributions with nghttp2_option_set_max_continuations);
#: not in the cdef, which declares only what every supported nghttp2.h has.
ERR_TOO_MANY_CONTINUATIONS: int = getattr(lib, "NGHTTP2_ERR_TOO_MANY_CONTINUATIONS", -905)

# What the session sends the peer when mem_recv fails with these.
PROTOCOL_ERRORS: dict[int, ErrorCode] = {
    lib.NGHTTP2_ERR_BAD_CLIENT_MAGIC: ErrorCode.PROTOCOL_ERROR,
    lib.NGHTTP2_ERR_HEADER_COMP: ErrorCode.COMPRESSION_ERROR,
    lib.NGHTTP2_ERR_FLOW_CONTROL: ErrorCode.FLOW_CONTROL_ERROR,
    lib.NGHTTP2_ERR_FRAME_SIZE_ERROR: ErrorCode.FRAME_SIZE_ERROR,
    lib.NGHTTP2_ERR_SETTINGS_EXPECTED: ErrorCode.PROTOCOL_ERROR,
    lib.NGHTTP2_ERR_TOO_MANY_SETTINGS: ErrorCode.ENHANCE_YOUR_CALM,
    lib.NGHTTP2_ERR_FLOODED: ErrorCode.ENHANCE_YOUR_CALM,
    ERR_TOO_MANY_CONTINUATIONS: ErrorCode.ENHANCE_YOUR_CALM,
}
_FLOODS = (lib.NGHTTP2_ERR_FLOODED, ERR_TOO_MANY_CONTINUATIONS)


def error_for(code: int) -> NGHTTP2Error:
    """The exception for a negative nghttp2 return value."""
    if code in PROTOCOL_ERRORS:
        cls = FloodedError if code in _FLOODS else ProtocolError
        return cls(code, PROTOCOL_ERRORS[code])
    return _BY_CODE.get(code, NGHTTP2Error)(code, _MESSAGES.get(code))


def check(rv: int) -> int:
    """Return ``rv``, or raise the exception for it when it is negative."""
    if rv < 0:
        raise error_for(rv)
    return rv
