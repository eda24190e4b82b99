"""Request validation (issue 12 section 4): the pure checks of
``server/validation.py`` in memory, then what a client sees over loopback
from a handler server and an ASGI server alike (raw request bytes for
HTTP/1.1, the frame-level ``h2`` client for HTTP/2).

For every refused request: the exact status, the connection closed, the
request (and anything pipelined after it) never served.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple

import pytest

from nghttp2.server import BaseRequestHandler
from nghttp2.server.errors import ClientDisconnected
from nghttp2.server.limits import Limits
from nghttp2.server.validation import (
    check_http2_request,
    check_http11_head,
    check_trailer_field,
)

TIMEOUT = 10.0
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

# ---------------------------------------------------------------------------
# The checks, in memory
# ---------------------------------------------------------------------------

TE = [(b"host", b"a"), (b"transfer-encoding", b"chunked")]


@pytest.mark.parametrize(
    ("method", "target", "version", "host", "te", "expected"),
    [
        (b"GET", b"/", "1.1", b"example.com:8080", None, None),
        (b"GET", b"/", "1.1", b"", None, None),  # no authority: an empty Host
        (b"GET", b"/", "1.1", b"[::1]:443", None, None),
        (b"GET", b"/", "1.1", b"[fe80::1%25eth0]", None, None),
        (b"GET", b"/", "1.0", None, None, None),  # HTTP/1.0 needs no Host
        (b"GET", b"/a?b=c", "1.1", b"xn--bcher-kva.example", None, None),
        (b"OPTIONS", b"*", "1.1", b"a", None, None),
        (b"GET", b"http://a:80/x?y", "1.1", b"a", None, None),
        (b"CONNECT", b"a:443", "1.1", b"a:443", None, None),
        (b"POST", b"/", "1.1", b"a", TE, None),
        (b"GET", b"/", "2.0", b"a", None, 505),
        (b"GET", b"/", "0.9", b"a", None, 505),
        (b"GET", b"/", "1.1", b"a b", None, 400),
        (b"GET", b"/", "1.1", b"x/y", None, 400),
        (b"GET", b"/", "1.1", b"user@a", None, 400),
        (b"GET", b"/", "1.1", None, None, 400),
        (b"GET", b"http://a/", "1.1", None, None, 400),  # absolute-form without Host
        (b"GET", b"http://u@a/", "1.1", b"a", None, 400),
        (b"GET", b"http:///x", "1.1", b"a", None, 400),
        (b"GET", b"a/b", "1.1", b"a", None, 400),
        (b"GET", b"/a#b", "1.1", b"a", None, 400),
        (b"GET", b"*", "1.1", b"a", None, 400),
        (b"CONNECT", b"a", "1.1", b"a", None, 400),
        (b"POST", b"/", "1.0", b"a", TE, 400),
        (b"POST", b"/", "1.1", b"a", [(b"transfer-encoding", b"xchunked")], 501),
        (b"POST", b"/", "1.1", b"a", [(b"transfer-encoding", b"gzip, chunked")], 501),
        (b"POST", b"/", "1.1", b"a", [(b"transfer-encoding", b"Chunked ")], None),
        (b"POST", b"/", "1.1", b"a", [(b"transfer-encoding", b"chunked, gzip")], 400),
    ],
)
def test_check_http11_head(
    method: bytes,
    target: bytes,
    version: str,
    host: Optional[bytes],
    te: Any,
    expected: Optional[int],
) -> None:
    rejection = check_http11_head(method, target, version, host, te)
    assert (rejection[0] if rejection else None) == expected, rejection


def test_check_trailer_field() -> None:
    assert check_trailer_field(b"x-checksum", 100, 1000) is None
    assert check_trailer_field(b"x-checksum", 1001, 1000) == (431, "request trailers too large")
    for name in (b"content-length", b"transfer-encoding", b"host"):
        rejection = check_trailer_field(name, 10, 1000)
        assert rejection is not None and rejection[0] == 400


def test_check_http2_request() -> None:
    assert check_http2_request(b"/a?b#", b"a") is not None
    assert check_http2_request(b"/\xc3\xa9", b"a") is not None
    assert check_http2_request(b"/", b"user:pw@a") is not None
    assert check_http2_request(b"/%C3%A9?q=%23", b"a:8443") is None
    assert check_http2_request(None, b"a:443") is None  # CONNECT


# ---------------------------------------------------------------------------
# Servers under test: a handler and an ASGI app that say what they saw
# ---------------------------------------------------------------------------


class Seen:
    """What the handler or app of the current test saw."""

    paths: ClassVar[List[bytes]] = []
    events: ClassVar[List[Any]] = []
    hosts: ClassVar[List[Any]] = []


@pytest.fixture(autouse=True)
def _reset_seen() -> None:
    Seen.paths = []
    Seen.events = []
    Seen.hosts = []


class Handler(BaseRequestHandler):
    """``/early`` answers 200 at once; anything else reads the body (on_data)
    and answers with its size."""

    def on_headers(self) -> None:
        Seen.paths.append(self.path)
        Seen.hosts.append((self.host, [v for k, v in self.headers if k == b"host"]))
        self.size = 0
        if self.path == b"/early":
            self.send_response(200, body=b"early")

    def on_data(self, data: bytes) -> None:
        self.size += len(data)

    def on_request_done(self) -> None:
        Seen.events.append("done")
        if self.path != b"/early":
            self.send_response(200, body=b"%d" % self.size)

    def on_close(self, error_code: int) -> None:
        Seen.events.append(("close", error_code))


async def app(scope: Dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    Seen.paths.append(scope["raw_path"])
    Seen.hosts.append([v for k, v in scope["headers"] if k == b"host"])
    size = 0
    while True:
        message = await receive()
        Seen.events.append(message["type"])
        if message["type"] == "http.disconnect":
            return
        size += len(message["body"])
        if not message["more_body"]:
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"%d" % size})


@pytest.fixture(params=["handler", "asgi"])
def serve(request: Any, start_server: Any, serve_asgi: Any) -> Callable[..., Any]:
    """``await serve(**kwargs)``: the handler server or the ASGI server."""

    async def start(**kwargs: Any) -> Any:
        if request.param == "handler":
            return await start_server(Handler, **kwargs)
        return await serve_asgi(app, **kwargs)

    return start


async def exchange(server: Any, *pieces: bytes, pause: float = 0.0) -> bytes:
    """Send ``pieces`` on a new connection (``pause`` apart, so the server
    reads them one by one) and read until the server closes it; a server
    that keeps the connection open fails the test (TIMEOUT)."""
    host, port = server.address
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
    try:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        return await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()


def statuses(data: bytes) -> List[int]:
    return [int(s) for s in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


NEXT = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"  # must never be served
CHUNKED = b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


# ---------------------------------------------------------------------------
# HTTP/1.1: refused on the head alone, before any handler or app runs
# ---------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("head", "status"),
    [
        # RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
        # framing (it was answered, then /smuggled served: a desync).
        (
            (
                b"POST /up HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            ),
            400,
        ),
        (b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n", 501),
        (b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x/y\r\n\r\n", 400),
        (b"GET http://a/ HTTP/1.1\r\n\r\n", 400),  # absolute-form, no Host
        (b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ],
    ids=[
        "http10-chunked",
        "xchunked",
        "gzip-chunked",
        "host-space",
        "host-slash",
        "absolute-no-host",
        "userinfo",
        "asterisk-get",
        "fragment",
        "http20",
    ],
)
async def test_a_bad_head_is_refused_and_the_connection_closed(
    serve: Any, head: bytes, status: int
) -> None:
    server = await serve()
    data = await exchange(server, head + NEXT)
    assert statuses(data) == [status], data
    assert b"connection: close" in data
    assert Seen.paths == []  # neither the request nor /smuggled reached the app


@pytest.mark.asyncio
async def test_good_heads_are_still_served(serve: Any) -> None:
    server = await serve()
    data = await exchange(
        server,
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET http://a:1/abs HTTP/1.1\r\nHost: other\r\n\r\n"
        b"GET /empty-host HTTP/1.1\r\nHost:\r\n\r\n"
        b"GET /ten HTTP/1.0\r\n\r\n",
    )
    assert statuses(data) == [200, 200, 200, 200], data
    assert Seen.paths == [b"*", b"/abs", b"/empty-host", b"/ten"]
    # RFC 9112 3.2.2: the absolute-form's authority, not Host, for the app too.
    host = Seen.hosts[1]
    assert host == [b"a:1"] or host[0] == b"a:1", host


# ---------------------------------------------------------------------------
# HTTP/1.1: errors in the body, found after the head
# ---------------------------------------------------------------------------

BAD_BODIES = {
    "chunk-size": b"zz\r\nabc\r\n0\r\n\r\n",
    "bare-lf-in-extension": b"3;a=b\nc\r\nabc\r\n0\r\n\r\n",
    "content-length-trailer": b"3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n",
    "host-trailer": b"3\r\nabc\r\n0\r\nHost: b\r\n\r\n",
}


@pytest.mark.asyncio
@pytest.mark.parametrize("body", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
async def test_a_bad_body_in_the_head_s_read_never_starts_the_app(serve: Any, body: bytes) -> None:
    server = await serve()
    data = await exchange(server, CHUNKED + body + NEXT)
    assert statuses(data) == [400], data
    assert Seen.paths == []


@pytest.mark.asyncio
@pytest.mark.parametrize("body", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
async def test_a_bad_body_after_the_app_started_ends_it_with_400(serve: Any, body: bytes) -> None:
    """The app reads the body when the malformed part comes: it gets
    http.disconnect (a handler: on_close(PROTOCOL_ERROR)), the client 400
    at once (it got nothing for 60 s, then 503 and 400) and the close."""
    server = await serve()
    data = await exchange(server, CHUNKED + b"2\r\nxy\r\n", body + NEXT, pause=0.2)
    assert statuses(data) == [400], data
    assert Seen.paths == [b"/up"]
    if Seen.events and isinstance(Seen.events[0], str):  # ASGI
        assert Seen.events[-1] == "http.disconnect"
    else:
        assert Seen.events == [("close", 1)]  # no on_request_done


# An Upgrade request with a body: the upgrade is declined, and its body is
# read by the server's own body reader (llhttp stops after such a head).
UPGRADE_CHUNKED = CHUNKED.replace(b"\r\n\r\n", b"\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n")


@pytest.mark.asyncio
@pytest.mark.parametrize("body", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
async def test_a_declined_upgrade_s_bad_body_is_refused_too(serve: Any, body: bytes) -> None:
    """In the head's read: 400, the app never starts (it was started, and
    the 400 came after its answer); after the app started: 400 at once,
    http.disconnect (a handler: on_close(PROTOCOL_ERROR))."""
    server = await serve()
    data = await exchange(server, UPGRADE_CHUNKED + body + NEXT)
    assert statuses(data) == [400], data
    assert Seen.paths == []
    data = await exchange(server, UPGRADE_CHUNKED + b"2\r\nxy\r\n", body + NEXT, pause=0.2)
    assert statuses(data) == [400], data
    assert Seen.paths == [b"/up"]
    if Seen.events and isinstance(Seen.events[0], str):  # ASGI
        assert Seen.events[-1] == "http.disconnect"
    else:
        assert Seen.events == [("close", 1)]


@pytest.mark.asyncio
async def test_an_early_answer_then_a_bad_body_closes_without_a_second_answer(
    start_server: Any,
) -> None:
    """A handler answered 200 before the malformed chunk came: that 200 is
    its answer, and no 400 follows it (it did, a desync)."""
    server = await start_server(Handler)
    early = CHUNKED.replace(b"/up", b"/early")
    data = await exchange(server, early + b"2\r\nxy\r\n", b"zz\r\n" + NEXT, pause=0.2)
    assert statuses(data) == [200], data
    assert Seen.paths == [b"/early"]
    assert Seen.events == [("close", 1)]


class AsyncReader(BaseRequestHandler):
    """An ``async def on_headers`` handler reading the body with iter_body()."""

    async def on_headers(self) -> None:
        Seen.paths.append(self.path)
        try:
            async for _ in self.iter_body():
                pass
        except ClientDisconnected:
            Seen.events.append("ClientDisconnected")
            raise
        except asyncio.CancelledError:
            Seen.events.append("cancelled")
            raise
        self.send_response(200, body=b"read")

    def on_close(self, error_code: int) -> None:
        Seen.events.append(("close", error_code))


@pytest.mark.asyncio
async def test_a_coroutine_handler_s_body_ends_with_an_error(start_server: Any) -> None:
    server = await start_server(AsyncReader)
    data = await exchange(server, CHUNKED + b"2\r\nxy\r\n", b"zz\r\n" + NEXT, pause=0.2)
    assert statuses(data) == [400], data
    assert Seen.paths == [b"/up"]
    await asyncio.sleep(0.05)  # the task has its turn
    # Like a stream libnghttp2 resets for a malformed body: on_close with
    # PROTOCOL_ERROR, the task cancelled in iter_body().
    assert Seen.events[0] == ("close", 1)
    assert Seen.events[1] in ("cancelled", "ClientDisconnected")


# ---------------------------------------------------------------------------
# HTTP/1.1: trailers count against the header limit
# ---------------------------------------------------------------------------

LIMITS = Limits(max_header_list_size=4096)


@pytest.mark.asyncio
async def test_many_trailers_get_431(serve: Any) -> None:
    server = await serve(limits=LIMITS)
    trailers = b"".join(b"x-t%d: %s\r\n" % (i, b"v" * 100) for i in range(100))
    data = await exchange(server, CHUNKED + b"3\r\nabc\r\n0\r\n" + trailers + b"\r\n" + NEXT)
    assert statuses(data) == [431], data
    assert Seen.paths == []


@pytest.mark.asyncio
async def test_one_endless_trailer_gets_431(serve: Any) -> None:
    """httptools holds a trailer line whole until it ends: it is bounded
    from the bytes, not from the parsed fields."""
    server = await serve(limits=LIMITS)
    host, port = server.address
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
    writer.write(CHUNKED + b"3\r\nabc\r\n0\r\nx-big: ")
    data = b""
    # At most 1.6 MB, one piece at a time until the answer comes (writing on
    # after it could reset the connection before the answer is read).
    for _ in range(100):
        try:
            writer.write(b"v" * 16384)
            await writer.drain()
            data += await asyncio.wait_for(reader.read(65536), 0.05)
        except asyncio.TimeoutError:
            continue
        except ConnectionError:
            break
        if b"\r\n\r\n" in data:
            break
    try:
        data += await asyncio.wait_for(reader.read(), TIMEOUT)
    except ConnectionError:
        pass
    writer.close()
    assert statuses(data) == [431], data


@pytest.mark.asyncio
async def test_trailers_within_the_limit_are_served(start_server: Any) -> None:
    server = await start_server(Handler, limits=LIMITS)
    data = await exchange(
        server,
        CHUNKED + b"3\r\nabc\r\n0\r\nx-a: 1\r\nx-b: 2\r\n\r\n"
        b"GET /early HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    assert statuses(data) == [200, 200], data


@needs_curl
@pytest.mark.asyncio
async def test_curl_chunked_upload_still_works(serve: Any, run: Any, server_url: Any) -> None:
    server = await serve()
    result = await run(
        "curl",
        "-sS",
        "--http1.1",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "hello",
        server_url(server, "/up"),
    )
    assert result.check().stdout == b"5"


# ---------------------------------------------------------------------------
# HTTP/2
# ---------------------------------------------------------------------------


def _lenient(client: Any) -> Any:
    """Let h2 send what it would refuse to (the server must refuse it)."""
    client.conn.config.validate_outbound_headers = False
    client.conn.config.normalize_outbound_headers = False
    return client


@pytest.mark.asyncio
async def test_http2_authority_wins_over_host_for_handlers_and_apps(
    serve: Any, h2_connect: Any
) -> None:
    server = await serve()
    client = _lenient(await h2_connect(server))
    fields: List[Tuple[str, str]] = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "a"),
        (":path", "/"),
        ("host", "b"),
    ]
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(sid, fields, end_stream=True)
    await client.flush()
    stream = await client.response(sid)
    assert stream.status == 200
    host = Seen.hosts[0]
    # The handler's host and the app's single host field are both :authority.
    assert host == [b"a"] or host[0] == b"a", host


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("authority", "path"),
    [("u:p@a", "/"), ("a", "/x#frag"), ("a", b"/\xc3\xa9")],
    ids=["userinfo", "fragment", "raw-utf8"],
)
async def test_http2_malformed_requests_are_reset(
    serve: Any, h2_connect: Any, authority: str, path: Any
) -> None:
    server = await serve()
    client = _lenient(await h2_connect(server))
    sid = client.conn.get_next_available_stream_id()
    client.conn.send_headers(
        sid,
        [
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":authority", authority.encode()),
            (b":path", path if isinstance(path, bytes) else path.encode()),
        ],
        end_stream=True,
    )
    await client.flush()
    stream = await client.response(sid)
    assert stream.reset == 1  # PROTOCOL_ERROR
    assert Seen.paths == []
    good = await client.get("/fine")  # the connection serves on
    assert good.status == 200 and Seen.paths == [b"/fine"]


@needs_curl
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("--http1.1", "-H", "Host: a b"), 400),
        (("--http1.0", "-H", "Transfer-Encoding: chunked", "--data-binary", "hello"), 400),
        (("--http1.1", "-H", "Transfer-Encoding: xchunked", "--data-binary", "hello"), 501),
    ],
    ids=["host-space", "http10-chunked", "xchunked"],
)
async def test_curl_sees_the_refusals(
    serve: Any, run: Any, server_url: Any, args: Tuple[str, ...], status: int
) -> None:
    server = await serve()
    result = await run(
        "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *args, server_url(server, "/up")
    )
    assert result.check().out == str(status), result.err
    assert Seen.paths == []
