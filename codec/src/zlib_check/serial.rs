//! The serial check: codec::zlib's deflater over the whole content, its output compared with
//! the payload as it comes (stopping at the first difference).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::zlib::{DeflateParams, Deflater};

/// Content is written in pieces of this size (a multiple of 4096: the deflater's own input
/// pieces then end at multiples of 4096 of the content), with the stop flag checked between.
const PIECE: usize = 1 << 20;

/// Whether codec::zlib compresses `content` into exactly `payload`; `None` when `stop` was
/// raised first.
pub(super) fn matches(
    params: DeflateParams,
    content: &[u8],
    payload: &[u8],
    stop: &AtomicBool,
) -> Option<bool> {
    let Ok(mut deflater) = Deflater::new(params, Prefix::new(payload)) else {
        return Some(false);
    };
    for piece in content.chunks(PIECE) {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        if deflater.write_all(piece).is_err() {
            return Some(false);
        }
    }
    Some(deflater.finish().is_ok_and(|p| p.pos == payload.len()))
}

/// A writer that accepts only a prefix of `expected`.
struct Prefix<'a> {
    expected: &'a [u8],
    pos: usize,
}

impl<'a> Prefix<'a> {
    fn new(expected: &'a [u8]) -> Self {
        Prefix { expected, pos: 0 }
    }
}

impl Write for Prefix<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let end = self.pos + buf.len();
        if self.expected.get(self.pos..end) != Some(buf) {
            return Err(io::Error::other("differs from the payload"));
        }
        self.pos = end;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
