#!/usr/bin/env bash
# Run from the workspace root: bash examples/bench/callgrind/queue.sh NAME QUEUE_BENCH_BIN
#
# queue-bench on the embedded broker (client, broker and server in one process; 64 callers,
# 64-byte body) under callgrind, pinned to CPU 0. The counters are zeroed ZERO_AT [6] seconds
# after the start (past valgrind's start-up and the 1 s warm-up); the profile is written to
# OUT [target/callgrind]/NAME.out when the program exits after its SECS [20] second window.
set -euo pipefail
NAME=$1 BIN=$2
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
OUT=${OUT:-${CARGO_TARGET_DIR:-target}/callgrind}
SECS=${SECS:-20} ZERO_AT=${ZERO_AT:-6}
mkdir -p "$OUT"
rm -f "$OUT/$NAME".out*
taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$OUT/$NAME.out" "$BIN_DIR/$BIN" --url memory://bench --seconds "$SECS" --warmup 1 --json > "$OUT/$NAME.load" 2> "$OUT/$NAME.vg" &
VPID=$!
sleep "$ZERO_AT"
callgrind_control -z $VPID > /dev/null
wait $VPID
echo "$OUT/$NAME.out"
