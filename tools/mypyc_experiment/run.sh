#!/usr/bin/env bash
# The mypyc experiment of issue 14 (see README.md beside this file): builds a
# copy of commit 64ddf2f with the per-request layer compiled by mypyc, for an
# A/B of server CPU per request against the plain checkout.
#
#   tools/mypyc_experiment/run.sh full    [DEST]  # compile.patch, 13 modules
#   tools/mypyc_experiment/run.sh partial [DEST]  # no patch: session, stream, validation
#
# Needs this checkout's .venv (mypy, which ships mypyc, is in the dev extra)
# and its built _nghttp2 extension; DEST (default /tmp/nghttp2-mypyc) borrows
# both.  Then measure, e.g. with the team's A/B script:
#   python3 /work/wt/ab.py "$PWD,DEST" a,asgi 3
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
MODE=${1:-full}
DEST=${2:-/tmp/nghttp2-mypyc}
BASE=64ddf2f

rm -rf "$DEST"
mkdir -p "$DEST"
git archive "$BASE" | tar -x -C "$DEST"
cp nghttp2_cffi/_nghttp2*.so "$DEST/nghttp2_cffi/"
ln -s "$REPO/.venv" "$DEST/.venv"
cd "$DEST"
case "$MODE" in
full)
    git apply "$REPO/tools/mypyc_experiment/compile.patch"
    # HTTP11Protocol and the handler base stay out: the first subclasses
    # Connection (a compiled class refuses interpreted subclasses' instances
    # as self), the second has an async generator and is subclassed by users.
    mods="nghttp2_cffi/session.py nghttp2/server/stream.py nghttp2/server/response.py
          nghttp2/server/connection.py nghttp2/server/protocol.py nghttp2/server/validation.py
          nghttp2/server/http11.py nghttp2/server/http11_requests.py
          nghttp2/server/http11_upgrade.py nghttp2/server/http11_framing.py
          nghttp2/server/http11_parser.py"
    ;;
partial)
    mods="nghttp2_cffi/session.py nghttp2/server/stream.py nghttp2/server/validation.py"
    ;;
*)
    echo "usage: $0 full|partial [DEST]" >&2
    exit 2
    ;;
esac
# shellcheck disable=SC2086
.venv/bin/mypyc $mods >build.log 2>&1 || { tail -20 build.log; exit 1; }
echo "built $DEST ($MODE):"
find . -name '*.cpython-*.so' ! -name '_nghttp2*' | sort
