#!/usr/bin/env bash
# Benchmark: recompressing a ~400 MiB ext4 image shipped as gzip -9 inside a SWU, against the
# pipeline `gzip -dc | zstd -3 -T1` on the same image, in one run. Prints a table of wall time
# and peak RSS (from /usr/bin/time -v).
#
#   scripts/bench-recompress.sh [WORKDIR]      (default: a temp folder, removed afterwards)
#   DIFFGEN_BIN=path/to/diffgen scripts/bench-recompress.sh   (measure a prebuilt binary)
#
# The image is built with mkfs.ext4 -d from a copy of this machine's /usr (files of real
# programs and libraries), as a Yocto rootfs would be, filled to ~70 %.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

command -v /usr/bin/time >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq time >/dev/null; }
scripts/install-deps.sh
# DIFFGEN_BIN: measure a prebuilt binary instead of building this checkout.
if [ -z "${DIFFGEN_BIN:-}" ]; then
  cargo build --release -q -p diffgen
fi
bin=${DIFFGEN_BIN:-$root/target/release/diffgen}

work=${1:-$(mktemp -d)}
[ -n "${1:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work"
cd "$work"

size_mib=400
if [ ! -f rootfs.ext4.gz ]; then
  mkdir -p tree
  # ~280 MiB of real files, chosen in name order until the budget is spent.
  find /usr/lib /usr/share /usr/bin -xdev -type f -size -20M -printf '%s %p\n' 2>/dev/null \
    | sort -k2 | awk -v budget=$((280 * 1024 * 1024)) \
        '{ size = $1; path = substr($0, length($1) + 2); total += size; if (total <= budget) print path }' \
    > files.txt
  tar -cf - --files-from=files.txt 2>/dev/null | tar -C tree -xf -
  files=$(find tree -type f | wc -l)
  mkfs.ext4 -q -F -d tree rootfs.ext4 ${size_mib}M
  gzip -9 -n -c rootfs.ext4 > rootfs.ext4.gz
  echo "image: ${size_mib} MiB ext4, $files files, gzip -9: $(stat -c %s rootfs.ext4.gz) bytes"
  sha=$(sha256sum rootfs.ext4.gz | cut -d' ' -f1)
  cat > sw-description <<EOF
software = {
	version = "1.0";
	hardware-compatibility = [ "1.0" ];
	images: ( { filename = "rootfs.ext4.gz"; device = "/dev/mmcblk0p2"; compressed = "zlib"; sha256 = "$sha"; } );
};
EOF
  printf 'sw-description\nrootfs.ext4.gz\n' | cpio -o -H crc --reproducible --quiet > target.swu
fi

measure() { # label command...
  local label=$1; shift
  /usr/bin/time -v "$@" > /dev/null 2> time.txt || { cat time.txt; exit 1; }
  local wall rss
  wall=$(grep "Elapsed (wall clock)" time.txt | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" time.txt | awk '{print $NF}')
  printf '| %-44s | %10s | %8d |\n' "$label" "$wall" $((rss / 1024))
}

echo
echo "| what                                         |  wall time | RSS MiB |"
echo "|----------------------------------------------|------------|---------|"
measure "gzip -dc rootfs.ext4.gz | zstd -3 -T1" sh -c 'gzip -dc rootfs.ext4.gz | zstd -q -3 -T1 -c > /dev/null'
measure "diffgen recompress (zstd -3)" "$bin" recompress target.swu out-zstd.swu
measure "gzip -dc | gzip -9 (reference for gzip profile)" sh -c 'gzip -dc rootfs.ext4.gz | gzip -9 -n -c > /dev/null'
measure "diffgen recompress --compression gzip" "$bin" recompress --compression gzip target.swu out-gzip.swu
echo
ls -l target.swu out-zstd.swu out-gzip.swu | awk '{print $5, $9}'
