"""gRPC on nghttp2-cffi's handler API: no gRPC library on the server side.

    pip install 'nghttp2-cffi[grpc]'       # grpcio, grpcio-tools, protobuf
    python examples/grpc_server.py --port 50051

Then call it with grpcio over h2c.  The client's modules, ``greeter_pb2``
(the messages) and ``greeter_pb2_grpc`` (the stubs), are generated from
examples/greeter.proto by grpcio-tools, once, into the current folder::

    python -m grpc_tools.protoc -I examples --python_out=. --grpc_python_out=. \
        examples/greeter.proto

(or, in Python, ``greeter_pb2, greeter_pb2_grpc = load_protos()`` from this
module, which does the same into a temporary folder and imports them)::

    import grpc, greeter_pb2, greeter_pb2_grpc
    channel = grpc.insecure_channel("127.0.0.1:50051")
    stub = greeter_pb2_grpc.GreeterStub(channel)
    stub.SayHello(greeter_pb2.HelloRequest(name="you")).message

gRPC over HTTP/2 is plain HTTP/2: a ``POST /package.Service/Method`` with
``content-type: application/grpc`` and ``te: trailers``; request and response
bodies are length-prefixed messages (a 1-byte compressed flag, a 4-byte
big-endian length, the protobuf bytes); the outcome comes last, in the
trailers ``grpc-status`` and ``grpc-message``.  :class:`GrpcHandler` speaks
that for any service of a ``*_pb2`` module; :class:`Greeter` is one.  The
protobuf module is generated from the ``.proto`` at start-up (grpcio-tools),
so nothing generated is checked in.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any, AsyncIterator, Iterator, List, Optional, Tuple

from nghttp2.server import BaseRequestHandler, HTTP2Server

HERE = Path(__file__).resolve().parent
PROTO = HERE / "greeter.proto"
_PREFIX = struct.Struct(">BI")  # compressed flag, message length


class StatusCode(enum.IntEnum):
    """gRPC status codes (grpc/doc/statuscodes.md)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    RESOURCE_EXHAUSTED = 8
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14


class GrpcError(Exception):
    """Raise in a method to end the call with this status (not OK)."""

    def __init__(self, code: StatusCode, message: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


# ---- the wire format ---------------------------------------------------------


def encode_message(payload: bytes) -> bytes:
    """One length-prefixed message, uncompressed."""
    return _PREFIX.pack(0, len(payload)) + payload


def decode_messages(body: bytes) -> Iterator[bytes]:
    """The messages of a request body; GrpcError if it is cut short or
    compressed (this server announces no grpc-encoding)."""
    pos = 0
    while pos < len(body):
        if len(body) - pos < _PREFIX.size:
            raise GrpcError(StatusCode.INTERNAL, "truncated message prefix")
        compressed, length = _PREFIX.unpack_from(body, pos)
        pos += _PREFIX.size
        if compressed:
            raise GrpcError(StatusCode.UNIMPLEMENTED, "compressed messages are not supported")
        if len(body) - pos < length:
            raise GrpcError(StatusCode.INTERNAL, "truncated message")
        yield body[pos : pos + length]
        pos += length


def encode_grpc_message(text: str) -> bytes:
    """``grpc-message`` is percent-encoded UTF-8 (PROTOCOL-HTTP2.md)."""
    out = bytearray()
    for byte in text.encode("utf-8"):
        if 0x20 <= byte <= 0x7E and byte != 0x25:
            out.append(byte)
        else:
            out += b"%%%02X" % byte
    return bytes(out)


def status_fields(code: StatusCode, message: str = "") -> List[Tuple[bytes, bytes]]:
    fields = [(b"grpc-status", str(int(code)).encode("ascii"))]
    if message:
        fields.append((b"grpc-message", encode_grpc_message(message)))
    return fields


# ---- serving a service -----------------------------------------------------------


class GrpcHandler(BaseRequestHandler):
    """Serves the unary and server-streaming methods of one protobuf service.

    Subclasses set ``pb2`` (the generated module) and ``service`` (its
    name in the .proto), and define one ``async def`` per method, named as
    in the .proto: a unary one returns the reply, a server-streaming one is
    an async generator of replies.  Raise :class:`GrpcError` for a status
    other than OK; any other exception is INTERNAL.
    """

    pb2: Any = None
    service: str = ""
    _routes: Optional[dict] = None  # "/pkg.Service/Method" -> (method, request class)

    @classmethod
    def routes(cls) -> dict:
        if cls.__dict__.get("_routes") is None:
            descriptor = cls.pb2.DESCRIPTOR.services_by_name[cls.service]
            routes = {}
            for method in descriptor.methods:
                if method.client_streaming:
                    continue  # not served here: 404 UNIMPLEMENTED
                path = f"/{descriptor.full_name}/{method.name}".encode("ascii")
                request_class = getattr(cls.pb2, method.input_type.name)
                routes[path] = (method, request_class)
            cls._routes = routes
        return cls._routes  # type: ignore[return-value]

    def _header(self, name: bytes) -> bytes:
        for key, value in self.headers:
            if key == name:
                return value
        return b""

    async def on_headers(self) -> None:
        if self.method != b"POST":
            self.send_response(405, [("allow", "POST")])
            return
        content_type = self._header(b"content-type")
        if not content_type.startswith(b"application/grpc"):
            # Not gRPC at all: an HTTP error, as the gRPC spec says.
            self.send_response(415, [("content-type", "text/plain")], "application/grpc only\n")
            return
        route = self.routes().get(self.path or b"")
        if route is None:
            self._trailers_only(StatusCode.UNIMPLEMENTED, f"unknown method {self.path!r}")
            return
        method, request_class = route
        try:
            messages = list(decode_messages(await self.read_body()))
            if len(messages) != 1:
                raise GrpcError(StatusCode.INTERNAL, f"{len(messages)} request messages")
            request = request_class.FromString(messages[0])
            call = getattr(self, method.name)
            if method.server_streaming:
                await self._stream(call(request))
            else:
                reply = await call(request)
                self._begin()
                await self.write(encode_message(reply.SerializeToString()))
                self.end_response(status_fields(StatusCode.OK))
        except GrpcError as exc:
            self._fail_call(exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - the client gets INTERNAL
            self._fail_call(StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")

    async def _stream(self, replies: AsyncIterator[Any]) -> None:
        self._begin()
        async for reply in replies:
            # write() waits while the client is behind: a slow reader slows us.
            await self.write(encode_message(reply.SerializeToString()))
        self.end_response(status_fields(StatusCode.OK))

    def _begin(self) -> None:
        if self.status is None:
            self.begin_response(200, [("content-type", "application/grpc")])

    def _trailers_only(self, code: StatusCode, message: str) -> None:
        """An error before any reply: one HEADERS frame with the status."""
        self.send_response(
            200, [(b"content-type", b"application/grpc"), *status_fields(code, message)]
        )

    def _fail_call(self, code: StatusCode, message: str) -> None:
        if self.status is None:
            self._trailers_only(code, message)
        else:  # replies went out already: the status goes in the trailers
            self.end_response(status_fields(code, message))


def load_protos(proto: Path = PROTO, out_dir: Optional[str] = None) -> Tuple[Any, Any]:
    """``(name_pb2, name_pb2_grpc)`` generated from ``proto`` with grpcio-tools
    into ``out_dir`` (a new temporary folder by default); ``name_pb2_grpc``
    holds the client stubs and is None without grpcio."""
    from grpc_tools import protoc

    out = out_dir or tempfile.mkdtemp(prefix="grpc-protos-")
    rv = protoc.main(
        [
            "protoc",
            f"-I{proto.parent}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            str(proto),
        ]
    )
    if rv != 0:
        raise RuntimeError(f"protoc failed on {proto} ({rv})")
    sys.path.insert(0, out)
    try:
        pb2 = importlib.import_module(f"{proto.stem}_pb2")
        try:
            pb2_grpc = importlib.import_module(f"{proto.stem}_pb2_grpc")
        except ImportError:
            pb2_grpc = None
    finally:
        sys.path.remove(out)
    return pb2, pb2_grpc


greeter_pb2, greeter_pb2_grpc = load_protos()

#: More StreamGreetings replies than this end the call with RESOURCE_EXHAUSTED.
MAX_GREETINGS = 100


class Greeter(GrpcHandler):
    """The Greeter service of greeter.proto."""

    pb2 = greeter_pb2
    service = "Greeter"

    async def SayHello(self, request: Any) -> Any:
        if not request.name:
            raise GrpcError(StatusCode.INVALID_ARGUMENT, "name must not be empty")
        return greeter_pb2.HelloReply(message=f"Hello, {request.name}!")

    async def StreamGreetings(self, request: Any) -> AsyncIterator[Any]:
        for index in range(request.count):
            if index == MAX_GREETINGS:
                raise GrpcError(
                    StatusCode.RESOURCE_EXHAUSTED, f"at most {MAX_GREETINGS} greetings, please"
                )
            yield greeter_pb2.HelloReply(message=f"Hello #{index}, {request.name}!", index=index)


def main() -> None:
    parser = argparse.ArgumentParser(description="The Greeter gRPC service over h2c.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051)
    parser.add_argument("--workers", type=int, default=1, help="processes (one per core)")
    args = parser.parse_args()
    server = HTTP2Server((args.host, args.port), Greeter, workers=args.workers)
    print(f"Serving greeter.Greeter (gRPC, h2c) on {args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
