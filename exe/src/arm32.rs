//! armv7 references: the long branches and PC-relative loads of ARM (A32) and Thumb-2 (T32)
//! code, the fields that change when a rebuilt firmware moves functions and literal pools.
//!
//! [`Arm`] reads 4-byte words from `code[0]`; [`Thumb`] sweeps from `code[0]`, a halfword whose
//! top five bits are `11101`, `11110` or `11111` starting a 32-bit instruction (first halfword
//! high). Found: A32 `B`, `BL`, `BLX` immediate, `LDR` literal; T32 `BL`, `BLX` immediate,
//! `B.W`, `B<c>.W`, `LDR.W` literal, `ADR.W` (`ADDW`/`SUBW Rd, PC`). Not the 16-bit Thumb
//! branches (`B`, `B<c>`, `CBZ`, `CBNZ`) and loads: short range, fields that rarely change.
//! Data in code (literal pools) may pass for instructions, and shift the Thumb sweep.
//!
//! Addresses are 32-bit: `pc` and a new target are taken modulo 2^32, targets are below 2^32
//! and offsets wrap as the CPU's do. A target is a byte address (an ARM-to-Thumb `BLX` gives
//! the even address). The mode of the code at a target is not known here, so a reference is
//! re-encoded only as the same instruction: a `BL` as `BL` whenever the offset fits, never
//! switched to `BLX` or back.

use crate::{Isa, Ref};

/// ARM (A32) code: 4-byte little-endian instructions.
pub struct Arm;

/// Thumb-2 (T32) code: 16- and 32-bit instructions of little-endian halfwords.
pub struct Thumb;

/// A reference of [`Arm`] or [`Thumb`] code. The kind alone says how its bytes are read, so
/// both ISAs' `target` and `retarget` accept every kind. All span 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A32 `B<c>` (A1): imm24 words from the instruction's address + 8 (±32 MiB).
    ArmB,
    /// A32 `BL<c>` (A1), the same field as [`Kind::ArmB`].
    ArmBl,
    /// A32 `BLX` immediate (A2), to Thumb code: imm24 words and H (bit 24) a halfword, from
    /// the instruction's address + 8.
    ArmBlx,
    /// A32 `LDR<c> Rt, [PC, #±imm12]` (literal, A1): a literal pool word, U (bit 23) the sign.
    ArmLdr,
    /// T32 `BL` (T1): S:I1:I2:imm10:imm11 halfwords from the instruction's address + 4.
    ThumbBl,
    /// T32 `BLX` immediate (T2), to ARM code: S:I1:I2:imm10H:imm10L words from
    /// Align(address + 4, 4).
    ThumbBlx,
    /// T32 `B.W` (T4), the same field as [`Kind::ThumbBl`] (±16 MiB).
    ThumbB,
    /// T32 `B<c>.W` (T3): S:J2:J1:imm6:imm11 halfwords from the address + 4 (±1 MiB).
    ThumbBcond,
    /// T32 `LDR.W Rt, [PC, #±imm12]` (literal, T2), from Align(address + 4, 4).
    ThumbLdr,
    /// T32 `ADR.W Rd, label`: `ADDW` (T3) or `SUBW` (T2) `Rd, PC, #i:imm3:imm8`, from
    /// Align(address + 4, 4); re-targeting switches between the two as the sign requires.
    ThumbAdr,
}

const ARM_KINDS: [Kind; 4] = [Kind::ArmB, Kind::ArmBl, Kind::ArmBlx, Kind::ArmLdr];
const THUMB_KINDS: [Kind; 6] = [
    Kind::ThumbBl,
    Kind::ThumbBlx,
    Kind::ThumbB,
    Kind::ThumbBcond,
    Kind::ThumbLdr,
    Kind::ThumbAdr,
];

impl Isa for Arm {
    type Kind = Kind;

    fn scan(code: &[u8], _vaddr: u64, out: &mut Vec<Ref<Kind>>) {
        for (i, word) in code.chunks_exact(4).enumerate() {
            if let Some(kind) = classify(&ARM_KINDS, word) {
                out.push(Ref { at: 4 * i, kind });
            }
        }
    }

    fn span(_kind: Kind) -> usize {
        4
    }

    fn target(kind: Kind, bytes: &[u8], pc: u64) -> Option<u64> {
        target(kind, bytes, pc)
    }

    fn retarget(kind: Kind, bytes: &mut [u8], pc: u64, target: u64) -> bool {
        retarget(kind, bytes, pc, target)
    }
}

impl Isa for Thumb {
    type Kind = Kind;

    fn scan(code: &[u8], _vaddr: u64, out: &mut Vec<Ref<Kind>>) {
        let mut at = 0;
        while let Some(first) = code.get(at..at + 2) {
            if !is_32bit(u16::from_le_bytes([first[0], first[1]])) {
                at += 2;
                continue;
            }
            let Some(insn) = code.get(at..at + 4) else {
                break;
            };
            if let Some(kind) = classify(&THUMB_KINDS, insn) {
                out.push(Ref { at, kind });
            }
            at += 4;
        }
    }

    fn span(_kind: Kind) -> usize {
        4
    }

    fn target(kind: Kind, bytes: &[u8], pc: u64) -> Option<u64> {
        target(kind, bytes, pc)
    }

    fn retarget(kind: Kind, bytes: &mut [u8], pc: u64, target: u64) -> bool {
        retarget(kind, bytes, pc, target)
    }
}

/// Whether a Thumb instruction starting with halfword `hw` is 32 bits long.
fn is_32bit(hw: u16) -> bool {
    matches!(hw >> 11, 0b11101..=0b11111)
}

fn classify(kinds: &[Kind], bytes: &[u8]) -> Option<Kind> {
    kinds
        .iter()
        .copied()
        .find(|&k| load(k, bytes).is_some_and(|insn| is(k, insn)))
}

fn target(kind: Kind, bytes: &[u8], pc: u64) -> Option<u64> {
    let insn = load(kind, bytes).filter(|&insn| is(kind, insn))?;
    let offset = offset(kind, insn) as u32;
    Some(u64::from(base(kind, pc).wrapping_add(offset)))
}

fn retarget(kind: Kind, bytes: &mut [u8], pc: u64, target: u64) -> bool {
    let Some(insn) = load(kind, bytes).filter(|&insn| is(kind, insn)) else {
        return false;
    };
    // Every range is far below 2^31, so the offset modulo 2^32, read as signed, is the one.
    let diff = (target as u32).wrapping_sub(base(kind, pc)) as i32;
    match encode(kind, insn, diff) {
        Some(new) => {
            store(kind, bytes, new);
            true
        }
        None => false,
    }
}

fn is_thumb(kind: Kind) -> bool {
    !ARM_KINDS.contains(&kind)
}

/// The instruction as one word: an A32 word, or a T32 first halfword << 16 | second halfword
/// (the little-endian word of its bytes, rotated by 16).
fn load(kind: Kind, bytes: &[u8]) -> Option<u32> {
    let word = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    Some(if is_thumb(kind) {
        word.rotate_left(16)
    } else {
        word
    })
}

/// Writes back a word of [`load`]; `bytes` held one, so it is long enough.
fn store(kind: Kind, bytes: &mut [u8], insn: u32) {
    let word = if is_thumb(kind) {
        insn.rotate_left(16)
    } else {
        insn
    };
    bytes[..4].copy_from_slice(&word.to_le_bytes());
}

/// Whether `insn` is an instruction of this kind.
fn is(kind: Kind, insn: u32) -> bool {
    let cond = insn >> 28;
    match kind {
        Kind::ArmB => cond != 0xF && insn & 0x0F00_0000 == 0x0A00_0000,
        Kind::ArmBl => cond != 0xF && insn & 0x0F00_0000 == 0x0B00_0000,
        Kind::ArmBlx => insn & 0xFE00_0000 == 0xFA00_0000,
        Kind::ArmLdr => cond != 0xF && insn & 0x0F7F_0000 == 0x051F_0000,
        Kind::ThumbBl => insn & 0xF800_D000 == 0xF000_D000,
        Kind::ThumbBlx => insn & 0xF800_D001 == 0xF000_C000,
        Kind::ThumbB => insn & 0xF800_D000 == 0xF000_9000,
        // cond 111x there encodes other instructions (MSR, hints, ...).
        Kind::ThumbBcond => insn & 0xF800_D000 == 0xF000_8000 && (insn >> 22) & 0xF < 0xE,
        Kind::ThumbLdr => insn & 0xFF7F_0000 == 0xF85F_0000,
        Kind::ThumbAdr => matches!(insn & 0xFBFF_8000, 0xF20F_0000 | 0xF2AF_0000),
    }
}

/// The address the offset is added to, for an instruction at `pc`.
fn base(kind: Kind, pc: u64) -> u32 {
    let pc = pc as u32;
    match kind {
        Kind::ArmB | Kind::ArmBl | Kind::ArmBlx => pc.wrapping_add(8),
        Kind::ArmLdr => pc.wrapping_add(8) & !3,
        Kind::ThumbBl | Kind::ThumbB | Kind::ThumbBcond => pc.wrapping_add(4),
        Kind::ThumbBlx | Kind::ThumbLdr | Kind::ThumbAdr => pc.wrapping_add(4) & !3,
    }
}

/// The low `bits` bits of `v`, sign-extended.
fn signed(v: u32, bits: u32) -> i32 {
    ((v << (32 - bits)) as i32) >> (32 - bits)
}

fn bit(v: u32, n: u32) -> u32 {
    (v >> n) & 1
}

/// The signed offset held by `insn` (an instruction of this kind).
fn offset(kind: Kind, insn: u32) -> i32 {
    match kind {
        Kind::ArmB | Kind::ArmBl => signed(insn, 24) << 2,
        Kind::ArmBlx => signed(insn, 24) << 2 | (bit(insn, 24) << 1) as i32,
        Kind::ArmLdr | Kind::ThumbLdr => sign_magnitude(bit(insn, 23) == 0, insn & 0xFFF),
        // BLX's imm10L:H is BL's imm11 with H = 0.
        Kind::ThumbBl | Kind::ThumbB | Kind::ThumbBlx => {
            let s = bit(insn, 26);
            let i1 = 1 ^ bit(insn, 13) ^ s;
            let i2 = 1 ^ bit(insn, 11) ^ s;
            let v =
                s << 24 | i1 << 23 | i2 << 22 | (insn >> 16 & 0x3FF) << 12 | (insn & 0x7FF) << 1;
            signed(v, 25)
        }
        Kind::ThumbBcond => {
            let v = bit(insn, 26) << 20 | bit(insn, 11) << 19 | bit(insn, 13) << 18;
            signed(v | (insn >> 16 & 0x3F) << 12 | (insn & 0x7FF) << 1, 21)
        }
        Kind::ThumbAdr => {
            let imm = bit(insn, 26) << 11 | (insn >> 12 & 7) << 8 | insn & 0xFF;
            sign_magnitude(insn & 0x00A0_0000 != 0, imm)
        }
    }
}

fn sign_magnitude(negative: bool, magnitude: u32) -> i32 {
    match negative {
        true => -(magnitude as i32),
        false => magnitude as i32,
    }
}

/// `insn` holding offset `diff` instead, if it is encodable there: the offset's fields
/// replaced, every other bit kept (a zero offset keeps its sign, `[PC, #-0]` or `SUBW #0`).
fn encode(kind: Kind, insn: u32, diff: i32) -> Option<u32> {
    let (d, m) = (diff as u32, diff.unsigned_abs());
    let (ok, mask, fields) = match kind {
        Kind::ArmB | Kind::ArmBl => (fits(diff, 26, 4), 0x00FF_FFFF, d >> 2 & 0xFF_FFFF),
        Kind::ArmBlx => {
            let h = bit(d, 1) << 24;
            (fits(diff, 26, 2), 0x01FF_FFFF, h | d >> 2 & 0xFF_FFFF)
        }
        Kind::ArmLdr | Kind::ThumbLdr => {
            let u = u32::from(!stored_negative(diff, bit(insn, 23) == 0));
            (m < 1 << 12, 0x0080_0FFF, u << 23 | m & 0xFFF)
        }
        Kind::ThumbBl | Kind::ThumbB => (fits(diff, 25, 2), 0x07FF_2FFF, bl_fields(d)),
        Kind::ThumbBlx => (fits(diff, 25, 4), 0x07FF_2FFF, bl_fields(d)),
        Kind::ThumbBcond => (fits(diff, 21, 2), 0x043F_2FFF, bcond_fields(d)),
        Kind::ThumbAdr => {
            let sub = u32::from(stored_negative(diff, insn & 0x00A0_0000 != 0)) * 0x00A0_0000;
            let imm = bit(m, 11) << 26 | (m >> 8 & 7) << 12 | m & 0xFF;
            (m < 1 << 12, 0x04A0_70FF, sub | imm)
        }
    };
    ok.then_some(insn & !mask | fields)
}

/// Whether a sign-magnitude field stores `diff` as negative: a zero keeps the sign it had.
fn stored_negative(diff: i32, was_negative: bool) -> bool {
    diff < 0 || diff == 0 && was_negative
}

/// Whether `diff` is a multiple of `align` in the signed range of `bits` bits.
fn fits(diff: i32, bits: u32, align: i32) -> bool {
    diff % align == 0 && (-(1 << (bits - 1))..1 << (bits - 1)).contains(&diff)
}

/// The S, J1, imm10, J2, imm11 fields of a T32 `BL`, `B.W` or `BLX` holding `d` (for `BLX`,
/// whose `d` is a multiple of 4, imm11's bit 0 is H = 0).
fn bl_fields(d: u32) -> u32 {
    let s = bit(d, 24);
    let j1 = 1 ^ bit(d, 23) ^ s;
    let j2 = 1 ^ bit(d, 22) ^ s;
    s << 26 | (d >> 12 & 0x3FF) << 16 | j1 << 13 | j2 << 11 | (d >> 1 & 0x7FF)
}

/// The S, imm6, J1, J2, imm11 fields of a T32 `B<c>.W` holding `d`.
fn bcond_fields(d: u32) -> u32 {
    let j = bit(d, 18) << 13 | bit(d, 19) << 11;
    bit(d, 20) << 26 | (d >> 12 & 0x3F) << 16 | j | (d >> 1 & 0x7FF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thumb(hw1: u16, hw2: u16) -> Vec<u8> {
        [hw1.to_le_bytes(), hw2.to_le_bytes()].concat()
    }

    /// Encodings and targets as arm-linux-gnueabihf-objdump shows them.
    #[test]
    fn targets_as_objdump_shows_them() {
        let arm = |w: u32| w.to_le_bytes().to_vec();
        let cases = [
            (Kind::ArmB, arm(0x0A08_0073), 0x1_0014, 0x21_01E8),
            (Kind::ArmBl, arm(0xEB80_0000), 0x21_01EC, 0xFE21_01F4),
            (Kind::ArmBlx, arm(0xFB00_0005), 0x10, 0x2E),
            (Kind::ArmBlx, arm(0xFBFF_FFFF), 0x21_01F0, 0x21_01F6),
            (Kind::ArmLdr, arm(0xE51F_1FFF), 0xC, 0xFFFF_F015),
            (Kind::ArmLdr, arm(0x151F_1000), 0x10, 0x18),
            (Kind::ThumbBl, thumb(0xF7FF, 0xFFFD), 0x2E, 0x2C),
            (Kind::ThumbBl, thumb(0xF1C0, 0xF857), 0x21_0320, 0x3D_03D2),
            (Kind::ThumbBl, thumb(0xF3FF, 0xD7FF), 0x21_02FC, 0x121_02FE),
            (Kind::ThumbBl, thumb(0xF400, 0xD000), 0x21_0320, 0xFF21_0324),
            (Kind::ThumbBlx, thumb(0xF7FF, 0xEFF8), 0x32, 0x24),
            (Kind::ThumbB, thumb(0xF7FF, 0xBFF9), 0x36, 0x2C),
            (Kind::ThumbBcond, thumb(0xF43F, 0xAFF8), 0x3A, 0x2E),
            (
                Kind::ThumbBcond,
                thumb(0xF43F, 0x8716),
                0x2D_03CA,
                0x21_01FA,
            ),
            (Kind::ThumbLdr, thumb(0xF85F, 0x0FFF), 0x3E, 0xFFFF_F041),
            (Kind::ThumbAdr, thumb(0xF2AF, 0x040B), 0x2A, 0x21),
            (Kind::ThumbAdr, thumb(0xF60F, 0x0501), 0x4E, 0x851),
        ];
        for (kind, bytes, pc, want) in cases {
            assert_eq!(
                Arm::target(kind, &bytes, pc),
                Some(want),
                "{kind:?} {bytes:02x?}"
            );
            let mut copy = bytes.clone();
            assert!(Thumb::retarget(kind, &mut copy, pc, want + (1 << 32)));
            assert_eq!(
                copy, bytes,
                "{kind:?}: re-encoding the same target changes nothing"
            );
        }
    }

    #[test]
    fn thumb_sweep_follows_instruction_lengths() {
        // movs (16-bit), then a 32-bit instruction whose second halfword looks like a BL's
        // first, then a BL, then half a BL.
        let code = [
            thumb(0x2000, 0xF000),
            thumb(0xF000, 0xF800),
            thumb(0xF000, 0xF800),
        ];
        let mut out = Vec::new();
        Thumb::scan(&code.concat()[..10], 0, &mut out);
        assert_eq!(
            out,
            [Ref {
                at: 2,
                kind: Kind::ThumbBl
            }]
        );
    }

    #[test]
    fn refuses_what_the_instruction_cannot_hold() {
        let mut bl = thumb(0xF000, 0xF800);
        assert!(
            !Thumb::retarget(Kind::ThumbBl, &mut bl, 0x1000, 0x1003),
            "odd"
        );
        assert!(
            !Thumb::retarget(Kind::ThumbBl, &mut bl, 0, 0x100_0004),
            "past +16 MiB"
        );
        assert!(!Thumb::retarget(Kind::ThumbBlx, &mut bl, 0, 8), "not a BLX");
        let mut blx = thumb(0xF000, 0xE800);
        assert!(
            !Thumb::retarget(Kind::ThumbBlx, &mut blx, 0x1002, 0x2002),
            "not 4-aligned"
        );
        assert!(Thumb::retarget(Kind::ThumbBlx, &mut blx, 0x1002, 0x2000));
        assert_eq!(Thumb::target(Kind::ThumbBlx, &blx, 0x1002), Some(0x2000));
        assert_eq!(Arm::target(Kind::ArmB, &[0, 0, 0], 0), None, "short");
    }
}
