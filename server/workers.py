"""Running a server: the choice of event loop, and N worker processes.

``loop``: ``"auto"`` (the default, as uvicorn's: uvloop when it is
installed, else asyncio; always asyncio on PyPy, which uvloop does not
support), ``"asyncio"``, ``"uvloop"`` (an ImportError that says what to
install when uvloop is missing) or a callable that returns a new event
loop.  ``pip install nghttp2-cffi[uvloop]`` installs uvloop on CPython.

Workers: :func:`serve_workers` forks N processes; each runs its own event
loop and its own listening socket with ``SO_REUSEPORT`` on the same port,
so the kernel spreads new connections across them.  SIGTERM or SIGINT to
the parent forwards SIGTERM to every worker, each shuts down gracefully
(GOAWAY, in-flight streams finish), and the parent returns once all have
exited.  A worker that dies on its own is replaced.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import multiprocessing
import os
import select
import signal
import socket
import time
from multiprocessing.connection import wait as wait_for
from typing import TYPE_CHECKING, Any, Awaitable, Callable, List, Optional, Tuple, TypeVar, Union

if TYPE_CHECKING:
    from .server import HTTP2Server

log = logging.getLogger("nghttp2.server")

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]
LoopOption = Union[None, str, LoopFactory]

#: The names ``loop`` takes.
LOOPS = ("auto", "asyncio", "uvloop")
#: Seconds the parent waits for its workers to listen.
STARTUP_TIMEOUT = 30.0
#: A worker that dies sooner than this after starting is not replaced: it
#: would only die again.
MIN_WORKER_LIFETIME = 2.0


def loop_factory(loop: LoopOption = None) -> LoopFactory:
    """The callable making new event loops for the ``loop`` option."""
    if loop == "asyncio":
        return asyncio.new_event_loop
    if callable(loop):
        return loop
    if loop is None or loop in ("uvloop", "auto"):
        try:
            import uvloop
        except ImportError as exc:
            if loop != "uvloop":
                return asyncio.new_event_loop
            raise ImportError(
                "loop='uvloop' needs the uvloop package: pip install uvloop "
                "(or nghttp2-cffi[uvloop]); or use loop='asyncio' or 'auto'"
            ) from exc
        return uvloop.new_event_loop
    raise ValueError(f"loop must be one of {', '.join(LOOPS)} or a callable, not {loop!r}")


def loop_name(loop: LoopOption = None) -> str:
    """What ``loop`` resolves to: ``asyncio``, ``uvloop`` or the factory's name."""
    factory = loop_factory(loop)
    if factory is asyncio.new_event_loop:
        return "asyncio"
    module = getattr(factory, "__module__", "") or ""
    return "uvloop" if module.startswith("uvloop") else getattr(factory, "__name__", repr(factory))


def run(main: Awaitable[T], loop: LoopOption = None) -> T:
    """``asyncio.run(main)`` on a new loop made as ``loop`` says (Python 3.9+)."""
    factory = loop_factory(loop)
    runner_class = getattr(asyncio, "Runner", None)  # Python 3.11+
    if runner_class is not None:
        with runner_class(loop_factory=factory) as runner:
            return runner.run(main)
    event_loop = factory()
    try:
        asyncio.set_event_loop(event_loop)
        return event_loop.run_until_complete(main)
    finally:
        try:
            _cancel_all_tasks(event_loop)
            event_loop.run_until_complete(event_loop.shutdown_asyncgens())
            event_loop.run_until_complete(event_loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            event_loop.close()


def _cancel_all_tasks(event_loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(event_loop) if not t.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    event_loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


# ---- worker processes --------------------------------------------------


def _url(server: HTTP2Server, port: int) -> str:
    host = server.host or "127.0.0.1"
    if server.sock is not None:
        if server.sock.family == getattr(socket, "AF_UNIX", None):
            return f"{'https' if server.ssl else 'http'}://localhost/"
        host, port = server.sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if server.ssl else 'http'}://{host}:{port}/"


def check_port_free(host: Optional[str], port: int) -> None:
    """Raise the bind's OSError (EADDRINUSE...) when another socket holds
    ``host:port``: a plain bind, without SO_REUSEPORT, which would let a
    second server share the port with the first."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)


def _reserve_port(server: HTTP2Server) -> Optional[socket.socket]:
    """For port 0: bind (without listening) a SO_REUSEPORT socket so that
    every worker gets the same free port.  It never accepts anything."""
    if server.sock is not None:
        return None  # the workers share the one socket they inherit
    if server.port:
        check_port_free(server.host, server.port)
        return None
    host = server.host or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))
    server.port = sock.getsockname()[1]
    return sock


def _worker_main(server: HTTP2Server, ready_fd: int, parent_fds: Tuple[int, ...]) -> None:
    # Forked: drop the parent's signal handling before anything else.
    signal.set_wakeup_fd(-1)
    # Ctrl-C reaches the whole process group: the parent passes it on as
    # SIGTERM, once per Ctrl-C (the second forces the exit).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for fd in parent_fds:
        os.close(fd)
    server.workers = 1
    server.reuse_port = True

    async def main() -> None:
        await server.start()
        os.write(ready_fd, b"r")
        os.close(ready_fd)
        await server.serve_until_signal((signal.SIGTERM,))

    run(main(), server.loop)


def serve_workers(server: HTTP2Server, ready: Optional[Callable[[str], Any]] = None) -> int:
    """Serve with ``server.workers`` processes until SIGINT/SIGTERM.

    ``ready(url)`` is called once every worker listens.  Returns 0 after a
    graceful stop, 1 when the workers could not start.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise RuntimeError("workers need SO_REUSEPORT, which this platform lacks")
    count = server.workers
    context = multiprocessing.get_context("fork")
    reserved = _reserve_port(server)
    ready_r, ready_w = os.pipe()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    stopping = False
    workers: List[Any] = []

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        if stopping:
            log.warning("second signal: forcing the workers to exit")
            _terminate(workers)
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous_wakeup = signal.set_wakeup_fd(wake_w)

    def spawn() -> Any:
        process = context.Process(
            target=_worker_main,
            args=(server, ready_w, (ready_r, wake_r, wake_w)),
            name="http2-worker",
            daemon=False,
        )
        process.start()
        process.started_at = time.monotonic()  # type: ignore[attr-defined]
        return process

    workers.extend(spawn() for _ in range(count))
    try:
        if not _wait_ready(ready_r, workers, count, lambda: stopping):
            log.error("workers did not start; stopping")
            _stop(workers, server.shutdown_timeout)
            return 1
        log.info(
            "%d workers (pids %s) listening on %s",
            count,
            " ".join(str(p.pid) for p in workers),
            _url(server, server.port),
        )
        if ready is not None:
            ready(_url(server, server.port))
        while not stopping:
            wait_for([p.sentinel for p in workers] + [wake_r], timeout=1.0)
            _drain(wake_r)
            if stopping:
                break
            for index, process in enumerate(workers):
                if process.is_alive():
                    continue
                process.join()
                lifetime = time.monotonic() - process.started_at
                if lifetime < MIN_WORKER_LIFETIME:
                    log.error(
                        "worker %d exited with %s %.1fs after starting; stopping",
                        process.pid,
                        process.exitcode,
                        lifetime,
                    )
                    _stop(workers, server.shutdown_timeout)
                    return 1
                log.warning(
                    "worker %d exited with %s; starting another", process.pid, process.exitcode
                )
                workers[index] = spawn()
        log.info("signal received: stopping %d workers", count)
        _stop(workers, server.shutdown_timeout)
        return 0
    finally:
        signal.set_wakeup_fd(previous_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for fd in (ready_r, ready_w, wake_r, wake_w):
            os.close(fd)
        if reserved is not None:
            reserved.close()


def _wait_ready(
    ready_fd: int, workers: List[Any], count: int, stopping: Callable[[], bool]
) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    got = 0
    while got < count:
        if stopping() or time.monotonic() > deadline:
            return False
        if any(not p.is_alive() for p in workers):
            return False
        readable, _, _ = select.select([ready_fd], [], [], 0.1)
        if readable:
            got += len(os.read(ready_fd, count - got))
    return True


def _drain(fd: int) -> None:
    while True:
        try:
            readable, _, _ = select.select([fd], [], [], 0)
            if not readable or not os.read(fd, 512):
                return
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                return
            raise


def _terminate(workers: List[Any]) -> None:
    """SIGTERM every worker still alive."""
    for process in workers:
        if process.is_alive():
            try:
                os.kill(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _stop(workers: List[Any], shutdown_timeout: float) -> None:
    """SIGTERM every worker (each shuts down gracefully), then wait; SIGKILL
    whatever still runs ``shutdown_timeout`` + 5 seconds later."""
    _terminate(workers)
    deadline = time.monotonic() + shutdown_timeout + 5.0
    for process in workers:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.warning("worker %d did not stop in time: killing it", process.pid)
            process.kill()
            process.join()


__all__ = ["LOOPS", "loop_factory", "loop_name", "run", "serve_workers"]
