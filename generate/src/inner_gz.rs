//! gzip files inside a target filesystem that the device can re-create from their text.
//!
//! A changed man page or changelog (`gzip -9n`, as Debian packages them) differs from its old
//! version in every byte after the first change, so a diff of the two compressed files is
//! nearly as large as the file. Most such files are exactly what zlib writes at level 9 with
//! the device's fixed header, so the device can rebuild them with `zlib_compression` from
//! their uncompressed content — and that content is a small diff against the old version's
//! content, which the device gets with `zlib_decompression` of the old file. On a Debian
//! point release this turns about half a megabyte of diffs of deflate streams into a few
//! kilobytes. Larger man pages and changelogs are what GNU gzip writes and zlib does not (see
//! [`codec::gnu_gzip`]); where the device has diffgen's applier (zstd profile) they are
//! re-created with the `gnu_gzip_compression` extension.

use std::io::Read;

use codec::zlib::{self, Container, DeflateParams};

use crate::content;
use crate::reference::{first_data, gather_file, Layout, ReferenceFinder, Stretch};

/// Levels tried: packagers use `gzip -9`; 6 is gzip's default.
const LEVELS: [i32; 2] = [9, 6];
/// GNU gzip levels tried, in the same order.
const GNU_LEVELS: [u32; 2] = [9, 6];
/// Largest uncompressed content considered (it is held in memory while planning).
pub const MAX_CONTENT: u64 = 64 << 20;
/// Smaller files are cheaper as they are.
const MIN_FILE: u64 = 64;
/// A new gzip file (no old version) is re-created from its text only from this size on: its
/// text then compresses (with the other new bytes) enough better than the deflate stream to
/// pay for the two recipes it needs (about 250 bytes).
const MIN_NEW_FILE: u64 = 512;

/// How the device re-creates a gzip file from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recreate {
    /// `zlib_compression` (any applier).
    Zlib(DeflateParams),
    /// `gnu_gzip_compression` at this level (diffgen's applier).
    GnuGzip(u32),
}

/// A changed gzip file of the target filesystem that the device can re-create.
pub struct InnerGz {
    /// The file's path in the target filesystem.
    pub path: String,
    /// The file as stretches of the target content, in file order.
    pub layout: Layout,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// How the device re-creates the file from `content`.
    pub recreate: Recreate,
    pub content: Vec<u8>,
    /// The old version: its compressed bytes as stretches of the source content, and its
    /// uncompressed content. `None` for a new file.
    pub old: Option<(Layout, Vec<u8>)>,
}

/// Finds the gzip files of the target filesystem that changed from an old gzip version, or are
/// new (from [`MIN_NEW_FILE`] bytes on), and that zlib (or, with `gnu_gzip`, GNU gzip's deflate)
/// re-creates byte for byte. `target` and `source` are the contents `finder` was made for.
pub fn find(
    target: &[u8],
    source: &[u8],
    finder: &ReferenceFinder,
    gnu_gzip: bool,
) -> Vec<InnerGz> {
    let mut found = Vec::new();
    for file in finder.files() {
        // The whole file must be laid out (not inline data); holes read as zeros.
        let len: u64 = file.target.iter().map(Stretch::size).sum();
        if len != file.size || !(MIN_FILE..=MAX_CONTENT).contains(&len) {
            continue;
        }
        if file.old.is_none() && len < MIN_NEW_FILE {
            continue;
        }
        let Some(first) = first_data(file.target) else {
            continue; // starts with a hole: not gzip
        };
        if !is_gzip(&target[first as usize..]) {
            continue;
        }
        let new_bytes = gather_file(target, file.target);
        let new_bytes = new_bytes.as_slice();
        let old = match file.old {
            Some(old_layout) => {
                let old_bytes = gather_file(source, old_layout);
                if old_bytes == new_bytes || !is_gzip(&old_bytes) {
                    continue;
                }
                let Some(old_content) = gunzip(&old_bytes) else {
                    continue;
                };
                Some((old_layout.clone(), old_content))
            }
            None => None,
        };
        let Some(content) = gunzip(new_bytes) else {
            continue;
        };
        let recreate = match content::reproduce_gzip(&content, new_bytes, &LEVELS) {
            Some(params) => Recreate::Zlib(params),
            None if gnu_gzip => {
                match content::reproduce_gnu_gzip(&content, new_bytes, &GNU_LEVELS) {
                    Some(level) => Recreate::GnuGzip(level),
                    None => continue,
                }
            }
            None => continue,
        };
        found.push(InnerGz {
            path: file.path.to_string(),
            layout: file.target.clone(),
            bytes: new_bytes.to_vec(),
            recreate,
            content,
            old,
        });
    }
    found
}

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b, 0x08])
}

/// The first gzip member's content, as the device's `zlib_decompression` reads it; `None`
/// if it does not decode or is larger than [`MAX_CONTENT`].
fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    zlib::inflater(Container::Gzip, bytes, false)
        .take(MAX_CONTENT + 1)
        .read_to_end(&mut out)
        .ok()?;
    (!out.is_empty() && out.len() as u64 <= MAX_CONTENT).then_some(out)
}
