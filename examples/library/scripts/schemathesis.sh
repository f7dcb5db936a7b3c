#!/usr/bin/env bash
# Run: bash examples/library/scripts/schemathesis.sh [more schemathesis options]
#
# Schemathesis (PyPI `schemathesis`, 4.x) against the OpenAPI document library-server serves
# (http://127.0.0.1:PORT/openapi.json, generated from the proto's google.api.http bindings):
# every method the document does not list for a path must answer 405 with an `Allow` header
# that lists exactly the documented methods (checks `unsupported_method` and
# `allow_header_conformance`) — custom-verb paths (`…/books/{book}:move`, `…:watch`) included.
# CHECKS=all runs every check instead (the proto API does not promise every one of them: its
# document does not describe error responses or validation). Exits non-zero on any failure.
#
# Environment: MAX_EXAMPLES (default 50), SEED (default 1; `SEED=random` draws a new one), CHECKS.
set -euo pipefail
cd "$(dirname "$0")/../../.."

if ! python3 -c "import schemathesis" 2>/dev/null; then
  echo "schemathesis.sh: schemathesis is not installed (python3 -m pip install schemathesis)" >&2
  exit 2
fi
max_examples=${MAX_EXAMPLES:-50}
seed=${SEED:-1}
checks=${CHECKS:-unsupported_method,allow_header_conformance}

cargo build -q -p library --bin library-server
server_bin="${CARGO_TARGET_DIR:-target}/debug/library-server"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
work=$(mktemp -d)
"$server_bin" --port "$port" >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

seed_args=(--seed "$seed")
if [ "$seed" = random ]; then seed_args=(); fi

# Run from a scratch directory: Schemathesis keeps state (.schemathesis/) in the working directory.
cd "$work"
status=0
python3 -m schemathesis.cli --no-color run "http://127.0.0.1:$port/openapi.json" \
  --checks "$checks" \
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
