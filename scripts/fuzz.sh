#!/usr/bin/env bash
# Short fuzzing campaign over every cargo-fuzz target of the repository (docs/robustness.md).
#
#   scripts/fuzz.sh [SECONDS]        # default 30 seconds per target
#
# 1. installs cargo-fuzz if missing (`cargo install cargo-fuzz --locked`);
# 2. seeds the corpora (each fuzz crate's make-corpus.sh; corpora are ignored by git);
# 3. replays the committed crash inputs under <crate>/fuzz/regressions/<target>/;
# 4. runs each target for SECONDS with libFuzzer's -max_total_time, -rss_limit_mb=2048 and
#    -timeout=10 (a single input running over 10 s counts as a crash);
# 5. prints executions per target, and exits 1 if any target crashed, timed out, ran out of
#    memory or did not build, naming the target and the crashing input (the artifact).
#
# Environment:
#   FUZZ_TARGETS   space-separated subset of targets to run (default: all)
#   FUZZ_ARGS      extra libFuzzer arguments, e.g. "-jobs=2 -workers=2" or "-max_len=4096"
#   FUZZ_LOGS      folder for the logs (default target/fuzz-logs)
#   FUZZ_NO_SEEDS  set to 1 to skip seeding (corpora already in place)
#   DIFFGEN        diffgen binary used to make delta seeds (default: built in release mode)
#
# The fuzz crates need nightly-only compiler flags (-Zsanitizer=address); on a stable
# toolchain they are enabled with RUSTC_BOOTSTRAP=1, as below.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
seconds="${1:-30}"
case "$seconds" in '' | *[!0-9]*)
  echo "usage: scripts/fuzz.sh [SECONDS]" >&2
  exit 2
  ;;
esac
export RUSTC_BOOTSTRAP=1

# crate directory:target, in run order.
all_targets=(
  swu:cpio_scan
  swu:swdesc_parse
  swu:swu_open
  delta:delta_read
  delta:delta_apply
  codec:bspatch
  codec:decoders
  codec:bsdiff_roundtrip
  codec:gnu_gzip
  codec:bcj
  codec:zlib_check
  codec:exepatch
  ext4:ext4_map
)
if [ -n "${FUZZ_TARGETS:-}" ]; then
  selected=()
  for t in $FUZZ_TARGETS; do
    found=""
    for entry in "${all_targets[@]}"; do
      [ "${entry#*:}" = "$t" ] && selected+=("$entry") && found=1
    done
    [ -n "$found" ] || { echo "unknown fuzz target: $t" >&2; exit 2; }
  done
else
  selected=("${all_targets[@]}")
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

logs="${FUZZ_LOGS:-$root/target/fuzz-logs}"
mkdir -p "$logs"
# Targets that need files (swu_open, delta_apply) write them under TMPDIR, one folder per
# process; keep them together and remove them at the end.
fuzz_tmp="$(mktemp -d)"
trap 'rm -rf "$fuzz_tmp"' EXIT

if [ "${FUZZ_NO_SEEDS:-0}" != 1 ]; then
  echo "== seeding corpora"
  crates=()
  for entry in "${selected[@]}"; do
    c="${entry%%:*}"
    [[ " ${crates[*]-} " == *" $c "* ]] || crates+=("$c")
  done
  for c in "${crates[@]}"; do
    if [ "$c" = ext4 ] && ! command -v mke2fs >/dev/null; then
      echo "mke2fs missing (scripts/install-deps.sh installs e2fsprogs): ext4_map starts from an empty corpus" >&2
      continue
    fi
    if ! "$c/fuzz/make-corpus.sh" >"$logs/seed-$c.log" 2>&1; then
      echo "seeding $c failed (see $logs/seed-$c.log); its targets start from what corpus they have" >&2
    fi
    grep -h 'corpus/' "$logs/seed-$c.log" || true
  done
fi

failures=()
summary=()
for entry in "${selected[@]}"; do
  crate="${entry%%:*}"
  target="${entry#*:}"
  log="$logs/$target.log"
  echo "== $target ($crate/fuzz), ${seconds}s"
  # Build first so the build does not eat into the fuzzing time and its errors are told apart.
  if ! (cd "$crate" && cargo fuzz build "$target") >"$logs/$target.build.log" 2>&1; then
    tail -n 20 "$logs/$target.build.log" >&2
    failures+=("$target: does not build (see $logs/$target.build.log)")
    summary+=("$(printf '%-18s %10s %12s %10s  %s' "$target" - - - "BUILD FAILED")")
    continue
  fi
  mkdir -p "$crate/fuzz/corpus/$target"
  artifacts="$crate/fuzz/artifacts/$target"
  mkdir -p "$artifacts"

  # Committed crash inputs first: each must now run cleanly.
  regressions="$crate/fuzz/regressions/$target"
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    if ! (cd "$crate" && TMPDIR="$fuzz_tmp" cargo fuzz run "$target" "fuzz/regressions/$target" -- \
      -runs=0 -rss_limit_mb=2048 -timeout=10) >"$logs/$target.regressions.log" 2>&1; then
      # libFuzzer names the copy it writes crash-<sha1 of the input>: find the original.
      reg_sha="$(grep -o 'Test unit written to .*' "$logs/$target.regressions.log" | tail -n 1 | sed 's/.*-//' || true)"
      reg_input="$(sha1sum "$regressions"/* | awk -v s="$reg_sha" '$1 == s { print $2; exit }')"
      failures+=("$target: committed regression input ${reg_input:-in $regressions} fails again (see $logs/$target.regressions.log)")
    fi
  fi

  before="$(ls "$artifacts")"
  start=$(date +%s)
  status=0
  # shellcheck disable=SC2086  # FUZZ_ARGS is a list of arguments
  (cd "$crate" && TMPDIR="$fuzz_tmp" cargo fuzz run "$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    ${FUZZ_ARGS:-}) >"$log" 2>&1 || status=$?
  elapsed=$(($(date +%s) - start))

  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)"
  if [ -z "$execs" ]; then
    execs="$(grep -oE '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 | grep -oE '[0-9]+' || true)"
  fi
  [ -n "$execs" ] || execs=0
  corpus_files="$(ls "$crate/fuzz/corpus/$target" | wc -l)"
  result="ok"
  if [ "$status" -ne 0 ]; then
    artifact="$(grep -o 'Test unit written to .*' "$log" | tail -n 1 | sed 's/^Test unit written to //' || true)"
    if [ -z "$artifact" ]; then
      new="$(comm -13 <(echo "$before") <(ls "$artifacts") | head -n 1)"
      [ -n "$new" ] && artifact="$artifacts/$new"
    fi
    kind="$(grep -oE 'ERROR: libFuzzer: [a-z-]+|panicked at [^ ]+|ERROR: AddressSanitizer: [a-z-]+' "$log" | head -n 1 | sed 's/:$//' || true)"
    result="FAILED (exit $status${kind:+, $kind})"
    failures+=("$target: ${kind:-exit $status}; input: ${artifact:-none written}; log: $log")
    grep -E -A 12 'panicked at|ERROR: (libFuzzer|AddressSanitizer)' "$log" | head -n 40 >&2 || tail -n 30 "$log" >&2
  fi
  summary+=("$(printf '%-18s %10s %12s %10s  %s' "$target" "${elapsed}s" "$execs" "$corpus_files" "$result")")
  echo "   $result, $execs executions in ${elapsed}s"
done

echo
echo "== summary (${seconds}s per target; logs in $logs)"
printf '%-18s %10s %12s %10s  %s\n' target time executions corpus result
printf '%s\n' "${summary[@]}"
if [ ${#failures[@]} -gt 0 ]; then
  echo
  echo "== failures"
  printf '%s\n' "${failures[@]}"
  echo "Reproduce: cd <crate> && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <input>; see docs/robustness.md" >&2
  exit 1
fi
