"""tools/setup.sh installs HAProxy for the tests without leaving its daemon
running or enabled (tools/apt_install.sh).

The install runs for real, with apt from Debian's mirrors, but in a copy of
this machine: a private mount namespace (and PID namespace, so any daemon
started dies with it) with an overlay of / on a tmpfs, chrooted, where
haproxy is purged first and Docker's policy-rc.d (if any) removed, as on a
fresh machine.  Nothing outside the namespace changes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        sys.platform != "linux" or os.geteuid() != 0,
        reason="needs root on Linux (mount namespaces, chroot, apt)",
    ),
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("unshare", "chroot", "dpkg", "apt-get")),
        reason="needs unshare, chroot and a Debian system",
    ),
]

# Runs inside `unshare --mount --pid --fork`: $1 the scratch folder, $2 the script.
_OUTER = r"""
set -eu
root=$1
mount -t tmpfs tmpfs "$root"
mkdir "$root/upper" "$root/work" "$root/merged"
mount -t overlay overlay \
    -o "lowerdir=/,upperdir=$root/upper,workdir=$root/work" "$root/merged"
mount --bind /dev "$root/merged/dev"
mount -t proc proc "$root/merged/proc"
cp "$2" "$root/merged/root/apt_install.sh"
chroot "$root/merged" /bin/bash -c '
    set -eu
    rm -f /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive dpkg --purge haproxy >/dev/null
    /root/apt_install.sh haproxy >/tmp/install.log 2>&1 || { cat /tmp/install.log; exit 1; }
    echo "installed: $(dpkg-query -W -f="\${Status}" haproxy)"
    echo "policy-rc.d: $(ls /usr/sbin/policy-rc.d 2>/dev/null || echo gone)"
    echo "processes: $(pgrep -x haproxy || echo none)"
    echo "rc links: $(ls /etc/rc2.d /etc/rc3.d /etc/rc5.d | grep haproxy | sort -u | tr "\n" " ")"
    wants=/etc/systemd/system/multi-user.target.wants
    echo "systemd wants: $(ls $wants 2>/dev/null | grep haproxy || echo none)"
'
"""


def test_installing_haproxy_leaves_its_service_stopped_and_disabled(tmp_path: Path) -> None:
    scratch = tmp_path / "root"
    scratch.mkdir()
    probe = subprocess.run(
        ["unshare", "--mount", "--fork", "true"], capture_output=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"no mount namespaces here: {probe.stderr.decode(errors='replace')}")
    proc = subprocess.run(
        [
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "bash",
            "-c",
            _OUTER,
            "outer",
            str(scratch),
            str(REPO / "tools" / "apt_install.sh"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = proc.stdout
    if proc.returncode != 0 and "overlay" in proc.stderr:
        pytest.skip(f"cannot mount an overlay of / here: {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, out + proc.stderr
    report = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    assert report["installed"] == "install ok installed", out
    assert report["policy-rc.d"] == "gone", out  # ours is removed again
    assert report["processes"] == "none", out
    # Disabled for sysvinit (K links only) and for systemd (no wants link).
    links = report["rc links"].split()
    assert links and all(link.startswith("K") for link in links), out
    assert report["systemd wants"] == "none", out
