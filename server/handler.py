"""BaseRequestHandler: one instance per stream, the API of nghttp2's removed
Python binding.

Subclass it and override the ``on_*`` callbacks; answer with
:meth:`BaseRequestHandler.send_response` and push with
:meth:`BaseRequestHandler.push`.
"""

from __future__ import annotations

import io
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from nghttp2_cffi import Priority
from nghttp2_cffi.priority import as_priority

from .errors import InvalidResponse, PushDisabled, PushError, ResponseAlreadySent
from .stream import Inbox as Inbox  # re-exported: it lived here
from .stream import Stream

if TYPE_CHECKING:
    from .connection import Connection

#: Flags a body generator returns with its chunk.
DATA_OK = 0
DATA_EOF = 1
DATA_DEFERRED = 2

HeaderList = Sequence[Tuple[Union[str, bytes], Union[str, bytes]]]
#: Header fields as sent: lower-case bytes names, bytes values.
Fields = List[Tuple[bytes, bytes]]
#: ``callable(size) -> (bytes or None, DATA_OK | DATA_EOF | DATA_DEFERRED)``
BodyGenerator = Callable[[int], Tuple[Optional[bytes], int]]
Body = Union[None, str, bytes, io.IOBase, BodyGenerator]

# RFC 9113 section 8.2.2: never sent over HTTP/2.
_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


_STATUS_FIELDS = {code: (b":status", str(code).encode("ascii")) for code in range(100, 1000)}
# Field names already checked, as sent; a server uses few distinct ones.
_NAMES: Dict[Union[str, bytes], bytes] = {}
_NAMES_MAX = 1024


def _field_name(name: Union[str, bytes]) -> bytes:
    name_b = name.lower().encode("utf-8") if isinstance(name, str) else bytes(name).lower()
    if name_b[:1] == b":":
        raise InvalidResponse(
            f"pseudo-header {name_b.decode('latin-1')!r} cannot be set in headers"
        )
    if name_b in _CONNECTION_SPECIFIC:
        raise InvalidResponse(
            f"{name_b.decode('latin-1')!r} is connection-specific and not allowed in HTTP/2"
        )
    if len(_NAMES) < _NAMES_MAX:
        _NAMES[name] = name_b
    return name_b


def encode_response_headers(status: int, headers: Optional[HeaderList]) -> Fields:
    """``:status`` first, then the caller's fields as lower-case bytes."""
    status_field = _STATUS_FIELDS.get(status) if status.__class__ is int else None
    if status_field is None:
        raise InvalidResponse(f"status must be an int from 100 to 999, not {status!r}")
    out: Fields = [status_field]
    if headers:
        names = _NAMES
        for name, value in headers:
            name_b = names.get(name) or _field_name(name)
            out.append((name_b, value.encode("utf-8") if isinstance(value, str) else value))
    return out


def _check_body(body: Any) -> None:
    """Raise InvalidResponse unless ``body`` is a kind send_response takes."""
    if (
        body is None
        or callable(body)
        or isinstance(body, (bytes, str, bytearray, memoryview, io.IOBase))
    ):
        return
    raise InvalidResponse(
        "body must be None, str, bytes, an io.IOBase or a generator "
        f"callable(size) -> (data, flag), not {type(body).__name__}"
    )


class _TaskView:
    """``handler._task``, read-only, for code written when the server kept
    the task on the handler.  A non-data descriptor: a subclass that sets
    ``self._task`` for its own use simply shadows it."""

    def __get__(self, handler: Any, owner: Any = None) -> Any:
        return None if handler is None else handler.exchange.task


class BaseRequestHandler:
    """Handles one HTTP/2 stream; the server makes one per request.

    Callbacks, in order: :meth:`on_headers` (request headers arrived),
    :meth:`on_data` for each body chunk, :meth:`on_request_done` (request
    complete), :meth:`on_close` (stream closed).  The request is in
    ``method``, ``path``, ``scheme``, ``host`` (``:authority``, else
    ``host``) as bytes, and ``headers``: every field, pseudo-headers
    included, as ``(name, value)`` bytes pairs (cookies joined into one).
    """

    #: push() where no push can go (client disabled push, HTTP/1.1) raises
    #: PushDisabled; False: it returns None (LegacyRequestHandler).
    strict_push = True
    #: The client reset the stream or left: cancel the handler's task.
    cancel_on_close = True

    def __init__(self, http2: Connection, stream_id: int) -> None:
        #: The server's record of this request and its response (a
        #: :class:`~server.stream.Stream`); everything else the server keeps
        #: lives there, so a subclass may use any other attribute name.
        self.exchange: Stream = http2.streams[stream_id]
        self.remote_address = http2.client_address

    _task = _TaskView()

    @property
    def http2(self) -> Connection:
        """The connection (HTTP/2 or HTTP/1.1: see ``http_version``); the
        name is the removed binding's."""
        return self.exchange.connection

    @property
    def stream_id(self) -> int:
        """The stream's id (HTTP/1.1: 1, 3, 5... in request order)."""
        return self.exchange.id

    # ---- what the request says (kept on the stream) -----------------------

    @property
    def method(self) -> Optional[bytes]:
        """``:method``."""
        return self.exchange.method

    @method.setter
    def method(self, value: Optional[bytes]) -> None:
        self.exchange.method = value

    @property
    def path(self) -> Optional[bytes]:
        """``:path``."""
        return self.exchange.path

    @path.setter
    def path(self, value: Optional[bytes]) -> None:
        self.exchange.path = value

    @property
    def scheme(self) -> Optional[bytes]:
        """``:scheme``."""
        return self.exchange.scheme

    @scheme.setter
    def scheme(self, value: Optional[bytes]) -> None:
        self.exchange.scheme = value

    @property
    def host(self) -> Optional[bytes]:
        """``:authority``, else the ``host`` field."""
        return self.exchange.host

    @host.setter
    def host(self, value: Optional[bytes]) -> None:
        self.exchange.host = value

    @property
    def headers(self) -> List[Tuple[bytes, bytes]]:
        """Every request field, pseudo-headers first, as bytes pairs."""
        return self.exchange.headers

    @headers.setter
    def headers(self, value: List[Tuple[bytes, bytes]]) -> None:
        self.exchange.headers = value

    @property
    def trailers(self) -> Optional[List[Tuple[bytes, bytes]]]:
        """The request's trailer fields, once :meth:`on_request_done` runs."""
        return self.exchange.trailers

    @property
    def client_address(self) -> Any:
        """``(host, port)`` of the client (behind a trusted proxy, with
        ``proxy_headers``: the one it names, port 0 if it names none)."""
        proxy = self.http2.server.proxy_headers
        if proxy is not None:
            return proxy.resolve(self.remote_address, "http", self.headers)[0]
        return self.remote_address

    @property
    def client_certificate(self) -> Optional[Dict[str, Any]]:
        """The client's TLS certificate (``SSLSocket.getpeercert()``), if any."""
        return self.http2.client_certificate

    # ---- where the response is -------------------------------------------

    @property
    def status(self) -> Optional[int]:
        """The response status, once :meth:`send_response` was called."""
        return self.exchange.status

    @property
    def pushed(self) -> bool:
        """True for the handler of a pushed response."""
        return self.exchange.pushed

    # ---- callbacks to override ------------------------------------------

    def on_headers(self) -> None:
        """The request's header block arrived."""

    def on_data(self, data: bytes) -> None:
        """A chunk of the request body arrived."""

    def on_request_done(self) -> None:
        """The whole request arrived."""

    def on_close(self, error_code: int) -> None:
        """The stream closed (``error_code`` 0: cleanly)."""

    # ---- answering ------------------------------------------------------

    def send_response(
        self, status: int = 200, headers: Optional[HeaderList] = None, body: Body = None
    ) -> None:
        """Answer the request.

        ``body``: None, str (UTF-8), bytes, a file-like ``io.IOBase`` (read in
        chunks off the event loop), or a generator ``callable(size) ->
        (bytes or None, flag)`` with flag ``DATA_OK``, ``DATA_EOF`` or
        ``DATA_DEFERRED`` (then call :meth:`resume` when data is ready).
        The server closes a file body once sent (or when the stream ends
        first) if ``self.exchange.owns_reader`` was set True before.
        """
        stream = self.exchange
        if stream.status is not None:
            raise ResponseAlreadySent(f"stream {stream.id} has already sent its response")
        stream.connection.start_response(
            stream, status, encode_response_headers(status, headers), body
        )

    def push(
        self,
        path: str,
        method: str = "GET",
        request_headers: Optional[HeaderList] = None,
        status: int = 200,
        headers: Optional[HeaderList] = None,
        body: Body = None,
    ) -> Optional[BaseRequestHandler]:
        """Push a response for ``method path`` before answering this request.

        ``:scheme`` and ``:authority`` come from this request.  Returns the
        pushed stream's handler.  Raises :class:`PushDisabled` (a
        :class:`PushError`) when the push cannot go — the client disabled
        push, or the connection is HTTP/1.1 — unless :attr:`strict_push` is
        False, when it returns None as the removed binding did;
        :class:`PushError` when this is itself a pushed stream, and
        :class:`ResponseAlreadySent` after :meth:`send_response`.
        """
        if self.pushed:
            raise PushError("a pushed stream cannot push")
        if self.status is not None:
            raise ResponseAlreadySent("push() must come before send_response()")
        if not path or not method:
            raise PushError("push() needs a path and a method")
        # Validate before promising: a promise without its response hangs the client.
        fields = encode_response_headers(status, headers)
        _check_body(body)
        method_b = method.encode("utf-8") if isinstance(method, str) else bytes(method)
        path_b = path.encode("utf-8") if isinstance(path, str) else bytes(path)
        request: Fields = [
            (b":method", method_b),
            (b":scheme", self.scheme or b"http"),
            (b":authority", self.host or b""),
            (b":path", path_b),
        ]
        for name, value in request_headers or ():
            name_b = name.lower().encode("utf-8") if isinstance(name, str) else bytes(name)
            if name_b[:1] == b":":
                raise InvalidResponse("pseudo-headers of a push come from its arguments")
            request.append((name_b, value.encode("utf-8") if isinstance(value, str) else value))
        try:
            promised = self.http2.push_promise(self.exchange, request)
        except PushDisabled:
            if self.strict_push:
                raise
            return None
        self.http2.start_response(promised, status, fields, body)
        return promised.handler

    def resume(self) -> None:
        """Ask the body generator again after it returned ``DATA_DEFERRED``."""
        self.exchange.connection.resume_body(self.exchange)

    # ---- beyond the removed binding: coroutines and streaming --------------
    #
    # Any callback may be ``async def``: it then runs as a task of its own,
    # except on_data: an ``async def on_data`` gets the chunks in order, one
    # at a time (one task feeds them), the client's window opening as each
    # call returns, and on_request_done follows the last of them.
    # A handler whose on_headers is a coroutine reads its request body with
    # read_body() or iter_body(), and the client's window opens only as fast
    # as it reads; what is still unread when on_headers returns is dropped
    # (its window opened: the upload finishes).  If the client resets the
    # stream or goes away, the task is cancelled and on_close() runs (unless
    # the class sets cancel_on_close = False).

    async def read_body(self) -> bytes:
        """The whole request body (an ``async def on_headers`` handler)."""
        return b"".join([chunk async for chunk in self.iter_body()])

    async def iter_body(self) -> AsyncIterator[bytes]:
        """The request body chunk by chunk, as the client sends it."""
        stream = self.exchange
        inbox = stream.inbox
        if inbox is None or stream.ordered:
            raise RuntimeError(
                "iter_body()/read_body() need an 'async def on_headers' handler; "
                "other handlers get the body through on_data()"
            )
        while True:
            while inbox.chunks:
                chunk = inbox.chunks.popleft()
                stream.consumed(len(chunk))
                yield chunk
            if inbox.done:
                if inbox.error is not None:
                    raise inbox.error
                return
            stream.want_body()
            await inbox.wait()

    def send_informational(self, status: int, headers: Optional[HeaderList] = None) -> None:
        """A 1xx response before the final one: 100 Continue, 103 Early Hints."""
        if self.status is not None:
            raise ResponseAlreadySent("informational responses come before send_response()")
        if not 100 <= status <= 199 or status == 101:
            raise InvalidResponse(f"an informational status is 1xx (not 101), not {status}")
        self.http2.send_informational(self.exchange, encode_response_headers(status, headers))

    def begin_response(self, status: int = 200, headers: Optional[HeaderList] = None) -> None:
        """Send the response headers now; the body follows with :meth:`write`
        and ends with :meth:`end_response`."""
        if self.status is not None:
            raise ResponseAlreadySent(f"stream {self.stream_id} has already sent its response")
        self.http2.begin_response(self.exchange, status, encode_response_headers(status, headers))

    async def write(self, data: Union[bytes, str]) -> None:
        """Send body data after :meth:`begin_response`; waits while the client
        is behind by more than the stream's high-water mark."""
        await self.http2.write(
            self.exchange, data.encode("utf-8") if isinstance(data, str) else data
        )

    # ---- priorities (RFC 9218) ----------------------------------------------

    @property
    def priority(self) -> Priority:
        """This response's priority: ``Priority(urgency, incremental)``,
        urgency 0 (sent first) to 7, as the client asked (``priority`` header
        field, PRIORITY_UPDATE frames) or :meth:`set_priority` set.
        ``Priority(3, False)`` when the connection does not schedule by RFC
        9218 (HTTP/1.1, a client that did not announce it)."""
        return self.http2.stream_priority(self.exchange)

    def set_priority(
        self, urgency: int, incremental: bool = False, *, ignore_client_signal: bool = False
    ) -> None:
        """Reschedule this response: ``urgency`` 0 (sent first) to 7;
        ``ignore_client_signal``: the client's later PRIORITY_UPDATEs no
        longer change it."""
        self.http2.set_stream_priority(
            self.exchange, as_priority((urgency, incremental)), ignore_client_signal
        )

    def end_response(self, trailers: Optional[HeaderList] = None) -> None:
        """End the body begun with :meth:`begin_response`, with trailers if given."""
        self.http2.end_response(self.exchange, trailers)


class LegacyRequestHandler(BaseRequestHandler):
    """BaseRequestHandler as ``import nghttp2`` gives it to old programs.

    The one difference: like the removed binding, :meth:`push` to a client
    that cannot take pushes (curl, browsers, HTTP/1.1) quietly returns None
    instead of raising, so a program that pushes still answers them.
    """

    strict_push = False
