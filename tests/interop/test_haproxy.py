"""Behind HAProxy: deploy/haproxy.cfg, h2c on both sides, two instances of
``python -m server``, one of them stopped with SIGTERM in the middle of an
``h2load -n 20000 -c 10 -m 10`` run through HAProxy: not one request fails.

The control test runs the same without ``retry-on``/``option redispatch``
and loses requests: those options are what carry the stop, not luck.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from interop_support import ROOT, TIMEOUT, Processes, free_port, wait_for_port

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None or shutil.which("h2load") is None,
    reason="needs haproxy (apt-get install haproxy) and h2load (apt-get install nghttp2-client)",
)

TEMPLATE = ROOT / "deploy" / "haproxy.cfg"
HERE = Path(__file__).resolve().parent
REQUESTS = 20_000
_RESULT = re.compile(
    r"requests: (?P<total>\d+) total, (?P<started>\d+) started, (?P<done>\d+) done, "
    r"(?P<succeeded>\d+) succeeded, (?P<failed>\d+) failed, (?P<errored>\d+) errored, "
    r"(?P<timeout>\d+) timeout"
)


class Deployment:
    """Two server instances and HAProxy in front of them (deploy/haproxy.cfg)."""

    def __init__(self, processes: Processes, config: Path) -> None:
        self.processes = processes
        self.ports = {name: free_port() for name in ("front", "s1", "s2", "stats")}
        self.servers = {name: self._instance(self.ports[name]) for name in ("s1", "s2")}
        for name, proc in self.servers.items():
            wait_for_port(self.ports[name], proc)
        env = {
            "FRONTEND_ADDR": f"127.0.0.1:{self.ports['front']}",
            "SERVER1_ADDR": f"127.0.0.1:{self.ports['s1']}",
            "SERVER2_ADDR": f"127.0.0.1:{self.ports['s2']}",
            "STATS_ADDR": f"127.0.0.1:{self.ports['stats']}",
        }
        self.haproxy = processes.start(["haproxy", "-db", "-f", str(config)], env=env)
        wait_for_port(self.ports["front"], self.haproxy)
        wait_for_port(self.ports["stats"], self.haproxy)
        self.wait_status({"s1": "UP", "s2": "UP"})

    def _instance(self, port: int) -> subprocess.Popen:
        return self.processes.python(
            "-m", "server", "--no-tls", "--no-access-log",
            "--handler", "interop_handlers:Hello", "--port", str(port),
            cwd=HERE,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['front']}/"

    def stats(self) -> Dict[str, Dict[str, str]]:
        """HAProxy's statistics of the backend's servers, by name."""
        url = f"http://127.0.0.1:{self.ports['stats']}/stats;csv"
        with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
            text = r.read().decode().lstrip("# ")
        return {
            row["svname"]: row
            for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == "app"
        }

    def wait_status(self, want: Dict[str, str]) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            stats = self.stats()
            if all(stats[name]["status"] == status for name, status in want.items()):
                return
            time.sleep(0.05)
        pytest.fail(f"HAProxy never saw {want}: {self.stats()}")

    def h2load(self, stop_at: str = "") -> Tuple[Dict[str, int], float, str]:
        """``h2load -n 20000 -c 10 -m 10`` through HAProxy; SIGTERM to s1
        when h2load reports ``stop_at`` ("progress: 30% done").  Returns the
        request counts, req/s and the output."""
        argv = ["h2load", "-n", str(REQUESTS), "-c", "10", "-m", "10", self.url]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        watchdog = threading.Timer(TIMEOUT * 2, proc.kill)
        watchdog.start()
        lines: List[str] = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if stop_at and stop_at in line:
                    self.servers["s1"].send_signal(signal.SIGTERM)
                    stop_at = ""
            proc.wait()
        finally:
            watchdog.cancel()
            if proc.stdout is not None:
                proc.stdout.close()
        out = "".join(lines)
        assert proc.returncode == 0, f"h2load exited {proc.returncode}:\n{out}"
        m = _RESULT.search(out)
        assert m is not None, out
        rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
        assert rate is not None, out
        return {k: int(v) for k, v in m.groupdict().items()}, float(rate.group(1)), out


#: h2load's counts when every request got its response.
ALL_OK = {
    "total": REQUESTS,
    "started": REQUESTS,
    "done": REQUESTS,
    "succeeded": REQUESTS,
    "failed": 0,
    "errored": 0,
    "timeout": 0,
}


def test_instance_stopped_mid_run_loses_no_request(processes: Processes) -> None:
    deployment = Deployment(processes, TEMPLATE)
    counts, baseline, _ = deployment.h2load()
    assert counts == ALL_OK
    counts, rate, out = deployment.h2load(stop_at="progress: 30% done")
    print(
        f"\nh2load -n {REQUESTS} -c 10 -m 10 through HAProxy to two instances: "
        f"{baseline:.0f} req/s; with one stopped (SIGTERM) at 30%: {rate:.0f} req/s, "
        f"{counts['failed']} failed, {counts['errored']} errored"
    )
    assert counts == ALL_OK, out
    assert re.search(rf"status codes: {REQUESTS} 2xx", out), out
    # The stopped instance drained and exited cleanly; the other took over.
    assert deployment.servers["s1"].wait(timeout=TIMEOUT) == 0
    deployment.wait_status({"s1": "DOWN", "s2": "UP"})
    stats = deployment.stats()
    served = {name: int(stats[name]["hrsp_2xx"]) for name in ("s1", "s2")}
    assert served["s1"] > 0 and served["s2"] > served["s1"]
    assert sum(served.values()) == 2 * REQUESTS
    assert deployment.servers["s2"].poll() is None


def test_without_retries_the_stop_fails_requests(processes: Processes, tmp_path: Path) -> None:
    text = TEMPLATE.read_text()
    for line in ("    retry-on all-retryable-errors\n", "    option redispatch 1\n"):
        assert line in text, f"deploy/haproxy.cfg no longer has {line.strip()!r}"
        text = text.replace(line, "")
    config = tmp_path / "haproxy-no-retries.cfg"
    config.write_text(text.replace("    retries 3\n", "    retries 0\n"))
    deployment = Deployment(processes, config)
    counts, _, out = deployment.h2load(stop_at="progress: 30% done")
    print(f"\nwithout retry-on/redispatch: {counts['failed']} of {REQUESTS} failed")
    assert counts["failed"] > 0, out
    assert deployment.servers["s1"].wait(timeout=TIMEOUT) == 0
