"""A target for tools/attacks/madeyoureset.py: ``target.py handler|asgi PORT``.

``handler``: the tutorial's handler (answers at on_headers); ``asgi``: an
ASGI app answering ``hello`` (``?sleep=S`` first sleeps S seconds: a slow
app); also importable as ``target:app`` for granian.  ``GET /stats`` answers
``invocations cpu_seconds rss_kib asyncio_tasks`` of the serving process.
"""

from __future__ import annotations

import asyncio
import resource
import sys
from typing import Any

COUNT = [0]


def stats() -> bytes:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    try:
        tasks = len(asyncio.all_tasks())
    except RuntimeError:
        tasks = -1
    return f"{COUNT[0]} {ru.ru_utime + ru.ru_stime:.2f} {rss} {tasks}".encode()


async def app(scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/stats":
        body = stats()
    else:
        COUNT[0] += 1
        query = scope["query_string"]
        if query.startswith(b"sleep="):
            await asyncio.sleep(float(query[6:]))
        body = b"hello"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "handler":
        import nghttp2

        class Handler(nghttp2.BaseRequestHandler):
            def on_headers(self) -> None:
                if self.path == b"/stats":
                    res = stats()
                else:
                    COUNT[0] += 1
                    res = b"nghttp2 FTW\n"
                self.send_response(200, [("content-length", str(len(res)))], res)

        nghttp2.HTTP2Server(
            ("127.0.0.1", port), Handler, ssl=None, access_log=False
        ).serve_forever()
    else:
        from nghttp2.server.asgi import ASGIServer

        ASGIServer(("127.0.0.1", port), app, access_log=False).serve_forever()


if __name__ == "__main__":
    main()
