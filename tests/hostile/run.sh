#!/usr/bin/env bash
# The hostile-client suite: a real `keyward serve` on a loopback port, started with a soft
# open-file limit of 1,024 (as a default shell gives), probed by probes.py: deep nesting,
# four concurrent 1 GiB gzip bombs (peak RSS, /healthz latency), 1,100 idle sockets, a
# slowloris head and body, auth scheme case, Origin: null, note size. Every loop is
# bounded; only 127.0.0.1 is contacted. KEYWARD_BIN picks the binary (default: cargo
# build, then target/debug/keyward).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${KEYWARD_BIN:-}
if [ -z "$bin" ]; then
    (cd "$root" && cargo build -q -p keyward)
    bin=${CARGO_TARGET_DIR:-$root/target}/debug/keyward
fi
work=$(mktemp -d)
port=${KEYWARD_HOSTILE_PORT:-18790}
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$bin" --data-dir "$work/data" token create --role operator --name hostile 2>/dev/null > "$work/operator.token"
(
    ulimit -Sn 1024
    exec "$bin" --data-dir "$work/data" serve --listen "127.0.0.1:$port" \
        --header-timeout 2 --body-timeout 2
) > "$work/serve.log" 2>&1 &
pid=$!
echo "$pid" > "$work/serve.pid"
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
python3 "$here/probes.py" "$bin" "$work/data" "$port"
kill -0 "$pid" || { echo "keyward serve died"; cat "$work/serve.log"; exit 1; }
