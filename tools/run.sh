#!/usr/bin/env bash
# The main job: sets up a fresh machine (tools/setup.sh), then runs the
# HTTP/2 server: with no arguments, the embedded demo page over TLS on
# https://127.0.0.1:8443/.  Arguments go to `python -m nghttp2` (--help).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh >&2
exec .venv/bin/python -m nghttp2 "$@"
