//! Reading a deflate stream bit by bit, least significant bit of each byte first (RFC 1951
//! §3.1.1), with positions kept in bits from the start of the payload.
//!
//! The reader keeps up to 63 bits in a 64-bit word and refills it eight bytes at a time, so the
//! block scanner needs one refill per symbol. Past the end of the data it reads zero bits and
//! counts them; [`BitReader::overrun`] tells whether anything read so far lay beyond the end.

/// A position-keeping bit reader over a byte slice.
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    /// The next byte to load into `word` (may pass the end: those bytes read as zero).
    next: usize,
    word: u64,
    /// Valid bits in `word`.
    count: u32,
}

/// Bits a refill guarantees at least.
pub(super) const REFILLED: u32 = 56;

impl<'a> BitReader<'a> {
    /// A reader starting at byte `start` of `data`.
    pub(super) fn new(data: &'a [u8], start: usize) -> Self {
        BitReader {
            data,
            next: start,
            word: 0,
            count: 0,
        }
    }

    /// Tops the word up to at least [`REFILLED`] bits.
    #[inline]
    pub(super) fn refill(&mut self) {
        if self.count >= REFILLED {
            return;
        }
        match self.data.get(self.next..self.next + 8) {
            Some(eight) => {
                let loaded = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
                // Bits above the whole bytes taken are loaded again, identically, next time.
                self.word |= loaded << self.count;
                let taken = (63 - self.count) / 8;
                self.next += taken as usize;
                self.count += taken * 8;
            }
            None => self.refill_bytewise(),
        }
    }

    /// The refill near the end of the data: byte by byte, zeros past the end.
    fn refill_bytewise(&mut self) {
        while self.count <= REFILLED {
            let byte = self.data.get(self.next).copied().unwrap_or(0);
            self.word |= u64::from(byte) << self.count;
            self.next += 1;
            self.count += 8;
        }
    }

    /// The next `n` bits (n ≤ 32) without consuming them; needs a refill for them first.
    #[inline]
    pub(super) fn peek(&self, n: u32) -> u32 {
        (self.word & ((1u64 << n) - 1)) as u32
    }

    /// Drops `n` bits (n ≤ the bits held).
    #[inline]
    pub(super) fn consume(&mut self, n: u32) {
        debug_assert!(n <= self.count);
        self.word >>= n;
        self.count -= n;
    }

    /// Takes the next `n` bits (n ≤ 32, held after a refill).
    #[inline]
    pub(super) fn take(&mut self, n: u32) -> u32 {
        let v = self.peek(n);
        self.consume(n);
        v
    }

    /// The position of the next bit, in bits from the start of the data.
    pub(super) fn bit_pos(&self) -> u64 {
        self.next as u64 * 8 - u64::from(self.count)
    }

    /// Moves to byte `at` (the bits held are dropped).
    pub(super) fn seek_byte(&mut self, at: usize) {
        self.next = at;
        self.word = 0;
        self.count = 0;
    }

    /// Length of the data in bytes.
    pub(super) fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Whether a bit read so far lay past the end of the data.
    pub(super) fn overrun(&self) -> bool {
        self.bit_pos() > self.data.len() as u64 * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lsb_first_across_refills_and_past_the_end() {
        let data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let mut r = BitReader::new(&data, 0);
        let mut bits = Vec::new();
        for width in [1u32, 3, 7, 13, 5, 2, 17, 9].iter().cycle().take(60) {
            r.refill();
            let v = r.take(*width);
            for i in 0..*width {
                bits.push((v >> i) & 1);
            }
        }
        let expected: Vec<u32> = data
            .iter()
            .flat_map(|b| (0..8).map(move |i| u32::from(b >> i) & 1))
            .chain(std::iter::repeat(0))
            .take(bits.len())
            .collect();
        assert_eq!(bits, expected);
        assert_eq!(r.bit_pos(), bits.len() as u64);
        assert!(r.overrun());
    }

    #[test]
    fn seek_restarts_at_a_byte() {
        let data = [0xffu8, 0x01, 0x80];
        let mut r = BitReader::new(&data, 0);
        r.seek_byte(1);
        r.refill();
        assert_eq!(r.take(8), 1);
        assert_eq!(r.bit_pos(), 16);
        assert!(!r.overrun());
    }
}
