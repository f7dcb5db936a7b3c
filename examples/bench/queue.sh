#!/usr/bin/env bash
# Run from the workspace root: bash examples/bench/queue.sh [memory] [amqp] [nats]   (default: all three; env knobs below; see BENCHMARKS.md)
#
# Queue request-reply throughput of bench.Echo (EchoMsg with a PAYLOAD-byte body):
#
#   memory  the embedded broker (memory://): queue-bench, generated EchoQueueClient and
#           EchoQueueServer in one process (the embedded broker is in-process by nature).
#           No baseline: the number is compared with the 100k calls/s target.
#   amqp    RabbitMQ: switchboard   = bench-server --amqp URL  +  queue-bench --url URL
#                     baseline      = queue-baseline --role server  +  queue-baseline --role client
#                                     (hand-written lapin: direct reply-to, manual acks + prefetch)
#   nats    NATS:     the same pairs with nats://… (baseline: async-nats Client::request and a
#                     queue-group subscriber replying)
#
# On RabbitMQ a third side runs in every round (PROTOCOL=1, the default): protocol =
# queue-baseline --protocol, the hand-written loop carrying what switchboard's protocol puts on
# a plain call (the method as the `type` property, published `mandatory`).
# switchboard/baseline is the acceptance ratio; protocol/baseline prices the
# protocol, switchboard/protocol the rest of the runtime. (On NATS a plain call carries no
# headers at all, so the bare baseline is already its wire twin.)
#
# Server and client are separate processes on both sides, the broker a third one. Both clients
# run the same load loop (src/queue_baseline_load.rs): CONCURRENCY callers back to back, WARMUP
# seconds not counted, then a SECONDS window. Rounds alternate the order (switchboard first in
# odd rounds, baseline first in even ones), so slow drift of the machine hits both alike. Per
# round and side: calls/s, p50/p99 latency, and CPU (% of one core) of the server, the client,
# the broker and everything else; at the end, medians, the ratio of the medians, the per-round
# (paired) ratios and their median, and CPU microseconds per call (server + client + broker).
#
# Brokers: SWITCHBOARD_AMQP_URL / SWITCHBOARD_NATS_URL when set; otherwise scripts/brokers.sh
# (if present) starts or reuses its brokers and exports them; otherwise the defaults
# amqp://guest:guest@127.0.0.1:5672/%2f and nats://127.0.0.1:4222 if something listens there.
# A broker that cannot be reached is skipped with a message.
#
# Env knobs (defaults in brackets):
#   SECONDS [5]        measured window per run
#   WARMUP [1]         warm-up per run (not counted)
#   ROUNDS [5]         paired rounds per broker and payload
#   CONCURRENCY [64]   callers in flight
#   PAYLOADS [64]      EchoMsg body sizes to run, space-separated (e.g. "64 1024")
#   PREFETCH [256]     server prefetch, both sides (AMQP basic.qos; switchboard's NATS permits)
#   PROTOCOL [1]       0 = skip the "protocol" side on RabbitMQ
#   FAILURES [5]       failed runs (server or client exited with an error, e.g. because the
#                      broker was restarted) tried again, in all, before the script gives up
#   BUILD [1]          0 = skip `cargo build --release -p bench --features amqp,nats`
#   QUIET_WAIT [60]    before each run, wait up to this many seconds for the machine to be
#                      nearly idle (<= QUIET_MAX % busy for 3 s in a row); 0 = don't wait
#   QUIET_MAX [10]     % of all CPUs counted as "nearly idle" (the brokers' idle ticking is ~1-3%)
#   BIN_DIR            where the binaries are [${CARGO_TARGET_DIR:-<root>/target}/release]

# SECONDS is also bash's "seconds since start" variable: read the caller's value before any
# time passes.
if printenv SECONDS >/dev/null 2>&1; then DURATION=$SECONDS; else DURATION=5; fi

set -euo pipefail

WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-5}
CONCURRENCY=${CONCURRENCY:-64}
PAYLOADS=${PAYLOADS:-64}
PREFETCH=${PREFETCH:-256}
PROTOCOL=${PROTOCOL:-1}
FAILURES=${FAILURES:-5}
FAILED=0
BUILD=${BUILD:-1}
QUIET_WAIT=${QUIET_WAIT:-60}
QUIET_MAX=${QUIET_MAX:-10}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}

die() { echo "queue.sh: $*" >&2; exit 1; }
note() { echo "queue.sh: $*" >&2; }

for v in DURATION ROUNDS CONCURRENCY PREFETCH QUIET_WAIT QUIET_MAX; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
[[ $WARMUP =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "WARMUP must be a number of seconds (got '$WARMUP')"
for p in $PAYLOADS; do [[ $p =~ ^[0-9]+$ ]] || die "PAYLOADS must be byte counts (got '$p')"; done
[[ $DURATION -gt 0 && $ROUNDS -gt 0 ]] || die "SECONDS and ROUNDS must be at least 1"

MODES=("$@")
[[ ${#MODES[@]} -gt 0 ]] || MODES=(memory amqp nats)
for m in "${MODES[@]}"; do
    [[ $m == memory || $m == amqp || $m == nats ]] || die "modes are memory, amqp and nats (got '$m')"
done
wants() { local m; for m in "${MODES[@]}"; do [[ $m == "$1" ]] && return 0; done; return 1; }

if [[ $BUILD != 0 ]]; then
    note "building: cargo build --release -p bench --features amqp,nats"
    (cd "$ROOT" && cargo build --release -p bench --features amqp,nats --bin queue-bench --bin queue-baseline --bin bench-server) ||
        die "cargo build failed"
fi
for b in queue-bench queue-baseline bench-server; do
    [[ -x $BIN_DIR/$b ]] || die "$BIN_DIR/$b is missing (build with BUILD=1)"
done

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# host and port of a broker URL ($1).
host_port() {
    local rest=${1#*://}
    rest=${rest##*@}
    rest=${rest%%/*}
    rest=${rest%%,*}
    local host=${rest%%:*} port=${rest##*:}
    [[ $port == "$rest" ]] && port=$2
    echo "$host $port"
}

# ---- brokers ---------------------------------------------------------------------------------

if { wants amqp && [[ -z ${SWITCHBOARD_AMQP_URL:-} ]]; } || { wants nats && [[ -z ${SWITCHBOARD_NATS_URL:-} ]]; }; then
    if [[ -f $ROOT/scripts/brokers.sh ]]; then
        need=()
        wants amqp && [[ -z ${SWITCHBOARD_AMQP_URL:-} ]] && need+=(amqp)
        wants nats && [[ -z ${SWITCHBOARD_NATS_URL:-} ]] && need+=(nats)
        for b in "${need[@]}"; do
            note "starting (or reusing) $b through scripts/brokers.sh"
            exports=$(bash "$ROOT/scripts/brokers.sh" start "$b") || note "scripts/brokers.sh could not start $b"
            eval "$exports"
        done
    else
        if wants amqp && [[ -z ${SWITCHBOARD_AMQP_URL:-} ]] && port_open 127.0.0.1 5672; then
            SWITCHBOARD_AMQP_URL='amqp://guest:guest@127.0.0.1:5672/%2f'
        fi
        if wants nats && [[ -z ${SWITCHBOARD_NATS_URL:-} ]] && port_open 127.0.0.1 4222; then
            SWITCHBOARD_NATS_URL='nats://127.0.0.1:4222'
        fi
    fi
fi

# The pid of the process listening on the broker's port (for its CPU time), if visible.
broker_pid() {
    local hp host port
    hp=$(host_port "$1" "$2"); read -r host port <<<"$hp"
    command -v ss >/dev/null 2>&1 || return 0
    ss -ltnpH "sport = :$port" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n1
}

broker_version() {
    case $1 in
        amqp) rabbitmqctl version 2>/dev/null | head -n1 | sed 's/^/RabbitMQ /' || true ;;
        nats) { nats-server --version 2>/dev/null || true; } | head -n1 ;;
    esac
}

# ---- measuring -------------------------------------------------------------------------------

HZ=$(getconf CLK_TCK)
SERVER_PID=
LOG=$(mktemp -t queue-bench-server.XXXXXX)
OUT=$(mktemp -t queue-bench-out.XXXXXX)
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -f "$LOG" "$OUT"
}
trap cleanup EXIT

# $1 := jiffies the whole machine has spent busy (all CPUs).
machine_busy() {
    local cpu user nice system idle iowait irq softirq steal
    read -r cpu user nice system idle iowait irq softirq steal _ </proc/stat
    printf -v "$1" '%d' $((user + nice + system + irq + softirq + steal))
}

# $1 := user + system jiffies of process $2 so far (0 if it is gone or unknown).
proc_jiffies() {
    local -a st
    if [[ -n ${2:-} ]] && read -ra st <"/proc/$2/stat" 2>/dev/null; then
        # Fields after the command name; the name (field 2) has no spaces for these processes.
        printf -v "$1" '%d' $((st[13] + st[14]))
    else
        printf -v "$1" 0
    fi
}

# Share of all CPUs busy over one second, percent.
busy_pct() {
    local a b
    read -ra a < <(head -1 /proc/stat); sleep 1; read -ra b < <(head -1 /proc/stat)
    local total=0 idle=$(((b[4] + b[5]) - (a[4] + a[5]))) k
    for k in 1 2 3 4 5 6 7 8; do total=$((total + b[k] - a[k])); done
    echo $((total > 0 ? 100 * (total - idle) / total : 0))
}

wait_quiet() {
    [[ -r /proc/stat && $QUIET_WAIT -gt 0 ]] || return 0
    local quiet=0 waited=0 busy
    while [[ $quiet -lt 3 ]]; do
        busy=$(busy_pct)
        if [[ $busy -le $QUIET_MAX ]]; then quiet=$((quiet + 1)); else quiet=0; fi
        waited=$((waited + 1))
        if [[ $quiet -lt 3 && $waited -ge $QUIET_WAIT ]]; then
            note "machine still ${busy}% busy after waiting ${QUIET_WAIT}s; running anyway"
            return 0
        fi
    done
    [[ $waited -le 3 ]] || note "waited ${waited}s for the machine to go idle"
}

# start_server CMD...: starts it, waits for its "serving" line (up to 60 s). Fails (after
# printing the server's output) if the server exits or does not serve in time.
start_server() {
    "$@" >"$LOG" 2>&1 &
    SERVER_PID=$!
    local waited=0
    until grep -q 'serving' "$LOG"; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null || [[ $waited -ge 600 ]]; then
            stop_server
            cat "$LOG" >&2
            note "the server ($*) exited or was not serving after 60s"
            return 1
        fi
        sleep 0.1; waited=$((waited + 1))
    done
}

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

json_field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$1"; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# run_side SIDE MODE URL PAYLOAD: one measured run of SIDE (switchboard | baseline | memory).
# Sets RESULT (the client's JSON line) and CPU_LINE, and appends to the per-side lists.
run_side() {
    local side=$1 mode=$2 url=$3 payload=$4
    local client=() bpid=
    local common=(--json --seconds "$DURATION" --warmup "$WARMUP" --concurrency "$CONCURRENCY" --payload "$payload")
    case $side in
        memory)
            client=("$BIN_DIR/queue-bench" --url memory://bench --prefetch "$PREFETCH" "${common[@]}") ;;
        switchboard)
            start_server "$BIN_DIR/bench-server" "--$mode" "$url" --prefetch "$PREFETCH" || return 1
            client=("$BIN_DIR/queue-bench" --url "$url" "${common[@]}") ;;
        baseline)
            start_server "$BIN_DIR/queue-baseline" --role server --url "$url" --prefetch "$PREFETCH" || return 1
            client=("$BIN_DIR/queue-baseline" --role client --url "$url" "${common[@]}") ;;
        protocol)
            start_server "$BIN_DIR/queue-baseline" --role server --protocol --url "$url" --prefetch "$PREFETCH" || return 1
            client=("$BIN_DIR/queue-baseline" --role client --protocol --url "$url" "${common[@]}") ;;
    esac
    [[ $mode == memory ]] || bpid=$(broker_pid "$url" "$([[ $mode == amqp ]] && echo 5672 || echo 4222)")
    local t0 t1 m0 m1 s0 s1 b0 b1 rc=0
    machine_busy m0; proc_jiffies s0 "$SERVER_PID"; proc_jiffies b0 "$bpid"; t0=$EPOCHREALTIME
    "${client[@]}" >"$OUT" || rc=$?
    t1=$EPOCHREALTIME; proc_jiffies b1 "$bpid"; proc_jiffies s1 "$SERVER_PID"; machine_busy m1
    stop_server
    if [[ $rc -ne 0 ]]; then
        cat "$OUT" >&2
        note "the $side client failed (exit $rc)"
        return 1
    fi
    RESULT=$(tail -n1 "$OUT")
    local client_cpu rps
    client_cpu=$(json_field "$RESULT" client_cpu)
    rps=$(json_field "$RESULT" rps)
    # Server and broker over the client's whole run; the client over its window; "other" is
    # the rest of the machine (colleagues' builds, say).
    read -r S_CPU C_CPU B_CPU O_CPU CPU_US < <(awk -v hz="$HZ" -v t0="$t0" -v t1="$t1" -v s="$((s1 - s0))" \
        -v b="$((b1 - b0))" -v m="$((m1 - m0))" -v c="$client_cpu" -v rps="$rps" 'BEGIN {
            w = t1 - t0; srv = 100 * s / hz / w; brk = 100 * b / hz / w; cl = 100 * c
            other = 100 * m / hz / w - srv - brk - cl; if (other < 0) other = 0
            us = (rps > 0) ? (srv + cl + brk) / 100 / rps * 1e6 : 0
            printf "%d %d %d %d %.1f\n", srv, cl, brk, other, us }')
    LOADAVG=$(cut -d' ' -f1 /proc/loadavg)
}

declare -A RPS P50 P99 CPUUS

# compare KEY A B NOTE: prints the ratio of A's and B's medians and the per-round ratios A/B;
# sets RATIO and PAIRED (the median per-round ratio).
compare() {
    local key=$1 x=$2 y=$3 k
    local -a a b ratios=()
    read -ra a <<<"${RPS[$key/$x]}"; read -ra b <<<"${RPS[$key/$y]}"
    for k in "${!a[@]}"; do ratios+=("$(awk -v p="${a[k]}" -v q="${b[k]}" 'BEGIN { if (q > 0) printf "%.3f", p / q; else print "0" }')"); done
    RATIO=$(awk -v p="$(median <<<"${RPS[$key/$x]}")" -v q="$(median <<<"${RPS[$key/$y]}")" 'BEGIN { if (q > 0) printf "%.3f", p / q; else print "n/a" }')
    PAIRED=$(printf '%s ' "${ratios[@]}" | median | awk '{ printf "%.3f", $1 }')
    echo "$x/$y: ratio of medians $RATIO; per-round ${ratios[*]} (median $PAIRED$4)"
}
summary_rows=()

for mode in memory amqp nats; do
    wants "$mode" || continue
    case $mode in
        memory) url=memory://bench ;;
        amqp) url=${SWITCHBOARD_AMQP_URL:-} ;;
        nats) url=${SWITCHBOARD_NATS_URL:-} ;;
    esac
    if [[ -z $url ]]; then
        note "$mode: no broker (set SWITCHBOARD_${mode^^}_URL or provide scripts/brokers.sh): skipped"
        continue
    fi
    if [[ $mode != memory ]]; then
        read -r host port <<<"$(host_port "$url" "$([[ $mode == amqp ]] && echo 5672 || echo 4222)")"
        port_open "$host" "$port" || { note "$mode: nothing listens on $host:$port: skipped"; continue; }
    fi
    for payload in $PAYLOADS; do
        key="$mode/$payload"
        if [[ $mode == memory ]]; then sides=(memory); else sides=(switchboard baseline); fi
        [[ $mode != amqp || $PROTOCOL == 0 ]] || sides+=(protocol)
        echo "== $mode request-reply, payload ${payload}B, concurrency $CONCURRENCY, prefetch $PREFETCH, $ROUNDS rounds of ${DURATION}s (+${WARMUP}s warm-up)"
        if [[ $mode != memory ]]; then
            echo "   broker: $(broker_version "$mode") at $(sed 's#//[^:/]*:[^@]*@#//***@#' <<<"$url") (pid $(broker_pid "$url" "$port" || true))"
        fi
        echo "   cpus=$(nproc) loadavg=$(cut -d' ' -f1-3 /proc/loadavg) no pinning (server, client and broker share the CPUs)"
        for r in $(seq 1 "$ROUNDS"); do
            order=("${sides[@]}")
            if [[ $((r % 2)) -eq 0 ]]; then
                order=(); for ((x = ${#sides[@]} - 1; x >= 0; x--)); do order+=("${sides[x]}"); done
            fi
            for side in "${order[@]}"; do
                # A failed run (say, a colleague's test restarted the broker) is tried again,
                # up to FAILURES times in all, after a pause.
                until wait_quiet && run_side "$side" "$mode" "$url" "$payload"; do
                    FAILED=$((FAILED + 1))
                    [[ $FAILED -le $FAILURES ]] || die "$FAILED failed runs: giving up"
                    note "round $r $side failed; trying again in 10s"
                    sleep 10
                done
                errors=$(json_field "$RESULT" errors)
                printf 'round %d  %-11s %8s calls/s  p50 %6s us  p99 %6s us  errors %s  cpu%%: server=%s client=%s broker=%s other=%s  cpu_us/call=%s  load1=%s\n' \
                    "$r" "$side" "$(json_field "$RESULT" rps)" "$(json_field "$RESULT" p50_us)" "$(json_field "$RESULT" p99_us)" \
                    "$errors" "$S_CPU" "$C_CPU" "$B_CPU" "$O_CPU" "$CPU_US" "$LOADAVG"
                [[ $errors == 0 ]] || note "WARNING: $side had $errors errors in round $r"
                RPS[$key/$side]+="$(json_field "$RESULT" rps) "
                P50[$key/$side]+="$(json_field "$RESULT" p50_us) "
                P99[$key/$side]+="$(json_field "$RESULT" p99_us) "
                CPUUS[$key/$side]+="$CPU_US "
            done
        done
        echo
        printf '%-12s %-44s %10s %8s %8s %12s\n' side "calls/s per round" median p50_us p99_us cpu_us/call
        for side in "${sides[@]}"; do
            printf '%-12s %-44s %10s %8s %8s %12s\n' "$side" "${RPS[$key/$side]% }" "$(median <<<"${RPS[$key/$side]}")" \
                "$(median <<<"${P50[$key/$side]}")" "$(median <<<"${P99[$key/$side]}")" "$(median <<<"${CPUUS[$key/$side]}")"
        done
        if [[ $mode == memory ]]; then
            med=$(median <<<"${RPS[$key/memory]}")
            echo "embedded broker: median $med calls/s (target: 100000 on a quiet machine)"
            summary_rows+=("$(printf '%-7s %6sB  switchboard %8s calls/s  (target 100000)' "$mode" "$payload" "$med")")
        else
            compare "$key" switchboard baseline "; target >= 0.9"
            row=$(printf '%-5s %5sB  switchboard %7s  baseline %7s calls/s  ratio %s (per-round median %s)' \
                "$mode" "$payload" "$(median <<<"${RPS[$key/switchboard]}")" "$(median <<<"${RPS[$key/baseline]}")" "$RATIO" "$PAIRED")
            if [[ ${#sides[@]} -eq 3 ]]; then
                compare "$key" protocol baseline ""
                row+=$(printf '  | protocol %7s: protocol/baseline %s' "$(median <<<"${RPS[$key/protocol]}")" "$PAIRED")
                compare "$key" switchboard protocol ""
                row+=$(printf ', switchboard/protocol %s' "$PAIRED")
            fi
            summary_rows+=("$row")
        fi
        echo
    done
done

if [[ ${#summary_rows[@]} -gt 0 ]]; then
    echo "== summary (medians over rounds; loadavg now $(cut -d' ' -f1-3 /proc/loadavg))"
    printf '%s\n' "${summary_rows[@]}"
fi
