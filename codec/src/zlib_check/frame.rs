//! The bytes around the deflate stream: the header codec::zlib writes and the trailer that
//! must follow the stream (gzip: CRC-32 and length of the content; zlib: its Adler-32).

use std::io;

use libz_sys as z;

use crate::zlib::{deflate_bytes, Container, DeflateParams};

/// The header codec::zlib's deflater writes for `params` (the same for every content).
pub(super) fn header(params: DeflateParams) -> io::Result<Vec<u8>> {
    let len = match params.container {
        Container::Raw => 0,
        Container::Zlib => 2,
        Container::Gzip => 10,
    };
    let mut whole = deflate_bytes(params, b"")?;
    whole.truncate(len);
    Ok(whole)
}

/// The trailer that follows the deflate stream of `content` in `container`.
pub(super) fn trailer(container: Container, content: &[u8]) -> Vec<u8> {
    match container {
        Container::Raw => Vec::new(),
        Container::Gzip => {
            let mut t = crc32fast::hash(content).to_le_bytes().to_vec();
            // ISIZE: the length modulo 2^32.
            t.extend_from_slice(&(content.len() as u32).to_le_bytes());
            t
        }
        Container::Zlib => adler32(content).to_be_bytes().to_vec(),
    }
}

/// zlib's Adler-32 of `data`.
fn adler32(data: &[u8]) -> u32 {
    // SAFETY: adler32 with a NULL buffer returns the initial value; otherwise it reads exactly
    // `len` bytes of a live slice.
    let mut sum = unsafe { z::adler32(0, std::ptr::null(), 0) };
    for piece in data.chunks(1 << 30) {
        sum = unsafe { z::adler32(sum, piece.as_ptr(), piece.len() as z::uInt) };
    }
    sum as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_match_what_the_deflater_writes() {
        let content: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        for container in [Container::Raw, Container::Zlib, Container::Gzip] {
            for level in [1, 6, 9] {
                let params = DeflateParams { container, level };
                let whole = deflate_bytes(params, &content).unwrap();
                let h = header(params).unwrap();
                let t = trailer(container, &content);
                assert!(whole.starts_with(&h), "{params:?}");
                assert!(whole.ends_with(&t), "{params:?}");
            }
        }
    }
}
