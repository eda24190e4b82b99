"""RFC 9218 extensible priorities: the ``priority`` field and its values.

A priority is an urgency from 0 (most urgent) to 7 and an ``incremental``
flag: a server that schedules by RFC 9218 sends the responses of the most
urgent streams first; non-incremental ones of equal urgency one after the
other, in the order they were asked for, incremental ones interleaved.
nghttp2 schedules so once the server announced
``SETTINGS_NO_RFC7540_PRIORITIES = 1`` (see :meth:`Session.get_stream_priority
<nghttp2_cffi.Session.get_stream_priority>`).
"""

from __future__ import annotations

import re
from typing import NamedTuple, Union

from ._nghttp2 import ffi, lib

URGENCY_HIGH = 0
URGENCY_LOW = 7


class Priority(NamedTuple):
    """An RFC 9218 priority: ``urgency`` 0 (highest) to 7, ``incremental``."""

    urgency: int = 3
    incremental: bool = False

    def field_value(self) -> bytes:
        """As a ``priority`` header field value or PRIORITY_UPDATE payload:
        ``b"u=0, i"``; the default members are left out."""
        parts = []
        if self.urgency != 3:
            parts.append(b"u=%d" % self.urgency)
        if self.incremental:
            parts.append(b"i")
        return b", ".join(parts)


#: Urgency 3, not incremental: what a stream without a signal gets.
DEFAULT_PRIORITY = Priority()

PriorityInput = Union[Priority, "tuple[int, bool]", int]


def as_priority(value: PriorityInput) -> Priority:
    """A :class:`Priority` from a Priority, ``(urgency, incremental)`` or an
    urgency alone; raises ValueError outside 0..7."""
    if isinstance(value, int) and not isinstance(value, bool):
        urgency, incremental = value, False
    else:
        urgency, incremental = value  # type: ignore[misc]
    if isinstance(urgency, bool) or not isinstance(urgency, int):
        raise TypeError(f"urgency must be an int, not {type(urgency).__name__}")
    if not URGENCY_HIGH <= urgency <= URGENCY_LOW:
        raise ValueError(f"urgency must be from 0 to 7, not {urgency}")
    return Priority(urgency, bool(incremental))


def parse_priority(value: Union[bytes, str], base: Priority = DEFAULT_PRIORITY) -> Priority:
    """Parse a Priority field value (an RFC 8941 dictionary), starting from
    ``base`` for the members it leaves out; raises ValueError when it is not
    one, or when ``u`` is not an integer 0..7 or ``i`` not a boolean.

    nghttp2's own parser does it where the linked libnghttp2 has one
    (1.53+); a parser here with the same rules does it elsewhere.
    """
    data = value.encode("latin-1") if isinstance(value, str) else bytes(value)
    # Clients send a handful of values (a browser: "u=0, i", "u=1", "i"...)
    # on every request: a parse costs ~10 µs in Python, a look-up ~0.1.
    key = (data, base)
    known = _PARSED.get(key)
    if known is not None:
        return known
    priority = _parse_uncached(data, base)
    if len(_PARSED) < _PARSED_MAX:
        _PARSED[key] = priority
    return priority


# Valid values parsed so far, by (value, base); bounded, so that a client
# sending ever new values costs no memory (past the bound, no caching).
_PARSED: dict[tuple[bytes, Priority], Priority] = {}
_PARSED_MAX = 256


def _parse_uncached(data: bytes, base: Priority) -> Priority:
    if lib.N2C_HAS_EXTPRI_PARSE:
        extpri = ffi.new("nghttp2_extpri *")
        extpri.urgency = base.urgency
        extpri.inc = int(base.incremental)
        if lib.n2c_extpri_parse_priority(extpri, data, len(data)) != 0:
            raise ValueError(f"not a valid Priority field value: {data!r}")
        return Priority(int(extpri.urgency), bool(extpri.inc))
    return _parse(data, base)


# ---- RFC 8941 (and RFC 9651 dates), for libraries without a parser --------

_KEY = re.compile(rb"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(rb"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_NUMBER = re.compile(rb"-?[0-9]+(\.[0-9]*)?")
_BYTES = re.compile(rb":[A-Za-z0-9+/=]*:")
_STRING = re.compile(rb'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\\"])*"')
_OWS = re.compile(rb"[ \t]*")
_SP = re.compile(rb" *")
_BOOLEAN, _INTEGER, _OTHER = 0, 1, 2


def _bare_item(data: bytes, pos: int) -> tuple[int, object, int]:
    """(kind, value, next position) of the bare item at ``pos``."""
    c = data[pos : pos + 1]
    if c == b"?":
        if data[pos + 1 : pos + 2] in (b"0", b"1"):
            return _BOOLEAN, data[pos + 1 : pos + 2] == b"1", pos + 2
        raise ValueError("bad boolean")
    if c == b"@":  # RFC 9651 date: an integer
        kind, _, end = _number(data, pos + 1)
        if kind != _INTEGER:
            raise ValueError("bad date")
        return _OTHER, None, end
    if c == b"-" or c.isdigit():
        return _number(data, pos)
    m = _STRING.match(data, pos) or _TOKEN.match(data, pos) or _BYTES.match(data, pos)
    if m is None:
        raise ValueError("bad item")
    return _OTHER, None, m.end()


def _number(data: bytes, pos: int) -> tuple[int, object, int]:
    m = _NUMBER.match(data, pos)
    if m is None:
        raise ValueError("bad number")
    text = m.group()
    digits = text.lstrip(b"-")
    if m.group(1) is None:
        if len(digits) > 15:
            raise ValueError("integer too long")
        return _INTEGER, int(text), m.end()
    whole, _, frac = digits.partition(b".")
    if len(whole) > 12 or not 1 <= len(frac) <= 3:
        raise ValueError("bad decimal")
    return _OTHER, None, m.end()


def _parameters(data: bytes, pos: int) -> int:
    while data[pos : pos + 1] == b";":
        pos = _SP.match(data, pos + 1).end()  # type: ignore[union-attr]
        m = _KEY.match(data, pos)
        if m is None:
            raise ValueError("bad parameter key")
        pos = m.end()
        if data[pos : pos + 1] == b"=":
            _, _, pos = _bare_item(data, pos + 1)
    return pos


def _member(data: bytes, pos: int) -> tuple[int, object, int]:
    """An item or inner list with its parameters."""
    if data[pos : pos + 1] == b"(":
        pos += 1
        while True:
            pos = _SP.match(data, pos).end()  # type: ignore[union-attr]
            if data[pos : pos + 1] == b")":
                return _OTHER, None, _parameters(data, pos + 1)
            _, _, pos = _bare_item(data, pos)
            pos = _parameters(data, pos)
            if data[pos : pos + 1] not in (b" ", b")"):
                raise ValueError("bad inner list")
    kind, item, pos = _bare_item(data, pos)
    return kind, item, _parameters(data, pos)


def _parse(data: bytes, base: Priority) -> Priority:
    urgency, incremental = base
    pos = _SP.match(data).end()  # type: ignore[union-attr]
    end = len(data.rstrip(b" "))
    try:
        while pos < end:
            m = _KEY.match(data, pos)
            if m is None:
                raise ValueError("bad key")
            key, pos = m.group(), m.end()
            if data[pos : pos + 1] == b"=":
                kind, item, pos = _member(data, pos + 1)
            else:
                kind, item, pos = _BOOLEAN, True, _parameters(data, pos)
            if key == b"u":
                if kind != _INTEGER or not URGENCY_HIGH <= item <= URGENCY_LOW:  # type: ignore[operator]
                    raise ValueError("u must be an integer from 0 to 7")
                urgency = item  # type: ignore[assignment]
            elif key == b"i":
                if kind != _BOOLEAN:
                    raise ValueError("i must be a boolean")
                incremental = item  # type: ignore[assignment]
            pos = _OWS.match(data, pos).end()  # type: ignore[union-attr]
            if pos >= end:
                break
            if data[pos : pos + 1] != b",":
                raise ValueError("members are separated by commas")
            pos = _OWS.match(data, pos + 1).end()  # type: ignore[union-attr]
            if pos >= end:
                raise ValueError("trailing comma")
    except (ValueError, IndexError) as exc:
        raise ValueError(f"not a valid Priority field value: {data!r} ({exc})") from None
    return Priority(urgency, incremental)
