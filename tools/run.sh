#!/usr/bin/env bash
# The main job: sets up a fresh machine (tools/setup.sh), then runs the
# HTTP/2 server: with no arguments, the embedded demo page over TLS on
# https://127.0.0.1:8443/.  Arguments go to `python -m nghttp2` (--help).
#
# It runs where you stand: `cd site && path/to/tools/run.sh .` serves `site`,
# and --handler/--asgi modules load from there.  tools/setup.sh runs only
# when .venv is missing or its inputs changed since the last setup (a stamp
# of pyproject.toml, setup.py, build_ffi.py, csrc/* and setup.sh itself).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
stamp_file="$repo/.venv/.setup-stamp"

stamp() {
    (cd "$repo" && cat pyproject.toml setup.py build_ffi.py tools/setup.sh csrc/* \
        && echo "${PYTHON:-python3}") | sha256sum | cut -d' ' -f1
}

current=$(stamp)
if [ ! -x "$repo/.venv/bin/python" ] || ! compgen -G "$repo/nghttp2_cffi/_nghttp2*.so" >/dev/null \
    || [ "$(cat "$stamp_file" 2>/dev/null)" != "$current" ]; then
    "$repo/tools/setup.sh" >&2
    echo "$current" >"$stamp_file"
fi
exec "$repo/.venv/bin/python" -m nghttp2 "$@"
