"""Leaving HTTP/1.1: the HTTP/2 preface sniff, the h2c upgrade (RFC 7540
section 3.2) and ``switch_protocols`` (WebSockets and other Upgrades).

- In the clear, the first bytes decide (:func:`speaks_http2`): the HTTP/2
  client preface (``PRI * HTTP/2.0``...) is HTTP/2 with prior knowledge, an
  HTTP/1.x request line HTTP/1.1, and anything else goes to HTTP/2 too,
  which answers an invalid preface with GOAWAY PROTOCOL_ERROR.  Over TLS,
  ALPN decides.
- ``Upgrade: h2c`` on a request without a body, first on its connection:
  ``101 Switching Protocols``, then HTTP/2, the request becoming stream 1
  (:func:`h2c_request`, :func:`start_h2c`).  An h2c upgrade of a request
  with a body is declined (RFC 9110 7.8 lets a server ignore Upgrade).
- Any other Upgrade reaches its handler, which answers normally (declined)
  or calls ``switch_protocols`` (:func:`switch_response`).  A declined
  Upgrade's body, which llhttp leaves unparsed, is read by a body reader of
  :mod:`server.http11_parser`.

:class:`UpgradeHandling` is the part of
:class:`~server.http11.HTTP11Protocol` that does this.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Set, Tuple, cast

from .connection import peer
from .errors import InvalidResponse, ResponseAlreadySent
from .http11_framing import BAD_VALUE, TOKEN, HTTP11Stream, field_block
from .http11_parser import RequestParser, body_reader
from .http11_requests import PAUSE_HELD, RequestReading
from .protocol import HTTP2Protocol

if TYPE_CHECKING:
    from .handler import BaseRequestHandler
    from .server import HTTP2Server

log = logging.getLogger("nghttp2.server")

Fields = List[Tuple[bytes, bytes]]
#: An accepted h2c upgrade: method, path, host, fields, decoded HTTP2-Settings.
H2CRequest = Tuple[bytes, bytes, bytes, Fields, bytes]

#: The HTTP/2 client connection preface (RFC 9113 section 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# Bytes of a first line without its end that still wait for the decision;
# past them it is HTTP/1.1's (a long request line is served as before).
SNIFF_LIMIT = 1024
_NOT_IN_REQUEST_LINE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_H2C_SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"
# Never copied into an h2c request's HTTP/2 header list (RFC 9113 8.2.2).
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        b"http2-settings",
        b"host",
    }
)


def speaks_http2(data: bytes, max_line: int) -> Optional[bool]:
    """Which protocol the first bytes of a cleartext connection speak: True
    for HTTP/2 (its preface, or anything that is not an HTTP/1.x request:
    nghttp2 then answers an invalid preface with GOAWAY PROTOCOL_ERROR, as
    RFC 9113 section 3.4 asks), False for HTTP/1.1, None while undecided.

    A request line ends in ``HTTP/`` and a version (``GET / HTTP/2.0`` stays
    HTTP/1.1's to refuse); bytes that begin like the preface are HTTP/2's.
    Up to ``max_line`` bytes wait for the line's end; more go to HTTP/1.1.
    """
    head = data[:24]
    if PREFACE.startswith(head) or head.startswith(PREFACE[:14]):
        return None if len(data) < 24 else True
    start = len(data) - len(data.lstrip(b"\r\n"))  # RFC 9112 2.2: leading CRLFs
    end = data.find(b"\n", start)
    if _NOT_IN_REQUEST_LINE.search(data, start, len(data) if end < 0 else end):
        return True  # binary: no request line
    if end < 0:
        return None if len(data) <= max_line else False
    version = data[start:end].rstrip(b"\r").rpartition(b" ")[2]
    return not version.startswith(b"HTTP/")


def h2c_request(
    method: bytes,
    path: bytes,
    host: bytes,
    fields: Fields,
    upgrade: bytes,
    http2_settings: List[bytes],
) -> Optional[H2CRequest]:
    """The h2c upgrade a request asks for (``Upgrade`` holds ``h2c``, one
    valid ``HTTP2-Settings``), or None.  The caller checks the rest: no
    body, first request, cleartext."""
    if b"h2c" not in tokens(upgrade) or len(http2_settings) != 1:
        return None
    payload = _settings_payload(http2_settings[0])
    if payload is None:
        return None
    return method, path, host, fields, payload


def start_h2c(connection: UpgradeHandling, request: H2CRequest, rest: bytes) -> None:
    """101, then the connection goes to HTTP/2 with ``request`` as stream 1."""
    method, path, host, fields, payload = request
    transport = connection.transport
    assert transport is not None
    transport.write(_H2C_SWITCH)
    h2 = HTTP2Protocol(connection.server)
    connection.hand_over(h2, b"")
    if h2.session is None:
        return
    connection_options = set()
    for name, value in fields:
        if name == b"connection":
            connection_options.update(tokens(value))
    headers = [
        (b":method", method),
        (b":scheme", b"http"),
        (b":authority", host),
        (b":path", path),
    ]
    for name, value in fields:
        if name in _HOP_BY_HOP or name in connection_options:
            continue
        if name == b"te" and value.lower() != b"trailers":
            continue
        headers.append((name, value))
    try:
        h2.accept_upgrade(payload, headers, method == b"HEAD")
    except Exception:
        log.exception("h2c upgrade failed")
        transport.close()
        return
    if rest and not transport.is_closing():
        h2.data_received(rest)


def switch_response(headers: Any) -> bytes:
    """The ``101 Switching Protocols`` head with the handler's ``headers``."""
    fields: List[Tuple[bytes, bytes]] = []
    for name, value in headers:
        fields.append(
            (
                name.lower().encode("latin-1") if isinstance(name, str) else bytes(name).lower(),
                value.encode("latin-1") if isinstance(value, str) else bytes(value),
            )
        )
    for name, value in fields:
        if not TOKEN(name) or BAD_VALUE(value):
            raise InvalidResponse(f"invalid response field {name!r}: {value!r}")
    return b"HTTP/1.1 101 Switching Protocols\r\n" + field_block(fields) + b"\r\n"


def tokens(value: bytes) -> Set[bytes]:
    """The comma-separated tokens of a field value, lower-cased."""
    return {token.strip().lower() for token in value.split(b",")}


def _settings_payload(value: bytes) -> Optional[bytes]:
    """The HTTP2-Settings header (base64url, unpadded) decoded, or None."""
    try:
        payload = base64.urlsafe_b64decode(value.strip() + b"=" * (-len(value.strip()) % 4))
    except (binascii.Error, ValueError):
        return None
    return payload if len(payload) % 6 == 0 else None


class UpgradeHandling(RequestReading):
    """Upgrades of an HTTP/1.1 connection: h2c, and ``switch_protocols``
    for the others (the part of HTTP11Protocol that hands the connection
    over)."""

    def __init__(self, server: HTTP2Server) -> None:
        super().__init__(server)
        self._h2c: Optional[H2CRequest] = None

    def _accept_h2c(
        self,
        method: bytes,
        path: bytes,
        host: bytes,
        fields: Fields,
        upgrade: bytes,
        http2_settings: List[bytes],
    ) -> bool:
        self._h2c = h2c_request(method, path, host, fields, upgrade, http2_settings)
        return self._h2c is not None

    def _upgrade(self, rest: bytes) -> Optional[bytes]:
        """The parser stopped after a request asking to Upgrade; returns what
        to parse next, or None."""
        self._close_parser()
        h2c, self._h2c = self._h2c, None
        if h2c is not None:
            start_h2c(self, h2c, rest)
            return None
        ex, self._upgrade_candidate = self._upgrade_candidate, None
        if ex is None:
            self._closing = True
            return None
        if ex.chunked_request or ex.length:
            # The upgrade is declined (its body is a request body): read the
            # body as the head frames it, then parse on.
            self._body = body_reader(
                self, ex.chunked_request, ex.length, self.limits.max_header_list_size
            )
            return rest
        # No body: wait for the handler to switch protocols or answer.
        self._upgrade_ex = ex
        self._held = bytearray(rest)
        return None

    def _resume_parsing(self) -> None:
        """After a declined Upgrade: parse what came after it."""
        self._upgrade_ex = None
        held, self._held = self._held, None
        self._unpause(PAUSE_HELD)
        if self._closing or self._closed:
            return
        self._parser = RequestParser(self, self.limits.max_header_list_size)
        if held:
            self._loop.call_soon(self._feed_held, bytes(held))

    def _feed_held(self, data: bytes) -> None:
        if not self._closed and self._parser is not None:
            self.data_received(data)

    # ---- switching protocols -------------------------------------------

    def switch_protocols(
        self,
        handler: BaseRequestHandler,
        headers: Any,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
    ) -> None:
        """Answer ``101 Switching Protocols`` with ``headers`` and give the
        connection to ``protocol_factory()`` (see the module docstring)."""
        ex = cast(HTTP11Stream, handler.exchange)
        self._open(ex)
        if ex is not self._upgrade_ex:
            raise InvalidResponse("switch_protocols() answers a request that asked to Upgrade")
        if ex.status is not None:
            raise ResponseAlreadySent(f"stream {ex.id} has already answered")
        ex.out.append(switch_response(headers))
        ex.status = 101
        ex.started = ex.ended = True
        ex.switch = protocol_factory
        if not self._busy:
            self.flush()

    def _switch(self, ex: HTTP11Stream) -> None:
        """The 101 is written: the connection goes to the new protocol."""
        self.streams.pop(ex.id, None)
        if self.server.access_log:
            self._log_access(ex, 0)
        held, self._held = self._held, None
        try:
            protocol = ex.switch()  # type: ignore[misc]
        except Exception:
            log.exception(
                "%s: the protocol factory of switch_protocols() failed", peer(self.client_address)
            )
            self._abort("switching protocols failed")
            return
        self.hand_over(protocol, bytes(held or b""))

    def hand_over(self, protocol: asyncio.BaseProtocol, data: bytes) -> None:
        """Give the transport to ``protocol``, with ``data`` already received."""
        transport = self.transport
        assert transport is not None
        self._stop()
        self._close_parser()
        self.transport = None
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self._reading_paused:
            transport.resume_reading()
        if data and not transport.is_closing():
            protocol.data_received(data)  # type: ignore[attr-defined]
