# Sourced by the benchmark scripts: packs an ext4 image into a release SWU the way a build
# system does (gzip -9 -n payload, sw-description with its sha256, GNU cpio crc archive with
# sw-description first, reproducible).
#
#   pack_rootfs_swu IMAGE VERSION DESCRIPTION OUT.swu

pack_rootfs_swu() {
  local image=$1 v=$2 description=$3 out=$4 stage sha
  stage=$(mktemp -d "${out}.stage.XXXXXX")
  gzip -9 -n -c "$image" > "$stage/rootfs.ext4.gz"
  sha=$(sha256sum "$stage/rootfs.ext4.gz" | cut -d' ' -f1)
  cat > "$stage/sw-description" <<SWDESC
software =
{
	version = "$v.0.0";
	description = "$description";
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
SWDESC
  (cd "$stage" && printf 'sw-description\nrootfs.ext4.gz\n' | cpio -o -H crc --reproducible --quiet) > "$out"
  rm -rf "$stage"
}
