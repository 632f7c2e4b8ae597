//! Pull-based readers the kitchen composes: exact-length output, deflate (zlib's or GNU gzip's)
//! as a reader, and a zstd decoder that owns its basis.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::rc::Rc;

use codec::gnu_gzip::GzipWriter;
use codec::zlib::{DeflateParams, Deflater};

use super::budget::Reservation;

/// Serves exactly `len` bytes of `inner`: fewer is an error (ADU error 20000), more is dropped
/// (as ADU's applier drops it; the final hash check catches a wrong result).
pub struct ExactLen<R> {
    inner: R,
    left: u64,
    len: u64,
}

impl<R: Read> ExactLen<R> {
    pub fn new(inner: R, len: u64) -> Self {
        ExactLen {
            inner,
            left: len,
            len,
        }
    }
}

impl<R: Read> Read for ExactLen<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "produced only {} of {} bytes",
                    self.len - self.left,
                    self.len
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A `Write` that appends to a buffer shared with [`DeflateReader`].
struct SharedBuffer(Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The push compressors [`DeflateReader`] drives.
enum Compressor {
    /// zlib with ADU's parameters (`zlib_compression`).
    Zlib(Deflater<SharedBuffer>),
    /// GNU gzip's deflate (`gnu_gzip_compression`).
    GnuGzip(GzipWriter<SharedBuffer>),
}

impl Compressor {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Compressor::Zlib(d) => d.write_all(data),
            Compressor::GnuGzip(g) => g.write_all(data),
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Compressor::Zlib(d) => d.finish().map(drop),
            Compressor::GnuGzip(g) => g.finish().map(drop),
        }
    }
}

/// Deflate as a reader: pulls uncompressed bytes from `input` and serves the compressed stream
/// codec's reproducible compressors make (same bytes as writing it all at once).
pub struct DeflateReader<R> {
    input: R,
    compressor: Option<Compressor>,
    produced: Rc<RefCell<Vec<u8>>>,
    pending: Vec<u8>,
    pending_pos: usize,
    chunk: Vec<u8>,
}

impl<R: Read> DeflateReader<R> {
    /// zlib with ADU's parameters.
    pub fn new(params: DeflateParams, input: R) -> io::Result<Self> {
        let produced = Rc::new(RefCell::new(Vec::new()));
        let deflater = Deflater::new(params, SharedBuffer(Rc::clone(&produced)))?;
        Ok(Self::with(input, Compressor::Zlib(deflater), produced))
    }

    /// A gzip member as GNU gzip writes it at `level`.
    pub fn gnu_gzip(level: u32, input: R) -> io::Result<Self> {
        let produced = Rc::new(RefCell::new(Vec::new()));
        let gzip = GzipWriter::new(level, SharedBuffer(Rc::clone(&produced)))?;
        Ok(Self::with(input, Compressor::GnuGzip(gzip), produced))
    }

    fn with(input: R, compressor: Compressor, produced: Rc<RefCell<Vec<u8>>>) -> Self {
        DeflateReader {
            input,
            compressor: Some(compressor),
            produced,
            pending: Vec::new(),
            pending_pos: 0,
            chunk: vec![0u8; 16 * 1024],
        }
    }
}

impl<R: Read> Read for DeflateReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pending_pos < self.pending.len() {
                let n = buf.len().min(self.pending.len() - self.pending_pos);
                buf[..n].copy_from_slice(&self.pending[self.pending_pos..self.pending_pos + n]);
                self.pending_pos += n;
                return Ok(n);
            }
            {
                let mut produced = self.produced.borrow_mut();
                if !produced.is_empty() {
                    self.pending.clear();
                    std::mem::swap(&mut self.pending, &mut produced);
                    self.pending_pos = 0;
                    continue;
                }
            }
            let Some(compressor) = self.compressor.as_mut() else {
                return Ok(0);
            };
            let n = self.input.read(&mut self.chunk)?;
            if n == 0 {
                if let Some(c) = self.compressor.take() {
                    c.finish()?;
                }
            } else {
                compressor.write_all(&self.chunk[..n])?;
            }
        }
    }
}

/// A zstd decoder that owns its raw-prefix basis.
///
/// codec's decoder borrows the basis for as long as the decoder lives; the kitchen hands out
/// readers that must own everything they use, so this type keeps the basis in a heap
/// allocation it frees only after the decoder borrowing it has been dropped.
pub struct PrefixDecoder<'r> {
    decoder: Option<Box<dyn Read + 'r>>,
    /// From `Box::into_raw`; owned here, freed in `Drop`.
    basis: *mut [u8],
    _memory: Reservation,
}

impl<'r> PrefixDecoder<'r> {
    /// `gate` sees the start of every frame before it is decoded and returns the largest window
    /// log the frame may use (see [`codec::zstd::FrameDecoder`]).
    pub fn new<R: Read + 'r>(
        input: R,
        basis: Option<Vec<u8>>,
        gate: impl FnMut(&[u8]) -> io::Result<u32> + 'r,
        memory: Reservation,
    ) -> io::Result<Self> {
        let has_basis = basis.is_some();
        let basis: *mut [u8] = Box::into_raw(basis.unwrap_or_default().into_boxed_slice());
        // SAFETY: `basis` points to a live allocation owned by the value being built. It is
        // neither moved, mutated nor freed while the decoder exists: `Drop` drops the decoder
        // first and frees the allocation afterwards, and nothing else gets the pointer.
        let prefix: &'r [u8] = unsafe { &*basis };
        let decoder = codec::zstd::FrameDecoder::new(input, has_basis.then_some(prefix), gate);
        Ok(PrefixDecoder {
            decoder: Some(Box::new(decoder)),
            basis,
            _memory: memory,
        })
    }
}

impl Read for PrefixDecoder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.decoder.as_mut() {
            Some(d) => d.read(buf),
            None => Ok(0),
        }
    }
}

impl Drop for PrefixDecoder<'_> {
    fn drop(&mut self) {
        // The decoder borrows the basis: it must go first.
        self.decoder = None;
        // SAFETY: the allocation came from Box::into_raw in `new`, is freed only here, and its
        // only borrower was dropped on the line above.
        drop(unsafe { Box::from_raw(self.basis) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use codec::zlib::{deflate_bytes, Container};

    #[test]
    fn deflate_reader_matches_one_shot_deflate() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i >> 9) as u8)
            .collect();
        let params = DeflateParams {
            container: Container::Gzip,
            level: 9,
        };
        let mut out = Vec::new();
        DeflateReader::new(params, &data[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, deflate_bytes(params, &data).unwrap());
    }

    #[test]
    fn exact_len_truncates_and_detects_short_input() {
        let mut out = Vec::new();
        ExactLen::new(&b"abcdef"[..], 4)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"abcd");
        assert!(ExactLen::new(&b"ab"[..], 4)
            .read_to_end(&mut Vec::new())
            .is_err());
    }
}
