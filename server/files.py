"""Request handlers that serve files: a directory, or the embedded demo page.

:class:`DirectoryHandler` serves a folder as ``python -m http.server`` and
nghttpd users expect: ``index.html`` for a folder, else an HTML listing;
``/dir`` redirected to ``/dir/``; single byte ranges (206, 416), ETag and
Last-Modified with ``If-None-Match`` / ``If-Modified-Since`` (304) and
``If-Range``; content types from :mod:`mimetypes`; no dotfiles unless asked.
It uses only the public handler API: a response body is bytes or an open
file, which the server reads off the event loop.

The decisions, pure and tested without sockets, are the module's functions:
:func:`parse_range`, :func:`not_modified`, :func:`if_range_holds`,
:func:`locate` and :func:`listing_html`.
"""

from __future__ import annotations

import email.utils
import html
import io
import mimetypes
import os
import re
import time
from importlib import resources
from pathlib import Path
from typing import IO, Iterable, List, Optional, Tuple, Union
from urllib import parse

from nghttp2_cffi import __version__

from .errors import PushError
from .handler import BaseRequestHandler

#: The ``server`` header of files served.
SERVER = f"nghttp2-cffi/{__version__}"


def _content_type(name: str) -> str:
    ctype, encoding = mimetypes.guess_type(name)
    if ctype is None or encoding is not None:
        return "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
        return f"{ctype}; charset=utf-8"
    return ctype


# ---- the decisions, pure ----------------------------------------------------


class RangeNotSatisfiable(Exception):
    """The ``Range`` asks for no byte of the file: answer 416."""


def _number(digits: bytes) -> int:
    # Past 18 digits a position is beyond any file (and int() of thousands of
    # digits is slow or refused).
    return int(digits) if len(digits) <= 18 else 10**18


def parse_range(value: bytes, size: int) -> Optional[Tuple[int, int]]:
    """The byte range a ``Range`` field value asks of a file of ``size`` bytes:
    ``(first, last)``, both included (RFC 9110 section 14).

    None: serve the whole file (200) — the field is invalid, not in bytes, or
    asks for several ranges (allowed by section 14.2: one range is served,
    several get the whole representation).  Raises
    :class:`RangeNotSatisfiable` when the one range starts past the end (or
    is an empty suffix, or the file is empty).
    """
    unit, sep, spec = value.partition(b"=")
    if not sep or unit.strip().lower() != b"bytes":
        return None
    specs = [s.strip() for s in spec.split(b",")]
    specs = [s for s in specs if s]
    if len(specs) != 1:
        return None
    first, dash, last = specs[0].partition(b"-")
    if not dash:
        return None
    if not first:
        if not last.isdigit():
            return None
        suffix = _number(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size - 1
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = _number(first)
    end = _number(last) if last else size - 1
    if last and end < start:
        return None  # invalid: the field is ignored (section 14.1.1)
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(end, size - 1)


_ETAGS = re.compile(rb'(W/)?"([^"]*)"')


def http_date(timestamp: float) -> str:
    """``Sun, 06 Nov 1994 08:49:37 GMT`` (IMF-fixdate)."""
    return email.utils.formatdate(timestamp, usegmt=True)


def parse_http_date(value: bytes) -> Optional[int]:
    """Seconds since the epoch of an HTTP-date (any of the three forms), or None."""
    try:
        parsed = email.utils.parsedate_tz(value.decode("latin-1"))
        return None if parsed is None else int(email.utils.mktime_tz(parsed))
    except (ValueError, OverflowError, TypeError):
        return None


def not_modified(
    if_none_match: Optional[bytes], if_modified_since: Optional[bytes], etag: str, mtime: float
) -> bool:
    """Whether a GET or HEAD with these conditions gets 304 (RFC 9110 section
    13.2.2): ``If-None-Match`` (weak comparison, ``*``) decides when present
    and ``If-Modified-Since`` is then ignored; else the file must not have
    changed since that date (whole seconds, as Last-Modified says it)."""
    if if_none_match is not None:
        if if_none_match.strip() == b"*":
            return True
        opaque = etag.encode("ascii")[etag.startswith("W/") * 2 :]
        return any(b'"' + tag + b'"' == opaque for _, tag in _ETAGS.findall(if_none_match))
    if if_modified_since is not None:
        since = parse_http_date(if_modified_since)
        return since is not None and int(mtime) <= since
    return False


def if_range_holds(value: bytes, etag: str, last_modified: str) -> bool:
    """Whether the ``Range`` applies given ``If-Range`` (RFC 9110 section
    13.1.5): a strong match of the entity tag, or the exact Last-Modified
    date; otherwise the whole file is sent."""
    value = value.strip()
    if value.startswith((b'"', b"W/")):
        return not value.startswith(b"W/") and value == etag.encode("ascii")
    return value == last_modified.encode("ascii")


def _dot(segment: bytes) -> bool:
    return segment[:1] == b"."


def locate(root: bytes, raw_path: bytes, dotfiles: bool = False) -> Optional[bytes]:
    """The real path, inside ``root`` (a real path itself), that the
    request path ``raw_path`` (percent-encoded, no query) names; None when it
    is refused: not absolute, a NUL byte, a ``..`` segment (encoded or not),
    a dot segment when ``dotfiles`` is False, or a symlink leading out of
    ``root`` (or, without ``dotfiles``, into a dot-folder).  Whether it
    exists is for the caller to find out."""
    if raw_path[:1] != b"/":
        return None
    decoded = parse.unquote_to_bytes(raw_path)
    if b"\0" in decoded:
        return None
    segments = [s for s in decoded.split(b"/") if s and s != b"."]
    for segment in segments:
        if segment == b".." or (not dotfiles and _dot(segment)):
            return None
    real = os.path.realpath(os.path.join(root, *segments)) if segments else root
    if real == root:
        return real
    if not real.startswith(root.rstrip(b"/") + b"/"):
        return None  # a symlink out of the tree
    if not dotfiles and any(_dot(s) for s in real[len(root) :].split(b"/")):
        return None  # a symlink into a dot-folder
    return real


def _shown(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def listing_html(url_path: str, entries: Iterable[Tuple[str, bool]]) -> bytes:
    """An HTML page listing ``entries`` — ``(name, is_folder)``, names as
    ``os.fsdecode`` gives them — of the folder at ``url_path`` (decoded);
    names are escaped, links percent-encoded."""
    title = html.escape(f"Index of {_shown(url_path)}", quote=False)
    lines = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{title}</title></head>",
        f"<body><h1>{title}</h1><ul>",
    ]
    if url_path != "/":
        lines.append('<li><a href="../">../</a></li>')
    for name, is_folder in sorted(entries, key=lambda e: (not e[1], e[0].lower(), e[0])):
        slash = "/" if is_folder else ""
        href = parse.quote(os.fsencode(name)) + slash
        lines.append(f'<li><a href="{href}">{html.escape(_shown(name))}{slash}</a></li>')
    lines.append("</ul></body></html>\n")
    return "\n".join(lines).encode("utf-8")


# ---- the handler --------------------------------------------------------------


class _FileSlice(io.BufferedReader):
    """``length`` bytes of an open file from ``first`` on: a 206 body."""

    def __init__(self, raw: io.FileIO, first: int, length: int) -> None:
        super().__init__(raw)
        self.seek(first)
        self._left = length

    def read(self, size: Optional[int] = -1) -> bytes:
        if size is None or size < 0 or size > self._left:
            size = self._left
        data = super().read(size) if size else b""
        self._left -= len(data)
        return data

    def read1(self, size: int = -1) -> bytes:
        if size < 0 or size > self._left:
            size = self._left
        data = super().read1(size) if size else b""
        self._left -= len(data)
        return data


_date: List[Union[int, str]] = [0, ""]


def _now() -> str:
    """The ``date`` header, made once a second."""
    now = int(time.time())
    if _date[0] != now:
        _date[:] = [now, http_date(now)]
    return str(_date[1])


_TEXT = "text/plain; charset=utf-8"


class DirectoryHandler(BaseRequestHandler):
    """Serves the files below ``root`` (set by :func:`directory_handler`) for
    GET and HEAD; see the module's docstring for what it answers."""

    root: Path = Path(".")
    #: Serve files and folders whose name begins with a dot.
    serve_dotfiles = False
    #: List a folder that has no ``index.html`` (else 404).
    listing = True
    #: ``root`` as a real path (set by directory_handler(), else found per request).
    _root: Optional[bytes] = None
    _file: Optional[IO[bytes]] = None

    def on_headers(self) -> None:
        if self.method not in (b"GET", b"HEAD"):
            self._text(405, b"Method Not Allowed\n", ("allow", "GET, HEAD"))
            return
        raw_path, has_query, query = (self.path or b"/").partition(b"?")
        root = self._root or os.fsencode(os.path.realpath(self.root))
        real = locate(root, raw_path, self.serve_dotfiles)
        info = _stat(real) if real is not None else None
        if real is None or info is None:
            self._text(404, b"Not Found\n")
        elif os.path.isdir(real):
            if not raw_path.endswith(b"/"):
                # Leading slashes collapsed: "//host" would send the client away.
                location = b"/" + raw_path.lstrip(b"/") + b"/" + has_query + query
                self._text(301, b"Moved Permanently\n", ("location", location))
                return
            index = locate(root, raw_path + b"index.html", self.serve_dotfiles)
            index_info = _stat(index) if index is not None else None
            if index is not None and index_info is not None and not os.path.isdir(index):
                self._file_response(index, index_info)
            elif self.listing:
                self._listing(real, raw_path)
            else:
                self._text(404, b"Not Found\n")
        elif raw_path.endswith(b"/"):
            self._text(404, b"Not Found\n")  # a file named as a folder
        else:
            self._file_response(real, info)

    def on_close(self, error_code: int) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _text(self, status: int, body: bytes, *extra: Tuple[str, Union[str, bytes]]) -> None:
        headers: List[Tuple[str, Union[str, bytes]]] = [
            ("date", _now()),
            ("server", SERVER),
            ("content-type", _TEXT),
            ("content-length", str(len(body))),
        ]
        headers.extend(extra)
        self.send_response(status, headers, b"" if self.method == b"HEAD" else body)

    def _listing(self, real: bytes, raw_path: bytes) -> None:
        try:
            with os.scandir(real) as it:
                entries = [
                    (os.fsdecode(e.name), e.is_dir())
                    for e in it
                    if (self.serve_dotfiles or not e.name.startswith(b"."))
                    # A symlink is listed only if it would be served.
                    and (not e.is_symlink() or self._servable(e.path))
                ]
        except OSError:
            self._text(404, b"Not Found\n")
            return
        body = listing_html(os.fsdecode(parse.unquote_to_bytes(raw_path)), entries)
        headers = [
            ("date", _now()),
            ("server", SERVER),
            ("content-type", "text/html; charset=utf-8"),
            ("content-length", str(len(body))),
        ]
        self.send_response(200, headers, b"" if self.method == b"HEAD" else body)

    def _servable(self, path: bytes) -> bool:
        root = self._root or os.fsencode(os.path.realpath(self.root))
        return locate(root, b"/" + os.path.relpath(path, root), self.serve_dotfiles) is not None

    def _file_response(self, real: bytes, info: os.stat_result) -> None:
        size = info.st_size
        etag = f'"{info.st_mtime_ns:x}-{size:x}"'
        last_modified = http_date(info.st_mtime)
        if_none_match = if_modified_since = range_ = if_range = None
        for name, value in self.headers:
            if name == b"if-none-match":
                if_none_match = value
            elif name == b"if-modified-since":
                if_modified_since = value
            elif name == b"range":
                range_ = value
            elif name == b"if-range":
                if_range = value
        validators = [
            ("date", _now()),
            ("server", SERVER),
            ("etag", etag),
            ("last-modified", last_modified),
        ]
        if not_modified(if_none_match, if_modified_since, etag, info.st_mtime):
            # The 200's content-length: HTTP/1.1 would otherwise say 0.
            self.send_response(304, validators + [("content-length", str(size))])
            return
        headers = validators + [("accept-ranges", "bytes")]
        span = None
        if range_ is not None and (
            if_range is None or if_range_holds(if_range, etag, last_modified)
        ):
            try:
                span = parse_range(range_, size)
            except RangeNotSatisfiable:
                self._text(416, b"Range Not Satisfiable\n", ("content-range", f"bytes */{size}"))
                return
        headers.append(("content-type", _content_type(os.fsdecode(os.path.basename(real)))))
        status, first, length = 200, 0, size
        if span is not None:
            status, first, length = 206, span[0], span[1] - span[0] + 1
            headers.append(("content-range", f"bytes {span[0]}-{span[1]}/{size}"))
        headers.append(("content-length", str(length)))
        if self.method == b"HEAD" or length == 0:
            self.send_response(status, headers, b"")
            return
        try:
            raw = io.FileIO(real, "rb")
        except OSError:
            self._text(404, b"Not Found\n")
            return
        body = _FileSlice(raw, first, length) if status == 206 else io.BufferedReader(raw)
        self._file = body
        try:
            self.send_response(status, headers, body)
        except BaseException:
            self.on_close(0)
            raise


def _stat(path: bytes) -> Optional[os.stat_result]:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info if os.access(path, os.R_OK) else None


def directory_handler(
    root: Union[str, os.PathLike[str]], *, serve_dotfiles: bool = False, listing: bool = True
) -> type[DirectoryHandler]:
    """A handler class serving the files below ``root``; ``serve_dotfiles``:
    also names that begin with a dot (``.git``, ``.env``); ``listing``: list
    a folder without ``index.html`` (else 404)."""
    path = Path(root)
    if not path.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    attrs = {
        "root": path,
        "_root": os.fsencode(os.path.realpath(path)),
        "serve_dotfiles": serve_dotfiles,
        "listing": listing,
    }
    return type("DirectoryHandler", (DirectoryHandler,), attrs)


def _demo_file(name: str) -> bytes:
    return resources.files(__package__).joinpath("demo").joinpath(name).read_bytes()


class DemoHandler(BaseRequestHandler):
    """The embedded demo page; pushes its stylesheet with it."""

    def on_headers(self) -> None:
        path = (self.path or b"/").split(b"?", 1)[0]
        if path in (b"/", b"/index.html"):
            try:
                self.push(
                    "/style.css",
                    headers=[("content-type", "text/css; charset=utf-8")],
                    body=_demo_file("style.css"),
                )
            except PushError:
                pass  # the client disabled push: it will ask for the stylesheet itself
            self.send_response(
                200, [("content-type", "text/html; charset=utf-8")], _demo_file("index.html")
            )
        elif path == b"/style.css":
            self.send_response(
                200, [("content-type", "text/css; charset=utf-8")], _demo_file("style.css")
            )
        else:
            self.send_response(404, [("content-type", "text/plain; charset=utf-8")], b"Not Found\n")
