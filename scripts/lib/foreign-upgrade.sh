# shellcheck shell=bash
# Sourced by scripts/bench.sh: a Debian security upgrade for a foreign architecture (arm64 by
# default), built without emulation the way a cross-building release engineer would:
#
#   old  `debootstrap --foreign --arch=ARCH --variant=minbase SUITE` (first stage only: every
#        package unpacked, none configured; no qemu needed)
#   new  old + the newer versions of its packages from SUITE-updates and SUITE-security, each
#        unpacked over a copy with `dpkg-deb --fsys-tarfile X | tar -x --keep-directory-symlink`
#
# foreign_upgrade_trees ARCH OUT_DIR MIRROR SECURITY_MIRROR SUITE
#   writes OUT_DIR/ARCH-v1, OUT_DIR/ARCH-v2 and OUT_DIR/ARCH-upgraded.txt (package=old->new)
#   Needs root (debootstrap), debootstrap, dpkg, xz, curl or wget. Leaves no partial tree: a
#   failure exits with the log's tail.

# Newest version of each package in a Packages index on stdin: "name version filename".
_packages_newest() {
  awk '/^Package: / { p = $2 } /^Version: / { v = $2 } /^Filename: / { f = $2 }
       /^$/ { if (p != "") print p, v, f; p = ""; v = ""; f = "" }
       END { if (p != "") print p, v, f }'
}

_fetch() { # URL OUT
  if command -v curl >/dev/null; then curl -fsSL "$1" -o "$2"; else wget -q "$1" -O "$2"; fi
}

foreign_upgrade_trees() {
  local arch=$1 out=$2 mirror=$3 security=$4 suite=$5
  local base=$out/$arch-base.tmp v1=$out/$arch-v1 v2=$out/$arch-v2 list=$out/$arch-upgraded.txt
  local dl=$out/$arch-debs log=$out/$arch.log
  rm -rf "$base" "$v1" "$v2" "$dl" "$v1.tmp" "$v2.tmp"
  mkdir -p "$dl"
  debootstrap --foreign --arch="$arch" --variant=minbase "$suite" "$base" "$mirror" > "$log" 2>&1 \
    || { tail -n 20 "$log" >&2; return 1; }
  # Installed packages: name and version from the unpacked .debs' control fields.
  local deb
  : > "$dl/installed"
  for deb in "$base"/var/cache/apt/archives/*.deb; do
    dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb" >> "$dl/installed"
  done
  # Newest candidates from the updates and security pockets.
  : > "$dl/candidates"
  local pocket url
  for pocket in "$mirror $suite-updates" "$security $suite-security"; do
    set -- $pocket
    url=$1/dists/$2/main/binary-$arch/Packages.xz
    _fetch "$url" "$dl/Packages.xz" || { echo "cannot fetch $url" >&2; return 1; }
    xz -dc "$dl/Packages.xz" | _packages_newest | sed "s|^|$1 |" >> "$dl/candidates"
  done
  : > "$list"
  local name version best best_url cand_mirror cand_name cand_version cand_file
  while read -r name version; do
    best=$version best_url=""
    while read -r cand_mirror cand_name cand_version cand_file; do
      [ "$cand_name" = "$name" ] || continue
      if dpkg --compare-versions "$cand_version" gt "$best"; then
        best=$cand_version best_url=$cand_mirror/$cand_file
      fi
    done < "$dl/candidates"
    if [ -n "$best_url" ]; then
      _fetch "$best_url" "$dl/$name.deb" || { echo "cannot fetch $best_url" >&2; return 1; }
      echo "$name=$version->$best" >> "$list"
    fi
  done < "$dl/installed"
  # The old tree as an image holds it: no debootstrap leftovers, no package cache.
  rm -rf "$base/debootstrap"
  find "$base/var/cache/apt" -type f -delete
  mv "$base" "$v1.tmp"
  cp -a "$v1.tmp" "$v2.tmp"
  for deb in "$dl"/*.deb; do
    [ -e "$deb" ] || continue
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$v2.tmp" \
      || { echo "cannot unpack $deb" >&2; return 1; }
  done
  mv "$v1.tmp" "$v1"
  mv "$v2.tmp" "$v2"
}
