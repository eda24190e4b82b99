"""httpx transports on nghttp2: ``httpx.AsyncClient(transport=AsyncHTTPTransport())``.

Only re-exports :mod:`nghttp2.client.httpx_transport` (importing this module
imports httpx; ``import nghttp2`` does not).
"""

from nghttp2.client.httpx_transport import AsyncHTTPTransport, HTTPTransport, NetworkStream

__all__ = ["AsyncHTTPTransport", "HTTPTransport", "NetworkStream"]
