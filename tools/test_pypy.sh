#!/usr/bin/env bash
# The PyPy leg: builds nghttp2_cffi for Debian's pypy3 (cffi is built into
# PyPy) in .venv-pypy and runs the binding's tests there, then a smoke test of
# the server itself on PyPy (tools/server_smoke.sh: h2load and nghttp against
# `python -m nghttp2`, a clean SIGTERM stop).  Installs pypy3, pypy3-dev
# (headers), pypy3-venv and nghttp2-client when missing.  Extra arguments go
# to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
need=()
for pkg in pypy3 pypy3-dev pypy3-venv libnghttp2-dev pkg-config gcc libc6-dev nghttp2-client; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "pypy: installing ${need[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

if [ -e .venv-pypy ] && ! .venv-pypy/bin/python -c '' >/dev/null 2>&1; then
    rm -rf .venv-pypy
fi
[ -x .venv-pypy/bin/python ] || pypy3 -m venv .venv-pypy
# cryptography (for trustme) has PyPy wheels but no easy source build.
# hypothesis 6.156+ ships only native wheels; their PyPy ones need a newer
# PyPy than Debian 13's 7.3.19 (undefined symbol PyPyModule_FromDefAndSpec2),
# 6.155 is the last pure-Python release.
.venv-pypy/bin/python -m pip install -q --only-binary=cryptography -e '.[test]' 'hypothesis<6.156'
.venv-pypy/bin/python -c 'import sys, nghttp2_cffi as n; print("pypy: ready (%s %s / libnghttp2 %s)" % (sys.implementation.name, sys.version.split()[0], n.VERSION))'
rc=0
tools/binding_tests.sh .venv-pypy/bin/python "$@" || rc=$?
echo
tools/server_smoke.sh .venv-pypy/bin/python || rc=$?
exit $rc
