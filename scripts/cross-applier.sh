#!/usr/bin/env bash
# Cross-compiles the device applier (diffgen-apply) and, if qemu-user is available, runs it
# on the built-in sample delta to prove the binary works on that architecture.
#
#   scripts/cross-applier.sh aarch64      # 64-bit ARM (aarch64-unknown-linux-gnu)
#   scripts/cross-applier.sh armv7        # 32-bit ARM hard-float (armv7-unknown-linux-gnueabihf)
#
# Installs (Debian): the Rust target via rustup, the cross C compiler (zstd, zlib and bzip2 are
# C libraries built by the cc crate), and qemu-user for the smoke test. The binary ends up in
# target/<triple>/release/diffgen-apply; copy it to the device.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  aarch64) triple=aarch64-unknown-linux-gnu; gcc=aarch64-linux-gnu-gcc; pkg=gcc-aarch64-linux-gnu; qemu=qemu-aarch64; sysroot=/usr/aarch64-linux-gnu ;;
  armv7) triple=armv7-unknown-linux-gnueabihf; gcc=arm-linux-gnueabihf-gcc; pkg=gcc-arm-linux-gnueabihf; qemu=qemu-arm; sysroot=/usr/arm-linux-gnueabihf ;;
  *) echo "usage: $0 aarch64|armv7" >&2; exit 2 ;;
esac
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
command -v "$gcc" >/dev/null || $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
command -v "$qemu" >/dev/null || $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null || true
rustup target add "$triple" >/dev/null
upper=$(echo "$triple" | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${upper}_LINKER=$gcc" "CC_${triple//-/_}=$gcc"
cargo build --release -q -p diffgen-apply --target "$triple"
bin=target/$triple/release/diffgen-apply
ls -l "$bin"
file "$bin" 2>/dev/null || true
if command -v "$qemu" >/dev/null; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  host=target/release/diffgen
  cargo build --release -q -p diffgen
  keys=testdata/keys
  "$host" recompress --drop-signature testdata/swu/release-v1.swu "$out/v1.swu" >/dev/null
  "$host" recompress --drop-signature testdata/swu/release-v2.swu "$out/v2.swu" >/dev/null
  "$host" create --source "$out/v1.swu" --target "$out/v2.swu" -o "$out/d.diff" >/dev/null
  QEMU_LD_PREFIX=$sysroot "$qemu" "$bin" "$out/v1.swu" "$out/d.diff" "$out/rebuilt.swu"
  cmp "$out/rebuilt.swu" "$out/v2.swu" && echo "$triple: rebuilt target is byte-identical"
fi
