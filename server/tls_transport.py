"""TLS driven by the server itself: ``ssl.MemoryBIO`` and ``ssl.SSLObject``
under an ordinary asyncio transport.

Why not ``loop.create_server(ssl=...)``: asyncio's TLS layer allocates a
256 KiB buffer per connection before the handshake and keeps it (311 KiB per
silent TCP connection on the TLS port, 309 KiB per idle h2-over-TLS one,
measured with tools/bench_memory.py; cleartext costs 17.7 KiB), its handshake
timeout is 60 s, and the server only sees a connection once its handshake is
done, too late for the connection cap.  Here each accepted socket gets a
:class:`TLSTransport` at once: it counts against ``Limits.max_connections``
from the start, must finish its handshake within
``Limits.handshake_timeout``, and holds no buffer of its own — ciphertext
read from the socket lands in the server's one read buffer and goes into
OpenSSL's memory BIO, plaintext is decrypted straight into the protocol's
buffer.  The same code runs on CPython 3.9+ (whatever asyncio's SSL
internals), under uvloop and on PyPy.

To the server's protocols a :class:`TLSTransport` is an ``asyncio.Transport``
like any other: ``get_extra_info("ssl_object")`` gives the ``SSLObject``
(ALPN, peer certificate), ``"socket"``, ``"peername"``... come from the TCP
transport below.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING, Any, Iterable, Optional, Set, Tuple, Union, cast

if TYPE_CHECKING:
    from .server import HTTP2Server

log = logging.getLogger("nghttp2.server")

# Plaintext taken out of OpenSSL per read for a protocol that is not buffered.
_READ_SIZE = 64 * 1024

_HANDSHAKE, _OPEN, _CLOSING, _CLOSED = range(4)


class TLSAcceptor:
    """The protocol factory of a TLS listening socket: one
    :class:`TLSTransport` per accepted connection, the connection cap
    applied at accept time, the handshakes under way kept to abort them."""

    def __init__(self, server: HTTP2Server, context: ssl.SSLContext) -> None:
        self.server = server
        self.context = context
        #: Connections still in their handshake (not in ``server.connections`` yet).
        self.handshaking: Set[TLSTransport] = set()
        # Refusals are logged at most once a second (a flood would flood the log).
        self._refused = 0
        self._refused_logged_at = -1.0

    def __call__(self) -> TLSTransport:
        return TLSTransport(self)

    def open_connections(self) -> int:
        """Connections the cap counts: served ones and handshakes under way."""
        return len(self.server.connections) + len(self.handshaking)

    def refused(self, peer: Any, cap: int) -> None:
        """A connection over the cap was closed: log it, or count it for the next line."""
        self._refused += 1
        now = asyncio.get_running_loop().time()
        if now - self._refused_logged_at >= 1.0:
            log.warning(
                "%s: refused: %d connections open (%d refused since the last such line)",
                _peer(peer),
                cap,
                self._refused,
            )
            self._refused = 0
            self._refused_logged_at = now

    def close(self) -> None:
        """Abort every handshake under way."""
        for transport in list(self.handshaking):
            transport.abort()
        self.handshaking.clear()


class TLSTransport(asyncio.BufferedProtocol, asyncio.Transport):
    """One TLS connection: the protocol of the TCP transport below, and the
    transport of the server's protocol above (``HTTP11Protocol``,
    ``HTTP2Protocol``), which it makes once the handshake is done."""

    __slots__ = (
        "_acceptor",
        "_raw",
        "_incoming",
        "_outgoing",
        "_sslobj",
        "_app",
        "_app_buffered",
        "_state",
        "_reading_paused",
        "_read_scheduled",
        "_timer",
    )

    def __init__(self, acceptor: TLSAcceptor) -> None:
        super().__init__()
        self._acceptor = acceptor
        self._raw: Optional[asyncio.Transport] = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._sslobj: Optional[ssl.SSLObject] = acceptor.context.wrap_bio(
            self._incoming, self._outgoing, server_side=True
        )
        self._app: Optional[asyncio.BaseProtocol] = None
        self._app_buffered = False
        self._state = _HANDSHAKE
        self._reading_paused = False
        self._read_scheduled = False
        self._timer: Optional[asyncio.TimerHandle] = None

    # ---- the TCP side (asyncio.BufferedProtocol) ---------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = self._raw = cast(asyncio.Transport, transport)
        acceptor = self._acceptor
        limits = acceptor.server.limits
        cap = limits.max_connections
        if cap is not None and acceptor.open_connections() >= cap:
            acceptor.refused(raw.get_extra_info("peername"), cap)
            self._state = _CLOSED
            raw.abort()
            return
        acceptor.handshaking.add(self)
        if limits.handshake_timeout is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(limits.handshake_timeout, self._handshake_timed_out)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._acceptor.server.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self._state >= _CLOSING:
            return
        self._incoming.write(self._acceptor.server.read_buffer[:nbytes])
        if self._state == _HANDSHAKE:
            self._handshake()
        else:
            self._read()

    def eof_received(self) -> bool:
        # As asyncio's TLS: what was decrypted is delivered, the protocol
        # hears of the end, and the connection closes (False).
        if self._state == _OPEN:
            self._read()
            app = self._app
            if app is not None and self._state == _OPEN:
                self._state = _CLOSING
                try:
                    app.eof_received()  # type: ignore[attr-defined]
                except Exception:
                    log.exception("eof_received() of %r failed", app)
        return False

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._state = _CLOSED
        self._stop_timer()
        self._acceptor.handshaking.discard(self)
        app, self._app = self._app, None
        self._sslobj = None
        if app is not None:
            app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._app is not None:
            self._app.pause_writing()

    def resume_writing(self) -> None:
        if self._app is not None:
            self._app.resume_writing()

    # ---- TLS -----------------------------------------------------------------

    def _handshake(self) -> None:
        sslobj = self._sslobj
        assert sslobj is not None
        try:
            sslobj.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            log.info("%s: TLS handshake failed: %s", self._peer(), exc)
            self._flush()  # the alert
            self._close_raw()
            return
        self._flush()
        self._stop_timer()
        self._acceptor.handshaking.discard(self)
        self._state = _OPEN
        app = self._acceptor.server._new_connection()
        self.set_protocol(app)
        app.connection_made(self)
        if self._state == _OPEN and (self._incoming.pending or sslobj.pending()):
            self._read()  # the first request came with the handshake's end

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if self._state == _HANDSHAKE:
            log.info("%s: closing: no TLS handshake in time (timeout)", self._peer())
            self.abort()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _read(self) -> None:
        """Hand decrypted bytes to the protocol until OpenSSL has no more,
        the protocol pauses reading, or the connection closes."""
        self._read_scheduled = False
        sslobj = self._sslobj
        while self._state == _OPEN and not self._reading_paused and sslobj is not None:
            app = self._app
            assert app is not None
            try:
                if self._app_buffered:
                    buffer = app.get_buffer(-1)  # type: ignore[attr-defined]
                    # Any writable buffer works (typeshed says bytearray); the
                    # count of bytes read comes back.
                    count = cast(int, sslobj.read(len(buffer), cast(bytearray, buffer)))
                    if count:
                        app.buffer_updated(count)  # type: ignore[attr-defined]
                else:
                    data = sslobj.read(_READ_SIZE)
                    count = len(data)
                    if count:
                        app.data_received(data)  # type: ignore[attr-defined]
                if count and not self._incoming.pending and not sslobj.pending():
                    break  # all read: spare the SSLWantReadError of one more read
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                count = 0
            except (ssl.SSLError, OSError) as exc:
                log.info("%s: TLS error: %s", self._peer(), exc)
                self._flush()
                self.abort()
                return
            if not count:  # close_notify: the peer is done
                self._state = _CLOSING
                try:
                    app.eof_received()  # type: ignore[attr-defined]
                finally:
                    self._flush()
                    self._close_raw()
                return
        self._flush()  # key updates, post-handshake messages

    def _flush(self) -> None:
        """Send what OpenSSL wrote to the outgoing BIO."""
        if self._outgoing.pending and self._raw is not None:
            self._raw.write(self._outgoing.read())

    def _close_raw(self) -> None:
        if self._raw is not None and not self._raw.is_closing():
            self._raw.close()

    def _peer(self) -> str:
        return _peer(self._raw.get_extra_info("peername") if self._raw is not None else None)

    # ---- the protocol's side (asyncio.Transport) -----------------------------

    def write(self, data: Union[bytes, bytearray, memoryview]) -> None:
        if self._state != _OPEN or self._sslobj is None or not data:
            return
        try:
            self._sslobj.write(data)
        except (ssl.SSLError, OSError) as exc:
            log.info("%s: TLS error: %s", self._peer(), exc)
            self.abort()
            return
        self._flush()

    def writelines(self, list_of_data: Iterable[Union[bytes, bytearray, memoryview]]) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("TLS has no half-close")

    def close(self) -> None:
        """close_notify, what is queued goes out, then the socket closes."""
        if self._state >= _CLOSING:
            return
        handshaking = self._state == _HANDSHAKE
        self._state = _CLOSING
        if not handshaking and self._sslobj is not None:
            try:
                self._sslobj.unwrap()
            except (ssl.SSLError, OSError):
                pass  # SSLWantReadError: the peer's close_notify is not awaited
            self._flush()
        self._close_raw()

    def abort(self) -> None:
        self._state = max(self._state, _CLOSING)
        if self._raw is not None:
            self._raw.abort()

    def is_closing(self) -> bool:
        return self._state != _OPEN or self._raw is None or self._raw.is_closing()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._app = protocol
        self._app_buffered = isinstance(protocol, asyncio.BufferedProtocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._app is not None
        return self._app

    def pause_reading(self) -> None:
        self._reading_paused = True
        if self._raw is not None:
            self._raw.pause_reading()

    def resume_reading(self) -> None:
        if not self._reading_paused:
            return
        self._reading_paused = False
        if self._raw is not None:
            self._raw.resume_reading()
        sslobj = self._sslobj
        if (
            sslobj is not None
            and not self._read_scheduled
            and (self._incoming.pending or sslobj.pending())
        ):
            # Later, not now: the caller may be about to hand data over itself.
            self._read_scheduled = True
            asyncio.get_running_loop().call_soon(self._read)

    def is_reading(self) -> bool:
        return not self._reading_paused and self._state == _OPEN

    def set_write_buffer_limits(
        self, high: Optional[int] = None, low: Optional[int] = None
    ) -> None:
        if self._raw is not None:
            self._raw.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size() if self._raw is not None else 0

    def get_write_buffer_limits(self) -> Tuple[int, int]:
        if self._raw is None:
            return (0, 0)
        return self._raw.get_write_buffer_limits()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        sslobj = self._sslobj
        if name == "ssl_object":
            return sslobj
        if name == "sslcontext":
            return self._acceptor.context
        if sslobj is not None and name in ("peercert", "cipher", "compression"):
            return getattr(sslobj, "getpeercert" if name == "peercert" else name)()
        if self._raw is None:
            return default
        return self._raw.get_extra_info(name, default)


def _peer(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)
