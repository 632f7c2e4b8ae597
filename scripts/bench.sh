#!/usr/bin/env bash
# Delta benchmark: diffgen against whole-image differs on realistic SWU release pairs.
#
#   scripts/bench.sh [WORKDIR]            # default WORKDIR: a new temp folder (kept; path printed)
#   DIFFGEN_BIN=path/to/diffgen scripts/bench.sh WORKDIR      # measure a prebuilt binary
#   DIFFGEN_NOTE="text"            printed with the results (e.g. what the binary was built from)
#   BENCH_PAIRS="churn mkfs" scripts/bench.sh WORKDIR          # only some pairs
#
# What it measures, all in one run (tools one after another, never two heavy jobs at once):
#   pairs   pkgadd  Debian bookworm minbase (debootstrap) -> the same plus `less procps curl`
#           upgrade minbase from the bookworm release pocket -> after `apt-get upgrade` with
#                   bookworm-updates and bookworm-security (a real point/security upgrade)
#           upgrade-arm64  the same kind of upgrade for aarch64 devices, built without emulation:
#                   debootstrap --foreign --arch=arm64 minbase -> the newer versions of its
#                   packages from bookworm-updates/-security unpacked over it (lib/foreign-upgrade.sh)
#           mkfs    one tree packed twice: mkfs.ext4 -I 256 vs -I 128 (a build-config change)
#           churn   ~60 MiB synthetic tree: large pseudo-random "binaries" partly rewritten in
#                   place, one shifted by inserted bytes
#           Each version: ext4 image as Yocto makes it (mkfs.ext4 -d, size = tree * 1.3, 4 KiB
#           blocks, fixed UUID/hash seed/time), gzip -9 -n, packed into an SWU (cpio -H crc
#           --reproducible, sw-description with sha256), then `diffgen recompress` into a zstd
#           and a gzip variant.
#   tools   diffgen create/apply, zstd profile and gzip profile (SWU -> SWU, byte-exact check);
#           the gzip-profile delta also applied by ADU's own applydiff (../shared/tools/
#           adu-reference, or ADU_REFERENCE=<folder>; skipped with a line when absent), its
#           verdict in the row's note ("ADU applier: rebuilt exactly");
#           on the raw ext4 images: xdelta3 -9 -B <image size>, zstd -19 --long=30
#           --patch-from, HDiffPatch (PyPI `hdiffpatch`, zstd-19).
#   numbers delta size, generation and apply wall time and peak RSS (/usr/bin/time -v), the
#           targets from the issue; a markdown table on stdout and in WORKDIR/bench-results.md.
#
# Installs what it needs (Debian packages via apt-get, HDiffPatch into WORKDIR/venv). Needs root
# (debootstrap, chroot) and network access to the Debian mirrors and PyPI. The debootstrap trees,
# images and SWUs are cached in WORKDIR, so a rerun with the same WORKDIR only re-measures.
# Delete WORKDIR/trees (or WORKDIR/pairs/<pair>) to rebuild them.
set -euo pipefail

MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=bookworm
PAIRS=${BENCH_PAIRS:-pkgadd upgrade upgrade-arm64 mkfs churn}
ADDED_PACKAGES=(less procps curl)
UUID=0b1d2c3e-4f50-4617-8829-3a4b5c6d7e8f
HASH_SEED=8a9b0c1d-2e3f-4041-9253-64758697a8b9
export LC_ALL=C SOURCE_DATE_EPOCH=1700000000 E2FSPROGS_FAKE_TIME=1700000000

start_epoch=$(date +%s)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=lib/pack-rootfs-swu.sh
. "$here/lib/pack-rootfs-swu.sh"
# shellcheck source=lib/timed.sh
. "$here/lib/timed.sh"
# shellcheck source=lib/foreign-upgrade.sh
. "$here/lib/foreign-upgrade.sh"
work=${1:-$(mktemp -d /tmp/diffgen-bench.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- cleanup: chroot mounts are always undone ----------------------------------------------
mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    if mountpoint -q "${mounts[i]}"; then $sudo umount -l "${mounts[i]}" || true; fi
  done
  mounts=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. dependencies -------------------------------------------------------------------------
install_debs() {
  local p missing=()
  for p in debootstrap xdelta3 zstd e2fsprogs cpio time python3-venv gzip openssl xz-utils curl; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null > "$work/.dpkg-status" || true
    grep -q "install ok installed" "$work/.dpkg-status" || missing+=("$p")
  done
  rm -f "$work/.dpkg-status"
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# HDiffPatch: the PyPI package has only a Python API (no hdiffz/hpatchz), see bench/hdiff.py.
hdiff_status=""
install_hdiffpatch() {
  local venv=$work/venv
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import hdiffpatch' 2>/dev/null; then
    log "installing hdiffpatch from PyPI into $venv"
    rm -rf "$venv"
    if ! /usr/bin/python3 -m venv "$venv" >"$work/venv.log" 2>&1 \
      || ! "$venv/bin/pip" install -q hdiffpatch >>"$work/venv.log" 2>&1 \
      || ! "$venv/bin/python" -c 'import hdiffpatch' >>"$work/venv.log" 2>&1; then
      hdiff_status="pip install hdiffpatch failed: $(tail -n 1 "$work/venv.log")"
      return 0
    fi
  fi
  hdiff_version=$("$venv/bin/pip" show hdiffpatch 2>/dev/null | awk '/^Version:/ {print $2}')
}

install_debs
install_hdiffpatch

# --- 2. diffgen ------------------------------------------------------------------------------
if [ -n "${DIFFGEN_BIN:-}" ]; then
  bin=$DIFFGEN_BIN
else
  target_dir=${CARGO_TARGET_DIR:-target}
  case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
  log "building diffgen (release)"
  (cd "$root" && CARGO_TARGET_DIR=$target_dir cargo build --release -p diffgen) > "$work/build.log" 2>&1 \
    || { tail -n 30 "$work/build.log" >&2; echo "Error: cargo build failed (log: $work/build.log)" >&2; exit 1; }
  bin=$target_dir/release/diffgen
fi
[ -x "$bin" ] || { echo "Error: no diffgen binary at $bin" >&2; exit 1; }

# --- 3. trees, images, SWUs ------------------------------------------------------------------
cached=""    # what was taken from WORKDIR instead of being rebuilt (for the report)
seen=" "     # steps already done or found in this run
# from_cache STEP MARKER: true when STEP is done (MARKER exists); notes it once as cached unless
# this run built it.
from_cache() {
  [ -f "$2" ] || return 1
  case $seen in *" $1 "*) return 0 ;; esac
  cached+="$1, "
  seen+="$1 "
}
built() { seen+="$1 "; }
trees=$work/trees
pairs_dir=$work/pairs
mkdir -p "$trees" "$pairs_dir"
meta=$work/meta.tsv
results=$work/results.tsv
: > "$meta"
: > "$results"
meta() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$meta"; }

# with_chroot TREE SCRIPT: runs SCRIPT with /bin/sh inside TREE, with /proc mounted, the host's
# resolv.conf and a policy-rc.d that keeps services from starting; all undone afterwards.
with_chroot() {
  local t=$1 script=$2 rc=0
  [ -e "$t/etc/resolv.conf" ] || [ -L "$t/etc/resolv.conf" ] && mv "$t/etc/resolv.conf" "$t/etc/resolv.conf.bench-saved"
  cp /etc/resolv.conf "$t/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' > "$t/usr/sbin/policy-rc.d"
  chmod 755 "$t/usr/sbin/policy-rc.d"
  $sudo mount -t proc proc "$t/proc"
  mounts+=("$t/proc")
  env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive \
    $sudo chroot "$t" /bin/sh -ec "$script" || rc=$?
  cleanup
  rm -f "$t/usr/sbin/policy-rc.d" "$t/etc/resolv.conf"
  [ -e "$t/etc/resolv.conf.bench-saved" ] || [ -L "$t/etc/resolv.conf.bench-saved" ] \
    && mv "$t/etc/resolv.conf.bench-saved" "$t/etc/resolv.conf"
  return $rc
}

# An image holds no package caches or index lists (as Yocto/debos images).
strip_apt_caches() {
  local t=$1
  find "$t/var/cache/apt" -type f -delete 2>/dev/null || true
  find "$t/var/lib/apt/lists" -type f -delete 2>/dev/null || true
}

base_tree() {
  if from_cache base-tree "$trees/base.done"; then return 0; fi
  log "debootstrap --variant=minbase $SUITE (release pocket only)"
  rm -rf "$trees/base" "$trees/base.tmp"
  $sudo debootstrap --variant=minbase "$SUITE" "$trees/base.tmp" "$MIRROR" > "$trees/base.log" 2>&1 \
    || { tail -n 20 "$trees/base.log" >&2; exit 1; }
  strip_apt_caches "$trees/base.tmp"
  mv "$trees/base.tmp" "$trees/base"
  touch "$trees/base.done"
  built base-tree
}

pkgadd_tree() {
  if from_cache pkgadd-tree "$trees/pkgadd.done"; then return 0; fi
  log "package-add tree: base + ${ADDED_PACKAGES[*]}"
  rm -rf "$trees/pkgadd" "$trees/pkgadd.tmp"
  cp -a "$trees/base" "$trees/pkgadd.tmp"
  with_chroot "$trees/pkgadd.tmp" "apt-get update -qq; apt-get install -y -qq --no-install-recommends ${ADDED_PACKAGES[*]}" \
    > "$trees/pkgadd.log" 2>&1 || { cat "$trees/pkgadd.log" >&2; exit 1; }
  strip_apt_caches "$trees/pkgadd.tmp"
  mv "$trees/pkgadd.tmp" "$trees/pkgadd"
  touch "$trees/pkgadd.done"
  built pkgadd-tree
}

# Writes $trees/upgrade.skip (the reason) instead when the security pocket cannot be reached.
upgrade_tree() {
  if from_cache upgrade-tree "$trees/upgrade.done"; then return 0; fi
  rm -f "$trees/upgrade.skip"
  log "upgrade tree: base + apt-get upgrade from $SUITE-updates and $SUITE-security"
  rm -rf "$trees/upgrade" "$trees/upgrade.tmp"
  cp -a "$trees/base" "$trees/upgrade.tmp"
  cat > "$trees/upgrade.tmp/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
  # Update first, then check that the security index really arrived.
  with_chroot "$trees/upgrade.tmp" "apt-get update -qq" > "$trees/upgrade.log" 2>&1 || true
  find "$trees/upgrade.tmp/var/lib/apt/lists" -name "*${SUITE}-security*Packages*" > "$trees/upgrade.found"
  if [ ! -s "$trees/upgrade.found" ]; then
    echo "security mirror $SECURITY_MIRROR unreachable (no $SUITE-security index after apt-get update: $(tail -n 1 "$trees/upgrade.log"))" > "$trees/upgrade.skip"
    rm -rf "$trees/upgrade.tmp"
    return 0
  fi
  with_chroot "$trees/upgrade.tmp" "apt-get -y -qq upgrade" >> "$trees/upgrade.log" 2>&1 \
    || { cat "$trees/upgrade.log" >&2; exit 1; }
  strip_apt_caches "$trees/upgrade.tmp"
  mv "$trees/upgrade.tmp" "$trees/upgrade"
  touch "$trees/upgrade.done"
  built upgrade-tree
}

arm64_trees() {
  if from_cache arm64-trees "$trees/arm64.done"; then return 0; fi
  log "arm64 upgrade trees: debootstrap --foreign --arch=arm64, then $SUITE-updates/-security packages unpacked"
  $sudo bash -c ". '$here/lib/foreign-upgrade.sh'; foreign_upgrade_trees arm64 '$trees' '$MIRROR' '$SECURITY_MIRROR' '$SUITE'" \
    || { echo "Error: cannot build the arm64 trees (log: $trees/arm64.log)" >&2; exit 1; }
  touch "$trees/arm64.done"
  built arm64-trees
}

# pkgdiff OLD NEW: packages (name=version) of tree NEW that tree OLD does not have, on one line.
pkgdiff() {
  comm -13 \
    <(dpkg-query --admindir="$1/var/lib/dpkg" -W -f='${Package}=${Version}\n' | sort) \
    <(dpkg-query --admindir="$2/var/lib/dpkg" -W -f='${Package}=${Version}\n' | sort) \
    | tr '\n' ' ' | sed 's/ $//'
}
count_words() { local n=0 w; for w in $1; do : "$w"; n=$((n + 1)); done; echo "$n"; }

# prng BYTES KEY: deterministic pseudo-random bytes (AES-128-CTR of zeros).
prng() {
  head -c "$1" /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$2" -iv 00000000000000000000000000000000 2>/dev/null
}
# patch_at FILE OFFSET BYTES KEY: overwrite in place.
patch_at() {
  prng "$3" "$4" | dd of="$1" bs=64K seek="$2" oflag=seek_bytes conv=notrunc status=none
}

churn_trees() {
  if from_cache churn-tree "$trees/churn.done"; then return 0; fi
  log "churn trees (synthetic, ~60 MiB)"
  rm -rf "$trees/churn-v1" "$trees/churn-v2"
  local t=$trees/churn-v1 M=$((1024 * 1024))
  mkdir -p "$t/usr/bin" "$t/usr/lib" "$t/usr/share/data" "$t/etc"
  prng $((20 * M)) 01010101010101010101010101010101 > "$t/usr/bin/app"
  prng $((14 * M)) 02020202020202020202020202020202 > "$t/usr/bin/engine"
  prng $((12 * M)) 03030303030303030303030303030303 > "$t/usr/lib/libbig.so"
  prng $((8 * M)) 04040404040404040404040404040404 > "$t/usr/share/data/assets.bin"
  seq 1 700000 > "$t/usr/share/data/table.txt"       # ~4.7 MiB of text
  printf 'VERSION=1\n' > "$t/etc/version"
  cp -a "$t" "$trees/churn-v2"
  t=$trees/churn-v2
  # app: 2 MiB rewritten in one place, plus 16 scattered 64 KiB rewrites (3 MiB in all).
  patch_at "$t/usr/bin/app" $((5 * M)) $((2 * M)) 11111111111111111111111111111111
  local i
  for i in $(seq 0 15); do
    patch_at "$t/usr/bin/app" $((8 * M + i * 700 * 1024 + 123)) $((64 * 1024)) "$(printf '2%031x' "$i")"
  done
  # engine: 1 MiB rewritten near the end.
  patch_at "$t/usr/bin/engine" $((12 * M)) $M 33333333333333333333333333333333
  # libbig.so: 1,000 bytes inserted at 3 MiB (everything after shifts by a non-block amount).
  { head -c $((3 * M)) "$trees/churn-v1/usr/lib/libbig.so"
    prng 1000 44444444444444444444444444444444
    tail -c +$((3 * M + 1)) "$trees/churn-v1/usr/lib/libbig.so"; } > "$t/usr/lib/libbig.so"
  seq 1 700000 | sed 's/^4242/four-two-four-two/' > "$t/usr/share/data/table.txt"
  printf 'VERSION=2\n' > "$t/etc/version"
  touch "$trees/churn.done"
  built churn-tree
}

# mkimg TREE OUT.ext4 [mkfs options]: ext4 image as Yocto builds it (size = du * 1.3, MiB).
mkimg() {
  local tree=$1 out=$2
  shift 2
  local kib mib
  kib=$(du -sk "$tree" | cut -f1)
  mib=$(( (kib * 13 / 10 + 1023) / 1024 ))
  mkfs.ext4 -q -F -b 4096 -i 4096 -U "$UUID" -E "root_owner=0:0,hash_seed=$HASH_SEED" -L rootfs \
    "$@" -d "$tree" "$out" "${mib}M" > "$out.mkfs.log" 2>&1 || { cat "$out.mkfs.log" >&2; exit 1; }
}

# mkswu DIR VERSION: DIR/rootfs.ext4 -> DIR/vVERSION.swu (gzip -9 -n image, cpio crc).
mkswu() {
  local dir=$1 v=$2
  pack_rootfs_swu "$dir/v$v.ext4" "$v" "diffgen benchmark release $v" "$dir/v$v.swu"
  "$bin" recompress "$dir/v$v.swu" "$dir/v$v.zstd.swu" > /dev/null
  "$bin" recompress --compression gzip "$dir/v$v.swu" "$dir/v$v.gzip.swu" > /dev/null
}

# build_pair NAME TREE1 TREE2 "MKFS OPTS 1" "MKFS OPTS 2"
build_pair() {
  local name=$1 t1=$2 t2=$3 o1=$4 o2=$5 dir=$pairs_dir/$1
  if ! from_cache "$name-images" "$dir/.done"; then
    log "$name: images and SWUs"
    rm -rf "$dir" && mkdir -p "$dir"
    # shellcheck disable=SC2086
    mkimg "$t1" "$dir/v1.ext4" $o1
    # shellcheck disable=SC2086
    mkimg "$t2" "$dir/v2.ext4" $o2
    mkswu "$dir" 1
    mkswu "$dir" 2
    touch "$dir/.done"
  fi
  meta "$name" v1_raw "$(stat -c %s "$dir/v1.ext4")"
  meta "$name" v2_raw "$(stat -c %s "$dir/v2.ext4")"
  meta "$name" v2_swu_gzip9 "$(stat -c %s "$dir/v2.swu")"
  meta "$name" v2_swu_zstd "$(stat -c %s "$dir/v2.zstd.swu")"
  meta "$name" v2_swu_gzip "$(stat -c %s "$dir/v2.gzip.swu")"
}

# --- 4. measurements -------------------------------------------------------------------------
# measure PAIR TOOL KIND GEN_CMD APPLY_CMD DELTA OUT EXPECTED [NOTE]: one result row.
measure() {
  local pair=$1 tool=$2 kind=$3 gen=$4 apply=$5 delta=$6 out=$7 expected=$8 note=${9:-}
  local dir
  dir=$(dirname "$delta")
  log "$pair: $tool"
  local size="" g_wall g_rss g_rc a_wall="" a_rss="" a_rc="" exact=""
  timed "$dir/gen" sh -c "$gen"
  g_wall=$t_wall g_rss=$t_rss g_rc=$t_rc
  if [ "$g_rc" -eq 0 ]; then
    size=$(stat -c %s "$delta")
    timed "$dir/apply" sh -c "$apply"
    a_wall=$t_wall a_rss=$t_rss a_rc=$t_rc
    if [ "$a_rc" -eq 0 ] && cmp -s "$out" "$expected"; then exact=yes; else exact=no; fi
    rm -f "$out"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pair" "$tool" "$kind" "$size" \
    "$g_wall" "$g_rss" "$g_rc" "$a_wall" "$a_rss" "$a_rc" "$exact" "$note" >> "$results"
}

# diffgen's own account of a delta (report.json): reused / zero / new bytes, stage times.
diffgen_report() {
  local pair=$1 profile=$2 logs=$3
  [ -f "$logs/report.json" ] || return 0
  /usr/bin/python3 - "$logs/report.json" > "$logs/summary.txt" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
if "deltas" in r:  # newer diffgen: one entry per source
    r = r["deltas"][0] if r["deltas"] else {}
stages = ", ".join(f"{name} {sec:.1f}s" for name, sec in r.get("stage_seconds", []))
recreated = "; ".join(" ".join(x) for x in r.get("recreated_payloads", []))
print(f"target bytes reused {r.get('reused_bytes', 0):,}, zero {r.get('zero_bytes', 0):,}, "
      f"new {r.get('new_bytes', 0):,}; {r.get('recipes', 0)} recipes; recreated: {recreated or 'none'}; "
      f"stages: {stages}")
EOF
  meta "$pair" "diffgen $profile" "$(cat "$logs/summary.txt")"
}

# ADU's own delta applier (libadudiffapi.so 3.0.0 and applydiff), beside the checkout.
adu_ref=${ADU_REFERENCE:-$root/../shared/tools/adu-reference}
[ -x "$adu_ref/bin/applydiff" ] \
  || log "SKIPPED: ADU applier check of gzip-profile deltas ($adu_ref/bin/applydiff not found; it lives beside the checkout in ../shared)"

# adu_check SOURCE DELTA EXPECTED: applies DELTA with ADU's applydiff (ADU's own library, under
# timeout) and adds its verdict to the note of the last results row.
adu_check() {
  local delta=$2 out=$2.adu.swu verdict rc=0 t0
  if [ ! -x "$adu_ref/bin/applydiff" ]; then
    verdict="ADU applier: not checked (../shared absent)"
  elif [ ! -f "$delta" ]; then
    return 0
  else
    log "  ADU applydiff"
    t0=$(date +%s.%N)
    env -u LD_LIBRARY_PATH timeout --kill-after=10 3600 "$adu_ref/bin/applydiff" "$1" "$delta" "$out" \
      > "$delta.adu.log" 2>&1 || rc=$?
    t0=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      verdict="ADU applier: FAILED (timed out after 3600 s)"
    elif [ "$rc" -ne 0 ]; then
      # No "Code:" line (a crash) must not end the benchmark under set -e.
      code=$({ grep -m 1 -o 'Code: [0-9]*.*' "$delta.adu.log" || echo "no error code"; } | cut -c 1-120 | tr -d '\t|')
      verdict="ADU applier: FAILED (exit $rc: $code)"
    elif cmp -s "$out" "$3"; then
      verdict="ADU applier: rebuilt exactly, $t0 s"
    else
      verdict="ADU applier: FAILED (other bytes than the target)"
    fi
    rm -f "$out"
  fi
  awk -F'\t' -v OFS='\t' -v n="$verdict" 'NR == FNR { last = FNR; next }
    FNR == last { $12 = ($12 == "" ? n : $12 "; " n) } { print }' "$results" "$results" > "$results.tmp"
  mv "$results.tmp" "$results"
}

# elf_check PAIR TREE1 TREE2: did the zstd profile compare bsdiff for every changed executable?
# (Checked against the trees, independently of diffgen; issue 19's miss was invisible in sizes.)
elf_check() {
  local log=$work/runs/$1/diffgen-zstd/logs/diffgen.log line
  [ -f "$log" ] || return 0
  line=$(/usr/bin/python3 "$here/bench/elf_check.py" "$2" "$3" "$log") || line="FAIL: $line"
  meta "$1" "changed executables" "$line"
}

run_pair() {
  local pair=$1 dir=$pairs_dir/$1 runs=$work/runs/$1
  rm -rf "$runs"
  mkdir -p "$runs"
  local size_v1
  size_v1=$(stat -c %s "$dir/v1.ext4")
  local p
  for p in zstd gzip; do
    local r=$runs/diffgen-$p
    mkdir -p "$r"
    measure "$pair" "diffgen $p profile" diffgen \
      "'$bin' create --source '$dir/v1.$p.swu' --target '$dir/v2.$p.swu' -o '$r/d.diff' --profile $p --work '$r/work' --logs '$r/logs'" \
      "'$bin' apply --temp-dir '$r' '$dir/v1.$p.swu' '$r/d.diff' '$r/out.swu'" \
      "$r/d.diff" "$r/out.swu" "$dir/v2.$p.swu"
    if [ "$p" = gzip ]; then adu_check "$dir/v1.$p.swu" "$r/d.diff" "$dir/v2.$p.swu"; fi
    diffgen_report "$pair" "$p" "$r/logs"
    rm -rf "$r/work"
  done
  local r=$runs/xdelta3
  mkdir -p "$r"
  measure "$pair" "xdelta3 -9 -B $size_v1" peer \
    "xdelta3 -e -9 -f -B $size_v1 -s '$dir/v1.ext4' '$dir/v2.ext4' '$r/d.xd'" \
    "xdelta3 -d -f -B $size_v1 -s '$dir/v1.ext4' '$r/d.xd' '$r/out.ext4'" \
    "$r/d.xd" "$r/out.ext4" "$dir/v2.ext4"
  r=$runs/zstd
  mkdir -p "$r"
  measure "$pair" "zstd -19 --long=30 --patch-from" peer \
    "zstd -q -f -19 -T1 --long=30 --patch-from='$dir/v1.ext4' '$dir/v2.ext4' -o '$r/d.zst'" \
    "zstd -q -f -d --long=30 --memory=2047MB --patch-from='$dir/v1.ext4' '$r/d.zst' -o '$r/out.ext4'" \
    "$r/d.zst" "$r/out.ext4" "$dir/v2.ext4"
  r=$runs/hdiffpatch
  mkdir -p "$r"
  if [ -z "$hdiff_status" ]; then
    measure "$pair" "HDiffPatch -m zstd-19" peer \
      "'$work/venv/bin/python' '$here/bench/hdiff.py' diff '$dir/v1.ext4' '$dir/v2.ext4' '$r/d.hdiff'" \
      "'$work/venv/bin/python' '$here/bench/hdiff.py' patch '$dir/v1.ext4' '$r/d.hdiff' '$r/out.ext4'" \
      "$r/d.hdiff" "$r/out.ext4" "$dir/v2.ext4" "PyPI hdiffpatch $hdiff_version, in-memory API"
  else
    printf '%s\t%s\t%s\t\t\t\t%s\t\t\t\t\t%s\n' "$pair" "HDiffPatch" peer "n/a" "$hdiff_status" >> "$results"
  fi
}

# --- run -------------------------------------------------------------------------------------
if [ -n "${DIFFGEN_BIN:-}" ]; then
  built_from="prebuilt DIFFGEN_BIN${DIFFGEN_NOTE:+, $DIFFGEN_NOTE}"
else
  commit=$(git --no-optional-locks -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  dirty=$({ git --no-optional-locks -C "$root" status --porcelain --untracked-files=no 2>/dev/null || true; } | wc -l)
  built_from="built from checkout $commit"
  if [ "$dirty" -gt 0 ]; then built_from+=" with $dirty modified files"; fi
  built_from+="${DIFFGEN_NOTE:+, $DIFFGEN_NOTE}"
fi
meta "*" "diffgen" "$("$bin" --version 2>/dev/null || echo diffgen) ($bin; $built_from)"
meta "*" "peers" "$(xdelta3 -V 2>&1 | awk 'NR == 1 { sub(/,.*/, ""); print }'); zstd $(zstd -V | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^v[0-9]/) { sub(/,$/, "", $i); print $i } }'); HDiffPatch: ${hdiff_status:-PyPI hdiffpatch ${hdiff_version:-?} (Python API, no hdiffz/hpatchz CLI)}"
meta "*" "machine" "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -r); shared machine: times are relative"
meta "*" "work folder" "$work"

for pair in $PAIRS; do
  case $pair in
    pkgadd)
      base_tree
      pkgadd_tree
      meta pkgadd title "package-add"
      added=$(pkgdiff "$trees/base" "$trees/pkgadd")
      meta pkgadd desc "v1 = debootstrap --variant=minbase $SUITE; v2 = v1 + apt-get install --no-install-recommends ${ADDED_PACKAGES[*]} ($(count_words "$added") packages added: $added); apt caches and lists removed from both"
      build_pair pkgadd "$trees/base" "$trees/pkgadd" "-I 256" "-I 256"
      run_pair pkgadd
      ;;
    upgrade)
      base_tree
      meta upgrade title "upgrade"
      upgrade_tree
      if [ ! -f "$trees/upgrade.skip" ]; then
        upgraded=$(pkgdiff "$trees/base" "$trees/upgrade")
        meta upgrade desc "v1 = minbase from the $SUITE release pocket; v2 = v1 after apt-get upgrade with $SUITE-updates and $SUITE-security ($(count_words "$upgraded") new package versions: $upgraded)"
        build_pair upgrade "$trees/base" "$trees/upgrade" "-I 256" "-I 256"
        run_pair upgrade
        elf_check upgrade "$trees/base" "$trees/upgrade"
      else
        meta upgrade skipped "$(cat "$trees/upgrade.skip")"
      fi
      ;;
    upgrade-arm64)
      arm64_trees
      meta upgrade-arm64 title "upgrade (arm64)"
      meta upgrade-arm64 desc "v1 = debootstrap --foreign --arch=arm64 --variant=minbase $SUITE (unpacked, not configured); v2 = v1 with the newer versions from $SUITE-updates and $SUITE-security unpacked over it ($(wc -l < "$trees/arm64-upgraded.txt") packages: $(tr '\n' ' ' < "$trees/arm64-upgraded.txt"))"
      build_pair upgrade-arm64 "$trees/arm64-v1" "$trees/arm64-v2" "-I 256" "-I 256"
      run_pair upgrade-arm64
      elf_check upgrade-arm64 "$trees/arm64-v1" "$trees/arm64-v2"
      ;;
    mkfs)
      base_tree
      meta mkfs title "mkfs-params"
      meta mkfs desc "the minbase tree packed twice: mkfs.ext4 -I 256 (v1) vs -I 128 (v2), same size, UUID, hash seed"
      build_pair mkfs "$trees/base" "$trees/base" "-I 256" "-I 128"
      run_pair mkfs
      ;;
    churn)
      churn_trees
      meta churn title "large-binary churn"
      meta churn desc "~60 MiB synthetic tree (AES-CTR data): app 20 MiB with 2 MiB + 16x64 KiB rewritten in place, engine 14 MiB with 1 MiB rewritten, libbig.so 12 MiB with 1,000 bytes inserted at 3 MiB, 8 MiB unchanged, 4.7 MiB text with a few lines edited"
      build_pair churn "$trees/churn-v1" "$trees/churn-v2" "-I 256" "-I 256"
      run_pair churn
      ;;
    *) echo "Error: unknown pair '$pair' (pkgadd upgrade upgrade-arm64 mkfs churn)" >&2; exit 1 ;;
  esac
done

elapsed=$(( $(date +%s) - start_epoch ))
meta "*" "script runtime" "$((elapsed / 60)) min $((elapsed % 60)) s; taken from WORKDIR's cache instead of rebuilt: $([ -n "$cached" ] && echo "${cached%, }" || echo nothing)"
/usr/bin/python3 "$here/bench/report.py" "$results" "$meta" > "$work/bench-results.md"
cat "$work/bench-results.md"
log "results: $work/bench-results.md"
