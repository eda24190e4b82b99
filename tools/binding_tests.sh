#!/usr/bin/env bash
# Runs the binding's tests alone: nghttp2_cffi in memory, no sockets, no
# server, no external clients.  That is every test under tests/ except
# tests/server/ and files named test_server_*.py (where the server layer's
# tests live).  Used by the PyPy and other-libnghttp2 legs of .ci/run.
#
#   tools/binding_tests.sh PYTHON [pytest arguments]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 PYTHON [pytest arguments]" >&2; exit 2; }
py=$1
shift
cd "$(dirname "$0")/.."
exec "$py" -m pytest -p no:cacheprovider \
    --ignore=tests/server --ignore-glob='*/test_server_*' tests "$@"
