"""Request handlers that serve files: a directory, or the embedded demo page."""

from __future__ import annotations

import mimetypes
import os
from importlib import resources
from pathlib import Path
from typing import Optional, Union
from urllib.parse import unquote

from .errors import PushError
from .handler import BaseRequestHandler


def _content_type(name: str) -> str:
    ctype, encoding = mimetypes.guess_type(name)
    if ctype is None or encoding is not None:
        return "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
        return f"{ctype}; charset=utf-8"
    return ctype


class DirectoryHandler(BaseRequestHandler):
    """Serves the files below ``root`` (set by :func:`directory_handler`) for
    GET and HEAD; ``index.html`` for a folder; 404 outside the tree."""

    root: Path = Path(".")

    def on_headers(self) -> None:
        if self.method not in (b"GET", b"HEAD"):
            self.send_response(405, [("allow", "GET, HEAD")], b"")
            return
        target = self._resolve()
        if target is None:
            self.send_response(404, [("content-type", "text/plain; charset=utf-8")], b"Not Found\n")
            return
        size = target.stat().st_size
        headers = [("content-type", _content_type(target.name)), ("content-length", str(size))]
        if self.method == b"HEAD":
            self.send_response(200, headers)
            return
        body = open(target, "rb")  # noqa: SIM115 - closed by the server at stream close
        self.exchange.owns_reader = True  # the server closes it once sent
        self.send_response(200, headers, body)

    def _resolve(self) -> Optional[Path]:
        path = unquote((self.path or b"/").split(b"?", 1)[0].decode("utf-8", "replace"))
        root = self.root.resolve()
        target = (root / path.lstrip("/")).resolve()
        if target != root and root not in target.parents:
            return None
        if target.is_dir():
            target = target / "index.html"
        return target if target.is_file() and os.access(target, os.R_OK) else None


def directory_handler(root: Union[str, os.PathLike[str]]) -> type[DirectoryHandler]:
    """A handler class serving the files below ``root``."""
    path = Path(root)
    if not path.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    return type("DirectoryHandler", (DirectoryHandler,), {"root": path})


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
