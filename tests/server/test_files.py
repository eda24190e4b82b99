"""Serving a folder (``python -m nghttp2 DIR``): the decisions in memory
(ranges, conditionals, paths, the listing), then over sockets with curl
(HTTP/2 and HTTP/1.1), nghttp and a frame-level h2 client."""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import io
import os
import re
import shutil
from pathlib import Path
from typing import Any, List

import pytest

from nghttp2.server.files import (
    RangeNotSatisfiable,
    directory_handler,
    if_range_holds,
    listing_html,
    locate,
    not_modified,
    parse_http_date,
    parse_range,
)

# ---- in memory ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [
        (b"bytes=0-99", 1000, (0, 99)),
        (b"bytes=100-", 1000, (100, 999)),
        (b"bytes=-100", 1000, (900, 999)),
        (b"bytes=-5000", 1000, (0, 999)),  # a suffix longer than the file: all of it
        (b"bytes=990-5000", 1000, (990, 999)),  # the end is clipped
        (b"bytes=999-999", 1000, (999, 999)),
        (b"Bytes = 5-9", 1000, (5, 9)),  # the unit is case-insensitive
        (b"bytes=5-9,", 1000, (5, 9)),  # empty list elements do not count
        (b"bytes=0-0,5-9", 1000, None),  # several ranges: the whole file
        (b"bytes=9-5", 1000, None),  # invalid: ignored
        (b"bytes=a-5", 1000, None),
        (b"bytes=5", 1000, None),
        (b"bytes=-", 1000, None),
        (b"bytes= 1 - 2", 1000, None),
        (b"items=0-5", 1000, None),
        (b"0-5", 1000, None),
        (b"bytes=0-" + b"9" * 5000, 1000, (0, 999)),  # huge numbers are no error
    ],
)
def test_parse_range(value, size, expected):
    assert parse_range(value, size) == expected


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (b"bytes=1000-", 1000),
        (b"bytes=1000-2000", 1000),
        (b"bytes=" + b"9" * 5000 + b"-", 1000),
        (b"bytes=-0", 1000),
        (b"bytes=0-", 0),
        (b"bytes=-1", 0),
    ],
)
def test_parse_range_not_satisfiable(value, size):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(value, size)


MTIME = 1_700_000_000.7
LAST_MODIFIED = email.utils.formatdate(MTIME, usegmt=True)
ETAG = '"abc-10"'


def test_not_modified():
    assert not not_modified(None, None, ETAG, MTIME)
    assert not_modified(b'"abc-10"', None, ETAG, MTIME)
    assert not_modified(b'W/"abc-10"', None, ETAG, MTIME)  # weak comparison
    assert not_modified(b'"x", "abc-10"', None, ETAG, MTIME)
    assert not_modified(b"*", None, ETAG, MTIME)
    assert not not_modified(b'"abc-1"', None, ETAG, MTIME)
    assert not not_modified(b"abc-10", None, ETAG, MTIME)  # unquoted: no tag
    later = LAST_MODIFIED.encode()
    earlier = email.utils.formatdate(MTIME - 60, usegmt=True).encode()
    assert not_modified(None, later, ETAG, MTIME)
    assert not not_modified(None, earlier, ETAG, MTIME)
    assert not not_modified(None, b"yesterday", ETAG, MTIME)  # unparsable: ignored
    # If-None-Match decides when present (RFC 9110 13.2.2), either way.
    assert not not_modified(b'"other"', later, ETAG, MTIME)
    assert not_modified(b'"abc-10"', earlier, ETAG, MTIME)


def test_http_dates():
    assert parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT") == 784111777
    assert parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT") == 784111777
    assert parse_http_date(b"Sun Nov  6 08:49:37 1994") == 784111777
    assert parse_http_date(b"not a date") is None


def test_if_range():
    assert if_range_holds(b'"abc-10"', ETAG, LAST_MODIFIED)
    assert not if_range_holds(b'W/"abc-10"', ETAG, LAST_MODIFIED)  # strong match only
    assert not if_range_holds(b'"other"', ETAG, LAST_MODIFIED)
    assert if_range_holds(LAST_MODIFIED.encode(), ETAG, LAST_MODIFIED)
    assert not if_range_holds(b"Sun, 06 Nov 1994 08:49:37 GMT", ETAG, LAST_MODIFIED)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """site/ with a file, a folder, dotfiles, and symlinks in and out."""
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / ".env").write_text("SECRET=1\n")
    (root / "a b.txt").write_text("spaces\n")
    (root / "sub" / "index.html").write_text("<h1>sub</h1>\n")
    (tmp_path / "outside.txt").write_text("outside the root\n")
    (root / "out").symlink_to(tmp_path / "outside.txt")
    (root / "in").symlink_to(root / "a b.txt")
    (root / "gitdir").symlink_to(root / ".git")
    return root


def test_locate(tree: Path):
    root = os.fsencode(os.path.realpath(tree))
    assert locate(root, b"/") == root
    assert locate(root, b"/a%20b.txt") == root + b"/a b.txt"
    assert locate(root, b"/sub/./index.html") == root + b"/sub/index.html"
    assert locate(root, b"//sub//index.html") == root + b"/sub/index.html"
    assert locate(root, b"/in") == root + b"/a b.txt"  # a symlink inside the tree
    refused = [
        b"/../outside.txt",
        b"/sub/../../outside.txt",
        b"/%2e%2e/outside.txt",
        b"/%2E%2E%2Foutside.txt",
        b"/sub/..%2f..%2foutside.txt",
        b"/out",  # a symlink out of the tree
        b"/.env",
        b"/%2eenv",
        b"/.git/config",
        b"/gitdir/config",  # a symlink into a dot-folder
        b"/a%00b",
        b"a b.txt",
        b"*",
    ]
    for path in refused:
        assert locate(root, path) is None, path
    assert locate(root, b"/.env", dotfiles=True) == root + b"/.env"
    assert locate(root, b"/gitdir/config", dotfiles=True) == root + b"/.git/config"
    assert locate(root, b"/%2e%2e/outside.txt", dotfiles=True) is None
    assert locate(root, b"/out", dotfiles=True) is None


def test_listing_html_escapes():
    page = listing_html("/x/", [("<script>.txt", False), ('a"b&c', True), ("z z", False)])
    text = page.decode()
    assert "<script>" not in text
    assert '<a href="../">../</a>' in text
    assert '<a href="a%22b%26c/">a&quot;b&amp;c/</a>' in text  # folders first
    assert '<a href="%3Cscript%3E.txt">&lt;script&gt;.txt</a>' in text
    assert '<a href="z%20z">z z</a>' in text
    assert text.index("a%22b") < text.index("%3Cscript")
    assert "../" not in listing_html("/", []).decode()
    # Names that are not UTF-8 (os.fsdecode gives surrogates): shown as U+FFFD.
    odd = listing_html(os.fsdecode(b"/\xff/"), [(os.fsdecode(b"n\xe9"), False)]).decode()
    assert "Index of /\ufffd/" in odd and '<a href="n%E9">n\ufffd</a>' in odd


# ---- over sockets -----------------------------------------------------------

needs_clients = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("nghttp")), reason="needs curl and nghttp"
)

DATA = bytes(range(256)) * 1200  # 307,200 bytes: several 64 KiB reads


@pytest.fixture
def site(tree: Path) -> Path:
    (tree / "big.bin").write_bytes(DATA)
    (tree / "empty.txt").write_bytes(b"")
    (tree / "<b>&.txt").write_text("odd name\n")
    os.mkdir(os.fsencode(tree) + b"/d\xff")  # not UTF-8
    return tree


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def headers_of(out: str) -> dict:
    """The last response head of ``curl -D -``, names lower-cased."""
    block = out.replace("\r\n", "\n").strip().split("\n\n")[-1]
    lines = block.split("\n")
    fields = {"status": int(lines[0].split()[1])}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return fields


CURLS = {"h2": ["--http2-prior-knowledge"], "http/1.1": ["--http1.1"]}


@needs_clients
@pytest.mark.asyncio
@pytest.mark.parametrize("version", sorted(CURLS))
async def test_ranges_and_conditionals_with_curl(start_server, run, site, tmp_path, version):
    server = await start_server(directory_handler(site))
    host, port = server.address
    url = f"http://{host}:{port}/big.bin"
    out = tmp_path / "out"

    async def curl(*args: str) -> dict:
        if out.exists():
            out.unlink()
        done = (await run("curl", "-sS", *CURLS[version], "-D", "-", "-o", str(out), *args)).check()
        return headers_of(done.out)

    whole = await curl(url)
    assert whole["status"] == 200 and sha(out.read_bytes()) == sha(DATA)
    assert whole["accept-ranges"] == "bytes"
    assert whole["content-type"] == "application/octet-stream"
    assert whole["server"].startswith("nghttp2-cffi/")
    assert parse_http_date(whole["date"].encode()) is not None
    etag, last_modified = whole["etag"], whole["last-modified"]
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', etag)
    assert parse_http_date(last_modified.encode()) == int(os.stat(site / "big.bin").st_mtime)

    size = len(DATA)
    for spec, first, last in [
        ("0-99", 0, 99),
        ("100000-", 100000, size - 1),
        ("-1000", size - 1000, size - 1),
        ("70000-200000", 70000, 200000),  # ends mid-file, across reads
        ("307199-999999", size - 1, size - 1),
    ]:
        part = await curl("-r", spec, url)
        assert part["status"] == 206, spec
        assert part["content-range"] == f"bytes {first}-{last}/{size}", spec
        assert int(part["content-length"]) == last - first + 1
        assert sha(out.read_bytes()) == sha(DATA[first : last + 1]), spec

    unsatisfiable = await curl("-r", f"{size}-", url)
    assert unsatisfiable["status"] == 416
    assert unsatisfiable["content-range"] == f"bytes */{size}"
    several = await curl("-r", "0-9,20-29", url)  # multi-range: the whole file
    assert several["status"] == 200 and sha(out.read_bytes()) == sha(DATA)

    # If-Range: the range with the current ETag, the whole file with an old one.
    assert (await curl("-r", "0-9", "-H", f"If-Range: {etag}", url))["status"] == 206
    stale = await curl("-r", "0-9", "-H", 'If-Range: "stale"', url)
    assert stale["status"] == 200 and out.stat().st_size == size

    cached = await curl("-H", f"If-None-Match: {etag}", url)
    assert cached["status"] == 304 and cached["etag"] == etag
    assert not out.exists() or out.read_bytes() == b""
    assert (await curl("-H", f"If-Modified-Since: {last_modified}", url))["status"] == 304
    assert (await curl("-H", 'If-None-Match: "old"', url))["status"] == 200
    # If-None-Match wins over a matching If-Modified-Since.
    since = f"If-Modified-Since: {last_modified}"
    both = await curl("-H", 'If-None-Match: "old"', "-H", since, url)
    assert both["status"] == 200 and sha(out.read_bytes()) == sha(DATA)

    head = await curl("-I", url)
    assert head["status"] == 200 and int(head["content-length"]) == size
    empty = await curl(f"http://{host}:{port}/empty.txt")
    assert empty["status"] == 200 and empty["content-length"] == "0"
    assert empty["content-type"] == "text/plain; charset=utf-8"


@needs_clients
@pytest.mark.asyncio
@pytest.mark.parametrize("version", sorted(CURLS))
async def test_paths_listing_and_redirects_with_curl(start_server, run, site, version):
    server = await start_server(directory_handler(site))
    host, port = server.address
    base = f"http://{host}:{port}"

    async def get(path: str, *args: str) -> Any:
        done = await run(
            "curl", "-sS", "--path-as-is", *CURLS[version], "-D", "-", *args, base + path
        )
        done.check()
        head, _, body = done.out.replace("\r\n", "\n").partition("\n\n")
        return headers_of(head + "\n\n"), body

    fields, body = await get("/")
    assert fields["status"] == 200 and fields["content-type"] == "text/html; charset=utf-8"
    assert '<a href="sub/">sub/</a>' in body
    assert '<a href="a%20b.txt">a b.txt</a>' in body
    assert '<a href="%3Cb%3E%26.txt">&lt;b&gt;&amp;.txt</a>' in body
    assert '<a href="in">in</a>' in body  # a symlink inside the tree
    for hidden in (".env", ".git", "out", "gitdir"):
        assert f'href="{hidden}' not in body, hidden

    fields, _ = await get("/sub?x=1&y=2")
    assert fields["status"] == 301 and fields["location"] == "/sub/?x=1&y=2"
    fields, body = await get("/sub/")
    assert (fields["status"], body) == (200, "<h1>sub</h1>\n")
    assert (await get("/a%20b.txt"))[1] == "spaces\n"
    assert (await get("/%3Cb%3E%26.txt"))[1] == "odd name\n"
    fields, body = await get("/d%FF/")
    assert fields["status"] == 200 and "Index of /d\ufffd/" in body
    fields, _ = await get("//sub")  # no protocol-relative redirect to a host "sub"
    assert fields["status"] == 301 and fields["location"] == "/sub/"

    for path in (
        "/.env",
        "/.git/config",
        "/gitdir/config",
        "/../outside.txt",
        "/sub/../../outside.txt",
        "/%2e%2e/outside.txt",
        "/%2e%2e%2foutside.txt",
        "/out",
        "/missing",
        "/big.bin/",
    ):
        fields, body = await get(path)
        assert fields["status"] == 404, path
        assert "outside the root" not in body and "SECRET" not in body

    fields, _ = await get("/", "-X", "POST")
    assert fields["status"] == 405 and fields["allow"] == "GET, HEAD"


@needs_clients
@pytest.mark.asyncio
async def test_flags_dotfiles_and_no_listing(start_server, run, site):
    server = await start_server(directory_handler(site, serve_dotfiles=True, listing=False))
    host, port = server.address
    base = f"http://{host}:{port}"

    async def status(path: str) -> str:
        done = await run(
            "curl", "-sS", "--http2-prior-knowledge", "-o", os.devnull, "-w", "%{http_code}",
            base + path,
        )  # fmt: skip
        return done.check().out

    assert await status("/.env") == "200"
    assert await status("/gitdir/config") == "200"
    assert await status("/out") == "404"  # out of the tree, dotfiles or not
    assert await status("/") == "404"  # no index.html, no listing
    assert await status("/sub/") == "200"


@needs_clients
@pytest.mark.asyncio
async def test_nghttp_range_and_304(start_server, run, site):
    server = await start_server(directory_handler(site))
    host, port = server.address
    url = f"http://{host}:{port}/big.bin"
    part = (await run("nghttp", "-v", "-H", "range: bytes=1000-66999", url)).check()
    assert ":status: 206" in part.out
    assert "content-range: bytes 1000-66999/307200" in part.out
    assert "RST_STREAM" not in part.out
    body = (await run("nghttp", "-H", "range: bytes=1000-66999", url)).check().stdout
    assert sha(body) == sha(DATA[1000:67000])
    etag = re.search(r'etag: ("[^"]+")', part.out)
    assert etag
    cached = (await run("nghttp", "-v", "-H", f"if-none-match: {etag.group(1)}", url)).check()
    assert ":status: 304" in cached.out and "RST_STREAM" not in cached.out


@pytest.mark.asyncio
async def test_files_are_closed_when_the_client_resets(start_server, h2_connect, site):
    opened: List[Any] = []

    class Files(directory_handler(site)):  # type: ignore[misc]
        def send_response(self, status=200, headers=None, body=None) -> None:
            if isinstance(body, io.IOBase):
                opened.append(body)
            super().send_response(status, headers, body)

    server = await start_server(Files)
    client = await h2_connect(server)
    client.read_body = False  # the server stalls at the flow-control window
    whole = await client.request("/big.bin")
    part = await client.request("/big.bin", headers=[("range", "bytes=10-200000")])
    # Both responses have begun (their files are open); which of them the
    # connection window goes to first is the server's choice, so neither
    # needs to have sent data.
    await client.wait_for(
        lambda: (
            client.streams[part].headers is not None and client.streams[whole].headers is not None
        )
    )
    client.conn.reset_stream(whole)
    client.conn.reset_stream(part)
    await client.flush()
    done = await client.get("/sub/", method="HEAD")  # the connection goes on
    assert done.status == 200
    for _ in range(100):
        if len(opened) == 2 and all(f.closed for f in opened):
            break
        await asyncio.sleep(0.02)
    assert len(opened) == 2 and all(f.closed for f in opened)
    await client.close()


def test_command_line_flags(tmp_path):
    from nghttp2.server.__main__ import parse_args

    args = parse_args([str(tmp_path)])
    assert (args.serve_dotfiles, args.no_listing) == (False, False)
    args = parse_args([str(tmp_path), "--serve-dotfiles", "--no-listing"])
    assert (args.serve_dotfiles, args.no_listing) == (True, True)
