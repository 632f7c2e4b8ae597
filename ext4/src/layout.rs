//! Block groups: descriptors (32 and 64 byte) and where each group's fixed metadata lives
//! (superblock copies, descriptor blocks, reserved GDT blocks, bitmaps, inode table), for the
//! classic, `meta_bg`, `sparse_super` and `sparse_super2` layouts.

use crate::error::{Error, Result};
use crate::io::{Image, ReadAt};
use crate::le::{u16_at, u32_at};
use crate::superblock::{incompat, Superblock};
use serde::Serialize;

/// `bg_flags`: the inode bitmap and table are not initialised.
const BG_INODE_UNINIT: u16 = 0x1;
/// `bg_flags`: the block bitmap is not initialised (all blocks but the group's metadata are free).
const BG_BLOCK_UNINIT: u16 = 0x2;

/// A contiguous range of physical blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct BlockRange {
    /// First block.
    pub start: u64,
    /// Number of blocks.
    pub len: u64,
}

impl BlockRange {
    /// One past the last block.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// One block group: its descriptor and the fixed metadata it holds.
#[derive(Clone, Debug, Serialize)]
pub struct Group {
    /// Group number.
    pub number: u32,
    /// First block of the group.
    pub first_block: u64,
    /// Blocks in the group (the last one may be short).
    pub len: u64,
    /// Block bitmap location (may be in another group with flex_bg).
    pub block_bitmap: u64,
    /// Inode bitmap location.
    pub inode_bitmap: u64,
    /// Inode table location and length.
    pub inode_table: BlockRange,
    /// `bg_flags` (1 = INODE_UNINIT, 2 = BLOCK_UNINIT, 4 = ITABLE_ZEROED).
    pub flags: u16,
    /// `bg_itable_unused`: trailing inodes never used (meaningful with group checksums).
    pub itable_unused: u32,
    /// Free blocks recorded in the descriptor.
    pub free_blocks: u32,
    /// Free inodes recorded in the descriptor.
    pub free_inodes: u32,
    /// Superblock copy in this group (group 0: the primary), if any.
    pub superblock: Option<u64>,
    /// Group descriptor blocks stored in this group (group 0 or a meta group's first group: the
    /// primary copy; elsewhere a backup).
    pub descriptors: Option<BlockRange>,
    /// Whether `descriptors` is the primary copy.
    pub primary_descriptors: bool,
    /// Reserved GDT blocks (for online resize) in this group.
    pub reserved_gdt: Option<BlockRange>,
}

impl Group {
    /// Whether the block bitmap is uninitialised (honoured only with group checksums).
    pub fn block_uninit(&self) -> bool {
        self.flags & BG_BLOCK_UNINIT != 0
    }

    /// Whether the inode bitmap and table are uninitialised (honoured only with group checksums).
    pub fn inode_uninit(&self) -> bool {
        self.flags & BG_INODE_UNINIT != 0
    }
}

/// Number of descriptor blocks for the whole filesystem.
fn gdt_block_count(sb: &Superblock) -> u64 {
    u64::from(sb.group_count()).div_ceil(u64::from(sb.descs_per_block()))
}

/// Whether group `group` lies in the `meta_bg` part of the layout.
fn in_meta_bg(sb: &Superblock, group: u32) -> bool {
    sb.features.has_incompat(incompat::META_BG) && group / sb.descs_per_block() >= sb.first_meta_bg
}

/// Primary location of descriptor block `index`.
fn descriptor_block(sb: &Superblock, index: u32) -> u64 {
    if !sb.features.has_incompat(incompat::META_BG) || index < sb.first_meta_bg {
        u64::from(sb.first_data_block) + 1 + u64::from(index)
    } else {
        let group = index.saturating_mul(sb.descs_per_block());
        sb.group_first_block(group) + u64::from(sb.group_has_superblock(group))
    }
}

/// Reads and validates every group descriptor, and computes each group's fixed metadata.
pub(crate) fn read_groups<R: ReadAt>(image: &Image<R>, sb: &Superblock) -> Result<Vec<Group>> {
    let group_count = sb.group_count();
    let gdt_blocks = gdt_block_count(sb);
    let dpb = sb.descs_per_block();
    if sb.features.has_incompat(incompat::META_BG) && u64::from(sb.first_meta_bg) > gdt_blocks {
        return Err(Error::BadSuperblock {
            reason: format!(
                "s_first_meta_bg {} exceeds the {gdt_blocks} descriptor blocks",
                sb.first_meta_bg
            ),
        });
    }
    let non_meta_gdt_len = if sb.features.has_incompat(incompat::META_BG) {
        u64::from(sb.first_meta_bg)
    } else {
        gdt_blocks
    };

    let block_size = sb.block_size as usize;
    let desc_size = usize::from(sb.desc_size);
    let itable_blocks = sb.inode_table_blocks();
    let mut buf = vec![0u8; block_size];
    let mut groups = Vec::with_capacity(group_count as usize);
    for index in 0..u32::try_from(gdt_blocks).unwrap_or(u32::MAX) {
        let block = descriptor_block(sb, index);
        if block >= sb.blocks_count {
            return Err(Error::BadSuperblock {
                reason: format!("descriptor block {index} would be at block {block}, past the end"),
            });
        }
        image.read_exact_at(
            &mut buf,
            block * u64::from(sb.block_size),
            "group descriptor block",
        )?;
        for slot in 0..dpb {
            let number = index * dpb + slot;
            if number >= group_count {
                break;
            }
            let raw = buf.get(slot as usize * desc_size..).unwrap_or_default();
            groups.push(decode_group(
                sb,
                number,
                raw,
                itable_blocks,
                non_meta_gdt_len,
            )?);
        }
    }
    Ok(groups)
}

fn decode_group(
    sb: &Superblock,
    number: u32,
    raw: &[u8],
    itable_blocks: u64,
    non_meta_gdt_len: u64,
) -> Result<Group> {
    let wide = sb.desc_size >= 64;
    let lo_hi32 = |lo: usize, hi: usize| {
        u64::from(u32_at(raw, lo))
            | if wide {
                u64::from(u32_at(raw, hi)) << 32
            } else {
                0
            }
    };
    let lo_hi16 = |lo: usize, hi: usize| {
        u32::from(u16_at(raw, lo))
            | if wide {
                u32::from(u16_at(raw, hi)) << 16
            } else {
                0
            }
    };
    let block_bitmap = lo_hi32(0x0, 0x20);
    let inode_bitmap = lo_hi32(0x4, 0x24);
    let inode_table = BlockRange {
        start: lo_hi32(0x8, 0x28),
        len: itable_blocks,
    };
    let itable_unused = lo_hi16(0x1C, 0x32);
    let bad = |reason: String| Error::BadGroup {
        group: number,
        reason,
    };
    let data_start = u64::from(sb.first_data_block);
    for (what, block) in [
        ("block bitmap", block_bitmap),
        ("inode bitmap", inode_bitmap),
    ] {
        if block < data_start || block >= sb.blocks_count {
            return Err(bad(format!(
                "{what} at block {block}, outside the filesystem (0..{})",
                sb.blocks_count
            )));
        }
    }
    if inode_table.start < data_start || inode_table.end() > sb.blocks_count {
        return Err(bad(format!(
            "inode table at blocks {}..{}, outside the filesystem (0..{})",
            inode_table.start,
            inode_table.end(),
            sb.blocks_count
        )));
    }
    if itable_unused > sb.inodes_per_group {
        return Err(bad(format!(
            "bg_itable_unused {itable_unused} exceeds {} inodes per group",
            sb.inodes_per_group
        )));
    }

    let first_block = sb.group_first_block(number);
    let has_super = sb.group_has_superblock(number);
    let superblock = has_super.then(|| {
        if number == 0 {
            sb.superblock_block()
        } else {
            first_block
        }
    });
    let after_super = first_block + u64::from(has_super);
    let (descriptors, primary_descriptors, reserved_gdt) = if !in_meta_bg(sb, number) {
        if has_super {
            let descriptors = BlockRange {
                start: after_super,
                len: non_meta_gdt_len,
            };
            let reserved = BlockRange {
                start: descriptors.end(),
                len: u64::from(sb.reserved_gdt_blocks),
            };
            (
                (descriptors.len > 0).then_some(descriptors),
                number == 0,
                (reserved.len > 0).then_some(reserved),
            )
        } else {
            (None, false, None)
        }
    } else {
        let dpb = sb.descs_per_block();
        let position = number % dpb;
        if position == 0 || position == 1 || position == dpb - 1 {
            (
                Some(BlockRange {
                    start: after_super,
                    len: 1,
                }),
                position == 0,
                None,
            )
        } else {
            (None, false, None)
        }
    };
    Ok(Group {
        number,
        first_block,
        len: sb.group_len(number),
        block_bitmap,
        inode_bitmap,
        inode_table,
        flags: u16_at(raw, 0x12),
        itable_unused,
        free_blocks: lo_hi16(0xC, 0x2C),
        free_inodes: lo_hi16(0xE, 0x2E),
        superblock,
        descriptors,
        primary_descriptors,
        reserved_gdt,
    })
}
