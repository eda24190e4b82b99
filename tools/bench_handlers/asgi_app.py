"""The benchmark's ASGI application for granian and hypercorn
(``asgi_app:app`` with this folder on ``PYTHONPATH``); the same paths as
ours.py:
  /small     12-byte response
  /1m        1 MiB response
  /upload    POST: the body is read to the end, then a 12-byte response
  /deferred  awaits asyncio.sleep(0) before sending the 12-byte body
"""

import asyncio

SMALL = b"hello world\n"
LARGE = b"x" * (1 << 20)


def _start(length):
    return {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % length)],
    }


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/small":
        body = SMALL
    elif path == "/1m":
        body = LARGE
    elif path == "/upload":
        received = 0
        while True:
            message = await receive()
            received += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = SMALL
    elif path == "/deferred":
        await asyncio.sleep(0)
        body = SMALL
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not found\n"})
        return
    await send(_start(len(body)))
    await send({"type": "http.response.body", "body": body})
