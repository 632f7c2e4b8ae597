//! Helpers shared by the `exe` integration tests.

/// xorshift64: random inputs that are the same on every run, so failures reproduce.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n`.
    #[allow(dead_code)] // not every test file draws bounded values
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
