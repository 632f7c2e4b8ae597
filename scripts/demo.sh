#!/usr/bin/env bash
# The main job on the built-in sample pair (testdata/swu/release-v1.swu -> release-v2.swu):
# recompress both releases (v1 as devices hold it, v2 as the new update), sign with the test
# key, create the delta, verify it, apply it as a device would, compare, check the result with
# Debian's SWUpdate, and write the import manifest. Prints the path of the run's report.html.
#
#   scripts/demo.sh [OUTDIR]        (default: a temp folder, printed at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/install-deps.sh
cargo build --release -q -p diffgen
bin=$root/target/release/diffgen
out=${1:-$(mktemp -d)}
mkdir -p "$out"
keys=$root/testdata/keys
sign="SIGN_CERT=$keys/signer.crt SIGN_KEY=$keys/signer.key $root/scripts/sign-cms.sh"

echo "== 1. v1 as devices hold it (recompressed, signed)"
"$bin" recompress testdata/swu/release-v1.swu "$out/toaster-1.0.swu" --sign "$sign"
echo
echo "== 2. delta v1 -> v2 (recompress and sign v2, plan, write, verify)"
"$bin" create --source "$out/toaster-1.0.swu" --target testdata/swu/release-v2.swu \
  --recompressed "$out/toaster-2.0.swu" --sign "$sign" \
  -o "$out/toaster-1.0-to-2.0.diff" --work "$out/work" --logs "$out/logs"
echo
echo "== 3. on the device: apply"
"$bin" apply "$out/toaster-1.0.swu" "$out/toaster-1.0-to-2.0.diff" "$out/rebuilt.swu"
cmp "$out/rebuilt.swu" "$out/toaster-2.0.swu"
echo "rebuilt.swu is byte-identical to toaster-2.0.swu"
echo
echo "== 4. Debian's SWUpdate on the rebuilt file"
scripts/swu-check.sh -k "$keys/ca.crt" "$out/rebuilt.swu"
echo
echo "== 5. import manifest"
"$bin" manifest --target "$out/toaster-2.0.swu" \
  --delta "$out/toaster-1.0-to-2.0.diff" --source "$out/toaster-1.0.swu" \
  --provider Contoso --name Toaster --version 2.0 --compat manufacturer=contoso,model=toaster \
  -o "$out/toaster-2.0.importmanifest.json"
echo
ls -l "$out"
echo
echo "Why the delta is this big (open it in a browser): $out/logs/report.html"
