"""A plain ASGI 3 application (no framework): a page, and a WebSocket echo
the page talks to; over HTTP/2 both share one connection (RFC 8441).

    python -m nghttp2 --asgi examples.asgi_app:app            # https://127.0.0.1:8443/
    python -m nghttp2 --asgi examples.asgi_app:app --no-tls   # h2c, http://127.0.0.1:8080/

Browsers speak HTTP/2 only over TLS, so open the https URL (accept the
development certificate) and watch the echo come back.
"""

PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>ASGI over nghttp2-cffi</title>
<h1>ASGI and WebSockets over HTTP/2</h1>
<p id="log">connecting the WebSocket...</p>
<script>
const ws = new WebSocket(location.href.replace(/^http/, "ws") + "echo");
ws.onopen = () => ws.send("hello over " + location.protocol);
ws.onmessage = (event) => { document.getElementById("log").textContent = event.data; };
</script>
"""


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["greeting"] = "echo"
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        greeting = scope.get("state", {}).get("greeting", "echo")
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": f"{greeting}: {message['text']}"})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
    else:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": PAGE})
