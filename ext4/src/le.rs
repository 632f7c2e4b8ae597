//! Little-endian field access on byte buffers that never panics.
//!
//! Callers size their buffers for the structure they decode, so an out-of-range field is a
//! programming error rather than bad input; it reads as zero instead of panicking.

pub(crate) fn u8_at(buf: &[u8], off: usize) -> u8 {
    buf.get(off).copied().unwrap_or(0)
}

pub(crate) fn u16_at(buf: &[u8], off: usize) -> u16 {
    bytes::<2>(buf, off).map_or(0, u16::from_le_bytes)
}

pub(crate) fn u32_at(buf: &[u8], off: usize) -> u32 {
    bytes::<4>(buf, off).map_or(0, u32::from_le_bytes)
}

pub(crate) fn u64_at(buf: &[u8], off: usize) -> u64 {
    bytes::<8>(buf, off).map_or(0, u64::from_le_bytes)
}

pub(crate) fn bytes<const N: usize>(buf: &[u8], off: usize) -> Option<[u8; N]> {
    buf.get(off..off.checked_add(N)?)?.try_into().ok()
}
