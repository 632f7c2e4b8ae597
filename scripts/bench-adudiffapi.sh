#!/usr/bin/env bash
# Drop-in benchmark: ADU's own `applydiff` loading diffgen's libadudiffapi.so, against
# `diffgen apply`, on the release pair and zstd-profile delta that scripts/bench-apply.sh made.
#
#   scripts/bench-apply.sh WORKDIR                 # first: images, SWUs and the delta (cached)
#   scripts/bench-adudiffapi.sh [WORKDIR [SIZE]]   # default /work/bench-apply, 400 (MiB)
#   RUNS=3                                         # each measurement this many times; fastest counts
#   DIFFGEN_BIN_DIR=dir                            # prebuilt diffgen and libadudiffapi.so
#                                                  # (default: cargo build --release)
#   ADU_REFERENCE=dir                              # ADU's tools (default ../shared/tools/adu-reference)
#
# Measures under /usr/bin/time -v, one command at a time (run it niced on a shared machine):
#   cli        diffgen apply SOURCE DELTA OUT
#   lib        applydiff SOURCE DELTA OUT with LD_LIBRARY_PATH at diffgen's library
#   lib+known  the same with DIFFGEN_KNOWN_ITEMS at a "partition": the source image followed by
#              100 MiB of unused space, as a device's active rootfs partition
# Every output is compared with the target byte for byte; temp disk (bytes spilled) comes from
# the library's log and the CLI's output. Prints a markdown table (also WORKDIR/adudiffapi-results.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=lib/timed.sh
. "$here/lib/timed.sh"
work=${1:-/work/bench-apply}
S=${2:-400}
RUNS=${RUNS:-3}
adu=${ADU_REFERENCE:-$root/../shared/tools/adu-reference}
log() { printf '[bench-adudiffapi %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { echo "Error: $*" >&2; exit 1; }

images=$work/images-$S
src=$images/v1.zstd.swu
tgt=$images/v2.zstd.swu
delta=$work/run-$S/delta.diff
for f in "$src" "$tgt" "$delta" "$images/v1.ext4"; do
  [ -f "$f" ] || die "$f missing: run scripts/bench-apply.sh $work first (APPLY_SIZES=$S)"
done
[ -x "$adu/bin/applydiff" ] || die "ADU's applydiff not found in $adu/bin"

if [ -n "${DIFFGEN_BIN_DIR:-}" ]; then
  bindir=$DIFFGEN_BIN_DIR
else
  log "building diffgen and libadudiffapi.so (release)"
  (cd "$root" && cargo build --release --locked -q -p diffgen -p adudiffapi)
  bindir=${CARGO_TARGET_DIR:-$root/target}/release
fi
run=$work/run-$S-adudiffapi
rm -rf "$run" && mkdir -p "$run/lib"
cp "$bindir/libadudiffapi.so" "$run/lib/"
# The partition: the image, then 100 MiB of unused space (sparse: reads as zeros).
cp --sparse=always "$images/v1.ext4" "$run/partition"
truncate -s +100M "$run/partition"

# best NAME CMD...: RUNS times, keeps the fastest run's numbers in b_<field>; checks the output.
best() {
  local name=$1 i
  shift
  b_wall=""
  for i in $(seq 1 "$RUNS"); do
    rm -f "$run/out.swu" "$run/$name.log"
    timed "$run/$name.$i" "$@"
    [ "$t_rc" -eq 0 ] && cmp -s "$run/out.swu" "$tgt" || die "$name: failed or wrong output ($run/$name.$i.*)"
    if [ -z "$b_wall" ] || awk -v a="$t_wall" -v b="$b_wall" 'BEGIN { exit !(a < b) }'; then
      b_wall=$t_wall b_cpu=$t_cpu b_rss=$t_rss b_out=$t_out
      [ -f "$run/$name.log" ] && cp "$run/$name.log" "$run/$name.best.log"
    fi
  done
  rm -f "$run/out.swu"
}
spilled_lib() { sed -n 's/^temp disk: [0-9]* items spilled, \([0-9]*\) bytes.*/\1/p' "$run/$1.best.log"; }
row() {
  awk -v n="$1" -v w="$b_wall" -v c="$b_cpu" -v r="$b_rss" -v o="$b_out" -v s="$2" \
    'BEGIN { printf "| %s | %.2f s | %.2f s | %.1f MiB | %.1f MiB | %.1f MiB |\n", n, w, c, r / 1024, s / 1048576, o / 1048576 }'
}

log "diffgen apply x$RUNS"
best cli "$bindir/diffgen" apply --temp-dir "$run" "$src" "$delta" "$run/out.swu"
cli_spilled=$(sed -n 's/.* \([0-9]*\) bytes spilled to temp files.*/\1/p' "$run/cli.1.out")
cli_row=$(row "diffgen apply" "$cli_spilled"); cli_wall=$b_wall

log "applydiff + libadudiffapi.so x$RUNS"
export DIFFGEN_APPLY_LOG=$run/lib.log
best lib env LD_LIBRARY_PATH="$run/lib" "$adu/bin/applydiff" "$src" "$delta" "$run/out.swu"
lib_row=$(row "ADU applydiff + diffgen's libadudiffapi.so" "$(spilled_lib lib)"); lib_wall=$b_wall lib_rss=$b_rss

log "applydiff + libadudiffapi.so, known item = image + 100 MiB x$RUNS"
export DIFFGEN_APPLY_LOG=$run/known.log DIFFGEN_KNOWN_ITEMS=$run/partition
best known env LD_LIBRARY_PATH="$run/lib" "$adu/bin/applydiff" "$src" "$delta" "$run/out.swu"
known_row=$(row "same, DIFFGEN_KNOWN_ITEMS = image + 100 MiB" "$(spilled_lib known)")
unset DIFFGEN_APPLY_LOG DIFFGEN_KNOWN_ITEMS

{
  echo "| $S MiB pair, zstd-profile delta ($(stat -c %s "$delta") bytes) | wall | CPU | peak RSS | temp disk (spilled) | written to files |"
  echo "|---|---:|---:|---:|---:|---:|"
  echo "$cli_row"
  echo "$lib_row"
  echo "$known_row"
  echo
  awk -v l="$lib_wall" -v c="$cli_wall" -v r="$lib_rss" 'BEGIN {
    printf "applydiff + library: wall %.2f x diffgen apply (limit 1.3): %s; peak RSS %.1f MiB (limit 64): %s\n",
      l / c, (l / c <= 1.3 ? "met" : "NOT met"), r / 1024, (r <= 65536 ? "met" : "NOT met") }'
  echo
  echo "Log of the known-item run (fastest):"
  echo
  echo '```text'
  cat "$run/known.best.log"
  echo '```'
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores, load at end $(cut -d' ' -f1-3 /proc/loadavg); fastest of $RUNS runs; binaries: $bindir."
} | tee "$work/adudiffapi-results.md"
rm -f "$run/partition"
