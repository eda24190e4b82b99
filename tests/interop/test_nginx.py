"""Behind nginx: deploy/nginx.conf (its example addresses swapped for free
ports).  nginx speaks HTTP/1.1 to the instances for ordinary requests
(proxy_pass has no HTTP/2 upstream) and HTTP/2 only through grpc_pass: one
instance stopped mid h2load run loses no request, and gRPC calls go on when
one of two gRPC instances stops.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from typing import Dict

import pytest
from interop_support import (
    ALL_OK,
    ROOT,
    TIMEOUT,
    Processes,
    free_port,
    grpc_example,
    run_h2load,
    start_instance,
    wait_for_port,
)

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None or shutil.which("h2load") is None,
    reason="needs nginx (apt-get install nginx-core) and h2load (apt-get install nghttp2-client)",
)

TEMPLATE = ROOT / "deploy" / "nginx.conf"
EXAMPLE_ADDRS = ("8080", "8081", "8082", "50050", "50051", "50052")


def _nginx(processes: Processes, tmp_path: Path, ports: Dict[str, int]) -> subprocess.Popen:
    text = TEMPLATE.read_text()
    for example in EXAMPLE_ADDRS:
        address = f"127.0.0.1:{example}"
        assert address in text, f"deploy/nginx.conf no longer uses {address}"
        text = text.replace(address, f"127.0.0.1:{ports[example]}")
    config = tmp_path / "nginx.conf"
    config.write_text(text)
    (tmp_path / "logs").mkdir()  # nginx opens its default log there first
    argv = ["nginx", "-p", str(tmp_path), "-c", str(config), "-g", "daemon off;"]
    proc = processes.start(argv)
    wait_for_port(ports["8080"], proc)
    return proc


def _stop(nginx: subprocess.Popen) -> None:
    """SIGTERM: the master stops its workers and exits (killing the master
    instead would leave the workers running, orphaned)."""
    nginx.send_signal(signal.SIGTERM)
    nginx.wait(timeout=TIMEOUT)


@pytest.fixture
def ports() -> Dict[str, int]:
    return {example: free_port() for example in EXAMPLE_ADDRS}


def test_instance_stopped_mid_run_loses_no_request(
    processes: Processes, tmp_path: Path, ports: Dict[str, int]
) -> None:
    s1 = start_instance(processes, ports["8081"])
    start_instance(processes, ports["8082"])
    nginx = _nginx(processes, tmp_path, ports)
    try:
        counts, rate, out = run_h2load(
            f"http://127.0.0.1:{ports['8080']}/", "progress: 30% done", s1
        )
        print(
            f"\nh2load through nginx (HTTP/1.1 upstreams), one instance stopped at 30%: "
            f"{rate:.0f} req/s, {counts['failed']} failed"
        )
        assert counts == ALL_OK, out
        assert s1.wait(timeout=TIMEOUT) == 0
    finally:
        _stop(nginx)


def test_grpc_pass(processes: Processes, tmp_path: Path, ports: Dict[str, int]) -> None:
    grpc = pytest.importorskip("grpc", reason="grpcio is not installed")
    pytest.importorskip("grpc_tools", reason="grpcio-tools is not installed")
    example = grpc_example()
    pb2, stubs = example.greeter_pb2, example.greeter_pb2_grpc
    program = str(ROOT / "examples" / "grpc_server.py")
    g1 = processes.python(program, "--port", str(ports["50051"]))
    g2 = processes.python(program, "--port", str(ports["50052"]))
    wait_for_port(ports["50051"], g1)
    wait_for_port(ports["50052"], g2)
    nginx = _nginx(processes, tmp_path, ports)
    wait_for_port(ports["50050"], nginx)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{ports['50050']}") as channel:
            stub = stubs.GreeterStub(channel)
            hello = stub.SayHello(pb2.HelloRequest(name="nginx"), timeout=TIMEOUT)
            assert hello.message == "Hello, nginx!"
            stream = stub.StreamGreetings(pb2.HelloRequest(name="n", count=100), timeout=TIMEOUT)
            assert [r.index for r in stream] == list(range(100))
            with pytest.raises(grpc.RpcError) as info:
                stub.SayHello(pb2.HelloRequest(name=""), timeout=TIMEOUT)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.details() == "name must not be empty"
            # One instance stops: grpc_next_upstream takes the calls elsewhere.
            g1.send_signal(signal.SIGTERM)
            assert g1.wait(timeout=TIMEOUT) == 0
            for i in range(10):
                reply = stub.SayHello(pb2.HelloRequest(name=str(i)), timeout=TIMEOUT)
                assert reply.message == f"Hello, {i}!"
    finally:
        _stop(nginx)


def test_template_is_valid(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
