#!/usr/bin/env bash
# One MadeYouReset run against a fresh server, with the server's own figures
# (GET /stats: invocations, CPU s, RSS KiB, asyncio tasks) before and after:
#   tools/attacks/run.sh handler|asgi|granian|nghttpd VARIANT N [PATH]
# PYTHONPATH=/path/to/another/tree measures that tree (the old code, say).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-$here/../../.venv/bin/python}
target=$1 variant=$2 n=$3 path=${4:-/}
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
case $target in
    granian) (cd "$here" && exec "$(dirname "$py")/granian" --interface asgi --http 2 --host 127.0.0.1 \
        --port "$port" --workers 1 --no-ws target:app) >/dev/null 2>&1 & ;;
    nghttpd) mkdir -p /tmp/nghttpd-www && echo hello >/tmp/nghttpd-www/index.html
        nghttpd --no-tls -d /tmp/nghttpd-www "$port" >/dev/null 2>&1 & path=/index.html ;;
    *) "$py" "$here/target.py" "$target" "$port" >/dev/null 2>&1 & ;;
esac
pid=$!
for _ in $(seq 100); do
    "$py" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
    sleep 0.1
done
sleep 0.3
stats() {
    if [ "$target" = nghttpd ]; then ps -o cputime= -p "$pid"; return; fi
    "$py" -c "import sys; sys.path.insert(0, '$here/../../tests/security')
from security_support import fetch; print(fetch(('127.0.0.1', $port), '/stats')[1].decode())"
}
before=$(stats)
timeout 120 "$py" "$here/madeyoureset.py" "$port" "$variant" "$n" "$path"
echo "  $target: [invocations cpu_s rss_kib tasks] before $before, after $(stats)"
kill "$pid"
wait "$pid" 2>/dev/null
