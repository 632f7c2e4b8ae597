//! Positioned reads from an image that may sit at an offset inside a larger file.

use crate::error::{Error, Result};
use std::fs::File;
use std::io;

/// A source of bytes that can be read at any position without a seek cursor.
///
/// Implemented for [`std::fs::File`] (via `pread`) and byte slices; `&T` forwards to `T`.
pub trait ReadAt {
    /// Reads up to `buf.len()` bytes starting at `offset`; returns the number read (0 at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Total length of the source in bytes.
    fn size(&self) -> io::Result<u64>;
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = match usize::try_from(offset) {
            Ok(start) if start < self.len() => start,
            _ => return Ok(0),
        };
        let available = self.get(start..).unwrap_or_default();
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        Ok(n)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }

    fn size(&self) -> io::Result<u64> {
        (**self).size()
    }
}

/// The image: a window `[base, base + len)` of a [`ReadAt`] source, with bounds-checked reads.
#[derive(Debug)]
pub(crate) struct Image<R> {
    reader: R,
    base: u64,
    len: u64,
}

impl<R: ReadAt> Image<R> {
    /// A window of `len` bytes at `base`; fails if the source is shorter than that.
    pub(crate) fn new(reader: R, base: u64, len: u64) -> Result<Self> {
        let source_len = reader.size().map_err(|source| Error::Io {
            offset: 0,
            len: 0,
            source,
        })?;
        let end = base.checked_add(len);
        if end.is_none_or(|end| end > source_len) {
            return Err(Error::Truncated {
                what: "image window",
                offset: base,
                end: end.unwrap_or(u64::MAX),
                image_len: source_len,
            });
        }
        Ok(Self { reader, base, len })
    }

    /// A window covering the whole source.
    pub(crate) fn whole(reader: R) -> Result<Self> {
        let len = reader.size().map_err(|source| Error::Io {
            offset: 0,
            len: 0,
            source,
        })?;
        Ok(Self {
            reader,
            base: 0,
            len,
        })
    }

    /// Image length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Fills `buf` from image offset `offset`; a read past the image end is [`Error::Truncated`].
    pub(crate) fn read_exact_at(
        &self,
        buf: &mut [u8],
        offset: u64,
        what: &'static str,
    ) -> Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        let end = match end {
            Some(end) if end <= self.len => end,
            _ => {
                return Err(Error::Truncated {
                    what,
                    offset,
                    end: end.unwrap_or(u64::MAX),
                    image_len: self.len,
                })
            }
        };
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let remaining = buf.len() - done;
            // `pos < end <= len`, and `base + len` was checked against the source length.
            match self.reader.read_at(&mut buf[done..], self.base + pos) {
                Ok(0) => {
                    return Err(Error::Truncated {
                        what,
                        offset,
                        end,
                        image_len: self.len,
                    });
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::Io {
                        offset: pos,
                        len: remaining,
                        source,
                    })
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_reads_are_relative_and_bounded() {
        let data: Vec<u8> = (0u8..100).collect();
        let image = Image::new(&data[..], 10, 50).unwrap();
        let mut buf = [0u8; 5];
        image.read_exact_at(&mut buf, 0, "test").unwrap();
        assert_eq!(buf, [10, 11, 12, 13, 14]);
        image.read_exact_at(&mut buf, 45, "test").unwrap();
        assert_eq!(buf, [55, 56, 57, 58, 59]);
        assert!(matches!(
            image.read_exact_at(&mut buf, 46, "test"),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            image.read_exact_at(&mut buf, u64::MAX, "test"),
            Err(Error::Truncated { .. })
        ));
        assert!(Image::new(&data[..], 60, 50).is_err());
    }
}
