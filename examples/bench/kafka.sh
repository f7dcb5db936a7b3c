#!/usr/bin/env bash
# Run from the workspace root (BENCHMARKS.md, "Kafka (issue 17)"):
#   for b in kafka nats amqp; do SB_BROKERS_DIR=/tmp/sb-brokers-bench bash scripts/brokers.sh start $b; done
#   eval "$(SB_BROKERS_DIR=/tmp/sb-brokers-bench bash scripts/brokers.sh env)"
#   bash examples/bench/kafka.sh
#
# Events (publish → handled) on tansu, switchboard vs the hand-written rdkafka anchor, each side
# consumer on CPU 0 and publisher on CPU 1 (taskset), the broker restarted (storage in memory:
# fresh topics and groups) before every run; within a round both payloads, the sides'
# order alternating from round to round. Then request-reply (Sink.Unary, RR_CONCURRENCY callers)
# over kafka:// / nats:// / amqp:// (server CPU 0, client CPU 1), RR_ROUNDS rounds.
#
# Sides (SIDES): sb (switchboard), raw (the hand-written rdkafka loop, body only), raw-ce (the
# same loop writing and reading switchboard's eight event headers: `--cloudevents`); each run
# also prints the broker's CPU seconds during it (tansu's share of the 2-core budget).
#
# Env knobs: ROUNDS [3], COUNT [20000] events per run, PAYLOADS ["64 1024"], INFLIGHT [64], SIDES,
# RR_ROUNDS [2], RR_SECONDS [5], RR_CONCURRENCY [16], RR_URLS [the exported kafka/nats/amqp
# URLs], BUILD [1], BIN_DIR [target/release].
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN=${BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}/bench-kafka
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-20000}
PAYLOADS=${PAYLOADS:-"64 1024"}
INFLIGHT=${INFLIGHT:-64}
RR_ROUNDS=${RR_ROUNDS:-2}
RR_SECONDS=${RR_SECONDS:-5}
RR_CONCURRENCY=${RR_CONCURRENCY:-16}
SIDES=${SIDES:-"sb raw raw-ce"}
: "${SWITCHBOARD_KAFKA_URL:?start tansu first: eval \"\$(bash scripts/brokers.sh start kafka)\"}"
RR_URLS=${RR_URLS:-"$SWITCHBOARD_KAFKA_URL ${SWITCHBOARD_NATS_URL:-} ${SWITCHBOARD_AMQP_URL:-}"}
CTL=${SWITCHBOARD_BROKER_CTL:-$ROOT/scripts/brokers.sh}

if [[ ${BUILD:-1} == 1 ]]; then
    (cd "$ROOT" && cargo build --release -p bench --features kafka,amqp,nats --bin bench-kafka)
fi

READY=$(mktemp -u /tmp/bench-kafka.XXXXXX.ready)

# The broker's CPU (user + system, in clock ticks of 10 ms) so far: how hard each side's
# consumer and publisher make tansu work.
broker_cpu() {
    local dir=${SB_BROKERS_DIR:-${TMPDIR:-/tmp}/switchboard-brokers-$(id -u)} pid
    [[ -r $dir/kafka.pid ]] || { echo 0; return; }
    pid=$(tr -dc '0-9' <"$dir/kafka.pid")
    awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 100 / hz)}' "/proc/$pid/stat" 2>/dev/null || echo 0
}

events() { # side payload
    local side=$1 payload=$2 url=$SWITCHBOARD_KAFKA_URL
    bash "$CTL" restart kafka >/dev/null 2>&1
    local common=(--url "$url" --count "$COUNT" --payload "$payload" --inflight "$INFLIGHT" --ready "$READY" --topic "bench.raw.$RANDOM")
    # raw-ce: the anchor with switchboard's event headers (`--cloudevents`).
    if [[ $side == raw-ce ]]; then side=raw; common+=(--cloudevents); fi
    rm -f "$READY"
    taskset -c 0 "$BIN" --role "$side-consume" "${common[@]}" >/tmp/bench-kafka.consume.out &
    local cpid=$!
    local broker_before; broker_before=$(broker_cpu)
    taskset -c 1 "$BIN" --role "$side-publish" "${common[@]}" >/tmp/bench-kafka.publish.out
    wait "$cpid"
    local broker_after; broker_after=$(broker_cpu)
    echo "round=$r $(cat /tmp/bench-kafka.consume.out) $(cat /tmp/bench-kafka.publish.out) broker_cpu_s=$(( (broker_after - broker_before) / 100 )).$(printf %02d $(( (broker_after - broker_before) % 100 ))) load=$(cut -d' ' -f1 /proc/loadavg)"
}

for r in $(seq 1 "$ROUNDS"); do
    for payload in $PAYLOADS; do
        order=$SIDES
        if (( r % 2 == 0 )); then order=$(tr ' ' '\n' <<<"$SIDES" | tac | paste -sd' '); fi
        for side in $order; do events "$side" "$payload"; done
    done
done

bash "$CTL" restart kafka >/dev/null 2>&1
for r in $(seq 1 "$RR_ROUNDS"); do
    for url in $RR_URLS; do
        taskset -c 0 "$BIN" --role rr-serve --url "$url" >/dev/null &
        spid=$!
        echo "round=$r $(taskset -c 1 "$BIN" --role rr --url "$url" --concurrency "$RR_CONCURRENCY" --seconds "$RR_SECONDS" --payload 64) load=$(cut -d' ' -f1 /proc/loadavg)"
        kill "$spid"; wait "$spid" 2>/dev/null || true
    done
done
