#!/usr/bin/env bash
# Installs the Debian packages diffgen's tests and sample scripts use.
# Idempotent: packages already present are skipped. Needs root or sudo.
set -euo pipefail

# chromium: the browser test of report.html renders it headless (diffgen/tests/report_html.rs).
# binutils for aarch64 and armhf: the exe crate's decoders are checked against their objdump.
packages=(cpio zstd gzip openssl e2fsprogs python3 swupdate util-linux bsdiff chromium
  binutils binutils-aarch64-linux-gnu binutils-arm-linux-gnueabihf)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
