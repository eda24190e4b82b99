"""``python -m nghttp2``: the demo page over TLS, a directory over h2c, a
handler given as module:Class, a real certificate, clean exits on signals."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket

import pytest

pytestmark = [pytest.mark.asyncio, pytest.mark.clients]

URL = re.compile(r"https?://[^\s)]+")


@pytest.fixture(autouse=True)
def _cache_home(tmp_path, monkeypatch):
    """The development certificate goes to the test's folder, not ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


async def serve(spawn, *args, cwd=None):
    """Start ``python -m nghttp2 --port 0 ARGS`` (ResourceWarnings shown);
    return (program, url)."""
    program = await spawn(
        "-W", "always::ResourceWarning", "-m", "nghttp2", "--port", "0", *args, cwd=cwd
    )
    line = await program.read_line_with("Serving")
    match = URL.search(line)
    assert match, line
    return program, match.group(0)


def assert_clean_exit(returncode: int, stderr: str) -> None:
    assert returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert "ResourceWarning" not in stderr, stderr  # every served file was closed
    assert "reset=" not in stderr, stderr  # every response ended cleanly


async def test_demo_page_over_tls_with_a_self_signed_certificate(spawn, run):
    program, url = await serve(spawn)
    assert url.startswith("https://127.0.0.1:")
    assert not url.endswith(":0/")
    page = (await run("curl", "-sS", "-k", "--http2", "-w", r"\n%{http_version}", url)).check()
    body, _, version = page.out.rpartition("\n")
    assert version == "2"
    assert "<html" in body.lower()
    assert "style.css" in body
    # The certificate is self-signed: without -k curl refuses it.
    assert (await run("curl", "-sS", "--http2", url)).returncode == 60
    verbose = (await run("nghttp", "-v", url)).check()
    assert "The negotiated protocol: h2" in verbose.out
    assert "recv PUSH_PROMISE frame" in verbose.out
    assert ":path: /style.css" in verbose.out
    css = (await run("curl", "-sS", "-k", "--http2", url + "style.css")).check()
    assert "{" in css.out  # the stylesheet
    missing = (
        await run(
            "curl",
            "-sS",
            "-k",
            "--http2",
            "-w",
            "%{http_code}",
            "-o",
            os.devnull,
            url + "nothing-here",
        )
    ).check()
    assert missing.out == "404"
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)


async def test_directory_over_h2c(spawn, run, tmp_path):
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>\n")
    data = os.urandom(3 << 20)
    (root / "sub" / "blob.bin").write_bytes(data)
    (tmp_path / "secret.txt").write_text("outside the root\n")

    program, url = await serve(spawn, str(root), "--no-tls")
    assert url.startswith("http://127.0.0.1:")
    h2c = ["curl", "-sS", "--http2-prior-knowledge"]
    index = (await run(*h2c, "-w", r"\n%{http_version} %{content_type}", url)).check()
    assert index.out == "<h1>home</h1>\n\n2 text/html; charset=utf-8"
    out = tmp_path / "blob.out"
    (await run(*h2c, "-o", str(out), url + "sub/blob.bin")).check()
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    head = (await run(*h2c, "-I", url + "sub/blob.bin")).check()
    assert f"content-length: {len(data)}" in head.out
    for path in ("missing.txt", "../secret.txt", "sub/../../secret.txt", "%2e%2e/secret.txt"):
        status = (
            await run(*h2c, "--path-as-is", "-w", "%{http_code}", "-o", os.devnull, url + path)
        ).check()
        assert status.out == "404", path
    nghttp = (await run("nghttp", url)).check()
    assert nghttp.out == "<h1>home</h1>\n"
    assert_clean_exit(await program.stop(signal.SIGTERM), program.err)


HANDLER_MODULE = """\
import nghttp2

class Echo(nghttp2.BaseRequestHandler):
    def on_headers(self):
        self.chunks = []

    def on_data(self, data):
        self.chunks.append(data)

    def on_request_done(self):
        body = b''.join(self.chunks)
        self.send_response(200, [('x-method', self.method)], self.path + b' ' + body)
"""


async def test_handler_module_class(spawn, run, tmp_path):
    (tmp_path / "echo_app.py").write_text(HANDLER_MODULE)
    program, url = await serve(spawn, "--no-tls", "--handler", "echo_app:Echo", cwd=str(tmp_path))
    got = (await run("nghttp", url + "hello")).check()
    assert got.out == "/hello "
    posted = (
        await run(
            "curl",
            "-sS",
            "--http2-prior-knowledge",
            "--data-binary",
            "payload",
            "-D",
            "-",
            url + "post",
        )
    ).check()
    assert "x-method: POST" in posted.out
    assert posted.out.endswith("/post payload")
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)


@pytest.mark.parametrize("spec", ["echo_app:Missing", "no_such_module:Echo", "echo_app"])
async def test_bad_handler_is_a_clear_error(spawn, tmp_path, spec):
    (tmp_path / "echo_app.py").write_text(HANDLER_MODULE)
    program = await spawn(
        "-m", "nghttp2", "--no-tls", "--port", "0", "--handler", spec, cwd=str(tmp_path)
    )
    returncode = await program.finish()
    assert returncode != 0
    assert "Traceback" not in program.err
    assert spec in program.err


async def test_given_certificate_verified_by_curl(spawn, run, tmp_path, server_cert, ca_file):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in server_cert.cert_chain_pems))
    server_cert.private_key_pem.write_to_path(str(key))
    program, url = await serve(spawn, "--cert", str(cert), "--key", str(key))
    page = (
        await run("curl", "-sS", "--http2", "--cacert", ca_file, "-w", r"\n%{http_version}", url)
    ).check()
    assert page.out.endswith("\n2")
    assert "<html" in page.out.lower()
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)


async def test_port_in_use_is_a_clear_error(spawn):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        program = await spawn("-m", "nghttp2", "--no-tls", "--port", str(port))
        returncode = await program.finish()
    assert returncode == 1
    assert "Traceback" not in program.err
    assert "error:" in program.err
