//! The whole-image block map: one owner for every block, as sorted runs, built from the group
//! layout, every inode's block map and the block bitmaps; overlapping claims are an error.

use crate::error::{Error, Result};
use crate::inode::FileKind;
use crate::io::{Image, ReadAt};
use crate::layout::Group;
use crate::scan::{Role, Scan};
use crate::superblock::Superblock;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Who a block belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Owner {
    /// Free per the block bitmap (whatever bytes it holds).
    Free,
    /// Marked in use by the block bitmap, but nothing found owns it.
    Unaccounted,
    /// Block 0 with 1 KiB blocks: the boot sector area before the superblock.
    BootBlock,
    /// The primary superblock.
    Superblock,
    /// A backup superblock.
    BackupSuperblock,
    /// The primary group descriptor table (or a meta_bg group's primary descriptor block).
    GroupDescriptors,
    /// A backup copy of group descriptors.
    BackupGroupDescriptors,
    /// Reserved GDT blocks for online resize (primary or backup).
    ReservedGdt,
    /// A block bitmap.
    BlockBitmap,
    /// An inode bitmap.
    InodeBitmap,
    /// An inode table.
    InodeTable,
    /// The multi-mount protection block.
    Mmp,
    /// The journal's data.
    Journal {
        /// Journal inode.
        ino: u32,
        /// Logical block of the journal at this run's start.
        logical: u64,
    },
    /// Regular file or symlink data.
    FileData {
        /// Inode number.
        ino: u32,
        /// Logical block at this run's start.
        logical: u64,
    },
    /// Directory blocks (including htree index nodes).
    DirectoryData {
        /// Inode number.
        ino: u32,
        /// Logical block at this run's start.
        logical: u64,
    },
    /// Data of a system inode other than the journal (quota files, orphan file, reserved inodes).
    SystemFile {
        /// Inode number.
        ino: u32,
        /// Logical block at this run's start.
        logical: u64,
    },
    /// Blocks listed in the bad-blocks inode.
    BadBlocks,
    /// Extent-tree nodes or indirect blocks of an inode (for inode 7: its double-indirect block).
    Mapping {
        /// Inode number.
        ino: u32,
    },
    /// An extended attribute block (may be shared by several inodes).
    Xattr,
}

impl Owner {
    /// Stable snake_case name of the owner kind (as in the JSON `kind` field).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Unaccounted => "unaccounted",
            Self::BootBlock => "boot_block",
            Self::Superblock => "superblock",
            Self::BackupSuperblock => "backup_superblock",
            Self::GroupDescriptors => "group_descriptors",
            Self::BackupGroupDescriptors => "backup_group_descriptors",
            Self::ReservedGdt => "reserved_gdt",
            Self::BlockBitmap => "block_bitmap",
            Self::InodeBitmap => "inode_bitmap",
            Self::InodeTable => "inode_table",
            Self::Mmp => "mmp",
            Self::Journal { .. } => "journal",
            Self::FileData { .. } => "file_data",
            Self::DirectoryData { .. } => "directory_data",
            Self::SystemFile { .. } => "system_file",
            Self::BadBlocks => "bad_blocks",
            Self::Mapping { .. } => "mapping",
            Self::Xattr => "xattr",
        }
    }

    /// Whether this is the content of a particular inode (file, directory, journal, system file).
    pub fn is_inode_data(&self) -> bool {
        matches!(
            self,
            Self::Journal { .. }
                | Self::FileData { .. }
                | Self::DirectoryData { .. }
                | Self::SystemFile { .. }
        )
    }

    /// The owner of the block `n` blocks further into the same run.
    fn advanced(self, n: u64) -> Self {
        match self {
            Self::Journal { ino, logical } => Self::Journal {
                ino,
                logical: logical.saturating_add(n),
            },
            Self::FileData { ino, logical } => Self::FileData {
                ino,
                logical: logical.saturating_add(n),
            },
            Self::DirectoryData { ino, logical } => Self::DirectoryData {
                ino,
                logical: logical.saturating_add(n),
            },
            Self::SystemFile { ino, logical } => Self::SystemFile {
                ino,
                logical: logical.saturating_add(n),
            },
            other => other,
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Journal { ino, logical } => {
                write!(f, "journal inode {ino} logical block {logical}")
            }
            Self::FileData { ino, logical } => {
                write!(f, "inode {ino} data at logical block {logical}")
            }
            Self::DirectoryData { ino, logical } => {
                write!(f, "directory inode {ino} logical block {logical}")
            }
            Self::SystemFile { ino, logical } => {
                write!(f, "system inode {ino} logical block {logical}")
            }
            Self::Mapping { ino } => write!(f, "extent tree/indirect block of inode {ino}"),
            other => f.write_str(&other.kind_name().replace('_', " ")),
        }
    }
}

/// `len` blocks from `start` with one owner (for inode data, `owner` describes the first block;
/// logical blocks advance with the physical ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct OwnerRun {
    /// First block.
    pub start: u64,
    /// Number of blocks.
    pub len: u64,
    /// Owner of the first block.
    #[serde(flatten)]
    pub owner: Owner,
}

impl OwnerRun {
    /// One past the last block.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// Every block of the filesystem with its owner, as sorted, gap-free, maximal runs.
#[derive(Clone, Debug, Serialize)]
pub struct BlockMap {
    /// Block size in bytes.
    pub block_size: u32,
    /// Number of blocks (the runs cover `0..blocks_count`).
    pub blocks_count: u64,
    /// The runs, sorted by `start`, adjacent and non-overlapping.
    pub runs: Vec<OwnerRun>,
    /// Blocks that have an owner but that the block bitmap marks free (an inconsistency the
    /// kernel would repair with fsck; they stay with their owner).
    pub owned_but_marked_free: u64,
}

impl BlockMap {
    /// The owner of `block` (`None` past the end).
    pub fn owner(&self, block: u64) -> Option<Owner> {
        let i = self.runs.partition_point(|r| r.end() <= block);
        self.runs
            .get(i)
            .filter(|r| r.start <= block)
            .map(|r| r.owner.advanced(block - r.start))
    }

    /// Blocks per owner kind (keys as in [`Owner::kind_name`]).
    pub fn blocks_by_kind(&self) -> BTreeMap<&'static str, u64> {
        let mut totals = BTreeMap::new();
        for run in &self.runs {
            *totals.entry(run.owner.kind_name()).or_insert(0) += run.len;
        }
        totals
    }
}

/// Collects the fixed metadata claims of the group layout.
fn layout_claims(sb: &Superblock, groups: &[Group], claims: &mut Vec<OwnerRun>) -> Result<()> {
    let mut claim =
        |start: u64, len: u64, owner: Owner| claims.push(OwnerRun { start, len, owner });
    if sb.first_data_block > 0 {
        claim(0, u64::from(sb.first_data_block), Owner::BootBlock);
    }
    for g in groups {
        if let Some(block) = g.superblock {
            claim(
                block,
                1,
                if g.number == 0 {
                    Owner::Superblock
                } else {
                    Owner::BackupSuperblock
                },
            );
        }
        if let Some(d) = g.descriptors {
            claim(
                d.start,
                d.len,
                if g.primary_descriptors {
                    Owner::GroupDescriptors
                } else {
                    Owner::BackupGroupDescriptors
                },
            );
        }
        if let Some(r) = g.reserved_gdt {
            claim(r.start, r.len, Owner::ReservedGdt);
        }
        claim(g.block_bitmap, 1, Owner::BlockBitmap);
        claim(g.inode_bitmap, 1, Owner::InodeBitmap);
        claim(g.inode_table.start, g.inode_table.len, Owner::InodeTable);
    }
    if sb.mmp_block != 0 {
        claim(sb.mmp_block, 1, Owner::Mmp);
    }
    if let Some(bad) = claims
        .iter()
        .find(|c| c.end() > sb.blocks_count || c.start.checked_add(c.len).is_none())
    {
        return Err(Error::BadSuperblock {
            reason: format!(
                "{} at blocks {}..{} lies past the end ({} blocks)",
                bad.owner,
                bad.start,
                bad.end(),
                sb.blocks_count
            ),
        });
    }
    Ok(())
}

/// Collects what every inode owns.
fn inode_claims(scan: &Scan, claims: &mut Vec<OwnerRun>) {
    let mut xattr_blocks = BTreeSet::new();
    for file in &scan.files {
        let ino = file.ino;
        for run in &file.runs {
            let logical = run.logical;
            let owner = match file.role {
                Role::Journal => Owner::Journal { ino, logical },
                Role::BadBlocks => Owner::BadBlocks,
                Role::Normal if file.kind == FileKind::Directory => {
                    Owner::DirectoryData { ino, logical }
                }
                Role::Normal => Owner::FileData { ino, logical },
                Role::ResizeInode | Role::Quota | Role::OrphanFile | Role::Reserved => {
                    Owner::SystemFile { ino, logical }
                }
            };
            claims.push(OwnerRun {
                start: run.physical,
                len: run.len,
                owner,
            });
        }
        for m in &file.mapping_blocks {
            claims.push(OwnerRun {
                start: m.start,
                len: m.len,
                owner: Owner::Mapping { ino },
            });
        }
        if let Some(block) = file.xattr_block {
            xattr_blocks.insert(block);
        }
    }
    claims.extend(xattr_blocks.into_iter().map(|start| OwnerRun {
        start,
        len: 1,
        owner: Owner::Xattr,
    }));
}

/// Answers "does the block bitmap mark this block in use?", one group bitmap cached at a time.
struct Bitmaps<'a, R> {
    image: &'a Image<R>,
    sb: &'a Superblock,
    groups: &'a [Group],
    cached: Option<(u32, Option<Vec<u8>>)>,
}

impl<R: ReadAt> Bitmaps<'_, R> {
    /// `None` when the bitmap does not describe the block (before the first group, or an
    /// uninitialised bitmap, where everything not claimed by metadata is free).
    fn in_use(&mut self, block: u64) -> Result<Option<bool>> {
        let Some(rel) = block.checked_sub(u64::from(self.sb.first_data_block)) else {
            return Ok(None);
        };
        let per_group = u64::from(self.sb.blocks_per_group);
        let Ok(group) = u32::try_from(rel / per_group) else {
            return Ok(None);
        };
        if self.cached.as_ref().is_none_or(|(g, _)| *g != group) {
            let Some(desc) = self.groups.get(group as usize) else {
                return Ok(None);
            };
            let bitmap = if self.sb.features.group_desc_csum() && desc.block_uninit() {
                None
            } else {
                let mut buf = vec![0u8; self.sb.block_size as usize];
                let offset = desc.block_bitmap * u64::from(self.sb.block_size);
                self.image.read_exact_at(&mut buf, offset, "block bitmap")?;
                Some(buf)
            };
            self.cached = Some((group, bitmap));
        }
        let bit = rel % per_group;
        Ok(self
            .cached
            .as_ref()
            .and_then(|(_, bitmap)| bitmap.as_ref())
            .map(|bitmap| {
                bitmap
                    .get((bit / 8) as usize)
                    .is_some_and(|byte| byte & (1 << (bit % 8)) != 0)
            }))
    }
}

/// Appends `run`, merging it into the previous run when it continues it.
fn push_merged(runs: &mut Vec<OwnerRun>, run: OwnerRun) {
    if let Some(last) = runs.last_mut() {
        if last.end() == run.start && last.owner.advanced(last.len) == run.owner {
            last.len += run.len;
            return;
        }
    }
    runs.push(run);
}

/// Builds the block map; fails on any block claimed twice.
pub(crate) fn build<R: ReadAt>(
    image: &Image<R>,
    sb: &Superblock,
    groups: &[Group],
    scan: &Scan,
) -> Result<BlockMap> {
    let mut claims = Vec::new();
    layout_claims(sb, groups, &mut claims)?;
    inode_claims(scan, &mut claims);
    claims.sort_by_key(|c| (c.start, c.len));

    let mut bitmaps = Bitmaps {
        image,
        sb,
        groups,
        cached: None,
    };
    let mut runs: Vec<OwnerRun> = Vec::with_capacity(claims.len() * 2 + 1);
    let mut owned_but_marked_free = 0u64;
    let mut pos = 0u64;
    let mut previous: Option<OwnerRun> = None;
    for claim in claims {
        if claim.start < pos {
            let first = previous.map_or_else(String::new, |p| {
                p.owner.advanced(claim.start - p.start).to_string()
            });
            return Err(Error::OverlappingOwners {
                block: claim.start,
                first,
                second: claim.owner.to_string(),
            });
        }
        fill_gap(&mut bitmaps, &mut runs, pos, claim.start)?;
        for block in claim.start..claim.end() {
            if bitmaps.in_use(block)? == Some(false) {
                owned_but_marked_free += 1;
            }
        }
        push_merged(&mut runs, claim);
        pos = claim.end();
        previous = Some(claim);
    }
    fill_gap(&mut bitmaps, &mut runs, pos, sb.blocks_count)?;
    Ok(BlockMap {
        block_size: sb.block_size,
        blocks_count: sb.blocks_count,
        runs,
        owned_but_marked_free,
    })
}

/// Unclaimed blocks `from..to` are free, or unaccounted if the bitmap marks them in use.
fn fill_gap<R: ReadAt>(
    bitmaps: &mut Bitmaps<'_, R>,
    runs: &mut Vec<OwnerRun>,
    from: u64,
    to: u64,
) -> Result<()> {
    for block in from..to {
        let owner = if bitmaps.in_use(block)? == Some(true) {
            Owner::Unaccounted
        } else {
            Owner::Free
        };
        push_merged(
            runs,
            OwnerRun {
                start: block,
                len: 1,
                owner,
            },
        );
    }
    Ok(())
}
