#!/usr/bin/env bash
# Run from anywhere: PREV=<old release dir> HEAD=<new release dir> bash examples/bench/callgrind/client.sh
#
# The client side of "no cost when unused" (issue 16): bench-client of an older build (PREV) and
# of a newer one (HEAD), plain generated clients and HEAD's client over a one-endpoint static
# fleet (`--fleet`), against one bench-server (HEAD's) pinned to CPU 0, clients on CPU 1. Wall
# clock (calls per second, the three alternating, R rounds of CALLS calls) and callgrind's
# instructions per call of the client process (CG_CALLS calls plus 1,000 warm-up calls; start-up
# included, the same for all three). bench-client of an older commit: copy
# examples/bench/src/client_load.rs there without its `fleet-begin`…`fleet-end` blocks.
set -euo pipefail
PREV=${PREV:-/work/sb-prev/target/release} HEAD=${HEAD:-/work/sb-head/target/release}
R=${R:-5} CALLS=${CALLS:-30000} CG_CALLS=${CG_CALLS:-20000}
GP=$(( 20000 + RANDOM % 10000 )); RP=$(( GP + 1 ))
taskset -c 0 "$HEAD/bench-server" --grpc-port $GP --rest-port $RP > /dev/null 2>&1 &
SPID=$!; trap 'kill $SPID' EXIT
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$RP) 2>/dev/null && break; sleep 0.1; done
run() { taskset -c 1 "$@" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["rps"], d["errors"])'; }
for mode in grpc rest; do
  for r in $(seq 1 "$R"); do
    p=$(run "$PREV/bench-client" --$mode http://127.0.0.1:$([ $mode = grpc ] && echo $GP || echo $RP) --calls $CALLS)
    h=$(run "$HEAD/bench-client" --$mode http://127.0.0.1:$([ $mode = grpc ] && echo $GP || echo $RP) --calls $CALLS)
    f=$(run "$HEAD/bench-client" --$mode http://127.0.0.1:$([ $mode = grpc ] && echo $GP || echo $RP) --calls $CALLS --fleet)
    echo "$mode round $r: prev $p | head $h | head+fleet $f"
  done
done
for mode in grpc rest; do
  port=$([ $mode = grpc ] && echo $GP || echo $RP)
  for v in prev head fleet; do
    bin=$([ $v = prev ] && echo "$PREV" || echo "$HEAD")/bench-client
    extra=$([ $v = fleet ] && echo --fleet || true)
    out=/tmp/cg-client-$mode-$v.out
    taskset -c 1 valgrind --tool=callgrind --callgrind-out-file=$out "$bin" --$mode http://127.0.0.1:$port --calls $CG_CALLS $extra > /dev/null 2>/tmp/cg-client-$mode-$v.vg
    total=$(grep -m1 "^summary:\|^totals:" $out | awk '{print $2}')
    echo "$mode $v: $total instructions, $(( total / (CG_CALLS + 1000) )) per call"
  done
done
