# Sourced by the benchmark scripts: runs a command under /usr/bin/time -v and reads the
# numbers back. Needs the caller's `log` function.
#
# timed PREFIX CMD...: runs CMD under /usr/bin/time -v; sets t_wall (s), t_cpu (user + sys, s),
# t_rss (KiB), t_out (bytes written to files, as the kernel counts them), t_rc.
timed() {
  local pfx=$1
  shift
  t_rc=0
  /usr/bin/time -v -o "$pfx.time" "$@" > "$pfx.out" 2> "$pfx.err" || t_rc=$?
  t_wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; printf "%.2f", s }' "$pfx.time")
  t_cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$pfx.time")
  t_rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$pfx.time")
  t_out=$(awk -F': ' '/File system outputs/ { printf "%.0f", $2 * 512 }' "$pfx.time")
  if [ "$t_rc" -ne 0 ]; then
    log "  FAILED (exit $t_rc): $*"
    tail -n 5 "$pfx.err" >&2 || true
  fi
}
