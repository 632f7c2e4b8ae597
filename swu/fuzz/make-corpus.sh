#!/usr/bin/env bash
# Seeds the working corpora of the swu fuzz targets from the repository's fixtures:
#   corpus/cpio_scan, corpus/swu_open  <- testdata/swu/*.swu
#   corpus/swdesc_parse                <- testdata/swdesc/*.swdesc and the sw-description of
#                                         every testdata/swu/*.swu (extracted with GNU cpio)
# The corpora are ignored by git; nothing is committed. Re-running only adds files.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mkdir -p "$here/corpus/cpio_scan" "$here/corpus/swu_open" "$here/corpus/swdesc_parse"

for f in "$root"/testdata/swu/*.swu; do
  cp "$f" "$here/corpus/cpio_scan/"
  cp "$f" "$here/corpus/swu_open/"
  if command -v cpio >/dev/null; then
    (cpio -i --quiet --to-stdout sw-description < "$f" > "$here/corpus/swdesc_parse/$(basename "$f" .swu).from-swu.swdesc") 2>/dev/null || true
  fi
done
cp "$root"/testdata/swdesc/*.swdesc "$here/corpus/swdesc_parse/"
find "$here/corpus/swdesc_parse" -size 0 -delete
for t in cpio_scan swu_open swdesc_parse; do
  echo "swu/fuzz/corpus/$t: $(ls "$here/corpus/$t" | wc -l) files"
done
