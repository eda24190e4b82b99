"""What every connection does for its handlers, whatever the protocol.

:class:`Connection` is the base of :class:`~server.protocol.HTTP2Protocol`
and :class:`~server.http11.HTTP11Protocol`: it runs handler callbacks (a
coroutine becomes a task; an exception answers 500 through the subclass's
``_fail``), closes handlers (failing their pending reads and writes with
:class:`~server.errors.ClientDisconnected`, cancelling their task when the
client went away) and writes the access log.  A subclass provides
``server``, ``client_address``, ``_loop``, ``_busy``, ``flush()``,
``_fail(handler)`` and the handler-facing calls (``start_response``...).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from nghttp2_cffi import DEFAULT_PRIORITY, ErrorCode, Priority

from .errors import ClientDisconnected

if TYPE_CHECKING:
    from .handler import BaseRequestHandler
    from .server import HTTP2Server

log = logging.getLogger("server")
access_log = logging.getLogger("server.access")


class Connection(asyncio.Protocol):
    """The protocol-neutral part of a server connection (``http2`` in handlers)."""

    #: The protocol version, as access log lines and ``scope["http_version"]`` say it.
    http_version = "2"

    server: HTTP2Server
    client_address: Any
    _loop: asyncio.AbstractEventLoop
    _busy: bool

    def flush(self) -> None:
        raise NotImplementedError

    def _fail(self, handler: BaseRequestHandler) -> None:
        raise NotImplementedError

    def send_shutdown_notice(self) -> None:
        """Shutting down: finish what is in flight, take nothing new."""
        raise NotImplementedError

    def send_final_goaway(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def stream_priority(self, handler: BaseRequestHandler) -> Priority:
        """The RFC 9218 priority the connection gives the handler's response
        (HTTP/1.1 sends one response at a time: the default)."""
        return DEFAULT_PRIORITY

    def set_stream_priority(
        self, handler: BaseRequestHandler, priority: Priority, ignore_client_signal: bool
    ) -> None:
        """Reschedule the handler's response (HTTP/1.1: nothing to schedule)."""

    def _call(self, handler: BaseRequestHandler, method: Any, *args: Any) -> bool:
        """Run a handler callback; on an exception answer 500 or reset."""
        try:
            result = method(*args)
            if result is not None and asyncio.iscoroutine(result):
                task = self._loop.create_task(self._run(handler, result))
                if handler._task is None or handler._task.done():
                    handler._task = task
            return True
        except Exception:
            log.exception(
                "%s: handler %s failed on stream %d",
                _peer(self.client_address),
                type(handler).__name__,
                handler.stream_id,
            )
            self._fail(handler)
            return False

    async def _run(self, handler: BaseRequestHandler, coro: Any) -> None:
        try:
            await coro
        except (asyncio.CancelledError, ClientDisconnected):
            pass
        except Exception:
            log.exception(
                "%s: handler %s failed on stream %d",
                _peer(self.client_address),
                type(handler).__name__,
                handler.stream_id,
            )
            self._fail(handler)
        if not self._busy:
            self.flush()

    def _close_handler(self, handler: BaseRequestHandler, error_code: int) -> None:
        if handler._inbox is not None or handler._drained is not None or handler._task is not None:
            gone = ClientDisconnected(
                f"stream {handler.stream_id} closed ({ErrorCode(error_code).name})"
            )
            if handler._inbox is not None and not handler._inbox.done:
                handler._inbox.close(gone)
            if handler._drained is not None:
                if not handler._drained.done():
                    handler._drained.set_exception(gone)
                    handler._drained.exception()  # retrieved: no "never retrieved" warning
                handler._drained = None
            task = handler._task
            if error_code and task is not None and not task.done():
                task.cancel()
        reader = handler._reader
        handler._generator = handler._reader = None
        if reader is not None and getattr(handler, "_owns_reader", False):
            reader.close()
        try:
            handler.on_close(error_code)
        except Exception:
            log.exception("handler %s failed in on_close", type(handler).__name__)
        if self.server.access_log and handler.status is not None:
            self._log_access(handler, error_code)

    def _log_access(self, handler: BaseRequestHandler, error_code: int) -> None:
        duration = (self._loop.time() - handler._started) * 1000 if handler._started else 0.0
        access_log.info(
            '%s "%s %s HTTP/%s" %s %d %s %.1fms%s',
            _peer(self.client_address),
            (handler.method or b"-").decode("latin-1"),
            (handler.path or b"-").decode("latin-1"),
            self.http_version,
            handler.status,
            handler._body_bytes,
            "P" if handler.pushed else "-",
            duration,
            f" reset={ErrorCode(error_code).name}" if error_code else "",
        )


def _resolve(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)


_COROUTINE_FUNCTIONS: Dict[Any, bool] = {}


def _is_coroutine_function(func: Any) -> bool:
    known = _COROUTINE_FUNCTIONS.get(func)
    if known is None:
        known = _COROUTINE_FUNCTIONS[func] = asyncio.iscoroutinefunction(func)
    return known


def _content_length(headers: List[Tuple[bytes, bytes]]) -> Optional[int]:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _peer(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)
