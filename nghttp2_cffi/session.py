"""The sans-I/O HTTP/2 session: bytes in, events out; calls in, bytes out.

One :class:`Session` wraps one ``nghttp2_session``.  Its callbacks run in C
(csrc/glue.c) and queue compact records, which this module turns into
:mod:`~nghttp2_cffi.events` once per call; bodies given as bytes are read
by nghttp2 straight from memory.  No I/O happens here.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import struct
import warnings
from typing import Any, Iterable, Mapping, Optional, Tuple, Union

from . import events as ev
from ._nghttp2 import ffi, lib
from .config import DEFAULT_CONFIG, SessionConfig
from .enums import ErrorCode, SettingCode
from .errors import (
    CallbackError,
    HeaderListTooLargeError,
    InvalidArgumentError,
    ProtocolError,
    PushDisabledError,
    SessionClosingError,
    StreamClosedError,
    StreamStateError,
    check,
    error_for,
)
from .priority import DEFAULT_PRIORITY, Priority, PriorityInput, as_priority, parse_priority

HeaderInput = Iterable[Tuple[Union[bytes, str], Union[bytes, str]]]
BodyInput = Union[bytes, bytearray, memoryview, str, Any, None]

#: The bits of :meth:`Session.wants`.
WANT_READ: int = lib.N2C_WANT_READ
#: A reader's buffer of at least this many bytes costs less given to
#: receive_data as a view (read in place, DATA copied out) than copied whole
#: (pinning a view for C: ~430 ns; copying 1 KiB: ~350 ns).
IN_PLACE_READ = 16384
WANT_WRITE: int = lib.N2C_WANT_WRITE
#: The SETTINGS a Session announces by default (see SessionConfig.settings).
DEFAULT_SETTINGS: Mapping[int, int] = DEFAULT_CONFIG.settings
# How much a reader body is asked for at a time.
READ_CHUNK = 64 * 1024

_HCAT_REQUEST = lib.NGHTTP2_HCAT_REQUEST
_HCAT_RESPONSE = lib.NGHTTP2_HCAT_RESPONSE
_HCAT_PUSH_RESPONSE = lib.NGHTTP2_HCAT_PUSH_RESPONSE
_EV_HEADERS = lib.N2C_EV_HEADERS
_EV_DATA = lib.N2C_EV_DATA
_EV_RST_STREAM = lib.N2C_EV_RST_STREAM
_EV_STREAM_CLOSED = lib.N2C_EV_STREAM_CLOSED
_EV_SETTINGS = lib.N2C_EV_SETTINGS
_EV_PING = lib.N2C_EV_PING
_EV_GOAWAY = lib.N2C_EV_GOAWAY
_EV_PUSH_PROMISE = lib.N2C_EV_PUSH_PROMISE
_EV_WINDOW_UPDATE = lib.N2C_EV_WINDOW_UPDATE
_EV_WANT_DATA = lib.N2C_EV_WANT_DATA
_EV_GOAWAY_SENT = lib.N2C_EV_GOAWAY_SENT
_EV_PRIORITY = lib.N2C_EV_PRIORITY
_NO_RFC7540_PRIORITIES = SettingCode.NO_RFC7540_PRIORITIES
_BODY_NONE = lib.N2C_BODY_NONE
_BODY_PROVIDER = lib.N2C_BODY_PROVIDER

_ERR_FLOODED = lib.NGHTTP2_ERR_FLOODED
_R_MOVED = lib.N2C_R_MOVED
_R_EVENTS = lib.N2C_R_EVENTS
_NULL = ffi.NULL
_buffer = ffi.buffer
_records = struct.Struct(f"{lib.N2C_EV_WORDS}q").iter_unpack
_recv = lib.n2c_recv
_wants = lib.n2c_wants
_send = lib.n2c_send
_submit_response = lib.n2c_submit_response
_submit_request = lib.n2c_submit_request
_provide = lib.n2c_provide
# Bodies stay in C's hands after the call that gives them (NO_COPY).  CPython
# never moves a bytes object; PyPy's GC may, and a bytes argument is valid
# only during the call: there C gets a buffer pinned by ffi.from_buffer,
# which Python keeps for as long as C may read it (STYLE.md, pitfall 5).
_PYPY = platform.python_implementation() == "PyPy"
_pin = ffi.from_buffer
_release = ffi.release
_settings_entries = struct.Struct(">HI").iter_unpack
_EV_WORDS = lib.N2C_EV_WORDS
_uintptr = ffi.cast

# The commonest events (requests, responses, DATA, stream closures) built in C where
# nghttp2_cffi._events was compiled (CPython); _collect_py is the reference
# and PyPy's path.  NGHTTP2_CFFI_PURE_EVENTS=1 turns the C builder off.
_build: Any = None
if not _PYPY and not os.environ.get("NGHTTP2_CFFI_PURE_EVENTS"):
    try:
        from . import _events
    except ImportError:
        pass
    else:
        _events.configure(
            ev.RequestReceived,
            ev.ResponseReceived,
            ev.DataReceived,
            ev.StreamClosed,
            _EV_WORDS,
            lib.N2C_EV_NONE,
            _EV_HEADERS,
            _EV_DATA,
            _EV_STREAM_CLOSED,
            _HCAT_REQUEST,
        )
        _build = _events.build
#: Whether events are built in C (nghttp2_cffi._events) rather than in Python.
EVENTS_IN_C = _build is not None


def encode_headers(headers: HeaderInput) -> tuple[bytes, int]:
    """A header list as the glue takes it: ``name\\0value\\0...`` and a count.

    ``str`` names are lower-cased and, like ``str`` values, UTF-8 encoded;
    bytes go out exactly as given.
    """
    flat: list[bytes] = []
    append = flat.append
    for name, value in headers:
        append(name if name.__class__ is bytes else _name_bytes(name))
        append(value if value.__class__ is bytes else _value_bytes(value))
    return b"\0".join(flat), len(flat) >> 1


def _name_bytes(name: Union[str, bytes, bytearray, memoryview]) -> bytes:
    if isinstance(name, str):
        return name.lower().encode("utf-8")
    return bytes(name)


def _value_bytes(value: Union[str, bytes, bytearray, memoryview, int]) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, int):
        return str(value).encode("ascii")
    return bytes(value)


def _fields(headers: HeaderInput) -> tuple[bytes, int]:
    """encode_headers for a block the glue parses later (trailers): a NUL
    inside a name or value would fail only then, killing the session."""
    block, n = encode_headers(headers)
    if n and block.count(b"\0") != 2 * n - 1:
        raise InvalidArgumentError(
            lib.NGHTTP2_ERR_INVALID_ARGUMENT, "header names and values must not contain NUL"
        )
    return block, n


def _split_headers(block: bytes) -> ev.Headers:
    it = iter(block.split(b"\0"))  # b"" gives [b""]: no pairs
    return list(zip(it, it))


_RequestReceived = ev.RequestReceived
_ResponseReceived = ev.ResponseReceived
_DataReceived = ev.DataReceived
_StreamClosed = ev.StreamClosed


class _OutBody:
    """A body sent in pieces: what Python keeps alive for C."""

    __slots__ = ("held", "ended", "reader")

    def __init__(self, first: Any, ended: bool, reader: Any = None) -> None:
        # The pieces C may still read (bytes, or pinned buffers on PyPy).
        self.held: list[Any] = [] if first is None else [first]
        self.ended = ended  # end_stream given: no send_data after it
        self.reader = reader


def _as_body(body: BodyInput) -> Any:
    if body is None or body.__class__ is bytes:
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if hasattr(body, "read"):
        return body
    raise TypeError(
        f"body must be bytes, str, a reader with .read(n) or None, not {type(body).__name__}"
    )


class Session:
    """One HTTP/2 connection, client or server side, without I/O.

    Feed what the peer sent to :meth:`receive_data`, which returns events;
    act through the ``send_*`` methods; write :meth:`data_to_send` to the
    peer.

    ``config``: a :class:`~nghttp2_cffi.config.SessionConfig`, every option
    with a safe default: a received header list is bounded (64 KiB, an HPACK
    bomb raises :class:`~nghttp2_cffi.errors.HeaderListTooLargeError` from
    :meth:`receive_data`), and so are frames that cost work and carry none.
    Its ``settings`` go in the first SETTINGS frame.  With
    ``auto_window_update`` (the default) received DATA counts as consumed at
    once; with it off, the peer's window opens only as far as
    :meth:`acknowledge_received_data` says, so a slow reader slows its peer.
    The options used to be keywords of this constructor; they still are, with
    a DeprecationWarning, until 0.2, starting from the same safe defaults.

    Defences of our own, in the C glue (their bounds are :class:`SessionConfig`
    fields): a received header block over ``max_header_list_size`` ends the
    session with ENHANCE_YOUR_CALM (HPACK bombs); the glitch bucket counts
    frames that cost work and carry none (PING, SETTINGS, PRIORITY, empty
    DATA, WINDOW_UPDATEs under 1 KiB, invalid frames, RST_STREAM where
    libnghttp2 has no Rapid Reset limit), streams libnghttp2 resets because of
    the peer (whose request events of the same read are then dropped), and part
    of a token for DATA frames under 256 bytes that do not end their stream;
    empty, it ends the session with ENHANCE_YOUR_CALM.  A server session also
    remembers its peer's latest 2,048 stream ids: DATA or HEADERS on one the
    peer closed is a connection error STREAM_CLOSED, HEADERS on a lower unused
    one PROTOCOL_ERROR.  Both raise :class:`~nghttp2_cffi.errors.FloodedError`
    from :meth:`receive_data`.

    Priorities (RFC 9218): a server that announces
    ``SETTINGS_NO_RFC7540_PRIORITIES = 1`` in its ``settings`` sends the responses
    of the most urgent streams first, as clients ask with ``priority`` header
    fields and PRIORITY_UPDATE frames (see :meth:`get_stream_priority`);
    ``fallback_rfc7540_priorities`` keeps RFC 7540 scheduling for clients
    that do not announce the setting themselves.

    After :meth:`close` every method that would reach nghttp2 raises
    :class:`~nghttp2_cffi.errors.SessionClosingError`.
    """

    def __init__(
        self,
        side: str = "server",
        *,
        config: Optional[SessionConfig] = None,
        **options: Any,
    ) -> None:
        if side not in ("server", "client"):
            raise ValueError("side must be 'server' or 'client'")
        if config is None:
            config = DEFAULT_CONFIG
        if options:
            # The keywords of 0.1 (every SessionConfig field), for one release.
            warnings.warn(
                "Session(side, option=...) is deprecated: pass "
                "config=SessionConfig(option=...) (nghttp2_cffi.config)",
                DeprecationWarning,
                stacklevel=2,
            )
            config = dataclasses.replace(config, **_old_options(options))
        self.side = side
        self.config = config
        self.auto_window_update = config.auto_window_update
        option = _new_option(config, side == "server")
        rv = ffi.new("int *")
        try:
            s = lib.n2c_session_new(side == "server", option, rv)
        finally:
            lib.nghttp2_option_del(option)
        if s == ffi.NULL:
            raise error_for(rv[0])
        self._s = ffi.gc(s, lib.n2c_session_del)
        self._raw = lib.n2c_session_raw(s)
        burst, rate = config.glitch_limit or (0, 0)
        lib.n2c_set_limits(
            s, config.max_header_list_size or 0, burst, rate, not config.window_update_events
        )
        self._ev: Any = None  # views of the C buffers (ffi.buffer)
        self._pl: Any = None
        self._out: Any = None
        self._ev_addr = self._pl_addr = 0  # their addresses, for _build
        self._map_buffers()
        self._events: list[ev.Event] = []
        self._bodies: dict[int, Any] = {}  # stream id -> bytes body or _OutBody
        self._pending_out = b""  # bytes taken from nghttp2 but not yet returned
        self._provided = False  # a body got data during a send: send again
        self._error: Optional[BaseException] = None
        self._trailers: tuple[bytes, int] = (b"", 0)  # from _body_plan to _attach
        # RFC 9218: what we announced, whether RFC 7540 remains for clients
        # that do not announce it, and, where nghttp2 cannot be asked, the
        # priorities its scheduler follows (stream id -> Priority; client
        # signals for the ids in _priority_fixed are ignored).
        self._no_rfc7540_priorities = 0
        self._fallback_rfc7540 = config.fallback_rfc7540_priorities and side == "server"
        self._priorities: dict[int, Priority] = {}
        self._priority_fixed: set[int] = set()
        # stream id -> (priority before its header block, the block's so far)
        self._header_priorities: dict[int, tuple[Priority, Optional[Priority]]] = {}
        self.update_settings(config.initial_settings())

    # ---- lifetime ------------------------------------------------------

    def close(self) -> None:
        """Free the nghttp2 session now (the garbage collector would later)."""
        if self._s is not None:
            ffi.release(self._s)
            self._s = None
            self._raw = ffi.NULL
            self._ev = self._pl = self._out = None  # views of freed memory
            self._bodies.clear()
            # The methods that pass self._s to C unchecked (the hot paths)
            # are shadowed on this instance only: an open session pays nothing.
            for name in _UNCHECKED:
                setattr(self, name, _closed)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def raw(self) -> Any:
        """The ``nghttp2_session *``, for calls through ``lib``."""
        return self._live

    @property
    def _live(self) -> Any:
        # The nghttp2_session *, or a clear error once closed: nghttp2 itself
        # would dereference the NULL pointer left by close().
        if self._s is None:
            _closed()
        return self._raw

    # ---- receiving -----------------------------------------------------

    def receive_data(self, data: Union[bytes, bytearray, memoryview]) -> list[ev.Event]:
        """Process bytes from the peer; return the events they caused.

        A bytearray or memoryview is read in place and not kept (DATA events
        carry copies), so a reader may pass the buffer it reads into.

        Raises :class:`~nghttp2_cffi.errors.ProtocolError` when the peer broke
        the protocol beyond a stream: the session then holds a GOAWAY for
        :meth:`data_to_send` and the events seen so far stay in :meth:`events`.
        """
        pinned = None
        address = 0
        if data.__class__ is bytes:
            r = _recv(self._s, data, len(data))
        else:
            # Read in place (the server's read buffer): DATA events copy
            # their own bytes out of it, nothing else keeps it.
            if data.__class__ is not memoryview:
                data = memoryview(data)
            if data.format != "B":
                data = data.cast("B")
            pinned = _pin(data)
            address = int(_uintptr("uintptr_t", pinned))  # for the C builder
            r = _recv(self._s, pinned, len(data))
        try:
            if r > 0:
                if r & _R_MOVED:
                    self._map_buffers()
                self._collect(r >> 2, data, address)
            elif r < 0:
                self._map_buffers()
                self._collect(self._s.ev_len, data, address)
                self._fail(r)
        finally:
            if pinned is not None:
                # Released now, not by the collector: a ProtocolError's
                # traceback keeps this frame, and a view still exported to
                # cffi, cleared in a cycle, crashes CPython's memoryview.
                _release(pinned)
        out = self._events
        self._events = []
        return out

    def events(self) -> list[ev.Event]:
        """Events not returned yet (those caused by sending, for instance)."""
        out = self._events
        self._events = []
        return out

    def _fail(self, rv: int) -> None:
        exc = error_for(rv)
        limit = self.config.max_header_list_size
        if rv == _ERR_FLOODED and limit and self._s.hdr_size > limit:
            exc = HeaderListTooLargeError(rv, limit)
        if isinstance(exc, ProtocolError):
            lib.nghttp2_session_terminate_session(self._raw, exc.error_code)
        raise exc

    def _map_buffers(self) -> None:
        """(Re)make the views of the C buffers; n2c_recv/n2c_send say when
        one of them moved."""
        s = self._s
        self._ev = _buffer(s.ev, s.ev_cap * 8)
        self._pl = _buffer(s.pl, s.pl_cap)
        self._out = _buffer(s.out, s.out_cap)
        if _build is not None:
            self._ev_addr = int(_uintptr("uintptr_t", s.ev))
            self._pl_addr = int(_uintptr("uintptr_t", s.pl))

    def _collect(self, nwords: int, data: Union[bytes, memoryview, None], address: int = 0) -> None:
        """Turn the event records of the last n2c_recv/n2c_send into events.

        ``data``: the input of n2c_recv, which DATA events may point into;
        ``address``: where a memoryview ``data`` is pinned, for C.
        """
        events = self._events
        if _build is None:
            self._collect_py(0, nwords, data, events)
            return
        # C builds requests, DATA and closures; it stops at any other record,
        # which Python handles before C carries on.  The priorities of the
        # streams closed here are forgotten at the end (a signal for one of
        # them later in the read is forgotten with it).
        first = len(events)
        i, n = 0, nwords // _EV_WORDS
        while i < n:
            i = _build(
                self._ev_addr,
                i,
                n,
                self._pl_addr,
                address or data,
                events,
                self._bodies,
                True,
            )
            if i < n:
                self._collect_py(i * _EV_WORDS, (i + 1) * _EV_WORDS, data, events)
                i += 1
        if self._priorities:
            for event in events[first:]:
                if event.__class__ is _StreamClosed:
                    self._forget_priority(event.stream_id)

    def _collect_py(
        self, start: int, stop: int, data: Union[bytes, memoryview, None], events: list[ev.Event]
    ) -> None:
        """_collect in Python, for the records in words ``start`` to ``stop``."""
        pl = self._pl
        append = events.append
        for kind, sid, a, b, c, d in _records(self._ev[start * 8 : stop * 8]):
            if kind == _EV_HEADERS:
                it_h = iter(pl[c : c + d].split(b"\0"))
                headers = list(zip(it_h, it_h))
                if a == _HCAT_REQUEST:
                    append(_RequestReceived(sid, headers, b != 0))
                elif headers and headers[0][0] == b":status":
                    if headers[0][1][:1] == b"1":
                        append(ev.InformationalResponseReceived(sid, headers))
                    else:
                        append(_ResponseReceived(sid, headers, b != 0))
                elif a == _HCAT_RESPONSE or a == _HCAT_PUSH_RESPONSE:
                    append(_ResponseReceived(sid, headers, b != 0))
                else:
                    append(ev.TrailersReceived(sid, headers))
            elif kind == _EV_DATA:
                if b:
                    chunk = data[c : c + d]  # type: ignore[index]
                    if chunk.__class__ is not bytes:
                        chunk = bytes(chunk)  # out of a caller's buffer
                    append(_DataReceived(sid, chunk, a != 0))
                else:
                    append(_DataReceived(sid, pl[c : c + d], a != 0))
            elif kind == _EV_STREAM_CLOSED:
                if self._bodies:
                    self._bodies.pop(sid, None)
                if self._priorities:
                    self._forget_priority(sid)
                append(_StreamClosed(sid, a))
            elif kind == _EV_WANT_DATA:
                self._want_data(sid, a)
            elif kind == _EV_RST_STREAM:
                append(ev.StreamReset(sid, a))
            elif kind == _EV_SETTINGS:
                if a:
                    append(ev.SettingsAcknowledged())
                else:
                    append(ev.SettingsReceived(dict(_settings_entries(pl[c : c + d]))))
            elif kind == _EV_PING:
                append((ev.PingAcknowledged if a else ev.PingReceived)(pl[c : c + d]))
            elif kind == _EV_WINDOW_UPDATE:
                append(ev.WindowUpdated(sid, a))
            elif kind == _EV_PUSH_PROMISE:
                append(ev.PushPromiseReceived(sid, a, _split_headers(pl[c : c + d])))
            elif kind == _EV_GOAWAY:
                append(ev.GoAwayReceived(a, b, pl[c : c + d]))
            elif kind == _EV_GOAWAY_SENT:
                append(ev.GoAwaySent(a, b))
            elif kind == _EV_PRIORITY:
                self._priority_signal(sid, a, pl[c : c + d])

    def _priority_signal(self, sid: int, from_frame: int, value: bytes) -> None:
        """A client's priority signal: a PRIORITY_UPDATE (an event) or, where
        nghttp2 cannot be asked for a stream's priority, a ``priority``
        request header field; _priorities then follows nghttp2's rules."""
        priority: Optional[Priority]
        if from_frame:
            try:
                priority = parse_priority(value)
            except ValueError:
                priority = None  # nghttp2 keeps the stream's priority
            self._events.append(ev.PriorityUpdated(sid, priority, value))
        if lib.N2C_HAS_EXTPRI_GET or sid in self._priority_fixed:
            return
        if (
            from_frame
            and lib.nghttp2_session_get_stream_local_close(self._raw, sid) < 0
            and sid <= lib.nghttp2_session_get_last_proc_stream_id(self._raw)
        ):
            return  # a closed stream's (an idle one's counts: it may open)
        if not from_frame:
            # The fields of one header block add up, and one bad field voids
            # them all: the stream keeps what it had before the block.
            before, so_far = self._header_priorities.get(
                sid, (self._priorities.get(sid, DEFAULT_PRIORITY), DEFAULT_PRIORITY)
            )
            if so_far is not None:
                try:
                    so_far = parse_priority(value, so_far)
                except ValueError:
                    so_far = None
            self._header_priorities[sid] = (before, so_far)
            priority = before if so_far is None else so_far
        if priority is not None:
            # Every stream id in _header_priorities or _priority_fixed is
            # also here: StreamClosed forgets them when this is not empty.
            self._priorities[sid] = priority

    def _forget_priority(self, sid: int) -> None:
        self._priorities.pop(sid, None)
        self._header_priorities.pop(sid, None)
        self._priority_fixed.discard(sid)

    # ---- sending -------------------------------------------------------

    def data_to_send(self, limit: int = 0) -> bytes:
        """Bytes for the peer: every frame nghttp2 can produce now, or only
        about ``limit`` bytes of them (0: no limit) so that a slow peer stops
        the session from reading bodies ahead.

        An exception raised by a reader body surfaces here, after its stream
        was reset; the bytes produced before it are kept for the next call.
        """
        r = _send(self._s, limit, 0)
        if r & _R_MOVED:
            self._map_buffers()
        if r < 0 or r & _R_EVENTS or self._pending_out:
            return self._send_more(r, limit)
        return self._out[: r >> 2] if r > 3 else b""

    def _send_more(self, r: int, limit: int) -> bytes:
        """data_to_send beyond one plain n2c_send: events to collect (bodies
        asking for more data, which may make more to send), errors, bytes held
        back from an earlier call.  Later n2c_sends append to s->out."""
        s = self._s
        while r >= 0 and r & _R_EVENTS:
            self._collect(s.ev_len, None)
            if self._error is not None:
                exc, self._error = self._error, None
                self._pending_out += self._out[: r >> 2]
                raise exc
            if not self._provided or (limit and r >> 2 >= limit):
                break
            self._provided = False
            r = _send(s, limit, 1)
            if r & _R_MOVED:
                self._map_buffers()
        if r < 0:
            self._map_buffers()
            self._collect(s.ev_len, None)
            self._pending_out += self._out[: s.out_len]
            check(r)
        out = self._out[: r >> 2] if r > 3 else b""
        if self._pending_out:
            out = self._pending_out + out
            self._pending_out = b""
        return out

    @property
    def want_read(self) -> bool:
        return bool(lib.nghttp2_session_want_read(self._live))

    @property
    def want_write(self) -> bool:
        return bool(self._pending_out) or bool(lib.nghttp2_session_want_write(self._live))

    def wants(self) -> int:
        """:attr:`want_read` and :attr:`want_write` in one call, as the bits
        ``WANT_READ | WANT_WRITE`` (0: the session is over, close the
        connection)."""
        wants: int = _wants(self._s)
        return wants | WANT_WRITE if self._pending_out else wants

    def send_request(
        self,
        headers: HeaderInput,
        body: BodyInput = None,
        *,
        end_stream: bool = True,
        trailers: Optional[HeaderInput] = None,
    ) -> int:
        """Open a stream with a request; returns its id (client side).

        ``body``: bytes (or str) sent from memory, a reader with ``read(n)``,
        or None.  ``end_stream=False`` keeps the body open for
        :meth:`send_data`, :meth:`send_trailers` and :meth:`end_stream`.
        """
        block, n = encode_headers(headers)
        if body is None and end_stream and trailers is None:  # the common case
            sid = _submit_request(self._s, block, len(block), n, _BODY_NONE, _NULL, 0, 0)
            if sid < 0:
                check(sid)
            return sid
        body = _as_body(body)
        kind, chunk, eof, state = self._body_plan(body, end_stream, trailers)
        sid = _submit_request(
            self._s,
            block,
            len(block),
            n,
            kind,
            _NULL if chunk is None else chunk,
            0 if chunk is None else len(chunk),
            eof,
        )
        check(sid)
        self._attach(sid, state, trailers)
        return sid

    def send_response(
        self,
        stream_id: int,
        headers: HeaderInput,
        body: BodyInput = None,
        *,
        end_stream: bool = True,
        trailers: Optional[HeaderInput] = None,
    ) -> None:
        """Answer a request (server side); ``body`` as for :meth:`send_request`."""
        block, n = encode_headers(headers)
        if end_stream and trailers is None:  # the common cases: no body, bytes
            if body is None or body == b"":
                rv = _submit_response(
                    self._s, stream_id, block, len(block), n, _BODY_NONE, _NULL, 0, 0
                )
                if rv:
                    check(rv)
                return
            if body.__class__ is bytes:
                c_body = _pin(body) if _PYPY else body
                rv = _submit_response(
                    self._s, stream_id, block, len(block), n, _BODY_PROVIDER, c_body, len(body), 1
                )
                if rv:
                    check(rv)
                self._bodies[stream_id] = c_body  # C reads it until the stream closes
                return
        body = _as_body(body)
        kind, chunk, eof, state = self._body_plan(body, end_stream, trailers)
        check(
            _submit_response(
                self._s,
                stream_id,
                block,
                len(block),
                n,
                kind,
                _NULL if chunk is None else chunk,
                0 if chunk is None else len(chunk),
                eof,
            )
        )
        self._attach(stream_id, state, trailers)

    def _body_plan(
        self, body: Any, end_stream: bool, trailers: Optional[HeaderInput]
    ) -> tuple[int, Any, int, Any]:
        """(glue body kind, first chunk for C (None or non-empty), eof, what
        Python keeps)."""
        if trailers is not None:
            # Checked before the headers are submitted; _attach sets them.
            self._trailers = _fields(trailers)
        if body is None or body == b"":
            if end_stream and trailers is None:
                return _BODY_NONE, None, 0, None
            return _BODY_PROVIDER, None, int(end_stream), _OutBody(None, end_stream)
        if body.__class__ is bytes:
            c_body = _pin(body) if _PYPY else body
            if end_stream:
                return _BODY_PROVIDER, c_body, 1, c_body
            return _BODY_PROVIDER, c_body, 0, _OutBody(c_body, False)
        return _BODY_PROVIDER, None, 0, _OutBody(None, False, reader=body)

    def _attach(self, sid: int, state: Any, trailers: Optional[HeaderInput]) -> None:
        if state is None:
            return
        self._bodies[sid] = state
        if trailers is not None:
            block, n = self._trailers
            check(lib.n2c_set_trailers(self._s, sid, block, len(block), n))

    def send_headers(
        self, stream_id: int, headers: HeaderInput, *, end_stream: bool = False
    ) -> None:
        """A HEADERS frame on an open stream: a 1xx response, for instance."""
        if self.side == "server":
            _check_can_send(self._live, stream_id)
        block, n = encode_headers(headers)
        check(lib.n2c_submit_headers(self._s, stream_id, end_stream, block, len(block), n))

    def send_informational_response(self, stream_id: int, headers: HeaderInput) -> None:
        """A 1xx response (100-continue, 103 Early Hints) before the final one."""
        self.send_headers(stream_id, headers, end_stream=False)

    def send_data(self, stream_id: int, data: BodyInput, *, end_stream: bool = False) -> None:
        """Queue body bytes on a stream opened with ``end_stream=False``.

        The session sends them as flow control allows; nothing stalls at the
        window and nothing is copied in Python.
        """
        out = self._bodies.get(stream_id)
        if out is None or out.__class__ is bytes or out.ended:
            raise _no_body(stream_id)
        chunk: bytes = data if data.__class__ is bytes else _as_body(data)
        if end_stream:
            out.ended = True
        if chunk or end_stream:
            self._feed(stream_id, out, chunk, end_stream)

    def end_stream(self, stream_id: int) -> None:
        """End a stream's body (END_STREAM, or its trailers if any were set)."""
        self.send_data(stream_id, b"", end_stream=True)

    def send_trailers(self, stream_id: int, headers: HeaderInput) -> None:
        """End a stream's body with a trailing header block."""
        out = self._bodies.get(stream_id)
        if out is None or out.__class__ is bytes or out.ended:
            raise _no_body(stream_id)
        block, n = _fields(headers)
        check(lib.n2c_set_trailers(self._s, stream_id, block, len(block), n))
        self.end_stream(stream_id)

    def _feed(self, sid: int, out: _OutBody, chunk: Optional[bytes], eof: bool) -> None:
        """Give C the next piece of a body (or only its end)."""
        if chunk:
            c_chunk = _pin(chunk) if _PYPY else chunk
            held = _provide(self._s, sid, c_chunk, len(chunk), eof)
            out.held.append(c_chunk)
        else:
            held = _provide(self._s, sid, _NULL, 0, eof)
        if held < 0:
            check(held)
        if held < len(out.held):  # C is done with the oldest ones
            del out.held[: len(out.held) - held]
        self._provided = True

    def _want_data(self, sid: int, max_length: int) -> None:
        """C sent every piece it held and the body is not at its end."""
        out = self._bodies.get(sid)
        if out is None or out.__class__ is bytes:
            return
        out.held.clear()
        if out.ended:
            self._feed(sid, out, None, True)
        elif out.reader is not None:
            try:
                chunk = out.reader.read(max(max_length, READ_CHUNK))
            except BaseException as exc:  # noqa: BLE001 - re-raised by data_to_send
                self.reset_stream(sid, ErrorCode.INTERNAL_ERROR)
                self._bodies.pop(sid, None)
                err = CallbackError(lib.NGHTTP2_ERR_CALLBACK_FAILURE)
                err.__cause__ = exc
                self._error = self._error or err
                return
            if chunk:
                self._feed(sid, out, bytes(chunk), False)
            else:
                out.ended = True
                self._feed(sid, out, None, True)
        else:
            self._events.append(ev.DataRequested(sid, max_length))

    def push_promise(self, stream_id: int, headers: HeaderInput) -> int:
        """Promise a pushed request on ``stream_id``; returns the new stream's id.

        Answer it with :meth:`send_response` on that id.  Raises
        :class:`~nghttp2_cffi.errors.PushDisabledError` when the client set
        SETTINGS_ENABLE_PUSH to 0 (nghttp2 would drop the frame silently).
        """
        raw = self._live
        if self.side != "server":
            raise InvalidArgumentError(lib.NGHTTP2_ERR_PROTO, "only a server can push")
        if not lib.nghttp2_session_get_remote_settings(raw, lib.NGHTTP2_SETTINGS_ENABLE_PUSH):
            raise PushDisabledError(lib.NGHTTP2_ERR_PUSH_DISABLED)
        _check_can_send(raw, stream_id)
        block, n = encode_headers(headers)
        return check(lib.n2c_submit_push_promise(self._s, stream_id, block, len(block), n))

    def upgrade(self, settings_payload: bytes, head_request: bool = False) -> int:
        """Server side: take over an HTTP/1.1 ``Upgrade: h2c`` request (RFC 7540
        section 3.2) as stream 1, half-closed (remote); returns 1.

        ``settings_payload``: the client's ``HTTP2-Settings`` header,
        base64url-decoded; ``head_request``: the request was HEAD.  Answer it
        with :meth:`send_response` on stream 1 once the 101 is written.
        """
        if self.side != "server":
            raise InvalidArgumentError(
                lib.NGHTTP2_ERR_INVALID_ARGUMENT, "upgrade() is for the server side"
            )
        payload = bytes(settings_payload)
        rv = lib.nghttp2_session_upgrade2(
            self._live, payload, len(payload), int(bool(head_request)), _NULL
        )
        # The client's SETTINGS count as received: collect that event now.
        self._map_buffers()
        self._collect(self._s.ev_len, None)
        self._s.ev_len = 0
        check(rv)
        return 1

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.CANCEL) -> None:
        check(lib.nghttp2_submit_rst_stream(self._live, 0, stream_id, error_code))

    def update_settings(self, settings: Mapping[int, int]) -> None:
        entries = ffi.new("nghttp2_settings_entry[]", len(settings))
        for i, (key, value) in enumerate(settings.items()):
            entries[i].settings_id = int(key)
            entries[i].value = int(value)
        check(lib.nghttp2_submit_settings(self._live, 0, entries, len(settings)))
        if _NO_RFC7540_PRIORITIES in settings:
            self._no_rfc7540_priorities = int(settings[_NO_RFC7540_PRIORITIES])

    def ping(self, data: bytes = b"\0" * 8) -> None:
        if len(data) != 8:
            raise ValueError("PING data must be 8 bytes")
        check(lib.nghttp2_submit_ping(self._live, 0, data))

    def send_goaway(
        self,
        error_code: int = ErrorCode.NO_ERROR,
        *,
        last_stream_id: Optional[int] = None,
        debug_data: bytes = b"",
    ) -> None:
        """GOAWAY: with the default ``last_stream_id`` (the last stream the
        peer opened), streams in flight finish and no new ones start."""
        if last_stream_id is None:
            last_stream_id = lib.nghttp2_session_get_last_proc_stream_id(self._live)
        check(
            lib.nghttp2_submit_goaway(
                self._live, 0, last_stream_id, error_code, debug_data or ffi.NULL, len(debug_data)
            )
        )

    def send_shutdown_notice(self) -> None:
        """The first GOAWAY of a graceful shutdown (server side): stream id
        2^31-1, so the client stops opening streams; follow it with
        :meth:`send_goaway` once the in-flight ones are known."""
        check(lib.nghttp2_submit_shutdown_notice(self._live))

    def terminate(self, error_code: int = ErrorCode.NO_ERROR) -> None:
        """GOAWAY, then close once it is sent: ``want_read``/``want_write`` fall."""
        check(lib.nghttp2_session_terminate_session(self._live, error_code))

    # ---- flow control and state ------------------------------------------

    def acknowledge_received_data(self, amount: int, stream_id: int) -> None:
        """Count ``amount`` received body bytes of ``stream_id`` as consumed
        (``auto_window_update=False`` only); the peer may then send as much.

        With ``auto_window_update`` the data already counted as consumed when
        it arrived, and this does nothing (code written for h2 calls it for
        every DataReceived)."""
        if amount < 0:
            raise ValueError("amount must not be negative")
        if amount and not self.auto_window_update:
            rv = lib.nghttp2_session_consume(self._live, stream_id, amount)
            if rv < 0 and rv != lib.NGHTTP2_ERR_INVALID_ARGUMENT:
                check(rv)
            if rv == lib.NGHTTP2_ERR_INVALID_ARGUMENT:
                # The stream is gone: the connection window still counts.
                check(lib.nghttp2_session_consume_connection(self._live, amount))

    def acknowledge_connection_data(self, amount: int) -> None:
        """Open only the connection's window by ``amount``: the stream's stays
        until :meth:`acknowledge_stream_data`, so one slow stream cannot
        stall the others."""
        if amount:
            check(lib.nghttp2_session_consume_connection(self._live, amount))

    def acknowledge_stream_data(self, amount: int, stream_id: int) -> None:
        """Open only ``stream_id``'s window by ``amount`` (a closed stream is ignored)."""
        if amount:
            rv = lib.nghttp2_session_consume_stream(self._live, stream_id, amount)
            if rv < 0 and rv != lib.NGHTTP2_ERR_INVALID_ARGUMENT:
                check(rv)

    def set_local_window_size(self, size: int, stream_id: int = 0) -> None:
        """Set our receive window (of the connection by default) to ``size``,
        sending the WINDOW_UPDATE that opens it."""
        check(lib.nghttp2_session_set_local_window_size(self._live, 0, stream_id, size))

    def local_window_size(self, stream_id: int = 0) -> int:
        """How much the peer may still send us (on ``stream_id``, or in all)."""
        if stream_id:
            return _window(
                lib.nghttp2_session_get_stream_local_window_size(self._live, stream_id), stream_id
            )
        return check(lib.nghttp2_session_get_local_window_size(self._live))

    def remote_window_size(self, stream_id: int = 0) -> int:
        """How much we may still send (on ``stream_id``, or in all)."""
        if stream_id:
            return _window(
                lib.nghttp2_session_get_stream_remote_window_size(self._live, stream_id), stream_id
            )
        return check(lib.nghttp2_session_get_remote_window_size(self._live))

    @property
    def remote_settings(self) -> dict[SettingCode, int]:
        return {
            code: lib.nghttp2_session_get_remote_settings(self._live, code) for code in SettingCode
        }

    @property
    def local_settings(self) -> dict[SettingCode, int]:
        return {
            code: lib.nghttp2_session_get_local_settings(self._live, code) for code in SettingCode
        }

    @property
    def next_stream_id(self) -> int:
        return int(lib.nghttp2_session_get_next_stream_id(self._live))

    @property
    def last_processed_stream_id(self) -> int:
        return int(lib.nghttp2_session_get_last_proc_stream_id(self._live))

    @property
    def outbound_queue_size(self) -> int:
        return int(lib.nghttp2_session_get_outbound_queue_size(self._live))

    # ---- priorities (RFC 9218) ------------------------------------------

    @property
    def extensible_priorities(self) -> bool:
        """Whether this session schedules (server) or signals (client) by
        RFC 9218: the server announced ``SETTINGS_NO_RFC7540_PRIORITIES = 1``
        and, with ``fallback_rfc7540_priorities``, the client did too."""
        raw = self._live
        if self.side == "client":
            return lib.nghttp2_session_get_remote_settings(raw, _NO_RFC7540_PRIORITIES) == 1
        if self._no_rfc7540_priorities != 1:
            return False
        return not self._fallback_rfc7540 or (
            lib.nghttp2_session_get_remote_settings(raw, _NO_RFC7540_PRIORITIES) == 1
        )

    def get_stream_priority(self, stream_id: int) -> Priority:
        """The priority the scheduler gives ``stream_id`` (server side): what
        the client asked for in its ``priority`` header field or a later
        PRIORITY_UPDATE, or what :meth:`set_stream_priority` set.  Urgency 3,
        not incremental, when nobody said otherwise or the session does not
        schedule by RFC 9218 (:attr:`extensible_priorities`).

        libnghttp2 1.53+ is asked; with older ones (Debian 12's 1.52) the
        session follows the same signals itself.
        """
        raw = self._live
        if self.side != "server":
            raise InvalidArgumentError(
                lib.NGHTTP2_ERR_INVALID_STATE, "a stream's priority is kept by the server side"
            )
        if lib.nghttp2_session_get_stream_local_close(raw, stream_id) < 0:
            raise StreamClosedError(
                lib.NGHTTP2_ERR_STREAM_CLOSED, f"stream {stream_id} is closed or unknown"
            )
        if not self.extensible_priorities:
            return DEFAULT_PRIORITY
        if lib.N2C_HAS_EXTPRI_GET:
            extpri = ffi.new("nghttp2_extpri *")
            extpri.urgency = DEFAULT_PRIORITY.urgency
            check(lib.n2c_session_get_extpri_stream_priority(raw, extpri, stream_id))
            return Priority(int(extpri.urgency), bool(extpri.inc))
        return self._priorities.get(stream_id, DEFAULT_PRIORITY)

    def set_stream_priority(
        self,
        stream_id: int,
        priority: PriorityInput,
        *,
        ignore_client_signal: bool = False,
    ) -> None:
        """Reschedule ``stream_id`` (server side): ``priority`` is a
        :class:`~nghttp2_cffi.priority.Priority`, ``(urgency, incremental)``
        or an urgency 0 (highest) to 7.  ``ignore_client_signal``: later
        PRIORITY_UPDATEs from the client no longer change it.  Does nothing
        when the session does not schedule by RFC 9218."""
        p = as_priority(priority)
        raw = self._live
        if self.side != "server":
            raise InvalidArgumentError(
                lib.NGHTTP2_ERR_INVALID_STATE,
                "clients reprioritize with send_priority_update()",
            )
        extpri = ffi.new("nghttp2_extpri *")
        extpri.urgency = p.urgency
        extpri.inc = int(p.incremental)
        rv = lib.nghttp2_session_change_extpri_stream_priority(
            raw, stream_id, extpri, int(ignore_client_signal)
        )
        if rv == lib.NGHTTP2_ERR_INVALID_ARGUMENT:
            raise StreamClosedError(
                lib.NGHTTP2_ERR_STREAM_CLOSED, f"stream {stream_id} is closed or unknown"
            )
        check(rv)
        if not lib.N2C_HAS_EXTPRI_GET and self.extensible_priorities:
            self._priorities[stream_id] = p
            if ignore_client_signal:
                self._priority_fixed.add(stream_id)

    def send_priority_update(self, stream_id: int, priority: PriorityInput) -> None:
        """Ask the server to reschedule ``stream_id`` with a PRIORITY_UPDATE
        frame (client side; RFC 9218 section 7.1).  ``priority`` as for
        :meth:`set_stream_priority`.  Nothing is sent to a server that did not
        announce ``SETTINGS_NO_RFC7540_PRIORITIES = 1`` (it would not listen)."""
        p = as_priority(priority)
        raw = self._live
        if self.side != "client":
            raise InvalidArgumentError(
                lib.NGHTTP2_ERR_INVALID_STATE, "servers reprioritize with set_stream_priority()"
            )
        value = p.field_value()
        check(lib.nghttp2_submit_priority_update(raw, 0, stream_id, value, len(value)))

    def has_open_body(self, stream_id: int) -> bool:
        """Whether the stream still has body data queued or to come."""
        return stream_id in self._bodies

    # ---- stream state the server asks about ----------------------------------
    # (kept together, apart from the constructor and its options)

    def local_closed(self, stream_id: int) -> Optional[bool]:
        """Whether our side of ``stream_id`` is closed (END_STREAM sent or
        queued to be sent last); None when the stream is closed or unknown."""
        if self._s is None:
            raise SessionClosingError(lib.NGHTTP2_ERR_INVALID_STATE, "the Session is closed")
        state = lib.nghttp2_session_get_stream_local_close(self._raw, stream_id)
        return None if state < 0 else state == 1


def _closed(*args: Any, **kwargs: Any) -> Any:
    raise SessionClosingError(lib.NGHTTP2_ERR_INVALID_STATE, "the Session is closed")


# Session methods that reach C through self._s without checking it (see
# Session.close); the others check through Session._live.
_UNCHECKED = (
    "receive_data",
    "data_to_send",
    "wants",
    "send_request",
    "send_response",
    "send_headers",
    "send_informational_response",
    "send_data",
    "end_stream",
    "send_trailers",
)


def _window(size: int, stream_id: int) -> int:
    # nghttp2 answers -1, not an error code, for a stream it does not know.
    if size < 0:
        raise StreamClosedError(
            lib.NGHTTP2_ERR_STREAM_CLOSED, f"stream {stream_id} is closed or unknown"
        )
    return size


def _check_can_send(raw: Any, stream_id: int) -> None:
    """Raise when our side of the stream is closed or the stream unknown:
    nghttp2 would accept the frame and drop it when sending."""
    state = lib.nghttp2_session_get_stream_local_close(raw, stream_id)
    if state < 0:
        raise StreamClosedError(
            lib.NGHTTP2_ERR_STREAM_CLOSED, f"stream {stream_id} is closed or unknown"
        )
    if state:
        raise StreamClosedError(
            lib.NGHTTP2_ERR_STREAM_SHUT_WR, f"stream {stream_id} is closed for sending"
        )


def _no_body(stream_id: int) -> Exception:
    return StreamStateError(
        lib.NGHTTP2_ERR_INVALID_STREAM_STATE,
        f"stream {stream_id} has no open body to send on "
        "(send its headers with end_stream=False first)",
    )


def _new_option(config: SessionConfig, server: bool) -> Any:
    """The ``nghttp2_option`` for ``config`` (the caller deletes it)."""
    pp = ffi.new("nghttp2_option **")
    check(lib.nghttp2_option_new(pp))
    o = pp[0]
    try:
        if not config.auto_window_update:
            lib.nghttp2_option_set_no_auto_window_update(o, 1)
        if not config.http_messaging:
            lib.nghttp2_option_set_no_http_messaging(o, 1)
        if config.peer_max_concurrent_streams is not None:
            lib.nghttp2_option_set_peer_max_concurrent_streams(
                o, config.peer_max_concurrent_streams
            )
        if config.max_send_header_block_length is not None:
            lib.nghttp2_option_set_max_send_header_block_length(
                o, config.max_send_header_block_length
            )
        if config.max_deflate_dynamic_table_size is not None:
            lib.nghttp2_option_set_max_deflate_dynamic_table_size(
                o, config.max_deflate_dynamic_table_size
            )
        if server:
            # Without it nghttp2 drops PRIORITY_UPDATE frames unread.
            lib.nghttp2_option_set_builtin_recv_extension_type(o, lib.NGHTTP2_PRIORITY_UPDATE)
            if config.fallback_rfc7540_priorities and (
                lib.n2c_option_set_server_fallback_rfc7540_priorities(o, 1) != 0
            ):
                raise _unsupported("fallback_rfc7540_priorities")
        optional = (
            ("max_continuations", config.max_continuations, lib.n2c_option_set_max_continuations),
            ("max_settings", config.max_settings, lib.n2c_option_set_max_settings),
            ("max_outbound_ack", config.max_outbound_ack, lib.n2c_option_set_max_outbound_ack),
        )
        for name, value, setter in optional:
            if value is not None and setter(o, value) != 0:
                raise _unsupported(name)
        if config.stream_reset_rate is not None:
            burst, rate = config.stream_reset_rate
            if lib.n2c_option_set_stream_reset_rate_limit(o, burst, rate) != 0:
                raise _unsupported("stream_reset_rate")
    except BaseException:
        lib.nghttp2_option_del(o)
        raise
    return o


_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(SessionConfig))


def _old_options(options: dict[str, Any]) -> dict[str, Any]:
    """``Session(side, **options)`` as 0.1 took them, as SessionConfig fields."""
    unknown = sorted(options.keys() - _CONFIG_FIELDS)
    if unknown:
        raise TypeError(f"Session() got unexpected keyword arguments: {', '.join(unknown)}")
    if options.get("settings", 0) is None:  # 0.1: None meant the default SETTINGS
        options = {k: v for k, v in options.items() if k != "settings"}
    return options


def _unsupported(name: str) -> NotImplementedError:
    version = ffi.string(lib.nghttp2_version(0).version_str).decode()
    return NotImplementedError(f"{name} needs a newer libnghttp2 than the linked {version}")
