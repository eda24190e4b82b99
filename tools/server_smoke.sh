#!/usr/bin/env bash
# Smoke test of the server itself under PYTHON (the PyPy leg runs it after
# the binding's tests): `python -m nghttp2 --no-tls --port 0` serves its demo
# page (a page whose stylesheet it pushes) on a free port; h2load sends 2000
# requests over 4 connections (-m 4), nghttp fetches the page once and must
# get the push; then SIGTERM must stop the server with exit status 0.  Every
# request must succeed.  Takes a few seconds; 30 s at most.
#
#   tools/server_smoke.sh PYTHON
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 PYTHON" >&2; exit 2; }
py=$1
cd "$(dirname "$0")/.."
for tool in h2load nghttp; do
    command -v "$tool" >/dev/null || {
        echo "server smoke: FAILED: $tool is missing (apt-get install nghttp2-client)" >&2
        exit 1
    }
done

work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "server smoke: FAILED: $*" >&2
    echo "--- server output:" >&2
    cat "$work/server.log" >&2 || true
    exit 1
}

start=$SECONDS
impl=$("$py" -c 'import platform; print(platform.python_implementation(), platform.python_version())')
"$py" -m nghttp2 --no-tls --host 127.0.0.1 --port 0 --no-access-log >"$work/server.log" 2>&1 &
pid=$!

url=""
for _ in $(seq 150); do # 15 s for the start-up line with the port
    url=$(grep -o -m1 'http://127\.0\.0\.1:[0-9]*/' "$work/server.log" || true)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || fail "the server exited before it listened"
    sleep 0.1
done
[ -n "$url" ] || fail "no start-up line within 15 s"
echo "server smoke ($impl): serving on $url"

timeout 20 h2load -n 2000 -c 4 -m 4 "$url" >"$work/h2load.out" 2>&1 || true
grep -q '^requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout' \
    "$work/h2load.out" && grep -q '^status codes: 2000 2xx' "$work/h2load.out" || {
    cat "$work/h2load.out" >&2
    fail "h2load -n 2000 -c 4 -m 4: not every request succeeded"
}
echo "server smoke: h2load -n 2000 -c 4 -m 4: 2000 of 2000 succeeded, all 2xx"

# -s: one line per response: id, times, code, size, path; a pushed one has
# '*' after its responseEnd time.
timeout 10 nghttp -s "$url" >"$work/nghttp.out" 2>&1 || {
    cat "$work/nghttp.out" >&2
    fail "nghttp exited with an error"
}
grep -Eq ' 200 +[0-9]+ /$' "$work/nghttp.out" && grep -Eq '\* .* 200 +[0-9]+ /style\.css$' "$work/nghttp.out" || {
    cat "$work/nghttp.out" >&2
    fail "nghttp did not get the page (200) and its pushed stylesheet (200)"
}
echo "server smoke: nghttp: / 200 and the pushed /style.css 200"

kill -TERM "$pid"
for _ in $(seq 100); do # 10 s for the graceful stop
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "still running 10 s after SIGTERM"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM (expected 0)"
echo "server smoke: SIGTERM: exit status 0; passed in $((SECONDS - start)) s"
