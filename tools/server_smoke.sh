#!/usr/bin/env bash
# Smoke test of the server itself under PYTHON (the PyPy leg runs it after
# the binding's tests): `python -m nghttp2 --no-tls --port 0` serves its demo
# page (a page whose stylesheet it pushes) on a free port; h2load sends 2000
# requests over 4 connections (-m 4), nghttp fetches the page once and must
# get the push; then SIGTERM must stop the server with exit status 0.  A second
# server over TLS answers h2load over h2 and HTTP/1.1.  Every request must
# succeed.  Takes a few seconds; 30 s at most.
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
tls_pid=""
cleanup() {
    for p in $pid $tls_pid; do
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    done
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

# TLS (the server drives it itself, over ssl.MemoryBIO): a second server with
# its development certificate; h2load over https, h2 and HTTP/1.1.
"$py" -m nghttp2 --host 127.0.0.1 --port 0 --no-access-log >"$work/tls.log" 2>&1 &
tls_pid=$!
tls_url=""
for _ in $(seq 150); do
    tls_url=$(grep -o -m1 'https://127\.0\.0\.1:[0-9]*/' "$work/tls.log" || true)
    [ -n "$tls_url" ] && break
    kill -0 "$tls_pid" 2>/dev/null || { cat "$work/tls.log" >&2; fail "the TLS server exited before it listened"; }
    sleep 0.1
done
[ -n "$tls_url" ] || fail "no start-up line of the TLS server within 15 s"
for proto in "" --h1; do
    timeout 20 h2load $proto -n 500 -c 4 "$tls_url" >"$work/h2load-tls.out" 2>&1 || true
    grep -q '^requests: 500 total, 500 started, 500 done, 500 succeeded' "$work/h2load-tls.out" || {
        cat "$work/h2load-tls.out" "$work/tls.log" >&2
        fail "h2load $proto -n 500 -c 4 over TLS: not every request succeeded"
    }
done
kill -TERM "$tls_pid"
wait "$tls_pid" || fail "the TLS server did not exit cleanly after SIGTERM"
tls_pid=""
echo "server smoke: TLS: h2load -n 500 -c 4 over h2 and HTTP/1.1: all succeeded"

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
