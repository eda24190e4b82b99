"""HTTP2Server: listens, makes one HTTP2Protocol per connection, shuts down
gracefully."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import ssl as _ssl
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Tuple, cast

from nghttp2_cffi import FEATURES, SettingCode

from .connection import Connection, peer
from .handler import BaseRequestHandler
from .http11 import HTTP11Protocol
from .limits import Limits
from .protocol import HTTP2Protocol
from .tls_transport import TLSAcceptor
from .workers import loop_factory, run, serve_workers

if TYPE_CHECKING:
    from .proxy import ProxyHeaders

log = logging.getLogger("nghttp2.server")

#: Seconds between the shutdown notice (GOAWAY 2^31-1) and the final GOAWAY:
#: time for requests already on the wire to arrive.
SHUTDOWN_NOTICE_DELAY = 0.2
#: CPython's (3.7+); PyPy has none.
_gc_freeze = getattr(gc, "freeze", None)
#: Bytes one read takes from a socket, as asyncio's own default.
READ_BUFFER_SIZE = 256 * 1024


class HTTP2Server:
    """An HTTP/2 server: ``HTTP2Server(address, RequestHandlerClass, ssl=None)``.

    ``address`` is ``(host, port)``; host ``None`` (or ``""``) listens on all
    interfaces, port 0 picks a free port (see :attr:`address`).  ``ssl``: an
    ``ssl.SSLContext`` for TLS (ALPN ``h2`` and ``http/1.1`` are set on it),
    or None for cleartext.  ``http1``: serve HTTP/1.1 too (the default):
    TLS clients that negotiate ``http/1.1`` and cleartext clients that do not
    start with the HTTP/2 preface, with ``Upgrade: h2c`` (see
    :mod:`server.http11`); with ``http1=False`` only HTTP/2 is spoken.

    Blocking use: :meth:`serve_forever` (SIGINT/SIGTERM shut it down
    gracefully).  Inside a running loop: ``await server.start()`` or
    ``async with server:``, then :meth:`shutdown` or :meth:`close`.

    ``loop``: the event loop :meth:`serve_forever` runs: ``"auto"`` (the
    default: uvloop if installed, else asyncio), ``"asyncio"``,
    ``"uvloop"`` or a loop factory.  ``workers``: with N > 1, :meth:`serve_forever` forks N
    processes, each with its own loop and a ``SO_REUSEPORT`` socket on the
    same port (see :mod:`server.workers`).

    ``limits``: a :class:`~server.limits.Limits` (limits and timeouts);
    ``settings``: extra SETTINGS to announce, over those ``limits`` implies.

    ``sock``: serve on this bound socket (a Unix socket, one inherited from
    systemd) instead of ``address``.  ``proxy_headers``: a
    :class:`~server.proxy.ProxyHeaders`: behind trusted proxies, handlers'
    ``client_address`` and ASGI scopes' ``client``/``scheme`` come from the
    ``Forwarded``/``X-Forwarded-*`` request fields.

    Priorities (RFC 9218): the server announces
    ``SETTINGS_NO_RFC7540_PRIORITIES = 1`` and sends the most urgent
    responses first, as clients that announce it too ask (``priority``
    header fields, PRIORITY_UPDATE frames; handlers see ``self.priority``).
    Clients that do not announce it keep RFC 7540 scheduling, unless
    ``fallback_rfc7540_priorities=False``; ``settings=
    {SettingCode.NO_RFC7540_PRIORITIES: 0}`` turns RFC 9218 off.
    """

    def __init__(
        self,
        address: tuple[Optional[str], int],
        RequestHandlerClass: type[BaseRequestHandler],
        ssl: Optional[_ssl.SSLContext] = None,
        *,
        limits: Optional[Limits] = None,
        settings: Optional[Mapping[int, int]] = None,
        access_log: bool = True,
        shutdown_timeout: float = 30.0,
        backlog: int = 1024,
        loop: Any = None,
        workers: int = 1,
        reuse_port: bool = False,
        http1: bool = True,
        fallback_rfc7540_priorities: bool = True,
        sock: Optional[socket.socket] = None,
        proxy_headers: Optional[ProxyHeaders] = None,
    ) -> None:
        if not (
            isinstance(RequestHandlerClass, type)
            and issubclass(RequestHandlerClass, BaseRequestHandler)
        ):
            raise TypeError("RequestHandlerClass must be a subclass of BaseRequestHandler")
        host, port = address
        self.host = host or None
        self.port = port
        self.handler_class = RequestHandlerClass
        self.ssl = ssl
        self.http1 = http1
        if ssl is not None:
            ssl.set_alpn_protocols(["h2", "http/1.1"] if http1 else ["h2"])
        self.access_log = access_log
        self.shutdown_timeout = shutdown_timeout
        self.backlog = backlog
        loop_factory(loop)  # a missing uvloop fails here, not at serve time
        self.loop = loop
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, not {workers!r}")
        self.workers = workers
        self.reuse_port = reuse_port
        self.sock = sock
        self.proxy_headers = proxy_headers
        self.limits = limits = limits or Limits()
        announced: dict[int, int] = {}
        if FEATURES["server_fallback_rfc7540_priorities"] or not fallback_rfc7540_priorities:
            announced[SettingCode.NO_RFC7540_PRIORITIES] = 1
        announced.update({SettingCode(k): v for k, v in (settings or {}).items()})
        #: Every connection's Session options (windows open as handlers
        #: consume the body: see HTTP2Protocol._data).
        self.session_config = limits.session_config(
            announced,
            fallback_rfc7540_priorities=fallback_rfc7540_priorities
            and FEATURES["server_fallback_rfc7540_priorities"],
        )
        self.connections: set[Connection] = set()
        #: Where every connection's reads land (see Connection.get_buffer).
        self.read_buffer = memoryview(bytearray(READ_BUFFER_SIZE))
        #: Connections to flush at the end of this loop round
        #: (Connection.flush_soon).
        self.flush_batch: list[Any] = []
        self._server: Optional[asyncio.AbstractServer] = None
        #: The one timer that ticks over every connection's deadlines (see
        #: _watch_timeouts), while there are connections.
        self._ticker: Optional[asyncio.TimerHandle] = None
        self._tls: Optional[TLSAcceptor] = None
        self._closed: Optional[asyncio.Event] = None

    @property
    def session_options(self) -> dict[str, Any]:
        """``Session("server", **server.session_options)``: 0.1's way to make
        a connection's Session, kept for one release; use :attr:`session_config`."""
        return {"config": self.session_config}

    # ---- starting ------------------------------------------------------

    async def start(self) -> None:
        """Start listening (in the running loop)."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._closed = asyncio.Event()
        # TLS runs in the server's own transport (see server.tls_transport).
        factory: Any = self._new_connection
        if self.ssl is not None:
            factory = self._tls = TLSAcceptor(self, self.ssl)
        if self.sock is not None:
            self._server = await loop.create_server(factory, sock=self.sock, backlog=self.backlog)
            log.info("listening on %s", self.url)
            return
        self._server = await loop.create_server(
            factory,
            host=self.host,
            port=self.port,
            reuse_address=True,
            backlog=self.backlog,
            reuse_port=self.reuse_port or None,
        )
        log.info("listening on %s", self.url)

    # ---- timeouts ------------------------------------------------------

    def _watch_timeouts(self) -> None:
        """A connection opened: make sure the timer runs.  One timer ticks
        over every connection (Connection._tick), a few times per shortest
        timeout and at most once a second: one timer per connection cost
        1000 call_later a second at 1000 connections (1.8% of the CPU of
        workload d on uvloop, measured with py-spy)."""
        if self._ticker is None:
            timers = self.limits.timers()
            if timers:
                tick = min(1.0, max(0.05, min(timers) / 4))
                loop = asyncio.get_running_loop()
                self._ticker = loop.call_later(tick, self._tick, loop, tick)

    def _tick(self, loop: asyncio.AbstractEventLoop, tick: float) -> None:
        self._ticker = None
        if not self.connections:
            return  # the next connection starts the timer again
        now = loop.time()
        for conn in list(self.connections):
            try:
                conn._tick(now)
            except Exception:  # one connection's: logged, the others go on
                log.exception("%s: checking its timeouts failed", peer(conn.client_address))
        if self.connections:
            self._ticker = loop.call_later(tick, self._tick, loop, tick)

    def _new_connection(self) -> Connection:
        return HTTP11Protocol(self) if self.http1 else HTTP2Protocol(self)

    @property
    def sockets(self) -> Tuple[socket.socket, ...]:
        server = cast(Optional[asyncio.Server], self._server)
        return tuple(server.sockets) if server is not None else ()

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)`` of the first listening socket."""
        if not self.sockets:
            raise RuntimeError("the server is not listening; call start() first")
        host, port = self.sockets[0].getsockname()[:2]
        return host, port

    @property
    def url(self) -> str:
        if self.sockets and self.sockets[0].family == getattr(socket, "AF_UNIX", None):
            return f"{'https' if self.ssl else 'http'}://localhost/"
        host, port = self.address
        if self.host is None:
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.ssl else 'http'}://{host}:{port}/"

    async def __aenter__(self) -> HTTP2Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def serve(self) -> None:
        """Start if needed, then wait until :meth:`shutdown` or :meth:`close`."""
        await self.start()
        assert self._closed is not None
        await self._closed.wait()

    def serve_forever(self) -> None:
        """Serve until SIGINT or SIGTERM, then shut down gracefully (on the
        ``loop`` chosen, in ``workers`` processes)."""
        if self.workers > 1:
            if serve_workers(self) != 0:
                raise RuntimeError("the worker processes could not start (see the log)")
            return
        try:
            run(self.serve_until_signal(), self.loop)
        except KeyboardInterrupt:
            pass

    async def serve_until_signal(
        self, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)
    ) -> None:
        """Start if needed, serve until one of ``signals`` (or shutdown()),
        then shut down gracefully; a second signal during the graceful drain
        forces the exit (see :meth:`force_stop`)."""
        await self.start()
        # The process is the server's now.  What lives at this point (modules,
        # the app, the server) lives as long as it does: out of the cycle
        # collector's sight, so that each full collection, which the
        # requests' tasks bring about every ~15,000 ASGI requests at 1000
        # connections, walks only the connections' objects.  (PyPy's
        # collector has no freeze, nor this cost.)
        if _gc_freeze is not None:
            gc.collect()
            _gc_freeze()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        installed = []
        for sig in signals:
            try:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or not a Unix loop
        try:
            assert self._closed is not None
            waiters = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._closed.wait()),
            ]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            if stop.is_set():
                log.info(
                    "signal received: shutting down gracefully (at most %gs; "
                    "a second Ctrl-C forces the exit)",
                    self.shutdown_timeout,
                )
            for sig in installed:
                loop.add_signal_handler(sig, self.force_stop)
            await self.shutdown()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def force_stop(self) -> None:
        """A second signal during the graceful drain: say what is dropped,
        then drop every connection now."""
        requests = sum(len(getattr(conn, "handlers", ())) for conn in self.connections)
        log.warning(
            "second signal: forcing the exit, dropping %d request(s) on %d connection(s)",
            requests,
            len(self.connections),
        )
        self.close()

    # ---- stopping ------------------------------------------------------

    async def shutdown(self, timeout: Optional[float] = None) -> None:
        """Stop listening, tell clients with GOAWAY, let in-flight streams
        finish (at most ``timeout`` seconds, default ``shutdown_timeout``),
        then close every connection."""
        if self._server is None:
            return
        timeout = self.shutdown_timeout if timeout is None else timeout
        self._server.close()
        if self._tls is not None:
            self._tls.close()  # handshakes under way
        connections = list(self.connections)
        for conn in connections:
            conn.send_shutdown_notice()
        if connections:
            await asyncio.sleep(min(SHUTDOWN_NOTICE_DELAY, timeout))
        for conn in list(self.connections):
            conn.send_final_goaway()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if self.connections:
            log.warning(
                "shutdown: aborting %d connection(s) after %.1fs", len(self.connections), timeout
            )
        self.close()

    def close(self) -> None:
        """Stop listening and drop every connection now."""
        if self._server is None:
            return
        self._server.close()
        if self._tls is not None:
            self._tls.close()
        for conn in list(self.connections):
            conn.abort()
        self.connections.clear()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self._server = None
        if self._closed is not None:
            self._closed.set()
