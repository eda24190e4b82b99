"""The server against real HTTP/2 clients: nghttp, curl, h2load (subprocesses
awaited in the test's loop) and httpx, over h2c and TLS with ALPN h2."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import ssl

import httpx
import pytest

from nghttp2.server import BaseRequestHandler

pytestmark = [pytest.mark.asyncio, pytest.mark.clients]

TIMEOUT = 10.0
MiB = 1 << 20


class App(BaseRequestHandler):
    """``/`` a small page; ``/upload`` answers the body's length and sha256;
    ``/big`` 20 MiB from memory; ``/file`` the file in ``App.file``."""

    big = b""
    file = ""

    def on_headers(self):
        self.digest = hashlib.sha256()
        self.received = 0
        if self.path == b"/":
            body = b"nghttp2 FTW\n"
            self.send_response(
                200,
                [("content-type", "text/plain"), ("content-length", str(len(body)))],
                body,
            )
        elif self.path == b"/big":
            self.send_response(200, [("content-length", str(len(self.big)))], self.big)
        elif self.path == b"/file":
            size = os.path.getsize(self.file)
            self.send_response(200, [("content-length", str(size))], open(self.file, "rb"))  # noqa: SIM115
        elif self.path != b"/upload":
            self.send_response(404, body=b"not found\n")

    def on_data(self, data):
        self.digest.update(data)
        self.received += len(data)

    def on_request_done(self):
        if self.path == b"/upload":
            self.send_response(body=f"{self.received} {self.digest.hexdigest()}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def big_data() -> bytes:
    return os.urandom(20 * MiB)


@pytest.fixture
def app(big_data, tmp_path):
    App.big = big_data
    path = tmp_path / "big.bin"
    path.write_bytes(big_data[::-1])
    App.file = str(path)
    return App


# ---------------------------------------------------------------------------
# nghttp
# ---------------------------------------------------------------------------


async def test_nghttp_h2c_and_tls(start_server, run, server_url, app, server_ssl):
    for ssl_context in (None, server_ssl):
        server = await start_server(app, ssl=ssl_context)
        result = (await run("nghttp", "-v", server_url(server, "/"))).check()
        assert result.out.count("nghttp2 FTW") == 1
        assert ":status: 200" in result.out
        assert "content-type: text/plain" in result.out
        if ssl_context is not None:
            assert "h2 is negotiated" in result.out or "The negotiated protocol: h2" in result.out
        missing = (await run("nghttp", "-v", server_url(server, "/nothing"))).check()
        assert ":status: 404" in missing.out


async def test_nghttp_upload(start_server, run, server_url, app, tmp_path):
    data = os.urandom(3 * MiB)
    path = tmp_path / "up.bin"
    path.write_bytes(data)
    server = await start_server(app)
    result = (await run("nghttp", "-d", str(path), server_url(server, "/upload"))).check()
    assert result.out == f"{len(data)} {sha256(data)}"


# ---------------------------------------------------------------------------
# curl
# ---------------------------------------------------------------------------

WRITE_OUT = ["-w", r"\n%{http_version} %{response_code}"]


async def test_curl_h2c_prior_knowledge(start_server, run, server_url, app):
    server = await start_server(app)
    result = (
        await run("curl", "-sS", "--http2-prior-knowledge", *WRITE_OUT, server_url(server, "/"))
    ).check()
    assert result.out == "nghttp2 FTW\n\n2 200"


async def test_curl_tls_with_the_ca(start_server, run, server_url, app, server_ssl, ca_file):
    server = await start_server(app, ssl=server_ssl)
    result = (
        await run(
            "curl", "-sS", "--http2", "--cacert", ca_file, *WRITE_OUT, server_url(server, "/")
        )
    ).check()
    assert result.out == "nghttp2 FTW\n\n2 200"
    # Without the CA the certificate is rejected: verification is real.
    untrusted = await run("curl", "-sS", "--http2", server_url(server, "/"))
    assert untrusted.returncode == 60  # CURLE_PEER_FAILED_VERIFICATION


async def test_curl_large_downloads(start_server, run, server_url, app, big_data, tmp_path):
    server = await start_server(app)
    for path, expected in (("/big", big_data), ("/file", big_data[::-1])):
        out = tmp_path / f"download{path.replace('/', '-')}"
        (
            await run(
                "curl", "-sS", "--http2-prior-knowledge", "-o", str(out), server_url(server, path)
            )
        ).check()
        assert out.stat().st_size == len(expected)
        assert sha256(out.read_bytes()) == sha256(expected)


async def test_curl_upload(start_server, run, server_url, app, tmp_path, server_ssl, ca_file):
    data = os.urandom(5 * MiB + 123)
    path = tmp_path / "up.bin"
    path.write_bytes(data)
    h2c = await start_server(app)
    tls = await start_server(App, ssl=server_ssl)
    for args in (
        ["--http2-prior-knowledge", server_url(h2c, "/upload")],
        ["--http2", "--cacert", ca_file, server_url(tls, "/upload")],
    ):
        result = (await run("curl", "-sS", "--data-binary", f"@{path}", *WRITE_OUT, *args)).check()
        assert result.out == f"{len(data)} {sha256(data)}\n2 200"


# ---------------------------------------------------------------------------
# httpx
# ---------------------------------------------------------------------------


async def test_httpx_h2c_prior_knowledge(start_server, server_url, app, big_data):
    server = await start_server(app)
    async with httpx.AsyncClient(http1=False, http2=True, timeout=TIMEOUT) as client:
        response = await client.get(server_url(server, "/"))
        assert response.http_version == "HTTP/2"
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain"
        assert response.content == b"nghttp2 FTW\n"
        responses = await asyncio.gather(*(client.get(server_url(server, "/")) for _ in range(20)))
        assert [r.content for r in responses] == [b"nghttp2 FTW\n"] * 20
        big = await client.get(server_url(server, "/big"))
        assert sha256(big.content) == sha256(big_data)
        data = os.urandom(4 * MiB)
        upload = await client.post(server_url(server, "/upload"), content=data)
        assert upload.text == f"{len(data)} {sha256(data)}"
    assert len(server.connections) <= 1


async def test_httpx_tls(start_server, server_url, app, server_ssl, client_ssl, big_data):
    server = await start_server(app, ssl=server_ssl)
    async with httpx.AsyncClient(http2=True, verify=client_ssl, timeout=TIMEOUT) as client:
        response = await client.get(server_url(server, "/"))
        assert response.http_version == "HTTP/2"
        assert response.content == b"nghttp2 FTW\n"
        data = os.urandom(3 * MiB)
        upload = await client.post(server_url(server, "/upload"), content=data)
        assert upload.text == f"{len(data)} {sha256(data)}"
        file = await client.get(server_url(server, "/file"))
        assert sha256(file.content) == sha256(big_data[::-1])


# ---------------------------------------------------------------------------
# h2load
# ---------------------------------------------------------------------------


def h2load_counts(output: str) -> dict:
    match = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
        r"(\d+) failed, (\d+) errored",
        output,
    )
    assert match, output
    keys = ("total", "started", "done", "succeeded", "failed", "errored")
    counts = dict(zip(keys, map(int, match.groups())))
    codes = re.search(r"status codes: (\d+) 2xx", output)
    assert codes, output
    counts["2xx"] = int(codes.group(1))
    return counts


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
async def test_h2load(start_server, run, server_url, app, server_ssl, tls, caplog):
    caplog.set_level(logging.DEBUG, logger="nghttp2.server")
    server = await start_server(app, ssl=server_ssl if tls else None)
    result = (
        await run("h2load", "-n", "2000", "-c", "10", "-m", "10", server_url(server, "/"))
    ).check()
    counts = h2load_counts(result.out)
    assert counts["succeeded"] == 2000, result.out + caplog.text
    assert counts["failed"] == 0 and counts["errored"] == 0, result.out
    assert counts["2xx"] == 2000, result.out
    if tls:
        assert "Application protocol: h2" in result.out


# ---------------------------------------------------------------------------
# ALPN: a TLS client without h2
# ---------------------------------------------------------------------------


async def test_tls_client_without_h2_is_closed_and_the_server_lives_on(
    start_server, h2_connect, app, server_ssl, ca, caplog, run, server_url, ca_file
):
    caplog.set_level(logging.INFO, logger="nghttp2.server")
    server = await start_server(app, ssl=server_ssl, http1=False)  # HTTP/2 only
    host, port = server.address
    http11 = ssl.create_default_context()
    ca.configure_trust(http11)
    http11.set_alpn_protocols(["http/1.1"])
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=http11, server_hostname=host), TIMEOUT
    )
    assert writer.get_extra_info("ssl_object").selected_alpn_protocol() is None
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        data = await asyncio.wait_for(reader.read(), TIMEOUT)
    except (ConnectionResetError, ssl.SSLError):
        data = b""
    assert data == b""  # closed without an answer
    writer.close()
    assert any("did not negotiate h2" in r.getMessage() for r in caplog.records)
    assert not server.connections

    # curl forced to HTTP/1.1 fails the same way.
    http1 = await run("curl", "-sS", "--http1.1", "--cacert", ca_file, server_url(server, "/"))
    assert http1.returncode != 0

    client = await h2_connect(server, ssl=_h2_context(ca))
    response = await client.get("/")
    assert response.status == 200 and bytes(response.data) == b"nghttp2 FTW\n"


def _h2_context(ca) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.set_alpn_protocols(["h2"])
    return ctx
