"""The wheel users install: tools/wheel.sh builds it with libnghttp2 inside.

One slow test (a wheel build, a fresh venv, one request): the repaired wheel
holds only our import names, is tagged for the stable ABI and manylinux,
installs with binary packages only (no compiler, no libnghttp2 needed), links
its bundled libnghttp2 rather than the system's, and serves.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import nghttp2_cffi

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="auditwheel repairs Linux wheels only"),
    pytest.mark.skipif(
        sys.implementation.name != "cpython", reason="the abi3 wheel is CPython's (PyPy: own tag)"
    ),
]


def run(args: list[str], timeout: float, **kwargs: object) -> str:
    proc = subprocess.run(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout[-3000:]}"
    return proc.stdout


def test_repaired_wheel_installs_without_libnghttp2_and_serves(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (tools/setup.sh installs it)")
    wheelhouse = tmp_path / "wheelhouse"
    run([str(REPO / "tools" / "wheel.sh"), str(wheelhouse)], timeout=900)

    (wheel,) = wheelhouse.glob("*.whl")
    # One wheel for every CPython >= 3.9, for glibc Linux.
    assert re.fullmatch(
        rf"nghttp2_cffi-{re.escape(nghttp2_cffi.__version__)}-cp39-abi3-"
        r"(manylinux\w+\.)*manylinux_2_\d+_\w+\.whl",
        wheel.name,
    ), wheel.name
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {
        "nghttp2",
        "nghttp2_cffi",
        "nghttp2_cffi.libs",
        f"nghttp2_cffi-{nghttp2_cffi.__version__}.dist-info",
    }
    assert any(re.fullmatch(r"nghttp2_cffi\.libs/libnghttp2-[0-9a-f]+\.so[.\d]*", n) for n in names)
    # The C event builder (csrc/events.c), for the stable ABI like _nghttp2.
    assert "nghttp2_cffi/_events.abi3.so" in names
    assert any(re.fullmatch(r"nghttp2_cffi-[^/]+\.dist-info/(licenses/)?LICENSE", n) for n in names)

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    python = str(venv / "bin" / "python")
    # --only-binary: nothing may need a compiler (cffi, httptools come as wheels).
    run([python, "-m", "pip", "install", "-q", "--only-binary=:all:", str(wheel)], timeout=600)

    # Run from an empty folder, with nothing of the repository on sys.path.
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = run(
        [
            python,
            "-c",
            (
                "import nghttp2, nghttp2_cffi, nghttp2_cffi._nghttp2 as m; "
                "import importlib.metadata as md; print(m.__file__); "
                "print(nghttp2.__version__, nghttp2_cffi.__version__, md.version('nghttp2-cffi'))"
            ),
        ],
        timeout=60,
        cwd=cwd,
        env=env,
    ).split("\n")
    so = Path(where[0])
    assert so.is_relative_to(venv), so
    v = nghttp2_cffi.__version__
    assert where[1] == f"{v} {v} {v}"

    ldd = run(["ldd", str(so)], timeout=30)
    (line,) = [line for line in ldd.splitlines() if "libnghttp2" in line]
    assert "nghttp2_cffi.libs/libnghttp2-" in line, ldd
    assert "/usr/lib" not in line, ldd

    server = subprocess.Popen(
        [python, "-m", "nghttp2", "--no-tls", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        env=env,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+/)", first)
        assert match, first + server.stdout.read() if server.poll() is not None else first
        out = run(
            [
                "curl",
                "-sS",
                "--max-time",
                "30",
                "--http2-prior-knowledge",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{response_code}",
                match[1],
            ],
            timeout=60,
        )
        assert out == "2 200"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
