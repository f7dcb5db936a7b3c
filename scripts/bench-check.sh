#!/usr/bin/env bash
# Run: bash scripts/bench-check.sh   (needs npm and network access to the npm registry)
#
# Compile cost of generated code (issue 14, item 6): `cargo check` of a googleapis slice
# (SLICE, default google/cloud/aiplatform/v1: every .proto under it) as switchboard generates
# it, against the same protos as the anchor (protox + tonic-prost-build, scripts/anchor)
# generates them. Each side is a crate of its own: switchboard's depends on `switchboard` only;
# the anchor's on prost, prost-types, tonic and tonic-prost, with the packages in a module tree.
# Dependencies are checked first; then each crate is checked ROUNDS (default 3) times,
# alternately, with CARGO_INCREMENTAL=0 after touching src/lib.rs. Prints wall/user seconds and
# peak RSS per check, and the bytes each side generated. WORK keeps downloads and crates.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-$(mktemp -d)}
SLICE=${SLICE:-google/cloud/aiplatform/v1}
ROUNDS=${ROUNDS:-3}
. "$root/scripts/googleapis.sh"
find $SLICE -name '*.proto' | sort > "$work/slice.txt"
echo "== $SLICE: $(wc -l < "$work/slice.txt") files; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"

crate() { # dir name dependencies...
  local dir=$1 name=$2; shift 2
  rm -rf "$dir" && mkdir -p "$dir/src"
  printf '[package]\nname = "%s"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n[workspace]\n[dependencies]\n' "$name" > "$dir/Cargo.toml"
  printf '%s\n' "$@" >> "$dir/Cargo.toml"
}

crate "$work/check-sb" check-sb "switchboard = { path = \"$root/runtime\" }"
"$sb" generate -I . -o "$work/check-sb/src/gen" $(cat "$work/slice.txt") 2>/dev/null
echo 'pub mod gen;' > "$work/check-sb/src/lib.rs"

crate "$work/check-anchor" check-anchor 'prost = "0.14"' 'prost-types = "0.14"' 'tonic = "0.14"' 'tonic-prost = "0.14"'
"$anchor" "$work/check-anchor/gen" . "$work/slice.txt"
# The anchor writes one file per package (`a.b.c.rs`); nest them as modules, as prost expects.
python3 - "$work/check-anchor" <<'PY'
import os, sys
root = sys.argv[1]
tree = {}
for f in sorted(os.listdir(os.path.join(root, "gen"))):
    if f.endswith(".rs"):
        node = tree
        for part in f[:-3].split("."):
            node = node.setdefault(part, {})
        node["\0file"] = f
def emit(node, depth):
    out = []
    for name, child in node.items():
        if name == "\0file":
            out.append("    " * depth + 'include!(concat!(env!("CARGO_MANIFEST_DIR"), "/gen/%s"));' % child)
        else:
            out.append("    " * depth + "pub mod %s {" % name)
            out += emit(child, depth + 1)
            out.append("    " * depth + "}")
    return out
with open(os.path.join(root, "src/lib.rs"), "w") as f:
    f.write("#![allow(clippy::all, rustdoc::all)]\n" + "\n".join(emit(tree, 0)) + "\n")
PY

bytes() { cat "$@" 2>/dev/null | wc -c; }
echo "bytes: anchor $(bytes "$work"/check-anchor/gen/*.rs) of Rust; switchboard $(bytes "$work"/check-sb/src/gen/*.rs) of Rust + $(bytes "$work"/check-sb/src/gen/*.descriptors.bin) of descriptors + $(bytes "$work"/check-sb/src/gen/*.json) of OpenAPI documents"

for side in sb anchor; do
  cargo check -q --manifest-path "$work/check-$side/Cargo.toml" 2>&1 | tail -5
done
for round in $(seq 1 "$ROUNDS"); do
  for side in anchor sb; do
    touch "$work/check-$side/src/lib.rs"
    CARGO_INCREMENTAL=0 /usr/bin/time -o "$work/t" -f "%e s wall, %U s user, %M KB peak" \
      cargo check -q --manifest-path "$work/check-$side/Cargo.toml" 2> "$work/check-$side.log" || { cat "$work/check-$side.log"; exit 1; }
    warnings=$(grep -c '^warning' "$work/check-$side.log" || true)
    echo "round $round $side: $(cat "$work/t") ($warnings warnings; load $(cut -d' ' -f1 /proc/loadavg))"
  done
done
