//! The `diffgen inspect` report for an ext image: a serialisable summary, every file with its
//! runs, and the metadata block map, plus a human-readable text rendering.

use crate::filemap::Run;
use crate::inode::FileKind;
use crate::map::{BlockMap, OwnerRun};
use crate::scan::{FileEntry, Scan, Storage};
use crate::superblock::Superblock;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Filesystem-wide facts.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Volume label.
    pub label: String,
    /// Filesystem UUID.
    pub uuid: String,
    /// Block size in bytes.
    pub block_size: u32,
    /// Total blocks.
    pub blocks_count: u64,
    /// Free blocks according to the block map (bitmaps).
    pub free_blocks: u64,
    /// Free blocks recorded in the superblock.
    pub superblock_free_blocks: u64,
    /// Total inodes.
    pub inodes_count: u32,
    /// Free inodes recorded in the superblock.
    pub superblock_free_inodes: u32,
    /// On-disk inode size.
    pub inode_size: u16,
    /// Group descriptor size.
    pub desc_size: u16,
    /// Number of block groups.
    pub group_count: u32,
    /// Blocks per group.
    pub blocks_per_group: u32,
    /// Inodes per group.
    pub inodes_per_group: u32,
    /// Reserved GDT blocks per copy.
    pub reserved_gdt_blocks: u16,
    /// Feature names (dumpe2fs spelling).
    pub features: Vec<String>,
    /// Blocks holding backup superblocks.
    pub backup_superblocks: Vec<u64>,
    /// Internal journal inode, if any.
    pub journal_inode: Option<u32>,
    /// Whether the journal needs replay (metadata may be inconsistent).
    pub needs_recovery: bool,
    /// Regular files.
    pub regular_files: usize,
    /// Directories.
    pub directories: usize,
    /// Symbolic links.
    pub symlinks: usize,
    /// Other in-use inodes (devices, fifos, sockets, system inodes).
    pub other_inodes: usize,
    /// Blocks owned by something although the bitmap marks them free.
    pub owned_but_marked_free: u64,
}

/// Everything `diffgen inspect` shows about an ext image.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Filesystem summary.
    pub summary: Summary,
    /// Blocks per owner kind.
    pub blocks_by_kind: BTreeMap<&'static str, u64>,
    /// Every in-use inode with paths and runs, by inode number.
    pub files: Vec<FileEntry>,
    /// Block map runs that are not inode data (metadata, mapping blocks, xattrs, free space).
    pub metadata: Vec<OwnerRun>,
}

impl Report {
    pub(crate) fn new(
        sb: &Superblock,
        backup_superblocks: Vec<u64>,
        scan: Scan,
        map: &BlockMap,
    ) -> Self {
        let blocks_by_kind = map.blocks_by_kind();
        let count = |kind: FileKind| {
            scan.files
                .iter()
                .filter(|f| f.kind == kind && !f.paths.is_empty())
                .count()
        };
        let regular_files = count(FileKind::Regular);
        let directories = count(FileKind::Directory);
        let symlinks = count(FileKind::Symlink);
        let summary = Summary {
            label: sb.label.clone(),
            uuid: sb.uuid_string(),
            block_size: sb.block_size,
            blocks_count: sb.blocks_count,
            free_blocks: blocks_by_kind.get("free").copied().unwrap_or(0),
            superblock_free_blocks: sb.free_blocks_count,
            inodes_count: sb.inodes_count,
            superblock_free_inodes: sb.free_inodes_count,
            inode_size: sb.inode_size,
            desc_size: sb.desc_size,
            group_count: sb.group_count(),
            blocks_per_group: sb.blocks_per_group,
            inodes_per_group: sb.inodes_per_group,
            reserved_gdt_blocks: sb.reserved_gdt_blocks,
            features: sb.features.names(),
            backup_superblocks,
            journal_inode: (sb.journal_inum != 0).then_some(sb.journal_inum),
            needs_recovery: sb.needs_recovery(),
            regular_files,
            directories,
            symlinks,
            other_inodes: scan.files.len() - regular_files - directories - symlinks,
            owned_but_marked_free: map.owned_but_marked_free,
        };
        let metadata = map
            .runs
            .iter()
            .filter(|r| !r.owner.is_inode_data())
            .copied()
            .collect();
        Self {
            summary,
            blocks_by_kind,
            files: scan.files,
            metadata,
        }
    }

    /// Writes a human-readable rendering of the report.
    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let s = &self.summary;
        writeln!(out, "ext filesystem: label {:?}, uuid {}", s.label, s.uuid)?;
        writeln!(
            out,
            "  {} blocks of {} bytes ({} free), {} groups of {} blocks",
            s.blocks_count, s.block_size, s.free_blocks, s.group_count, s.blocks_per_group
        )?;
        writeln!(
            out,
            "  {} inodes of {} bytes ({} per group), {}-byte group descriptors, {} reserved GDT blocks",
            s.inodes_count, s.inode_size, s.inodes_per_group, s.desc_size, s.reserved_gdt_blocks
        )?;
        writeln!(out, "  features: {}", s.features.join(" "))?;
        writeln!(out, "  backup superblocks: {}", join(&s.backup_superblocks))?;
        match s.journal_inode {
            Some(ino) => writeln!(
                out,
                "  journal: inode {ino}{}",
                if s.needs_recovery {
                    " (needs recovery)"
                } else {
                    ""
                }
            )?,
            None => writeln!(out, "  journal: none")?,
        }
        writeln!(
            out,
            "  {} regular files, {} directories, {} symlinks, {} other inodes",
            s.regular_files, s.directories, s.symlinks, s.other_inodes
        )?;
        if s.owned_but_marked_free > 0 {
            writeln!(
                out,
                "  warning: {} owned blocks are marked free in the bitmaps",
                s.owned_but_marked_free
            )?;
        }
        writeln!(out, "blocks by owner:")?;
        for (kind, blocks) in &self.blocks_by_kind {
            writeln!(out, "  {kind:<26} {blocks}")?;
        }
        writeln!(out, "metadata map:")?;
        for run in &self.metadata {
            writeln!(out, "  {:>10}..{:<10} {}", run.start, run.end(), run.owner)?;
        }
        writeln!(out, "files:")?;
        for f in &self.files {
            let names = if f.paths.is_empty() {
                "(unlinked)".to_string()
            } else {
                f.paths.join(" ")
            };
            writeln!(
                out,
                "  inode {} {:?}/{:?} mode {:06o} uid {} gid {} links {} size {} {}{}",
                f.ino,
                f.kind,
                f.role,
                f.mode,
                f.uid,
                f.gid,
                f.links,
                f.size,
                names,
                if f.escaped_name { " (escaped)" } else { "" }
            )?;
            match f.storage {
                Storage::Blocks if !f.runs.is_empty() => {
                    writeln!(out, "    runs: {}", runs_text(&f.runs))?
                }
                Storage::Inline => writeln!(out, "    inline data")?,
                Storage::FastSymlink => writeln!(out, "    fast symlink")?,
                _ => {}
            }
            if !f.mapping_blocks.is_empty() {
                let ranges: Vec<String> = f
                    .mapping_blocks
                    .iter()
                    .map(|m| format!("{}..{}", m.start, m.end()))
                    .collect();
                writeln!(out, "    mapping blocks: {}", ranges.join(", "))?;
            }
            if let Some(block) = f.xattr_block {
                writeln!(out, "    xattr block: {block}")?;
            }
        }
        Ok(())
    }
}

fn join(values: &[u64]) -> String {
    if values.is_empty() {
        return "none".to_string();
    }
    values
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `logical+len@physical`, with `(uninit)` for uninitialised runs.
fn runs_text(runs: &[Run]) -> String {
    let parts: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{}+{}@{}{}",
                r.logical,
                r.len,
                r.physical,
                if r.initialized { "" } else { "(uninit)" }
            )
        })
        .collect();
    parts.join(", ")
}
