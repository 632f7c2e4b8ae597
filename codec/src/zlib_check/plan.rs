//! Where the parallel check restarts compression, and where the serial compressor's window
//! stands at those points.
//!
//! A restart point is the end `q` of a non-final Huffman-coded block whose last symbol is a
//! match (the compressor is "fresh" there, see the module doc of `zlib_check`), with at least
//! [`FEED_MARGIN`] bytes of content after it, and where a restarted stream would not slide its
//! window on its first read (see [`window_base`]). Chunks are runs of blocks between chosen
//! restart points, about `target` bytes of content each.

use super::scan::{Block, Kind};

/// zlib's window size for windowBits 15.
pub(super) const WSIZE: u64 = 32 * 1024;
/// zlib's MIN_LOOKAHEAD: MAX_MATCH + MIN_MATCH + 1.
pub(super) const MIN_LOOKAHEAD: u64 = 262;
/// zlib's MAX_DIST: the farthest back a match may start.
const MAX_DIST: u64 = WSIZE - MIN_LOOKAHEAD;
/// zlib slides the window when a read finds `strstart` at least this far into it.
const SLIDE_AT: u64 = WSIZE + MAX_DIST;
/// Content a restarted stream reads past the end of its chunk, so that every position before
/// the end is compressed with a full lookahead, as in the serial run (at least MIN_LOOKAHEAD).
pub(super) const FEED_MARGIN: u64 = 4096;

/// The content offset at window offset 0 of the serial compressor when it reaches the
/// position `q` (at the top of its loop, i.e. after a whole symbol).
///
/// zlib's window is 2·WSIZE bytes; `fill_window` moves it up by WSIZE when it is called with
/// `strstart >= WSIZE + MAX_DIST`, and deflate_slow calls it only when fewer than
/// MIN_LOOKAHEAD bytes are left ahead. The serial compressor is fed in pieces that end at
/// multiples of 4096 bytes of content (codec::zlib), so when it runs short of lookahead the
/// window is either full (then strstart > 2·WSIZE - MIN_LOOKAHEAD = SLIDE_AT) or filled up to
/// a multiple of 4096, which is below SLIDE_AT. Hence the n-th slide happens at the first
/// position at or after SLIDE_AT + 1 + (n-1)·WSIZE where the loop stands, whatever the
/// symbols: at `q`, the window has slid once for every such threshold at or before `q`.
pub(super) fn window_base(q: u64) -> u64 {
    let first = SLIDE_AT + 1;
    if q < first {
        0
    } else {
        WSIZE * (1 + (q - first) / WSIZE)
    }
}

/// Whether a stream restarted at `q` with the history `window_base(q)..q` keeps the serial
/// compressor's window: it must not slide on its first read, which it would with
/// strstart == SLIDE_AT exactly (where the serial one, whose window is full, does not).
pub(super) fn keeps_window(q: u64) -> bool {
    q - window_base(q) < SLIDE_AT
}

/// A stretch of the stream checked by one restarted compressor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Chunk {
    /// Content offsets `in_start..in_end`.
    pub in_start: u64,
    pub in_end: u64,
    /// Payload bits `start_bit..end_bit`: whole blocks (and, for the last chunk, the padding
    /// to the end of the byte).
    pub start_bit: u64,
    pub end_bit: u64,
    /// Whether it ends with the stream's final block.
    pub last: bool,
}

/// Whether the compressor may be restarted right after `block`, given the content length.
fn restartable(block: &Block, content_len: u64) -> bool {
    let q = block.out_end;
    !block.last
        && block.kind != Kind::Stored
        && block.ends_with_match
        && q > 0
        && q + FEED_MARGIN <= content_len
        && keeps_window(q)
}

/// Cuts the stream into chunks of at least `target` content bytes (the last may be shorter)
/// at restart points. `blocks` is a complete scan covering `content_len` bytes.
pub(super) fn chunks(blocks: &[Block], content_len: u64, target: u64) -> Vec<Chunk> {
    let mut out = Vec::new();
    let (first, last) = match (blocks.first(), blocks.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return out,
    };
    let mut open = Chunk {
        in_start: 0,
        in_end: 0,
        start_bit: first.start_bit,
        end_bit: 0,
        last: false,
    };
    for block in blocks {
        if block.out_end - open.in_start >= target && restartable(block, content_len) {
            out.push(Chunk {
                in_end: block.out_end,
                end_bit: block.end_bit,
                ..open
            });
            open.in_start = block.out_end;
            open.start_bit = block.end_bit;
        }
    }
    // The last chunk runs to the end of the stream's last byte: its padding bits (zeros from
    // zlib) are part of the payload too.
    out.push(Chunk {
        in_end: last.out_end,
        end_bit: last.end_bit.div_ceil(8) * 8,
        last: true,
        ..open
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_base_follows_the_slides() {
        assert_eq!(window_base(0), 0);
        assert_eq!(window_base(65_274), 0);
        assert_eq!(window_base(65_275), 32_768);
        assert_eq!(window_base(65_275 + 32_767), 32_768);
        assert_eq!(window_base(65_275 + 32_768), 65_536);
        for q in [40_000u64, 65_275, 100_000, 1 << 20, 123_456_789] {
            let offset = q - window_base(q);
            assert!(offset <= SLIDE_AT, "{q}");
            assert!(q < 65_275 || offset > MAX_DIST, "{q}");
        }
        assert!(!keeps_window(65_274 + 32_768));
        assert!(keeps_window(65_273 + 32_768));
    }

    fn block(out_start: u64, out_end: u64, ends_with_match: bool, last: bool) -> Block {
        Block {
            start_bit: out_start * 2 + 80,
            end_bit: out_end * 2 + 80,
            out_start,
            out_end,
            kind: Kind::Dynamic,
            ends_with_match,
            last,
        }
    }

    #[test]
    fn cuts_at_restart_points_only() {
        let blocks = [
            block(0, 100_000, true, false),
            block(100_000, 200_000, false, false),
            block(200_000, 300_000, true, false),
            block(300_000, 400_000, true, false),
            block(400_000, 401_000, true, true),
        ];
        let c = chunks(&blocks, 401_000, 150_000);
        let ends: Vec<u64> = c.iter().map(|c| c.in_end).collect();
        // 100 000 is too short, 200 000 ends with a literal, 400 000 leaves too little after.
        assert_eq!(ends, vec![300_000, 401_000]);
        assert_eq!(c[1].start_bit, c[0].end_bit);
        assert_eq!((c[0].start_bit, c[0].end_bit), (80, 300_000 * 2 + 80));
        let padded_end = (401_000 * 2 + 80u64).div_ceil(8) * 8;
        assert_eq!(c[1].end_bit, padded_end);
        assert!(c[1].last && !c[0].last);
    }
}
