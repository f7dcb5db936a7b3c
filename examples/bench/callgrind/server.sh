#!/usr/bin/env bash
# Run from the workspace root: bash examples/bench/callgrind/server.sh NAME SERVER_BIN MODE   (MODE: grpc | rest | openapi)
#
# One callgrind profile of a server binary in BIN_DIR [target/release]: the server runs under
# `valgrind --tool=callgrind` pinned to CPU 0, bench-load on CPU 1. A first load of WARM [3]
# seconds warms the server (and valgrind's translation cache); then the counters are zeroed
# (callgrind_control -z), a load of SECS [15] seconds runs, and the profile is dumped
# (callgrind_control -d) to OUT [target/callgrind]/NAME.out.1, so start-up and warm-up are not
# in it. Load: 16 in flight (gRPC: on 2 HTTP/2 connections; REST and OpenAPI: 16 HTTP/1.1
# connections). Instructions per request: bash examples/bench/callgrind/per-request.sh OUT/NAME.out.1
set -euo pipefail
NAME=$1 BIN=$2 MODE=$3
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
OUT=${OUT:-${CARGO_TARGET_DIR:-target}/callgrind}
SECS=${SECS:-15} WARM=${WARM:-3}
mkdir -p "$OUT"
PORT=$(( 20000 + RANDOM % 20000 ))
case $MODE in
    grpc) FLAG=--grpc-port LOAD=(--concurrency 16 --connections 2) ;;
    rest) FLAG=--rest-port LOAD=(--rest --concurrency 16) ;;
    openapi) FLAG=--rest-port LOAD=(--openapi --concurrency 16) ;;
    *) echo "server.sh: MODE must be grpc, rest or openapi" >&2; exit 2 ;;
esac
rm -f "$OUT/$NAME".out*
taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$OUT/$NAME.out" "$BIN_DIR/$BIN" $FLAG $PORT 2> "$OUT/$NAME.vg" &
VPID=$!
for _ in $(seq 1 600); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.2; done
taskset -c 1 "$BIN_DIR/bench-load" --addr http://127.0.0.1:$PORT --seconds "$WARM" --warmup 0 "${LOAD[@]}" > "$OUT/$NAME.warm"
callgrind_control -z $VPID > /dev/null
taskset -c 1 "$BIN_DIR/bench-load" --addr http://127.0.0.1:$PORT --seconds "$SECS" --warmup 0 "${LOAD[@]}" > "$OUT/$NAME.load"
callgrind_control -d $VPID > /dev/null
kill -TERM $VPID; wait $VPID || true
echo "$OUT/$NAME.out.1"
