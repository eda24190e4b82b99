"""``python -m nghttp2``: serve a directory, the demo page, or your handler
over HTTP/2 (TLS by default).

Every flag can also come from the environment: ``--port`` from
``NGHTTP2_SERVER_PORT``, ``--no-tls`` from ``NGHTTP2_SERVER_NO_TLS=1``, the
folder from ``NGHTTP2_SERVER_DIRECTORY``; the command line wins.  A mistake
(a missing file, a port in use, a module that does not compile) ends the
program with one line saying what is wrong, not a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import logging
import logging.config
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
from importlib import import_module
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type

from .files import DemoHandler, directory_handler
from .handler import BaseRequestHandler
from .limits import Limits
from .proxy import ProxyHeaders
from .server import HTTP2Server
from .tls import (
    CERT_REQS,
    development_certificate,
    require_client_certificates,
    server_context,
)
from .workers import LOOPS, loop_factory, serve_workers
from .workers import run as run_on_loop

#: ``--port`` comes from ``NGHTTP2_SERVER_PORT``, and so on.
ENV_PREFIX = "NGHTTP2_SERVER_"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class CommandLineError(Exception):
    """A mistake in what the user asked for: printed as one line; the
    program exits with ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        """One line (argparse prints the usage too)."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def version() -> str:
    """``nghttp2-cffi X.Y.Z (libnghttp2 A.B.C, CPython 3.x.y, events built in C)``:
    the last part says whether nghttp2_cffi._events is loaded (else ``in Python``)."""
    import platform

    import nghttp2_cffi
    from nghttp2_cffi.session import EVENTS_IN_C

    return (
        f"nghttp2-cffi {nghttp2_cffi.__version__} (libnghttp2 {nghttp2_cffi.VERSION}, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"events built in {'C' if EVENTS_IN_C else 'Python'})"
    )


# ---- argument types ------------------------------------------------------


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (0-65535)")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a number >= 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds >= 0")
    return value


def _cert_reqs(text: str) -> str:
    names = {str(int(number)): name for name, number in CERT_REQS.items()}
    name = names.get(text, text.lower())
    if name not in CERT_REQS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of none, optional, required")
    return name


def _limit_value(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if text.lower() == "none":
            return None
        try:
            if kind is tuple:
                burst, _, rate = text.partition(",")
                return (int(burst), int(rate))
            return kind(text)
        except ValueError:
            shape = "BURST,RATE" if kind is tuple else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {shape} or none") from None

    return parse


def _limit_unit(name: str) -> str:
    if name.endswith("_timeout"):
        return "seconds"
    if name.endswith("_size"):
        return "bytes"
    if name == "stream_reset_rate":
        return "resets, resets per second"
    if name == "glitch_rate":
        return "glitches per second"
    if name == "glitch_burst":
        return "glitches"
    return {"max_concurrent_streams": "streams", "max_connections": "connections"}.get(
        name, "frames" if name.startswith("max_continuations") else "count"
    )


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
            metavar="BURST,RATE"
            if kind is tuple
            else {"seconds": "SECONDS", "bytes": "BYTES"}.get(_limit_unit(field.name), "N"),
            help=f"{_limit_unit(field.name)}; default {shown}",
        )


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(**{f.name: getattr(args, f"limit_{f.name}") for f in dataclasses.fields(Limits)})


# ---- the environment -----------------------------------------------------


def env_name(action: argparse.Action) -> Optional[str]:
    """``NGHTTP2_SERVER_PORT`` for ``--port``; None for --help and --version."""
    if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
        return None
    longs = [o for o in action.option_strings if o.startswith("--")]
    name = longs[0][2:] if longs else action.dest
    return ENV_PREFIX + name.replace("-", "_").upper()


def _apply_environment(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Each flag's default from its environment variable, parsed as the flag
    would be; and ``[$NAME]`` in its help."""
    for action in parser._actions:
        name = env_name(action)
        if name is None:
            continue
        if action.help is not None and action.help is not argparse.SUPPRESS:
            action.help += f" [${name}]"
        raw = environ.get(name)
        if raw is None:
            continue
        value: Any = raw
        if isinstance(action, argparse._StoreConstAction):  # store_true / store_false
            if raw.lower() not in _TRUE + _FALSE:
                parser.error(f"{name}={raw!r}: say 1 or 0 (true/false, yes/no, on/off)")
            value = action.const if raw.lower() in _TRUE else action.default
        elif action.type is not None:
            try:
                value = action.type(raw)  # type: ignore[operator]
            except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
                parser.error(f"{name}={raw!r}: {exc}")
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            parser.error(f"{name}={raw!r}: not one of {choices}")
        action.default = value
        if not action.option_strings:
            action.required = False


def parse_args(
    argv: Optional[List[str]],
    prog: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> argparse.Namespace:
    """*prog* names how the server was started in usage lines: ``python -m
    nghttp2`` or the ``nghttp2-server`` script (argparse's default, the name
    the script was run by).  *environ*: where ``NGHTTP2_SERVER_*`` variables
    are read (default ``os.environ``)."""
    parser = _Parser(
        prog=prog,
        description="An HTTP/2 server on nghttp2. With no DIRECTORY and no --handler it "
        "serves a demo page and pushes its stylesheet. Every flag can also be set in "
        "the environment variable shown after it (1/0 for on/off flags).",
    )
    parser.add_argument("--version", action="version", version=version())
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
    app = parser.add_argument_group("what to serve")
    app.add_argument(
        "--handler", metavar="MODULE:CLASS", help="serve with your BaseRequestHandler subclass"
    )
    app.add_argument(
        "--asgi",
        metavar="MODULE:APP",
        help="serve an ASGI 3 application (HTTP, WebSockets, lifespan)",
    )
    app.add_argument(
        "--app-dir",
        default=".",
        metavar="DIR",
        help="where --handler and --asgi modules are imported from (default: the current folder)",
    )
    app.add_argument(
        "--lifespan",
        default="auto",
        choices=["auto", "on", "off"],
        help="ASGI lifespan: auto (if the app supports it), on, off (default auto)",
    )
    app.add_argument(
        "--root-path",
        default="",
        metavar="PATH",
        help="ASGI root_path: the prefix a proxy mounts the app at (e.g. /api)",
    )
    app.add_argument(
        "--reload",
        action="store_true",
        help="development: restart when a .py file under --app-dir changes "
        "(needs watchfiles: pip install 'nghttp2-cffi[reload]')",
    )
    net = parser.add_argument_group("where to listen")
    net.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; '' for all)"
    )
    net.add_argument(
        "--port", type=_port, default=None, help="port (default 8443 with TLS, 8080 with --no-tls)"
    )
    net.add_argument("--uds", metavar="PATH", help="listen on this Unix socket instead")
    net.add_argument(
        "--fd",
        type=int,
        metavar="N",
        help="serve on this inherited, bound socket (file descriptor N; systemd, "
        "socket managers) instead",
    )
    net.add_argument(
        "--backlog",
        type=_count,
        default=1024,
        metavar="N",
        help="connections waiting to be accepted (default 1024)",
    )
    net.add_argument(
        "--proxy-headers",
        action="store_true",
        help="behind a proxy: take the client's address and scheme from Forwarded "
        "(RFC 7239) or X-Forwarded-For/-Proto, sent by --forwarded-allow-ips peers",
    )
    net.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        metavar="IPS",
        help="comma-separated addresses or networks of trusted proxies, or * "
        "(default 127.0.0.1; Unix socket peers are trusted)",
    )
    tls = parser.add_argument_group("TLS")
    tls.add_argument(
        "--no-tls",
        action="store_true",
        help="cleartext: h2c (prior knowledge or Upgrade) and HTTP/1.1",
    )
    tls.add_argument("--cert", help="certificate chain (PEM); default: a development certificate")
    tls.add_argument("--key", help="private key (PEM) for --cert")
    tls.add_argument(
        "--ssl-keyfile-password", metavar="PASSWORD", help="password of an encrypted --key"
    )
    tls.add_argument(
        "--ssl-ca-certs",
        metavar="FILE",
        help="mutual TLS: CA certificates (PEM) that client certificates must chain to",
    )
    tls.add_argument(
        "--ssl-cert-reqs",
        type=_cert_reqs,
        default=None,
        metavar="{none,optional,required}",
        help="client certificates with --ssl-ca-certs: none, optional or required "
        "(default required; 0, 1, 2 as uvicorn takes them)",
    )
    run = parser.add_argument_group("running")
    run.add_argument("--no-access-log", action="store_true", help="no line per response")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument(
        "--log-config",
        metavar="FILE",
        help="logging configuration: a dictConfig .json file, else an INI file for "
        "logging.config.fileConfig",
    )
    run.add_argument(
        "--loop",
        default="auto",
        choices=LOOPS,
        help="event loop: auto (default: uvloop if installed, else asyncio), asyncio, uvloop",
    )
    run.add_argument(
        "--workers",
        type=_count,
        default=1,
        metavar="N",
        help="N processes sharing the port with SO_REUSEPORT (default 1); "
        "SIGTERM to the parent stops them all gracefully",
    )
    run.add_argument(
        "--graceful-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="on SIGINT/SIGTERM, seconds in-flight requests get to finish before "
        "their connections close (default 30; a second Ctrl-C forces the exit)",
    )
    _add_limit_flags(parser.add_argument_group("limits and timeouts ('none' turns one off)"))
    _apply_environment(parser, os.environ if environ is None else environ)
    args = parser.parse_args(argv)
    if sum(map(bool, (args.directory, args.handler, args.asgi))) > 1:
        parser.error("give one of DIRECTORY, --handler and --asgi")
    if args.key and not args.cert:
        parser.error("--key goes with --cert")
    if args.no_tls and (args.cert or args.ssl_ca_certs):
        parser.error(f"{'--cert' if args.cert else '--ssl-ca-certs'} makes no sense with --no-tls")
    if args.ssl_cert_reqs not in (None, "none") and not args.ssl_ca_certs:
        parser.error(f"--ssl-cert-reqs {args.ssl_cert_reqs} needs --ssl-ca-certs")
    if sum(x is not None for x in (args.uds, args.fd, args.port)) > 1:
        parser.error("give one of --port, --uds and --fd")
    if args.reload and args.workers > 1:
        parser.error("--reload runs one server process: drop --workers")
    return args


# ---- building the server from the arguments ------------------------------


def _module_error(flag: str, spec: str, exc: BaseException) -> CommandLineError:
    what = "ASGI app" if flag == "--asgi" else "handler"
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename}:{exc.lineno}" if exc.filename else "?"
        return CommandLineError(f"cannot load {what} {spec!r}: {where}: {exc.msg}")
    return CommandLineError(f"cannot load {what} {spec!r}: {exc}")


def _load_handler(spec: str) -> type[BaseRequestHandler]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CommandLineError(f"--handler takes module:Class, not {spec!r}")
    try:
        obj = getattr(import_module(module_name), attr)
    except (ImportError, AttributeError, SyntaxError) as exc:
        raise _module_error("--handler", spec, exc) from exc
    if not (isinstance(obj, type) and issubclass(obj, BaseRequestHandler)):
        raise CommandLineError(f"--handler {spec} is not a subclass of BaseRequestHandler")
    return obj


def _check_file(flag: str, path: str) -> None:
    if not os.path.exists(path):
        raise CommandLineError(f"{flag} {path}: no such file")
    if not os.path.isfile(path):
        raise CommandLineError(f"{flag} {path}: not a file")
    if not os.access(path, os.R_OK):
        raise CommandLineError(f"{flag} {path}: permission denied")


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def _certificate_error(args: argparse.Namespace, exc: ssl.SSLError) -> CommandLineError:
    """Which file of --cert/--key is wrong, and how."""
    cert, key = args.cert, args.key or args.cert
    key_flag = "--key" if args.key else "--cert"
    if b"-----BEGIN CERTIFICATE-----" not in _read(cert):
        return CommandLineError(f"--cert {cert}: not a PEM certificate")
    key_pem = _read(key)
    if b"PRIVATE KEY-----" not in key_pem:
        if not args.key:
            return CommandLineError(f"--cert {cert}: holds no private key; give it with --key")
        return CommandLineError(f"--key {key}: not a PEM private key")
    if b"ENCRYPTED" in key_pem:
        if not args.ssl_keyfile_password:
            return CommandLineError(
                f"{key_flag} {key}: the key is encrypted; give its --ssl-keyfile-password"
            )
        return CommandLineError(f"--ssl-keyfile-password: wrong password for {key}")
    reason = getattr(exc, "reason", None) or str(exc)
    if reason == "KEY_VALUES_MISMATCH":
        return CommandLineError(f"{key_flag} {key}: not the private key of --cert {cert}")
    return CommandLineError(f"--cert {cert}: {reason}")


def _tls(args: argparse.Namespace) -> Tuple[Optional[ssl.SSLContext], str, Optional[str]]:
    """The server's TLS context, what to say about it, and the development
    CA's path (None unless the development certificate is used)."""
    if args.no_tls:
        return None, "cleartext: h2c and HTTP/1.1", None
    ca = None
    if args.cert:
        _check_file("--cert", args.cert)
        if args.key:
            _check_file("--key", args.key)
        if b"ENCRYPTED" in _read(args.key or args.cert) and not args.ssl_keyfile_password:
            # (else OpenSSL would ask for the password on the terminal)
            key_flag = "--key" if args.key else "--cert"
            raise CommandLineError(
                f"{key_flag} {args.key or args.cert}: the key is encrypted; "
                "give its --ssl-keyfile-password"
            )
        try:
            context = server_context(args.cert, args.key, args.ssl_keyfile_password)
        except ssl.SSLError as exc:
            raise _certificate_error(args, exc) from None
        note = "TLS: HTTP/2 and HTTP/1.1"
    else:
        files = development_certificate()
        context = server_context(str(files.cert), str(files.key))
        ca = str(files.ca)
        note = "TLS: HTTP/2 and HTTP/1.1, development certificate"
    if args.ssl_ca_certs:
        _check_file("--ssl-ca-certs", args.ssl_ca_certs)
        reqs = args.ssl_cert_reqs or "required"
        try:
            require_client_certificates(context, args.ssl_ca_certs, reqs)
        except ssl.SSLError:
            raise CommandLineError(
                f"--ssl-ca-certs {args.ssl_ca_certs}: no PEM certificate in it"
            ) from None
        note += f", client certificates {reqs}"
    return context, note, ca


def _unix_socket(path: str) -> socket.socket:
    """A bound Unix socket at ``path``; a stale socket file (nobody listens)
    is replaced, a live one is an error."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(mode):
            raise CommandLineError(f"--uds {path}: exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # left by a server that died
            else:
                raise CommandLineError(f"--uds {path}: in use: another server listens there")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise CommandLineError(f"--uds {path}: {exc.strerror}") from None
    return sock


def _remove_socket_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _inherited_socket(fd: int) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise CommandLineError(f"--fd {fd}: not an open socket ({exc.strerror})") from None
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise CommandLineError(f"--fd {fd}: not a stream socket")
    return sock


def _bind_error(exc: OSError, args: argparse.Namespace, port: int) -> str:
    """One line for a failed bind."""
    host = args.host or "*"
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"{where} is in use: another server listens there (--port)"
    if exc.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need privileges; --port)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"--host {args.host}: not an address of this machine"
    if isinstance(exc, socket.gaierror):
        return f"--host {args.host}: {exc.strerror}"
    return f"{where}: {exc.strerror or exc}"


def _configure_logging(args: argparse.Namespace) -> None:
    if not args.log_config:
        logging.basicConfig(
            level=getattr(logging, args.log_level.upper()),
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
        )
        return
    path = args.log_config
    _check_file("--log-config", path)
    import configparser

    try:
        if path.endswith(".json"):
            with open(path, encoding="utf-8") as file:
                logging.config.dictConfig(json.load(file))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except (ValueError, KeyError, TypeError, AttributeError, ImportError) as exc:
        raise CommandLineError(f"--log-config {path}: {exc}") from None
    except (configparser.Error, RuntimeError) as exc:  # RuntimeError: Python 3.12+
        message = str(exc).splitlines()[0]
        raise CommandLineError(f"--log-config {path}: {message}") from None


def main(argv: Optional[List[str]] = None, prog: Optional[str] = None) -> int:
    args = parse_args(argv, prog)
    if args.reload:
        try:
            return _serve_with_reload(args, sys.argv[1:] if argv is None else argv, prog)
        except CommandLineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.status
    cleanup: List[Callable[[], None]] = []
    try:
        return _serve(args, cleanup)
    except CommandLineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    finally:
        for action in cleanup:
            action()


def _serve(args: argparse.Namespace, cleanup: List[Callable[[], None]]) -> int:
    _configure_logging(args)
    try:
        loop_factory(args.loop)
    except ImportError as exc:
        raise CommandLineError(str(exc), status=2) from None
    app_dir = os.path.abspath(args.app_dir)
    if not os.path.isdir(app_dir):
        raise CommandLineError(f"--app-dir {args.app_dir}: no such folder")
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)

    app = None
    if args.asgi:
        from .asgi import load_app

        try:
            app, what = load_app(args.asgi), f"the ASGI app {args.asgi}"
        except (ImportError, AttributeError, ValueError, TypeError, SyntaxError) as exc:
            raise _module_error("--asgi", args.asgi, exc) from exc
    elif args.handler:
        handler, what = _load_handler(args.handler), args.handler
    elif args.directory:
        if not os.path.isdir(args.directory):
            state = "not a folder" if os.path.exists(args.directory) else "no such folder"
            raise CommandLineError(f"DIRECTORY {args.directory}: {state}")
        handler = directory_handler(
            args.directory, serve_dotfiles=args.serve_dotfiles, listing=not args.no_listing
        )
        what = f"the folder {os.path.abspath(args.directory)}"
    else:
        handler, what = DemoHandler, "the demo page"

    context, tls_note, dev_ca = _tls(args)
    try:
        proxy = ProxyHeaders(args.forwarded_allow_ips) if args.proxy_headers else None
    except ValueError as exc:
        raise CommandLineError(f"--forwarded-allow-ips: {exc}") from None

    sock = None
    if args.uds is not None:
        sock = _unix_socket(args.uds)
        cleanup.append(lambda: _remove_socket_file(args.uds))
    elif args.fd is not None:
        sock = _inherited_socket(args.fd)
    if sock is not None:
        cleanup.append(sock.close)
    port = args.port if args.port is not None else (8080 if args.no_tls else 8443)
    options: Dict[str, Any] = {
        "ssl": context,
        "limits": limits_from(args),
        "access_log": not args.no_access_log,
        "loop": args.loop,
        "workers": args.workers,
        "backlog": args.backlog,
        "shutdown_timeout": args.graceful_timeout,
        "sock": sock,
        "proxy_headers": proxy,
    }
    startup_failure: Tuple[Type[BaseException], ...] = ()  # `except ()` catches nothing
    if app is not None:
        from .asgi import ASGIServer, LifespanFailure

        startup_failure = (LifespanFailure,)
        server: HTTP2Server = ASGIServer(
            (args.host, port), app, lifespan=args.lifespan, root_path=args.root_path, **options
        )
    else:
        server = HTTP2Server((args.host, port), handler, **options)

    def announce(url: str) -> None:
        if sock is not None and sock.family == socket.AF_UNIX:
            where, curl_target = f"unix:{args.uds} ({url})", f"--unix-socket {args.uds} {url}"
        else:
            where, curl_target = url, url
        if args.no_tls:
            curl = f"curl --http2-prior-knowledge {curl_target}"
        elif dev_ca is not None:
            curl = f"curl --http2 --cacert {dev_ca} {curl_target}"
        else:
            curl = f"curl --http2 {curl_target}"
        print(f"Serving {what} on {where} ({tls_note})", flush=True)
        if dev_ca is not None:
            print(
                f"Development certificate: trust its CA {dev_ca} (curl --cacert, "
                "ssl.create_default_context(cafile=...) for nghttp2.Client)",
                flush=True,
            )
        nghttp = "" if curl_target != url else f"\n      nghttp -v {url}"  # no Unix sockets
        print(f"Try:  {curl}{nghttp}\nCtrl-C stops.", flush=True)

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
    except OSError as exc:
        raise CommandLineError(_bind_error(exc, args, port)) from None
    except startup_failure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _serve_with_reload(args: argparse.Namespace, argv: List[str], prog: Optional[str]) -> int:
    """Run the server in a child process; restart it when a ``.py`` file
    under --app-dir changes (watchfiles), until Ctrl-C or SIGTERM."""
    try:
        # Not a typed import: mypy would follow watchfiles into anyio, whose
        # sources do not parse for Python 3.9 (the target version here).
        watchfiles: Any = import_module("watchfiles")
    except ImportError:
        raise CommandLineError(
            "--reload needs the watchfiles package: pip install 'nghttp2-cffi[reload]'"
        ) from None
    app_dir = os.path.abspath(args.app_dir)
    if not os.path.isdir(app_dir):
        raise CommandLineError(f"--app-dir {args.app_dir}: no such folder")
    command = [sys.executable, "-m", "nghttp2", *(a for a in argv if a != "--reload")]
    env = dict(os.environ, **{ENV_PREFIX + "RELOAD": "0"})
    print(f"Watching {app_dir} for .py changes (--reload)", file=sys.stderr, flush=True)

    def start() -> subprocess.Popen[bytes]:
        # Its own session: a Ctrl-C reaches this process only, which passes
        # it on once (a second one makes the child force its exit).
        return subprocess.Popen(command, env=env, start_new_session=True)

    def stop(child: subprocess.Popen[bytes]) -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        while True:
            try:
                child.wait(args.graceful_timeout + 5)
                return
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
                return
            except KeyboardInterrupt:  # a second Ctrl-C: the child forces its exit
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    child = start()
    try:
        for changes in watchfiles.watch(app_dir, watch_filter=watchfiles.PythonFilter()):
            names = sorted({os.path.relpath(path, app_dir) for _, path in changes})
            print(f"reload: {', '.join(names)} changed; restarting", file=sys.stderr, flush=True)
            stop(child)
            child = start()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop(child)
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m nghttp2.server"))
