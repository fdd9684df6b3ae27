#!/usr/bin/env bash
# Breach rotation benchmark: N IAM users, each with one access key living in a Secrets
# Manager secret of its own, on moto; `keyward rotate --all --breach --execute --yes
# --concurrency C` for each C; prints wall time, rotations/s and the concurrency. Every run
# gets fresh users (a rotated user has two keys and would be skipped).
#
#   scripts/bench-breach-rotation.sh [N=1000] [CONCURRENCIES="4 16"]
#
# Needs moto (`../shared/tools/aws/moto-up DIR PORT`, then `. DIR/env`: AWS_ENDPOINT_URL
# and its Python, which has boto3) and a built keyward ($KEYWARD, default the release build
# in $CARGO_TARGET_DIR or target/). Never point it at a real account.
set -euo pipefail
n=${1:-1000}
concurrencies=${2:-"4 16"}
here=$(cd "$(dirname "$0")" && pwd)
target=${CARGO_TARGET_DIR:-$here/../target}
keyward=${KEYWARD:-$target/release/keyward}
[ -x "$keyward" ] || keyward=$target/debug/keyward
: "${AWS_ENDPOINT_URL:?start moto and source its env first}"
python=$(command -v python3)
[ -x "$(dirname "$(command -v moto_server 2>/dev/null || echo /x/x)")/python" ] &&
	python="$(dirname "$(command -v moto_server)")/python"
echo "keyward: $keyward"
echo "machine: $(nproc) cores ($(uname -m)), moto on the same cores"
for c in $concurrencies; do
	data=$(mktemp -d)
	t0=$(date +%s.%N)
	prefix=$("$python" "$here/breach-fixture.py" "$n")
	t1=$(date +%s.%N)
	"$keyward" --data-dir "$data" rotate --all --breach --execute --yes \
		--path-prefix "$prefix" --namespace keyward-bench-none --concurrency "$c" \
		>"$data/out.json" 2>"$data/err" || true
	t2=$(date +%s.%N)
	summary=$(tail -1 "$data/err")
	awk -v n="$n" -v c="$c" -v setup="$(echo "$t1 - $t0" | bc)" -v wall="$(echo "$t2 - $t1" | bc)" -v s="$summary" 'BEGIN {
		printf "users %d  concurrency %d  setup %.1f s  rotation wall %.1f s  %.2f rotations/s\n  %s\n", n, c, setup, wall, n / wall, s
	}'
	rm -rf "$data"
done
