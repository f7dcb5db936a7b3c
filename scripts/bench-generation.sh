#!/usr/bin/env bash
# Run: bash scripts/bench-generation.sh   (needs npm and network access to the npm registry)
#
# Generation at scale (issue 14): `switchboard generate` over all of googleapis (npm
# google-proto-files) against the anchor, protox + tonic-prost-build over the same files
# (scripts/anchor), measured alternately in the same run. Prints wall/user seconds, peak RSS and
# the bytes of generated Rust of each side. ROUNDS (default 2) pairs; WORK keeps downloads.
#
# The file list is every .proto of the package except google/protobuf/** (protox brings the
# well-known types; the package's descriptor.proto uses syntax protox 0.10 does not parse) and
# EXCLUDE (files switchboard rejects today; see BENCHMARKS.md "Generation at scale").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-$(mktemp -d)}
ROUNDS=${ROUNDS:-2}
EXCLUDE=${EXCLUDE:-}
. "$root/scripts/googleapis.sh"
find . -name '*.proto' | sed 's|^\./||' | sort > "$work/all.txt"
printf '%s\n' $EXCLUDE > "$work/exclude.txt"
grep -vxF -f "$work/exclude.txt" "$work/all.txt" > "$work/files.txt"
echo "== $(wc -l < "$work/files.txt") files; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$work/out-anchor" "$work/out-sb"
  /usr/bin/time -o "$work/t" -f "%e s wall, %U s user, %M KB peak" "$anchor" "$work/out-anchor" . "$work/files.txt"
  echo "round $round anchor:      $(cat "$work/t") (load $(cut -d' ' -f1 /proc/loadavg))"
  /usr/bin/time -o "$work/t" -f "%e s wall, %U s user, %M KB peak" "$sb" generate -I . -o "$work/out-sb" $(cat "$work/files.txt") 2>"$work/sb.stderr"
  echo "round $round switchboard: $(cat "$work/t") (load $(cut -d' ' -f1 /proc/loadavg)); $(grep -c '^warning: ' "$work/sb.stderr" || true) warnings in $work/sb.stderr"
done
rs() { cat "$1"/*.rs | wc -c; }
echo "bytes of Rust: anchor $(rs "$work/out-anchor"), switchboard $(rs "$work/out-sb") (+ $(cat "$work"/out-sb/*.descriptors.bin | wc -c) of descriptors for the JSON codec, + $(cat "$work"/out-sb/*.json | wc -c) of OpenAPI documents)"
