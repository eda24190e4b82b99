"""Leaving HTTP/1.1: the HTTP/2 preface sniff, the h2c upgrade (RFC 7540
section 3.2) and ``switch_protocols`` (WebSockets and other Upgrades).

- In the clear, the first bytes decide (:func:`sniff_http2_preface`): the
  HTTP/2 client preface (``PRI * HTTP/2.0``...) is HTTP/2 with prior
  knowledge, anything else HTTP/1.1.  Over TLS, ALPN decides.
- ``Upgrade: h2c`` on a request without a body, first on its connection:
  ``101 Switching Protocols``, then HTTP/2, the request becoming stream 1
  (:func:`h2c_request`, :func:`start_h2c`).  An h2c upgrade of a request
  with a body is declined (RFC 9110 7.8 lets a server ignore Upgrade).
- Any other Upgrade reaches its handler, which answers normally (declined)
  or calls ``switch_protocols`` (:func:`switch_response`).
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import TYPE_CHECKING, Any, List, Optional, Set, Tuple

from .errors import InvalidResponse
from .http11_framing import BAD_VALUE, TOKEN, field_block
from .protocol import HTTP2Protocol

if TYPE_CHECKING:
    from .http11 import HTTP11Protocol

log = logging.getLogger("nghttp2.server")

Fields = List[Tuple[bytes, bytes]]
#: An accepted h2c upgrade: method, path, host, fields, decoded HTTP2-Settings.
H2CRequest = Tuple[bytes, bytes, bytes, Fields, bytes]

#: The HTTP/2 client connection preface (RFC 9113 section 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
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


def sniff_http2_preface(data: bytes) -> Optional[bool]:
    """The first bytes of a cleartext connection: True when they are the
    HTTP/2 client preface, False when they are not, None when too few to
    tell yet."""
    if PREFACE.startswith(data[:24]):
        return None if len(data) < len(PREFACE) else True
    return False


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


def start_h2c(connection: HTTP11Protocol, request: H2CRequest, rest: bytes) -> None:
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
