//! The file inventory: every in-use inode read from the inode tables (with its block map), then
//! named by walking the directory tree from the root.

use crate::dir::{escape_name, for_each_entry};
use crate::error::{Error, Result};
use crate::filemap::{map_inode, Budget, Run};
use crate::inode::{flags, FileKind, Inode, I_BLOCK_LEN};
use crate::io::{Image, ReadAt};
use crate::layout::{BlockRange, Group};
use crate::superblock::{compat, incompat, Superblock};
use serde::Serialize;
use std::collections::HashMap;

/// Longest path the walk builds; deeper nesting is rejected so path memory stays bounded.
pub const PATH_LIMIT: usize = 4096;
/// Inode-table bytes read per request while scanning.
const INODE_CHUNK_BYTES: usize = 64 * 1024;
const ROOT_INO: u32 = 2;
const BAD_BLOCKS_INO: u32 = 1;
const RESIZE_INO: u32 = 7;
/// Index of the double-indirect pointer in `i_block`, which the resize inode uses.
const DIND_SLOT: usize = 13;

/// What an inode is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An ordinary file, directory or symlink (including the root directory).
    Normal,
    /// The journal (`s_journal_inum`, usually inode 8).
    Journal,
    /// The resize inode (7), whose double-indirect block tracks the reserved GDT blocks.
    ResizeInode,
    /// The bad-blocks inode (1).
    BadBlocks,
    /// A quota file (`s_usr/grp/prj_quota_inum`).
    Quota,
    /// The orphan file (`s_orphan_file_inum`).
    OrphanFile,
    /// Another reserved inode below `s_first_ino`.
    Reserved,
}

/// How a file's content is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// In data blocks described by `runs`.
    Blocks,
    /// Inline data: in `i_block` plus the `system.data` extended attribute.
    Inline,
    /// A fast symlink: the target is in `i_block`.
    FastSymlink,
    /// No content (devices, fifos, sockets, the resize inode).
    None,
}

/// One in-use inode with its names and block map.
#[derive(Clone, Debug, Serialize)]
pub struct FileEntry {
    /// Inode number.
    pub ino: u32,
    /// File type.
    pub kind: FileKind,
    /// System role.
    pub role: Role,
    /// Every path naming this inode (several for hard links; empty when unreachable), sorted.
    /// The root is `/`.
    pub paths: Vec<String>,
    /// Whether some path component had bytes escaped as `\xNN` (not valid UTF-8, or `/`/NUL).
    pub escaped_name: bool,
    /// Size in bytes.
    pub size: u64,
    /// `i_mode` (type and permission bits).
    pub mode: u16,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Hard link count.
    pub links: u16,
    /// Where the content is.
    pub storage: Storage,
    /// Data runs sorted by logical block (empty unless `storage` is `Blocks`).
    pub runs: Vec<Run>,
    /// Extent-tree nodes below the root / indirect blocks this file owns.
    pub mapping_blocks: Vec<BlockRange>,
    /// Extended attribute block (`i_file_acl`), possibly shared with other inodes.
    pub xattr_block: Option<u64>,
    /// Inline content (inline data or fast symlink target); for inline directories the raw
    /// `i_block` followed by `system.data`.
    #[serde(skip)]
    pub(crate) inline: Vec<u8>,
}

impl FileEntry {
    /// Number of data blocks (initialised or not) the file owns.
    pub fn data_blocks(&self) -> u64 {
        self.runs.iter().map(|r| r.len).sum()
    }
}

/// Every in-use inode of the filesystem, sorted by inode number.
#[derive(Clone, Debug, Serialize)]
pub struct Scan {
    /// Files, directories, symlinks, special files and system inodes, by inode number.
    pub files: Vec<FileEntry>,
}

impl Scan {
    /// The entry of inode `ino`, if in use.
    pub fn file(&self, ino: u32) -> Option<&FileEntry> {
        self.files
            .binary_search_by_key(&ino, |f| f.ino)
            .ok()
            .and_then(|i| self.files.get(i))
    }

    /// The entry one of whose paths is `path` (e.g. `/etc/passwd`).
    pub fn by_path(&self, path: &str) -> Option<&FileEntry> {
        self.files
            .iter()
            .find(|f| f.paths.iter().any(|p| p == path))
    }
}

/// Reads every in-use inode and names them by walking the directories.
pub(crate) fn scan<R: ReadAt>(image: &Image<R>, sb: &Superblock, groups: &[Group]) -> Result<Scan> {
    let mut budget = Budget::new(sb.blocks_count);
    let mut files = Vec::new();
    for group in groups {
        scan_group(image, sb, group, &mut budget, &mut files)?;
    }
    walk_directories(image, sb, &mut files)?;
    for file in &mut files {
        file.paths.sort();
    }
    Ok(Scan { files })
}

fn scan_group<R: ReadAt>(
    image: &Image<R>,
    sb: &Superblock,
    group: &Group,
    budget: &mut Budget,
    files: &mut Vec<FileEntry>,
) -> Result<()> {
    let csum = sb.features.group_desc_csum();
    if csum && group.inode_uninit() {
        return Ok(());
    }
    let per_group = sb.inodes_per_group;
    let limit = if csum {
        per_group - group.itable_unused
    } else {
        per_group
    };
    let block_size = u64::from(sb.block_size);
    let mut bitmap = vec![0u8; sb.block_size as usize];
    image.read_exact_at(&mut bitmap, group.inode_bitmap * block_size, "inode bitmap")?;
    let in_use = |i: u32| {
        bitmap
            .get((i / 8) as usize)
            .is_some_and(|byte| byte & (1 << (i % 8)) != 0)
    };

    let inode_size = usize::from(sb.inode_size);
    let per_chunk = u32::try_from((INODE_CHUNK_BYTES / inode_size).max(1)).unwrap_or(1);
    let mut chunk = Vec::new();
    let mut start = 0u32;
    while start < limit {
        let end = limit.min(start.saturating_add(per_chunk));
        if (start..end).any(in_use) {
            chunk.resize((end - start) as usize * inode_size, 0);
            let offset =
                group.inode_table.start * block_size + u64::from(start) * inode_size as u64;
            image.read_exact_at(&mut chunk, offset, "inode table")?;
            for i in (start..end).filter(|&i| in_use(i)) {
                let at = (i - start) as usize * inode_size;
                let raw = chunk.get(at..at + inode_size).unwrap_or_default();
                let ino = group.number * per_group + i + 1;
                let inode = Inode::parse(sb, ino, raw);
                if let Some(entry) = entry_from_inode(image, sb, inode, budget)? {
                    files.push(entry);
                }
            }
        }
        start = end;
    }
    Ok(())
}

fn role_of(sb: &Superblock, ino: u32) -> Role {
    if ino == BAD_BLOCKS_INO {
        Role::BadBlocks
    } else if ino == RESIZE_INO && sb.features.has_compat(compat::RESIZE_INODE) {
        Role::ResizeInode
    } else if ino == sb.journal_inum {
        Role::Journal
    } else if [sb.usr_quota_inum, sb.grp_quota_inum, sb.prj_quota_inum].contains(&ino) {
        Role::Quota
    } else if ino == sb.orphan_file_inum {
        Role::OrphanFile
    } else if ino < sb.first_ino && ino != ROOT_INO {
        Role::Reserved
    } else {
        Role::Normal
    }
}

/// Builds the entry for an in-use inode; `None` for reserved inodes that were never set up.
fn entry_from_inode<R: ReadAt>(
    image: &Image<R>,
    sb: &Superblock,
    inode: Inode,
    budget: &mut Budget,
) -> Result<Option<FileEntry>> {
    let ino = inode.ino;
    let role = role_of(sb, ino);
    let bad = |reason: String| Error::BadInode { ino, reason };
    if inode.mode == 0 && !matches!(role, Role::BadBlocks | Role::ResizeInode) {
        return Ok(None);
    }
    if inode.kind == FileKind::Unknown && inode.mode != 0 {
        return Err(bad(format!("invalid file type in mode 0o{:o}", inode.mode)));
    }
    let mut entry = FileEntry {
        ino,
        kind: inode.kind,
        role,
        paths: Vec::new(),
        escaped_name: false,
        size: inode.size,
        mode: inode.mode,
        uid: inode.uid,
        gid: inode.gid,
        links: inode.links,
        storage: Storage::None,
        runs: Vec::new(),
        mapping_blocks: Vec::new(),
        xattr_block: None,
        inline: Vec::new(),
    };
    if inode.file_acl != 0 {
        if inode.file_acl >= sb.blocks_count {
            return Err(Error::BlockOutOfRange {
                ino,
                what: "its extended attribute block".to_string(),
                block: inode.file_acl,
                blocks_count: sb.blocks_count,
            });
        }
        entry.xattr_block = Some(inode.file_acl);
    }

    if role == Role::ResizeInode {
        // Its block map describes the reserved GDT blocks and their backups, which the group
        // layout already accounts for; only the double-indirect block itself is its own.
        let dind = u64::from(crate::le::u32_at(&inode.i_block, DIND_SLOT * 4));
        if dind != 0 {
            if dind >= sb.blocks_count {
                return Err(Error::BlockOutOfRange {
                    ino,
                    what: "its double indirect block".to_string(),
                    block: dind,
                    blocks_count: sb.blocks_count,
                });
            }
            budget.take(ino, 1)?;
            entry.mapping_blocks.push(BlockRange {
                start: dind,
                len: 1,
            });
        }
        return Ok(Some(entry));
    }

    if inode.has_flag(flags::INLINE_DATA) {
        let mut data = inode.i_block.to_vec();
        data.extend_from_slice(&inode.inline_data_tail()?);
        if inode.kind != FileKind::Directory {
            let size = usize::try_from(inode.size)
                .ok()
                .filter(|&s| s <= data.len())
                .ok_or_else(|| {
                    bad(format!(
                        "inline data size {} exceeds the {} bytes stored inline",
                        inode.size,
                        data.len()
                    ))
                })?;
            data.truncate(size);
        }
        entry.storage = Storage::Inline;
        entry.inline = data;
    } else if inode.is_fast_symlink(sb.block_size) {
        let len = usize::try_from(inode.size)
            .unwrap_or(I_BLOCK_LEN)
            .min(I_BLOCK_LEN);
        entry.storage = Storage::FastSymlink;
        entry.inline = inode.i_block.get(..len).unwrap_or_default().to_vec();
    } else if inode.kind.has_block_map() {
        let map = map_inode(image, sb, &inode, inode.has_flag(flags::EXTENTS), budget)?;
        entry.storage = Storage::Blocks;
        entry.runs = map.runs;
        entry.mapping_blocks = map.mapping;
    }
    Ok(Some(entry))
}

/// Names every reachable inode by walking directories depth-first from the root.
fn walk_directories<R: ReadAt>(
    image: &Image<R>,
    sb: &Superblock,
    files: &mut [FileEntry],
) -> Result<()> {
    let index_of = |files: &[FileEntry], ino: u32| files.binary_search_by_key(&ino, |f| f.ino).ok();
    let root = index_of(files, ROOT_INO).ok_or_else(|| Error::BadInode {
        ino: ROOT_INO,
        reason: "the root directory is not in use".to_string(),
    })?;
    let Some(root_entry) = files.get_mut(root) else {
        return Ok(());
    };
    if root_entry.kind != FileKind::Directory {
        return Err(Error::BadInode {
            ino: ROOT_INO,
            reason: format!("the root is a {:?}, not a directory", root_entry.kind),
        });
    }
    root_entry.paths.push("/".to_string());

    let mut directory_paths: HashMap<u32, String> = HashMap::from([(ROOT_INO, "/".to_string())]);
    // (index into `files`, path prefix for children: "" for the root so children are "/name")
    let mut stack: Vec<(usize, String)> = vec![(root, String::new())];
    while let Some((dir_index, prefix)) = stack.pop() {
        let Some(dir) = files.get(dir_index) else {
            continue;
        };
        let entries = read_dir_entries(image, sb, dir)?;
        for (ino, name) in entries {
            if name == b"." || name == b".." {
                continue;
            }
            let (component, escaped) = escape_name(&name);
            let path = format!("{prefix}/{component}");
            if ino > sb.inodes_count {
                return Err(Error::BadEntryInode {
                    path,
                    ino,
                    reason: format!(
                        "is out of range (the filesystem has {} inodes)",
                        sb.inodes_count
                    ),
                });
            }
            let Some((child_index, child)) =
                index_of(files, ino).and_then(|i| files.get_mut(i).map(|f| (i, f)))
            else {
                return Err(Error::BadEntryInode {
                    path,
                    ino,
                    reason: "is not in use".to_string(),
                });
            };
            if path.len() > PATH_LIMIT {
                let prefix = path.chars().take(80).collect();
                return Err(Error::PathTooLong {
                    ino,
                    limit: PATH_LIMIT,
                    prefix,
                });
            }
            if child.kind == FileKind::Directory {
                if let Some(first) = directory_paths.get(&ino) {
                    return Err(Error::DirectoryCycle {
                        ino,
                        first: first.clone(),
                        second: path,
                    });
                }
                directory_paths.insert(ino, path.clone());
                stack.push((child_index, path.clone()));
            }
            child.paths.push(path);
            child.escaped_name |= escaped;
        }
    }
    Ok(())
}

/// Live entries of one directory as (inode, name), in on-disk order.
fn read_dir_entries<R: ReadAt>(
    image: &Image<R>,
    sb: &Superblock,
    dir: &FileEntry,
) -> Result<Vec<(u32, Vec<u8>)>> {
    let filetype = sb.features.has_incompat(incompat::FILETYPE);
    let mut out = Vec::new();
    let mut collect = |e: crate::dir::DirEntry<'_>| {
        out.push((e.ino, e.name.to_vec()));
        Ok(())
    };
    match dir.storage {
        Storage::Inline => {
            // i_block starts with the parent's inode number (the implicit ".."), then entries.
            let head = dir.inline.get(4..I_BLOCK_LEN).unwrap_or_default();
            for_each_entry(
                head,
                sb.block_size,
                filetype,
                dir.ino,
                &|| "inline data (i_block)".to_string(),
                &mut collect,
            )?;
            let tail = dir.inline.get(I_BLOCK_LEN..).unwrap_or_default();
            for_each_entry(
                tail,
                sb.block_size,
                filetype,
                dir.ino,
                &|| "inline data (system.data)".to_string(),
                &mut collect,
            )?;
        }
        Storage::Blocks => {
            let block_size = u64::from(sb.block_size);
            let blocks_in_size = dir.size.div_ceil(block_size);
            let mut block = vec![0u8; sb.block_size as usize];
            for run in dir.runs.iter().filter(|r| r.initialized) {
                for k in 0..run.len {
                    let logical = run.logical + k;
                    if logical >= blocks_in_size {
                        break;
                    }
                    image.read_exact_at(
                        &mut block,
                        (run.physical + k) * block_size,
                        "directory block",
                    )?;
                    let location = || format!("logical block {logical}");
                    for_each_entry(
                        &block,
                        sb.block_size,
                        filetype,
                        dir.ino,
                        &location,
                        &mut collect,
                    )?;
                }
            }
        }
        Storage::FastSymlink | Storage::None => {}
    }
    Ok(out)
}
