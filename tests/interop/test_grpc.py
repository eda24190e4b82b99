"""gRPC served by our handler API (examples/grpc_server.py), called by the
real grpcio client over h2c: unary and server-streaming calls, statuses and
their messages, concurrency, cancellation and flow control.

The example runs as a program (``python examples/grpc_server.py``) for the
synchronous client, and in the test's loop for ``grpc.aio``.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import pytest
from interop_support import ROOT, TIMEOUT, Processes, free_port, grpc_example, wait_for_port

from nghttp2.client import Client

grpc = pytest.importorskip("grpc", reason="grpcio is not installed (pip install '.[grpc]')")
pytest.importorskip("grpc_tools", reason="grpcio-tools is not installed (pip install '.[grpc]')")
pytest.importorskip("google.protobuf", reason="protobuf is not installed (pip install '.[grpc]')")

EXAMPLE = ROOT / "examples" / "grpc_server.py"


example = grpc_example()
pb2 = example.greeter_pb2
stubs = example.greeter_pb2_grpc
GrpcError = example.GrpcError
StatusCode = example.StatusCode


# ---- the example as a program, the synchronous client ------------------------


@pytest.fixture
def example_server(processes: Processes) -> str:
    """``python examples/grpc_server.py --port N``: its address."""
    port = free_port()
    proc = processes.python(str(EXAMPLE), "--port", str(port))
    wait_for_port(port, proc)
    return f"127.0.0.1:{port}"


def test_unary(example_server: str) -> None:
    with grpc.insecure_channel(example_server) as channel:
        stub = stubs.GreeterStub(channel)
        reply, call = stub.SayHello.with_call(pb2.HelloRequest(name="grpcio"), timeout=TIMEOUT)
        assert reply.message == "Hello, grpcio!"
        assert call.code() == grpc.StatusCode.OK
        assert call.details() in ("", None)


def test_server_streaming(example_server: str) -> None:
    with grpc.insecure_channel(example_server) as channel:
        stub = stubs.GreeterStub(channel)
        replies = list(stub.StreamGreetings(pb2.HelloRequest(name="s", count=100), timeout=TIMEOUT))
        assert [r.index for r in replies] == list(range(100))
        assert replies[7].message == "Hello #7, s!"


def test_error_statuses(example_server: str) -> None:
    with grpc.insecure_channel(example_server) as channel:
        stub = stubs.GreeterStub(channel)
        # Before any reply: a trailers-only response.
        with pytest.raises(grpc.RpcError) as info:
            stub.SayHello(pb2.HelloRequest(name=""), timeout=TIMEOUT)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == "name must not be empty"
        # After 100 replies: the status comes in the trailers.
        got: list = []
        replies = stub.StreamGreetings(pb2.HelloRequest(name="s", count=101), timeout=TIMEOUT)
        with pytest.raises(grpc.RpcError) as info:
            got.extend(reply.index for reply in replies)
        assert got == list(range(100))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert info.value.details() == "at most 100 greetings, please"
        # A method the service does not have.
        missing = channel.unary_unary(
            "/greeter.Greeter/Missing",
            request_serializer=pb2.HelloRequest.SerializeToString,
            response_deserializer=pb2.HelloReply.FromString,
        )
        with pytest.raises(grpc.RpcError) as info:
            missing(pb2.HelloRequest(name="x"), timeout=TIMEOUT)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


# ---- in the test's loop: grpc.aio against our server ----------------------------

BIG = 64 * 1024


class TestGreeter(example.Greeter):  # type: ignore[misc,name-defined]
    """The example's service with a non-ASCII status message and large,
    numerous replies."""

    __test__ = False  # not a pytest class

    async def SayHello(self, request: Any) -> Any:
        if request.name == "Zoë":
            raise GrpcError(StatusCode.NOT_FOUND, "no greeting for «Zoë» — 100% sure")
        if request.name == "boom":
            raise RuntimeError("handler bug")
        return await super().SayHello(request)

    async def StreamGreetings(self, request: Any) -> AsyncIterator[Any]:
        for index in range(request.count):
            yield pb2.HelloReply(message="x" * BIG, index=index)
            await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_aio_calls(start_server: Any) -> None:
    server = await start_server(TestGreeter)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.address[1]}") as channel:
        stub = stubs.GreeterStub(channel)
        # Many calls at once: one connection, multiplexed streams.
        replies = await asyncio.wait_for(
            asyncio.gather(*[stub.SayHello(pb2.HelloRequest(name=f"n{i}")) for i in range(200)]),
            TIMEOUT,
        )
        assert [r.message for r in replies] == [f"Hello, n{i}!" for i in range(200)]
        # A percent-encoded grpc-message comes back as it was raised.
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await asyncio.wait_for(stub.SayHello(pb2.HelloRequest(name="Zoë")), TIMEOUT)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert info.value.details() == "no greeting for «Zoë» — 100% sure"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await asyncio.wait_for(stub.SayHello(pb2.HelloRequest(name="boom")), TIMEOUT)
        assert info.value.code() == grpc.StatusCode.INTERNAL
        assert "handler bug" in info.value.details()
        # 1000 replies of 64 KiB (62.5 MiB): flow control both ways.
        count = total = 0
        async for reply in stub.StreamGreetings(pb2.HelloRequest(count=1000), timeout=TIMEOUT):
            assert reply.index == count
            count += 1
            total += len(reply.message)
        assert (count, total) == (1000, 1000 * BIG)


@pytest.mark.asyncio
async def test_aio_cancel_mid_stream(start_server: Any) -> None:
    server = await start_server(TestGreeter)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.address[1]}") as channel:
        stub = stubs.GreeterStub(channel)
        call = stub.StreamGreetings(pb2.HelloRequest(count=100_000), timeout=TIMEOUT)
        got = 0
        async for _ in call:
            got += 1
            if got == 10:
                call.cancel()  # RST_STREAM CANCEL: the handler's task is cancelled
                break
        assert call.cancelled()
        # The connection goes on serving.
        reply = await asyncio.wait_for(stub.SayHello(pb2.HelloRequest(name="after")), TIMEOUT)
        assert reply.message == "Hello, after!"
    # Every stream closed: no handler is left behind.
    for _ in range(int(TIMEOUT / 0.01)):
        if not any(conn.handlers for conn in server.connections if hasattr(conn, "handlers")):
            break
        await asyncio.sleep(0.01)
    assert not any(getattr(conn, "handlers", None) for conn in server.connections)


@pytest.mark.asyncio
async def test_not_grpc(start_server: Any) -> None:
    server = await start_server(TestGreeter)
    async with Client(f"http://127.0.0.1:{server.address[1]}", timeout=TIMEOUT) as c:
        r = await c.post("/greeter.Greeter/SayHello", b"{}", headers={"content-type": "text/json"})
        assert r.status == 415
        r = await c.get("/greeter.Greeter/SayHello")
        assert r.status == 405
