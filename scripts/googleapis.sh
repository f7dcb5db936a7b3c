# Sourced by scripts/bench-generation.sh and scripts/bench-check.sh: builds the release
# `switchboard` CLI and the anchor (protox + tonic-prost-build, scripts/anchor), fetches
# googleapis (npm google-proto-files) into $work/inc (kept between runs) and enters it.
# Expects `root` and `work`; sets `sb` and `anchor`.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
GOOGLE_PROTO_FILES_VERSION=${GOOGLE_PROTO_FILES_VERSION:-5.0.3}
cargo build -q --release -p switchboard-codegen --bin switchboard --manifest-path "$root/Cargo.toml"
cargo build -q --release --manifest-path "$root/scripts/anchor/Cargo.toml"
sb="$CARGO_TARGET_DIR/release/switchboard"
anchor="$CARGO_TARGET_DIR/release/anchor"
if [ ! -d "$work/inc" ]; then
  (cd "$work" && npm pack --silent "google-proto-files@$GOOGLE_PROTO_FILES_VERSION" >/dev/null && tar xzf google-proto-files-*.tgz)
  cp -r "$work/package" "$work/inc" && rm -rf "$work/inc/google/protobuf"
fi
cd "$work/inc"
