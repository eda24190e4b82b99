"""What the client raises.  Everything derives from :class:`ClientError`.

``retryable`` is True when the server certainly did not process the
request (REFUSED_STREAM, or a stream above a GOAWAY's ``last_stream_id``):
sending it again, on a new connection, is safe even when it is not
idempotent.
"""

from __future__ import annotations

from typing import Optional

from nghttp2_cffi import ErrorCode


class ClientError(Exception):
    """Base of the client's exceptions."""

    retryable = False


class ConnectError(ClientError, ConnectionError):
    """The connection could not be established."""


class NegotiationError(ConnectError):
    """The peer does not speak HTTP/2: ALPN did not select ``h2``, or an
    ``http://`` server did not answer the prior-knowledge preface."""


class ClientTimeout(ClientError, TimeoutError):
    """A timeout of :class:`~client.Timeout` expired (also a ``TimeoutError``)."""


class ConnectTimeout(ClientTimeout, ConnectError):
    """Connecting (TCP, TLS and the server's SETTINGS) took too long."""


class ReadTimeout(ClientTimeout):
    """The response's headers or its next body chunk took too long."""


class WriteTimeout(ClientTimeout):
    """The request body waited too long for the server's flow-control window."""


class PoolTimeout(ClientTimeout):
    """The request waited too long for a free stream (the server's
    SETTINGS_MAX_CONCURRENT_STREAMS were all in use)."""


class StreamResetError(ClientError):
    """The stream was reset (by the server, or by nghttp2 because the server
    broke the protocol on it) before the response was complete."""

    def __init__(self, stream_id: int, error_code: int, message: Optional[str] = None) -> None:
        self.stream_id = stream_id
        self.error_code = ErrorCode(error_code)
        self.retryable = self.error_code == ErrorCode.REFUSED_STREAM
        super().__init__(message or f"stream {stream_id} was reset with {self.error_code.name}")


class ConnectionClosedError(ClientError, ConnectionError):
    """The connection closed before the response was complete."""


class GoAwayError(ConnectionClosedError):
    """The server sent GOAWAY.

    ``retryable``: the request was above ``last_stream_id`` (or never sent),
    so the server did not process it.
    """

    def __init__(
        self,
        last_stream_id: int,
        error_code: int,
        debug_data: bytes = b"",
        *,
        stream_id: Optional[int] = None,
    ) -> None:
        self.last_stream_id = last_stream_id
        self.error_code = ErrorCode(error_code)
        self.debug_data = debug_data
        self.stream_id = stream_id
        self.retryable = stream_id is None or stream_id > last_stream_id
        where = "not sent" if stream_id is None else f"stream {stream_id}"
        text = f"server sent GOAWAY {self.error_code.name} (last_stream_id={last_stream_id})"
        if debug_data:
            text += f" {debug_data[:200]!r}"
        super().__init__(
            f"{text}; request {where} was "
            + ("not processed: safe to retry" if self.retryable else "cut short")
        )


class RemoteProtocolError(ConnectionClosedError):
    """The server broke the HTTP/2 protocol; the connection was closed with
    GOAWAY ``error_code``."""

    def __init__(self, message: str, error_code: int = ErrorCode.PROTOCOL_ERROR) -> None:
        self.error_code = ErrorCode(error_code)
        super().__init__(message)
