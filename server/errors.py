"""Exceptions the server raises at the call that misuses it."""

from __future__ import annotations


class ServerError(Exception):
    """Base class of the server's own errors."""


class ResponseAlreadySent(ServerError):
    """``send_response`` (or ``push`` after it) on a stream that already answered."""


class PushError(ServerError):
    """A push the client or HTTP/2 does not allow (push disabled, pushed stream...)."""


class PushDisabled(PushError):
    """The push cannot go: the client disabled push (SETTINGS_ENABLE_PUSH = 0)
    or the connection is HTTP/1.1."""


class InvalidResponse(ServerError, ValueError):
    """A status outside 100-999, a pseudo-header or connection-specific header
    in ``headers``, or a body of an unsupported type."""


class ClientDisconnected(ServerError, ConnectionError):
    """The client reset the stream or closed the connection: reading the body
    or writing the response of that stream is over."""
