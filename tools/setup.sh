#!/usr/bin/env bash
# Installs everything nghttp2-cffi needs on a fresh Debian 12 or 13 machine
# (as root, or with sudo): libnghttp2's headers, a C compiler, the real HTTP/2
# peers the tests and benchmarks use (nghttp, h2load, nghttpd, curl, HAProxy), then the
# package itself, editable, into .venv.  Safe to run again.
#
#   PYTHON=python3.12 tools/setup.sh        # another interpreter for .venv
#   NGHTTP2_CFFI_EXTRAS=test,dev tools/setup.sh   # extras to install (default: test)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
EXTRAS=${NGHTTP2_CFFI_EXTRAS:-test}

need=()
for pkg in libnghttp2-dev pkg-config gcc libc6-dev nghttp2-client nghttp2-server curl haproxy; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ! command -v "$PY" >/dev/null 2>&1; then
    [ "$PY" = python3 ] || { echo "setup: $PY not found" >&2; exit 1; }
    need+=(python3 python3-venv python3-dev)
elif [ "$("$PY" -c 'import sys; print(sys.base_prefix)')" = /usr ]; then
    # Debian's own interpreter: venv (ensurepip) and Python.h are packaged apart.
    ver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    for pkg in "python$ver-venv" "python$ver-dev"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
fi
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    tools/apt_install.sh "${need[@]}" # HAProxy: its daemon is left stopped and disabled
fi

# A pyenv or other self-built interpreter carries its own Python.h; Debian's
# python3-dev would not help it, so say so instead of failing in the compiler.
"$PY" - <<'EOF'
import os, sys, sysconfig
header = os.path.join(sysconfig.get_paths()["include"], "Python.h")
if not os.path.exists(header):
    sys.exit(f"setup: {sys.executable} has no {header}; install its development headers")
EOF

# A .venv left by another interpreter (or a removed one) is rebuilt.
if [ -e .venv ] && ! .venv/bin/python -c '' >/dev/null 2>&1; then
    echo "setup: .venv is broken, recreating it"
    rm -rf .venv
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# `python build_ffi.py` leaves _nghttp2.cpython-*.so in the tree, which
# CPython imports before the _nghttp2.abi3.so that pip builds: drop it.
rm -f nghttp2_cffi/_nghttp2.cpython-*.so
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"
tools/setup_stamp.sh >.venv/.setup-stamp  # tools/run.sh skips setup while it holds
echo "setup: ready ($(.venv/bin/python -c 'import sys, nghttp2_cffi as n; print(sys.implementation.name, sys.version.split()[0], "/ libnghttp2", n.VERSION)'))"
