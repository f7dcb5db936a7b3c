#!/usr/bin/env bash
# Run: bash scripts/check-real-world.sh   (needs npm and network access to the npm registry)
#
# Acceptance check: `switchboard generate` on real-world proto sets with deep imports and
# google.api.http annotations (googleapis: google/api, rpc, type, longrunning, pubsub and several
# Cloud APIs; grpc-gateway-style fixtures) must write code that compiles with zero errors and zero
# warnings in a crate whose ONLY dependency is `switchboard`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-$(mktemp -d)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
GOOGLE_PROTO_FILES_VERSION=${GOOGLE_PROTO_FILES_VERSION:-5.0.3}

cargo build -q -p switchboard-codegen --bin switchboard --manifest-path "$root/Cargo.toml"
sb="$CARGO_TARGET_DIR/debug/switchboard"

echo "== fetching googleapis protos (npm google-proto-files@$GOOGLE_PROTO_FILES_VERSION)"
(cd "$work" && npm pack --silent "google-proto-files@$GOOGLE_PROTO_FILES_VERSION" >/dev/null && tar xzf google-proto-files-*.tgz)
protos="$work/package"

check() { # name include-dir spec...
  local name=$1 inc=$2; shift 2
  local crate="$work/crate-$name"
  rm -rf "$crate" && mkdir -p "$crate/src"
  echo "== $name: generating from $# specs"
  (cd "$inc" && "$sb" generate -I . -o "$crate/src/gen" "$@")
  local services
  services=$(cat "$crate"/src/gen/*.rs | grep -c '#\[::switchboard::service' || true)
  cat > "$crate/Cargo.toml" <<TOML
[package]
name = "realworld-$name"
version = "0.0.0"
edition = "2021"
publish = false
[workspace]
[dependencies]
switchboard = { path = "$root/runtime" }
TOML
  echo 'pub mod gen;' > "$crate/src/lib.rs"
  echo "== $name: building ($(cat "$crate"/src/gen/*.rs | wc -l) lines, $services services)"
  local log="$crate/build.log"
  if ! cargo build --manifest-path "$crate/Cargo.toml" >"$log" 2>&1; then
    cat "$log"; echo "FAIL $name: generated code does not compile"; exit 1
  fi
  if grep -q '^warning' "$log"; then
    cat "$log"; echo "FAIL $name: generated code compiles with warnings"; exit 1
  fi
  echo "PASS $name"
}

cd "$protos"
check googleapis-core "$protos" \
  google/api/*.proto google/api/expr/v1alpha1/*.proto google/rpc/*.proto google/rpc/context/*.proto \
  google/type/*.proto google/longrunning/*.proto google/pubsub/v1/*.proto
check googleapis-cloud "$protos" \
  google/bigtable/v2/*.proto google/firestore/v1/*.proto google/cloud/tasks/v2/*.proto google/iam/v1/*.proto \
  google/logging/v2/*.proto google/spanner/v1/*.proto google/datastore/v1/*.proto google/bytestream/*.proto \
  google/cloud/location/*.proto
# Bindings the router would refuse (two methods of a service on one route): skipped with a
# file:line:col warning each, everything else generated (issue 14, item 2).
check bigquery-storage "$protos" google/cloud/bigquery/storage/v1/storage.proto \
  google/cloud/bigquery/storage/v1beta1/storage.proto google/cloud/bigquery/storage/v1beta2/storage.proto
# grpc-gateway-style service against the REAL google/api annotations (not our fixture copies).
mkdir -p "$work/gateway"
cp -r "$protos/google" "$work/gateway/"
cp -r "$root/tests/fixtures/gateway/proto/shop" "$work/gateway/"
check gateway "$work/gateway" shop/v1/shop.proto
# grpc-gateway's documented extras (nested body/response_body paths, path variables into nested
# and oneof fields, additional bindings, protoc-gen-openapiv2 options; the options protos are the
# fixture's own wire-compatible declarations) against the real google/api annotations.
cp -r "$root/tests/fixtures/notes/proto/notes" "$root/tests/fixtures/notes/proto/protoc-gen-openapiv2" "$work/gateway/"
check gateway-notes "$work/gateway" notes/v1/notes.proto
echo "all real-world proto sets compile"
