//! Read-only ext2/ext3/ext4 image reader for diffgen's delta planner and `diffgen inspect`.
//!
//! Opens an image through positioned reads ([`ReadAt`]), never loading it whole: memory use is
//! bounded by the metadata (inode count, block-map runs), not the image size. It yields:
//!
//! * every in-use inode with all its paths, attributes and data runs ([`Filesystem::scan`]);
//! * the owner of every block, as sorted runs ([`Filesystem::block_map`]);
//! * file contents through the block map ([`Filesystem::read_file`]);
//! * a serialisable report with a text rendering ([`Filesystem::report`]).
//!
//! Hostile images give an [`Error`] (never a panic, a hang or an unbounded allocation). An image
//! that is not ext2/3/4 at all gives [`Error::NotExt`].
//!
//! ```no_run
//! use std::io::Read;
//! let fs = ext4::Filesystem::open(std::fs::File::open("rootfs.ext4")?)?;
//! let scan = fs.scan()?;
//! let map = fs.block_map(&scan)?;
//! let passwd = scan.by_path("/etc/passwd").expect("present");
//! let mut text = String::new();
//! fs.read_file(passwd).read_to_string(&mut text)?;
//! println!("{} runs, first block owned by {:?}", map.runs.len(), map.owner(0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod dir;
mod error;
mod filemap;
mod inode;
mod io;
mod layout;
mod le;
mod map;
mod reader;
mod report;
mod scan;
mod superblock;

pub use error::{Error, Result};
pub use filemap::Run;
pub use inode::FileKind;
pub use io::ReadAt;
pub use layout::{BlockRange, Group};
pub use map::{BlockMap, Owner, OwnerRun};
pub use reader::FileReader;
pub use report::{Report, Summary};
pub use scan::{FileEntry, Role, Scan, Storage, PATH_LIMIT};
pub use superblock::{Features, Superblock};

use superblock::{SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE};

/// An opened ext2/3/4 image: validated superblock and group descriptors.
#[derive(Debug)]
pub struct Filesystem<R> {
    image: io::Image<R>,
    superblock: Superblock,
    groups: Vec<Group>,
}

impl<R: ReadAt> Filesystem<R> {
    /// Opens an image that fills the whole reader.
    pub fn open(reader: R) -> Result<Self> {
        Self::from_image(io::Image::whole(reader)?)
    }

    /// Opens an image of `len` bytes starting at byte `offset` of the reader (e.g. an
    /// uncompressed member inside a SWU archive).
    pub fn open_at(reader: R, offset: u64, len: u64) -> Result<Self> {
        Self::from_image(io::Image::new(reader, offset, len)?)
    }

    fn from_image(image: io::Image<R>) -> Result<Self> {
        let needed = SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE as u64;
        if image.len() < needed {
            return Err(Error::NotExt {
                reason: format!(
                    "image is {} bytes, too small to hold a superblock ({needed} bytes)",
                    image.len()
                ),
            });
        }
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        image.read_exact_at(&mut raw, SUPERBLOCK_OFFSET, "superblock")?;
        let superblock = Superblock::parse(&raw, image.len())?;
        let groups = layout::read_groups(&image, &superblock)?;
        Ok(Self {
            image,
            superblock,
            groups,
        })
    }

    /// The primary superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.superblock
    }

    /// Every block group with its metadata locations.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Blocks holding backup superblocks.
    pub fn backup_superblocks(&self) -> Vec<u64> {
        self.groups
            .iter()
            .filter(|g| g.number > 0)
            .filter_map(|g| g.superblock)
            .collect()
    }

    /// Reads every in-use inode, its block map, and its paths.
    pub fn scan(&self) -> Result<Scan> {
        scan::scan(&self.image, &self.superblock, &self.groups)
    }

    /// The owner of every block; fails if two owners claim one block.
    pub fn block_map(&self, scan: &Scan) -> Result<BlockMap> {
        map::build(&self.image, &self.superblock, &self.groups, scan)
    }

    /// Streams the content of `file` (holes and uninitialised extents as zeros).
    pub fn read_file<'a>(&'a self, file: &'a FileEntry) -> FileReader<'a, R> {
        FileReader::new(&self.image, self.superblock.block_size, file)
    }

    /// Scans, maps, and summarises the filesystem for `diffgen inspect`.
    pub fn report(&self) -> Result<Report> {
        let scan = self.scan()?;
        let map = self.block_map(&scan)?;
        Ok(Report::new(
            &self.superblock,
            self.backup_superblocks(),
            scan,
            &map,
        ))
    }
}
