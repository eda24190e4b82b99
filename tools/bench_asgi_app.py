"""The 12-byte response as an ASGI app: the ASGI row of the server benchmark.

Every path answers ``hello world\\n`` (``content-type`` and ``content-length``
set), lifespan is supported, the request body is not read.  Serve it with
each server, one process, h2c, then drive it with h2load:

  python -m server --asgi tools.bench_asgi_app:app --no-tls --port 8080 --no-access-log
  granian --interface asgi --http 2 --no-ws --port 8080 tools.bench_asgi_app:app
  hypercorn --bind 127.0.0.1:8080 tools.bench_asgi_app:app

  h2load -n 20000 -c 10 -m 10 http://127.0.0.1:8080/

(run from the repository root; hypercorn speaks h2c with prior knowledge on
a cleartext bind, granian with ``--http 2``.)
"""

BODY = b"hello world\n"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"12")],
}
BODY_MESSAGE = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send(START)
        await send(BODY_MESSAGE)
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
