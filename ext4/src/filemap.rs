//! Per-file block maps: extent trees of any depth and ext2/3 direct/indirect/double/triple
//! indirect blocks, turned into sorted runs plus the list of mapping blocks the file owns.

use crate::error::{Error, Result};
use crate::inode::{Inode, I_BLOCK_LEN};
use crate::io::{Image, ReadAt};
use crate::layout::BlockRange;
use crate::le::{u16_at, u32_at};
use crate::superblock::Superblock;
use serde::Serialize;
use std::collections::HashSet;

const EXTENT_MAGIC: u16 = 0xF30A;
/// The kernel refuses deeper extent trees.
const MAX_EXTENT_DEPTH: u16 = 5;
/// Extent lengths above this mark an uninitialised (preallocated, reads-as-zero) extent.
const INIT_MAX_LEN: u16 = 32768;
const HEADER_LEN: usize = 12;
const ENTRY_LEN: usize = 12;
const DIRECT_BLOCKS: usize = 12;

/// A run of consecutive logical blocks stored in consecutive physical blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Run {
    /// First logical block (file offset / block size).
    pub logical: u64,
    /// First physical block.
    pub physical: u64,
    /// Number of blocks.
    pub len: u64,
    /// False for uninitialised extents: the blocks are allocated but read as zeros.
    pub initialized: bool,
}

/// Where a file's blocks are: data runs sorted by logical block, and the mapping blocks
/// (extent-tree nodes below the root, indirect blocks) that describe them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileMap {
    pub runs: Vec<Run>,
    pub mapping: Vec<BlockRange>,
}

impl FileMap {
    fn push_run(&mut self, run: Run) {
        if let Some(last) = self.runs.last_mut() {
            if last.initialized == run.initialized
                && last.logical.checked_add(last.len) == Some(run.logical)
                && last.physical.checked_add(last.len) == Some(run.physical)
            {
                last.len += run.len;
                return;
            }
        }
        self.runs.push(run);
    }

    fn push_mapping(&mut self, block: u64) {
        if let Some(last) = self.mapping.last_mut() {
            if last.end() == block {
                last.len += 1;
                return;
            }
        }
        self.mapping.push(BlockRange {
            start: block,
            len: 1,
        });
    }
}

/// How many blocks may still be claimed. Every block has at most one owner, so the blocks claimed
/// by all files together can never exceed the filesystem size; this bounds time and memory on
/// hostile images whose block maps share or repeat blocks.
#[derive(Debug)]
pub(crate) struct Budget {
    remaining: u64,
    blocks_count: u64,
}

impl Budget {
    pub(crate) fn new(blocks_count: u64) -> Self {
        Self {
            remaining: blocks_count,
            blocks_count,
        }
    }

    pub(crate) fn take(&mut self, ino: u32, blocks: u64) -> Result<()> {
        self.remaining = self
            .remaining
            .checked_sub(blocks)
            .ok_or(Error::TooManyBlocks {
                ino,
                blocks_count: self.blocks_count,
            })?;
        Ok(())
    }
}

/// Decodes the block map of `inode` (which must not be inline or a fast symlink).
pub(crate) fn map_inode<R: ReadAt>(
    image: &Image<R>,
    sb: &Superblock,
    inode: &Inode,
    use_extents: bool,
    budget: &mut Budget,
) -> Result<FileMap> {
    let mut walk = Walk {
        image,
        sb,
        ino: inode.ino,
        budget,
        map: FileMap::default(),
        visited: HashSet::new(),
        next_logical: 0,
    };
    if use_extents {
        walk.extent_node(&inode.i_block, None, None)?;
    } else {
        walk.indirect_root(&inode.i_block)?;
    }
    Ok(walk.map)
}

struct Walk<'a, R> {
    image: &'a Image<R>,
    sb: &'a Superblock,
    ino: u32,
    budget: &'a mut Budget,
    map: FileMap,
    /// Mapping blocks already visited: a second visit means a loop or shared subtree.
    visited: HashSet<u64>,
    /// Logical blocks below this are already mapped (extents must be sorted and disjoint).
    next_logical: u64,
}

impl<R: ReadAt> Walk<'_, R> {
    fn read_block(&self, block: u64, what: &'static str) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.sb.block_size as usize];
        self.image
            .read_exact_at(&mut buf, block * u64::from(self.sb.block_size), what)?;
        Ok(buf)
    }

    /// Validates and claims a mapping block before it is read.
    fn enter_mapping_block(&mut self, block: u64, what: &str) -> Result<()> {
        if block >= self.sb.blocks_count {
            return Err(Error::BlockOutOfRange {
                ino: self.ino,
                what: what.to_string(),
                block,
                blocks_count: self.sb.blocks_count,
            });
        }
        if !self.visited.insert(block) {
            return Err(self.loop_error(block, what));
        }
        self.budget.take(self.ino, 1)?;
        self.map.push_mapping(block);
        Ok(())
    }

    fn loop_error(&self, block: u64, what: &str) -> Error {
        let reason = format!("{what} {block} is referenced twice (loop or shared subtree)");
        Error::BadExtentTree {
            ino: self.ino,
            node: format!("block {block}"),
            reason,
        }
    }

    fn data_run(&mut self, logical: u64, physical: u64, len: u64, initialized: bool) -> Result<()> {
        if physical
            .checked_add(len)
            .is_none_or(|end| end > self.sb.blocks_count)
        {
            return Err(Error::BlockOutOfRange {
                ino: self.ino,
                what: format!("logical blocks {logical}..{}", logical.saturating_add(len)),
                block: physical,
                blocks_count: self.sb.blocks_count,
            });
        }
        self.budget.take(self.ino, len)?;
        self.map.push_run(Run {
            logical,
            physical,
            len,
            initialized,
        });
        Ok(())
    }

    /// Walks one extent-tree node; `block` is `None` for the root in `i_block`.
    fn extent_node(
        &mut self,
        node: &[u8],
        block: Option<u64>,
        expected_depth: Option<u16>,
    ) -> Result<()> {
        let ino = self.ino;
        let where_ = || block.map_or_else(|| "i_block".to_string(), |b| format!("block {b}"));
        let bad = |reason: String| Error::BadExtentTree {
            ino,
            node: where_(),
            reason,
        };
        let magic = u16_at(node, 0);
        if magic != EXTENT_MAGIC {
            return Err(bad(format!(
                "header magic 0x{magic:04x}, expected 0x{EXTENT_MAGIC:04x}"
            )));
        }
        let entries = usize::from(u16_at(node, 2));
        let max = usize::from(u16_at(node, 4));
        let depth = u16_at(node, 6);
        let capacity = node.len().saturating_sub(HEADER_LEN) / ENTRY_LEN;
        if max > capacity || entries > max {
            return Err(bad(format!(
                "{entries} entries, max {max}, but room for {capacity}"
            )));
        }
        match expected_depth {
            None if depth > MAX_EXTENT_DEPTH => {
                return Err(bad(format!(
                    "depth {depth} exceeds the maximum {MAX_EXTENT_DEPTH}"
                )));
            }
            Some(expected) if depth != expected => {
                return Err(bad(format!(
                    "depth {depth}, expected {expected} below its parent"
                )));
            }
            _ => {}
        }
        let entry = |i: usize| {
            node.get(HEADER_LEN + i * ENTRY_LEN..HEADER_LEN + (i + 1) * ENTRY_LEN)
                .unwrap_or_default()
        };
        if depth == 0 {
            for i in 0..entries {
                let e = entry(i);
                let logical = u64::from(u32_at(e, 0));
                let raw_len = u16_at(e, 4);
                let physical = u64::from(u16_at(e, 6)) << 32 | u64::from(u32_at(e, 8));
                let (len, initialized) = if raw_len > INIT_MAX_LEN {
                    (raw_len - INIT_MAX_LEN, false)
                } else {
                    (raw_len, true)
                };
                let len = u64::from(len);
                if len == 0 {
                    return Err(bad(format!("extent {i} (logical {logical}) has length 0")));
                }
                if logical < self.next_logical {
                    return Err(bad(format!(
                        "extent {i} starts at logical block {logical}, overlapping or out of order (mapped up to {})",
                        self.next_logical
                    )));
                }
                if logical + len > 1 << 32 {
                    return Err(bad(format!("extent {i} ends past logical block 2^32")));
                }
                self.data_run(logical, physical, len, initialized)?;
                self.next_logical = logical + len;
            }
            return Ok(());
        }
        let mut previous: Option<u32> = None;
        for i in 0..entries {
            let e = entry(i);
            let first_logical = u32_at(e, 0);
            let child = u64::from(u16_at(e, 8)) << 32 | u64::from(u32_at(e, 4));
            if previous.is_some_and(|p| first_logical <= p) {
                return Err(bad(format!(
                    "index {i} (logical {first_logical}) is out of order"
                )));
            }
            previous = Some(first_logical);
            self.enter_mapping_block(child, "extent tree block")?;
            let child_node = self.read_block(child, "extent tree block")?;
            self.extent_node(&child_node, Some(child), Some(depth - 1))?;
        }
        Ok(())
    }

    /// Walks the 12 direct pointers and the single, double and triple indirect trees.
    fn indirect_root(&mut self, i_block: &[u8; I_BLOCK_LEN]) -> Result<()> {
        for i in 0..DIRECT_BLOCKS {
            let block = u64::from(u32_at(i_block, i * 4));
            if block != 0 {
                self.data_run(i as u64, block, 1, true)?;
            }
        }
        let per_block = u64::from(self.sb.block_size / 4);
        let mut base = DIRECT_BLOCKS as u64;
        let mut span = per_block;
        for level in 1..=3u32 {
            let block = u64::from(u32_at(i_block, (DIRECT_BLOCKS + level as usize - 1) * 4));
            if block != 0 {
                self.indirect(block, level, base)?;
            }
            base += span;
            span *= per_block;
        }
        Ok(())
    }

    /// Walks an indirect block of `level` (1 = single) whose first pointer maps logical `base`.
    fn indirect(&mut self, block: u64, level: u32, base: u64) -> Result<()> {
        let what = match level {
            1 => "indirect block",
            2 => "double indirect block",
            _ => "triple indirect block",
        };
        self.enter_mapping_block(block, what)?;
        let pointers = self.read_block(block, what)?;
        let per_block = u64::from(self.sb.block_size / 4);
        let child_span = per_block.pow(level - 1);
        for (j, chunk) in pointers.chunks_exact(4).enumerate() {
            let target = u64::from(u32_at(chunk, 0));
            if target == 0 {
                continue;
            }
            let logical = base + j as u64 * child_span;
            if level == 1 {
                self.data_run(logical, target, 1, true)?;
            } else {
                self.indirect(target, level - 1, logical)?;
            }
        }
        Ok(())
    }
}
