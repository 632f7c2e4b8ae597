//! BSDIFF40 patches (Colin Percival's classic layout), the patch format of ADU's
//! `bspatch_decompression` recipe.
//!
//! Layout: the 8 bytes `BSDIFF40`; three "offtin" integers (control block length X, diff block
//! length Y, new size); then three bzip2 streams: control triples (X bytes), diff bytes (Y bytes),
//! and extra bytes (to the end of the patch). "offtin" is sign-magnitude little-endian: the low
//! 63 bits are the magnitude, bit 63 the sign. Each control triple (x, y, z) says: add x diff
//! bytes to x old bytes, copy y extra bytes, then move the old position by z.
//!
//! - [`patch`](mod@patch): a bounded, pull-based decoder ([`BspatchReader`]) that reads the old file by
//!   positioned reads and never holds old or new in memory;
//! - [`diff`](mod@diff) (feature `bsdiff-encoder`): an encoder over a suffix array that avoids the
//!   classic algorithm's quadratic behaviour on long near-matches.

use std::io;

#[cfg(feature = "bsdiff-encoder")]
pub mod diff;
pub mod patch;

#[cfg(feature = "bsdiff-encoder")]
pub use diff::{diff, diff_to_writer, triples, write_patch, DiffOptions, Triple};
pub use patch::{apply, BspatchReader};

/// The 8-byte magic at the start of every patch.
pub const MAGIC: &[u8; 8] = b"BSDIFF40";
/// Size of the fixed header: magic and three offtin integers.
pub const HEADER_LEN: u64 = 32;
/// Size of one control triple in the decompressed control block.
pub const CONTROL_TRIPLE_LEN: usize = 24;

/// What is wrong with a patch or a diff request.
#[derive(Debug, thiserror::Error)]
pub enum BsdiffError {
    #[error("bsdiff patch is {len} bytes, shorter than the 32-byte header")]
    TooShort { len: u64 },
    #[error("bsdiff patch does not start with BSDIFF40 (found {found:02x?})")]
    BadMagic { found: [u8; 8] },
    #[error("bsdiff header field {field} is negative ({value})")]
    NegativeHeaderField { field: &'static str, value: i64 },
    #[error("bsdiff header declares control {control} + diff {diff} bytes, but the patch has only {available} bytes after the header")]
    BlocksExceedPatch {
        control: u64,
        diff: u64,
        available: u64,
    },
    #[error("bsdiff patch makes {declared} bytes, but {expected} were expected")]
    NewSizeMismatch { declared: u64, expected: u64 },
    #[error("bsdiff control triple #{index} is invalid at output byte {new_pos}: {reason}")]
    BadControl {
        index: u64,
        new_pos: u64,
        reason: String,
    },
    #[error("bsdiff {block} block ended early or is corrupt at output byte {new_pos}: {source}")]
    Block {
        block: &'static str,
        new_pos: u64,
        #[source]
        source: io::Error,
    },
    #[error("reading the old file at offset {offset}: {source}")]
    Old {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("reading the patch: {0}")]
    Patch(#[source] io::Error),
    #[error("bsdiff input too large: {what} is {len} bytes, the limit is {limit}")]
    InputTooLarge {
        what: &'static str,
        len: u64,
        limit: u64,
    },
    #[error("writing the patch: {0}")]
    Write(#[source] io::Error),
}

impl From<BsdiffError> for io::Error {
    fn from(e: BsdiffError) -> io::Error {
        match e {
            BsdiffError::Write(inner) | BsdiffError::Patch(inner) => inner,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Random-access input: the old file of a patch, or the patch itself (its three blocks are read
/// from three positions at once). Implemented for byte slices here; the applier implements it
/// for files, slices and chains of them.
pub trait ReadAt {
    /// Total size in bytes.
    fn size(&self) -> u64;

    /// Reads up to `buf.len()` bytes at `offset`; returns 0 only at or past the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// Fills `buf` from `offset` or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(offset, buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("read past the end at offset {offset}"),
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let available = &self[start..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        Ok(n)
    }
}

impl ReadAt for Vec<u8> {
    fn size(&self) -> u64 {
        self.as_slice().size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.as_slice().read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for std::rc::Rc<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for std::sync::Arc<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Box<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
}

/// Decodes a sign-magnitude little-endian integer. The magnitude has 63 bits, so the result
/// always fits an `i64` ("negative zero" decodes as 0).
pub fn decode_offtin(bytes: [u8; 8]) -> i64 {
    let raw = u64::from_le_bytes(bytes);
    let magnitude = (raw & !(1u64 << 63)) as i64;
    if raw >> 63 == 1 {
        -magnitude
    } else {
        magnitude
    }
}

/// Encodes an integer in sign-magnitude little-endian form. `i64::MIN` has no representation
/// and is clamped to `-(2^63 - 1)`; no patch field can reach it.
pub fn encode_offtin(value: i64) -> [u8; 8] {
    let magnitude = value.unsigned_abs().min(i64::MAX as u64);
    let raw = if value < 0 {
        magnitude | (1u64 << 63)
    } else {
        magnitude
    };
    raw.to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offtin_round_trips_and_matches_the_reference_layout() {
        for v in [0i64, 1, -1, 255, 256, -300, i64::MAX, -i64::MAX, 1 << 40] {
            assert_eq!(decode_offtin(encode_offtin(v)), v);
        }
        assert_eq!(encode_offtin(-2), [2, 0, 0, 0, 0, 0, 0, 0x80]);
        assert_eq!(encode_offtin(0x0102), [2, 1, 0, 0, 0, 0, 0, 0]);
        // "negative zero" is zero
        assert_eq!(decode_offtin([0, 0, 0, 0, 0, 0, 0, 0x80]), 0);
    }

    #[test]
    fn slices_read_at_any_offset() {
        let data = [1u8, 2, 3, 4];
        let mut buf = [0u8; 3];
        assert_eq!(data[..].read_at(2, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], &[3, 4]);
        assert_eq!(data[..].read_at(10, &mut buf).unwrap(), 0);
        assert!(data[..].read_exact_at(3, &mut buf).is_err());
    }
}
