#!/usr/bin/env bash
# Builds the seed corpus for the ext4_map fuzz target: a few tiny images with 1 KiB blocks
# (256 KiB each; ext3 1.2 MiB for its smallest journal) covering ext2, ext3, ext4 with and
# without extents, inline data, htree and meta_bg. Needs e2fsprogs (scripts/install-deps.sh).
#
# Output: seeds/ext4_map/*.img (the committed seeds) and a copy in corpus/ext4_map/, the
# working corpus that `cargo fuzz run ext4_map` grows (ignored by git).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/seeds/ext4_map"
corpus="$here/corpus/ext4_map"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$corpus"

src="$work/src"
mkdir -p "$src/etc" "$src/d/e/f" "$src/big"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$src/etc/passwd"
ln "$src/etc/passwd" "$src/etc/passwd-link"
: > "$src/empty"
ln -s etc/passwd "$src/fast-link"
ln -s "$(printf 'long-target-%.0s' {1..8})" "$src/slow-link"
printf 'deep\n' > "$src/d/e/f/leaf"
head -c 20000 /dev/zero | tr '\0' 'x' > "$src/file-20k"
for i in $(seq 1 60); do printf '%s\n' "$i" > "$src/big/entry-with-a-long-name-$i"; done
# Sparse file with scattered blocks: several extents / indirect blocks.
for i in 0 3 7 20 300; do printf 'block %s' "$i" | dd of="$src/sparse" bs=1024 seek="$i" conv=notrunc status=none; done

mk() {
  local name="$1" type="$2" size="$3"; shift 3
  MKE2FS_CONFIG=/etc/mke2fs.conf mke2fs -F -q -t "$type" -b 1024 -N 128 "$@" -d "$src" "$work/$name" "$size"
  e2fsck -fyD "$work/$name" >/dev/null || [ $? -le 2 ]
  cp "$work/$name" "$out/$name"
}
mk ext2.img ext2 256K
mk ext3.img ext3 1200K -J size=1024
mk ext4.img ext4 256K -O ^has_journal
mk ext4-noextent.img ext4 256K -O ^has_journal,^extent,^64bit
mk ext4-inline.img ext4 256K -O ^has_journal,inline_data -I 256
mk ext4-metabg.img ext4 256K -O ^has_journal,meta_bg,^resize_inode -g 256
cp "$out"/*.img "$corpus"/
ls -l "$out"
