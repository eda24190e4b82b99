"""The tutorial programs of nghttp2's removed Python binding, run unchanged
(only the port differs) as subprocesses with ``import nghttp2``, queried with
``nghttp`` and stopped with SIGINT / SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import pytest

pytestmark = [pytest.mark.asyncio, pytest.mark.clients]

TUTORIAL_1 = """\
import ssl
import nghttp2

class Handler(nghttp2.BaseRequestHandler):
    def on_headers(self):
        res = b'nghttp2 FTW\\n'
        self.send_response(status=200,
                           headers = [('content-length', str(len(res)))],
                           body=res)

server = nghttp2.HTTP2Server(('127.0.0.1', 8080), Handler, ssl=None)
server.serve_forever()
"""

TUTORIAL_2 = """\
import ssl
import nghttp2

class Handler(nghttp2.BaseRequestHandler):
    def on_headers(self):
        self.push(path='/push',
                  status=200,
                  body='pushed content')
        res = b'nghttp2-python FTW\\n'
        self.send_response(status=200,
                           headers = [('content-length', str(len(res)))],
                           body=res)

server = nghttp2.HTTP2Server(('127.0.0.1', 8080), Handler, ssl=None)
server.serve_forever()
"""

#: The binding's documented TLS example: push with request_headers, a
#: BytesIO body, the context set up the way its documentation did.
DOCUMENTED_TLS = """\
import io, ssl

import nghttp2

class Handler(nghttp2.BaseRequestHandler):

    def on_headers(self):
        self.push(path='/css/style.css',
                  request_headers = [('content-type', 'text/css')],
                  status=200,
                  body='body{margin:0;}')

        self.send_response(status=200,
                           headers = [('content-type', 'text/plain')],
                           body=io.BytesIO(b'nghttp2-python FTW'))

ctx = ssl.SSLContext(ssl.PROTOCOL_SSLv23)
ctx.options = ssl.OP_ALL | ssl.OP_NO_SSLv2
ctx.load_cert_chain('server.crt', 'server.key')

# give None to ssl to make the server non-SSL/TLS
server = nghttp2.HTTP2Server(('127.0.0.1', 8443), Handler, ssl=ctx)
server.serve_forever()
"""

#: The binding's documented deferred body: the generator says DATA_DEFERRED
#: until an asyncio task has fetched the data and called resume().
DOCUMENTED_DEFERRED = """\
import asyncio, io

import nghttp2

class Body:
    def __init__(self, handler):
        self.handler = handler
        self.handler.eof = False
        self.handler.buf = io.BytesIO()

    def generate(self, n):
        buf = self.handler.buf
        data = buf.read1(n)
        if not data and not self.handler.eof:
            return None, nghttp2.DATA_DEFERRED
        return data, nghttp2.DATA_EOF if self.handler.eof else nghttp2.DATA_OK

class Handler(nghttp2.BaseRequestHandler):

    def on_headers(self):
        body = Body(self)
        asyncio.ensure_future(self.fetch())
        self.send_response(status=200,
                           headers = [('content-type', 'text/plain')],
                           body=body.generate)

    async def fetch(self):
        for i in range(5):
            await asyncio.sleep(0.01)  # the data arrives in pieces
            pos = self.buf.tell()
            self.buf.seek(0, io.SEEK_END)
            self.buf.write(('chunk %d\\n' % i).encode())
            self.buf.seek(pos)
            self.resume()
        self.eof = True
        self.resume()

server = nghttp2.HTTP2Server(('127.0.0.1', 8080), Handler, ssl=None)
server.serve_forever()
"""


def with_port(source: str, port: int) -> str:
    """The program with its port number (8080 or 8443) replaced."""
    for default in ("8080", "8443"):
        source = source.replace(f"('127.0.0.1', {default})", f"('127.0.0.1', {port})")
    assert str(port) in source
    return source


def assert_clean_exit(returncode: int, signum: int, stderr: str) -> None:
    assert returncode in (0, -signum), (returncode, stderr)
    assert "Traceback" not in stderr, stderr


async def start_program(spawn, tmp_path, port, source: str):
    script = tmp_path / "program.py"
    script.write_text(with_port(source, port))
    program = await spawn(str(script), cwd=str(tmp_path))
    await program.wait_listening(port)
    return program, port


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_tutorial_1(spawn, run, tmp_path, free_port, signum):
    program, port = await start_program(spawn, tmp_path, free_port, TUTORIAL_1)
    url = f"http://127.0.0.1:{port}/"
    result = (await run("nghttp", url)).check()
    assert result.out == "nghttp2 FTW\n"
    verbose = (await run("nghttp", "-v", url)).check()
    assert ":status: 200" in verbose.out
    assert "content-length: 12" in verbose.out
    assert "PUSH_PROMISE" not in verbose.out
    assert_clean_exit(await program.stop(signum), signum, program.err)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_tutorial_2_pushes(spawn, run, tmp_path, free_port, signum):
    program, port = await start_program(spawn, tmp_path, free_port, TUTORIAL_2)
    url = f"http://127.0.0.1:{port}/"
    result = (await run("nghttp", url)).check()
    # nghttp prints the pushed body too, in arrival order.
    assert result.out in (
        "nghttp2-python FTW\npushed content",
        "pushed contentnghttp2-python FTW\n",
    )
    verbose = (await run("nghttp", "-v", url)).check()
    assert "recv PUSH_PROMISE frame" in verbose.out
    assert ":path: /push" in verbose.out
    assert "pushed content" in verbose.out
    assert "nghttp2-python FTW" in verbose.out
    assert_clean_exit(await program.stop(signum), signum, program.err)


async def test_documented_tls_push_with_bytesio(
    spawn, run, tmp_path, free_port, server_cert, client_ssl, h2_connect
):
    (tmp_path / "server.crt").write_bytes(b"".join(p.bytes() for p in server_cert.cert_chain_pems))
    server_cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    program, port = await start_program(spawn, tmp_path, free_port, DOCUMENTED_TLS)
    url = f"https://127.0.0.1:{port}/"
    verbose = (await run("nghttp", "-v", url)).check()
    assert "The negotiated protocol: h2" in verbose.out
    assert "recv PUSH_PROMISE frame" in verbose.out
    assert ":path: /css/style.css" in verbose.out
    assert ":scheme: https" in verbose.out
    assert "content-type: text/css" in verbose.out
    assert "body{margin:0;}" in verbose.out
    assert "nghttp2-python FTW" in verbose.out
    # A client that verifies the certificate against the CA sees the same.
    client = await h2_connect(("127.0.0.1", port), ssl=client_ssl)
    response = await client.get("/")
    assert bytes(response.data) == b"nghttp2-python FTW"
    assert [dict(p.headers)[b":path"] for p in client.pushes] == [b"/css/style.css"]
    css = await client.response(client.pushes[0].pushed_stream_id)
    assert bytes(css.data) == b"body{margin:0;}"
    assert_clean_exit(await program.stop(signal.SIGINT), signal.SIGINT, program.err)


async def test_documented_deferred_body_resumed_by_a_task(spawn, run, tmp_path, free_port):
    program, port = await start_program(spawn, tmp_path, free_port, DOCUMENTED_DEFERRED)
    url = f"http://127.0.0.1:{port}/"
    expected = "".join(f"chunk {i}\n" for i in range(5))
    for _ in range(2):
        result = (await run("nghttp", url)).check()
        assert result.out == expected
    curl = (await run("curl", "-sS", "--http2-prior-knowledge", url)).check()
    assert curl.out == expected
    assert_clean_exit(await program.stop(signal.SIGTERM), signal.SIGTERM, program.err)


#: A deferred response that waits for a file to appear; the program says when
#: the request arrived (stdout) and when the signal came (logging, stderr).
SLOW_RESPONSE = """\
import asyncio, logging, os, sys
import nghttp2

logging.basicConfig(level=logging.INFO)
logging.getLogger("nghttp2.server.access").setLevel(logging.WARNING)
RELEASE = sys.argv[1]

class Handler(nghttp2.BaseRequestHandler):
    def on_headers(self):
        self.data = None
        asyncio.ensure_future(self.fetch())
        self.send_response(status=200, body=self.generate)
        print('request arrived', flush=True)

    def generate(self, n):
        if self.data is None:
            return None, nghttp2.DATA_DEFERRED
        return self.data, nghttp2.DATA_EOF

    async def fetch(self):
        while not os.path.exists(RELEASE):
            await asyncio.sleep(0.01)
        self.data = b'finished after the signal\\n'
        self.resume()

server = nghttp2.HTTP2Server(('127.0.0.1', 8080), Handler, ssl=None)
server.serve_forever()
"""


async def test_sigterm_lets_the_request_in_flight_finish(spawn, run, tmp_path, free_port):
    release = tmp_path / "release"
    script = tmp_path / "slow.py"
    script.write_text(with_port(SLOW_RESPONSE, free_port))
    program = await spawn(str(script), str(release), cwd=str(tmp_path))
    await program.wait_listening(free_port)
    client = asyncio.ensure_future(run("nghttp", "-v", f"http://127.0.0.1:{free_port}/"))
    await program.read_line_with("request arrived")
    program.proc.send_signal(signal.SIGTERM)
    await program.read_line_with("shutting down")
    release.touch()
    result = (await client).check()
    assert "finished after the signal" in result.out
    assert "recv GOAWAY frame" in result.out
    assert_clean_exit(await program.finish(), signal.SIGTERM, program.err)


# ---------------------------------------------------------------------------
# Import names: the installed package is ``nghttp2`` (with ``nghttp2.server``
# and ``nghttp2.client`` inside), so a user's program may be called
# server.py or client.py.  Each program runs from its own folder, which
# Python puts first on sys.path.
# ---------------------------------------------------------------------------

#: The removed binding's client API, saved by its user as ``client.py``.
CLIENT_PROGRAM = """\
import sys
import nghttp2

class Handler(nghttp2.BaseResponseHandler):
    def __init__(self):
        super().__init__()
        self.body = b''

    def on_data(self, data):
        self.body += data

    def on_response_done(self):
        print(self.status.decode(), self.body.decode(), end='')

client = nghttp2.HTTP2Client(('127.0.0.1', int(sys.argv[1])), ssl=None)
client.send_request('GET', '/', handler=Handler())
client.run(timeout=10)
client.close()
"""


@pytest.mark.parametrize("filename", ["server.py", "client.py", "nghttp2_app.py"])
async def test_the_tutorial_serves_under_any_file_name(spawn, run, tmp_path, free_port, filename):
    script = tmp_path / filename
    script.write_text(with_port(TUTORIAL_1, free_port))
    program = await spawn(filename, cwd=str(tmp_path))
    await program.wait_listening(free_port)
    result = (await run("nghttp", f"http://127.0.0.1:{free_port}/")).check()
    assert result.out == "nghttp2 FTW\n"
    assert_clean_exit(await program.stop(signal.SIGINT), signal.SIGINT, program.err)


async def test_a_client_program_named_client_py_fetches(spawn, tmp_path, free_port):
    server_dir, client_dir = tmp_path / "srv", tmp_path / "cli"
    server_dir.mkdir()
    client_dir.mkdir()
    (server_dir / "server.py").write_text(with_port(TUTORIAL_1, free_port))
    (client_dir / "client.py").write_text(CLIENT_PROGRAM)
    server = await spawn("server.py", cwd=str(server_dir))
    await server.wait_listening(free_port)
    client = await spawn("client.py", str(free_port), cwd=str(client_dir))
    assert await client.finish() == 0, client.err
    assert client.out == "200 nghttp2 FTW\n"
    assert_clean_exit(await server.stop(signal.SIGINT), signal.SIGINT, server.err)
