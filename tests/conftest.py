"""Shared pytest fixtures.

Sections are owned by different layers of the test suite; keep each one
self-contained so they can grow independently.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Callable, Iterator, List, Tuple

import pytest
from session_support import pump as pump_sessions

from nghttp2_cffi import Event, Session

if TYPE_CHECKING:
    import trustme

# ---------------------------------------------------------------------------
# nghttp2_cffi layer: sessions in memory, no sockets.
# ---------------------------------------------------------------------------

Pump = Callable[..., Tuple[List[Event], List[Event]]]


@pytest.fixture
def pump() -> Pump:
    """``pump(a, b)``: exchange bytes until quiet; returns both event lists."""
    return pump_sessions


@pytest.fixture
def pair() -> Iterator[Tuple[Session, Session]]:
    """A client and a server Session that have exchanged SETTINGS."""
    client, server = Session("client"), Session("server")
    pump_sessions(client, server)
    yield client, server
    client.close()
    server.close()


# ---------------------------------------------------------------------------
# Certificates, for the server and client layers: a trustme CA and a server
# certificate for 127.0.0.1/localhost.  trustme is imported only when a test
# asks (the binding's tests run where its cryptography may not load).
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    import trustme

    return trustme.CA()


@pytest.fixture(scope="session")
def server_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("127.0.0.1", "localhost")


@pytest.fixture
def server_ssl(server_cert: trustme.LeafCert) -> ssl.SSLContext:
    """A fresh server context with the certificate chain (the server sets ALPN)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_cert.configure_cert(ctx)
    return ctx
