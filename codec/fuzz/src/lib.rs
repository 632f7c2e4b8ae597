//! Fixed inputs shared by the codec fuzz targets and their seed script (`make-corpus.sh`
//! builds the same bytes in Python; keep the two in step).

use std::io::{self, Read};

/// Output read from any one decoder per input, at most: enough for every real seed, small
/// enough that a decompression bomb costs well under a second.
pub const OUTPUT_LIMIT: u64 = 16 << 20;

/// The fixed old file of `bspatch` and the zstd basis of `decoders`: 80 lines of
/// `line NNNN: the quick brown fox jumps over the lazy dog\n` (4,400 bytes).
pub fn old() -> Vec<u8> {
    (0..80)
        .flat_map(|i| {
            format!("line {i:04}: the quick brown fox jumps over the lazy dog\n").into_bytes()
        })
        .collect()
}

/// Reads `r` to its end or to `limit` bytes, in chunks of `chunk` bytes; returns the bytes read
/// and whether the stream ended without error before the limit.
pub fn drain(r: &mut dyn Read, limit: u64, chunk: usize) -> (u64, io::Result<bool>) {
    let mut buf = vec![0u8; chunk.max(1)];
    let mut total = 0u64;
    loop {
        let want = (buf.len() as u64).min(limit + 1 - total) as usize;
        match r.read(&mut buf[..want]) {
            Ok(0) => return (total, Ok(true)),
            Ok(n) => {
                total += n as u64;
                if total > limit {
                    return (total, Ok(false));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (total, Err(e)),
        }
    }
}
