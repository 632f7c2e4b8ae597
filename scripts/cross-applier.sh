#!/usr/bin/env bash
# Builds the device side — the applier binary (diffgen-apply) and the drop-in library for ADU's
# agent (libadudiffapi.so) — for a device architecture, reports their stripped sizes, and, if
# qemu-user is available, runs both under emulation on a delta of the built-in sample pair to
# prove they work on that architecture.
#
#   scripts/cross-applier.sh aarch64      # 64-bit ARM (aarch64-unknown-linux-gnu)
#   scripts/cross-applier.sh armv7        # 32-bit ARM hard-float (armv7-unknown-linux-gnueabihf)
#   scripts/cross-applier.sh x86_64       # this machine (no cross toolchain, no emulation)
#   scripts/cross-applier.sh all          # the three, then a table of stripped sizes
#
# Installs (Debian): the Rust target via rustup, the cross C compiler (zstd, zlib and bzip2 are
# C libraries built by the cc crate; its binutils strip the results), and qemu-user for the
# smoke test. The results end up in target/<triple>/release/ (diffgen-apply,
# libadudiffapi.so); copy them to the device (docs/device.md).
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo

# apt_install COMMAND PACKAGE: installs PACKAGE unless COMMAND exists.
apt_install() {
  command -v "$1" >/dev/null || $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

# stripped_size FILE STRIP: bytes of FILE once stripped (the file itself is left as built).
stripped_size() {
  local tmp
  tmp=$(mktemp)
  "$2" -o "$tmp" "$1"
  stat -c %s "$tmp"
  rm -f "$tmp"
}

# sample_delta DIR: recompressed sample pair and its zstd-profile delta in DIR (host diffgen).
sample_delta() {
  local host=target/release/diffgen
  cargo build --release -q -p diffgen
  "$host" recompress --drop-signature testdata/swu/release-v1.swu "$1/v1.swu" >/dev/null
  "$host" recompress --drop-signature testdata/swu/release-v2.swu "$1/v2.swu" >/dev/null
  "$host" create --source "$1/v1.swu" --target "$1/v2.swu" -o "$1/d.diff" >/dev/null
}

# build ARCH: builds both for ARCH, smoke-tests them, appends "ARCH apply-bytes lib-bytes" to
# $sizes.
build() {
  local triple gcc pkg qemu sysroot strip
  case "$1" in
    aarch64) triple=aarch64-unknown-linux-gnu; gcc=aarch64-linux-gnu-gcc; pkg=gcc-aarch64-linux-gnu; qemu=qemu-aarch64; sysroot=/usr/aarch64-linux-gnu ;;
    armv7) triple=armv7-unknown-linux-gnueabihf; gcc=arm-linux-gnueabihf-gcc; pkg=gcc-arm-linux-gnueabihf; qemu=qemu-arm; sysroot=/usr/arm-linux-gnueabihf ;;
    x86_64) triple=$(rustc -vV | sed -n 's/^host: //p'); gcc=cc; pkg=gcc; qemu=""; sysroot="" ;;
    *) echo "usage: $0 aarch64|armv7|x86_64|all" >&2; exit 2 ;;
  esac
  strip=${gcc%gcc}strip
  [ "$gcc" = cc ] && strip=strip
  apt_install "$gcc" "$pkg"
  if [ -n "$qemu" ]; then
    apt_install "$qemu" qemu-user || true
    rustup target add "$triple" >/dev/null
    local upper
    upper=$(echo "$triple" | tr 'a-z-' 'A-Z_')
    export "CARGO_TARGET_${upper}_LINKER=$gcc" "CC_${triple//-/_}=$gcc"
  fi
  cargo build --release -q -p diffgen-apply -p adudiffapi --target "$triple"
  local dir=target/$triple/release
  ls -l "$dir/diffgen-apply" "$dir/libadudiffapi.so"
  file "$dir/diffgen-apply" "$dir/libadudiffapi.so" 2>/dev/null || true
  sizes+="$1 $(stripped_size "$dir/diffgen-apply" "$strip") $(stripped_size "$dir/libadudiffapi.so" "$strip")"$'\n'
  [ -n "$qemu" ] && command -v "$qemu" >/dev/null || return 0

  local out=$work/$1
  mkdir -p "$out"
  sample_delta "$out"
  QEMU_LD_PREFIX=$sysroot "$qemu" "$dir/diffgen-apply" "$out/v1.swu" "$out/d.diff" "$out/rebuilt.swu"
  cmp "$out/rebuilt.swu" "$out/v2.swu" && echo "$triple: diffgen-apply rebuilt the target byte for byte"
  # The library, loaded by the C harness of its tests as ADU's agent loads it.
  rm -f "$out/rebuilt.swu"
  "$gcc" -std=gnu11 -O1 -pthread -o "$out/harness" adudiffapi/tests/harness.c -ldl
  QEMU_LD_PREFIX=$sysroot "$qemu" "$out/harness" "$(pwd)/$dir/libadudiffapi.so" apply \
    "$out/v1.swu" "$out/d.diff" "$out/rebuilt.swu"
  cmp "$out/rebuilt.swu" "$out/v2.swu" && echo "$triple: libadudiffapi.so rebuilt the target byte for byte"
}

sizes=""
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case "${1:-}" in
  all) for arch in x86_64 aarch64 armv7; do build "$arch"; done ;;
  *) build "${1:-}" ;;
esac
echo
echo "| architecture | diffgen-apply (stripped) | libadudiffapi.so (stripped) |"
echo "|---|---:|---:|"
while read -r arch a l; do
  if [ -n "$arch" ]; then printf '| %s | %s bytes | %s bytes |\n' "$arch" "$a" "$l"; fi
done <<< "$sizes"
