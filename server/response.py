"""The response API, written once for HTTP/2 and HTTP/1.1.

:class:`Responder` turns what handlers ask for (``start_response``,
``begin_response``, ``write``, ``end_response``, ``send_informational``,
``resume_body``) into calls of the small interface each protocol
implements: ``send_head``, ``send_data``, ``send_trailers``,
``send_interim``, ``reset`` and ``consumed`` (and ``flush``).  It also pulls
streamed bodies (generators; files read off the event loop), sends 100
Continue when the handler first wants the body, answers 500 (or resets)
when a handler or a body fails, and gives up responses that do not come
(``response_timeout``: 503, a deferred body not resumed, a client that
keeps its window shut).
"""

from __future__ import annotations

import abc
import asyncio
import io
import logging
import os
import stat
from typing import TYPE_CHECKING, Any, Dict, Optional

from nghttp2_cffi import ErrorCode

from .errors import ClientDisconnected, InvalidResponse
from .handler import DATA_DEFERRED, DATA_EOF
from .stream import Stream

if TYPE_CHECKING:
    from .handler import Fields, HeaderList

log = logging.getLogger("nghttp2.server")

# Reads of file bodies, off the event loop.
FILE_CHUNK = 64 * 1024
# handler.write() waits while more than this is queued for its stream.
STREAM_HIGH_WATER = 256 * 1024
#: Bytes asked of a body generator when the protocol does not say (an
#: HTTP/2 DATA frame's worth).
GENERATOR_CHUNK = 16384

_INTERNAL_ERROR = int(ErrorCode.INTERNAL_ERROR)
_ERROR_BODY = b"Internal Server Error\n"
_TIMEOUT_BODY = b"Service Unavailable: the handler did not answer in time\n"
_CANCEL = int(ErrorCode.CANCEL)
_CONTINUE: Fields = [(b":status", b"100")]


class Responder(abc.ABC):
    """The response side of a connection; see the module docstring."""

    streams: Dict[int, Stream]
    client_address: Any
    _loop: asyncio.AbstractEventLoop
    _busy: bool
    _closed: bool

    # ---- what each protocol provides ---------------------------------------

    @abc.abstractmethod
    def flush(self) -> None:
        """Write what is ready, as far as the transport takes it."""

    @abc.abstractmethod
    def send_head(
        self, stream: Stream, status: int, fields: Fields, body: Optional[bytes], streamed: bool
    ) -> bool:
        """Send the response head; ``body``: the whole body, or None with
        ``streamed`` (then :meth:`send_data` follows) or without (no body).
        Returns whether body data may follow (False: HEAD, 204, 304, or the
        body went with the head)."""

    @abc.abstractmethod
    def send_data(self, stream: Stream, data: bytes, end: bool) -> None:
        """Send body bytes; ``end``: the last of them."""

    @abc.abstractmethod
    def send_trailers(self, stream: Stream, trailers: HeaderList) -> None:
        """End the body with trailer fields."""

    @abc.abstractmethod
    def send_interim(self, stream: Stream, fields: Fields) -> None:
        """Send a 1xx response (``fields[0]`` is its ``:status``)."""

    @abc.abstractmethod
    def reset(self, stream: Stream, error_code: int) -> None:
        """Give up the stream's response, half sent or not."""

    @abc.abstractmethod
    def consumed(self, stream: Stream, amount: int) -> None:
        """A handler read (or dropped) ``amount`` body bytes: let the client
        send more."""

    def _open(self, stream: Stream) -> None:
        """Raise ClientDisconnected unless the stream can still be answered."""
        if self._closed or self.streams.get(stream.id) is not stream:
            raise ClientDisconnected(f"stream {stream.id} is closed: the client reset it or left")

    def _fail(self, stream: Stream) -> None:
        """A callback or a body failed: answer 500, or reset past the head.
        No more body callbacks for this request."""
        if self._closed or self.streams.get(stream.id) is not stream:
            return
        stream.failed = True
        if stream.status is None:
            self._drop_body_source(stream)
            try:
                self._answer_plain(stream, 500, _ERROR_BODY)
                return
            except Exception:  # the stream is past answering
                log.debug("cannot send 500 on stream %d", stream.id, exc_info=True)
        self._drop_body_source(stream)
        try:
            self.reset(stream, _INTERNAL_ERROR)
        except Exception:  # already closed
            log.debug("cannot reset stream %d", stream.id, exc_info=True)
        if not self._busy:
            self.flush()

    def _answer_plain(self, stream: Stream, status: int, body: bytes) -> None:
        """A canned text/plain answer of the server's own (413, 500, 503)."""
        self.start_response(
            stream,
            status,
            [(b":status", b"%d" % status), (b"content-type", b"text/plain")],
            body,
        )

    # ---- responses (called by handlers) ------------------------------------

    def start_response(self, stream: Stream, status: int, fields: Fields, body: Any) -> None:
        """The response head and its whole body (bytes, a file, a generator)."""
        if self._closed or self.streams.get(stream.id) is not stream:
            self._open(stream)  # raises
        if body is not None and body.__class__ is not bytes:
            body = _response_body(body)  # bytes, an io.IOBase or a generator
        if body is None or body.__class__ is bytes:
            self.send_head(stream, status, fields, body, False)
            stream.status = status
            if body and stream.method != b"HEAD":
                stream.body_bytes = len(body)
        else:
            follows = self.send_head(stream, status, fields, None, True)
            stream.status = status
            if follows:
                if isinstance(body, io.IOBase):
                    stream.reader = body
                else:
                    stream.generator = body
            else:  # HEAD, 204, 304
                if isinstance(body, io.IOBase) and stream.owns_reader:
                    body.close()
                self.send_data(stream, b"", True)
        if not self._busy:
            self.flush()

    def begin_response(self, stream: Stream, status: int, fields: Fields) -> None:
        """The response head; the body follows with :meth:`write`."""
        self._open(stream)
        self.send_head(stream, status, fields, None, True)
        stream.status = status
        if not self._busy:
            self.flush()

    async def write(self, stream: Stream, data: bytes) -> None:
        """Body data after :meth:`begin_response`; waits while more than
        STREAM_HIGH_WATER of the stream's is queued."""
        self._open(stream)
        if stream.status is None:
            raise InvalidResponse("write() comes after begin_response()")
        if data:
            self.send_data(stream, data, False)
            stream.body_bytes += len(data)
            stream.unsent += len(data)
            if not self._busy:
                self.flush()
        while stream.unsent > STREAM_HIGH_WATER and stream.is_open():
            if stream.drained is None:
                stream.drained = self._loop.create_future()
            await stream.drained

    def _sent(self, stream: Stream) -> None:
        """What write() queued is on its way: writers blocked on it go on."""
        stream.unsent = 0
        drained = stream.drained
        if drained is not None:
            stream.drained = None
            if not drained.done():
                drained.set_result(None)

    def end_response(self, stream: Stream, trailers: Optional[HeaderList]) -> None:
        """End the body begun with :meth:`begin_response`."""
        self._open(stream)
        if stream.status is None:
            raise InvalidResponse("end_response() comes after begin_response()")
        if trailers:
            self.send_trailers(stream, trailers)
        else:
            self.send_data(stream, b"", True)
        if not self._busy:
            self.flush()

    def send_informational(self, stream: Stream, fields: Fields) -> None:
        """A 1xx response before the final one."""
        self._open(stream)
        if fields[0][1] == b"100":
            if stream.continue_sent:
                return
            stream.continue_sent = True
            stream.expect_continue = False
        self.send_interim(stream, fields)
        if not self._busy:
            self.flush()

    def send_continue(self, stream: Stream) -> None:
        """100 Continue, to a client that asked for it, before the response."""
        stream.expect_continue = False
        if stream.status is None and not stream.continue_sent and stream.is_open():
            self.send_informational(stream, _CONTINUE)

    def resume_body(self, stream: Stream) -> None:
        """A deferred body generator has data again."""
        if stream.deferred and stream.is_open():
            stream.deferred = False
            self._pull_body(stream, GENERATOR_CHUNK)
            if not self._busy:
                self.flush()

    # ---- responses that do not come -----------------------------------------

    def _expire_streams(self, deadline: float) -> None:
        """503 for streams that have not answered since ``deadline``; a
        deferred body not resumed since then is given up (``_fail``); a
        response whose client has kept its window shut since then is
        reset (slow read, CVE-2019-9517)."""
        streams = self.streams
        for stream in list(streams.values()):
            if stream.progress_at > deadline or streams.get(stream.id) is not stream:
                continue
            if stream.status is None and not stream.pushed:
                log.warning(
                    "%s: stream %d: no response in time, answering 503",
                    peer(self.client_address),
                    stream.id,
                )
                self._answer_plain(stream, 503, _TIMEOUT_BODY)
            elif stream.deferred:
                log.warning(
                    "%s: stream %d: deferred body not resumed in time, giving up",
                    peer(self.client_address),
                    stream.id,
                )
                self._drop_body_source(stream)
                self._fail(stream)
            elif self._window_shut(stream):
                if not stream.stalled_at:
                    stream.stalled_at = self._loop.time()
                elif stream.stalled_at <= deadline:
                    log.warning(
                        "%s: stream %d: the client kept its window shut, resetting",
                        peer(self.client_address),
                        stream.id,
                    )
                    self.reset(stream, _CANCEL)
            elif stream.stalled_at:
                stream.stalled_at = 0.0

    def _window_shut(self, stream: Stream) -> bool:
        """Whether the response waits for the client to open its
        flow-control window (HTTP/2 only)."""
        return False

    # ---- streamed bodies ---------------------------------------------------

    def _pull_body(self, stream: Stream, size: int) -> bool:
        """More of a generator's or a file's body; True when a generator
        gave something (data, its end, or a failure) to write now."""
        generator = stream.generator
        if generator is not None:
            if stream.deferred:
                return False
            try:
                data, flag = generator(size)
            except Exception:
                log.exception("body generator of stream %d failed", stream.id)
                self._fail(stream)
                return True
            if data:
                stream.body_bytes += len(data)
            if flag == DATA_EOF:
                stream.generator = None
                self.send_data(stream, data or b"", True)
            elif data:
                if flag == DATA_DEFERRED:
                    self._defer(stream)
                self.send_data(stream, data, False)
            elif flag == DATA_DEFERRED:
                self._defer(stream)
                return False
            else:
                # DATA_OK with nothing: ask again on the next loop iteration.
                self._loop.call_soon(self._repull, stream, size)
                return False
            return True
        reader = stream.reader
        if reader is not None and not stream.reading:
            stream.reading = True
            future = self._loop.run_in_executor(None, reader.read, FILE_CHUNK)
            future.add_done_callback(lambda f: self._file_read(stream, f))
        return False

    def _defer(self, stream: Stream) -> None:
        stream.deferred = True  # until resume()
        stream.progress_at = self._loop.time()

    def _repull(self, stream: Stream, size: int) -> None:
        if stream.is_open():
            self._pull_body(stream, size)
            self.flush()

    def _file_read(self, stream: Stream, future: asyncio.Future[bytes]) -> None:
        stream.reading = False
        reader = stream.reader
        if reader is None or not stream.is_open():
            # The stream is gone; closing its file may have failed this read.
            if not future.cancelled():
                future.exception()  # retrieved: no "exception never retrieved" log
            return
        exc = future.exception()
        if exc is not None:
            log.error("reading the body of stream %d failed: %r", stream.id, exc)
            self._fail(stream)
        else:
            data = future.result()
            # At the end of a regular file the body ends with its last chunk,
            # not one read later (HTTP/2 clients that count content-length,
            # curl for one, would reset the stream meanwhile).
            eof = not data or _at_end_of_file(reader)
            if data:
                stream.body_bytes += len(data)
            if eof:
                stream.reader = None
                if stream.owns_reader:
                    reader.close()  # no read is in flight now
            self.send_data(stream, data or b"", eof)
        self.flush()

    def _drop_body_source(self, stream: Stream) -> None:
        """Forget the generator or file the body came from (closing a file
        the server owns)."""
        reader = stream.reader
        stream.generator = stream.reader = None
        stream.deferred = False
        if reader is not None and stream.owns_reader:
            reader.close()


def _response_body(body: Any) -> Any:
    """A response body as the protocols send it: bytes (or None) when known
    now, else the ``io.IOBase`` or generator to pull it from."""
    if body is None or body.__class__ is bytes:
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, io.BytesIO):
        return body.read()
    if isinstance(body, io.IOBase) or callable(body):
        return body
    raise InvalidResponse(
        "body must be None, str, bytes, an io.IOBase or a generator "
        f"callable(size) -> (data, flag), not {type(body).__name__}"
    )


def _at_end_of_file(reader: Any) -> bool:
    """Whether ``reader``, an ``open(path, "rb")`` of a regular file, has no more bytes."""
    if not isinstance(reader, io.BufferedReader) or not isinstance(reader.raw, io.FileIO):
        return False
    try:
        info = os.fstat(reader.fileno())
        return stat.S_ISREG(info.st_mode) and reader.tell() >= info.st_size
    except (OSError, ValueError):
        return False


def peer(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)
