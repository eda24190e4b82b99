#!/usr/bin/env bash
# h2spec 2.0.0 --strict (the HTTP/2 conformance suite) against the tutorial
# server (tools/h2spec_server.py) on h2c and on TLS; fails unless every test
# passes on both.  h2spec is built offline from ../shared/h2spec (Debian's Go
# packages) the first time, into .venv/h2spec.  About 10 s once built.
#
#   tools/h2spec.sh [PYTHON]     (default: .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-.venv/bin/python}
h2spec=${H2SPEC:-.venv/h2spec}
if [ ! -x "$h2spec" ]; then
    ../shared/h2spec/build.sh "$h2spec" >/dev/null
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

failed=0
for mode in h2c tls; do
    port=$(free_port)
    flags=()
    [ "$mode" = tls ] && flags=(--tls)
    "$py" tools/h2spec_server.py "$port" "${flags[@]}" >"$work/$mode.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do # 10 s to listen
        "$py" -c "import socket, sys; socket.create_connection(('127.0.0.1', $port), 1).close()" \
            2>/dev/null && break
        sleep 0.1
    done
    tls=()
    [ "$mode" = tls ] && tls=(-t -k)
    "$h2spec" --strict -h 127.0.0.1 -p "$port" "${tls[@]}" -o 3 >"$work/$mode.out" 2>&1 || true
    summary=$(grep -E '^[0-9]+ tests, ' "$work/$mode.out" | tail -1)
    echo "h2spec --strict ($mode): ${summary:-no summary}"
    if ! grep -Eq '^147 tests, 147 passed, 0 skipped, 0 failed' "$work/$mode.out"; then
        failed=1
        sed -n '/^Failures:/,$p' "$work/$mode.out" >&2
        echo "--- server output ($mode):" >&2
        cat "$work/$mode.log" >&2
    fi
done
exit $failed
