//! References in data: absolute pointers (relocation tables, `.data.rel.ro`, the GOT, symbol
//! values) and 32-bit offsets from a base (`.eh_frame`'s pc-relative function addresses,
//! `.eh_frame_hdr`'s search table).
//!
//! Data has no instructions to decode, so every aligned word is reported; whether it really
//! is a reference is decided by where it points (the caller maps only targets inside the
//! image, and for offsets only targets in code). A rebuilt library's relocation table and
//! unwind tables change in every entry whose function moved, which a byte patch pays for
//! entry by entry.

use crate::{Isa, Ref};

/// Little-endian 64-bit absolute addresses at 8-aligned offsets.
pub struct Abs64;
/// Little-endian 32-bit absolute addresses at 4-aligned offsets.
pub struct Abs32;
/// Little-endian signed 32-bit offsets from `pc` at 4-aligned offsets (`pc` is the word's
/// own address for pc-relative tables, or the table's base for base-relative ones).
pub struct Rel32;

/// The single kind of a data word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word;

fn scan_words(code: &[u8], size: usize, out: &mut Vec<Ref<Word>>) {
    out.extend((0..code.len() / size).map(|i| Ref {
        at: i * size,
        kind: Word,
    }));
}

fn read<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    bytes.get(..N)?.try_into().ok()
}

impl Isa for Abs64 {
    type Kind = Word;

    fn scan(code: &[u8], _vaddr: u64, out: &mut Vec<Ref<Word>>) {
        scan_words(code, 8, out);
    }

    fn span(_: Word) -> usize {
        8
    }

    fn target(_: Word, bytes: &[u8], _pc: u64) -> Option<u64> {
        Some(u64::from_le_bytes(read(bytes)?))
    }

    fn retarget(_: Word, bytes: &mut [u8], _pc: u64, target: u64) -> bool {
        match bytes.get_mut(..8) {
            Some(b) => {
                b.copy_from_slice(&target.to_le_bytes());
                true
            }
            None => false,
        }
    }
}

impl Isa for Abs32 {
    type Kind = Word;

    fn scan(code: &[u8], _vaddr: u64, out: &mut Vec<Ref<Word>>) {
        scan_words(code, 4, out);
    }

    fn span(_: Word) -> usize {
        4
    }

    fn target(_: Word, bytes: &[u8], _pc: u64) -> Option<u64> {
        Some(u32::from_le_bytes(read(bytes)?) as u64)
    }

    fn retarget(_: Word, bytes: &mut [u8], _pc: u64, target: u64) -> bool {
        match (bytes.get_mut(..4), u32::try_from(target)) {
            (Some(b), Ok(t)) => {
                b.copy_from_slice(&t.to_le_bytes());
                true
            }
            _ => false,
        }
    }
}

impl Isa for Rel32 {
    type Kind = Word;

    fn scan(code: &[u8], _vaddr: u64, out: &mut Vec<Ref<Word>>) {
        scan_words(code, 4, out);
    }

    fn span(_: Word) -> usize {
        4
    }

    fn target(_: Word, bytes: &[u8], pc: u64) -> Option<u64> {
        let offset = i32::from_le_bytes(read(bytes)?);
        Some(pc.wrapping_add(offset as i64 as u64))
    }

    fn retarget(_: Word, bytes: &mut [u8], pc: u64, target: u64) -> bool {
        let Ok(offset) = i32::try_from(target.wrapping_sub(pc) as i64) else {
            return false;
        };
        match bytes.get_mut(..4) {
            Some(b) => {
                b.copy_from_slice(&offset.to_le_bytes());
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_refuse_what_does_not_fit() {
        let mut refs = Vec::new();
        Abs64::scan(&[0; 20], 0, &mut refs);
        assert_eq!(refs.len(), 2, "whole words only");
        let mut b = [0u8; 8];
        assert!(Abs64::retarget(Word, &mut b, 0, 0x1234_5678_9abc));
        assert_eq!(Abs64::target(Word, &b, 0), Some(0x1234_5678_9abc));
        let mut b = [0u8; 4];
        assert!(!Abs32::retarget(Word, &mut b, 0, 1 << 32));
        assert!(Rel32::retarget(Word, &mut b, 0x10_0000, 0x8_0000));
        assert_eq!(Rel32::target(Word, &b, 0x10_0000), Some(0x8_0000));
        assert!(!Rel32::retarget(Word, &mut b, 0, 1 << 40));
        assert_eq!(Rel32::target(Word, &b[..3], 0), None);
    }
}
