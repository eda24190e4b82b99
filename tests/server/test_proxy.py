"""server/proxy.py: the client's address and scheme from Forwarded (RFC
7239) and X-Forwarded-For/-Proto, believed only from trusted proxies.
Pure functions: no sockets."""

from __future__ import annotations

import pytest

from nghttp2.server.proxy import ProxyHeaders, parse_forwarded

PEER = ("127.0.0.1", 50000)


def resolve(headers, peer=PEER, trusted="127.0.0.1", scheme="http"):
    fields = [(name.lower().encode(), value.encode()) for name, value in headers]
    return ProxyHeaders(trusted).resolve(peer, scheme, fields)


def test_x_forwarded_for_and_proto_from_a_trusted_peer():
    got = resolve([("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")])
    assert got == (("203.0.113.7", 0), "https")


def test_an_untrusted_peer_is_not_believed():
    headers = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")]
    assert resolve(headers, peer=("198.51.100.1", 1234)) == (("198.51.100.1", 1234), "http")
    assert resolve([("Forwarded", "for=203.0.113.7")], trusted="10.0.0.0/8") == (PEER, "http")


def test_no_field_leaves_the_peer():
    assert resolve([("Host", "example.com")]) == (PEER, "http")
    assert resolve([], scheme="https") == (PEER, "https")


def test_a_chain_is_read_from_the_right_up_to_the_first_untrusted_hop():
    # The client wrote "1.2.3.4" itself; the trusted proxies appended the rest.
    headers = [("X-Forwarded-For", "1.2.3.4, 203.0.113.7, 10.0.0.2")]
    assert resolve(headers, trusted="127.0.0.1, 10.0.0.0/8")[0] == ("203.0.113.7", 0)
    # Every hop trusted: the leftmost is the client.
    assert resolve([("X-Forwarded-For", "10.0.0.3, 10.0.0.2")], trusted="127.0.0.1,10.0.0.0/8")[
        0
    ] == ("10.0.0.3", 0)
    # Several header lines are one list.
    headers = [("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-For", "203.0.113.9")]
    assert resolve(headers)[0] == ("203.0.113.9", 0)


def test_proto_is_the_one_of_the_chosen_hop():
    headers = [
        ("X-Forwarded-For", "203.0.113.7, 10.0.0.2"),
        ("X-Forwarded-Proto", "https, http"),
    ]
    assert resolve(headers, trusted="127.0.0.1,10.0.0.0/8") == (("203.0.113.7", 0), "https")
    # Only a proto: the scheme changes, the address does not.
    assert resolve([("X-Forwarded-Proto", "https")]) == (PEER, "https")
    # Nonsense protos are ignored; ws/wss map to http/https.
    assert resolve([("X-Forwarded-Proto", "gopher")])[1] == "http"
    assert resolve([("X-Forwarded-Proto", "wss")])[1] == "https"


def test_rfc7239_forwarded():
    got = resolve([("Forwarded", 'for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.1')])
    assert got == (("2001:db8:cafe::17", 4711), "https")
    got = resolve([("Forwarded", "for=192.0.2.60;proto=http, for=198.51.100.17")])
    assert got == (("198.51.100.17", 0), "http")
    # Forwarded wins over X-Forwarded-For.
    got = resolve([("X-Forwarded-For", "1.1.1.1"), ("Forwarded", "For=192.0.2.43")])
    assert got[0] == ("192.0.2.43", 0)
    # An obfuscated or unknown node is not a trusted proxy: it is the client.
    assert resolve([("Forwarded", "for=_hidden, for=unknown")])[0] == ("unknown", 0)


def test_parse_forwarded_quoting():
    assert parse_forwarded('for="a,b";proto=https, for=x') == [
        (("a,b", 0), "https"),
        (("x", 0), None),
    ]
    assert parse_forwarded("by=10.0.0.1") == [(None, None)]
    assert parse_forwarded('for="192.0.2.1:8080"') == [(("192.0.2.1", 8080), None)]


def test_trusted_networks():
    proxy = ProxyHeaders("10.0.0.0/8, ::1")
    assert proxy.trusts("10.1.2.3")
    assert proxy.trusts("::1")
    assert not proxy.trusts("11.0.0.1")
    assert not proxy.trusts("_hidden")
    assert proxy.trusts("")  # a Unix socket peer
    assert proxy.trusts(None)
    assert ProxyHeaders("*").trusts("198.51.100.1")
    with pytest.raises(ValueError, match=r"not an IP address or network: 'proxy\.local'"):
        ProxyHeaders("proxy.local")
