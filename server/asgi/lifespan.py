"""The ASGI lifespan protocol: startup before the server listens, shutdown
after it stopped."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

from .http import ASGIApp, Message

log = logging.getLogger("nghttp2.server.asgi")

#: Seconds the app gets to answer lifespan.shutdown.
SHUTDOWN_TIMEOUT = 30.0


class LifespanFailure(RuntimeError):
    """The application answered ``lifespan.startup.failed`` (or failed
    ``lifespan.startup`` with ``mode="on"``)."""


class Lifespan:
    """Runs the application's ``lifespan`` scope in a task of its own.

    ``mode``: ``"auto"`` (an app that raises before answering startup does
    not support lifespan: serve without it), ``"on"`` (that is an error) or
    ``"off"`` (never run it).
    """

    def __init__(self, app: ASGIApp, mode: str = "auto") -> None:
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"lifespan mode must be 'auto', 'on' or 'off', not {mode!r}")
        self.app = app
        self.mode = mode
        #: ``scope["state"]``: what the app keeps there is copied into every
        #: request's scope.
        self.state: dict[str, Any] = {}
        #: True once the app answered lifespan.startup.complete.
        self.supported = False
        self._task: Optional[asyncio.Task[None]] = None
        self._inbox: Optional[asyncio.Queue[Message]] = None
        self._answer: Optional[asyncio.Future[tuple[str, Any]]] = None
        self._started = False
        self._stopped = False

    async def startup(self) -> None:
        """Send lifespan.startup and wait for the answer; raises
        :class:`LifespanFailure` on lifespan.startup.failed."""
        if self._started or self.mode == "off":
            return
        self._started = True
        loop = asyncio.get_running_loop()
        self._inbox = asyncio.Queue()
        self._answer = loop.create_future()
        self._inbox.put_nowait({"type": "lifespan.startup"})
        self._task = loop.create_task(self._main())
        kind, text = await self._answer
        if kind == "lifespan.startup.complete":
            self.supported = True
            log.debug("lifespan startup complete")
            return
        if kind == "lifespan.startup.failed":
            raise LifespanFailure(f"ASGI lifespan startup failed: {text or '(no message)'}")
        # The app raised or returned without answering.
        if self.mode == "on":
            raise LifespanFailure(f"ASGI lifespan startup failed: {text}")
        log.info("the ASGI app does not support lifespan (%s); serving without it", text)

    async def shutdown(self) -> None:
        """Send lifespan.shutdown and wait (at most SHUTDOWN_TIMEOUT) for the
        answer."""
        if not self.supported or self._stopped:
            return
        self._stopped = True
        assert self._inbox is not None and self._task is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait({"type": "lifespan.shutdown"})
        try:
            kind, text = await asyncio.wait_for(self._answer, SHUTDOWN_TIMEOUT)
        except asyncio.TimeoutError:
            log.error(
                "the ASGI app did not answer lifespan.shutdown within %.0fs", SHUTDOWN_TIMEOUT
            )
            self._task.cancel()
            return
        if kind == "lifespan.shutdown.failed":
            log.error("ASGI lifespan shutdown failed: %s", text or "(no message)")
        elif kind != "lifespan.shutdown.complete":
            log.error("ASGI lifespan shutdown: %s", text)
        try:
            await asyncio.wait_for(self._task, SHUTDOWN_TIMEOUT)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            self._resolve("cancelled", "the lifespan task was cancelled")
            raise
        except BaseException as exc:  # reported to startup()/shutdown()
            if self.supported:
                log.exception("the ASGI app failed in lifespan")
            self._resolve("error", f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, Exception):
                raise
        else:
            self._resolve("returned", "the app returned from the lifespan scope")

    async def _receive(self) -> Message:
        assert self._inbox is not None
        return await self._inbox.get()

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind not in (
            "lifespan.startup.complete",
            "lifespan.startup.failed",
            "lifespan.shutdown.complete",
            "lifespan.shutdown.failed",
        ):
            raise RuntimeError(f"unexpected ASGI message {kind!r} in lifespan")
        self._resolve(kind, message.get("message", ""))

    def _resolve(self, kind: str, text: Any) -> None:
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_result((kind, text))
