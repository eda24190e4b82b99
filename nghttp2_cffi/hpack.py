"""HPACK (RFC 7541) compression, with the API of nghttp2's removed binding."""

from __future__ import annotations

from typing import Any, Iterable, List, Optional

from ._nghttp2 import ffi, lib
from .config import DEFAULT_MAX_HEADER_LIST_SIZE
from .errors import HeaderListTooLargeError, OutOfMemoryError, check
from .events import Headers
from .session import HeaderInput, _name_bytes, _value_bytes

DEFAULT_HEADER_TABLE_SIZE: int = lib.NGHTTP2_DEFAULT_HEADER_TABLE_SIZE
DEFLATE_MAX_HEADER_TABLE_SIZE = 4096
HD_ENTRY_OVERHEAD = 32  # RFC 7541 section 4.1
_STATIC_TABLE_LEN = 61


class HDTableEntry:
    """One dynamic table entry; ``space()`` is the size it counts for."""

    __slots__ = ("name", "namelen", "value", "valuelen")

    def __init__(self, name: bytes, namelen: int, value: bytes, valuelen: int) -> None:
        self.name = name
        self.namelen = namelen
        self.value = value
        self.valuelen = valuelen

    def space(self) -> int:
        return self.namelen + self.valuelen + HD_ENTRY_OVERHEAD

    def __repr__(self) -> str:
        return f"HDTableEntry({self.name!r}, {self.value!r})"


def _fields(headers: HeaderInput) -> List[bytes]:
    """name, value, name, value... as bytes (str as Session.send_* take it)."""
    flat: List[bytes] = []
    append = flat.append
    for name, value in headers:
        append(name if name.__class__ is bytes else _name_bytes(name))
        append(value if value.__class__ is bytes else _value_bytes(value))
    return flat


def _table(count: int, get: Any) -> List[HDTableEntry]:
    entries = []
    for idx in range(_STATIC_TABLE_LEN, count):
        nv = get(idx)
        entries.append(
            HDTableEntry(
                ffi.unpack(ffi.cast("char *", nv.name), nv.namelen),
                nv.namelen,
                ffi.unpack(ffi.cast("char *", nv.value), nv.valuelen),
                nv.valuelen,
            )
        )
    return entries


class HDDeflater:
    """Header compressor.  ``hd_table_bufsize_max`` caps the dynamic table it
    uses, whatever larger size the decoder allows."""

    def __init__(self, hd_table_bufsize_max: int = DEFLATE_MAX_HEADER_TABLE_SIZE) -> None:
        pp = ffi.new("nghttp2_hd_deflater **")
        check(lib.nghttp2_hd_deflate_new(pp, hd_table_bufsize_max))
        self._d = ffi.gc(pp[0], lib.nghttp2_hd_deflate_del)

    def deflate(self, headers: HeaderInput) -> bytes:
        """Compress a header list (``(name, value)`` pairs of bytes or str).

        Names and values go to C with their lengths, so they may hold any
        byte, NUL included, as HPACK allows (HTTP/2 itself does not)."""
        fields = _fields(headers)
        lens = ffi.new("size_t[]", [len(f) for f in fields])
        block = b"".join(fields)
        n = len(fields) >> 1
        bound = lib.n2c_hd_deflate_bound(self._d, block, lens, n)
        if bound == 0:
            raise OutOfMemoryError(lib.NGHTTP2_ERR_NOMEM)
        out = ffi.new("uint8_t[]", bound)
        rv = check(lib.n2c_hd_deflate(self._d, out, bound, block, lens, n))
        return ffi.buffer(out, rv)[:]

    def change_table_size(self, hd_table_bufsize_max: int) -> None:
        """Take the decoder's new SETTINGS_HEADER_TABLE_SIZE into account."""
        check(lib.nghttp2_hd_deflate_change_table_size(self._d, hd_table_bufsize_max))

    def get_hd_table(self) -> List[HDTableEntry]:
        """A copy of the dynamic table, newest entry first."""
        count = lib.nghttp2_hd_deflate_get_num_table_entries(self._d)
        return _table(count, lambda i: lib.nghttp2_hd_deflate_get_table_entry(self._d, i + 1))


class HDInflater:
    """Header decompressor.  ``max_header_list_size``: the largest header
    list a block may decompress to (RFC 9113 sizes: name + value + 32 per
    field; 64 KiB by default, as the ``hpack`` library's Decoder; None: no
    bound), so a small block of references to one big table entry (an HPACK
    bomb) cannot take the memory."""

    def __init__(
        self, *, max_header_list_size: Optional[int] = DEFAULT_MAX_HEADER_LIST_SIZE
    ) -> None:
        self.max_header_list_size = max_header_list_size
        inf = lib.n2c_inflater_new()
        if inf == ffi.NULL:
            raise OutOfMemoryError(lib.NGHTTP2_ERR_NOMEM, "cannot create an HPACK inflater")
        self._inf = ffi.gc(inf, lib.n2c_inflater_del)
        self._raw = lib.n2c_inflater_raw(inf)

    def inflate(self, data: bytes) -> Headers:
        """Decompress one complete header block into ``(name, value)`` pairs.

        A malformed block raises ``NGHTTP2Error`` (compression error), one
        over ``max_header_list_size``
        :class:`~nghttp2_cffi.errors.HeaderListTooLargeError`; the decoder's
        state is then unusable, as RFC 7541 says.
        """
        data = bytes(data)
        inf = self._inf
        limit = self.max_header_list_size or 0
        n = lib.n2c_inflate(inf, data, len(data), limit)
        if n < 0:
            if n == lib.NGHTTP2_ERR_FLOODED:
                raise HeaderListTooLargeError(n, limit)
            check(n)
        if n == 0:
            return []
        lens = ffi.unpack(inf.lens, inf.nlens)
        # pl stays NULL while every field so far was empty (b"": b"").
        pl = ffi.unpack(inf.pl, inf.pl_len) if inf.pl_len else b""
        out = []
        pos = 0
        for i in range(0, 2 * n, 2):
            end = pos + lens[i]
            stop = end + lens[i + 1]
            out.append((pl[pos:end], pl[end:stop]))
            pos = stop
        return out

    def change_table_size(self, hd_table_bufsize_max: int) -> None:
        """Our SETTINGS_HEADER_TABLE_SIZE, once the peer has acknowledged it."""
        check(lib.nghttp2_hd_inflate_change_table_size(self._raw, hd_table_bufsize_max))

    def get_hd_table(self) -> List[HDTableEntry]:
        """A copy of the dynamic table, newest entry first."""
        count = lib.nghttp2_hd_inflate_get_num_table_entries(self._raw)
        return _table(count, lambda i: lib.nghttp2_hd_inflate_get_table_entry(self._raw, i + 1))


def print_hd_table(hdtable: Iterable[HDTableEntry]) -> None:
    """Print a table from ``get_hd_table()``; ``s=N`` is each entry's size.

    Bytes that are not UTF-8 (HPACK carries any octets) print escaped."""
    for idx, entry in enumerate(hdtable, 1):
        name = entry.name.decode("utf-8", "backslashreplace")
        value = entry.value.decode("utf-8", "backslashreplace")
        print(f"[{idx}] (s={entry.space()}) {name}: {value}")
