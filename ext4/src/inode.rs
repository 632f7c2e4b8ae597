//! On-disk inodes: locating them in the inode tables and decoding the fields the reader needs,
//! including inline data kept in the in-inode `system.data` extended attribute.

use crate::error::{Error, Result};
use crate::le::{u16_at, u32_at};
use crate::superblock::{ro_compat, Superblock};
use serde::Serialize;

/// Size of `i_block`: 15 block pointers, an extent-tree root, a fast symlink or inline data.
pub(crate) const I_BLOCK_LEN: usize = 60;
const GOOD_OLD_INODE_SIZE: usize = 128;
const XATTR_MAGIC: u32 = 0xEA02_0000;
/// `system.` attribute name index; inline data lives in `system.data`.
const XATTR_INDEX_SYSTEM: u8 = 7;

/// `i_flags` bits the reader interprets.
pub(crate) mod flags {
    pub const HUGE_FILE: u32 = 0x0004_0000;
    pub const EXTENTS: u32 = 0x0008_0000;
    pub const INLINE_DATA: u32 = 0x1000_0000;
}

/// File type from the `i_mode` format bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// Regular file.
    Regular,
    /// Directory.
    Directory,
    /// Symbolic link.
    Symlink,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
    /// Mode 0 (system inodes such as the bad-blocks inode) or an invalid format.
    Unknown,
}

impl FileKind {
    fn from_mode(mode: u16) -> Self {
        match mode & 0xF000 {
            0x1000 => Self::Fifo,
            0x2000 => Self::CharDevice,
            0x4000 => Self::Directory,
            0x6000 => Self::BlockDevice,
            0x8000 => Self::Regular,
            0xA000 => Self::Symlink,
            0xC000 => Self::Socket,
            _ => Self::Unknown,
        }
    }

    /// Whether `i_block` holds a block map (devices keep device numbers there).
    pub(crate) fn has_block_map(self) -> bool {
        matches!(
            self,
            Self::Regular | Self::Directory | Self::Symlink | Self::Unknown
        )
    }
}

/// The decoded fields of one on-disk inode.
#[derive(Clone, Debug)]
pub(crate) struct Inode {
    pub ino: u32,
    pub mode: u16,
    pub kind: FileKind,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub links: u16,
    pub flags: u32,
    /// `i_blocks` converted to 512-byte units.
    pub blocks_512: u64,
    pub i_block: [u8; I_BLOCK_LEN],
    /// Extended attribute block (`i_file_acl`), 0 if none.
    pub file_acl: u64,
    /// The whole raw inode (`inode_size` bytes), kept for in-inode xattrs.
    raw: Vec<u8>,
}

impl Inode {
    /// Decodes `raw` (exactly `inode_size` bytes) as inode `ino`.
    pub(crate) fn parse(sb: &Superblock, ino: u32, raw: &[u8]) -> Self {
        let mode = u16_at(raw, 0x0);
        let mut i_block = [0u8; I_BLOCK_LEN];
        if let Some(src) = raw.get(0x28..0x28 + I_BLOCK_LEN) {
            i_block.copy_from_slice(src);
        }
        let huge = sb.features.has_ro_compat(ro_compat::HUGE_FILE);
        let flags = u32_at(raw, 0x20);
        let mut blocks_512 = u64::from(u32_at(raw, 0x1C))
            | if huge {
                u64::from(u16_at(raw, 0x74)) << 32
            } else {
                0
            };
        if huge && flags & flags::HUGE_FILE != 0 {
            blocks_512 = blocks_512.saturating_mul(u64::from(sb.block_size / 512));
        }
        Self {
            ino,
            mode,
            kind: FileKind::from_mode(mode),
            uid: u32::from(u16_at(raw, 0x2)) | u32::from(u16_at(raw, 0x78)) << 16,
            gid: u32::from(u16_at(raw, 0x18)) | u32::from(u16_at(raw, 0x7A)) << 16,
            size: u64::from(u32_at(raw, 0x4)) | u64::from(u32_at(raw, 0x6C)) << 32,
            links: u16_at(raw, 0x1A),
            flags,
            blocks_512,
            i_block,
            file_acl: u64::from(u32_at(raw, 0x68)) | u64::from(u16_at(raw, 0x76)) << 32,
            raw: raw.to_vec(),
        }
    }

    pub(crate) fn has_flag(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Whether this is a symlink whose target is stored in `i_block` itself.
    ///
    /// Like the kernel, a symlink is fast when it owns no data blocks besides an xattr block;
    /// targets of 60 bytes or more never fit.
    pub(crate) fn is_fast_symlink(&self, block_size: u32) -> bool {
        if self.kind != FileKind::Symlink || self.has_flag(flags::INLINE_DATA) {
            return false;
        }
        let xattr_512 = if self.file_acl != 0 {
            u64::from(block_size / 512)
        } else {
            0
        };
        self.size < I_BLOCK_LEN as u64 && self.blocks_512.saturating_sub(xattr_512) == 0
    }

    /// The inline-data continuation: the value of the in-inode `system.data` xattr (empty if the
    /// attribute is absent).
    pub(crate) fn inline_data_tail(&self) -> Result<Vec<u8>> {
        let bad = |reason: String| Error::BadInode {
            ino: self.ino,
            reason,
        };
        if self.raw.len() <= GOOD_OLD_INODE_SIZE {
            return Ok(Vec::new());
        }
        let extra_isize = usize::from(u16_at(&self.raw, 0x80));
        let ibody = GOOD_OLD_INODE_SIZE + extra_isize;
        if extra_isize % 4 != 0 || ibody > self.raw.len() {
            return Err(bad(format!(
                "i_extra_isize {extra_isize} does not fit a {}-byte inode",
                self.raw.len()
            )));
        }
        if ibody + 4 > self.raw.len() {
            return Ok(Vec::new());
        }
        if u32_at(&self.raw, ibody) != XATTR_MAGIC {
            return Ok(Vec::new());
        }
        let entries = ibody + 4;
        let area = self.raw.get(entries..).unwrap_or_default();
        let mut off = 0usize;
        // Each entry is at least 16 bytes, so this loop ends within the inode.
        while off + 4 <= area.len() && u32_at(area, off) != 0 {
            let name_len = usize::from(area.get(off).copied().unwrap_or(0));
            let name_index = area.get(off + 1).copied().unwrap_or(0);
            let value_offs = usize::from(u16_at(area, off + 2));
            let value_inum = u32_at(area, off + 4);
            let value_size = u32_at(area, off + 8) as usize;
            let name = area.get(off + 16..off + 16 + name_len).ok_or_else(|| {
                bad(format!(
                    "in-inode xattr entry at byte {} runs past the inode",
                    entries + off
                ))
            })?;
            if name_index == XATTR_INDEX_SYSTEM && name == b"data" {
                if value_inum != 0 {
                    return Err(bad("inline data stored in an EA inode".to_string()));
                }
                let value = area.get(value_offs..value_offs.saturating_add(value_size)).ok_or_else(|| {
                    bad(format!(
                        "system.data value ({value_size} bytes at offset {value_offs}) runs past the inode"
                    ))
                })?;
                return Ok(value.to_vec());
            }
            off += (16 + name_len + 3) & !3;
        }
        Ok(Vec::new())
    }
}
