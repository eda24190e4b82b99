"""What a :class:`~nghttp2_cffi.Session` reports: small immutable-by-convention
records with ``__slots__``.  Header fields are ``(name, value)`` tuples of
bytes, exactly as received.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from .priority import Priority

Header = Tuple[bytes, bytes]
Headers = List[Header]


class Event:
    __slots__: tuple[str, ...] = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__
        )

    __hash__ = None  # type: ignore[assignment]


class RequestReceived(Event):
    """A request's header block (server side)."""

    __slots__ = ("stream_id", "headers", "end_stream")

    def __init__(self, stream_id: int, headers: Headers, end_stream: bool) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.end_stream = end_stream


class ResponseReceived(Event):
    """A final response's header block (client side), pushed ones included."""

    __slots__ = ("stream_id", "headers", "end_stream")

    def __init__(self, stream_id: int, headers: Headers, end_stream: bool) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.end_stream = end_stream


class InformationalResponseReceived(Event):
    """A 1xx response (client side)."""

    __slots__ = ("stream_id", "headers")

    def __init__(self, stream_id: int, headers: Headers) -> None:
        self.stream_id = stream_id
        self.headers = headers


class TrailersReceived(Event):
    """A trailing header block; the stream's remote side is now closed."""

    __slots__ = ("stream_id", "headers")

    def __init__(self, stream_id: int, headers: Headers) -> None:
        self.stream_id = stream_id
        self.headers = headers


class DataReceived(Event):
    """A chunk of a body.  ``end_stream``: the last one (``data`` may be empty).

    With ``auto_window_update=False`` pass ``len(data)`` to
    ``Session.acknowledge_received_data`` once it has been consumed.
    """

    __slots__ = ("stream_id", "data", "end_stream")

    def __init__(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        self.stream_id = stream_id
        self.data = data
        self.end_stream = end_stream


class StreamReset(Event):
    """The peer sent RST_STREAM."""

    __slots__ = ("stream_id", "error_code")

    def __init__(self, stream_id: int, error_code: int) -> None:
        self.stream_id = stream_id
        self.error_code = error_code


class StreamClosed(Event):
    """The stream is closed, for whatever reason (``error_code`` 0 when clean)."""

    __slots__ = ("stream_id", "error_code")

    def __init__(self, stream_id: int, error_code: int) -> None:
        self.stream_id = stream_id
        self.error_code = error_code


class PushPromiseReceived(Event):
    """A PUSH_PROMISE: the server will answer ``headers`` on ``promised_stream_id``."""

    __slots__ = ("stream_id", "promised_stream_id", "headers")

    def __init__(self, stream_id: int, promised_stream_id: int, headers: Headers) -> None:
        self.stream_id = stream_id
        self.promised_stream_id = promised_stream_id
        self.headers = headers


class PriorityUpdated(Event):
    """The client sent PRIORITY_UPDATE (RFC 9218) for ``stream_id`` (server
    side, when the server schedules by RFC 9218): ``priority`` is the
    :class:`~nghttp2_cffi.priority.Priority` it asks for, None when
    ``field_value`` does not parse (nghttp2 then keeps the old one)."""

    __slots__ = ("stream_id", "priority", "field_value")

    def __init__(self, stream_id: int, priority: Optional[Priority], field_value: bytes) -> None:
        self.stream_id = stream_id
        self.priority = priority
        self.field_value = field_value


class SettingsReceived(Event):
    """The peer's SETTINGS (already acknowledged by the session)."""

    __slots__ = ("settings",)

    def __init__(self, settings: Dict[int, int]) -> None:
        self.settings = settings


class SettingsAcknowledged(Event):
    """The peer acknowledged our SETTINGS."""

    __slots__ = ()


class PingReceived(Event):
    """A PING (already answered by the session)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class PingAcknowledged(Event):
    """The answer to one of our PINGs."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class GoAwayReceived(Event):
    """The peer sent GOAWAY: streams above ``last_stream_id`` were not processed."""

    __slots__ = ("last_stream_id", "error_code", "debug_data")

    def __init__(self, last_stream_id: int, error_code: int, debug_data: bytes) -> None:
        self.last_stream_id = last_stream_id
        self.error_code = error_code
        self.debug_data = debug_data


class GoAwaySent(Event):
    """We sent GOAWAY, on request or because the peer broke the protocol."""

    __slots__ = ("last_stream_id", "error_code")

    def __init__(self, last_stream_id: int, error_code: int) -> None:
        self.last_stream_id = last_stream_id
        self.error_code = error_code


class WindowUpdated(Event):
    """The peer opened its window for the stream (0: the connection)."""

    __slots__ = ("stream_id", "delta")

    def __init__(self, stream_id: int, delta: int) -> None:
        self.stream_id = stream_id
        self.delta = delta


class DataRequested(Event):
    """A streamed body has sent all it was given and may take more.

    Answer with ``Session.send_data`` or ``Session.end_stream`` whenever the
    data is there; nothing is sent for the stream until then.
    """

    __slots__ = ("stream_id", "max_length")

    def __init__(self, stream_id: int, max_length: int) -> None:
        self.stream_id = stream_id
        self.max_length = max_length
