#!/usr/bin/env bash
# The main job: sets up a fresh machine (tools/setup.sh), then runs the
# HTTP/2 server: with no arguments, the embedded demo page over TLS on
# https://127.0.0.1:8443/.  Arguments go to `python -m nghttp2` (--help).
#
# It runs where you stand: `cd site && path/to/tools/run.sh .` serves `site`,
# and --handler/--asgi modules load from there.  tools/setup.sh runs only
# when .venv is missing or what it installs from changed since it last ran
# (tools/setup_stamp.sh), so a second start takes well under 2 seconds.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$repo/.venv/bin/python" ] \
    || [ "$(cat "$repo/.venv/.setup-stamp" 2>/dev/null)" != "$("$repo/tools/setup_stamp.sh")" ]; then
    "$repo/tools/setup.sh" >&2
fi
exec "$repo/.venv/bin/python" -m nghttp2 "$@"
