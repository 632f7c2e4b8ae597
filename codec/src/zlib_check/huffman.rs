//! Decoding deflate's canonical Huffman codes (RFC 1951 §3.2.2) from their code lengths.
//!
//! A code is decoded with one lookup in a table indexed by the next [`FAST_BITS`] bits of
//! the stream (codes are sent most significant bit first, so the table is indexed by the
//! bit-reversed code). Longer codes are rare by construction (a code of n bits stands for a
//! symbol of frequency about 2^-n); they are decoded bit by bit from the counts of codes of
//! each length. Sets of lengths zlib's inflate refuses (over-subscribed, or incomplete with more
//! than one code) are refused here too.

use super::bits::BitReader;

/// Bits resolved by one table lookup.
const FAST_BITS: u32 = 10;
/// The longest code deflate allows.
pub(super) const MAX_BITS: usize = 15;

/// Lengths that do not form a code zlib's inflate accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BadCode;

/// A decoder for one canonical code.
pub(super) struct Huffman {
    /// Indexed by the next FAST_BITS bits: `symbol << 4 | length`, or 0 when the code is
    /// longer (or the bits are no code at all).
    fast: [u16; 1 << FAST_BITS],
    /// Number of codes of each length.
    count: [u16; MAX_BITS + 1],
    /// Symbols in canonical order (by length, then by symbol).
    symbols: [u16; 288],
}

impl Huffman {
    /// The code with code length `lengths[s]` for symbol `s` (0: the symbol has no code).
    pub(super) fn new(lengths: &[u8]) -> Result<Huffman, BadCode> {
        let mut h = Huffman {
            fast: [0; 1 << FAST_BITS],
            count: [0; MAX_BITS + 1],
            symbols: [0; 288],
        };
        h.build(lengths)?;
        Ok(h)
    }

    /// Replaces the code with the one of `lengths`.
    pub(super) fn build(&mut self, lengths: &[u8]) -> Result<(), BadCode> {
        debug_assert!(lengths.len() <= self.symbols.len());
        self.count = [0; MAX_BITS + 1];
        for &len in lengths {
            self.count[usize::from(len)] += 1;
        }
        self.count[0] = 0;
        check_lengths(&self.count)?;
        let mut offset = [0u16; MAX_BITS + 2];
        for len in 1..=MAX_BITS {
            offset[len + 1] = offset[len] + self.count[len];
        }
        for (symbol, &len) in lengths.iter().enumerate() {
            if len != 0 {
                let slot = &mut offset[usize::from(len)];
                self.symbols[usize::from(*slot)] = symbol as u16;
                *slot += 1;
            }
        }
        self.fill_fast();
        Ok(())
    }

    /// Fills the lookup table with every code of at most FAST_BITS bits.
    fn fill_fast(&mut self) {
        self.fast = [0; 1 << FAST_BITS];
        let mut code = 0u32;
        let mut index = 0usize;
        for len in 1..=FAST_BITS as usize {
            for _ in 0..self.count[len] {
                let symbol = self.symbols[index];
                let entry = symbol << 4 | len as u16;
                let reversed = code.reverse_bits() >> (32 - len);
                let step = 1usize << len;
                let mut slot = reversed as usize;
                while slot < self.fast.len() {
                    self.fast[slot] = entry;
                    slot += step;
                }
                code += 1;
                index += 1;
            }
            code <<= 1;
        }
    }

    /// Decodes one symbol; the reader must hold at least [`MAX_BITS`] bits.
    #[inline]
    pub(super) fn decode(&self, bits: &mut BitReader) -> Option<u16> {
        let entry = self.fast[bits.peek(FAST_BITS) as usize];
        if entry != 0 {
            bits.consume(u32::from(entry & 15));
            return Some(entry >> 4);
        }
        self.decode_slow(bits)
    }

    /// Decodes bit by bit, for codes longer than FAST_BITS (None: the bits are no code).
    #[cold]
    fn decode_slow(&self, bits: &mut BitReader) -> Option<u16> {
        let next = bits.peek(MAX_BITS as u32);
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..=MAX_BITS {
            code |= ((next >> (len - 1)) & 1) as i32;
            let count = i32::from(self.count[len]);
            if code - first < count {
                bits.consume(len as u32);
                return Some(self.symbols[(index + code - first) as usize]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        None
    }
}

/// Refuses over-subscribed sets, and incomplete ones unless they hold a single code of one
/// bit (the one incomplete code zlib's inflate takes).
fn check_lengths(count: &[u16; MAX_BITS + 1]) -> Result<(), BadCode> {
    let mut left: i32 = 1;
    for &n in &count[1..] {
        left = (left << 1) - i32::from(n);
        if left < 0 {
            return Err(BadCode);
        }
    }
    let codes: u16 = count[1..].iter().sum();
    let single_one_bit = codes == 1 && count[1] == 1;
    if left > 0 && !single_one_bit && codes != 0 {
        return Err(BadCode);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `code` of `len` bits most significant bit first into an LSB-first bit string.
    fn push_code(out: &mut Vec<bool>, code: u32, len: u32) {
        for i in (0..len).rev() {
            out.push((code >> i) & 1 == 1);
        }
    }

    fn pack(bits: &[bool]) -> Vec<u8> {
        let mut bytes = vec![0u8; bits.len().div_ceil(8) + 8];
        for (i, &b) in bits.iter().enumerate() {
            bytes[i / 8] |= u8::from(b) << (i % 8);
        }
        bytes
    }

    #[test]
    fn decodes_short_and_long_codes() {
        // Lengths 1, 2, ..., 14, 15, 15: a complete code with codes past FAST_BITS.
        let mut lengths: Vec<u8> = (1..=15).collect();
        lengths.push(15);
        let h = Huffman::new(&lengths).unwrap();
        // Canonical codes: symbol s < 15 has code (2^(s+1) - 2) on s+1 bits.
        let mut bits = Vec::new();
        let order = [0usize, 14, 15, 3, 9, 10, 1, 12];
        for &s in &order {
            let len = lengths[s] as u32;
            let code = if s == 15 {
                (1 << 15) - 1
            } else {
                (1 << len) - 2
            };
            push_code(&mut bits, code, len);
        }
        let data = pack(&bits);
        let mut r = BitReader::new(&data, 0);
        for &s in &order {
            r.refill();
            assert_eq!(h.decode(&mut r), Some(s as u16));
        }
        assert_eq!(r.bit_pos(), bits.len() as u64);
    }

    #[test]
    fn refuses_what_inflate_refuses() {
        assert_eq!(Huffman::new(&[1, 1, 1]).err(), Some(BadCode)); // over-subscribed
        assert_eq!(Huffman::new(&[2, 2, 2]).err(), Some(BadCode)); // incomplete
        assert!(Huffman::new(&[0, 1]).is_ok()); // one distance code
        assert!(Huffman::new(&[0, 0]).is_ok()); // no code at all
                                                // The unused half of a single one-bit code is no symbol.
        let h = Huffman::new(&[1]).unwrap();
        let data = [0xffu8; 8];
        let mut r = BitReader::new(&data, 0);
        r.refill();
        assert_eq!(h.decode(&mut r), None);
    }
}
