//! Comparing a restarted compressor's output with a bit range of the payload.
//!
//! The restarted stream is primed with as many bits as the range starts into its first byte
//! (see `stream::RawDeflate::prime`), so its bytes line up with the payload's bytes and the
//! comparison is a byte comparison, except for the bits before the range in the first byte
//! and, when the range ends inside a byte, the bits after it in the last one.

/// What the output seen so far says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Equal so far; more output is needed to cover the range.
    Pending,
    /// The whole range is covered and equal.
    Covered,
    /// A compared bit differs.
    Differs,
}

/// Compares output bytes, as they come, with the bits `start_bit..end_bit` of `payload`.
pub(super) struct RangeComparer<'a> {
    /// The payload bytes that hold the range.
    expected: &'a [u8],
    /// Bits of the first byte before the range.
    lead: u32,
    /// Bits of the range in its last byte (0: the range ends at a byte boundary).
    tail: u32,
    /// Bytes compared so far.
    seen: usize,
}

impl<'a> RangeComparer<'a> {
    pub(super) fn new(payload: &'a [u8], start_bit: u64, end_bit: u64) -> Self {
        let first = (start_bit / 8) as usize;
        let end = end_bit.div_ceil(8) as usize;
        RangeComparer {
            expected: &payload[first..end],
            lead: (start_bit % 8) as u32,
            tail: (end_bit % 8) as u32,
            seen: 0,
        }
    }

    /// Bits of the range's first byte before it (the stream's priming).
    pub(super) fn lead_bits(&self) -> u32 {
        self.lead
    }

    /// Compares the next output bytes; bytes past the range are ignored.
    pub(super) fn feed(&mut self, out: &[u8]) -> Verdict {
        let want = self.expected.len() - self.seen;
        let n = out.len().min(want);
        let (got, exp) = (&out[..n], &self.expected[self.seen..self.seen + n]);
        // Whole slices first; only the masked first and last bytes may differ in an equal range.
        if got != exp {
            let differs = got
                .iter()
                .zip(exp)
                .enumerate()
                .any(|(i, (&g, &e))| (g ^ e) & self.mask(self.seen + i) != 0);
            if differs {
                return Verdict::Differs;
            }
        }
        self.seen += n;
        if self.seen == self.expected.len() {
            Verdict::Covered
        } else {
            Verdict::Pending
        }
    }

    /// Number of payload bytes that hold the range.
    pub(super) fn expected_len(&self) -> u64 {
        self.expected.len() as u64
    }

    /// Whether every byte of the range was seen.
    pub(super) fn covered(&self) -> bool {
        self.seen == self.expected.len()
    }

    /// The bits of byte `i` (of `expected`) that belong to the range.
    fn mask(&self, i: usize) -> u8 {
        let mut m = 0xffu8;
        if i == 0 {
            m &= 0xff << self.lead;
        }
        if i + 1 == self.expected.len() && self.tail != 0 {
            m &= 0xff >> (8 - self.tail);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_only_the_bits_of_the_range() {
        let payload = [0b1010_1010u8, 0x5a, 0b0000_0110];
        // Bits 3..19: the first byte's top five bits, byte 1, the last byte's low three bits.
        let mut c = RangeComparer::new(&payload, 3, 19);
        assert_eq!(c.lead_bits(), 3);
        assert_eq!(c.feed(&[0b1010_1000]), Verdict::Pending);
        assert_eq!(c.feed(&[0x5a, 0b1111_1110, 0x99]), Verdict::Covered);
        let mut c = RangeComparer::new(&payload, 3, 19);
        assert_eq!(c.feed(&[0b1011_1010]), Verdict::Differs);
        let mut c = RangeComparer::new(&payload, 3, 19);
        assert_eq!(c.feed(&[0b1010_1111, 0x5a, 0b0000_0010]), Verdict::Differs);
        // A range ending on a byte boundary compares whole bytes.
        let mut c = RangeComparer::new(&payload, 0, 16);
        assert_eq!(c.feed(&payload[..2]), Verdict::Covered);
        assert!(c.covered());
    }
}
