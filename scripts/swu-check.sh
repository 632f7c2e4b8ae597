#!/usr/bin/env bash
# Checks a .swu with Debian's real SWUpdate in dry-run mode (`swupdate -c`) and prints
# `SWU-CHECK: ACCEPT` (exit 0), `SWU-CHECK: REJECT` (exit 1) or `SWU-CHECK: INCONCLUSIVE`
# (exit 3); 2 = usage or setup error.
#
#   scripts/swu-check.sh -k CA.crt [-H board:rev] [-e set,mode] [-v] FILE.swu
#
# Why it is more than one command (see docs/guide.md, "Checking with SWUpdate"):
# - swupdate's exit status and its "SWUpdate was successful" client line race with the
#   installer thread; the installer's own final line is the verdict:
#     "SWUPDATE successful !"  or  "SWUPDATE failed [1] ...".
#   A run that ends before either line is inconclusive and is retried (3 attempts).
# - each run needs a private TMPDIR (sockets and temp files live there), and runs must be
#   serialised: the notifier binds a fixed abstract socket name. A lock file does that.
# - Debian's build verifies CMS signatures (-k = trusted CA) and requires
#   hardware-compatibility to match -H.
set -uo pipefail

ca="" hw="diffgen:1.0" sel="" verbose=0
while getopts "k:H:e:v" opt; do
  case $opt in
    k) ca=$OPTARG ;;
    H) hw=$OPTARG ;;
    e) sel=$OPTARG ;;
    v) verbose=1 ;;
    *) echo "usage: $0 -k CA.crt [-H board:rev] [-e set,mode] [-v] FILE.swu" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
file=${1:-}
if [ -z "$file" ] || [ -z "$ca" ]; then
  echo "usage: $0 -k CA.crt [-H board:rev] [-e set,mode] [-v] FILE.swu" >&2
  exit 2
fi
command -v swupdate >/dev/null || { echo "swupdate is not installed (run scripts/install-deps.sh)" >&2; exit 2; }
[ -r "$file" ] || { echo "cannot read $file" >&2; exit 2; }
[ -r "$ca" ] || { echo "cannot read $ca" >&2; exit 2; }

lock=${SWU_CHECK_LOCK:-${TMPDIR:-/tmp}/diffgen-swu-check.lock}
exec 9>"$lock"
flock 9

args=(-v -c -i "$file" -k "$ca" -H "$hw")
[ -n "$sel" ] && args+=(-e "$sel")

for attempt in 1 2 3; do
  tmp=$(mktemp -d)
  log=$tmp/log
  TMPDIR=$tmp timeout 60 swupdate "${args[@]}" >"$log" 2>&1
  if grep -q "SWUPDATE successful !" "$log"; then verdict=ACCEPT
  elif grep -q "SWUPDATE failed" "$log"; then verdict=REJECT
  else verdict=INCONCLUSIVE
  fi
  if [ $verbose = 1 ] || [ $verdict = REJECT ]; then
    grep -E "ERROR|WARN|successful|failed" "$log" | head -20 >&2
  fi
  rm -rf "$tmp"
  [ $verdict != INCONCLUSIVE ] && break
done

echo "SWU-CHECK: $verdict"
case $verdict in
  ACCEPT) exit 0 ;;
  REJECT) exit 1 ;;
  *) exit 3 ;;
esac
