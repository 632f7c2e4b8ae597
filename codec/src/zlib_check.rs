//! Whether zlib compresses a content into exactly a given payload, checked on all cores.
//!
//! The gzip profile re-creates a compressed payload on the device by compressing its content
//! with zlib, so the generator must know that zlib's output is the payload byte for byte. The
//! plain check, one zlib level 9 run over a whole image, takes about 20 s for 250 MiB on one
//! core. This module gives the same answer in parallel: it maps the payload's deflate blocks
//! (`scan`), picks block ends where zlib's state is known exactly, restarts a raw zlib stream
//! at each (`stream`), and compares each restarted stream's output with the payload's bits for
//! its stretch (`chunk`), all on the rayon pool. It runs the bundled zlib codec::zlib links,
//! i.e. the device's compressor code, never a model of it. Whatever it cannot handle (levels 1
//! to 3, a payload it cannot scan, too few restart points) goes to the serial check.
//!
//! # Why the parallel answer is the serial answer
//!
//! "Serial" is codec::zlib's [`Deflater`](crate::zlib::Deflater) (memLevel 9, windowBits 15,
//! default strategy), fed as it feeds zlib: pieces that end at multiples of 4096 content
//! bytes, `Z_NO_FLUSH`, then `Z_FINISH`. Levels 4 to 9 run `deflate_slow` (zlib 1.3.x
//! deflate.c). What follows was checked against the bundled zlib's source.
//!
//! 1. *Fresh block ends.* Under `Z_NO_FLUSH` a block ends only when `_tr_tally` fills the
//!    symbol buffer. If the symbol that filled it is a match, `FLUSH_BLOCK` runs after
//!    `match_available = 0`, `match_length = MIN_MATCH-1` and `strstart = q`, the end of the
//!    match, with every string before `q` in the hash chains (the lookahead is at least
//!    MIN_LOOKAHEAD, so `max_insert` does not bind), `block_start = q` and an empty symbol buffer;
//!    the next loop sets `prev_length = match_length`. That is the state
//!    `deflateSetDictionary` leaves. If it is a literal, `match_available` stays 1 and a
//!    pending match is carried over: such block ends are never restart points. The scanner
//!    tells which from the block's last symbol; stored blocks hide their symbols, so their ends
//!    are not restart points either.
//! 2. *What decisions depend on.* Matching reads the window, `head`/`prev`, `ins_h`, the lazy
//!    state and the lookahead (`nice_match` and the returned length are capped by it);
//!    `_tr_flush_block` picks stored/fixed/dynamic from the symbol counts, `stored_len` and
//!    whether `block_start >= 0` (a stored block needs its bytes still in the window). No
//!    decision reads the output bit position or the room left for output.
//! 3. *The window phase.* Window offsets are content offsets minus a base that grows by WSIZE
//!    whenever `fill_window` slides. A plain 32 KiB dictionary (offset of `q` = WSIZE) would
//!    change which blocks may be stored: `block_start` goes negative at other places, and a
//!    block the serial run stores (or cannot store) could come out coded (or stored), so a
//!    payload could match the restarted stream and not the serial one. So the restarted stream
//!    gets the serial phase: with the serial rule for slides (`plan::window_base`) the
//!    content `base..q` is loaded at window offsets `0..q-base` (two `deflateSetDictionary`
//!    calls when it is WSIZE or longer: one call keeps only WSIZE bytes). Then every offset,
//!    `strstart` and `block_start` equal the serial ones, and the hash chains equal them link
//!    for link: the serial `slide_hash` turned every link to a string before `base` into NIL,
//!    the restarted stream never had one, and both inserted the strings `base..q` in order (the
//!    last two from `insert` at the first read). `ins_h` depends on the last three bytes only
//!    (16 hash bits, shift 6). The restarted stream must not slide at its first read, which it
//!    would at offset exactly WSIZE+MAX_DIST (`plan::keeps_window` skips those points).
//! 4. *The same course.* A restarted stream is fed in pieces ending at multiples of 1 MiB of
//!    content, through FEED_MARGIN (4096) bytes past its chunk's end. So, before that end, it
//!    slides where the serial one does, has at least MIN_LOOKAHEAD bytes ahead at every loop
//!    (as the serial one, since restart points lie 4096 bytes before the content's end), and
//!    sees the same bytes: it takes the same decisions and makes the same blocks.
//! 5. *Bits.* `deflatePrime` starts the restarted output with as many bits as the chunk
//!    starts into a payload byte: its bytes line up with the payload's (a stored block pads
//!    alike) and are compared as bytes, masking only the bits of the neighbouring chunks in
//!    the first and last byte. The chunks tile the stream: every payload bit is compared once,
//!    the header and trailer as bytes, the last chunk through the zero bits that pad the
//!    stream's last byte.
//!
//! By induction over the chunks (the serial run is fresh at `q_0 = 0`): if the serial run is
//! fresh at `q_k` and equal to the payload before it, restarted stream k takes the serial
//! run's decisions up to `q_{k+1}` (1 to 4), so its bits are the serial run's bits (5). If
//! they equal the payload's bits of the chunk, so do the serial run's, and the chunk ends with
//! a block that the restarted stream ended itself (the sync flush it gets comes 4096 bytes
//! later), after a match: the serial run is fresh at `q_{k+1}`. The last chunk runs to the end
//! and `Z_FINISH`, as the serial run does, and must end exactly where the payload's deflate
//! stream ends; the header and the trailer (CRC-32 and length, or Adler-32) are compared
//! separately. Conversely, if the serial output is the payload, every restarted stream makes
//! the payload's bits, so both checks always give the same answer. What the argument takes on
//! trust is the scanner's map (content offsets of block ends, last symbols); the tests check
//! it against zlib's inflate, and the window model against the blocks zlib stores.
//!
//! The feeding matters: zlib fed in arbitrary pieces can reach `fill_window` with `strstart`
//! exactly WSIZE+MAX_DIST and slide one symbol early, which changes the phase. That is a
//! property of zlib that the serial check shares: both answers hold for a compressor fed in
//! pieces ending at multiples of 4096 (or of any power of two from 512) content bytes, as
//! codec::zlib feeds it, in ADU's piece size.

mod bits;
mod chunk;
mod compare;
mod frame;
mod huffman;
mod plan;
mod scan;
mod serial;
mod stream;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::zlib::DeflateParams;
use chunk::{check_chunk, Outcome, Stop};
use plan::Chunk;

/// How the parallel check cuts the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The least content per chunk (each chunk costs a 64 KiB history load and a little
    /// lookahead compressed twice).
    pub min_chunk: u64,
    /// Chunks per pool thread, so that threads that finish early take more.
    pub chunks_per_thread: u64,
    /// Always take the serial check.
    pub serial_only: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            min_chunk: 8 << 20,
            chunks_per_thread: 4,
            serial_only: false,
        }
    }
}

/// Why the serial check was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// [`Options::serial_only`].
    Asked,
    /// The level does not use zlib's lazy matcher (1 to 3) or is not reproducible.
    Level,
    /// The payload is not a deflate stream the scanner reads, or decodes to another length.
    Unscanned,
    /// Fewer than two chunks (small content, or few restart points).
    Short,
    /// zlib failed in a chunk (e.g. out of memory).
    Zlib,
}

/// How the answer was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Restarted streams over this many chunks.
    Parallel(usize),
    /// One serial compression.
    Serial(Fallback),
    /// The header or trailer differs: no compression needed.
    Frame,
}

/// The answer and how it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Whether compressing the content gives exactly the payload (false when stopped).
    pub matches: bool,
    pub path: Path,
    /// The stop flag was raised before an answer.
    pub stopped: bool,
}

/// What the scanner finds in a payload (for diagnostics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Survey {
    /// Deflate blocks, and how many of them are stored.
    pub blocks: usize,
    pub stored_blocks: usize,
    /// Block ends where the check may restart zlib.
    pub restart_points: usize,
    /// Uncompressed length of the deflate stream.
    pub content_len: u64,
}

/// Maps the deflate stream of `payload` (after `params`' header), if it is one.
pub fn survey(params: DeflateParams, payload: &[u8]) -> Option<Survey> {
    let header = frame::header(params).ok()?;
    let blocks = scan::scan(payload, header.len(), u64::MAX).ok()?;
    let content_len = blocks.last()?.out_end;
    Some(Survey {
        blocks: blocks.len(),
        stored_blocks: blocks
            .iter()
            .filter(|b| b.kind == scan::Kind::Stored)
            .count(),
        restart_points: plan::chunks(&blocks, content_len, 1).len() - 1,
        content_len,
    })
}

/// Whether codec::zlib compresses `content` with `params` into exactly `payload`.
pub fn deflates_to(params: DeflateParams, content: &[u8], payload: &[u8]) -> bool {
    check(
        params,
        content,
        payload,
        &Options::default(),
        &AtomicBool::new(false),
    )
    .matches
}

/// [`deflates_to`] with options, telling how it decided; gives up when `stop` is raised.
pub fn check(
    params: DeflateParams,
    content: &[u8],
    payload: &[u8],
    options: &Options,
    stop: &AtomicBool,
) -> Checked {
    let level = if params.level == -1 { 6 } else { params.level };
    if options.serial_only {
        return serial_check(params, content, payload, stop, Fallback::Asked);
    }
    if !(4..=9).contains(&level) {
        return serial_check(params, content, payload, stop, Fallback::Level);
    }
    let Ok(header) = frame::header(params) else {
        return serial_check(params, content, payload, stop, Fallback::Zlib);
    };
    if !payload.starts_with(&header) {
        return decided(false, Path::Frame);
    }
    let blocks = match scan::scan(payload, header.len(), content.len() as u64) {
        Ok(b) if b.last().is_some_and(|l| l.out_end == content.len() as u64) => b,
        _ => return serial_check(params, content, payload, stop, Fallback::Unscanned),
    };
    let stream_end = blocks.last().map_or(0, |b| b.end_bit.div_ceil(8)) as usize;
    if payload[stream_end..] != frame::trailer(params.container, content)[..] {
        return decided(false, Path::Frame);
    }
    let chunks = plan::chunks(&blocks, content.len() as u64, target(content, options));
    if chunks.len() < 2 {
        return serial_check(params, content, payload, stop, Fallback::Short);
    }
    parallel_check(params, level, content, payload, &chunks, stop)
}

/// Content per chunk: a share of the pool's threads, at least `min_chunk`.
fn target(content: &[u8], options: &Options) -> u64 {
    let threads = rayon::current_num_threads() as u64;
    let share = content.len() as u64 / (options.chunks_per_thread.max(1) * threads).max(1);
    share.max(options.min_chunk).max(1)
}

fn decided(matches: bool, path: Path) -> Checked {
    Checked {
        matches,
        path,
        stopped: false,
    }
}

fn serial_check(
    params: DeflateParams,
    content: &[u8],
    payload: &[u8],
    stop: &AtomicBool,
    why: Fallback,
) -> Checked {
    let answer = serial::matches(params, content, payload, stop);
    Checked {
        matches: answer == Some(true),
        path: Path::Serial(why),
        stopped: answer.is_none(),
    }
}

/// Checks every chunk on the pool; the first differing chunk stops the others.
fn parallel_check(
    params: DeflateParams,
    level: i32,
    content: &[u8],
    payload: &[u8],
    chunks: &[Chunk],
    stop: &AtomicBool,
) -> Checked {
    let flags = Stop {
        caller: stop,
        failed: AtomicBool::new(false),
    };
    let outcomes: Vec<_> = chunks
        .par_iter()
        .map(|c| {
            let outcome = check_chunk(level, content, payload, c, &flags);
            // Only a difference decides for all; a chunk zlib failed on leaves the others to
            // finish, and the serial check answers (a stop then means the caller's).
            if matches!(outcome, Ok(Outcome::Differs)) {
                flags.failed.store(true, Ordering::Relaxed);
            }
            outcome
        })
        .collect();
    let path = Path::Parallel(chunks.len());
    let any = |what: Outcome| outcomes.iter().any(|o| matches!(o, Ok(x) if *x == what));
    if any(Outcome::Differs) {
        return decided(false, path);
    }
    if any(Outcome::Stopped) {
        return Checked {
            matches: false,
            path,
            stopped: true,
        };
    }
    if outcomes.iter().all(|o| matches!(o, Ok(Outcome::Equal))) {
        return decided(true, path);
    }
    // A chunk failed in zlib itself (no answer from it): ask the serial check.
    serial_check(params, content, payload, stop, Fallback::Zlib)
}
