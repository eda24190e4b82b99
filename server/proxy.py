"""Behind a reverse proxy: the client's address and scheme from the
``Forwarded`` (RFC 7239) or ``X-Forwarded-For`` / ``X-Forwarded-Proto``
request header fields, believed only when the peer is a trusted proxy.

    proxy = ProxyHeaders("127.0.0.1, 10.0.0.0/8")
    client, scheme = proxy.resolve(peer, "http", request_headers)

Each proxy appends one hop to these fields, so they are read from the right:
hops added by trusted proxies are skipped, and the first hop that is not a
trusted proxy is the client (as uvicorn and werkzeug's ProxyFix do).  A
client can write anything into the left part, which is why nothing there
is believed past the first untrusted hop.  ``Forwarded`` wins over the
``X-Forwarded-*`` pair when both are present.  Pure functions; the server
calls :meth:`ProxyHeaders.resolve` only when ``--proxy-headers`` is on.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Fields = Sequence[Tuple[bytes, bytes]]
#: ``(host, port)`` as the ASGI scope's ``client`` has it (port 0: unknown).
Client = Tuple[str, int]


class ProxyHeaders:
    """Which peers are trusted proxies: ``trusted`` is a comma-separated
    string (or an iterable) of IP addresses and networks (``10.0.0.0/8``),
    or ``*`` for every peer.  A peer on a Unix socket (no IP address) is
    trusted: only processes allowed to open the socket file reach it."""

    __slots__ = ("networks", "trust_all")

    def __init__(self, trusted: Union[str, Iterable[str]] = "127.0.0.1") -> None:
        items = trusted.split(",") if isinstance(trusted, str) else list(trusted)
        self.trust_all = False
        self.networks: List[Network] = []
        for item in (i.strip() for i in items):
            if not item:
                continue
            if item == "*":
                self.trust_all = True
                continue
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(
                    f"not an IP address or network: {item!r} (use e.g. 127.0.0.1, "
                    "10.0.0.0/8, ::1 or *)"
                ) from None

    def trusts(self, host: Optional[str]) -> bool:
        """Whether ``host`` (a peer address; None or '' for a Unix socket)
        is a trusted proxy."""
        if self.trust_all or not host:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False  # an obfuscated identifier ("_proxy1", "unknown")
        return any(address in network for network in self.networks)

    def resolve(self, peer: Any, scheme: str, headers: Fields) -> Tuple[Any, str]:
        """The client ``(host, port)`` and scheme (``http``/``https``) for a
        request from ``peer`` with these ``headers``; unchanged when the
        peer is not trusted or the request carries no such field."""
        host = peer[0] if isinstance(peer, tuple) and peer else None
        if not self.trusts(host):
            return peer, scheme
        forwarded: List[bytes] = []
        xff: List[bytes] = []
        xfp: List[bytes] = []
        for name, value in headers:
            if name == b"forwarded":
                forwarded.append(value)
            elif name == b"x-forwarded-for":
                xff.append(value)
            elif name == b"x-forwarded-proto":
                xfp.append(value)
        if forwarded:
            hops = parse_forwarded(b",".join(forwarded).decode("latin-1"))
        elif xff or xfp:
            hops = _x_forwarded_hops(
                b",".join(xff).decode("latin-1"), b",".join(xfp).decode("latin-1")
            )
        else:
            return peer, scheme
        client, proto = self._pick(hops)
        if proto in ("http", "https"):
            scheme = proto
        elif proto in ("ws", "wss"):
            scheme = "https" if proto == "wss" else "http"
        return (client if client is not None else peer), scheme

    def _pick(self, hops: List[Tuple[Optional[Client], Optional[str]]]) -> Tuple[Any, Any]:
        """The rightmost hop whose ``for`` is not a trusted proxy (all
        trusted: the leftmost); its proto, or the nearest one to its right."""
        client: Optional[Client] = None
        proto: Optional[str] = None
        for hop_client, hop_proto in reversed(hops):
            if hop_proto is not None:
                proto = hop_proto
            if hop_client is None:
                continue
            client = hop_client
            if not self.trusts(hop_client[0]):
                break
        return client, proto


def parse_forwarded(value: str) -> List[Tuple[Optional[Client], Optional[str]]]:
    """RFC 7239 ``Forwarded``: one ``(for, proto)`` per element, left to
    right; ``for`` is ``(host, port)`` (brackets of IPv6 removed, port 0 if
    absent), None when the element has none."""
    hops: List[Tuple[Optional[Client], Optional[str]]] = []
    for element in _split_quoted(value, ","):
        client: Optional[Client] = None
        proto: Optional[str] = None
        for pair in _split_quoted(element, ";"):
            name, sep, raw = pair.partition("=")
            if not sep:
                continue
            name = name.strip().lower()
            raw = raw.strip()
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            if name == "for":
                client = _node(raw)
            elif name == "proto":
                proto = raw.lower()
        hops.append((client, proto))
    return hops


def _x_forwarded_hops(
    for_value: str, proto_value: str
) -> List[Tuple[Optional[Client], Optional[str]]]:
    """``X-Forwarded-For`` and ``X-Forwarded-Proto`` as hops, aligned from the
    right (each proxy appends one entry to each)."""
    clients = [_node(item.strip()) for item in for_value.split(",") if item.strip()]
    protos = [item.strip().lower() for item in proto_value.split(",") if item.strip()]
    count = max(len(clients), len(protos))
    hops: List[Tuple[Optional[Client], Optional[str]]] = []
    for index in range(count):
        c = index - (count - len(clients))
        p = index - (count - len(protos))
        hops.append((clients[c] if c >= 0 else None, protos[p] if p >= 0 else None))
    return hops


def _node(text: str) -> Client:
    """A node name with an optional port: ``192.0.2.1``, ``192.0.2.1:80``,
    ``[2001:db8::1]:4711``, ``2001:db8::1``, ``unknown``, ``_hidden``."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    return host, int(port) if port.isdigit() else 0


def _split_quoted(text: str, separator: str) -> List[str]:
    """``text`` split at ``separator`` outside double quotes."""
    parts: List[str] = []
    start = 0
    quoted = False
    escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


__all__ = ["ProxyHeaders", "parse_forwarded"]
