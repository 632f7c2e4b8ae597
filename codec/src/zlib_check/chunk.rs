//! Checking one chunk: a raw deflate stream restarted at the chunk's start compresses the
//! chunk's content (and a little more, for lookahead), and its output is compared with the
//! payload's bits of the chunk as it comes.

use std::ffi::c_int;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use libz_sys as z;

use super::compare::{RangeComparer, Verdict};
use super::plan::{window_base, Chunk, FEED_MARGIN};
use super::stream::RawDeflate;

/// Content is given to the stream in pieces ending at multiples of this many bytes (a
/// multiple of 4096, so the window slides as in the serial run; see `plan::window_base`),
/// with the stop flag checked between pieces.
const PIECE: u64 = 1 << 20;
/// Output buffer size.
const OUT_BUF: usize = 256 * 1024;

/// Why a chunk's check should stop early: the caller asked, or another chunk differed.
pub(super) struct Stop<'a> {
    pub caller: &'a AtomicBool,
    pub failed: AtomicBool,
}

impl Stop<'_> {
    fn raised(&self) -> bool {
        self.caller.load(Ordering::Relaxed) || self.failed.load(Ordering::Relaxed)
    }
}

/// How a chunk's check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The restarted stream made exactly the chunk's bits.
    Equal,
    /// It made other bits (or fewer).
    Differs,
    /// `stop` was raised first.
    Stopped,
}

/// Compresses the chunk's content with a stream restarted at its start and compares.
pub(super) fn check_chunk(
    level: i32,
    content: &[u8],
    payload: &[u8],
    chunk: &Chunk,
    stop: &Stop,
) -> io::Result<Outcome> {
    let mut cmp = RangeComparer::new(payload, chunk.start_bit, chunk.end_bit);
    let mut z = RawDeflate::new(level)?;
    let start = chunk.in_start;
    if start > 0 {
        z.set_history(&content[window_base(start) as usize..start as usize])?;
    }
    if cmp.lead_bits() > 0 {
        z.prime(cmp.lead_bits())?;
    }
    let feed_end = if chunk.last {
        content.len() as u64
    } else {
        (chunk.in_end + FEED_MARGIN).min(content.len() as u64)
    };
    let mut run = Run {
        z,
        cmp: &mut cmp,
        out: vec![0u8; OUT_BUF],
        produced: 0,
    };
    let mut at = start;
    while at < feed_end {
        if stop.raised() {
            return Ok(Outcome::Stopped);
        }
        let to = ((at / PIECE + 1) * PIECE).min(feed_end);
        match run.feed(&content[at as usize..to as usize], z::Z_NO_FLUSH)? {
            Verdict::Differs => return Ok(Outcome::Differs),
            Verdict::Covered if !chunk.last => return Ok(Outcome::Equal),
            _ => {}
        }
        at = to;
    }
    run.finish(chunk.last)
}

/// A restarted stream and the comparison of its output.
struct Run<'c, 'p> {
    z: RawDeflate,
    cmp: &'c mut RangeComparer<'p>,
    out: Vec<u8>,
    /// Output bytes so far.
    produced: u64,
}

impl Run<'_, '_> {
    /// Runs deflate over `input` with `flush` until it is all consumed and, for a flush,
    /// all output is out; returns the comparison's verdict (which may come early).
    fn feed(&mut self, mut input: &[u8], flush: c_int) -> io::Result<Verdict> {
        let mut verdict = Verdict::Pending;
        loop {
            let step = self.z.run(input, flush, &mut self.out)?;
            input = &input[step.consumed..];
            self.produced += step.produced as u64;
            if step.produced > 0 && verdict == Verdict::Pending {
                verdict = self.cmp.feed(&self.out[..step.produced]);
                if verdict == Verdict::Differs {
                    return Ok(verdict);
                }
            }
            let room_left = step.produced < self.out.len();
            let progress = step.consumed > 0 || step.produced > 0;
            if step.ended || (input.is_empty() && room_left) || !progress {
                return Ok(verdict);
            }
        }
    }

    /// Flushes the stream: a sync flush for a middle chunk (the chunk's last bits may still be
    /// inside zlib), the end of the stream for the last one, which must then end exactly where
    /// the payload's deflate stream ends.
    fn finish(mut self, last: bool) -> io::Result<Outcome> {
        let flush = if last { z::Z_FINISH } else { z::Z_SYNC_FLUSH };
        let verdict = self.feed(&[], flush)?;
        let equal = match verdict {
            Verdict::Differs => false,
            _ if last => self.cmp.covered() && self.produced == self.cmp.expected_len(),
            _ => self.cmp.covered(),
        };
        Ok(if equal {
            Outcome::Equal
        } else {
            Outcome::Differs
        })
    }
}
