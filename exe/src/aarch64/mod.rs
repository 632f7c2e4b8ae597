//! aarch64 references: branches, literal loads, and the ADR/ADRP address computations.
//!
//! Instructions are 4 little-endian bytes at 4-aligned addresses, so a scan simply looks at
//! every word. Position-independent code reaches data with an `ADRP` (the 4 KiB page, relative
//! to the instruction's page) followed by an `ADD` or a load/store that adds the low 12 bits;
//! a moved target changes both words, so such a pair is one reference ([`Kind::AdrpPair`]),
//! found by looking a few instructions ahead for the first use of the ADRP's register as a
//! base. An ADRP without such a partner is a reference to the page alone.
//!
//! Covered: B, BL (imm26); B.cond, CBZ/CBNZ, LDR/LDRSW/PRFM literal (imm19); TBZ/TBNZ (imm14);
//! ADR (imm21); ADRP with ADD (64-bit, immediate) or an unsigned-offset LDR/STR partner.
//!
//! Stack offsets are no references, but a rebuild can move them too: [`shift_stack_offset`]
//! moves them all by one amount, [`frames`] function by function as the new prologues show.

use crate::{Isa, Ref};

pub mod frames;

/// The aarch64 instruction set (A64).
pub struct Aarch64;

/// How far after an ADRP its partner is looked for, in instructions.
const PAIR_WINDOW: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// B, BL: signed 26-bit word offset in bits 0..26.
    Branch26,
    /// B.cond, CBZ, CBNZ, LDR literal: signed 19-bit word offset in bits 5..24.
    Imm19,
    /// TBZ, TBNZ: signed 14-bit word offset in bits 5..19.
    Imm14,
    /// ADR: signed 21-bit byte offset (immlo in bits 29..31, immhi in bits 5..24).
    Adr,
    /// ADRP alone: signed 21-bit page offset from the instruction's page. Re-targeted to the
    /// page that holds the new target.
    Adrp,
    /// ADRP and, `words` instructions later, an ADD or load/store adding the low 12 bits
    /// (scaled by `scale`: log2 of the access size, 0 for ADD).
    AdrpPair { words: u8, scale: u8 },
}

fn word(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn put(bytes: &mut [u8], at: usize, w: u32) {
    bytes[at..at + 4].copy_from_slice(&w.to_le_bytes());
}

/// Sign-extends the low `bits` bits of `v`.
fn sext(v: u32, bits: u32) -> i64 {
    let shift = 64 - bits;
    (((v as u64) << shift) as i64) >> shift
}

/// Whether `v` fits a signed field of `bits` bits.
fn fits(v: i64, bits: u32) -> bool {
    let half = 1i64 << (bits - 1);
    (-half..half).contains(&v)
}

/// The kind of single-word reference `w` is, if any (ADRP is classified by the scan, which
/// looks for its partner).
fn single(w: u32) -> Option<Kind> {
    if w & 0x7C00_0000 == 0x1400_0000 {
        Some(Kind::Branch26)
    } else if w & 0xFF00_0010 == 0x5400_0000
        || w & 0x7E00_0000 == 0x3400_0000
        || w & 0x3B00_0000 == 0x1800_0000
    {
        Some(Kind::Imm19)
    } else if w & 0x7E00_0000 == 0x3600_0000 {
        Some(Kind::Imm14)
    } else if w & 0x9F00_0000 == 0x1000_0000 {
        Some(Kind::Adr)
    } else {
        None
    }
}

fn is_adrp(w: u32) -> bool {
    w & 0x9F00_0000 == 0x9000_0000
}

/// If `w` adds a 12-bit immediate to register `base` (ADD Xd, Xbase, #imm, or a load/store
/// with an unsigned offset from Xbase), the immediate's scale (log2 of the access size).
fn low12_user(w: u32, base: u32) -> Option<u8> {
    if (w >> 5) & 31 != base {
        return None;
    }
    if w & 0xFFC0_0000 == 0x9100_0000 {
        return Some(0);
    }
    if w & 0x3B00_0000 == 0x3900_0000 {
        let size = w >> 30;
        let vector = w & (1 << 26) != 0;
        let opc = (w >> 22) & 3;
        // 128-bit vector registers: size 00 with opc 1x.
        let scale = if vector && size == 0 && opc >= 2 {
            4
        } else {
            size
        };
        return Some(scale as u8);
    }
    None
}

/// Whether `w` writes register `reg` (approximately: any instruction with Rd = reg that is not
/// a store or a branch); used to stop the partner search when the ADRP's result is replaced.
fn overwrites(w: u32, reg: u32) -> bool {
    let stores_or_branches = w & 0x1C00_0000 == 0x1400_0000 || w & 0x3A40_0000 == 0x3800_0000;
    w & 31 == reg && !stores_or_branches
}

/// The ADRP at word `at` of `code` as a reference, with its partner if one follows.
fn adrp_kind(code: &[u8], at: usize, w: u32) -> Kind {
    let reg = w & 31;
    for words in 1..=PAIR_WINDOW {
        let Some(next) = word(code, at + 4 * words) else {
            break;
        };
        if let Some(scale) = low12_user(next, reg) {
            return Kind::AdrpPair {
                words: words as u8,
                scale,
            };
        }
        if overwrites(next, reg) {
            break;
        }
    }
    Kind::Adrp
}

fn adrp_page_offset(w: u32) -> i64 {
    let imm = ((w >> 29) & 3) | (((w >> 5) & 0x7_FFFF) << 2);
    sext(imm, 21) << 12
}

fn with_adr_imm(w: u32, imm: u32) -> u32 {
    (w & !0x60FF_FFE0) | ((imm & 3) << 29) | (((imm >> 2) & 0x7_FFFF) << 5)
}

fn page(a: u64) -> u64 {
    a & !0xFFF
}

impl Isa for Aarch64 {
    type Kind = Kind;

    fn scan(code: &[u8], _vaddr: u64, out: &mut Vec<Ref<Kind>>) {
        for at in (0..code.len() / 4).map(|i| i * 4) {
            let Some(w) = word(code, at) else { break };
            let kind = if is_adrp(w) {
                Some(adrp_kind(code, at, w))
            } else {
                single(w)
            };
            if let Some(kind) = kind {
                out.push(Ref { at, kind });
            }
        }
    }

    fn span(kind: Kind) -> usize {
        match kind {
            Kind::AdrpPair { words, .. } => 4 + 4 * words as usize,
            _ => 4,
        }
    }

    fn target(kind: Kind, bytes: &[u8], pc: u64) -> Option<u64> {
        let w = word(bytes, 0)?;
        let offset = match kind {
            Kind::Branch26 if single(w) == Some(kind) => sext(w & 0x03FF_FFFF, 26) << 2,
            Kind::Imm19 if single(w) == Some(kind) => sext((w >> 5) & 0x7_FFFF, 19) << 2,
            Kind::Imm14 if single(w) == Some(kind) => sext((w >> 5) & 0x3FFF, 14) << 2,
            Kind::Adr if single(w) == Some(kind) => {
                sext(((w >> 29) & 3) | (((w >> 5) & 0x7_FFFF) << 2), 21)
            }
            Kind::Adrp if is_adrp(w) => {
                return Some(page(pc).wrapping_add(adrp_page_offset(w) as u64))
            }
            Kind::AdrpPair { words, scale } if is_adrp(w) => {
                let second = word(bytes, 4 * words as usize)?;
                low12_user(second, w & 31).filter(|&s| s == scale)?;
                let low = (((second >> 10) & 0xFFF) as u64) << scale;
                let base = page(pc).wrapping_add(adrp_page_offset(w) as u64);
                return Some(base.wrapping_add(low));
            }
            _ => return None,
        };
        Some(pc.wrapping_add(offset as u64))
    }

    fn retarget(kind: Kind, bytes: &mut [u8], pc: u64, target: u64) -> bool {
        let Some(w) = word(bytes, 0) else {
            return false;
        };
        if Self::target(kind, bytes, pc).is_none() {
            return false;
        }
        let delta = target.wrapping_sub(pc) as i64;
        let words = delta >> 2;
        let aligned = delta & 3 == 0;
        let new = match kind {
            Kind::Branch26 if aligned && fits(words, 26) => {
                (w & !0x03FF_FFFF) | (words as u32 & 0x03FF_FFFF)
            }
            Kind::Imm19 if aligned && fits(words, 19) => {
                (w & !0x00FF_FFE0) | ((words as u32 & 0x7_FFFF) << 5)
            }
            Kind::Imm14 if aligned && fits(words, 14) => {
                (w & !0x0007_FFE0) | ((words as u32 & 0x3FFF) << 5)
            }
            Kind::Adr if fits(delta, 21) => with_adr_imm(w, delta as u32),
            Kind::Adrp => match page_delta(pc, target) {
                Some(pages) => with_adr_imm(w, pages),
                None => return false,
            },
            Kind::AdrpPair { words, scale } => {
                return retarget_pair(bytes, w, words, scale, pc, target)
            }
            _ => return false,
        };
        put(bytes, 0, new);
        true
    }
}

/// The ADRP immediate that reaches `target`'s page from `pc`'s, if it fits 21 bits.
fn page_delta(pc: u64, target: u64) -> Option<u32> {
    let pages = (page(target).wrapping_sub(page(pc)) as i64) >> 12;
    fits(pages, 21).then_some(pages as u32)
}

fn retarget_pair(bytes: &mut [u8], w: u32, words: u8, scale: u8, pc: u64, target: u64) -> bool {
    let at = 4 * words as usize;
    let (Some(second), Some(pages)) = (word(bytes, at), page_delta(pc, target)) else {
        return false;
    };
    let low = target & 0xFFF;
    if low & ((1 << scale) - 1) != 0 {
        return false;
    }
    let imm12 = (low >> scale) as u32;
    put(bytes, 0, with_adr_imm(w, pages));
    put(bytes, at, (second & !(0xFFF << 10)) | (imm12 << 10));
    true
}

/// A rebuilt function's stack frame can change shape as a whole: a compiler that no longer
/// reserves an area at the bottom of every frame moves every local by the same amount. If `w`
/// addresses the stack at an offset of at least `from` bytes (LDR/STR with an unsigned offset
/// or LDP/STP with a signed offset from SP, or ADD/SUB of an immediate to SP, which also
/// sizes frames), the same instruction with `by` added to the offset; `None` for any other
/// word, or when the new offset cannot be encoded.
pub fn shift_stack_offset(w: u32, from: u64, by: i64) -> Option<u32> {
    let rn = (w >> 5) & 31;
    if rn != 31 {
        return None;
    }
    let (offset, scale, field, bits) = if let Some((offset, scale)) = stack_load_store(w) {
        (offset, scale, 10, 12)
    } else if let Some(scale) = pair_scale(w, 0x2900_0000) {
        // LDP/STP (signed offset).
        (sext((w >> 15) & 0x7F, 7) << scale, scale, 15, 7)
    } else if let Some(scale) = pair_scale(w, 0x2880_0000).or_else(|| pair_scale(w, 0x2980_0000)) {
        // LDP/STP with pre- or post-index: frames allocated and freed; the amount moves.
        let value = sext((w >> 15) & 0x7F, 7) << scale;
        let shifted = away(value, from, by)?;
        if shifted & ((1 << scale) - 1) != 0 || !fits(shifted >> scale, 7) {
            return None;
        }
        return Some((w & !(0x7F << 15)) | (((shifted >> scale) as u32 & 0x7F) << 15));
    } else if w & 0x1F80_0000 == 0x1100_0000 && (w >> 22) & 1 == 0 {
        // ADD/SUB (immediate, unshifted), 32- or 64-bit.
        let imm = ((w >> 10) & 0xFFF) as i64;
        let sub = w & (1 << 30) != 0;
        return shift_add_sub(w, if sub { -imm } else { imm }, from, by);
    } else {
        return None;
    };
    if offset < 0 || (offset as u64) < from {
        return None;
    }
    let shifted = offset + by;
    if shifted < 0 || shifted & ((1 << scale) - 1) != 0 {
        return None;
    }
    let scaled = shifted >> scale;
    let mask = (1u32 << bits) - 1;
    let fits = if bits == 7 {
        fits(scaled, 7)
    } else {
        scaled <= mask as i64
    };
    fits.then(|| (w & !(mask << field)) | ((scaled as u32 & mask) << field))
}

/// If `w` is an LDP/STP of the addressing form `form` (bits 23..25 and 27..29: `0x2900_0000`
/// signed offset, `0x2880_0000` post-index, `0x2980_0000` pre-index), log2 of the size of one
/// register (opc gives it: 4 or 8 bytes, or 4 to 16 for vector registers).
fn pair_scale(w: u32, form: u32) -> Option<u32> {
    if w & 0x3B80_0000 != form {
        return None;
    }
    let opc = w >> 30;
    Some(if w & (1 << 26) != 0 {
        2 + opc
    } else {
        2 + (opc >> 1)
    })
}

/// If `w` is a load or store with an unsigned offset from SP (`ldr x0, [sp, #16]`), the
/// offset in bytes and its scale (log2 of the access size).
pub fn stack_load_store(w: u32) -> Option<(i64, u32)> {
    if w & 0x3B00_0000 != 0x3900_0000 || (w >> 5) & 31 != 31 {
        return None;
    }
    let size = w >> 30;
    let vector = w & (1 << 26) != 0;
    let scale = if vector && size == 0 && (w >> 22) & 3 >= 2 {
        4
    } else {
        size
    };
    Some(((((w >> 10) & 0xFFF) as i64) << scale, scale))
}

/// [`shift_stack_offset`] for ADD/SUB: the signed amount `value` moves by `by` away from zero
/// (a frame allocation `sub sp, sp, #n` shrinks with its frame), keeping the instruction.
fn shift_add_sub(w: u32, value: i64, from: u64, by: i64) -> Option<u32> {
    let shifted = away(value, from, by)?;
    if shifted.unsigned_abs() > 0xFFF {
        return None;
    }
    Some((w & !(0xFFF << 10)) | ((shifted.unsigned_abs() as u32) << 10))
}

/// A stack amount `value` (negative: allocated) of at least `from` bytes, moved by `by` away
/// from zero; `None` if it is smaller or would change sign.
fn away(value: i64, from: u64, by: i64) -> Option<i64> {
    if value.unsigned_abs() < from || value == 0 {
        return None;
    }
    let shifted = if value < 0 { value - by } else { value + by };
    (shifted.signum() == value.signum()).then_some(shifted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn scan(code: &[u8]) -> Vec<Ref<Kind>> {
        let mut out = Vec::new();
        Aarch64::scan(code, 0x1000, &mut out);
        out
    }

    #[test]
    fn reads_branches_as_objdump_does() {
        // Encodings and targets from aarch64-linux-gnu-objdump, at address 0x1000.
        let cases: [(u32, Kind, u64); 8] = [
            (0x9400_0010, Kind::Branch26, 0x1040), // bl 0x1040
            (0x17FF_FFFF, Kind::Branch26, 0x0FFC), // b 0xffc
            (0x5400_0080, Kind::Imm19, 0x1010),    // b.eq 0x1010
            (0xB400_0041, Kind::Imm19, 0x1008),    // cbz x1, 0x1008
            (0x5800_0040, Kind::Imm19, 0x1008),    // ldr x0, 0x1008
            (0x3600_0060, Kind::Imm14, 0x100C),    // tbz w0, #0, 0x100c
            (0x1000_0020, Kind::Adr, 0x1004),      // adr x0, 0x1004
            (0x3000_0000, Kind::Adr, 0x1001),      // adr x0, 0x1001
        ];
        for (w, kind, target) in cases {
            let code = words(&[w]);
            assert_eq!(scan(&code), vec![Ref { at: 0, kind }], "{w:08x}");
            assert_eq!(
                Aarch64::target(kind, &code, 0x1000),
                Some(target),
                "{w:08x}"
            );
        }
    }

    #[test]
    fn adrp_pairs_with_the_add_or_load_that_uses_its_register() {
        // adrp x1, 0x22000 ; mov x2, x3 ; ldr x0, [x1, #0x18]  (at 0x1000)
        let code = words(&[0xB000_0101, 0xAA03_03E2, 0xF940_0C20]);
        let refs = scan(&code);
        let kind = Kind::AdrpPair { words: 2, scale: 3 };
        assert_eq!(refs, vec![Ref { at: 0, kind }]);
        assert_eq!(Aarch64::target(kind, &code, 0x1000), Some(0x22018));
        // adrp x0, page ; add x0, x0, #0x123
        let code = words(&[0x9000_0000, 0x9104_8C00]);
        let kind = Kind::AdrpPair { words: 1, scale: 0 };
        assert_eq!(scan(&code)[0], Ref { at: 0, kind });
        assert_eq!(Aarch64::target(kind, &code, 0x1000), Some(0x1123));
        // A register overwritten before any use leaves the ADRP alone.
        let code = words(&[0x9000_0000, 0xAA03_03E0, 0x9104_8C00]);
        assert_eq!(scan(&code)[0].kind, Kind::Adrp);
    }

    #[test]
    fn retargeting_round_trips_and_refuses_what_cannot_be_encoded() {
        let code = words(&[0xB000_0101, 0xAA03_03E2, 0xF940_0C20]);
        let kind = Kind::AdrpPair { words: 2, scale: 3 };
        let mut b = code.clone();
        assert!(Aarch64::retarget(kind, &mut b, 0x5000, 0x123_4568));
        assert_eq!(Aarch64::target(kind, &b, 0x5000), Some(0x123_4568));
        assert_eq!(b[4..8], code[4..8], "the instruction between is untouched");
        let mut b = code.clone();
        assert!(
            !Aarch64::retarget(kind, &mut b, 0x5000, 0x123_4564),
            "misaligned for x"
        );
        assert_eq!(b, code);
        let mut bl = words(&[0x9400_0010]);
        assert!(Aarch64::retarget(
            Kind::Branch26,
            &mut bl,
            0x1000,
            0x80_0000
        ));
        assert_eq!(
            Aarch64::target(Kind::Branch26, &bl, 0x1000),
            Some(0x80_0000)
        );
        assert_eq!(bl[3] & 0xFC, 0x94, "still a BL");
        assert!(!Aarch64::retarget(
            Kind::Branch26,
            &mut bl,
            0x1000,
            0x1000 + (1 << 28)
        ));
        let mut tbz = words(&[0x3600_0060]);
        assert!(Aarch64::retarget(
            Kind::Imm14,
            &mut tbz,
            0x10000,
            0x10000 - 0x8000
        ));
        assert_eq!(
            Aarch64::target(Kind::Imm14, &tbz, 0x10000),
            Some(0x10000 - 0x8000)
        );
    }

    #[test]
    fn stack_offsets_shift_from_a_threshold_on() {
        // ldr x2, [sp, #0x68] -> [sp, #0x8]; str x5, [sp, #0x218] -> [sp, #0x1b8]
        assert_eq!(
            shift_stack_offset(0xF940_37E2, 0x60, -0x60),
            Some(0xF940_07E2)
        );
        assert_eq!(
            shift_stack_offset(0xF901_0FE5, 0x60, -0x60),
            Some(0xF900_DFE5)
        );
        // Below the threshold, or not SP-based: unchanged.
        assert_eq!(shift_stack_offset(0xF940_07E2, 0x60, -0x60), None);
        assert_eq!(shift_stack_offset(0xF940_3662, 0x60, -0x60), None);
        // stp x19, x20, [sp, #0x70] -> [sp, #0x10]
        assert_eq!(
            shift_stack_offset(0xA907_53F3, 0x60, -0x60),
            Some(0xA901_53F3)
        );
        // add x0, sp, #0x88 -> #0x28; sub sp, sp, #0x1a0 -> #0x140
        assert_eq!(
            shift_stack_offset(0x9102_23E0, 0x60, -0x60),
            Some(0x9100_A3E0)
        );
        assert_eq!(
            shift_stack_offset(0xD106_83FF, 0x60, -0x60),
            Some(0xD105_03FF)
        );
        // stp x29, x30, [sp, #-0x80]! -> #-0x20; ldp x29, x30, [sp], #0x80 -> #0x20
        assert_eq!(
            shift_stack_offset(0xA9B8_7BFD, 0x60, -0x60),
            Some(0xA9BE_7BFD)
        );
        assert_eq!(
            shift_stack_offset(0xA8C8_7BFD, 0x60, -0x60),
            Some(0xA8C2_7BFD)
        );
        // Misaligned for the access size: refused.
        assert_eq!(shift_stack_offset(0xF940_37E2, 0x60, -0x64), None);
    }

    #[test]
    fn random_words_never_panic_and_retargets_read_back() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let code: Vec<u8> = (0..64).map(|_| next() as u8).collect();
            let mut refs = Vec::new();
            Aarch64::scan(&code[..next() as usize % 65], next(), &mut refs);
            for r in refs {
                let mut bytes = code[r.at..].to_vec();
                let pc = next() & 0xFFFF_FFFC;
                let target = pc.wrapping_add(next() % 0x10_0000).wrapping_sub(0x8_0000);
                if Aarch64::retarget(r.kind, &mut bytes, pc, target) {
                    let expected = match r.kind {
                        Kind::Adrp => page(target),
                        _ => target,
                    };
                    assert_eq!(Aarch64::target(r.kind, &bytes, pc), Some(expected));
                }
            }
        }
    }
}
