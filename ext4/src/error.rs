//! The error type of the crate: every way reading an image can fail, each saying what and where.

use std::io;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading an image.
///
/// [`Error::NotExt`] means "this is not an ext2/3/4 filesystem at all" (the planner treats such an
/// image as an opaque blob); every other variant means the image claims to be ext2/3/4 but cannot
/// be read safely (corrupt, truncated, or using a feature this reader does not support).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The underlying reader failed.
    #[error("I/O error reading {len} bytes at image byte offset {offset}: {source}")]
    Io {
        /// Byte offset inside the image (relative to the image start, not the containing file).
        offset: u64,
        /// Number of bytes requested.
        len: usize,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// The image is not an ext2/3/4 filesystem (bad magic or too small to hold a superblock).
    #[error("not an ext2/3/4 filesystem: {reason}")]
    NotExt {
        /// Why, e.g. the magic number found and where.
        reason: String,
    },

    /// The filesystem uses a feature this reader cannot interpret safely.
    #[error("unsupported ext4 feature: {feature}")]
    Unsupported {
        /// Feature name (or `incompat 0x...` for unknown bits).
        feature: String,
    },

    /// A read would go past the end of the image.
    #[error("image is truncated: {what} needs bytes {offset}..{end} but the image has {image_len} bytes")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Start byte offset of the read.
        offset: u64,
        /// End byte offset (exclusive) of the read.
        end: u64,
        /// Image length in bytes.
        image_len: u64,
    },

    /// The superblock holds inconsistent or absurd values.
    #[error("corrupt superblock (image byte offset 1024): {reason}")]
    BadSuperblock {
        /// What is wrong.
        reason: String,
    },

    /// A block group descriptor holds inconsistent values.
    #[error("corrupt descriptor of block group {group}: {reason}")]
    BadGroup {
        /// Block group number.
        group: u32,
        /// What is wrong.
        reason: String,
    },

    /// An inode holds inconsistent values.
    #[error("corrupt inode {ino}: {reason}")]
    BadInode {
        /// Inode number.
        ino: u32,
        /// What is wrong.
        reason: String,
    },

    /// An extent tree node is malformed (bad magic, depth, counts, ordering, or a loop).
    #[error("corrupt extent tree of inode {ino} in {node}: {reason}")]
    BadExtentTree {
        /// Inode number.
        ino: u32,
        /// Which node: `i_block` (the root inside the inode) or `block N`.
        node: String,
        /// What is wrong.
        reason: String,
    },

    /// A block map (extent or indirect) points outside the filesystem.
    #[error("inode {ino} maps {what} to block {block}, past the end of the filesystem ({blocks_count} blocks)")]
    BlockOutOfRange {
        /// Inode number.
        ino: u32,
        /// What the pointer is for, e.g. `logical block 12` or `indirect block`.
        what: String,
        /// The offending physical block number.
        block: u64,
        /// Number of blocks in the filesystem.
        blocks_count: u64,
    },

    /// More blocks are claimed than the filesystem has: overlapping, shared or looping block maps.
    #[error("inode {ino}: block maps claim more blocks than the filesystem has ({blocks_count}); overlapping or looping block maps")]
    TooManyBlocks {
        /// Inode whose map exceeded the budget.
        ino: u32,
        /// Number of blocks in the filesystem.
        blocks_count: u64,
    },

    /// A directory entry is malformed.
    #[error("corrupt directory entry in directory inode {dir}, {location}, byte offset {offset}: {reason}")]
    BadDirEntry {
        /// Directory inode number.
        dir: u32,
        /// Where: `logical block N` or `inline data`.
        location: String,
        /// Byte offset of the entry inside that block or region.
        offset: usize,
        /// What is wrong.
        reason: String,
    },

    /// A directory entry names an inode that does not exist or is not in use.
    #[error("directory entry {path} refers to inode {ino}, which {reason}")]
    BadEntryInode {
        /// Path of the entry.
        path: String,
        /// The inode number it names.
        ino: u32,
        /// Why it is invalid.
        reason: String,
    },

    /// A directory is reachable twice: a cycle or a hard-linked directory.
    #[error("directory inode {ino} is reachable both as {first} and as {second} (directory cycle or hard-linked directory)")]
    DirectoryCycle {
        /// Directory inode number.
        ino: u32,
        /// First path it was found at.
        first: String,
        /// Second path it was found at.
        second: String,
    },

    /// A path grew past the limit (deep or cyclic nesting).
    #[error("path of inode {ino} exceeds {limit} bytes: {prefix}...")]
    PathTooLong {
        /// Inode the path leads to.
        ino: u32,
        /// Limit in bytes.
        limit: usize,
        /// The first bytes of the path.
        prefix: String,
    },

    /// Two owners claim the same block.
    #[error("block {block} is claimed twice: by {first} and by {second}")]
    OverlappingOwners {
        /// First block claimed by both.
        block: u64,
        /// The first claimant.
        first: String,
        /// The second claimant.
        second: String,
    },
}
