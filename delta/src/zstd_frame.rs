//! Reading the header of a zstd frame (RFC 8878 §3.1.1) to learn its window and content size
//! before decoding, so the writer can refuse frames the device cannot decode and the applier can
//! refuse frames that would exceed its memory bound.

/// What a frame header says about the memory a decoder needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Window size in bytes (for single-segment frames, the content size).
    pub window_size: u64,
    /// Declared content size, if the frame records it.
    pub content_size: Option<u64>,
}

const MAGIC: u32 = 0xFD2F_B528;
/// Skippable frames have magics 0x184D2A50..=0x184D2A5F.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

/// Why a header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("zstd frame header is truncated ({0} bytes)")]
    Truncated(usize),
    #[error("not a zstd frame (magic {0:#010x})")]
    BadMagic(u32),
    #[error("a skippable zstd frame comes first; the window cannot be checked")]
    Skippable,
    #[error("zstd frame header has the reserved bit set")]
    Reserved,
}

/// Longest possible frame header: magic 4, descriptor 1, window 1, dictionary id 4, size 8.
pub const MAX_HEADER_LEN: usize = 18;

/// Parses the header at the start of `data`.
pub fn parse(data: &[u8]) -> Result<FrameHeader, FrameError> {
    let truncated = || FrameError::Truncated(data.len());
    let magic_bytes: [u8; 4] = data
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(truncated)?;
    let magic = u32::from_le_bytes(magic_bytes);
    if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
        return Err(FrameError::Skippable);
    }
    if magic != MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    let descriptor = *data.get(4).ok_or_else(truncated)?;
    if descriptor & 0x08 != 0 {
        return Err(FrameError::Reserved);
    }
    let size_flag = descriptor >> 6;
    let single_segment = descriptor & 0x20 != 0;
    let dict_id_len = [0usize, 1, 2, 4][usize::from(descriptor & 3)];
    let mut at = 5;
    let window_from_descriptor = if single_segment {
        None
    } else {
        let w = *data.get(at).ok_or_else(truncated)?;
        at += 1;
        let log = 10 + u32::from(w >> 3);
        let base = 1u64 << log;
        Some(base + (base / 8) * u64::from(w & 7))
    };
    at += dict_id_len;
    let size_len = match (size_flag, single_segment) {
        (0, false) => 0,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let size_bytes = data.get(at..at + size_len).ok_or_else(truncated)?;
    let content_size = if size_len == 0 {
        None
    } else {
        let mut le = [0u8; 8];
        le[..size_len].copy_from_slice(size_bytes);
        let raw = u64::from_le_bytes(le);
        Some(if size_len == 2 { raw + 256 } else { raw })
    };
    // A single-segment frame always records its size; the window is the whole content.
    let window_size = window_from_descriptor.or(content_size).unwrap_or(0);
    Ok(FrameHeader {
        window_size,
        content_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use codec::zstd::{compress_bytes, ZstdParams};

    #[test]
    fn reads_sizes_of_real_frames() {
        let data = vec![7u8; 300_000];
        let frame = compress_bytes(ZstdParams::profile(3), &data).unwrap();
        let h = parse(&frame).unwrap();
        assert_eq!(h.content_size, Some(300_000));
        assert!(h.window_size >= 300_000 / 2, "{h:?}");
        let small = compress_bytes(ZstdParams::profile(3), b"hello").unwrap();
        assert_eq!(
            parse(&small).unwrap(),
            FrameHeader {
                window_size: 5,
                content_size: Some(5)
            }
        );
        assert_eq!(parse(&frame[..3]), Err(FrameError::Truncated(3)));
        assert!(matches!(parse(b"PAMZxxxx"), Err(FrameError::BadMagic(_))));
    }
}
