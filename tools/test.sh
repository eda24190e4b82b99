#!/usr/bin/env bash
# The test command: sets up a fresh machine (tools/setup.sh), then runs the
# whole suite.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
.venv/bin/python -m pytest "$@"
