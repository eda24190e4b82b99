"""Stream: one request and its response, as the connection keeps them.

The connection owns its streams (``Connection.streams``, by stream id) and
keeps every piece of per-request state here: the request head, the body on
its way to the handler, the response's progress, the timers and the task.
The user's handler refers to its stream (``handler.exchange``) and keeps
nothing of the server's: a handler subclass may use any attribute name
outside the documented handler API.

HTTP/1.1 adds its framing state in a subclass
(:class:`~server.http11_framing.HTTP11Stream`).
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

if TYPE_CHECKING:
    from .connection import Connection
    from .handler import BaseRequestHandler, BodyGenerator


class Inbox:
    """A request body on its way to a coroutine handler."""

    __slots__ = ("chunks", "done", "error", "_waiter")

    def __init__(self) -> None:
        self.chunks: collections.deque[bytes] = collections.deque()
        self.done = False
        self.error: Optional[BaseException] = None
        self._waiter: Optional[asyncio.Future[None]] = None

    def put(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self._wake()

    def close(self, error: Optional[BaseException] = None) -> None:
        self.done = True
        self.error = self.error or error
        self._wake()

    async def wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Stream:
    """All the server knows of one request/response exchange."""

    __slots__ = (
        "connection",
        "handler",
        "id",
        # The request.
        "method",
        "path",
        "scheme",
        "host",
        "headers",
        "trailers",
        "pushed",
        # The request body on its way to the handler.
        "received",
        "inbox",
        "ordered",
        "expect_continue",
        "continue_sent",
        "failed",
        # The response.
        "status",
        "body_bytes",
        "generator",
        "reader",
        "owns_reader",
        "reading",
        "deferred",
        "unsent",
        "drained",
        # The handler's first coroutine, as a task.
        "task",
        # Loop times: the request's arrival; it or the body's last deferral;
        # since when the client keeps the response's window shut.
        "started",
        "progress_at",
        "stalled_at",
        "__weakref__",
    )

    def __init__(
        self,
        connection: Connection,
        stream_id: int,
        now: float,
        headers: List[Tuple[bytes, bytes]],
        method: Optional[bytes],
        path: Optional[bytes],
        scheme: Optional[bytes],
        host: Optional[bytes],
    ) -> None:
        self.connection = connection
        self.handler: BaseRequestHandler = None  # type: ignore[assignment] # set right after
        self.id = stream_id
        #: The request: every field, pseudo-headers first, as bytes pairs.
        self.headers = headers
        self.method = method
        self.path = path
        self.scheme = scheme
        #: ``:authority``, else the ``host`` field.
        self.host = host
        self.trailers: Optional[List[Tuple[bytes, bytes]]] = None
        self.pushed = False
        self.received = 0
        #: The body for a coroutine on_headers (read_body) or an ordered
        #: coroutine on_data; None: on_data is called as chunks come.
        self.inbox: Optional[Inbox] = None
        #: An ``async def on_data``: one task feeds it the inbox in order.
        self.ordered = False
        #: The client waits for 100 Continue before it sends the body.
        self.expect_continue = False
        self.continue_sent = False
        #: A callback raised: no more callbacks for this request.
        self.failed = False
        #: The response status once its head is sent (or queued).
        self.status: Optional[int] = None
        self.body_bytes = 0
        self.generator: Optional[BodyGenerator] = None
        self.reader: Optional[Any] = None
        #: True: the server closes a file body once it is sent or the stream
        #: closes (set it before ``send_response``).
        self.owns_reader = False
        self.reading = False  # a file read is under way
        self.deferred = False  # the generator said DATA_DEFERRED: until resume()
        self.unsent = 0  # bytes given to write() not yet on their way
        self.drained: Optional[asyncio.Future[None]] = None
        self.task: Optional[asyncio.Task[None]] = None
        self.started = self.progress_at = now
        self.stalled_at = 0.0

    def consumed(self, amount: int) -> None:
        """The handler read (or dropped) ``amount`` body bytes: the client
        may send more."""
        self.connection.consumed(self, amount)

    def want_body(self) -> None:
        """The handler is about to wait for the body: a client that asked
        ``Expect: 100-continue`` gets its 100 now (RFC 9110 section 10.1.1)."""
        if self.expect_continue:
            self.connection.send_continue(self)

    def is_open(self) -> bool:
        """Whether the connection still serves this stream."""
        connection = self.connection
        return not connection._closed and connection.streams.get(self.id) is self
