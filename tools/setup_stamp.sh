#!/usr/bin/env bash
# Prints the stamp of what tools/setup.sh installs from: a hash of
# pyproject.toml, setup.py, build_ffi.py, csrc/*, tools/setup.sh and the
# interpreter asked for.  setup.sh writes it to .venv/.setup-stamp when it
# is done; tools/run.sh runs setup.sh again only when it differs.
set -euo pipefail
cd "$(dirname "$0")/.."
{
    cat pyproject.toml setup.py build_ffi.py tools/setup.sh csrc/*
    echo "${PYTHON:-python3}"
} | sha256sum | cut -d' ' -f1
