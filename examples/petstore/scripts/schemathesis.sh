#!/usr/bin/env bash
# Run: bash examples/petstore/scripts/schemathesis.sh [more schemathesis options]
#
# Property-based tests of petstore-server with Schemathesis (PyPI `schemathesis`, 4.x): builds
# and starts the server on a free loopback port, points Schemathesis at the document the server
# serves (http://127.0.0.1:PORT/openapi.json; its `servers: [{url: /v1}]` puts the operations
# under /v1), and runs every phase (examples, coverage, fuzzing, stateful) with every check,
# sending the API key. Exits non-zero on any failure: a 5xx, a response the document does not
# describe, invalid data accepted or valid data rejected, a missing 401 or 405, ...
#
# Environment: MAX_EXAMPLES (default 1000 test cases per operation and phase: about a minute),
# SEED (default 1, so that CI is repeatable; `SEED=random` draws a new one each run),
# PETSTORE_API_KEY (default `secret`).
set -euo pipefail
cd "$(dirname "$0")/../../.."

# `python3 -m schemathesis.cli` is the `schemathesis` command, without depending on PATH.
if ! python3 -c "import schemathesis" 2>/dev/null; then
  echo "schemathesis.sh: schemathesis is not installed (python3 -m pip install schemathesis)" >&2
  exit 2
fi
max_examples=${MAX_EXAMPLES:-1000}
seed=${SEED:-1}
key=${PETSTORE_API_KEY:-secret}

cargo build -q -p petstore --bin petstore-server
server_bin="${CARGO_TARGET_DIR:-target}/debug/petstore-server"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
work=$(mktemp -d)
"$server_bin" --port "$port" --api-key "$key" >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

seed_args=(--seed "$seed")
if [ "$seed" = random ]; then seed_args=(); fi

# Run from a scratch directory: Schemathesis keeps state (.schemathesis/) in the working directory.
cd "$work"
status=0
python3 -m schemathesis.cli --no-color run "http://127.0.0.1:$port/openapi.json" \
  --checks all \
  --header "X-API-Key: $key" \
  --max-examples "$max_examples" \
  "${seed_args[@]}" \
  --generation-database none \
  --wait-for-schema 30 \
  "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "schemathesis.sh: schemathesis failed (exit $status); server log:" >&2
  tail -n 50 "$work/server.log" >&2 || true
fi
exit "$status"
