#!/bin/sh
# The inventory page timed as benches/queries.rs times its queries (the release binary under
# /usr/bin/time -f %M, wall time around it), on a store the bench filled:
#   scripts/bench-inventory-page.sh 100 --data-dir /tmp/kwq-1m
#   scripts/bench-inventory-page.sh 100 --data-dir /tmp/pgk --store postgres://postgres@127.0.0.1:5432/kw_bench_q
# KEYWARD_BIN: the binary (default target/release/keyward).
K=${KEYWARD_BIN:-target/release/keyward}
runs=$1; shift
for q in "inventory --platform aws --kind iam_role --limit 50 --offset 1000" "inventory --kind sts_session --limit 50 --offset 100000"; do
  : > /tmp/pb.times; : > /tmp/pb.rss
  i=0
  while [ $i -lt $runs ]; do
    t0=$(date +%s%N)
    /usr/bin/time -f %M -o /tmp/pb.one $K "$@" $q > /dev/null 2>&1 || echo FAIL
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 )) >> /tmp/pb.times
    tail -1 /tmp/pb.one >> /tmp/pb.rss
    i=$((i+1))
  done
  n=$(wc -l < /tmp/pb.times)
  p50=$(sort -n /tmp/pb.times | sed -n "$(( n / 2 + 1 ))p")
  p99=$(sort -n /tmp/pb.times | sed -n "$(( n * 99 / 100 + 1 ))p")
  r50=$(sort -n /tmp/pb.rss | sed -n "$(( n / 2 + 1 ))p")
  rmax=$(sort -n /tmp/pb.rss | tail -1)
  echo "  $q: $n runs, wall p50 $((p50/1000)) ms, p99 $((p99/1000)) ms; max RSS p50 $((r50/1024)) MB, max $((rmax/1024)) MB"
done
