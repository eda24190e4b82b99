"""``python -m nghttp2``'s flags as users of uvicorn, hypercorn and granian
look for them (--uds, --fd, --root-path, --proxy-headers, mutual TLS,
--reload, environment variables...), its one-line errors, the development
certificate kept between starts, the forced second Ctrl-C, and tools/run.sh
(fast second start, serves where the user stands)."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest
import trustme

import nghttp2_cffi

pytestmark = [pytest.mark.asyncio, pytest.mark.clients]

URL = re.compile(r"https?://[^\s)]+")
H2C = ("curl", "-sS", "--http2-prior-knowledge")


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    """The development certificate goes to this test's own cache folder."""
    path = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(path))
    return path


async def serve(spawn, *args, cwd=None, env=None, pass_fds=()):
    """``python -m nghttp2 ARGS`` (``--port 0`` unless a place to listen is
    given); returns (program, url, the "Serving" line)."""
    if not {"--port", "--uds", "--fd"} & set(args):
        args = ("--port", "0", *args)
    program = await spawn(
        "-W", "always::ResourceWarning", "-m", "nghttp2", *args, cwd=cwd, env=env, pass_fds=pass_fds
    )
    line = await program.read_line_with("Serving")
    match = URL.search(line)
    assert match, line
    return program, match.group(0), line


def assert_clean_exit(returncode: int, stderr: str) -> None:
    assert returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert "ResourceWarning" not in stderr, stderr


# ---- --version and the environment -------------------------------------------


async def test_version_names_the_package_and_libnghttp2(spawn):
    program = await spawn("-m", "nghttp2", "--version")
    assert await program.finish() == 0
    assert program.out.strip().startswith(
        f"nghttp2-cffi {nghttp2_cffi.__version__} (libnghttp2 {nghttp2_cffi.VERSION}, "
    )


async def test_version_says_whether_events_are_built_in_c(spawn):
    program = await spawn("-m", "nghttp2", "--version")
    assert await program.finish() == 0
    where = "C" if platform.python_implementation() == "CPython" else "Python"
    assert program.out.strip().endswith(f", events built in {where})"), program.out


async def test_version_says_events_in_python_when_turned_off(spawn):
    program = await spawn("-m", "nghttp2", "--version", env={"NGHTTP2_CFFI_PURE_EVENTS": "1"})
    assert await program.finish() == 0
    assert program.out.strip().endswith(", events built in Python)"), program.out


async def test_help_gives_units_and_environment_variables(spawn):
    program = await spawn("-m", "nghttp2", "--help")
    assert await program.finish() == 0
    text = " ".join(program.out.split())
    assert "--idle-timeout SECONDS seconds; default 60.0 [$NGHTTP2_SERVER_IDLE_TIMEOUT]" in text
    assert "--max-body-size BYTES bytes; default 1073741824" in text
    assert "--graceful-timeout SECONDS" in text
    assert "[$NGHTTP2_SERVER_PORT]" in text
    assert "[$NGHTTP2_SERVER_NO_TLS]" in text


async def test_every_flag_from_the_environment(spawn, run, tmp_path, free_port):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("from the environment\n")
    program, url, _ = await serve(
        spawn,
        "--port",
        str(free_port),  # the command line wins over NGHTTP2_SERVER_PORT
        env={
            "NGHTTP2_SERVER_NO_TLS": "1",
            "NGHTTP2_SERVER_PORT": "1",
            "NGHTTP2_SERVER_DIRECTORY": str(site),
            "NGHTTP2_SERVER_MAX_CONCURRENT_STREAMS": "7",
            "NGHTTP2_SERVER_NO_ACCESS_LOG": "true",
        },
    )
    assert url == f"http://127.0.0.1:{free_port}/"
    assert (await run(*H2C, url)).check().out == "from the environment\n"
    verbose = (await run("nghttp", "-v", url)).check().out
    assert "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):7" in verbose
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)
    assert "GET /" not in program.err  # NGHTTP2_SERVER_NO_ACCESS_LOG


# ---- one line per mistake ----------------------------------------------------

ENCRYPTED_KEY = "encrypted-key.pem"


@pytest.fixture
def files(tmp_path, server_cert):
    """Certificates good and bad, a module that does not compile."""
    (tmp_path / "notpem.txt").write_text("hello\n")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in server_cert.cert_chain_pems))
    server_cert.private_key_pem.write_to_path(str(key))
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(server_cert.private_key_pem.bytes(), None)
    (tmp_path / ENCRYPTED_KEY).write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    (tmp_path / "broken_app.py").write_text("import os\nx = = 1\n")
    return tmp_path


ERRORS = [
    (["--cert", "{d}/missing.pem"], 1, "error: --cert {d}/missing.pem: no such file"),
    (["--cert", "{d}/notpem.txt"], 1, "error: --cert {d}/notpem.txt: not a PEM certificate"),
    (
        ["--cert", "{d}/cert.pem", "--key", "{d}/notpem.txt"],
        1,
        "error: --key {d}/notpem.txt: not a PEM private key",
    ),
    (
        ["--cert", "{d}/cert.pem"],
        1,
        "error: --cert {d}/cert.pem: holds no private key; give it with --key",
    ),
    (
        [
            "--cert",
            "{d}/cert.pem",
            "--key",
            "{d}/" + ENCRYPTED_KEY,
            "--ssl-keyfile-password",
            "wrong",
        ],
        1,
        "error: --ssl-keyfile-password: wrong password for {d}/" + ENCRYPTED_KEY,
    ),
    (
        ["--cert", "{d}/cert.pem", "--key", "{d}/" + ENCRYPTED_KEY],
        1,
        "error: --key {d}/"
        + ENCRYPTED_KEY
        + ": the key is encrypted; give its --ssl-keyfile-password",
    ),
    (
        ["--ssl-ca-certs", "{d}/missing-ca.pem"],
        1,
        "error: --ssl-ca-certs {d}/missing-ca.pem: no such file",
    ),
    (["{d}/no-such-folder"], 1, "error: DIRECTORY {d}/no-such-folder: no such folder"),
    (["{d}/notpem.txt"], 1, "error: DIRECTORY {d}/notpem.txt: not a folder"),
    (["--app-dir", "{d}/nowhere"], 1, "error: --app-dir {d}/nowhere: no such folder"),
    (
        ["--port", "99999"],
        2,
        (
            "python -m nghttp2: error: argument --port: 99999 is not a port number (0-65535) "
            "(see --help)"
        ),
    ),
    (
        ["--asgi", "broken_app:app"],
        1,
        "error: cannot load ASGI app 'broken_app:app': {d}/broken_app.py:2: invalid syntax",
    ),
    (
        ["--handler", "broken_app:Handler"],
        1,
        "error: cannot load handler 'broken_app:Handler': {d}/broken_app.py:2: invalid syntax",
    ),
    (
        ["--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8,proxy.example"],
        1,
        (
            "error: --forwarded-allow-ips: not an IP address or network: 'proxy.example' "
            "(use e.g. 127.0.0.1, 10.0.0.0/8, ::1 or *)"
        ),
    ),
    (["--log-config", "{d}/notpem.txt"], 1, None),  # configparser's own words
    (["--uds", "{d}/notpem.txt"], 1, "error: --uds {d}/notpem.txt: exists and is not a socket"),
]


@pytest.mark.parametrize(
    ("args", "status", "line"), ERRORS, ids=[" ".join(e[0]).replace("{d}/", "") for e in ERRORS]
)
async def test_a_mistake_is_one_line(spawn, files, args, status, line):
    argv = [a.format(d=files) for a in args]
    program = await spawn("-m", "nghttp2", *argv, cwd=str(files))
    assert await program.finish() == status
    assert "Traceback" not in program.err
    lines = program.err.splitlines()
    assert len(lines) == 1, program.err
    if line is None:
        assert lines[0].startswith(f"error: --log-config {files}/notpem.txt: "), lines
    else:
        assert lines[0] == line.format(d=files)
    assert "Serving" not in program.out


async def test_a_bad_environment_variable_is_one_line(spawn):
    program = await spawn("-m", "nghttp2", env={"NGHTTP2_SERVER_PORT": "http"})
    assert await program.finish() == 2
    assert program.err == (
        "python -m nghttp2: error: NGHTTP2_SERVER_PORT='http': http is not a port number "
        "(0-65535) (see --help)\n"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_port_held_by_a_plain_socket_is_one_line(spawn, workers):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        program = await spawn(
            "-m", "nghttp2", "--no-tls", "--port", str(port), "--workers", workers
        )
        assert await program.finish() == 1
    assert program.err == (
        f"error: 127.0.0.1:{port} is in use: another server listens there (--port)\n"
    )


async def test_a_second_server_on_a_port_with_workers_fails(spawn, run, free_port):
    """SO_REUSEPORT would let the second one share the first one's port."""
    first, url, _ = await serve(spawn, "--no-tls", "--port", str(free_port), "--workers", "2")
    second = await spawn("-m", "nghttp2", "--no-tls", "--port", str(free_port), "--workers", "2")
    assert await second.finish() == 1
    assert second.err == (
        f"error: 127.0.0.1:{free_port} is in use: another server listens there (--port)\n"
    )
    third = await spawn("-m", "nghttp2", "--no-tls", "--port", str(free_port))
    assert await third.finish() == 1
    assert "is in use" in third.err
    assert "<html" in (await run(*H2C, url)).check().out.lower()  # the first one still serves
    assert_clean_exit(await first.stop(signal.SIGTERM), first.err)


# ---- where to listen -------------------------------------------------------------


async def test_unix_socket(spawn, run, tmp_path):
    path = tmp_path / "server.sock"
    program, _, line = await serve(spawn, "--no-tls", "--uds", str(path))
    assert f"unix:{path}" in line
    got = (
        await run(*H2C, "--unix-socket", str(path), "-w", r"\n%{http_version}", "http://localhost/")
    ).check()
    assert got.out.endswith("\n2")
    assert "<html" in got.out.lower()
    assert_clean_exit(await program.stop(signal.SIGTERM), program.err)
    assert not path.exists()  # removed at exit


async def test_inherited_socket(spawn, run):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        program, url, _ = await serve(
            spawn, "--no-tls", "--fd", str(listener.fileno()), pass_fds=(listener.fileno(),)
        )
        assert url == f"http://127.0.0.1:{port}/"
        got = (await run(*H2C, "-w", r"\n%{http_version}", url)).check()
        assert got.out.endswith("\n2")
        assert_clean_exit(await program.stop(signal.SIGINT), program.err)


async def test_bad_file_descriptor(spawn):
    program = await spawn("-m", "nghttp2", "--no-tls", "--fd", "987")
    assert await program.finish() == 1
    assert program.err == "error: --fd 987: not an open socket (Bad file descriptor)\n"


# ---- ASGI and handler options --------------------------------------------------

SCOPE_APP = """\
import json

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    tls = scope["extensions"].get("tls")
    body = json.dumps({
        "root_path": scope["root_path"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode(),
        "client": scope["client"],
        "scheme": scope["scheme"],
        "tls_name": tls and tls["client_cert_name"],
        "tls_chain": tls and len(tls["client_cert_chain"]),
    }).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
"""

CLIENT_HANDLER = """\
import json
import nghttp2

class Who(nghttp2.BaseRequestHandler):
    def on_headers(self):
        cert = self.client_certificate
        subject = dict(pair for rdn in cert["subject"] for pair in rdn) if cert else None
        body = json.dumps({"client": self.client_address, "subject": subject})
        self.send_response(200, [("content-type", "application/json")], body.encode())
"""


@pytest.fixture
def apps(tmp_path):
    folder = tmp_path / "apps"
    folder.mkdir()
    (folder / "scope_app.py").write_text(SCOPE_APP)
    (folder / "who.py").write_text(CLIENT_HANDLER)
    return folder


async def get_json(run, url, *curl_args):
    return json.loads((await run(*H2C, *curl_args, url)).check().out)


async def test_root_path_and_app_dir(spawn, run, apps, tmp_path):
    # Started elsewhere: --app-dir says where the module is.
    program, url, _ = await serve(
        spawn,
        "--no-tls",
        "--asgi",
        "scope_app:app",
        "--app-dir",
        str(apps),
        "--root-path",
        "/api/",
        cwd=str(tmp_path),
    )
    got = await get_json(run, url + "users/1?x=y")
    assert got["root_path"] == "/api"
    assert got["path"] == "/api/users/1"  # as uvicorn: the prefix included
    assert got["raw_path"] == "/api/users/1"
    assert got["client"][0] == "127.0.0.1"
    assert got["tls_name"] is None  # cleartext: no tls extension
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)


FORWARDED = ("-H", "X-Forwarded-For: 203.0.113.7", "-H", "X-Forwarded-Proto: https")
RFC7239 = (
    "-H",
    'Forwarded: for="[2001:db8::7]:4711";proto=https',
)


async def test_proxy_headers_from_a_trusted_peer(spawn, run, apps):
    program, url, _ = await serve(
        spawn, "--no-tls", "--asgi", "scope_app:app", "--proxy-headers", cwd=str(apps)
    )
    got = await get_json(run, url, *FORWARDED)
    assert (got["client"], got["scheme"]) == (["203.0.113.7", 0], "https")
    got = await get_json(run, url, *RFC7239)
    assert (got["client"], got["scheme"]) == (["2001:db8::7", 4711], "https")
    got = await get_json(run, url)  # no such field: the peer itself
    assert (got["client"][0], got["scheme"]) == ("127.0.0.1", "http")
    # HTTP/1.1 too (where proxies mostly speak to their backends)
    plain = json.loads((await run("curl", "-sS", "--http1.1", *FORWARDED, url)).check().out)
    assert (plain["client"], plain["scheme"]) == (["203.0.113.7", 0], "https")
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)


async def test_proxy_headers_from_an_untrusted_peer_are_ignored(spawn, run, apps):
    program, url, _ = await serve(
        spawn,
        "--no-tls",
        "--asgi",
        "scope_app:app",
        "--proxy-headers",
        "--forwarded-allow-ips",
        "10.0.0.0/8",
        cwd=str(apps),
    )
    for headers in (FORWARDED, RFC7239):
        got = await get_json(run, url, *headers)
        assert (got["client"][0], got["scheme"]) == ("127.0.0.1", "http")
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)


async def test_proxy_headers_reach_the_handler_client_address(spawn, run, apps):
    program, url, _ = await serve(
        spawn, "--no-tls", "--handler", "who:Who", "--proxy-headers", cwd=str(apps)
    )
    got = await get_json(run, url, *FORWARDED)
    assert got["client"] == ["203.0.113.7", 0]
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)
    # Without --proxy-headers the field is just a field.
    program, url, _ = await serve(spawn, "--no-tls", "--handler", "who:Who", cwd=str(apps))
    got = await get_json(run, url, *FORWARDED)
    assert got["client"][0] == "127.0.0.1"
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)


@pytest.fixture
def mtls(tmp_path, ca, server_cert, ca_file):
    """Server cert/key, the client CA, and a client certificate from it."""
    folder = tmp_path / "tls"
    folder.mkdir()
    server_cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    (folder / "cert.pem").write_bytes(b"".join(b.bytes() for b in server_cert.cert_chain_pems))
    client_ca = trustme.CA(organization_name="Client CA")
    client_ca.cert_pem.write_to_path(str(folder / "client-ca.pem"))
    client = client_ca.issue_cert("alice@example.com", common_name="alice")
    client.private_key_and_cert_chain_pem.write_to_path(str(folder / "client.pem"))
    return folder, ca_file


async def test_mutual_tls_reaches_handlers_and_asgi(spawn, run, apps, mtls):
    folder, ca_file = mtls
    tls = (
        "--cert",
        str(folder / "cert.pem"),
        "--key",
        str(folder / "key.pem"),
        "--ssl-ca-certs",
        str(folder / "client-ca.pem"),
    )
    curl = ("curl", "-sS", "--http2", "--cacert", ca_file)
    with_cert = ("--cert", str(folder / "client.pem"))

    program, url, line = await serve(spawn, "--handler", "who:Who", *tls, cwd=str(apps))
    assert "client certificates required" in line
    got = json.loads((await run(*curl, *with_cert, url)).check().out)
    assert got["subject"]["commonName"] == "alice"
    refused = await run(*curl, url)  # no client certificate: no handshake
    assert refused.returncode != 0
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)

    program, url, _ = await serve(
        spawn, "--asgi", "scope_app:app", *tls, "--ssl-cert-reqs", "optional", cwd=str(apps)
    )
    got = json.loads((await run(*curl, *with_cert, url)).check().out)
    assert got["scheme"] == "https"
    assert got["tls_name"].startswith("CN=alice")
    assert got["tls_chain"] == 1
    anonymous = json.loads((await run(*curl, url)).check().out)  # optional: served
    assert (anonymous["tls_name"], anonymous["tls_chain"]) == (None, 0)
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)


async def test_log_config_json(spawn, run, tmp_path):
    config = tmp_path / "logging.json"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "formatters": {"mine": {"format": "MINE %(levelname)s %(message)s"}},
                "handlers": {
                    "err": {
                        "class": "logging.StreamHandler",
                        "formatter": "mine",
                        "stream": "ext://sys.stderr",
                    }
                },
                "loggers": {"nghttp2": {"handlers": ["err"], "level": "INFO"}},
            }
        )
    )
    program, url, _ = await serve(spawn, "--no-tls", "--log-config", str(config))
    (await run(*H2C, url)).check()
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)
    assert "MINE INFO listening on http://127.0.0.1:" in program.err


async def test_log_config_ini(spawn, run, tmp_path):
    config = tmp_path / "logging.ini"
    config.write_text(
        "[loggers]\nkeys=root\n\n[handlers]\nkeys=err\n\n[formatters]\nkeys=ini\n\n"
        "[logger_root]\nlevel=INFO\nhandlers=err\n\n"
        "[handler_err]\nclass=StreamHandler\nformatter=ini\nargs=(sys.stderr,)\n\n"
        "[formatter_ini]\nformat=INI %(name)s %(message)s\n"
    )
    program, url, _ = await serve(spawn, "--no-tls", "--log-config", str(config))
    (await run(*H2C, url)).check()
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)
    assert "INI nghttp2.server listening on http://127.0.0.1:" in program.err
    assert "INI nghttp2.server.access 127.0.0.1:" in program.err


# ---- the development certificate ------------------------------------------------


async def test_development_certificate_is_kept_and_verifiable(spawn, run, cache_home):
    program, url, _ = await serve(spawn)
    line = await program.read_line_with("Development certificate")
    ca = cache_home / "nghttp2-cffi" / "dev-ca.pem"
    assert str(ca) in line
    page = (await run("curl", "-sS", "--http2", "--cacert", str(ca), url)).check()
    assert "<html" in page.out.lower()
    # nghttp2's own client verifies it with the CA too.
    fetch = await spawn(
        "-c",
        "import asyncio, ssl, sys, nghttp2\n"
        "async def main():\n"
        "    ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
        "    async with nghttp2.Client(sys.argv[1], ssl=ctx) as client:\n"
        "        print((await client.get('/')).status)\n"
        "asyncio.run(main())\n",
        url,
        str(ca),
    )
    assert await fetch.finish() == 0, fetch.err
    assert fetch.out.strip() == "200"
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)
    kept = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in ca.parent.glob("*.pem")}
    assert set(kept) == {"dev-ca.pem", "dev-cert.pem", "dev-key.pem"}

    program, url, _ = await serve(spawn)  # the second start reuses them
    (await run("curl", "-sS", "--http2", "--cacert", str(ca), url)).check()
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)
    again = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in ca.parent.glob("*.pem")}
    assert again == kept


# ---- stopping ----------------------------------------------------------------------

SLOW_HANDLER = """\
import asyncio
import nghttp2

class Slow(nghttp2.BaseRequestHandler):
    async def on_headers(self):
        await asyncio.sleep(60)
        self.send_response(200, body=b"late")
"""


async def test_second_ctrl_c_forces_the_exit_and_says_what_it_drops(spawn, run, tmp_path):
    (tmp_path / "slow.py").write_text(SLOW_HANDLER)
    program, url, _ = await serve(spawn, "--no-tls", "--handler", "slow:Slow", cwd=str(tmp_path))
    clients = [asyncio.ensure_future(run("nghttp", url, url + "again"))]  # one connection
    await asyncio.sleep(0.5)  # both requests are in
    program.proc.send_signal(signal.SIGINT)
    await program.read_line_with("shutting down gracefully")
    program.proc.send_signal(signal.SIGINT)
    line = await program.read_line_with("second signal")
    assert line.rstrip().endswith(
        "second signal: forcing the exit, dropping 2 request(s) on 1 connection(s)"
    )
    assert await program.finish() == 0
    assert "Traceback" not in program.err
    for client in clients:
        assert "late" not in (await client).out  # dropped, not answered


SHORT_HANDLER = """\
import asyncio
import nghttp2

class Short(nghttp2.BaseRequestHandler):
    async def on_headers(self):
        await asyncio.sleep(%s)
        self.send_response(200, body=b"late")
"""


async def workers_serving(spawn, tmp_path, seconds):
    (tmp_path / "short.py").write_text(SHORT_HANDLER % seconds)
    program = await spawn(
        "-m",
        "nghttp2",
        "--no-tls",
        "--port",
        "0",
        "--workers",
        "2",
        "--handler",
        "short:Short",
        cwd=str(tmp_path),
    )
    url = URL.search(await program.read_line_with("Serving")).group(0)
    # Logged before "Serving" is printed, on the other stream: read by now or next.
    found = re.search(r"pids ([\d ]+)", program.err)
    if found is None:
        found = re.search(r"pids ([\d ]+)", await program.read_line_with("workers (pids"))
    pids = [int(pid) for pid in found.group(1).split()]
    assert len(pids) == 2 and all(pid > 1 for pid in pids), pids  # never os.kill(0, ...)
    return program, pids, url


async def test_ctrl_c_to_workers_and_parent_drains_gracefully(spawn, run, tmp_path):
    """A terminal's Ctrl-C reaches the parent and every worker: that is one
    signal (workers leave SIGINT to the parent), not a forcing second one."""
    program, pids, url = await workers_serving(spawn, tmp_path, 1.0)
    client = asyncio.ensure_future(run(*H2C, url))
    await asyncio.sleep(0.4)  # the request is in
    for pid in [program.proc.pid, *pids]:
        os.kill(pid, signal.SIGINT)
    assert (await client).check().out == "late"  # finished during the drain
    assert_clean_exit(await program.finish(), program.err)
    assert "forcing" not in program.err


async def test_second_signal_forces_the_workers_to_exit(spawn, run, tmp_path):
    program, _, url = await workers_serving(spawn, tmp_path, 60)
    client = asyncio.ensure_future(run("nghttp", url))
    await asyncio.sleep(0.4)
    program.proc.send_signal(signal.SIGINT)
    await program.read_line_with("stopping 2 workers")
    await asyncio.sleep(0.3)  # the workers are draining
    program.proc.send_signal(signal.SIGINT)
    await program.read_line_with("forcing the workers to exit")
    assert await program.finish() == 0
    assert "dropping 1 request(s) on 1 connection(s)" in program.err
    assert "late" not in (await client).out


async def test_graceful_timeout_bounds_the_drain(spawn, tmp_path):
    (tmp_path / "slow.py").write_text(SLOW_HANDLER)
    program, url, _ = await serve(
        spawn, "--no-tls", "--handler", "slow:Slow", "--graceful-timeout", "0.5", cwd=str(tmp_path)
    )
    _, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/")))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # answered in 60 s, if ever
    await writer.drain()
    await asyncio.sleep(0.3)
    started = time.monotonic()
    program.proc.send_signal(signal.SIGINT)
    assert await program.finish() == 0
    assert time.monotonic() - started < 5  # not the default 30 s
    assert "aborting 1 connection(s) after 0.5s" in program.err
    writer.close()


FAILING_LIFESPAN = """\
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served"})
"""


async def test_lifespan_off(spawn, run, tmp_path):
    (tmp_path / "lifespan_app.py").write_text(FAILING_LIFESPAN)
    program = await spawn(
        "-m", "nghttp2", "--no-tls", "--port", "0", "--asgi", "lifespan_app:app", cwd=str(tmp_path)
    )
    assert await program.finish() == 1
    assert "no database" in program.err
    program, url, _ = await serve(
        spawn, "--no-tls", "--asgi", "lifespan_app:app", "--lifespan", "off", cwd=str(tmp_path)
    )
    assert (await run(*H2C, url)).check().out == "served"
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)


# ---- --reload ------------------------------------------------------------------

RELOADED = """\
import nghttp2

class Page(nghttp2.BaseRequestHandler):
    def on_headers(self):
        self.send_response(200, body=b"version %d")
"""


async def test_reload_restarts_on_a_changed_module(spawn, run, tmp_path):
    pytest.importorskip("watchfiles", reason="--reload needs watchfiles (the reload extra)")
    module = tmp_path / "page.py"
    module.write_text(RELOADED % 1)
    program, url, _ = await serve(
        spawn, "--reload", "--no-tls", "--handler", "page:Page", cwd=str(tmp_path)
    )
    assert (await run(*H2C, url)).check().out == "version 1"
    await asyncio.sleep(0.3)  # the watcher is running
    module.write_text(RELOADED % 2)
    await program.read_line_with("page.py changed; restarting")
    line = await program.read_line_with("Serving")
    new_url = URL.search(line).group(0)
    assert (await run(*H2C, new_url)).check().out == "version 2"
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)


# ---- tools/run.sh ------------------------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_SH = os.path.join(REPO, "tools", "run.sh")


@pytest.mark.skipif(
    not os.path.exists(os.path.join(REPO, ".venv", "bin", "python"))
    or shutil.which("bash") is None,
    reason="tools/run.sh runs the repository's .venv, which this checkout lacks",
)
async def test_run_sh_starts_fast_and_serves_where_the_user_stands(spawn, run, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("the site, not the repository\n")
    (site / "app.py").write_text(CLIENT_HANDLER.replace("Who", "App"))

    async def start(*args):
        started = time.monotonic()
        program = await spawn(*args, cwd=str(site), executable=RUN_SH)
        line = await program.read_line_with("Serving")
        return program, URL.search(line).group(0), time.monotonic() - started

    stamp = await run(os.path.join(REPO, "tools", "setup_stamp.sh"))
    stamp_file = Path(REPO, ".venv", ".setup-stamp")
    if not stamp_file.exists() or stamp_file.read_text() != stamp.check().out:
        pytest.skip("tools/setup.sh has not run since its inputs changed: run.sh would set up")
    program, url, seconds = await start(".", "--no-tls", "--port", "0")
    assert seconds < 2.0, f"the second start took {seconds:.1f}s"
    assert (await run(*H2C, url)).check().out == "the site, not the repository\n"
    for path in (".git/config", "tools/run.sh", "README.md"):
        status = (await run(*H2C, "-o", os.devnull, "-w", "%{http_code}", url + path)).check()
        assert status.out == "404", path
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)

    # --handler modules load from where the user stands, too.
    program, url, _ = await start("--no-tls", "--port", "0", "--handler", "app:App")
    assert "client" in json.loads((await run(*H2C, url)).check().out)
    assert_clean_exit(await program.stop(signal.SIGINT), program.err)
