//! Streaming a file's content through its block map: holes and uninitialised extents read as
//! zeros, inline data and fast symlink targets come from the inode.

use crate::io::{Image, ReadAt};
use crate::scan::{FileEntry, Storage};
use std::io;

/// Reads one file's bytes (`size` bytes in total, none for [`Storage::None`]); created by
/// [`crate::Filesystem::read_file`].
#[derive(Debug)]
pub struct FileReader<'a, R> {
    image: &'a Image<R>,
    block_size: u64,
    file: &'a FileEntry,
    pos: u64,
    /// Index of the first run that may still contain `pos` (runs are sorted by logical block).
    run: usize,
}

impl<'a, R: ReadAt> FileReader<'a, R> {
    pub(crate) fn new(image: &'a Image<R>, block_size: u32, file: &'a FileEntry) -> Self {
        Self {
            image,
            block_size: u64::from(block_size),
            file,
            pos: 0,
            run: 0,
        }
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> u64 {
        if self.file.storage == Storage::None {
            return 0;
        }
        self.file.size.saturating_sub(self.pos)
    }
}

impl<R: ReadAt> io::Read for FileReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.remaining())
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let out = &mut buf[..want];
        match self.file.storage {
            Storage::Inline | Storage::FastSymlink => {
                // `pos < size`; inline content was checked to hold `size` bytes, except inline
                // directories, whose raw bytes are returned as stored.
                let start = usize::try_from(self.pos).unwrap_or(usize::MAX);
                let src = self.file.inline.get(start..).unwrap_or_default();
                let n = src.len().min(want);
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "inline data shorter than i_size",
                    ));
                }
                out[..n].copy_from_slice(&src[..n]);
                self.pos += n as u64;
                Ok(n)
            }
            // Devices, fifos, sockets and the resize inode have no content, whatever i_size says
            // (the resize inode claims several GiB).
            Storage::None => Ok(0),
            Storage::Blocks => self.read_blocks(out),
        }
    }
}

impl<R: ReadAt> FileReader<'_, R> {
    fn read_blocks(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let logical = self.pos / self.block_size;
        let runs = &self.file.runs;
        while runs
            .get(self.run)
            .is_some_and(|r| r.logical.saturating_add(r.len) <= logical)
        {
            self.run += 1;
        }
        let mut n = out.len();
        let mut data_at = None;
        match runs.get(self.run) {
            Some(run) if run.logical <= logical => {
                let run_end_byte = run
                    .logical
                    .saturating_add(run.len)
                    .saturating_mul(self.block_size);
                n = n.min(usize::try_from(run_end_byte - self.pos).unwrap_or(usize::MAX));
                if run.initialized {
                    let offset_in_run = self.pos - run.logical * self.block_size;
                    data_at = Some(run.physical * self.block_size + offset_in_run);
                }
            }
            Some(next) => {
                // A hole up to the next run.
                let hole_end = next.logical.saturating_mul(self.block_size);
                n = n.min(usize::try_from(hole_end - self.pos).unwrap_or(usize::MAX));
            }
            None => {}
        }
        let out = &mut out[..n];
        match data_at {
            Some(offset) => self
                .image
                .read_exact_at(out, offset, "file data")
                .map_err(io::Error::other)?,
            None => out.fill(0),
        }
        self.pos += n as u64;
        Ok(n)
    }
}
