//! The known item `rootfs`: the block device that holds the running root filesystem, found at
//! each apply, so that an A/B device names "the active partition" without knowing which of its
//! two partitions that is today.
//!
//! The root mount's device number comes from `/proc/self/mountinfo`, its name from sysfs
//! (`/sys/dev/block/<major>:<minor>/uevent`, `DEVNAME=`), the path is `/dev/<name>`. A root on
//! no block device (tmpfs, overlayfs, NFS: major 0) has none.

use std::path::{Path, PathBuf};

/// The keyword that stands for the root filesystem's device in the settings.
pub const KEYWORD: &str = "rootfs";

/// `/dev/<name>` of the device mounted at `/`, or why there is none.
pub fn device() -> Result<PathBuf, String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let numbers = root_device_numbers(&mountinfo).ok_or("no mount at / in /proc/self/mountinfo")?;
    if numbers.starts_with("0:") {
        return Err(format!(
            "the root filesystem is on no block device ({numbers})"
        ));
    }
    let uevent = Path::new("/sys/dev/block").join(numbers).join("uevent");
    let text = std::fs::read_to_string(&uevent)
        .map_err(|e| format!("reading {}: {e}", uevent.display()))?;
    let name = text
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .ok_or_else(|| format!("no DEVNAME in {}", uevent.display()))?;
    Ok(Path::new("/dev").join(name))
}

/// `major:minor` of the last mount at `/` (the one in effect) in mountinfo text.
fn root_device_numbers(mountinfo: &str) -> Option<&str> {
    // Fields: id, parent id, major:minor, root, mount point, ...
    mountinfo.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').take(5).collect();
        (f.len() == 5 && f[4] == "/").then_some(f[2])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_in_effect_at_root_is_found() {
        let text = "\
1 0 179:2 / / ro,relatime shared:1 - ext4 /dev/mmcblk0p2 ro
22 1 0:21 / /proc rw - proc proc rw
30 1 0:26 / /tmp rw - tmpfs tmpfs rw
";
        assert_eq!(root_device_numbers(text), Some("179:2"));
        let overlay = format!("{text}40 1 0:40 / / rw - overlay overlay rw\n");
        assert_eq!(root_device_numbers(&overlay), Some("0:40"));
        assert_eq!(
            root_device_numbers("22 1 0:21 / /proc rw - proc proc rw\n"),
            None
        );
    }
}
