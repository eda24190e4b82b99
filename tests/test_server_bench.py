"""tools/bench_server.py --quick: the server benchmark runs, and every
request to our server succeeds (the figures themselves are not checked
here: speed lives in the benchmark's own report)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.clients
@pytest.mark.skipif(shutil.which("h2load") is None, reason="needs h2load (nghttp2-client)")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; Linux only")
def test_quick_benchmark_of_our_server(tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "bench_server.py"),
            "--quick",
            "--servers",
            "ours,ours-uvloop,ours-2w",
            "--save",
            str(report_file),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(report_file.read_text())
    ours = [r for r in report["results"] if r["server"] == "ours"]
    assert sorted(r["workload"] for r in ours) == ["a", "b", "c", "d", "e", "f"]
    for result in ours:
        if result["skipped"]:  # TLS needs the openssl command for its certificate
            assert result["workload"] == "b" and shutil.which("openssl") is None, result
            continue
        assert result["ok"], result
        assert result["runs"], result
        for run in result["runs"]:
            assert run["succeeded"] == run["requests"] > 0, result
    [idle] = [e for e in report["idle"] if e["server"] == "ours"]
    assert idle["answered"] == idle["connections"] == 1000
    [growth] = [e for e in report["growth"] if e["server"] == "ours"]
    assert growth["ok"] and len(growth["rss_trail_kib"]) == 6
    [two] = [r for r in report["results"] if r["server"] == "ours-2w"]
    assert two["ok"] and two["workload"] == "a"
