"""Request checks the parsers leave to us: pure functions, no I/O, no state.

The connections call them at a few marked hook sites (``# validation:``):

- :func:`check_http11_head`, once an HTTP/1.1 request head is parsed,
  before any handler or app sees it: the request line (RFC 9112 section 3),
  Host (section 3.2, RFC 9110 section 7.2) and the body framing the head
  announces (RFC 9112 section 6).  A rejection is answered and the
  connection closed, the request never served.
- :func:`check_trailer_field`, per trailer field of a chunked request:
  framing and routing fields are refused, and the trailer section counts
  against the header limit (``Limits.max_header_list_size``) as the head
  does.
- :func:`check_http2_request`, per HTTP/2 request, for what libnghttp2's
  own messaging checks let through (RFC 9113 section 8.3.1): userinfo in
  ``:authority`` (or ``host``), ``#`` and raw bytes >= 0x80 in ``:path``.
  The stream is reset with PROTOCOL_ERROR; no handler sees it.

What llhttp (httptools) and libnghttp2 already refuse is not checked again:
llhttp answers a bad chunk size, a bare LF in a chunk extension,
Content-Length beside Transfer-Encoding (in the head or in trailers),
duplicate Content-Length, ``chunked`` twice and versions other than 0.9,
1.0, 1.1 and 2.0; libnghttp2 checks the characters of ``:authority`` and
``host`` (all but ``@`` of RFC 3986's), those of ``:path`` (no controls or
spaces), ``:path`` present and ``*`` only for OPTIONS, and the
pseudo-headers themselves.
"""

from __future__ import annotations

import re
from typing import List, Optional, Set, Tuple

#: ``(status, reason)``: the answer to a refused request and why, for the log.
Rejection = Tuple[int, str]
Fields = List[Tuple[bytes, bytes]]

# RFC 9110 section 7.2: Host = uri-host [ ":" port ] (RFC 3986 section 3.2.2;
# no userinfo).  An IP-literal is checked for its characters only.  The value
# may be empty (RFC 9112 section 3.2: a target with no authority).
_HOST = re.compile(
    rb"(?:\[[0-9A-Za-z:.!$&'()*+,;=_~%-]+\]|[0-9A-Za-z._~!$&'()*+,;=%-]*)(?::[0-9]*)?"
).fullmatch
# Host values found valid, so that most requests need no regex: a server
# sees few of them.  Bounded (values up to 255 bytes, at most this many, then
# no more are added): its only effect is speed.
# Byte values, for `in` tests on bytes: `b"#" in data` first tries the
# operand as an int and fails with a formatted TypeError (CPython), ten
# times the cost of `0x23 in data`.
_HASH = 0x23  # "#"
_COLON = 0x3A  # ":"
_AT = 0x40  # "@"

_VALID_HOSTS_KEPT = 1024
_valid_hosts: Set[Optional[bytes]] = set()
# RFC 3986 section 3.1.
_SCHEME = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*").fullmatch

# RFC 9110 section 6.5.1: fields a recipient needs before the content (its
# framing, its routing) cannot come in trailers.  llhttp refuses
# content-length there itself.
FORBIDDEN_TRAILERS = frozenset({b"content-length", b"transfer-encoding", b"host", b"trailer"})

# What a field adds to a header list's size (RFC 9113 section 6.5.2; the
# HTTP/1.1 head is counted the same way).
FIELD_OVERHEAD = 32


def check_http11_head(
    method: bytes,
    target: bytes,
    version: str,
    host: Optional[bytes],
    transfer_encoding: Optional[Fields],
) -> Optional[Rejection]:
    """Check an HTTP/1.x request head as httptools parsed it.

    ``version`` is ``parser.get_http_version()``; ``host`` the Host field's
    value (None: none was sent; a second Host is refused before this);
    ``transfer_encoding`` the request's fields when one of them is
    Transfer-Encoding, else None (the common case scans nothing).  Returns
    None, or the status to answer (400, 501, 505) and why.
    """
    if (
        host in _valid_hosts
        and version == "1.1"
        and transfer_encoding is None
        and target[:1] == b"/"
        and _HASH not in target
    ):
        return None  # the common case, at the cost of a set lookup (not a regex)
    if version[:2] != "1.":
        # llhttp takes "HTTP/2.0" and "HTTP/0.9" request lines as well.
        return 505, f"HTTP/{version} request line"
    if target[:1] == b"/":  # origin-form
        if _HASH in target:
            return 400, "fragment in the request target"
    elif target == b"*":  # asterisk-form (RFC 9112 section 3.2.4)
        if method != b"OPTIONS":
            return 400, "asterisk-form request target for a method other than OPTIONS"
    elif method == b"CONNECT":  # authority-form: host ":" port (section 3.2.3)
        if _COLON not in target or not _HOST(target):
            return 400, "malformed authority-form request target"
    else:  # absolute-form (section 3.2.2)
        scheme, sep, rest = target.partition(b"://")
        authority = rest.partition(b"/")[0].partition(b"?")[0]
        if not sep or not _SCHEME(scheme) or _HASH in target:
            return 400, "malformed request target"
        if not authority or not _HOST(authority):
            # Userinfo included (RFC 9110 section 4.2.4).
            return 400, "malformed authority in the request target"
    if host is None:
        if version == "1.1":
            return 400, "HTTP/1.1 request without Host"
    elif host not in _valid_hosts:
        if not _HOST(host):
            return 400, "malformed Host"
        if len(_valid_hosts) < _VALID_HOSTS_KEPT and len(host) <= 255:
            _valid_hosts.add(host)
    if transfer_encoding is not None:
        return _check_transfer_coding(version, transfer_encoding)
    return None


def _check_transfer_coding(version: str, fields: Fields) -> Optional[Rejection]:
    """RFC 9112 section 6.1 and 6.3 on a request with Transfer-Encoding."""
    if version == "1.0":
        # An HTTP/1.0 recipient would not know chunked: faulty framing, and
        # serving what follows as another request is a desync.
        return 400, "Transfer-Encoding in an HTTP/1.0 request"
    codings = [
        coding.strip().lower()
        for name, value in fields
        if name == b"transfer-encoding"
        for coding in value.split(b",")
    ]
    if codings == [b"chunked"]:
        return None
    if b"chunked" in codings and codings[-1] != b"chunked":
        return 400, "chunked is not the final transfer coding"
    # The only coding this server decodes is chunked (as h11 and uvicorn).
    return 501, "unsupported transfer coding " + b", ".join(codings).decode("latin-1")


def check_trailer_field(name: bytes, size: int, limit: int) -> Optional[Rejection]:
    """Check one trailer field (its ``name`` lower-cased) of a chunked
    request; ``size`` is the trailer section's size so far with this field
    (``len(name) + len(value) + FIELD_OVERHEAD`` per field), ``limit`` the
    header limit.  Returns None, or 431 or 400 and why."""
    if size > limit:
        return 431, "request trailers too large"
    if name in FORBIDDEN_TRAILERS:
        return 400, f"{name.decode('latin-1')} in the request trailers"
    return None


def check_http2_request(path: Optional[bytes], authority: bytes) -> Optional[str]:
    """What makes an HTTP/2 request malformed beyond libnghttp2's checks:
    ``path`` is ``:path`` (None for CONNECT), ``authority`` the
    ``:authority`` (or, without one, ``host``) value.  Returns None, or why
    the stream is to be reset with PROTOCOL_ERROR."""
    if _AT in authority:
        return "userinfo in :authority"  # RFC 9113 section 8.3.1
    if path is not None and (_HASH in path or not path.isascii()):
        return "fragment or non-ASCII byte in :path"  # RFC 3986 section 3.3
    return None
