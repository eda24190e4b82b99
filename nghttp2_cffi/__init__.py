"""HTTP/2 for Python on libnghttp2, through cffi.

- :class:`Session`: a sans-I/O HTTP/2 connection (client or server side),
  its options in a :class:`SessionConfig` with safe defaults.
- :class:`HDDeflater`, :class:`HDInflater`: HPACK.
- :mod:`~nghttp2_cffi.events`, :mod:`~nghttp2_cffi.errors`, the enums.
- ``ffi`` and ``lib``: the raw nghttp2 API, for frame-level scripting.
"""

from ._nghttp2 import ffi, lib
from ._version import __version__
from .config import SessionConfig
from .enums import ErrorCode, Flag, FrameType, SettingCode
from .errors import (
    CallbackError,
    FloodedError,
    HeaderListTooLargeError,
    InvalidArgumentError,
    NGHTTP2Error,
    NoAvailableStreamIDError,
    ProtocolError,
    PushDisabledError,
    SessionClosingError,
    StreamClosedError,
    StreamStateError,
)
from .events import (
    DataReceived,
    DataRequested,
    Event,
    GoAwayReceived,
    GoAwaySent,
    InformationalResponseReceived,
    PingAcknowledged,
    PingReceived,
    PriorityUpdated,
    PushPromiseReceived,
    RequestReceived,
    ResponseReceived,
    SettingsAcknowledged,
    SettingsReceived,
    StreamClosed,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from .hpack import (
    DEFAULT_HEADER_TABLE_SIZE,
    DEFLATE_MAX_HEADER_TABLE_SIZE,
    HDDeflater,
    HDInflater,
    HDTableEntry,
    print_hd_table,
)
from .library import FEATURES, VERSION, VERSION_NUM
from .priority import DEFAULT_PRIORITY, Priority, parse_priority
from .session import Session, encode_headers

__all__ = [
    "DEFAULT_HEADER_TABLE_SIZE",
    "DEFAULT_PRIORITY",
    "DEFLATE_MAX_HEADER_TABLE_SIZE",
    "FEATURES",
    "VERSION",
    "VERSION_NUM",
    "CallbackError",
    "DataReceived",
    "DataRequested",
    "ErrorCode",
    "Event",
    "Flag",
    "FloodedError",
    "FrameType",
    "GoAwayReceived",
    "GoAwaySent",
    "HDDeflater",
    "HDInflater",
    "HDTableEntry",
    "HeaderListTooLargeError",
    "InformationalResponseReceived",
    "InvalidArgumentError",
    "NGHTTP2Error",
    "NoAvailableStreamIDError",
    "PingAcknowledged",
    "PingReceived",
    "Priority",
    "PriorityUpdated",
    "ProtocolError",
    "PushDisabledError",
    "PushPromiseReceived",
    "RequestReceived",
    "ResponseReceived",
    "Session",
    "SessionClosingError",
    "SessionConfig",
    "SettingCode",
    "SettingsAcknowledged",
    "SettingsReceived",
    "StreamClosed",
    "StreamClosedError",
    "StreamReset",
    "StreamStateError",
    "TrailersReceived",
    "WindowUpdated",
    "__version__",
    "encode_headers",
    "ffi",
    "lib",
    "parse_priority",
    "print_hd_table",
]
