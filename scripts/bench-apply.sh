#!/usr/bin/env bash
# Apply benchmark: the device-side applier (`diffgen-apply`) on large ext4 images.
#
#   scripts/bench-apply.sh [WORKDIR]      # default WORKDIR: /work/bench-apply (kept; reruns reuse it)
#   APPLY_SIZES="400 2048"     image sizes in MiB (default "400 2048"), one pair of releases each
#   APPLY_RUNS=3               apply-side commands are run this many times; the fastest run counts
#   APPLY_SOURCE=zstd          the source SWU: zstd (recompressed, as devices hold it; default) or
#                              gzip (the release as built, gzip -9)
#   APPLY_PEERS="xdelta3 zstd" which raw-image peers to run (default both; "" for none)
#   DIFFGEN_BIN_DIR=dir        measure prebuilt `diffgen` and `diffgen-apply` from dir instead of
#                              building them (cargo build --release --locked, CARGO_TARGET_DIR honoured)
#   DIFFGEN_BIN=path           another `diffgen` for recompress and create only (e.g. a generator
#                              with a fix); the applier measured is still the one built or in
#                              DIFFGEN_BIN_DIR
#
# Run it niced on a shared machine (nice -n 10 scripts/bench-apply.sh); every step runs one
# tool at a time.
#
# What it does, per size S:
#   images  an ext4 image of S MiB (mkfs.ext4 -d, 4 KiB blocks, -i 4096, fixed UUID, hash seed
#           and time) filled to ~75%: a sample of the regular files of this machine's /usr
#           (files up to 32 MiB; half of the bytes executables and shared libraries, half the
#           rest: text, scripts, headers, compressed docs, ...) plus 5% pseudo-random "asset"
#           files. Version 2 changes a few percent of the files: parts of 4% of the ELF files
#           rewritten in place (a third of them also get 4,099 bytes inserted, shifting the
#           rest), 4% of the text files appended to, 1% of all files deleted, 12 files added
#           (~1% of the bytes), 1 MiB of one asset rewritten.
#   SWUs    each image gzip -9 -n into an SWU as scripts/bench.sh does (sw-description with
#           sha256, cpio -H crc --reproducible, sw-description first), then `diffgen recompress`
#           (zstd profile, level 3, the default).
#   delta   `diffgen create --profile zstd --no-verify` (the delta's correctness is checked by
#           the apply below, byte for byte), source = v1 (APPLY_SOURCE), target = recompressed v2.
#   apply   `diffgen-apply SOURCE DELTA OUT` under /usr/bin/time -v (wall time, peak RSS, CPU),
#           `cmp OUT` with the recompressed target; then again with `--known-item v1.ext4` (as a
#           device offering its running rootfs partition, the decompressed source).
#   base    what the spec compares apply with: only decompress the source payload to a file
#           (zstd -d, or gzip -d for APPLY_SOURCE=gzip) plus compress the target image as the
#           recompression did (zstd -3 --single-thread; whether its bytes equal the payload is
#           reported: the CLI's zstd may be another version than diffgen's). Both with
#           --no-asyncio when the zstd CLI has it: the applier is one thread, and the CLI would
#           otherwise do its file I/O in a second one. Ratio = apply wall time / (decompress +
#           compress) wall time; the CPU-time ratio is shown too (less disturbed by other load).
#           Targets: ratio <= 1.3, apply RSS <= 64 MiB.
#   peers   on the raw images: xdelta3 -e -9 -B <image size> / xdelta3 -d (default source
#           window), zstd -19 -T1 --long=31 --patch-from / zstd -d --long=31 --patch-from.
#
# Prints markdown tables and writes them to WORKDIR/apply-results.md. Images and SWUs are cached
# in WORKDIR/images-<S>; delete that folder to rebuild them. Needs root (or sudo) only to install
# missing Debian packages: e2fsprogs zstd xdelta3 cpio time gzip openssl. Disk in WORKDIR: the
# 2 GiB pair keeps ~5 GiB cached and needs up to ~5 GiB more while it is measured (create's
# working folder, spill files, decompressed images); the 400 MiB pair a fifth of that.
set -euo pipefail

SIZES=${APPLY_SIZES:-400 2048}
RUNS=${APPLY_RUNS:-3}
SOURCE_KIND=${APPLY_SOURCE:-zstd}
PEERS=${APPLY_PEERS-xdelta3 zstd}
FILL_PERCENT=75
UUID=0b1d2c3e-4f50-4617-8829-3a4b5c6d7e8f
HASH_SEED=8a9b0c1d-2e3f-4041-9253-64758697a8b9
EPOCH_V1=1700000000
EPOCH_V2=1702600000
export LC_ALL=C SOURCE_DATE_EPOCH=$EPOCH_V1 E2FSPROGS_FAKE_TIME=$EPOCH_V1

start_epoch=$(date +%s)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=lib/pack-rootfs-swu.sh
. "$here/lib/pack-rootfs-swu.sh"
# shellcheck source=lib/timed.sh
. "$here/lib/timed.sh"
work=${1:-/work/bench-apply}
mkdir -p "$work"
work=$(cd "$work" && pwd)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
M=$((1024 * 1024))

log() { printf '[bench-apply %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { echo "Error: $*" >&2; exit 1; }

case $SOURCE_KIND in zstd | gzip) ;; *) die "APPLY_SOURCE must be zstd or gzip, not '$SOURCE_KIND'" ;; esac
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "APPLY_RUNS must be a positive number, not '$RUNS'"
for s in $SIZES; do
  if ! [[ $s =~ ^[0-9]+$ ]] || [ "$s" -lt 64 ]; then die "APPLY_SIZES: '$s' is not a size in MiB (64 or more)"; fi
done
for p in $PEERS; do
  case $p in xdelta3 | zstd) ;; *) die "APPLY_PEERS: unknown peer '$p' (xdelta3 zstd)" ;; esac
done

trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. dependencies -------------------------------------------------------------------------
install_debs() {
  local p status missing=()
  for p in e2fsprogs zstd xdelta3 cpio time gzip openssl; do
    # shellcheck disable=SC2016 # ${Status} is dpkg-query's field, not a shell variable
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == *"install ok installed"* ]] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- 2. diffgen and diffgen-apply --------------------------------------------------------------
# Sets diffgen, applier (the two binaries) and built_from.
diffgen_binaries() {
  if [ -n "${DIFFGEN_BIN_DIR:-}" ]; then
    bindir=$DIFFGEN_BIN_DIR
    built_from="prebuilt binaries from $bindir"
  else
    target_dir=${CARGO_TARGET_DIR:-target}
    case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
    log "building diffgen and diffgen-apply (release)"
    (cd "$root" && CARGO_TARGET_DIR=$target_dir cargo build --release -p diffgen -p diffgen-apply --locked) \
      > "$work/build.log" 2>&1 \
      || { tail -n 30 "$work/build.log" >&2; die "cargo build failed (log: $work/build.log)"; }
    bindir=$target_dir/release
    commit=$(git --no-optional-locks -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
    dirty=$({ git --no-optional-locks -C "$root" status --porcelain --untracked-files=no 2>/dev/null || true; } | wc -l)
    built_from="built from checkout $commit"
    if [ "$dirty" -gt 0 ]; then built_from+=" with $dirty modified files"; fi
  fi
  diffgen=$bindir/diffgen
  applier=$bindir/diffgen-apply
  if [ -n "${DIFFGEN_BIN:-}" ]; then
    diffgen=$DIFFGEN_BIN
    built_from+="; generator (recompress, create): $DIFFGEN_BIN"
  fi
  [ -x "$diffgen" ] || die "no diffgen binary at $diffgen"
  [ -x "$applier" ] || die "no diffgen-apply binary at $applier"
}

# --- 3. images and SWUs ----------------------------------------------------------------------
# prng BYTES KEY: deterministic pseudo-random bytes (AES-128-CTR of zeros).
prng() {
  head -c "$1" /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$2" -iv 00000000000000000000000000000000 2>/dev/null
}
key() { printf '%032x' "$1"; }
# patch_at FILE OFFSET BYTES KEY: overwrite in place.
patch_at() {
  prng "$3" "$4" | dd of="$1" bs=64K seek="$2" oflag=seek_bytes conv=notrunc status=none
}
# insert_at FILE OFFSET BYTES KEY: insert pseudo-random bytes (same inode, mode kept).
insert_at() {
  local f=$1 tmp=$1.bench-insert
  { head -c "$2" "$f"; prng "$3" "$4"; tail -c +$(($2 + 1)) "$f"; } > "$tmp"
  cat "$tmp" > "$f"
  rm -f "$tmp"
}

mkfs_opts=(-q -F -b 4096 -i 4096 -I 256 -U "$UUID" -E "root_owner=0:0,hash_seed=$HASH_SEED" -L rootfs)

# fs_blocks IMAGE: "<block count> <free blocks>".
fs_blocks() {
  dumpe2fs -h "$1" 2>/dev/null | awk -F: '/^Block count/ { b = $2 + 0 } /^Free blocks/ { f = $2 + 0 } END { print b, f }'
}

# Candidates: regular files of /usr (up to 32 MiB, plain names, no hard links: a file with
# several names is stored once, which would spoil the fill estimate), sorted by path.
usr_list() {
  local list=$work/usr-files.tsv
  [ -s "$list" ] && return 0
  log "listing /usr"
  (cd / && find usr -xdev -type f -links 1 -size -32769k -printf '%s\t%p\n') \
    | grep -E $'^[0-9]+\tusr/[A-Za-z0-9._+@,=:/-]+$' | sort -t $'\t' -k2,2 > "$list.tmp"
  mv "$list.tmp" "$list"
}

# build_images S: $work/images-S/{v1,v2}.ext4, v1/v2 .swu (gzip -9) and .zstd.swu (recompressed).
build_images() {
  local S=$1 dir=$work/images-$1
  if [ -f "$dir/.done" ]; then
    log "$S MiB: images and SWUs from $dir (cached)"
    cached+="$S MiB images, "
    return 0
  fi
  log "$S MiB: building trees"
  rm -rf "$dir" && mkdir -p "$dir"
  usr_list
  # What an empty file system of this size leaves for files.
  truncate -s "${S}M" "$dir/empty.ext4"
  mkfs.ext4 "${mkfs_opts[@]}" "$dir/empty.ext4" "${S}M" > /dev/null
  local blocks free
  read -r blocks free < <(fs_blocks "$dir/empty.ext4")
  rm -f "$dir/empty.ext4"
  # Bytes of 4 KiB blocks files and folders may take for ~75% used blocks.
  local budget=$(((blocks * FILL_PERCENT / 100 - (blocks - free)) * 4096))
  local assets=$((budget / 20))
  local usr_budget=$((budget - assets))

  # Sample of /usr: half of the bytes from executables and shared libraries (usr/bin, usr/sbin,
  # usr/libexec, *.so*), half from everything else; in each pool runs of files in path order
  # (1 MiB buckets, spread evenly) so that packages stay together with their folders. The
  # largest sample (down from twice the budget in 5%, then 0.5% steps) whose files plus one
  # block per folder fit the budget.
  awk -F '\t' -v want="$usr_budget" -v chunk=$M '
    function alloc(s) { return int((s + 4095) / 4096) * 4096 }
    # pick(W): selects about W bytes of files; returns their bytes plus a block per folder.
    function pick(w,   wa, r, i, b, cum, got, p, k) {
      wa = w / 2; if (wa > total[1]) wa = total[1]
      r[1] = wa / total[1]; r[2] = (w - wa) / total[2]; if (r[2] > 1) r[2] = 1
      split("", take); split("", dirs); cum[1] = cum[2] = 0; got = 0
      for (i = 1; i <= NR; i++) {
        k = pool[i]; b = int(cum[k] / chunk); cum[k] += alloc(size[i])
        if (int((b + 1) * r[k]) == int(b * r[k])) continue
        take[i] = 1; got += alloc(size[i])
        p = path[i]
        while ((k = match(p, /\/[^\/]*$/)) > 0) {
          p = substr(p, 1, k - 1)
          if (!(p in dirs)) { dirs[p] = 1; got += 4096 }
        }
      }
      return got
    }
    {
      size[NR] = $1; path[NR] = $2
      pool[NR] = ($2 ~ /^usr\/(s?bin|libexec)\// || $2 ~ /\.so(\.[0-9]+)*$/) ? 1 : 2
      total[pool[NR]] += alloc($1)
    }
    END {
      for (w = 2 * want; w > 0 && pick(w) > want; w -= want / 20) {}
      for (v = w + want / 20; v > w && pick(v) > want; v -= want / 200) {}
      if (v <= w) pick(w)
      for (i = 1; i <= NR; i++) if (i in take) printf "%s\t%s\n", size[i], path[i]
    }' "$work/usr-files.tsv" > "$dir/sample.tsv"

  local v1=$dir/tree-v1 v2=$dir/tree-v2
  rm -rf "$v1" "$v2"
  mkdir -p "$v1"
  cut -f2 "$dir/sample.tsv" > "$dir/files.list"
  tar -C / --no-recursion --verbatim-files-from -cf - -T "$dir/files.list" | tar -C "$v1" -xpf -
  rm -f "$dir/files.list"
  mkdir -p "$v1/opt/assets" "$v1/etc"
  local i=0 n=0 sz nassets=0
  while [ "$n" -lt "$assets" ]; do
    i=$((i + 1))
    sz=$(((1 + (i * 5) % 8) * M))
    [ $((n + sz)) -le "$assets" ] || sz=$((assets - n))
    [ "$sz" -ge 4096 ] || break
    prng "$sz" "$(key $((1000 + i)))" > "$v1/opt/assets/asset-$i.bin"
    n=$((n + sz))
    nassets=$i
  done
  printf 'VERSION=1\n' > "$v1/etc/version"
  find "$v1" -exec touch -h -d "@$EPOCH_V1" {} +

  log "$S MiB: version 2 tree"
  cp -a "$v1" "$v2"
  # Changes, by file of the sample: B every 25th ELF file rewritten in part (every third of
  # them, I, also gets 4,099 bytes inserted), T every 25th text file appended to, D every 97th
  # other file deleted. The tags are kept in files.tsv.
  local tag size path f k=0 idx=0 magic nelf=0 ntext=0 len add nb=0 bbytes=0 ni=0 nt=0 tbytes=0 nd=0 dbytes=0 na=0 abytes=0
  local text_re='\.(txt|py|pl|pm|sh|conf|cfg|ini|h|hpp|c|cc|md|rst|html|xml|json|desc|list|rules|pc|cmake|el|tcl|rb|js|css|csv|yaml|yml)$'
  : > "$dir/files.tsv"
  while IFS=$'\t' read -r size path; do
    f=$v2/$path
    idx=$((idx + 1))
    tag=-
    magic=""
    IFS= read -r -d '' -n 4 magic < "$f" || true
    if [ "$magic" = $'\x7fELF' ]; then
      nelf=$((nelf + 1))
      if [ $((nelf % 25)) -eq 12 ]; then
        tag=B
        [ $((nelf % 75)) -ne 62 ] || tag=I
      fi
    elif [[ $path =~ $text_re ]]; then
      ntext=$((ntext + 1))
      [ $((ntext % 25)) -ne 12 ] || tag=T
    fi
    [ "$tag" != - ] || [ $((idx % 97)) -ne 50 ] || tag=D
    printf '%s\t%s\t%s\n' "$tag" "$size" "$path" >> "$dir/files.tsv"
    [ "$tag" != "-" ] || continue
    k=$((k + 1))
    case $tag in
      B | I)
        if [ "$size" -ge $((64 * 1024)) ]; then
          len=$((size / 16 < 512 * 1024 ? size / 16 : 512 * 1024))
          patch_at "$f" $((size / 5)) "$len" "$(key $((2000 + k)))"
          bbytes=$((bbytes + len))
          len=$((size / 32 < 256 * 1024 ? size / 32 : 256 * 1024))
          patch_at "$f" $((size * 3 / 5)) "$len" "$(key $((3000 + k)))"
          bbytes=$((bbytes + len))
        else
          len=$((size / 8 > 16 ? size / 8 : 16))
          patch_at "$f" $((size / 4)) "$len" "$(key $((2000 + k)))"
          bbytes=$((bbytes + len))
        fi
        nb=$((nb + 1))
        if [ "$tag" = I ]; then
          insert_at "$f" $((size / 2)) 4099 "$(key $((4000 + k)))"
          ni=$((ni + 1))
        fi
        touch -h -d "@$EPOCH_V2" "$f"
        ;;
      T)
        add=$(seq 1 $((20 + k % 100)) | sed 's/^/# release 2: added line /')
        printf '%s\n' "$add" >> "$f"
        tbytes=$((tbytes + ${#add} + 1))
        nt=$((nt + 1))
        touch -h -d "@$EPOCH_V2" "$f"
        ;;
      D)
        rm -f "$f"
        nd=$((nd + 1))
        dbytes=$((dbytes + size))
        ;;
    esac
  done < "$dir/sample.tsv"
  rm -f "$dir/sample.tsv"
  mkdir -p "$v2/usr/lib/newpkg" "$v2/usr/share/newpkg"
  # Added: about 1% of the files' bytes.
  for i in 1 2 3 4 5 6; do
    sz=$((i * (budget / 2400) + 123 * i))
    prng "$sz" "$(key $((5000 + i)))" > "$v2/usr/lib/newpkg/libnew$i.so"
    abytes=$((abytes + sz))
    seq 1 $((i * (budget / 300000))) | sed "s/^/newpkg data $i: /" > "$v2/usr/share/newpkg/data$i.txt"
    abytes=$((abytes + $(stat -c %s "$v2/usr/share/newpkg/data$i.txt")))
    na=$((na + 2))
  done
  if [ -f "$v2/opt/assets/asset-1.bin" ]; then
    patch_at "$v2/opt/assets/asset-1.bin" $((M / 2)) "$M" "$(key 6000)"
  fi
  printf 'VERSION=2\n' > "$v2/etc/version"
  find "$v2/usr/lib/newpkg" "$v2/usr/share/newpkg" "$v2/opt/assets/asset-1.bin" "$v2/etc/version" \
    -exec touch -h -d "@$EPOCH_V2" {} +
  local nfiles
  nfiles=$(wc -l < "$dir/files.tsv")
  printf '%s files from /usr (%s MiB, %s ELF files, %s text files) + %s asset files (%s MiB); v2: %s ELF files rewritten in part (%s KiB, %s of them with 4,099 bytes inserted), %s text files appended (%s KiB), %s files deleted (%s KiB), %s files added (%s KiB), 1 MiB of an asset rewritten\n' \
    "$nfiles" "$(du -sm "$v1/usr" | cut -f1)" "$nelf" "$ntext" "$nassets" $((n / M)) "$nb" $((bbytes / 1024)) "$ni" \
    "$nt" $((tbytes / 1024)) "$nd" $((dbytes / 1024)) "$na" $((abytes / 1024)) > "$dir/changes.txt"

  log "$S MiB: mkfs.ext4 -d"
  local v fake
  for v in 1 2; do
    fake=$EPOCH_V1
    [ "$v" = 1 ] || fake=$EPOCH_V2
    E2FSPROGS_FAKE_TIME=$fake mkfs.ext4 "${mkfs_opts[@]}" -d "$dir/tree-v$v" "$dir/v$v.ext4" "${S}M" > "$dir/mkfs-v$v.log" 2>&1 \
      || { cat "$dir/mkfs-v$v.log" >&2; die "mkfs.ext4 -d failed for $S MiB v$v"; }
  done
  rm -rf "$v1" "$v2"
  for v in 1 2; do
    log "$S MiB: v$v.swu (gzip -9) and v$v.zstd.swu (diffgen recompress)"
    mkswu "$dir" "$v"
  done
  touch "$dir/.done"
}

# mkswu DIR V: DIR/vV.ext4 -> DIR/vV.swu (gzip -9 -n, cpio crc) -> DIR/vV.zstd.swu.
mkswu() {
  local dir=$1 v=$2
  pack_rootfs_swu "$dir/v$v.ext4" "$v" "diffgen apply benchmark release $v" "$dir/v$v.swu"
  "$diffgen" recompress "$dir/v$v.swu" "$dir/v$v.zstd.swu" > /dev/null
}

# --- 4. measurements -------------------------------------------------------------------------
# best NAME PREFIX CMD...: runs CMD $RUNS times (after each run, $after is evaluated, e.g. a check
# and cleanup); keeps the fastest wall time (and that run's CPU time and bytes written), the
# largest RSS. Sets r_NAME_{wall,cpu,out,rss,rc}.
best() {
  local name=$1 pfx=$2
  shift 2
  local i w="" c="" o="" r=0 rc=0
  for ((i = 1; i <= RUNS; i++)); do
    timed "$pfx.$i" "$@"
    [ "$t_rc" -eq 0 ] || rc=$t_rc
    if [ -n "${after:-}" ]; then eval "$after" || rc=99; fi
    if [ -z "$w" ] || awk -v a="$t_wall" -v b="$w" 'BEGIN { exit !(a < b) }'; then w=$t_wall c=$t_cpu o=$t_out; fi
    [ "${t_rss:-0}" -le "$r" ] || r=$t_rss
    [ "$rc" -eq 0 ] || break
  done
  printf -v "r_${name}_wall" '%s' "$w"
  printf -v "r_${name}_cpu" '%s' "$c"
  printf -v "r_${name}_rss" '%s' "$r"
  printf -v "r_${name}_out" '%s' "$o"
  printf -v "r_${name}_rc" '%s' "$rc"
}

# row KEY VALUE for size S.
declare -A R
put() { R["$S.$1"]=$2; }
get() { echo "${R["$S.$1"]:-}"; }

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
size_h() { awk -v b="$1" 'BEGIN { if (b >= 1048576) printf "%.1f MiB", b / 1048576; else printf "%.0f KiB", b / 1024 }'; }
rss_h() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
secs() { awk -v s="$1" 'BEGIN { printf "%.1f s", s }'; }

# payload SWU OUT: the image member (the one that is not sw-description) of SWU into OUT;
# prints its name.
payload() {
  local name
  name=$(cpio -i -t --quiet < "$1" | awk '$0 != "sw-description" && $0 != "sw-description.sig" && !n++')
  cpio -i --quiet --to-stdout "$name" < "$1" > "$2"
  echo "$name"
}

measure_size() {
  local S=$1 dir=$work/images-$1 run=$work/run-$1
  rm -rf "$run" && mkdir -p "$run/tmp"
  local src=$dir/v1.swu
  [ "$SOURCE_KIND" = gzip ] || src=$dir/v1.zstd.swu
  local tgt=$dir/v2.zstd.swu img_bytes
  img_bytes=$(stat -c %s "$dir/v1.ext4")
  local blocks free
  read -r blocks free < <(fs_blocks "$dir/v1.ext4")
  put fill "$(awk -v b="$blocks" -v f="$free" 'BEGIN { printf "%.0f%%", (b - f) * 100 / b }')"
  read -r blocks free < <(fs_blocks "$dir/v2.ext4")
  put fill2 "$(awk -v b="$blocks" -v f="$free" 'BEGIN { printf "%.0f%%", (b - f) * 100 / b }')"
  put changes "$(cat "$dir/changes.txt")"
  put src_swu "$(stat -c %s "$src")"
  put tgt_swu "$(stat -c %s "$tgt")"

  # diffgen create
  log "$S MiB: diffgen create"
  timed "$run/create" "$diffgen" create --source "$src" --target "$tgt" -o "$run/delta.diff" \
    --profile zstd --no-verify --work "$run/create-work" --logs "$run/logs"
  rm -rf "$run/create-work"
  put create_wall "$t_wall"; put create_rss "$t_rss"; put create_cpu "$t_cpu"
  if [ "$t_rc" -ne 0 ]; then
    # Recorded (the table says so); baseline and peers are still measured.
    put create_fail "$(grep -m 1 '^Error' "$run/create.err" || tail -n 1 "$run/create.err")"
  else
    put delta "$(stat -c %s "$run/delta.diff")"
    "$diffgen" inspect "$run/delta.diff" > "$run/delta-inspect.txt" 2>&1 || true
    put needs "$(grep -m1 -o 'apply needs: .*' "$run/delta-inspect.txt" || true)"

    # diffgen-apply
    log "$S MiB: diffgen-apply x$RUNS"
    # shellcheck disable=SC2016 # evaluated by best()
    after='cmp -s "$run/out.swu" "$tgt" && rm -f "$run/out.swu"'
    best apply "$run/apply" "$applier" --temp-dir "$run/tmp" "$src" "$run/delta.diff" "$run/out.swu"
    after=""
    if [ "$r_apply_rc" -eq 0 ]; then
      put apply_wall "$r_apply_wall"; put apply_cpu "$r_apply_cpu"; put apply_rss "$r_apply_rss"
      put apply_out "$r_apply_out"
    else
      put apply_fail "diffgen-apply failed or its output differs from the target (see $run/apply.*.err)"
    fi
    rm -f "$run/out.swu"
    log "$S MiB: diffgen-apply --known-item v1.ext4 x$RUNS"
    # shellcheck disable=SC2016 # evaluated by best()
    after='cmp -s "$run/out.swu" "$tgt" && rm -f "$run/out.swu"'
    best known "$run/apply-known" "$applier" --temp-dir "$run/tmp" --known-item "$dir/v1.ext4" \
      "$src" "$run/delta.diff" "$run/out.swu"
    after=""
    if [ "$r_known_rc" -eq 0 ]; then
      put known "$(secs "$r_known_wall") (CPU $(secs "$r_known_cpu")), RSS $(rss_h "$r_known_rss"), wrote $(size_h "$r_known_out")"
    else
      put known "failed (see $run/apply-known.*.err)"
    fi
    rm -f "$run/out.swu"
  fi

  # baseline: decompress the source payload + compress the target image as recompression did.
  log "$S MiB: baseline x$RUNS"
  local sname tname
  sname=$(payload "$src" "$run/src.payload")
  tname=$(payload "$tgt" "$run/tgt.payload")
  case $sname in
    *.zst) best dec "$run/dec" zstd -q -d "${zstd_sync[@]}" -f "$run/src.payload" -o "$run/src.raw"; put dec_tool "zstd -d" ;;
    *.gz) best dec "$run/dec" sh -c "gzip -d -c '$run/src.payload' > '$run/src.raw'"; put dec_tool "gzip -d" ;;
    *) die "source payload $sname is neither .zst nor .gz" ;;
  esac
  if [ "$r_dec_rc" -ne 0 ] || ! cmp -s "$run/src.raw" "$dir/v1.ext4"; then
    die "baseline: decompressing the source payload failed or did not give v1.ext4"
  fi
  rm -f "$run/src.raw"
  case $tname in *.zst) ;; *) die "target payload $tname is not zstd" ;; esac
  best comp "$run/comp" zstd -q -3 --single-thread "${zstd_sync[@]}" -f "$dir/v2.ext4" -o "$run/tgt.raw.zst"
  [ "$r_comp_rc" -eq 0 ] || die "baseline: zstd -3 failed"
  if cmp -s "$run/tgt.raw.zst" "$run/tgt.payload"; then put comp_same "is identical to"; else put comp_same "differs from"; fi
  rm -f "$run/tgt.raw.zst" "$run/src.payload" "$run/tgt.payload"
  put dec_wall "$r_dec_wall"; put dec_cpu "$r_dec_cpu"; put dec_rss "$r_dec_rss"
  put comp_wall "$r_comp_wall"; put comp_cpu "$r_comp_cpu"; put comp_rss "$r_comp_rss"
  put base_wall "$(awk -v a="$r_dec_wall" -v b="$r_comp_wall" 'BEGIN { printf "%.2f", a + b }')"
  put base_cpu "$(awk -v a="$r_dec_cpu" -v b="$r_comp_cpu" 'BEGIN { printf "%.2f", a + b }')"

  # peers on the raw images
  local p
  for p in $PEERS; do
    case $p in
      xdelta3)
        log "$S MiB: xdelta3 -e -9 -B $img_bytes"
        timed "$run/xd-enc" xdelta3 -e -9 -f -B "$img_bytes" -s "$dir/v1.ext4" "$dir/v2.ext4" "$run/delta.xd"
        if [ "$t_rc" -eq 0 ]; then
          put xd_enc_wall "$t_wall"; put xd_enc_rss "$t_rss"; put xd_delta "$(stat -c %s "$run/delta.xd")"
          log "$S MiB: xdelta3 -d x$RUNS"
          # shellcheck disable=SC2016 # evaluated by best()
          after='cmp -s "$run/out.xd.ext4" "$dir/v2.ext4" && rm -f "$run/out.xd.ext4"'
          best xd "$run/xd-dec" xdelta3 -d -f -s "$dir/v1.ext4" "$run/delta.xd" "$run/out.xd.ext4"
          after=""
          if [ "$r_xd_rc" -eq 0 ]; then put xd_wall "$r_xd_wall"; put xd_rss "$r_xd_rss"; else put xd_fail "xdelta3 -d failed or wrong output"; fi
        else
          put xd_fail "xdelta3 -e: $(tail -n 1 "$run/xd-enc.err")"
        fi
        rm -f "$run/delta.xd" "$run/out.xd.ext4"
        ;;
      zstd)
        log "$S MiB: zstd -19 --long=31 --patch-from"
        timed "$run/zs-enc" zstd -q -f -19 -T1 --long=31 --patch-from="$dir/v1.ext4" "$dir/v2.ext4" -o "$run/delta.zst"
        if [ "$t_rc" -eq 0 ]; then
          put zs_enc_wall "$t_wall"; put zs_enc_rss "$t_rss"; put zs_delta "$(stat -c %s "$run/delta.zst")"
          log "$S MiB: zstd -d --long=31 --patch-from x$RUNS"
          # shellcheck disable=SC2016 # evaluated by best()
          after='cmp -s "$run/out.zs.ext4" "$dir/v2.ext4" && rm -f "$run/out.zs.ext4"'
          best zs "$run/zs-dec" zstd -q -d -f --long=31 --patch-from="$dir/v1.ext4" "$run/delta.zst" -o "$run/out.zs.ext4"
          after=""
          if [ "$r_zs_rc" -eq 0 ]; then put zs_wall "$r_zs_wall"; put zs_rss "$r_zs_rss"; else put zs_fail "zstd -d failed or wrong output"; fi
        else
          put zs_fail "zstd -19 --patch-from: $(tail -n 1 "$run/zs-enc.err")"
        fi
        rm -f "$run/delta.zst" "$run/out.zs.ext4"
        ;;
    esac
  done
  rm -rf "$run/tmp"
}

# --- 5. report -------------------------------------------------------------------------------
report() {
  local S ratio cratio ok_rss ok_ratio all_ok=yes
  echo "## diffgen-apply on large images"
  echo
  echo "| image | diffgen-apply wall | apply peak RSS | baseline wall (decompress + zstd -3) | ratio | CPU ratio | xdelta3 -d wall / RSS | zstd -d --patch-from wall / RSS | delta: diffgen / xdelta3 / zstd |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for S in $SIZES; do
    local aw="n/a" ar="n/a" xd="n/a" zs="n/a" dg="n/a" xdd="n/a" zsd="n/a"
    ratio="n/a" cratio="n/a"
    if [ -n "$(get apply_wall)" ]; then
      aw=$(secs "$(get apply_wall)") ar=$(rss_h "$(get apply_rss)")
      ratio=$(awk -v a="$(get apply_wall)" -v b="$(get base_wall)" 'BEGIN { printf "%.2f", a / b }')
      cratio=$(awk -v a="$(get apply_cpu)" -v b="$(get base_cpu)" 'BEGIN { printf "%.2f", a / b }')
    fi
    [ -z "$(get create_fail)" ] || aw="create failed"
    [ -z "$(get apply_fail)" ] || aw="failed"
    [ -z "$(get xd_wall)" ] || xd="$(secs "$(get xd_wall)") / $(rss_h "$(get xd_rss)")"
    [ -z "$(get zs_wall)" ] || zs="$(secs "$(get zs_wall)") / $(rss_h "$(get zs_rss)")"
    [ -z "$(get xd_fail)" ] || xd="failed"
    [ -z "$(get zs_fail)" ] || zs="failed"
    [ -z "$(get delta)" ] || dg=$(size_h "$(get delta)")
    [ -z "$(get xd_delta)" ] || xdd=$(size_h "$(get xd_delta)")
    [ -z "$(get zs_delta)" ] || zsd=$(size_h "$(get zs_delta)")
    echo "| $S MiB ext4, $(get fill) used | $aw | $ar | $(secs "$(get base_wall)") ($(get dec_tool) $(secs "$(get dec_wall)") + $(secs "$(get comp_wall)")) | **$ratio** | $cratio | $xd | $zs | $dg / $xdd / $zsd |"
  done
  echo
  echo "Requirements (diffgen-apply): peak RSS <= 64 MiB, wall time <= 1.3 x baseline."
  echo
  for S in $SIZES; do
    if [ -z "$(get apply_wall)" ]; then
      all_ok=no
      echo "- $S MiB: not measured: $(get create_fail)$(get apply_fail)"
      continue
    fi
    ratio=$(awk -v a="$(get apply_wall)" -v b="$(get base_wall)" 'BEGIN { printf "%.2f", a / b }')
    cratio=$(awk -v a="$(get apply_cpu)" -v b="$(get base_cpu)" 'BEGIN { printf "%.2f", a / b }')
    ok_rss=$(awk -v k="$(get apply_rss)" 'BEGIN { print (k <= 65536) ? "met" : "NOT met" }')
    ok_ratio=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.3) ? "met" : "NOT met" }')
    if [ "$ok_rss" != met ] || [ "$ok_ratio" != met ]; then all_ok=no; fi
    echo "- $S MiB: RSS $(rss_h "$(get apply_rss)") ($ok_rss); wall ratio $ratio ($ok_ratio); CPU time (user + sys) apply $(secs "$(get apply_cpu)") vs baseline $(secs "$(get base_cpu)") = $cratio."
  done
  echo "- all requirements met: $all_ok"
  echo
  echo "### Creating the deltas"
  echo
  echo "| image | diffgen create (--no-verify) wall / RSS | xdelta3 -e -9 wall / RSS | zstd -19 --long=31 --patch-from wall / RSS |"
  echo "|---|---|---|---|"
  for S in $SIZES; do
    local ce xe="n/a" ze="n/a"
    ce="$(secs "$(get create_wall)") / $(rss_h "$(get create_rss)")"
    [ -z "$(get create_fail)" ] || ce="failed after $ce: $(get create_fail)"
    [ -z "$(get xd_enc_wall)" ] || xe="$(secs "$(get xd_enc_wall)") / $(rss_h "$(get xd_enc_rss)")"
    [ -z "$(get zs_enc_wall)" ] || ze="$(secs "$(get zs_enc_wall)") / $(rss_h "$(get zs_enc_rss)")"
    [ -z "$(get xd_fail)" ] || xe="$(get xd_fail)"
    [ -z "$(get zs_fail)" ] || ze="$(get zs_fail)"
    echo "| $S MiB | $ce | $xe | $ze |"
  done
  echo
  echo "### Details"
  echo
  for S in $SIZES; do
    echo "- **$S MiB** (v1 $(get fill) used, v2 $(get fill2)): $(get changes)."
    echo "  Source SWU ($SOURCE_KIND) $(size_h "$(get src_swu)"), recompressed target SWU $(size_h "$(get tgt_swu)")."
    if [ -n "$(get apply_wall)" ]; then
      echo "  diffgen inspect: $(get needs); diffgen-apply wrote $(size_h "$(get apply_out)") to files (temp files and output, as /usr/bin/time counts them)."
      echo "  diffgen-apply --known-item v1.ext4 (the decompressed source offered as a device offers its rootfs partition): $(get known)."
    fi
    echo "  Baseline parts: $(get dec_tool) $(secs "$(get dec_wall)") (CPU $(secs "$(get dec_cpu)"), RSS $(rss_h "$(get dec_rss)")), zstd -3 --single-thread ${zstd_sync[*]} $(secs "$(get comp_wall)") (CPU $(secs "$(get comp_cpu)"), RSS $(rss_h "$(get comp_rss)")); the CLI's zstd -3 output $(get comp_same) the recompressed payload."
  done
  echo
  local elapsed=$(($(date +%s) - start_epoch))
  echo "Setup: $(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -r), load average at start $load_start (shared machine: wall times are relative; the fastest of $RUNS runs counts for apply, baseline and peer apply)."
  echo "diffgen $("$diffgen" --version 2>/dev/null | awk '{ print $2 }') ($built_from); $(xdelta3 -V 2>&1 | awk 'NR == 1 { sub(/,.*/, ""); print }'); zstd CLI $(zstd -V | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^v[0-9]/) { sub(/,$/, "", $i); print $i } }'); source SWU: $SOURCE_KIND."
  echo "Command: \`scripts/bench-apply.sh $work\` with APPLY_SIZES=\"$SIZES\" APPLY_RUNS=$RUNS APPLY_SOURCE=$SOURCE_KIND; runtime $((elapsed / 60)) min $((elapsed % 60)) s; cached: ${cached:-nothing}."
}

# --- run (one function, so that bash has read all of it before it starts) ---------------------
main() {
  install_debs
  diffgen_binaries
  local zstd_help
  zstd_help=$(zstd --help 2>&1 || true)
  zstd_sync=()
  if [[ $zstd_help == *"[no-]asyncio"* ]]; then zstd_sync=(--no-asyncio); fi
  load_start=$(cut -d' ' -f1-3 /proc/loadavg)
  cached=""
  for S in $SIZES; do
    build_images "$S"
  done
  cached=${cached%, }
  for S in $SIZES; do
    measure_size "$S"
  done
  report > "$work/apply-results.md"
  cat "$work/apply-results.md"
  log "results: $work/apply-results.md"
}

main; exit 0
