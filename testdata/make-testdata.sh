#!/usr/bin/env bash
# Regenerates the sample SWUs in testdata/swu/ with real GNU cpio, the way Yocto's
# swupdate class builds them (`cpio -ov -H crc --reproducible`, sw-description first,
# sw-description.sig second, plain basenames).
#
#   testdata/make-testdata.sh            # rebuild everything (keys are kept if present)
#
# Needs: cpio, gzip, zstd, openssl, mkfs.ext4 (scripts/install-deps.sh installs them).
# Outputs that use real inode numbers and mtimes (the non---reproducible ones) differ on
# every run; tests never depend on their exact bytes, only on what they contain.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=$here/swu
keys=$here/keys
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LC_ALL=C SOURCE_DATE_EPOCH=1700000000 E2FSPROGS_FAKE_TIME=1700000000
mkdir -p "$out"

# --- test PKI (throw-away, for tests only; never use these keys for anything real) -------
if [ ! -f "$keys/signer.crt" ]; then
  mkdir -p "$keys"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$keys/ca.key" -out "$keys/ca.crt" \
    -days 36500 -subj "/CN=diffgen test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout "$keys/signer.key" -out "$work/signer.csr" \
    -subj "/CN=diffgen test signer" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\n' \
    > "$work/signer.ext"
  openssl x509 -req -in "$work/signer.csr" -CA "$keys/ca.crt" -CAkey "$keys/ca.key" \
    -set_serial 1 -days 36500 -extfile "$work/signer.ext" -out "$keys/signer.crt" 2>/dev/null
  openssl genrsa -out "$keys/rsa.key" 2048 2>/dev/null
  openssl rsa -in "$keys/rsa.key" -pubout -out "$keys/rsa.pub" 2>/dev/null
fi

sha() { sha256sum "$1" | cut -d' ' -f1; }

# --- payloads ------------------------------------------------------------------------------
payload=$work/payload
mkdir -p "$payload/tree/etc" "$payload/tree/usr/bin"
printf 'diffgen sample rootfs\n' > "$payload/tree/etc/issue"
printf '1.0\n' > "$payload/tree/etc/version"
seq 1 2000 > "$payload/tree/usr/bin/numbers"
ln -s numbers "$payload/tree/usr/bin/link"
mkfs.ext4 -q -F -b 1024 -N 64 -O ^has_journal -U 11111111-2222-3333-4444-555555555555 \
  -E hash_seed=66666666-7777-8888-9999-000000000000 \
  -d "$payload/tree" "$payload/rootfs.ext4" 1024 >/dev/null
gzip -9 -n -c "$payload/rootfs.ext4" > "$payload/rootfs.ext4.gz"
head -c 3000 /dev/zero | tr '\0' 'K' > "$payload/kernel.img"
zstd -q -19 -f "$payload/kernel.img" -o "$payload/kernel.img.zst"
mkdir -p "$payload/app"
printf 'config=1\n' > "$payload/app/app.conf"
tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner \
  -C "$payload/app" -cf - . | gzip -9 -n > "$payload/app.tar.gz"
printf '#!/bin/sh\necho post-install\n' > "$payload/update.sh"

# pack NAME FORMAT REPRODUCIBLE SIGN SWDESC MEMBERS...: build testdata/swu/NAME.swu
pack() {
  local name=$1 format=$2 repro=$3 sign=$4 swdesc=$5
  shift 5
  local stage=$work/stage-$name
  rm -rf "$stage" && mkdir -p "$stage"
  cp "$swdesc" "$stage/sw-description"
  local list=(sw-description)
  if [ "$sign" = cms ]; then
    openssl cms -sign -in "$stage/sw-description" -out "$stage/sw-description.sig" \
      -signer "$keys/signer.crt" -inkey "$keys/signer.key" -outform DER -nosmimecap -binary
    list+=(sw-description.sig)
  elif [ "$sign" = rsa ]; then
    openssl dgst -sha256 -sign "$keys/rsa.key" -out "$stage/sw-description.sig" "$stage/sw-description"
    list+=(sw-description.sig)
  fi
  for m in "$@"; do
    cp "$payload/$m" "$stage/$m"
    list+=("$m")
  done
  local flags=(-o -H "$format" --quiet)
  [ "$repro" = yes ] && flags+=(--reproducible)
  (cd "$stage" && printf '%s\n' "${list[@]}" | cpio "${flags[@]}") > "$out/$name.swu"
}

# sw-description texts: hashes filled in from the payloads.
rootfs_sha=$(sha "$payload/rootfs.ext4.gz")
kernel_sha=$(sha "$payload/kernel.img.zst")
app_sha=$(sha "$payload/app.tar.gz")
script_sha=$(sha "$payload/update.sh")

cat > "$work/sample.swdesc" <<EOF
software =
{
	version = "1.0.0";
	description = "diffgen sample update";
	hardware-compatibility: [ "1.0" ];

	/* Images are written to raw partitions. */
	images: (
		{
			filename = "rootfs.ext4.gz";
			type = "raw";
			device = "/dev/mmcblk0p2";
			compressed = "zlib";
			sha256 = "$rootfs_sha";
		},
		{
			filename = "kernel.img.zst";
			type = "raw";
			device = "/dev/mmcblk0p1";
			compressed = "zstd";
			installed-directly = true;
			sha256 = "$kernel_sha";
		}
	);
	files: (
		{
			filename = "app.tar.gz";
			type = "archive";
			path = "/opt/app";
			device = "/dev/mmcblk0p3";
			filesystem = "ext4";
			compressed = true; // deprecated boolean form: means zlib
			sha256 = "$app_sha";
		}
	);
	scripts: (
		{
			filename = "update.sh";
			type = "shellscript";
			sha256 = "$script_sha";
		}
	);
	bootenv: (
		{ name = "rootpart"; value = "2"; }
	);
};
EOF

cat > "$work/collections.swdesc" <<EOF
# Dual-copy layout with a board section and software collections, as in SWUpdate's docs.
software =
{
	version = "2.0.0";
	hardware-compatibility = [ "1.0", "1.1" ];

	myboard = {
		stable = {
			copy1 : {
				images: (
					{
						filename = "rootfs.ext4.gz";
						device = "/dev/mmcblk0p2";
						compressed = "zlib";
						sha256 = "$rootfs_sha";
					}
				);
				scripts: ( { filename = "update.sh"; type = "shellscript"; sha256 = "$script_sha"; } );
			};
			copy2 : {
				images: (
					{
						filename = "rootfs.ext4.gz";
						device = "/dev/mmcblk0p3";
						compressed = "zlib";
						sha256 = "$rootfs_sha";
					}
				);
				scripts: ( { ref = "#./../copy1/scripts"; } );
			};
		};
		# A second name for copy1: SWUpdate follows the link.
		fallback = { main = { ref = "#./../stable/copy1"; }; };
	};
	images: (
		{ filename = "kernel.img.zst"; device = "/dev/mmcblk0p1"; compressed = "zstd"; sha256 = "$kernel_sha"; }
	);
};
EOF

cat > "$work/json.swdesc" <<EOF
{
  "software": {
    "version": "1.0.0",
    "hardware-compatibility": [ "1.0" ],
    "images": [
      {
        "filename": "rootfs.ext4.gz",
        "type": "raw",
        "device": "/dev/mmcblk0p2",
        "compressed": "zlib",
        "sha256": "$rootfs_sha"
      }
    ]
  }
}
EOF

pack sample            crc  yes cms  "$work/sample.swdesc" rootfs.ext4.gz kernel.img.zst app.tar.gz update.sh
pack sample-crc        crc  no  none "$work/sample.swdesc" rootfs.ext4.gz kernel.img.zst app.tar.gz update.sh
pack sample-newc       newc no  none "$work/sample.swdesc" rootfs.ext4.gz kernel.img.zst app.tar.gz update.sh
pack sample-newc-repro newc yes rsa  "$work/sample.swdesc" rootfs.ext4.gz kernel.img.zst app.tar.gz update.sh
pack collections       crc  yes none "$work/collections.swdesc" rootfs.ext4.gz kernel.img.zst update.sh
pack json              crc  yes none "$work/json.swdesc" rootfs.ext4.gz

# --- a release pair: v1 and v2 of a small root filesystem ------------------------------------
# v2 changes a text file and a "binary" in place, adds a library, removes a file, and keeps the
# rest, as a point release does. Content is pseudo-random but deterministic (AES-CTR of zeros).
prng() { head -c "$1" /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$2" -iv 00000000000000000000000000000000 2>/dev/null; }
for v in 1 2; do
  t=$work/pair$v
  mkdir -p "$t/etc" "$t/usr/bin" "$t/usr/lib" "$t/usr/share/doc"
  printf 'NAME="diffgen demo"\nVERSION="%s.0"\n' $v > "$t/etc/os-release"
  seq 1 20000 > "$t/usr/share/doc/numbers.txt"
  prng 120000 11111111111111111111111111111111 > "$t/usr/bin/app"
  prng 80000 22222222222222222222222222222222 > "$t/usr/lib/libcore.so"
  prng 60000 33333333333333333333333333333333 > "$t/usr/lib/libold.so"
done
# v2: edits
seq 1 20000 | sed 's/^77/seventy-seven/' > "$work/pair2/usr/share/doc/numbers.txt"
printf 'patched' | dd of="$work/pair2/usr/bin/app" bs=1 seek=50000 conv=notrunc 2>/dev/null
rm "$work/pair2/usr/lib/libold.so"
prng 70000 44444444444444444444444444444444 > "$work/pair2/usr/lib/libplugin.so"
for v in 1 2; do
  mkfs.ext4 -q -F -b 1024 -N 64 -O ^has_journal -U 11111111-2222-3333-4444-55555555555$v \
    -E hash_seed=66666666-7777-8888-9999-000000000000 -d "$work/pair$v" "$payload/rootfs.ext4" 4096 >/dev/null
  gzip -9 -n -c "$payload/rootfs.ext4" > "$payload/rootfs.ext4.gz"
  sha=$(sha "$payload/rootfs.ext4.gz")
  cat > "$work/pair$v.swdesc" <<EOF
software =
{
	version = "$v.0.0";
	description = "diffgen demo release $v";
	hardware-compatibility: [ "1.0" ];
	images: (
		{
			filename = "rootfs.ext4.gz";
			type = "raw";
			device = "/dev/mmcblk0p2";
			compressed = "zlib";
			sha256 = "$sha";
		}
	);
};
EOF
  pack "release-v$v" crc yes cms "$work/pair$v.swdesc" rootfs.ext4.gz
done

ls -l "$out"
