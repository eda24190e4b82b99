"""Headers: a read-only, case-insensitive multi-dict over the raw fields."""

from __future__ import annotations

from typing import Iterator, List, Optional, Tuple, Union, overload

RawHeaders = List[Tuple[bytes, bytes]]
Name = Union[str, bytes]


def _decode(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _key(name: Name) -> bytes:
    return name.lower() if isinstance(name, bytes) else name.lower().encode("latin-1")


class Headers:
    """Response header fields, as received (HTTP/2 names are lower case).

    - ``headers["content-type"]`` (name: str or bytes, any case) is the
      value as ``str`` (UTF-8, else Latin-1); repeated fields are joined
      with ``", "``.  ``KeyError`` when absent; ``get(name, default)``.
    - ``get_list(name)``: every value of a repeated field, in order.
    - iteration, ``keys()``, ``items()``: ``str`` names and values, repeats
      included; ``raw``: the ``(bytes, bytes)`` pairs exactly as received.

    Pseudo-header fields (``:status``) are not included.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: Optional[RawHeaders] = None) -> None:
        self.raw: RawHeaders = raw if raw is not None else []

    def get_list(self, name: Name) -> list[str]:
        key = _key(name)
        return [_decode(v) for k, v in self.raw if k == key or k.lower() == key]

    def __getitem__(self, name: Name) -> str:
        values = self.get_list(name)
        if not values:
            raise KeyError(name)
        return values[0] if len(values) == 1 else ", ".join(values)

    @overload
    def get(self, name: Name) -> Optional[str]: ...

    @overload
    def get(self, name: Name, default: str) -> str: ...

    def get(self, name: Name, default: Optional[str] = None) -> Optional[str]:
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, (str, bytes)):
            return False
        key = _key(name)
        return any(k == key or k.lower() == key for k, _ in self.raw)

    def keys(self) -> list[str]:
        return [_decode(k) for k, _ in self.raw]

    def items(self) -> list[tuple[str, str]]:
        return [(_decode(k), _decode(v)) for k, v in self.raw]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.raw)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self.raw == other.raw
        if isinstance(other, list):
            return self.raw == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"
