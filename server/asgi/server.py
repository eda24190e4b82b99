"""ASGIServer: an HTTP2Server that serves an ASGI 3 application, with its
lifespan around the time it listens."""

from __future__ import annotations

import asyncio
import os
import sys
from importlib import import_module
from typing import Any, Mapping, Optional

from nghttp2_cffi import SettingCode

from ..server import HTTP2Server
from .http import ASGIApp, asgi_handler
from .lifespan import Lifespan
from .websocket import WebSocketCycle, WebSocketOptions


class ASGIServer(HTTP2Server):
    """``ASGIServer(address, app, ssl=None, **HTTP2Server options)``.

    ``lifespan``: ``"auto"`` (the default: run it if the app supports it),
    ``"on"`` or ``"off"``.  Startup runs before the server listens (a
    ``lifespan.startup.failed`` makes :meth:`start` raise
    :class:`~server.asgi.LifespanFailure`), shutdown after the graceful
    stop of :meth:`shutdown` (not after :meth:`close`, which cannot wait).

    ``websocket``: announce SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 so that
    HTTP/2 clients can open WebSockets by extended CONNECT (RFC 8441);
    ``websocket_options``: message size limit, permessage-deflate.
    """

    def __init__(
        self,
        address: tuple[Optional[str], int],
        app: ASGIApp,
        ssl: Any = None,
        *,
        lifespan: str = "auto",
        root_path: str = "",
        websocket: bool = True,
        websocket_options: Optional[WebSocketOptions] = None,
        settings: Optional[Mapping[int, int]] = None,
        **options: Any,
    ) -> None:
        #: Open WebSockets: closed with 1001 on shutdown (over HTTP/1.1 they
        #: are no longer among the server's connections).
        self.websockets: set[WebSocketCycle] = set()
        self.websocket_options = websocket_options or WebSocketOptions()
        handler = asgi_handler(
            app, websocket_options=self.websocket_options, open_websockets=self.websockets
        )
        announced = dict(settings or {})
        if websocket:
            announced.setdefault(SettingCode.ENABLE_CONNECT_PROTOCOL, 1)
        handler.root_path = root_path.rstrip("/")
        super().__init__(address, handler, ssl, settings=announced, **options)
        self.app = app
        self.lifespan = Lifespan(app, lifespan)
        self._stopping = False

    async def start(self) -> None:
        """Run lifespan startup (once), then start listening."""
        await self.lifespan.startup()
        if self.lifespan.supported:
            self.handler_class.state = self.lifespan.state  # type: ignore[attr-defined]
        try:
            await super().start()
        except BaseException:
            await self.lifespan.shutdown()
            raise

    async def shutdown(self, timeout: Optional[float] = None) -> None:
        """Close open WebSockets (1001), the graceful stop of HTTP2Server,
        then lifespan shutdown."""
        self._stopping = True
        try:
            for websocket in list(self.websockets):
                websocket.going_away()
            await super().shutdown(timeout)  # ends with close()
            # HTTP/2 sockets ended with their connections; HTTP/1.1 ones had
            # the whole graceful stop to finish their closing handshake.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.websocket_options.close_timeout
            while any(ws.upgraded for ws in self.websockets) and loop.time() < deadline:
                await asyncio.sleep(0.02)
            for websocket in list(self.websockets):
                websocket.abort()
        finally:
            self._stopping = False
            await self.lifespan.shutdown()

    def close(self) -> None:
        """Stop listening and drop every connection (WebSockets too) now."""
        if not self._stopping:
            for websocket in list(self.websockets):
                websocket.abort()
        super().close()


def load_app(spec: str) -> ASGIApp:
    """The application named by ``"module:attribute"`` (the attribute may be
    dotted: ``"pkg.mod:api.app"``), importable from the current directory."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"an ASGI app is given as module:attribute, not {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    obj: Any = import_module(module_name)
    for name in attribute.split("."):
        obj = getattr(obj, name)
    if not callable(obj):
        raise TypeError(f"{spec} is a {type(obj).__name__}, not an ASGI application")
    return obj
