//! Random-access data sources the reader and the applier share: files and block devices read
//! by positioned reads, ranges and concatenations of sources, zeros, and a sequential reader
//! over any of them.
//!
//! They all implement [`ReadAt`] (codec's trait, which the bspatch decoder consumes directly).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

pub use codec::bsdiff::ReadAt;

/// Buffer size for sequential reading and hashing.
pub const IO_CHUNK: usize = 64 * 1024;

/// A file or block device read by offset. The length is taken once at open (block devices
/// report 0 in their metadata, so it is found by seeking to the end).
#[derive(Debug, Clone)]
pub struct FileAt {
    file: Arc<File>,
    len: u64,
}

impl FileAt {
    pub fn open(path: &Path) -> io::Result<FileAt> {
        FileAt::from_file(File::open(path)?)
    }

    pub fn from_file(mut file: File) -> io::Result<FileAt> {
        let len = file.seek(SeekFrom::End(0))?;
        Ok(FileAt {
            file: Arc::new(file),
            len,
        })
    }
}

impl ReadAt for FileAt {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.len - offset).unwrap_or(usize::MAX));
        positioned_read(&self.file, offset, &mut buf[..want])
    }
}

#[cfg(unix)]
fn positioned_read(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn positioned_read(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// Bytes `[start, start + len)` of another source.
#[derive(Clone)]
pub struct RangeAt<S> {
    inner: S,
    start: u64,
    len: u64,
}

impl<S: ReadAt> RangeAt<S> {
    /// Fails when the range does not lie inside `inner`.
    pub fn new(inner: S, start: u64, len: u64) -> io::Result<RangeAt<S>> {
        if start.checked_add(len).is_none_or(|end| end > inner.size()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "range [{start}, +{len}) lies outside a source of {} bytes",
                    inner.size()
                ),
            ));
        }
        Ok(RangeAt { inner, start, len })
    }
}

impl<S: ReadAt> ReadAt for RangeAt<S> {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.len - offset).unwrap_or(usize::MAX));
        self.inner.read_at(self.start + offset, &mut buf[..want])
    }
}

/// `len` zero bytes.
#[derive(Debug, Clone, Copy)]
pub struct ZerosAt {
    pub len: u64,
}

impl ReadAt for ZerosAt {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(offset);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        buf[..n].fill(0);
        Ok(n)
    }
}

/// Shared handle to any random-access source.
pub type SharedAt = Rc<dyn ReadAt>;

/// Sources one after the other.
pub struct ChainAt {
    /// (start offset of the part, part), by increasing start.
    parts: Vec<(u64, SharedAt)>,
    len: u64,
}

impl ChainAt {
    pub fn new(parts: Vec<SharedAt>) -> ChainAt {
        let mut start = 0u64;
        let mut placed = Vec::with_capacity(parts.len());
        for p in parts {
            let size = p.size();
            placed.push((start, p));
            start = start.saturating_add(size);
        }
        ChainAt {
            parts: placed,
            len: start,
        }
    }
}

impl ReadAt for ChainAt {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        // The last part starting at or before `offset`.
        let index = self
            .parts
            .partition_point(|(start, _)| *start <= offset)
            .saturating_sub(1);
        let mut done = 0;
        for (start, part) in &self.parts[index..] {
            let at = offset + done as u64;
            if done == buf.len() || at >= self.len {
                break;
            }
            let within = at - start;
            if within >= part.size() {
                continue; // an empty part
            }
            let n = part.read_at(within, &mut buf[done..])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "chain part is shorter than it claims",
                ));
            }
            done += n;
            if (within + n as u64) < part.size() {
                break; // a short read inside a part; let the caller ask again
            }
        }
        Ok(done)
    }
}

/// Reads a random-access source from start to end.
pub struct SeqReader<S> {
    inner: S,
    pos: u64,
}

impl<S: ReadAt> SeqReader<S> {
    pub fn new(inner: S) -> Self {
        SeqReader { inner, pos: 0 }
    }
}

impl<S: ReadAt> Read for SeqReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read_at(self.pos, buf)?;
        if n == 0 && !buf.is_empty() && self.pos < self.inner.size() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("source ended at byte {} of {}", self.pos, self.inner.size()),
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_ranges_and_zeros_compose() {
        let a: SharedAt = Rc::new(b"hello ".to_vec());
        let z: SharedAt = Rc::new(ZerosAt { len: 3 });
        let empty: SharedAt = Rc::new(Vec::new());
        let w: SharedAt = Rc::new(RangeAt::new(b"xxworldxx".to_vec(), 2, 5).unwrap());
        let chain = ChainAt::new(vec![a, empty, z, w]);
        assert_eq!(chain.size(), 14);
        let mut all = Vec::new();
        SeqReader::new(&chain).read_to_end(&mut all).unwrap();
        assert_eq!(all, b"hello \0\0\0world");
        let mut buf = [0u8; 6];
        chain.read_exact_at(4, &mut buf).unwrap();
        assert_eq!(&buf, b"o \0\0\0w");
        assert!(RangeAt::new(b"abc".to_vec(), 2, 2).is_err());
        assert!(RangeAt::new(b"abc".to_vec(), u64::MAX, 2).is_err());
    }
}
