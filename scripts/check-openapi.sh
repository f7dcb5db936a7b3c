#!/usr/bin/env bash
# Run: bash scripts/check-openapi.sh   (needs npm, network access to the npm registry, and
# python3 with openapi-spec-validator: python3 -m pip install openapi-spec-validator)
#
# Acceptance check: `switchboard openapi` on the grpc-gateway-style fixtures of tests/fixtures and
# on real annotated googleapis services (from npm google-proto-files) writes documents that
# openapi-spec-validator accepts as OpenAPI 3.1.
# Set WORK to a directory to reuse the downloaded protos between runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-$(mktemp -d)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
GOOGLE_PROTO_FILES_VERSION=${GOOGLE_PROTO_FILES_VERSION:-5.0.3}

python3 -c "import openapi_spec_validator" || { echo "FAIL: python3 cannot import openapi_spec_validator"; exit 1; }
cargo build -q -p switchboard-codegen --bin switchboard --manifest-path "$root/Cargo.toml"
sb="$CARGO_TARGET_DIR/debug/switchboard"

# Protos in grpc-gateway's style, from this repository (no download): nested `body` and
# `response_body` paths, path variables into nested and oneof fields, additional bindings and the
# protoc-gen-openapiv2 options (tests/fixtures/notes), and every google.api.http rule shape
# (tests/fixtures/gateway).
fixtures="$root/tests/fixtures"
mkdir -p "$work/fixtures"
for case in "notes notes/v1/notes.proto" "gateway shop/v1/shop.proto"; do
  read -r name spec <<<"$case"
  doc="$work/fixtures/$name.json"
  "$sb" openapi -I "$fixtures/$name/proto" -I "$fixtures/gateway/proto" "$spec" > "$doc"
  if ! python3 -m openapi_spec_validator "$doc" >"$doc.log" 2>&1; then
    cat "$doc.log"; echo "FAIL tests/fixtures/$name: openapi-spec-validator rejects $doc"; exit 1
  fi
  echo "PASS tests/fixtures/$name ($spec)"
done

if [ ! -d "$work/package/google" ]; then
  echo "== fetching googleapis protos (npm google-proto-files@$GOOGLE_PROTO_FILES_VERSION)"
  (cd "$work" && npm pack --silent "google-proto-files@$GOOGLE_PROTO_FILES_VERSION" >/dev/null && tar xzf google-proto-files-*.tgz)
fi
protos="$work/package"
out="$work/openapi"
mkdir -p "$out"

specs=(
  google/pubsub/v1/pubsub.proto
  google/pubsub/v1/schema.proto
  google/cloud/tasks/v2/cloudtasks.proto
  google/firestore/v1/firestore.proto
  google/spanner/v1/spanner.proto
  google/bigtable/admin/v2/bigtable_table_admin.proto
  google/bigtable/v2/bigtable.proto
  google/logging/v2/logging.proto
  google/datastore/v1/datastore.proto
  google/longrunning/operations.proto
  google/iam/v1/iam_policy.proto
  google/storage/v2/storage.proto
  # several files in one document
  "google/pubsub/v1/pubsub.proto google/pubsub/v1/schema.proto google/longrunning/operations.proto"
)
cd "$protos"
for spec in "${specs[@]}"; do
  doc="$out/$(echo "$spec" | tr '/ ' '_+' | sed 's/\.proto//g').json"
  # shellcheck disable=SC2086 # a line may name several files
  "$sb" openapi -I . $spec > "$doc"
  if ! python3 -m openapi_spec_validator "$doc" >"$doc.log" 2>&1; then
    cat "$doc.log"; echo "FAIL $spec: openapi-spec-validator rejects $doc"; exit 1
  fi
  operations=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(len(i) for i in d["paths"].values()))' "$doc")
  if [ "$operations" -eq 0 ]; then
    echo "FAIL $spec: no operations in $doc"; exit 1
  fi
  echo "PASS $spec ($operations operations)"
done
echo "all OpenAPI documents valid"
