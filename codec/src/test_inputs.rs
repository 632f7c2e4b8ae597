//! Inputs with known properties, shared by the tests of the crates that use codec (not meant
//! for production code).

/// Prose-like text of `len` bytes: made-up words between long known ones, so that fewer than
/// half of deflate's symbols are matches and the text compresses well. GNU gzip ends blocks
/// early in such text and zlib does not, so its `gzip -9n` form is re-created only by
/// [`crate::gnu_gzip`].
pub fn prose(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 10] = [
        "configuration",
        "description",
        "repository",
        "architecture",
        "dependencies",
        "installation",
        "maintainer",
        "preferences",
        "authentication",
        "compression",
    ];
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 24) as usize
    };
    let mut text = Vec::with_capacity(len + 32);
    while text.len() < len {
        let r = next() % 256;
        for _ in 0..5 + r % 5 {
            text.push(b'a' + (next() % 26) as u8);
        }
        text.push(b' ');
        text.extend_from_slice(WORDS[r % WORDS.len()].as_bytes());
        text.push(if r % 7 == 0 { b'\n' } else { b' ' });
    }
    text.truncate(len);
    text
}

/// `len` pseudo-random bytes (xorshift64, the same for the same seed): incompressible data.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}
