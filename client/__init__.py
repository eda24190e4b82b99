"""An asyncio HTTP/2 client on nghttp2_cffi.

- :class:`Client`: ``async with Client("https://host") as c: r = await c.get("/")``;
  streaming both ways, flow control driven by consumption, multiplexing,
  server push, trailers, timeouts.
- :class:`HTTP2Client`, :class:`BaseResponseHandler`: the callback API of
  nghttp2's removed Python binding, on the same core.
- :class:`ClientConnection`: the asyncio protocol under both.
"""

from .client import DEFAULT_TIMEOUT, Client, Timeout
from .compat import BaseResponseHandler, HTTP2Client
from .connection import ClientConnection
from .errors import (
    ClientError,
    ClientTimeout,
    ConnectError,
    ConnectionClosedError,
    ConnectTimeout,
    GoAwayError,
    NegotiationError,
    PoolTimeout,
    ReadTimeout,
    RemoteProtocolError,
    StreamResetError,
    WriteTimeout,
)
from .headers import Headers
from .response import HTTPStatusError, Response, ResponseNotRead, StreamConsumed

__all__ = [
    "DEFAULT_TIMEOUT",
    "BaseResponseHandler",
    "Client",
    "ClientConnection",
    "ClientError",
    "ClientTimeout",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosedError",
    "GoAwayError",
    "HTTP2Client",
    "HTTPStatusError",
    "Headers",
    "NegotiationError",
    "PoolTimeout",
    "ReadTimeout",
    "RemoteProtocolError",
    "Response",
    "ResponseNotRead",
    "StreamConsumed",
    "StreamResetError",
    "Timeout",
    "WriteTimeout",
]
