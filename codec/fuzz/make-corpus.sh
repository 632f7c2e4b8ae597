#!/usr/bin/env bash
# Seeds the working corpora of the codec fuzz targets (ignored by git; nothing is committed):
#   corpus/decoders          gzip (one and several members), raw deflate, zlib and zstd streams
#                            (plain, --patch-from the fixed basis, with checksum), plus every
#                            gzip/zstd member of testdata/swu/*.swu up to 256 KiB;
#   corpus/bspatch           BSDIFF40 patches against the fixed old file (written here in
#                            Python, and by `bsdiff` too when it is installed);
#   corpus/bsdiff_roundtrip  <old share byte><old><new> pairs;
#   corpus/gnu_gzip          <level byte><write-size byte><content>: text, binary, zeros;
#   corpus/bcj               <read-size byte><data>: x86-64-like code, text, binary;
#   corpus/exepatch          <mode byte>, then an executable patch (even modes) or
#                            <old length: 2 bytes LE><old><new> (odd modes);
#   corpus/zlib_check        <selector byte><data>: gzip streams of zlib levels 4-9 (checked
#                            as payloads), and text, binary and zeros (compressed, and with a
#                            flipped bit).
# The fixed old file / zstd basis is codec_fuzz::old() (src/lib.rs); it is rebuilt here
# identically. Needs python3; zstd and GNU cpio are used when present.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/corpus/decoders" "$here/corpus/bspatch" "$here/corpus/bsdiff_roundtrip" \
  "$here/corpus/gnu_gzip" "$here/corpus/bcj" "$here/corpus/zlib_check" "$here/corpus/exepatch"

python3 - "$here/corpus" "$work" <<'PY'
import bz2, gzip, os, struct, sys, zlib
corpus, work = sys.argv[1], sys.argv[2]

old = b"".join(b"line %04d: the quick brown fox jumps over the lazy dog\n" % i for i in range(80))
assert len(old) == 4400
open(os.path.join(work, "old"), "wb").write(old)

def put(target, name, data):
    open(os.path.join(corpus, target, name), "wb").write(data)

# Variants of the old file used as "new" files.
news = {
    "same": old,
    "edit": old.replace(b"line 0040: the quick", b"line 0040: THE QUICK"),
    "append": old + b"appended tail\n" * 20,
    "shorter": old[:1500] + old[3000:],
    "shifted": b"header " * 30 + old,
    "binary": bytes((i * 131 + (i >> 7)) & 0xFF for i in range(3000)),
    "zeros": bytes(6000),
}
for name, new in news.items():
    open(os.path.join(work, "new-" + name), "wb").write(new)

# --- decoders --------------------------------------------------------------------------
def raw_deflate(data, level=9):
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    return c.compress(data) + c.flush()
for name in ("edit", "binary", "zeros"):
    new = news[name]
    put("decoders", f"gzip-{name}.gz", gzip.compress(new, 9, mtime=0))
    put("decoders", f"zlib-{name}.zz", zlib.compress(new, 9))
    put("decoders", f"raw-{name}.deflate", raw_deflate(new))
put("decoders", "gzip-multi.gz", gzip.compress(news["edit"], 6, mtime=0) + gzip.compress(b"second member\n", 1, mtime=0))
put("decoders", "gzip-level1.gz", gzip.compress(old, 1, mtime=0))
put("decoders", "gzip-empty.gz", gzip.compress(b"", 9, mtime=0))
put("decoders", "raw-stored.deflate", raw_deflate(news["binary"][:500], 0))

# --- bspatch ---------------------------------------------------------------------------
def offtin(x):
    b = bytearray(abs(x).to_bytes(8, "little"))
    if x < 0:
        b[7] |= 0x80
    return bytes(b)

def make_patch(new, pieces):
    """pieces: (new_len_from_diff, old_start, extra_len) in order, covering `new`."""
    ctrl, diff, extra = b"", bytearray(), bytearray()
    npos, opos = 0, 0
    for x, ostart, y in pieces:
        z_prev = ostart - opos
        if ctrl:  # the previous triple's seek moves the old position to ostart
            ctrl = ctrl[:-8] + offtin(z_prev)
        opos = ostart
        for i in range(x):
            o = old[opos + i] if 0 <= opos + i < len(old) else 0
            diff.append((new[npos + i] - o) & 0xFF)
        npos += x
        opos += x
        extra += new[npos:npos + y]
        npos += y
        ctrl += offtin(x) + offtin(y) + offtin(0)
    assert npos == len(new), (npos, len(new))
    c, d, e = bz2.compress(ctrl, 9), bz2.compress(bytes(diff), 9), bz2.compress(bytes(extra), 9)
    return b"BSDIFF40" + offtin(len(c)) + offtin(len(d)) + offtin(len(new)) + c + d + e

n = news
put("bspatch", "same.patch", make_patch(n["same"], [(len(old), 0, 0)]))
put("bspatch", "edit.patch", make_patch(n["edit"], [(2000, 0, 0), (len(old) - 2000, 2000, 0)]))
put("bspatch", "append.patch", make_patch(n["append"], [(len(old), 0, 280)]))
put("bspatch", "shorter.patch", make_patch(n["shorter"], [(1500, 0, 0), (len(old) - 3000, 3000, 0)]))
put("bspatch", "shifted.patch", make_patch(n["shifted"], [(0, 0, 210), (len(old), 0, 0)]))
put("bspatch", "backwards.patch", make_patch(old[2200:] + old[:2200], [(2200, 2200, 0), (2200, 0, 0)]))
put("bspatch", "past-end.patch", make_patch(n["zeros"], [(6000, 0, 0)]))
put("bspatch", "extra-only.patch", make_patch(n["binary"], [(0, 0, 3000)]))
put("bspatch", "empty.patch", make_patch(b"", []))

# --- bsdiff_roundtrip ------------------------------------------------------------------
def pair(a, b):
    total = len(a) + len(b)
    share = (len(a) * 256 + total - 1) // total if total else 0
    while len(a) + len(b) and (len(a) + len(b)) * share // 256 < len(a):
        share += 1
    assert (len(a) + len(b)) * share // 256 == len(a)
    return bytes([share]) + a + b
small = old[:1200]
put("bsdiff_roundtrip", "edit", pair(small, small.replace(b"quick", b"QUICK", 3)))
put("bsdiff_roundtrip", "append", pair(small, small + b"tail" * 40))
put("bsdiff_roundtrip", "runs", pair(bytes(700) + b"x" * 500, bytes(650) + b"x" * 550))
put("bsdiff_roundtrip", "binary", pair(n["binary"][:1000], n["binary"][500:1500]))
# --- gnu_gzip --------------------------------------------------------------------------
put("gnu_gzip", "text-9", bytes([5, 3]) + old * 20)
put("gnu_gzip", "text-6", bytes([2, 200]) + n["edit"])
put("gnu_gzip", "binary-4", bytes([0, 1]) + n["binary"])
put("gnu_gzip", "zeros-8", bytes([4, 50]) + n["zeros"])
# --- bcj --------------------------------------------------------------------------------
code = bytearray()
for k in range(2000):
    code += bytes([0xE8]) + struct.pack("<i", 0x4000 - len(code) - 5)
    code += bytes([0x48, 0x8D, 0x05]) + struct.pack("<i", -0x100 - k)
    code += bytes([0x8B, 0x05, 0xFF, 0xFF, 0xFF, 0x7F, 0x90])
put("bcj", "code", bytes([3]) + bytes(code))
put("bcj", "text", bytes([1]) + old)
put("bcj", "binary", bytes([200]) + n["binary"])

# --- exepatch ---------------------------------------------------------------------------
def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)

def exepatch(new_len, ranges, controls, diff, extra):
    load = varint(0) + varint(0x10000) + varint(new_len) + varint(new_len + 4096)
    out = b"DGEXEP02" + varint(new_len) + varint(1) + load + varint(1) + load
    out += varint(len(ranges)) + b"".join(b"".join(varint(v) for v in r) for r in ranges)
    # One stack shift (range 1, from 16, by -16) and frame re-layouts in range 1 (aarch64).
    out += varint(1) + varint(1) + varint(16) + varint(31) + varint(1) + varint(1)
    out += varint(len(controls))
    for add, copy, seek in controls:
        out += varint(add) + varint(copy) + varint(((seek << 1) ^ (seek >> 63)) & (2**64 - 1))
    return out + diff + extra

kinds = [(k, (k - 1) * 1100, 1100, 0x10000 + (k - 1) * 1100) for k in range(1, 9)]
put("exepatch", "same", bytes([0]) + exepatch(8800, kinds, [(8800, 0, 0)], bytes(8800), b""))
put("exepatch", "edits", bytes([2]) + exepatch(8900, kinds, [(4000, 100, 200), (4800, 0, -300)],
                                              bytes(range(256)) * 34 + bytes(96), b"x" * 100))
put("exepatch", "pair-code", bytes([1]) + struct.pack("<H", 3000) + bytes(code[:3000]) + bytes(code[40:3100]))
put("exepatch", "pair-text", bytes([3]) + struct.pack("<H", len(old)) + old + n["edit"])

# zlib_check: selector % 6 picks level 4..9; selector / 6 % 3 picks the mode (0: the data is a
# payload; 1: zlib's output for the data; 2: the same with a flipped bit).
for name in ("edit", "binary", "zeros"):
    for level in (4, 6, 9):
        put("zlib_check", "%s-%d-own" % (name, level), bytes([6 + level - 4]) + n[name])
        put("zlib_check", "%s-%d-flip" % (name, level), bytes([12 + level - 4]) + n[name])
        gz = zlib.compressobj(level, zlib.DEFLATED, 31, 9)
        stream = gz.compress(n[name] * 8) + gz.flush()
        put("zlib_check", "%s-%d-payload" % (name, level), bytes([level - 4]) + stream)
PY

# zstd streams (plain, with a content checksum, and deltas against the fixed basis).
if command -v zstd >/dev/null; then
  for name in edit binary zeros append; do
    zstd -q -19 -c "$work/new-$name" > "$here/corpus/decoders/zstd-$name.zst"
    zstd -q -3 -c --patch-from="$work/old" "$work/new-$name" > "$here/corpus/decoders/zstd-basis-$name.zst"
  done
  zstd -q -1 --no-check -c "$work/new-edit" > "$here/corpus/decoders/zstd-nocheck.zst"
  cat "$here/corpus/decoders/zstd-edit.zst" "$here/corpus/decoders/zstd-binary.zst" > "$here/corpus/decoders/zstd-two-frames.zst"
else
  echo "zstd not installed: no zstd seeds" >&2
fi
# Debian's bsdiff (package bsdiff), when installed: real patches.
if command -v bsdiff >/dev/null; then
  for name in edit append shorter shifted; do
    bsdiff "$work/old" "$work/new-$name" "$here/corpus/bspatch/bsdiff-$name.patch"
  done
fi
# Compressed members of the sample SWUs.
if command -v cpio >/dev/null; then
  for f in "$root"/testdata/swu/*.swu; do
    d="$work/x-$(basename "$f" .swu)"
    mkdir -p "$d"
    (cd "$d" && cpio -i --quiet < "$f") 2>/dev/null || continue
    for m in "$d"/*; do
      [ -f "$m" ] && [ "$(stat -c %s "$m")" -le $((256 * 1024)) ] || continue
      magic="$(head -c 4 "$m" | od -An -tx1 | tr -d ' \n')"
      case "$magic" in
        1f8b*|28b52ffd) cp "$m" "$here/corpus/decoders/swu-$(basename "$f" .swu)-$(basename "$m")" ;;
      esac
    done
  done
fi
for t in decoders bspatch bsdiff_roundtrip gnu_gzip bcj zlib_check exepatch; do
  echo "codec/fuzz/corpus/$t: $(ls "$here/corpus/$t" | wc -l) files, $(du -sh "$here/corpus/$t" | cut -f1)"
done
