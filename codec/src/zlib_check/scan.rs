//! A map of a deflate stream's blocks, made by decoding its symbols without producing output.
//!
//! For every block the scanner records where its bits start and end in the payload, which
//! stretch of the uncompressed data it covers and whether its last symbol is a match (a
//! length/distance pair) or a literal, which is all the parallel check needs to pick restart
//! points. It checks what zlib's inflate checks (code sets, symbol ranges, distances within
//! the data so far, stored lengths) and fails on anything else, e.g. a payload that is not a
//! deflate stream at all; the caller then falls back to the serial check.

use super::bits::{BitReader, REFILLED};
use super::huffman::Huffman;

/// How a block is coded (RFC 1951 BTYPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Stored,
    Fixed,
    Dynamic,
}

/// One block of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Block {
    /// Bit offset of the block header in the payload.
    pub start_bit: u64,
    /// Bit offset just after the block (after its end-of-block code, or its stored bytes).
    pub end_bit: u64,
    /// The uncompressed bytes it covers: `out_start..out_end`.
    pub out_start: u64,
    pub out_end: u64,
    pub kind: Kind,
    /// Whether its last symbol is a match (never for stored blocks, whose symbols are unknown).
    pub ends_with_match: bool,
    pub last: bool,
}

/// Why a payload could not be scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScanError {
    /// The bits are no valid deflate stream, or it runs past the end of the payload.
    Invalid,
    /// It decodes to more than the expected length.
    TooLong,
}

/// Length codes 257..=285: base length and extra bits.
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Distance codes 0..=29: base distance and extra bits.
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
// One refill holds a whole length/distance pair: 15 + 5 + 15 + 13 bits.
const _: () = assert!(REFILLED >= 48);

/// The order in which code length code lengths are sent.
const CL_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// The blocks of the deflate stream starting at byte `start` of `payload`, up to and
/// including its last block. `max_out` bounds the uncompressed length (the content's).
pub(super) fn scan(payload: &[u8], start: usize, max_out: u64) -> Result<Vec<Block>, ScanError> {
    let mut s = Scanner::new(payload, start, max_out);
    let mut blocks = Vec::new();
    loop {
        let block = s.block()?;
        blocks.push(block);
        if block.last {
            return Ok(blocks);
        }
    }
}

/// The decoding state carried from block to block.
struct Scanner<'a> {
    bits: BitReader<'a>,
    out: u64,
    max_out: u64,
    lit: Huffman,
    dist: Huffman,
    fixed: (Huffman, Huffman),
}

/// What a Huffman block's symbols leave behind.
struct Decoded {
    ends_with_match: bool,
}

impl<'a> Scanner<'a> {
    fn new(payload: &'a [u8], start: usize, max_out: u64) -> Self {
        Scanner {
            bits: BitReader::new(payload, start),
            out: 0,
            max_out,
            lit: Huffman::new(&[]).expect("empty code"),
            dist: Huffman::new(&[]).expect("empty code"),
            fixed: fixed_codes(),
        }
    }

    /// Decodes one block.
    fn block(&mut self) -> Result<Block, ScanError> {
        let start_bit = self.bits.bit_pos();
        let out_start = self.out;
        self.bits.refill();
        let last = self.bits.take(1) == 1;
        let (kind, ends_with_match) = match self.bits.take(2) {
            0 => (Kind::Stored, self.stored()?),
            1 => (Kind::Fixed, self.fixed()?.ends_with_match),
            2 => {
                self.read_dynamic_codes()?;
                let d = self.symbols()?;
                (Kind::Dynamic, d.ends_with_match)
            }
            _ => return Err(ScanError::Invalid),
        };
        if self.bits.overrun() {
            return Err(ScanError::Invalid);
        }
        Ok(Block {
            start_bit,
            end_bit: self.bits.bit_pos(),
            out_start,
            out_end: self.out,
            kind,
            ends_with_match,
            last,
        })
    }

    /// Skips a stored block's bytes (header bits already read).
    fn stored(&mut self) -> Result<bool, ScanError> {
        let aligned = self.bits.bit_pos().div_ceil(8);
        let data_len = self.bits.data_len();
        let Some(header) = usize::try_from(aligned)
            .ok()
            .filter(|&at| at + 4 <= data_len)
        else {
            return Err(ScanError::Invalid);
        };
        self.bits.seek_byte(header);
        self.bits.refill();
        let len = self.bits.take(16);
        if self.bits.take(16) != !len & 0xffff {
            return Err(ScanError::Invalid);
        }
        let end = header + 4 + len as usize;
        if end > data_len {
            return Err(ScanError::Invalid);
        }
        self.bits.seek_byte(end);
        self.advance(u64::from(len))?;
        Ok(false)
    }

    /// Decodes a block with the fixed codes.
    fn fixed(&mut self) -> Result<Decoded, ScanError> {
        std::mem::swap(&mut self.lit, &mut self.fixed.0);
        std::mem::swap(&mut self.dist, &mut self.fixed.1);
        let decoded = self.symbols();
        std::mem::swap(&mut self.lit, &mut self.fixed.0);
        std::mem::swap(&mut self.dist, &mut self.fixed.1);
        decoded
    }

    /// Reads a dynamic block's code description into `lit` and `dist`.
    fn read_dynamic_codes(&mut self) -> Result<(), ScanError> {
        self.bits.refill();
        let nlit = self.bits.take(5) as usize + 257;
        let ndist = self.bits.take(5) as usize + 1;
        let ncl = self.bits.take(4) as usize + 4;
        if nlit > 286 || ndist > 30 {
            return Err(ScanError::Invalid);
        }
        let mut cl_lengths = [0u8; 19];
        for &i in &CL_ORDER[..ncl] {
            self.bits.refill();
            cl_lengths[i] = self.bits.take(3) as u8;
        }
        let cl = Huffman::new(&cl_lengths).map_err(|_| ScanError::Invalid)?;
        let mut lengths = [0u8; 286 + 30];
        self.read_lengths(&cl, &mut lengths[..nlit + ndist])?;
        if lengths[256] == 0 {
            return Err(ScanError::Invalid); // no end-of-block code
        }
        self.lit
            .build(&lengths[..nlit])
            .map_err(|_| ScanError::Invalid)?;
        self.dist
            .build(&lengths[nlit..nlit + ndist])
            .map_err(|_| ScanError::Invalid)
    }

    /// Decodes the run-length coded code lengths of both codes.
    fn read_lengths(&mut self, cl: &Huffman, lengths: &mut [u8]) -> Result<(), ScanError> {
        let mut i = 0;
        while i < lengths.len() {
            self.bits.refill();
            let sym = cl.decode(&mut self.bits).ok_or(ScanError::Invalid)?;
            let (value, repeat) = match sym {
                0..=15 => (sym as u8, 1),
                16 if i > 0 => (lengths[i - 1], 3 + self.bits.take(2) as usize),
                17 => (0, 3 + self.bits.take(3) as usize),
                18 => (0, 11 + self.bits.take(7) as usize),
                _ => return Err(ScanError::Invalid),
            };
            let run = lengths.get_mut(i..i + repeat).ok_or(ScanError::Invalid)?;
            run.fill(value);
            i += repeat;
        }
        Ok(())
    }

    /// Decodes symbols up to the end-of-block code with the codes in `lit` and `dist`.
    fn symbols(&mut self) -> Result<Decoded, ScanError> {
        let mut ends_with_match = false;
        loop {
            self.bits.refill();
            let sym = self.lit.decode(&mut self.bits).ok_or(ScanError::Invalid)?;
            match sym {
                0..=255 => {
                    self.advance(1)?;
                    ends_with_match = false;
                }
                256 => return Ok(Decoded { ends_with_match }),
                _ => {
                    let len = self.length(sym)?;
                    let dist = self.distance()?;
                    if u64::from(dist) > self.out {
                        return Err(ScanError::Invalid);
                    }
                    self.advance(u64::from(len))?;
                    ends_with_match = true;
                }
            }
        }
    }

    /// The match length of length code `sym` (257..).
    #[inline]
    fn length(&mut self, sym: u16) -> Result<u16, ScanError> {
        let i = usize::from(sym - 257);
        let base = *LENGTH_BASE.get(i).ok_or(ScanError::Invalid)?;
        Ok(base + self.bits.take(u32::from(LENGTH_EXTRA[i])) as u16)
    }

    /// Decodes a distance.
    #[inline]
    fn distance(&mut self) -> Result<u16, ScanError> {
        let sym = self.dist.decode(&mut self.bits).ok_or(ScanError::Invalid)?;
        let i = usize::from(sym);
        let base = *DIST_BASE.get(i).ok_or(ScanError::Invalid)?;
        Ok(base + self.bits.take(u32::from(DIST_EXTRA[i])) as u16)
    }

    /// Counts `n` bytes of output; past the payload's end (the reader pads with zero bits, in
    /// which a truncated block could otherwise go on decoding) the stream is invalid.
    #[inline]
    fn advance(&mut self, n: u64) -> Result<(), ScanError> {
        self.out += n;
        if self.out > self.max_out {
            return Err(ScanError::TooLong);
        }
        if self.bits.overrun() {
            return Err(ScanError::Invalid);
        }
        Ok(())
    }
}

/// The fixed literal/length and distance codes (RFC 1951 §3.2.6).
fn fixed_codes() -> (Huffman, Huffman) {
    let mut lit = [8u8; 288];
    lit[144..256].fill(9);
    lit[256..280].fill(7);
    // Codes 286 and 287 take part in the code but are no valid symbols (length() refuses them).
    let lit = Huffman::new(&lit).expect("fixed code");
    // Likewise distance codes 30 and 31.
    let dist = Huffman::new(&[5u8; 32]).expect("fixed code");
    (lit, dist)
}
