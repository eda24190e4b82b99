#!/usr/bin/env bash
# Runs the binding's tests alone: nghttp2_cffi in memory, no sockets, no
# server, no TLS.  That is every test under tests/ except the server-side
# layers, which live in their own directories (tests/server/, tests/client/,
# tests/security/, tests/interop/) or in files named test_server_* / test_client_*,
# and the package's own tests (tests/package/: the wheel, README, docs).  Used by
# the PyPy and other-libnghttp2 legs of .ci/run.
#
#   tools/binding_tests.sh PYTHON [pytest arguments]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 PYTHON [pytest arguments]" >&2; exit 2; }
py=$1
shift
cd "$(dirname "$0")/.."
exec "$py" -m pytest -p no:cacheprovider \
    --ignore=tests/server --ignore=tests/client --ignore=tests/security --ignore=tests/interop \
    --ignore=tests/package \
    --ignore-glob='*/test_server_*' --ignore-glob='*/test_client_*' \
    tests "$@"
