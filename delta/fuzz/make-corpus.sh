#!/usr/bin/env bash
# Seeds the working corpora of the delta fuzz targets (ignored by git; nothing is committed):
#   corpus/delta_read   <- deltas of at most 128 KiB
#   corpus/delta_apply  <- <u32 LE source length><source><delta> for every pair
# Deltas come from two places:
#   - made here with the release diffgen from testdata/swu (several pairs, gzip and zstd
#     profiles; release-v2 is signed, so the recompressed targets are re-signed with the
#     throw-away test PKI in testdata/keys, which needs openssl);
#   - /work/shared/adu-vectors/*/{source,delta.diff} (ADU's reference vectors), or the folder
#     in $ADU_VECTORS, when present. They are copied into the corpus only, never committed.
# The diffgen binary is $DIFFGEN if set, else built with `cargo build --release -p diffgen`
# (into $CARGO_TARGET_DIR, default <repo>/target).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
vectors="${ADU_VECTORS:-/work/shared/adu-vectors}"
read_dir="$here/corpus/delta_read"
apply_dir="$here/corpus/delta_apply"
mkdir -p "$read_dir" "$apply_dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ -z "${DIFFGEN:-}" ]; then
  DIFFGEN="${CARGO_TARGET_DIR:-$root/target}/release/diffgen"
  if ! (cd "$root" && cargo build --release -q -p diffgen); then
    echo "building diffgen failed; using the existing $DIFFGEN if there is one" >&2
  fi
fi
if [ ! -x "$DIFFGEN" ]; then
  echo "no diffgen binary: seeding from the ADU vectors only" >&2
  DIFFGEN=false
fi

# add NAME SOURCE DELTA: puts the pair into both corpora.
add() {
  local name="$1" source="$2" delta="$3"
  if [ "$(stat -c %s "$delta")" -le $((128 * 1024)) ]; then
    cp "$delta" "$read_dir/$name.diff"
  fi
  python3 - "$source" "$delta" "$apply_dir/$name.bin" <<'PY'
import struct, sys
src = open(sys.argv[1], "rb").read()
dlt = open(sys.argv[2], "rb").read()
open(sys.argv[3], "wb").write(struct.pack("<I", len(src)) + src + dlt)
PY
}

T="$root/testdata/swu"
export SIGN_CERT="$root/testdata/keys/signer.crt" SIGN_KEY="$root/testdata/keys/signer.key"
sign="$root/scripts/sign-cms.sh"
# create NAME SOURCE TARGET [create options...]
create() {
  local name="$1" source="$2" target="$3"; shift 3
  if "$DIFFGEN" create --source "$source" --target "$target" -o "$work/$name.diff" \
      --work "$work/cache" "$@" >"$work/$name.log" 2>&1; then
    add "$name" "$source" "$work/$name.diff"
  else
    echo "skipped seed $name: $(tail -n 1 "$work/$name.log")" >&2
  fi
}
create v1-v2-zstd "$T/release-v1.swu" "$T/release-v2.swu" \
  --recompressed "$work/v2-zst.swu" --sign "$sign" --profile zstd
create v1-v2-gzip "$T/release-v1.swu" "$T/release-v2.swu" \
  --recompressed "$work/v2-gz.swu" --sign "$sign" --profile gzip
if [ -f "$work/v2-gz.swu" ] && [ -f "$work/v2-zst.swu" ]; then
  create v2gz-v2zst "$work/v2-gz.swu" "$work/v2-zst.swu" --profile zstd
fi
create v1-v1 "$T/release-v1.swu" "$T/release-v1.swu" --profile gzip
create sample-crc "$T/sample.swu" "$T/sample-crc.swu" --profile gzip
create newc-sample "$T/sample-newc.swu" "$T/sample.swu" --profile gzip
create sample-collections "$T/sample.swu" "$T/collections.swu" \
  --recompressed "$work/col-zst.swu" --profile zstd
create collections-json "$T/collections.swu" "$T/json.swu" \
  --recompressed "$work/json-gz.swu" --profile gzip
create json-collections "$T/json.swu" "$T/collections.swu" \
  --recompressed "$work/col-gz.swu" --profile gzip

if [ -d "$vectors" ]; then
  for d in "$vectors"/*/; do
    [ -f "$d/delta.diff" ] && [ -f "$d/source" ] || continue
    add "adu-$(basename "$d")" "$d/source" "$d/delta.diff"
  done
else
  echo "no ADU vectors at $vectors; seeding from diffgen's own deltas only" >&2
fi
for t in delta_read delta_apply; do
  echo "delta/fuzz/corpus/$t: $(ls "$here/corpus/$t" | wc -l) files, $(du -sh "$here/corpus/$t" | cut -f1)"
done
