"""tools/bench_server.py --quick: the server benchmark runs, and every
request to our server succeeds, on CPython and on PyPy (the figures
themselves are not checked here: speed lives in the benchmark's own
report)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPY_PYTHON = REPO / ".venv-pypy" / "bin" / "python"

needs_h2load = pytest.mark.skipif(
    shutil.which("h2load") is None, reason="needs h2load (nghttp2-client)"
)
needs_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; Linux only"
)


def run_quick(tmp_path: Path, servers: List[str]) -> Dict[str, Any]:
    report_file = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "bench_server.py"),
            "--quick",
            "--servers",
            ",".join(servers),
            "--save",
            str(report_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report: Dict[str, Any] = json.loads(report_file.read_text())
    return report


def check_every_request_succeeded(report: Dict[str, Any], server: str) -> None:
    """All six workloads and both memory measurements ran on ``server``
    and every request of them succeeded."""
    results = [r for r in report["results"] if r["server"] == server]
    assert sorted(r["workload"] for r in results) == ["a", "b", "c", "d", "e", "f"]
    for result in results:
        if result["skipped"]:  # TLS needs the openssl command for its certificate
            assert result["workload"] == "b" and shutil.which("openssl") is None, result
            continue
        assert result["ok"], result
        assert result["runs"], result
        for run in result["runs"]:
            assert run["succeeded"] == run["requests"] > 0, result
    [idle] = [e for e in report["idle"] if e["server"] == server]
    assert idle["answered"] == idle["connections"] == 1000
    [growth] = [e for e in report["growth"] if e["server"] == server]
    assert growth["ok"] and len(growth["rss_trail_kib"]) == 6


@pytest.mark.slow
@pytest.mark.clients
@needs_h2load
@needs_linux
def test_quick_benchmark_of_our_server(tmp_path: Path) -> None:
    report = run_quick(tmp_path, ["ours", "ours-uvloop", "ours-2w"])
    check_every_request_succeeded(report, "ours")
    [two] = [r for r in report["results"] if r["server"] == "ours-2w"]
    assert two["ok"] and two["workload"] == "a"


@pytest.mark.slow
@pytest.mark.clients
@needs_h2load
@needs_linux
@pytest.mark.skipif(
    not PYPY_PYTHON.exists(),
    reason="no .venv-pypy here (tools/test_pypy.sh makes it, or a full benchmark run)",
)
def test_quick_benchmark_of_our_server_on_pypy(tmp_path: Path) -> None:
    report = run_quick(tmp_path, ["ours-pypy"])
    check_every_request_succeeded(report, "ours-pypy")
    assert report["versions"]["pypy"].split()[0].count(".") == 2, report["versions"]
    # the memory targets are judged for ours-pypy too, and say who met them
    rows = {t["target"].split(" over ")[0]: t for t in report["targets"]}
    for name in ("memory: KiB per idle connection", "memory: RSS growth"):
        assert "ours-pypy" in rows[name]["values"], rows
        assert rows[name]["met_by"] == (["ours-pypy"] if rows[name]["met"]["ours-pypy"] else [])
