#!/usr/bin/env bash
# Run from the workspace root: [MODE=rest|openapi] bash examples/bench/run.sh [SERVER_BIN ...]  (env knobs: SECONDS ROUNDS CONCURRENCY PAYLOAD; see BENCHMARKS.md)
#
# Compares the throughput of server binaries built from examples/bench.
#
# MODE=grpc (default): gRPC over HTTP/2. Default list: baseline-server
# (hand-written tonic) and bench-server (switchboard-generated). Every server
# binary must accept `--grpc-port N` and serve bench.Echo/Unary on 127.0.0.1:N.
#
# MODE=rest: REST over HTTP/1.1 keep-alive, `POST /bench.Echo/Unary` with the
# JSON body {"body":"<base64>"}. Default list: baseline-rest-server
# (hand-written axum) and bench-server (switchboard-generated). Every server
# binary must accept `--rest-port N` and serve that route on 127.0.0.1:N.
#
# MODE=openapi: `GET /v1/pets/{id}` (the petstore's getPet, examples/petstore/petstore.yaml)
# over HTTP/1.1 keep-alive, ids 1..100 in turn. Default list: baseline-openapi-server
# (hand-written axum) and openapi-server (switchboard-generated). Every server binary must
# accept `--rest-port N` and serve that route on 127.0.0.1:N.
#
# Fairness: one server runs at a time, on a fresh free port, pinned to CPU 0
# (load generator on CPU 1) when taskset is available; servers alternate
# within each round (and the order flips every other round, so slow drift
# of the machine hits every server alike). Reports per-round rps, the median
# per server, the ratio of medians, and the per-round (paired) ratios with
# their median.
#
# Env knobs (defaults in brackets):
#   SECONDS [10]      measured window per run, seconds
#   WARMUP [2]        warm-up per run, seconds (not counted)
#   ROUNDS [3]        rounds; each round runs every server once
#   MODE [grpc]       grpc, rest or openapi
#   CONCURRENCY [64]  requests in flight
#   CONNECTIONS       connections of the load generator: HTTP/2 connections
#                     for grpc [4]; for rest and openapi, HTTP/1.1
#                     connections with one request in flight each, so it must
#                     equal CONCURRENCY [CONCURRENCY]
#   PAYLOAD [64]      EchoMsg.body size in bytes (grpc, rest)
#   LOAD_THREADS [1]  tokio threads of the load generator
#   BUILD [1]         0 = skip `cargo build --release -p bench`
#   QUIET_WAIT [120]  before each run, wait up to this many seconds for the
#                     machine to be idle (<= 5% busy for 3 s); 0 = don't wait
#   OTHER_MAX [5]     a run is "disturbed" if processes other than the server
#                     and bench-load used more than this % of a CPU meanwhile
#                     (an idle machine shows 1-2%)
#   RETRIES [2]       how often a disturbed run is repeated before it is kept
#   BIN_DIR           where the binaries are [${CARGO_TARGET_DIR:-<root>/target}/release]

# SECONDS is also bash's "seconds since start" variable: read the caller's
# value before any time passes.
if printenv SECONDS >/dev/null 2>&1; then DURATION=$SECONDS; else DURATION=10; fi

set -euo pipefail

MODE=${MODE:-grpc}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-64}
case $MODE in
    grpc) CONNECTIONS=${CONNECTIONS:-4} BASELINE=baseline-server GENERATED=bench-server PORT_FLAG=--grpc-port LOAD_MODE=() TITLE="gRPC unary echo" ;;
    rest) CONNECTIONS=${CONNECTIONS:-$CONCURRENCY} BASELINE=baseline-rest-server GENERATED=bench-server PORT_FLAG=--rest-port LOAD_MODE=(--rest) TITLE="REST (HTTP/1.1 JSON) unary echo" ;;
    openapi) CONNECTIONS=${CONNECTIONS:-$CONCURRENCY} BASELINE=baseline-openapi-server GENERATED=openapi-server PORT_FLAG=--rest-port LOAD_MODE=(--openapi) TITLE="OpenAPI (HTTP/1.1) GET /v1/pets/{petId}" ;;
    *) echo "run.sh: MODE must be grpc, rest or openapi (got '$MODE')" >&2; exit 1 ;;
esac
PAYLOAD=${PAYLOAD:-64}
LOAD_THREADS=${LOAD_THREADS:-1}
BUILD=${BUILD:-1}
RETRIES=${RETRIES:-2}
OTHER_MAX=${OTHER_MAX:-5}
QUIET_WAIT=${QUIET_WAIT:-120}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}

if [[ $# -gt 0 ]]; then
    SERVERS=("$@")
else
    SERVERS=("$BASELINE" "$GENERATED")
fi

die() { echo "run.sh: $*" >&2; exit 1; }

for v in DURATION WARMUP ROUNDS CONCURRENCY CONNECTIONS PAYLOAD LOAD_THREADS RETRIES OTHER_MAX QUIET_WAIT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
[[ $DURATION -gt 0 && $ROUNDS -gt 0 ]] || die "SECONDS and ROUNDS must be at least 1"
[[ $MODE == grpc || $CONNECTIONS == "$CONCURRENCY" ]] ||
    die "MODE=$MODE: HTTP/1.1 carries one request at a time per connection, so CONNECTIONS ($CONNECTIONS) must equal CONCURRENCY ($CONCURRENCY)"

if [[ $BUILD != 0 ]]; then
    echo "== building: cargo build --release -p bench" >&2
    (cd "$ROOT" && cargo build --release -p bench) || die "cargo build --release -p bench failed"
fi

[[ -x $BIN_DIR/bench-load ]] || die "load generator not found: $BIN_DIR/bench-load"
for s in "${SERVERS[@]}"; do
    if [[ ! -x $BIN_DIR/$s ]]; then
        if [[ $s == "$GENERATED" ]]; then
            echo "run.sh: $GENERATED (the switchboard-generated server) is not built: $BIN_DIR/$GENERATED is missing." >&2
            echo "run.sh: build it with BUILD=1 (cargo build --release -p bench). To measure the baseline against itself, run:" >&2
            echo "run.sh:     MODE=$MODE bash examples/bench/run.sh $BASELINE $BASELINE" >&2
        else
            echo "run.sh: server binary not found: $BIN_DIR/$s" >&2
        fi
        exit 2
    fi
done

# Labels: a server named more than once (baseline vs itself) gets #1, #2, ...
LABELS=()
for i in "${!SERVERS[@]}"; do
    n=0 k=0
    for j in "${!SERVERS[@]}"; do
        [[ ${SERVERS[j]} == "${SERVERS[i]}" ]] || continue
        n=$((n + 1))
        [[ $j -le $i ]] && k=$((k + 1))
    done
    if [[ $n -gt 1 ]]; then LABELS+=("${SERVERS[i]}#$k"); else LABELS+=("${SERVERS[i]}"); fi
done

SERVER_PIN=() LOAD_PIN=()
if command -v taskset >/dev/null 2>&1 && [[ $(nproc) -ge 2 ]]; then
    SERVER_PIN=(taskset -c 0)
    LOAD_PIN=(taskset -c 1)
    PINNING="server on CPU 0, load generator on CPU 1"
else
    PINNING="none (taskset missing or fewer than 2 CPUs)"
fi

HZ=$(getconf CLK_TCK)
SERVER_PID=
LOG=$(mktemp -t bench-server-log.XXXXXX)
OUT=$(mktemp -t bench-load-out.XXXXXX)
TIMES=$(mktemp -t bench-times.XXXXXX)
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -f "$LOG" "$OUT" "$TIMES"
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Below the kernel's ephemeral range (32768 and up by default), where the load generator's own
# connections take their local ports: a port picked there can be taken between the check and
# the server's bind.
free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((10000 + RANDOM % 20000))
        port_open "$p" || { echo "$p"; return 0; }
    done
    die "no free port found"
}

# The helpers below assign to the variable named by $1 instead of printing,
# so they run in this shell: no subshell, no fork between the samples.

# $1 := jiffies (1/CLK_TCK s) the whole machine has spent busy, all CPUs.
machine_busy() {
    local cpu user nice system idle iowait irq softirq steal
    read -r cpu user nice system idle iowait irq softirq steal _ </proc/stat
    printf -v "$1" '%d' $((user + nice + system + irq + softirq + steal))
}

# "1m2.345s" -> 62345 (ms), assigned to $1.
to_ms() {
    [[ $2 =~ ^([0-9]+)m([0-9]+)\.([0-9]{3})[0-9]*s$ ]] || { printf -v "$1" 0; return; }
    printf -v "$1" '%d' $((10#${BASH_REMATCH[1]} * 60000 + 10#${BASH_REMATCH[2]} * 1000 + 10#${BASH_REMATCH[3]}))
}

# $1 := CPU time (ms) of this shell's reaped children (the `times` builtin
# must run in this shell to see bench-load).
children_ms() {
    local u s um sm
    times >"$TIMES"
    { read -r _; read -r u s; } <"$TIMES"
    to_ms um "$u"; to_ms sm "$s"
    printf -v "$1" '%d' $((um + sm))
}

# $1 := jiffies of user + system CPU used so far by process $2.
proc_jiffies() {
    local -a st
    if read -ra st <"/proc/$2/stat" 2>/dev/null; then
        printf -v "$1" '%d' $((st[13] + st[14]))
    else
        printf -v "$1" 0
    fi
}

# run_one NAME: start the server, run bench-load against it, stop the server.
# Sets RESULT (bench-load's JSON line) and SERVER_CPU / LOAD_CPU / OTHER_CPU
# (% of one core over the bench-load run: the server, the load generator and
# everything else on the machine). Runs in this shell, not a subshell, so the
# EXIT trap always knows the running server's pid.
run_one() {
    local name=$1 port binds=0 waited
    while :; do
        port=$(free_port)
        "${SERVER_PIN[@]}" "$BIN_DIR/$name" "$PORT_FLAG" "$port" >"$LOG" 2>&1 &
        SERVER_PID=$!
        waited=0
        until port_open "$port"; do
            if ! kill -0 "$SERVER_PID" 2>/dev/null; then
                wait "$SERVER_PID" 2>/dev/null || true
                SERVER_PID=
                # Another process took the port after free_port looked: try another one.
                if grep -qi "address already in use" "$LOG" && [[ $binds -lt 5 ]]; then
                    binds=$((binds + 1)); continue 2
                fi
                cat "$LOG" >&2; die "$name exited before accepting connections on port $port"
            fi
            [[ $waited -lt 100 ]] || { cat "$LOG" >&2; die "$name did not accept connections on port $port within 10s"; }
            sleep 0.1; waited=$((waited + 1))
        done
        break
    done
    local t0 m0 s0 c0 t1 m1 s1 c1 rc=0
    children_ms c0; proc_jiffies s0 "$SERVER_PID"; machine_busy m0; t0=$EPOCHREALTIME
    "${LOAD_PIN[@]}" "$BIN_DIR/bench-load" "${LOAD_MODE[@]}" --addr "http://127.0.0.1:$port" \
        --seconds "$DURATION" --warmup "$WARMUP" --concurrency "$CONCURRENCY" \
        --connections "$CONNECTIONS" --payload "$PAYLOAD" --threads "$LOAD_THREADS" >"$OUT" || rc=$?
    t1=$EPOCHREALTIME; machine_busy m1; proc_jiffies s1 "$SERVER_PID"; children_ms c1
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    [[ $rc -eq 0 ]] || die "bench-load failed against $name (exit $rc)"
    RESULT=$(<"$OUT")
    read -r SERVER_CPU LOAD_CPU OTHER_CPU < <(awk -v hz="$HZ" -v t0="$t0" -v t1="$t1" \
        -v s="$((s1 - s0))" -v c="$((c1 - c0))" -v m="$((m1 - m0))" 'BEGIN {
            w = t1 - t0; srv = 100 * s / hz / w; load = 100 * c / 1000 / w
            other = 100 * m / hz / w - srv - load; if (other < 0) other = 0
            printf "%d %d %d\n", srv, load, other }')
}

json_field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" <<<"$1"; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Share of CPU time (all cores) spent busy over one second, in percent.
busy_pct() {
    local a b
    read -ra a < <(head -1 /proc/stat); sleep 1; read -ra b < <(head -1 /proc/stat)
    local total=0 idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) k
    for k in 1 2 3 4 5 6 7 8; do total=$((total + b[k] - a[k])); done
    echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}

# Before each run, wait (up to QUIET_WAIT s) until the machine has been
# nearly idle for 3 s in a row, so that a concurrent build does not skew it.
wait_quiet() {
    [[ -r /proc/stat && $QUIET_WAIT -gt 0 ]] || return 0
    local quiet=0 waited=0 busy
    while [[ $quiet -lt 3 ]]; do
        busy=$(busy_pct)
        if [[ $busy -le 5 ]]; then quiet=$((quiet + 1)); else quiet=0; fi
        waited=$((waited + 1))
        if [[ $quiet -lt 3 && $waited -ge $QUIET_WAIT ]]; then
            echo "   NOTE: machine still ${busy}% busy after waiting ${QUIET_WAIT}s; running anyway" >&2
            return 0
        fi
    done
    [[ $waited -le 3 ]] || echo "   (waited ${waited}s for the machine to go idle)" >&2
}

echo "== $TITLE: ${LABELS[*]}"
if [[ $MODE == openapi ]]; then WHAT="ids=1..100"; else WHAT="payload=${PAYLOAD}B"; fi
echo "   rounds=$ROUNDS seconds=$DURATION warmup=$WARMUP concurrency=$CONCURRENCY connections=$CONNECTIONS $WHAT load_threads=$LOAD_THREADS"
echo "   cpus=$(nproc) pinning: $PINNING"

declare -A RPS P50 P99
DISTURBED=0
for r in $(seq 1 "$ROUNDS"); do
    order=("${!SERVERS[@]}")
    if [[ $((r % 2)) -eq 0 ]]; then
        rev=(); for ((x = ${#order[@]} - 1; x >= 0; x--)); do rev+=("${order[x]}"); done; order=("${rev[@]}")
    fi
    for i in "${order[@]}"; do
        for attempt in $(seq 0 "$RETRIES"); do
            wait_quiet
            run_one "${SERVERS[i]}"
            [[ $OTHER_CPU -gt $OTHER_MAX && $attempt -lt $RETRIES ]] || break
            echo "round $r  ${LABELS[i]}  disturbed (cpu%: server=$SERVER_CPU load=$LOAD_CPU other=$OTHER_CPU); retrying" >&2
        done
        line=$RESULT
        echo "round $r  ${LABELS[i]}  $line  cpu%: server=$SERVER_CPU load=$LOAD_CPU other=$OTHER_CPU"
        if [[ $OTHER_CPU -gt $OTHER_MAX ]]; then
            DISTURBED=$((DISTURBED + 1))
            echo "   WARNING: still disturbed after $RETRIES retries; keeping this run" >&2
        elif [[ $SERVER_CPU -lt 80 ]]; then
            echo "   NOTE: ${LABELS[i]} used only ${SERVER_CPU}% of its CPU (not saturated: the load generator may be the bottleneck)" >&2
        fi
        errors=$(json_field "$line" errors)
        [[ $errors == 0 ]] || echo "   WARNING: ${LABELS[i]} had $errors errors in round $r" >&2
        RPS[$i]+="$(json_field "$line" rps) "
        P50[$i]+="$(json_field "$line" p50_us) "
        P99[$i]+="$(json_field "$line" p99_us) "
    done
done

echo
printf '%-20s %-40s %12s %10s %10s\n' server "rps per round" median_rps p50_us p99_us
declare -A MED
for i in "${!SERVERS[@]}"; do
    MED[$i]=$(median <<<"${RPS[$i]}")
    printf '%-20s %-40s %12s %10s %10s\n' "${LABELS[i]}" "${RPS[$i]% }" "${MED[$i]}" \
        "$(median <<<"${P50[$i]}")" "$(median <<<"${P99[$i]}")"
done
echo "(p50_us / p99_us: median over rounds of each run's percentile)"
[[ $DISTURBED -eq 0 ]] || echo "WARNING: $DISTURBED run(s) ran alongside other CPU load (other > ${OTHER_MAX}%); treat the numbers with care" >&2
echo

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
gen= base=
for i in "${!SERVERS[@]}"; do
    [[ ${SERVERS[i]} == "$GENERATED" && -z $gen ]] && gen=$i
    [[ ${SERVERS[i]} == "$BASELINE" && -z $base ]] && base=$i
done
# Per-round ratios: both runs of a round are back to back, so slow drift of the
# machine (which moves the medians) mostly cancels within a pair.
paired() {
    local -a a b
    read -ra a <<<"${RPS[$1]}"; read -ra b <<<"${RPS[$2]}"
    local k out=()
    for k in "${!a[@]}"; do out+=("$(awk -v x="${a[k]}" -v y="${b[k]}" 'BEGIN { if (y > 0) printf "%.3f", x / y; else print "n/a" }')"); done
    echo "${out[*]}  (median $(printf '%s ' "${out[@]}" | median | awk '{ printf "%.3f", $1 }'))"
}
if [[ -n $gen && -n $base ]]; then
    echo "ratio generated/baseline = $(ratio "${MED[$gen]}" "${MED[$base]}")"
    echo "per-round ratios generated/baseline: $(paired "$gen" "$base")"
elif [[ ${#SERVERS[@]} -ge 2 ]]; then
    echo "ratio ${LABELS[1]}/${LABELS[0]} = $(ratio "${MED[1]}" "${MED[0]}")"
    echo "per-round ratios ${LABELS[1]}/${LABELS[0]}: $(paired 1 0)"
fi
