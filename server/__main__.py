"""``python -m nghttp2``: serve a directory, the demo page, or your handler
over HTTP/2 (TLS by default)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import os
import sys
from typing import Any, Callable, Optional, Tuple, Type

from .files import DemoHandler, directory_handler
from .handler import BaseRequestHandler
from .limits import Limits
from .server import HTTP2Server
from .tls import development_context, server_context
from .workers import LOOPS, loop_factory, serve_workers
from .workers import run as run_on_loop


def _load_handler(spec: str) -> type[BaseRequestHandler]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SystemExit(f"--handler takes module:Class, not {spec!r}")
    sys.path.insert(0, os.getcwd())
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise SystemExit(f"cannot load handler {spec!r}: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, BaseRequestHandler)):
        raise SystemExit(f"{spec} is not a subclass of BaseRequestHandler")
    return obj


def _limit_value(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if text.lower() == "none":
            return None
        if kind is tuple:
            burst, _, rate = text.partition(",")
            return (int(burst), int(rate))
        return kind(text)

    return parse


def _add_limit_flags(group: argparse._ArgumentGroup) -> None:
    """One flag per Limits field: --max-concurrent-streams and so on."""
    for field in dataclasses.fields(Limits):
        default = field.default
        kind = tuple if isinstance(default, tuple) else float if "timeout" in field.name else int
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        group.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=f"limit_{field.name}",
            type=_limit_value(kind),
            default=default,
            metavar="BURST,RATE" if kind is tuple else "N",
            help=f"default {shown}",
        )


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(**{f.name: getattr(args, f"limit_{f.name}") for f in dataclasses.fields(Limits)})


def parse_args(argv: Optional[list[str]], prog: Optional[str] = None) -> argparse.Namespace:
    """*prog* names how the server was started in usage lines: ``python -m
    nghttp2`` or the ``nghttp2-server`` script (argparse's default, the name
    the script was run by)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="An HTTP/2 server on nghttp2. With no DIRECTORY and no --handler it "
        "serves a demo page and pushes its stylesheet.",
    )
    parser.add_argument("directory", nargs="?", help="serve the files below this folder")
    files = parser.add_argument_group("serving a DIRECTORY")
    files.add_argument(
        "--serve-dotfiles",
        action="store_true",
        help="also serve files and folders whose name begins with a dot (.git, .env)",
    )
    files.add_argument(
        "--no-listing",
        action="store_true",
        help="a folder without index.html is 404, not a listing",
    )
    parser.add_argument(
        "--handler", metavar="MODULE:CLASS", help="serve with your BaseRequestHandler subclass"
    )
    parser.add_argument(
        "--asgi",
        metavar="MODULE:APP",
        help="serve an ASGI 3 application (HTTP, WebSockets, lifespan)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; '' for all)"
    )
    parser.add_argument(
        "--port", type=int, default=None, help="port (default 8443 with TLS, 8080 with --no-tls)"
    )
    parser.add_argument(
        "--no-tls",
        action="store_true",
        help="cleartext: h2c (prior knowledge or Upgrade) and HTTP/1.1",
    )
    parser.add_argument("--cert", help="certificate chain (PEM); default: a self-signed one")
    parser.add_argument("--key", help="private key (PEM) for --cert")
    parser.add_argument("--no-access-log", action="store_true", help="no line per response")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--loop",
        default="asyncio",
        choices=LOOPS,
        help="event loop: asyncio (default), uvloop, or auto (uvloop if installed)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="N processes sharing the port with SO_REUSEPORT (default 1); "
        "SIGTERM to the parent stops them all gracefully",
    )
    _add_limit_flags(parser.add_argument_group("limits and timeouts ('none' turns one off)"))
    args = parser.parse_args(argv)
    if sum(map(bool, (args.directory, args.handler, args.asgi))) > 1:
        parser.error("give one of DIRECTORY, --handler and --asgi")
    if args.key and not args.cert:
        parser.error("--key goes with --cert")
    if args.no_tls and args.cert:
        parser.error("--cert makes no sense with --no-tls")
    if args.workers < 1:
        parser.error("--workers takes a number >= 1")
    return args


def main(argv: Optional[list[str]] = None, prog: Optional[str] = None) -> int:
    args = parse_args(argv, prog)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        loop_factory(args.loop)
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = None
    if args.asgi:
        from .asgi import load_app

        try:
            app, what = load_app(args.asgi), f"the ASGI app {args.asgi}"
        except (ImportError, AttributeError, ValueError, TypeError) as exc:
            raise SystemExit(f"cannot load ASGI app {args.asgi!r}: {exc}") from exc
    elif args.handler:
        handler, what = _load_handler(args.handler), args.handler
    elif args.directory:
        handler, what = (
            directory_handler(
                args.directory, serve_dotfiles=args.serve_dotfiles, listing=not args.no_listing
            ),
            f"the folder {args.directory}",
        )
    else:
        handler, what = DemoHandler, "the demo page"

    if args.no_tls:
        context, tls_note = None, "cleartext: h2c and HTTP/1.1"
    elif args.cert:
        context, tls_note = server_context(args.cert, args.key), "TLS: HTTP/2 and HTTP/1.1"
    else:
        context = development_context()
        tls_note = "TLS: HTTP/2 and HTTP/1.1, self-signed development certificate"
    port = args.port if args.port is not None else (8080 if args.no_tls else 8443)
    options = {
        "ssl": context,
        "limits": limits_from(args),
        "access_log": not args.no_access_log,
        "loop": args.loop,
        "workers": args.workers,
    }
    startup_failure: Tuple[Type[BaseException], ...] = ()  # `except ()` catches nothing
    if app is not None:
        from .asgi import ASGIServer, LifespanFailure

        startup_failure = (LifespanFailure,)
        server: HTTP2Server = ASGIServer((args.host, port), app, **options)
    else:
        server = HTTP2Server((args.host, port), handler, **options)

    def announce(url: str) -> None:
        curl = (
            f"curl --http2-prior-knowledge {url}"
            if args.no_tls
            else (f"curl --http2 {'-k ' if not args.cert else ''}{url}")
        )
        print(f"Serving {what} on {url} ({tls_note})", flush=True)
        print(f"Try:  {curl}\n      nghttp -v {url}\nCtrl-C stops.", flush=True)

    async def run() -> None:
        await server.start()
        announce(server.url)
        await server.serve_until_signal()

    try:
        if args.workers > 1:
            return serve_workers(server, ready=announce)
        run_on_loop(run(), args.loop)
    except KeyboardInterrupt:
        pass
    except (OSError, *startup_failure) as exc:  # type: ignore[misc]
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m nghttp2.server"))
