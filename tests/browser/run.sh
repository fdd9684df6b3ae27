#!/usr/bin/env bash
# Runs the dashboard end to end in Debian's headless Chromium: a fresh store with the
# bundled example estate, `keyward serve` on a loopback port, an operator token, and
# dashboard.mjs (playwright-core) signing in, browsing, and acknowledging a finding.
#
#   tests/browser/run.sh                  # the test
#   tests/browser/run.sh docs/screenshots # the test, saving one PNG per page there
#
# Installs chromium (apt) and playwright-core (npm ci) when missing. KEYWARD_BIN picks the
# binary (default: cargo build, then target/debug/keyward).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
shots=${1:-}

if ! command -v chromium >/dev/null 2>&1; then
    (apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; }) \
        || sudo apt-get install -y -qq chromium
fi
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

bin=${KEYWARD_BIN:-}
if [ -z "$bin" ]; then
    (cd "$root" && cargo build -q -p keyward)
    bin=${CARGO_TARGET_DIR:-$root/target}/debug/keyward
fi
work=$(mktemp -d)
port=${KEYWARD_BROWSER_PORT:-18789}
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
"$bin" --data-dir "$work/data" ingest "$root/examples/estate" > /dev/null
token=$("$bin" --data-dir "$work/data" token create --role operator --name browser-test 2>/dev/null)
"$bin" --data-dir "$work/data" serve --listen "127.0.0.1:$port" > "$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
if [ -n "$shots" ]; then
    mkdir -p "$shots"
    shots=$(cd "$shots" && pwd)
fi
KEYWARD_URL="http://127.0.0.1:$port" KEYWARD_TOKEN="$token" \
    KEYWARD_IDENTITY='arn:aws:iam::111122223333:role/data-pipeline' SCREENSHOTS="$shots" \
    node "$here/dashboard.mjs" || { echo "--- serve log"; cat "$work/serve.log"; exit 1; }
