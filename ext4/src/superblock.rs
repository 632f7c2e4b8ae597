//! The primary superblock: decoding, validation, and the feature flags that change the layout.

use crate::error::{Error, Result};
use crate::le::{bytes, u16_at, u32_at, u64_at, u8_at};
use serde::Serialize;

/// Byte offset of the primary superblock inside the image.
pub(crate) const SUPERBLOCK_OFFSET: u64 = 1024;
/// Size of the superblock structure.
pub(crate) const SUPERBLOCK_SIZE: usize = 1024;
const MAGIC: u16 = 0xEF53;
const MAGIC_OFFSET: usize = 0x38;

/// `s_feature_compat` bits.
pub(crate) mod compat {
    pub const DIR_PREALLOC: u32 = 0x1;
    pub const IMAGIC_INODES: u32 = 0x2;
    pub const HAS_JOURNAL: u32 = 0x4;
    pub const EXT_ATTR: u32 = 0x8;
    pub const RESIZE_INODE: u32 = 0x10;
    pub const DIR_INDEX: u32 = 0x20;
    pub const LAZY_BG: u32 = 0x40;
    pub const EXCLUDE_INODE: u32 = 0x80;
    pub const EXCLUDE_BITMAP: u32 = 0x100;
    pub const SPARSE_SUPER2: u32 = 0x200;
    pub const FAST_COMMIT: u32 = 0x400;
    pub const STABLE_INODES: u32 = 0x800;
    pub const ORPHAN_FILE: u32 = 0x1000;
}

/// `s_feature_incompat` bits.
pub(crate) mod incompat {
    pub const COMPRESSION: u32 = 0x1;
    pub const FILETYPE: u32 = 0x2;
    pub const RECOVER: u32 = 0x4;
    pub const JOURNAL_DEV: u32 = 0x8;
    pub const META_BG: u32 = 0x10;
    pub const EXTENTS: u32 = 0x40;
    pub const BIT64: u32 = 0x80;
    pub const MMP: u32 = 0x100;
    pub const FLEX_BG: u32 = 0x200;
    pub const EA_INODE: u32 = 0x400;
    pub const DIRDATA: u32 = 0x1000;
    pub const CSUM_SEED: u32 = 0x2000;
    pub const LARGEDIR: u32 = 0x4000;
    pub const INLINE_DATA: u32 = 0x8000;
    pub const ENCRYPT: u32 = 0x10000;
    pub const CASEFOLD: u32 = 0x20000;
}

/// `s_feature_ro_compat` bits.
pub(crate) mod ro_compat {
    pub const SPARSE_SUPER: u32 = 0x1;
    pub const LARGE_FILE: u32 = 0x2;
    pub const BTREE_DIR: u32 = 0x4;
    pub const HUGE_FILE: u32 = 0x8;
    pub const GDT_CSUM: u32 = 0x10;
    pub const DIR_NLINK: u32 = 0x20;
    pub const EXTRA_ISIZE: u32 = 0x40;
    pub const HAS_SNAPSHOT: u32 = 0x80;
    pub const QUOTA: u32 = 0x100;
    pub const BIGALLOC: u32 = 0x200;
    pub const METADATA_CSUM: u32 = 0x400;
    pub const REPLICA: u32 = 0x800;
    pub const READONLY: u32 = 0x1000;
    pub const PROJECT: u32 = 0x2000;
    pub const SHARED_BLOCKS: u32 = 0x4000;
    pub const VERITY: u32 = 0x8000;
    pub const ORPHAN_PRESENT: u32 = 0x10000;
}

const COMPAT_NAMES: &[(u32, &str)] = &[
    (compat::DIR_PREALLOC, "dir_prealloc"),
    (compat::IMAGIC_INODES, "imagic_inodes"),
    (compat::HAS_JOURNAL, "has_journal"),
    (compat::EXT_ATTR, "ext_attr"),
    (compat::RESIZE_INODE, "resize_inode"),
    (compat::DIR_INDEX, "dir_index"),
    (compat::LAZY_BG, "lazy_bg"),
    (compat::EXCLUDE_INODE, "exclude_inode"),
    (compat::EXCLUDE_BITMAP, "exclude_bitmap"),
    (compat::SPARSE_SUPER2, "sparse_super2"),
    (compat::FAST_COMMIT, "fast_commit"),
    (compat::STABLE_INODES, "stable_inodes"),
    (compat::ORPHAN_FILE, "orphan_file"),
];

const INCOMPAT_NAMES: &[(u32, &str)] = &[
    (incompat::COMPRESSION, "compression"),
    (incompat::FILETYPE, "filetype"),
    (incompat::RECOVER, "needs_recovery"),
    (incompat::JOURNAL_DEV, "journal_dev"),
    (incompat::META_BG, "meta_bg"),
    (incompat::EXTENTS, "extent"),
    (incompat::BIT64, "64bit"),
    (incompat::MMP, "mmp"),
    (incompat::FLEX_BG, "flex_bg"),
    (incompat::EA_INODE, "ea_inode"),
    (incompat::DIRDATA, "dirdata"),
    (incompat::CSUM_SEED, "metadata_csum_seed"),
    (incompat::LARGEDIR, "large_dir"),
    (incompat::INLINE_DATA, "inline_data"),
    (incompat::ENCRYPT, "encrypt"),
    (incompat::CASEFOLD, "casefold"),
];

const RO_COMPAT_NAMES: &[(u32, &str)] = &[
    (ro_compat::SPARSE_SUPER, "sparse_super"),
    (ro_compat::LARGE_FILE, "large_file"),
    (ro_compat::BTREE_DIR, "btree_dir"),
    (ro_compat::HUGE_FILE, "huge_file"),
    (ro_compat::GDT_CSUM, "uninit_bg"),
    (ro_compat::DIR_NLINK, "dir_nlink"),
    (ro_compat::EXTRA_ISIZE, "extra_isize"),
    (ro_compat::HAS_SNAPSHOT, "snapshot"),
    (ro_compat::QUOTA, "quota"),
    (ro_compat::BIGALLOC, "bigalloc"),
    (ro_compat::METADATA_CSUM, "metadata_csum"),
    (ro_compat::REPLICA, "replica"),
    (ro_compat::READONLY, "read-only"),
    (ro_compat::PROJECT, "project"),
    (ro_compat::SHARED_BLOCKS, "shared_blocks"),
    (ro_compat::VERITY, "verity"),
    (ro_compat::ORPHAN_PRESENT, "orphan_present"),
];

/// Incompatible features whose on-disk meaning this reader knows.
const KNOWN_INCOMPAT: u32 = incompat::FILETYPE
    | incompat::RECOVER
    | incompat::META_BG
    | incompat::EXTENTS
    | incompat::BIT64
    | incompat::MMP
    | incompat::FLEX_BG
    | incompat::EA_INODE
    | incompat::CSUM_SEED
    | incompat::LARGEDIR
    | incompat::INLINE_DATA
    | incompat::ENCRYPT
    | incompat::CASEFOLD;

/// Read-only-compatible features that change block ownership in ways this reader does not model.
const REFUSED_RO_COMPAT: u32 =
    ro_compat::BIGALLOC | ro_compat::HAS_SNAPSHOT | ro_compat::SHARED_BLOCKS;

/// The three feature words of the superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Features {
    /// `s_feature_compat`.
    pub compat: u32,
    /// `s_feature_incompat`.
    pub incompat: u32,
    /// `s_feature_ro_compat`.
    pub ro_compat: u32,
}

impl Features {
    /// Feature names in `dumpe2fs` spelling (compat, then incompat, then ro_compat); unknown bits as
    /// `compat_0x...`, `incompat_0x...`, `ro_compat_0x...`.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (word, table, prefix) in [
            (self.compat, COMPAT_NAMES, "compat"),
            (self.incompat, INCOMPAT_NAMES, "incompat"),
            (self.ro_compat, RO_COMPAT_NAMES, "ro_compat"),
        ] {
            let mut known = 0;
            for &(bit, name) in table {
                known |= bit;
                if word & bit != 0 {
                    names.push(name.to_string());
                }
            }
            for bit in 0..32 {
                let mask = 1u32 << bit;
                if word & mask != 0 && known & mask == 0 {
                    names.push(format!("{prefix}_0x{mask:x}"));
                }
            }
        }
        names
    }

    pub(crate) fn has_compat(&self, bit: u32) -> bool {
        self.compat & bit != 0
    }
    pub(crate) fn has_incompat(&self, bit: u32) -> bool {
        self.incompat & bit != 0
    }
    pub(crate) fn has_ro_compat(&self, bit: u32) -> bool {
        self.ro_compat & bit != 0
    }

    /// Group descriptors carry checksums, which makes `BLOCK_UNINIT`, `INODE_UNINIT` and
    /// `bg_itable_unused` meaningful (`uninit_bg`/`gdt_csum` or `metadata_csum`).
    pub(crate) fn group_desc_csum(&self) -> bool {
        self.has_ro_compat(ro_compat::GDT_CSUM) || self.has_ro_compat(ro_compat::METADATA_CSUM)
    }
}

/// The decoded and validated primary superblock (only the fields the reader uses or reports).
#[derive(Clone, Debug, Serialize)]
pub struct Superblock {
    /// `s_inodes_count`.
    pub inodes_count: u32,
    /// Total blocks (`s_blocks_count_lo`/`_hi`).
    pub blocks_count: u64,
    /// Reserved blocks (`s_r_blocks_count`).
    pub reserved_blocks_count: u64,
    /// Free blocks as recorded in the superblock (may be stale; the block map is authoritative).
    pub free_blocks_count: u64,
    /// Free inodes as recorded in the superblock.
    pub free_inodes_count: u32,
    /// `s_first_data_block`: 1 for 1 KiB blocks, else 0.
    pub first_data_block: u32,
    /// Block size in bytes (1 KiB .. 64 KiB).
    pub block_size: u32,
    /// `s_blocks_per_group`.
    pub blocks_per_group: u32,
    /// `s_inodes_per_group`.
    pub inodes_per_group: u32,
    /// Size of one on-disk inode in bytes.
    pub inode_size: u16,
    /// First non-reserved inode number.
    pub first_ino: u32,
    /// `s_rev_level`.
    pub rev_level: u32,
    /// `s_state` (bit 0: cleanly unmounted, bit 1: errors detected).
    pub state: u16,
    /// Feature words.
    pub features: Features,
    /// Filesystem UUID.
    pub uuid: [u8; 16],
    /// Volume label (bytes up to the first NUL, lossily decoded).
    pub label: String,
    /// Number of GDT blocks reserved for online growth (`s_reserved_gdt_blocks`).
    pub reserved_gdt_blocks: u16,
    /// Journal inode (`s_journal_inum`), when the journal is internal.
    pub journal_inum: u32,
    /// Group descriptor size in bytes (32, or `s_desc_size` with 64bit).
    pub desc_size: u16,
    /// `s_first_meta_bg`: first meta block group (meta_bg layout).
    pub first_meta_bg: u32,
    /// `s_log_groups_per_flex`.
    pub log_groups_per_flex: u8,
    /// Multi-mount protection block (`s_mmp_block`), meaningful with the `mmp` feature.
    pub mmp_block: u64,
    /// `s_backup_bgs` (sparse_super2).
    pub backup_bgs: [u32; 2],
    /// User quota inode.
    pub usr_quota_inum: u32,
    /// Group quota inode.
    pub grp_quota_inum: u32,
    /// Project quota inode.
    pub prj_quota_inum: u32,
    /// Orphan file inode (`s_orphan_file_inum`).
    pub orphan_file_inum: u32,
}

impl Superblock {
    /// Decodes and validates the superblock; `image_len` bounds every count.
    pub(crate) fn parse(raw: &[u8], image_len: u64) -> Result<Self> {
        let magic = u16_at(raw, MAGIC_OFFSET);
        if magic != MAGIC {
            return Err(Error::NotExt {
                reason: format!(
                    "magic at byte offset {} is 0x{magic:04x}, expected 0x{MAGIC:04x}",
                    SUPERBLOCK_OFFSET + MAGIC_OFFSET as u64
                ),
            });
        }
        let bad = |reason: String| Error::BadSuperblock { reason };

        let log_block_size = u32_at(raw, 0x18);
        if log_block_size > 6 {
            return Err(bad(format!(
                "s_log_block_size {log_block_size} (block size above 64 KiB)"
            )));
        }
        let block_size = 1024u32 << log_block_size;
        let features = Features {
            compat: u32_at(raw, 0x5C),
            incompat: u32_at(raw, 0x60),
            ro_compat: u32_at(raw, 0x64),
        };
        let unknown_incompat = features.incompat & !KNOWN_INCOMPAT;
        if unknown_incompat != 0 {
            let names = Features {
                compat: 0,
                incompat: unknown_incompat,
                ro_compat: 0,
            }
            .names();
            return Err(Error::Unsupported {
                feature: names.join(","),
            });
        }
        let refused = features.ro_compat & REFUSED_RO_COMPAT;
        if refused != 0 {
            let names = Features {
                compat: 0,
                incompat: 0,
                ro_compat: refused,
            }
            .names();
            return Err(Error::Unsupported {
                feature: names.join(","),
            });
        }
        let bit64 = features.has_incompat(incompat::BIT64);
        let hi32 = |off: usize| {
            if bit64 {
                u64::from(u32_at(raw, off)) << 32
            } else {
                0
            }
        };

        let blocks_count = u64::from(u32_at(raw, 0x4)) | hi32(0x150);
        let first_data_block = u32_at(raw, 0x14);
        let blocks_per_group = u32_at(raw, 0x20);
        let inodes_per_group = u32_at(raw, 0x28);
        let inodes_count = u32_at(raw, 0x0);
        let rev_level = u32_at(raw, 0x4C);
        let (inode_size, first_ino) = if rev_level == 0 {
            (128, 11)
        } else {
            (u16_at(raw, 0x58), u32_at(raw, 0x54))
        };

        let expected_first = if block_size == 1024 { 1 } else { 0 };
        if first_data_block != expected_first {
            return Err(bad(format!(
                "s_first_data_block is {first_data_block}, expected {expected_first} for {block_size}-byte blocks"
            )));
        }
        let bits_per_block = block_size.saturating_mul(8);
        if blocks_per_group == 0 || blocks_per_group % 8 != 0 || blocks_per_group > bits_per_block {
            return Err(bad(format!(
                "s_blocks_per_group {blocks_per_group} (must be a multiple of 8 in 8..={bits_per_block})"
            )));
        }
        if inodes_per_group == 0 || inodes_per_group > bits_per_block {
            return Err(bad(format!(
                "s_inodes_per_group {inodes_per_group} (must be 1..={bits_per_block})"
            )));
        }
        if inode_size < 128 || !inode_size.is_power_of_two() || u32::from(inode_size) > block_size {
            return Err(bad(format!(
                "inode size {inode_size} (must be a power of two in 128..={block_size})"
            )));
        }
        if blocks_count <= u64::from(first_data_block) {
            return Err(bad(format!(
                "s_blocks_count {blocks_count} leaves no data blocks"
            )));
        }
        let fs_bytes = blocks_count.checked_mul(u64::from(block_size));
        if fs_bytes.is_none_or(|bytes| bytes > image_len) {
            return Err(Error::Truncated {
                what: "filesystem (s_blocks_count x block size)",
                offset: 0,
                end: fs_bytes.unwrap_or(u64::MAX),
                image_len,
            });
        }
        let groups =
            (blocks_count - u64::from(first_data_block)).div_ceil(u64::from(blocks_per_group));
        if u64::from(inodes_count) != groups.saturating_mul(u64::from(inodes_per_group)) {
            return Err(bad(format!(
                "s_inodes_count {inodes_count} != {groups} groups x {inodes_per_group} inodes per group"
            )));
        }
        if first_ino < 11 || first_ino > inodes_count {
            return Err(bad(format!(
                "s_first_ino {first_ino} (must be 11..={inodes_count})"
            )));
        }
        let desc_size = if bit64 {
            let size = u16_at(raw, 0xFE);
            if size < 64 || !size.is_power_of_two() || u32::from(size) > block_size {
                return Err(bad(format!(
                    "s_desc_size {size} with 64bit (must be a power of two >= 64)"
                )));
            }
            size
        } else {
            32
        };
        let mut label_bytes = bytes::<16>(raw, 0x78).unwrap_or_default().to_vec();
        if let Some(nul) = label_bytes.iter().position(|&b| b == 0) {
            label_bytes.truncate(nul);
        }

        Ok(Self {
            inodes_count,
            blocks_count,
            reserved_blocks_count: u64::from(u32_at(raw, 0x8)) | hi32(0x154),
            free_blocks_count: u64::from(u32_at(raw, 0xC)) | hi32(0x158),
            free_inodes_count: u32_at(raw, 0x10),
            first_data_block,
            block_size,
            blocks_per_group,
            inodes_per_group,
            inode_size,
            first_ino,
            rev_level,
            state: u16_at(raw, 0x3A),
            features,
            uuid: bytes::<16>(raw, 0x68).unwrap_or_default(),
            label: String::from_utf8_lossy(&label_bytes).into_owned(),
            reserved_gdt_blocks: if features.has_compat(compat::RESIZE_INODE) {
                u16_at(raw, 0xCE)
            } else {
                0
            },
            journal_inum: if features.has_compat(compat::HAS_JOURNAL) {
                u32_at(raw, 0xE0)
            } else {
                0
            },
            desc_size,
            first_meta_bg: if features.has_incompat(incompat::META_BG) {
                u32_at(raw, 0x104)
            } else {
                0
            },
            log_groups_per_flex: u8_at(raw, 0x174),
            mmp_block: if features.has_incompat(incompat::MMP) {
                u64_at(raw, 0x168)
            } else {
                0
            },
            backup_bgs: [u32_at(raw, 0x24C), u32_at(raw, 0x250)],
            usr_quota_inum: u32_at(raw, 0x240),
            grp_quota_inum: u32_at(raw, 0x244),
            prj_quota_inum: u32_at(raw, 0x26C),
            orphan_file_inum: if features.has_compat(compat::ORPHAN_FILE) {
                u32_at(raw, 0x280)
            } else {
                0
            },
        })
    }

    /// Number of block groups.
    pub fn group_count(&self) -> u32 {
        let data_blocks = self.blocks_count - u64::from(self.first_data_block);
        // Validated in `parse`: groups x inodes_per_group == inodes_count, a u32.
        u32::try_from(data_blocks.div_ceil(u64::from(self.blocks_per_group))).unwrap_or(u32::MAX)
    }

    /// UUID in the usual `8-4-4-4-12` hex form.
    pub fn uuid_string(&self) -> String {
        let hex: Vec<String> = self.uuid.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            hex[0..4].concat(),
            hex[4..6].concat(),
            hex[6..8].concat(),
            hex[8..10].concat(),
            hex[10..16].concat()
        )
    }

    /// Blocks occupied by one group's inode table.
    pub(crate) fn inode_table_blocks(&self) -> u64 {
        (u64::from(self.inodes_per_group) * u64::from(self.inode_size))
            .div_ceil(u64::from(self.block_size))
    }

    /// Group descriptors that fit in one block.
    pub(crate) fn descs_per_block(&self) -> u32 {
        self.block_size / u32::from(self.desc_size)
    }

    /// First block of group `group`.
    pub(crate) fn group_first_block(&self, group: u32) -> u64 {
        u64::from(self.first_data_block) + u64::from(group) * u64::from(self.blocks_per_group)
    }

    /// Number of blocks in group `group` (the last group may be short).
    pub(crate) fn group_len(&self, group: u32) -> u64 {
        let first = self.group_first_block(group);
        self.blocks_count
            .saturating_sub(first)
            .min(u64::from(self.blocks_per_group))
    }

    /// Whether group `group` holds a superblock copy (group 0: the primary).
    pub fn group_has_superblock(&self, group: u32) -> bool {
        if group == 0 {
            return true;
        }
        if self.features.has_compat(compat::SPARSE_SUPER2) {
            return self.backup_bgs.contains(&group);
        }
        if group == 1 || !self.features.has_ro_compat(ro_compat::SPARSE_SUPER) {
            return true;
        }
        if group % 2 == 0 {
            return false;
        }
        is_power_of(group, 3) || is_power_of(group, 5) || is_power_of(group, 7)
    }

    /// Whether the filesystem needs journal recovery (its metadata may be inconsistent).
    pub fn needs_recovery(&self) -> bool {
        self.features.has_incompat(incompat::RECOVER)
    }

    /// Primary-superblock block number (block 1 with 1 KiB blocks, else 0).
    pub(crate) fn superblock_block(&self) -> u64 {
        SUPERBLOCK_OFFSET / u64::from(self.block_size)
    }
}

fn is_power_of(mut n: u32, base: u32) -> bool {
    while n > 1 && n % base == 0 {
        n /= base;
    }
    n == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_super_groups() {
        let powers: Vec<u32> = (1..100)
            .filter(|&g| is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7))
            .collect();
        assert_eq!(powers, [1, 3, 5, 7, 9, 25, 27, 49, 81]);
    }

    #[test]
    fn bad_magic_is_not_ext() {
        let raw = vec![0u8; SUPERBLOCK_SIZE];
        assert!(matches!(
            Superblock::parse(&raw, 1 << 20),
            Err(Error::NotExt { .. })
        ));
    }
}
