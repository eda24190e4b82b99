"""Behind HAProxy: deploy/haproxy.cfg, h2c on both sides, two instances of
``python -m nghttp2``, one of them stopped with SIGTERM in the middle of an
``h2load -n 20000 -c 10 -m 10`` run through HAProxy: not one request fails.

The control test runs the same without ``retry-on``/``option redispatch``
and loses requests: those options are what carry the stop, not luck.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Dict, Tuple

import pytest
from interop_support import (
    ALL_OK,
    REQUESTS,
    ROOT,
    TIMEOUT,
    Processes,
    free_port,
    run_h2load,
    start_instance,
    wait_for_port,
)

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None or shutil.which("h2load") is None,
    reason="needs haproxy (apt-get install haproxy) and h2load (apt-get install nghttp2-client)",
)

TEMPLATE = ROOT / "deploy" / "haproxy.cfg"


class Deployment:
    """Two server instances and HAProxy in front of them (deploy/haproxy.cfg)."""

    def __init__(self, processes: Processes, config: Path) -> None:
        self.processes = processes
        self.ports = {name: free_port() for name in ("front", "s1", "s2", "stats")}
        self.servers = {name: start_instance(processes, self.ports[name]) for name in ("s1", "s2")}
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
        """h2load through HAProxy; SIGTERM to s1 when it reports ``stop_at``."""
        return run_h2load(self.url, stop_at, self.servers["s1"])


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
