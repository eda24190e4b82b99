"""HTTP2Client and BaseResponseHandler: the removed binding's client API."""

from __future__ import annotations

import asyncio
import io

import pytest

import nghttp2
from nghttp2.client import BaseResponseHandler, ConnectError, HTTP2Client
from nghttp2_cffi import ErrorCode

TIMEOUT = 10.0


class Recorder(BaseResponseHandler):
    """Records every callback, in order."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list = []
        self.body = b""
        self.promises: list = []
        self.accept = False
        self.accepted: list = []

    def on_headers(self) -> None:
        self.calls.append("headers")

    def on_data(self, data: bytes) -> None:
        self.calls.append("data")
        self.body += data

    def on_response_done(self) -> None:
        self.calls.append("done")

    def on_close(self, error_code: int) -> None:
        self.calls.append(("close", error_code))

    def on_push_promise(self, push_promise: BaseResponseHandler) -> None:
        self.promises.append(push_promise)
        if self.accept:
            handler = Recorder()
            self.accepted.append(handler)
            self.accept_push(push_promise, handler)
        else:
            super().on_push_promise(push_promise)  # the default: refuse


def test_the_old_api_is_importable_from_nghttp2() -> None:
    assert nghttp2.HTTP2Client is HTTP2Client
    assert nghttp2.BaseResponseHandler is BaseResponseHandler


def test_blocking_use_against_nghttpd(nghttpd, htdocs) -> None:
    """The old program shape: construct (connects), send_request, run the loop."""
    port = int(nghttpd(False).rsplit(":", 1)[1])
    loop = asyncio.new_event_loop()
    try:
        client = HTTP2Client(("127.0.0.1", port), loop=loop)
        assert client.io_loop is loop
        index = client.send_request("GET", "/index.html", handler=Recorder())
        pushed = Recorder()
        pushed.accept = True
        client.send_request(url=f"http://127.0.0.1:{port}/index.html", handler=pushed)
        upload = client.send_request(
            "POST",
            "/echo",
            headers=[("x-test", "1")],
            body=io.BytesIO(b"abc" * 10000),
            handler=Recorder(),
        )
        client.run(timeout=TIMEOUT)
        client.close()
    finally:
        loop.close()

    assert index.status == b"200"
    assert (b":status", b"200") in index.headers
    assert index.body == (htdocs / "index.html").read_bytes()
    assert index.calls[0] == "headers" and index.calls[-2:] == ["done", ("close", 0)]
    assert index.trailers == [(b"x-trailer", b"yes")]
    assert index.stream_id == 1 and index.path == b"/index.html"
    assert index.server_address[1] == port
    # Pushes: refused by default, accepted when asked.
    assert [p.path for p in index.promises] == [b"/style.css"]
    assert pushed.accepted and pushed.accepted[0].pushed
    css = pushed.accepted[0]
    assert css.body == (htdocs / "style.css").read_bytes()
    assert css.status == b"200" and css.path == b"/style.css" and css.stream_id % 2 == 0
    assert css.calls[-2:] == ["done", ("close", 0)]
    assert upload.body == b"abc" * 10000


def test_connect_error_raises_from_the_constructor() -> None:
    loop = asyncio.new_event_loop()
    try:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(ConnectError):
            HTTP2Client(("127.0.0.1", port), loop=loop)
    finally:
        loop.close()


@pytest.mark.asyncio
async def test_inside_a_running_loop_against_our_server(serve, server_ssl, client_ssl) -> None:
    srv = await serve(tls=server_ssl)
    port = srv.address[1]

    class FollowUp(Recorder):
        def on_response_done(self) -> None:
            super().on_response_done()
            self.next = self.http2.send_request("GET", "/hello", handler=Recorder())

    client = HTTP2Client(("127.0.0.1", port), ssl=client_ssl)  # connects in the background
    first = client.send_request("GET", "/hello", handler=FollowUp())  # queued until then
    trailers = client.send_request("GET", "/trailers", handler=Recorder())
    push = Recorder()
    push.accept = True
    client.send_request("GET", "/push", handler=push)
    refused = client.send_request("GET", "/push", handler=Recorder())
    broken = client.send_request("GET", "/big?size=2000000", handler=Recorder())
    broken.on_data = lambda data: 1 / 0  # a failing callback resets its stream
    await asyncio.wait_for(client.wait(), TIMEOUT)

    assert first.body == b"hello" and first.next.body == b"hello"
    assert first.next.calls[-1] == ("close", 0)
    assert trailers.body == b"part1,part2"
    assert trailers.trailers == [(b"x-checksum", b"c0ffee"), (b"x-count", b"2")]
    assert trailers.calls[-2:] == ["done", ("close", 0)]
    assert [h.path for h in push.accepted] == [b"/pushed.css", b"/pushed.js"]
    assert push.accepted[0].body == b"p{}"
    assert (b"content-type", b"text/css") in push.accepted[0].headers
    assert len(refused.promises) == 2 and refused.body == b"main"
    assert broken.calls[-1] == ("close", ErrorCode.INTERNAL_ERROR)
    client.close()
    await asyncio.wait_for(client.connection.wait_closed(), TIMEOUT)
