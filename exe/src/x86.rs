//! x86-64: the `call`/`jmp`/`jcc` rel32 branches and the `[rip + disp32]` operands of 64-bit
//! code, found by a linear sweep of an instruction-length decoder.
//!
//! x86 instructions are 1 to 15 bytes long and a byte pattern such as `E8` is a call only where
//! an instruction starts, so finding references means decoding lengths: prefixes (legacy, REX,
//! VEX, EVEX, XOP), the opcode map, ModRM/SIB/displacement and the immediate. Only lengths are
//! decoded, from one flags byte per opcode (tables below), which keeps a sweep at hundreds of
//! MB/s and the code small enough for the device applier. A reference is a 4-byte signed
//! displacement relative to the end of its instruction: `E8`/`E9`/`0F 8x` (and `xbegin`) rel32,
//! and every ModRM memory operand with mod = 00, rm = 101 (RIP-relative), whose displacement
//! may be followed by an immediate. Encodings undefined in 64-bit mode decode as `None`, and
//! the sweep then resynchronises one byte further; data in the code section costs at most a few
//! misread instructions (x86 decoding re-aligns within a few instructions). Lengths agree with
//! GNU objdump on compiler output (see `tests/x86_objdump.rs`).

use crate::{Isa, Ref};

/// One decoded instruction: its length and where its end-relative displacement is, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Length in bytes, 1..=15.
    pub len: u8,
    /// Offset in the instruction of a 4-byte signed displacement relative to its end.
    pub rel32: Option<u8>,
}

/// A reference: the offset of the rel32 field in the instruction and the instruction length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// Offset of the 4-byte displacement in the instruction.
    pub field: u8,
    /// Length of the instruction (the displacement is relative to its end).
    pub len: u8,
}

/// The x86-64 instruction set (64-bit mode).
pub struct X86_64;

const MAX_LEN: usize = 15;

// Opcode flags: the low nibble is the immediate kind, the high bits the ModRM form.
/// No immediate.
const NO: u8 = 0;
/// imm8.
const IB: u8 = 1;
/// imm16.
const IW: u8 = 2;
/// imm16 or imm32 by operand size (66 without REX.W: 16).
const IZ: u8 = 3;
/// `enter`: imm16 then imm8.
const EN: u8 = 4;
/// `mov` moffs: 8-byte address (4 with 67).
const MO: u8 = 5;
/// `mov r, imm`: imm64 with REX.W, else as [`IZ`].
const IV: u8 = 6;
/// rel32 branch (its size ignores 66, as on Intel 64).
const RL: u8 = 7;
/// imm32 whatever the operand size (XOP map A).
const ID: u8 = 8;
/// Two imm8 (SSE4a `extrq`/`insertq`).
const I2: u8 = 9;
/// A ModRM byte (and its SIB and displacement) follows the opcode.
const M: u8 = 0x10;
/// A ModRM byte that always names registers (mov to/from CR and DR): no SIB, no displacement.
const MREG: u8 = 0x20;
/// `test r/m, imm` group (F6/F7): the immediate is present only for ModRM.reg 0 and 1.
const G3: u8 = 0x40;
/// Undefined in 64-bit mode (or a prefix, which never reaches the table).
const BAD: u8 = 0x80;
/// An escape or an opcode whose form depends on the next byte: decoded by code.
const ES: u8 = BAD | 0xF;

const MB: u8 = M | IB;
const MZ: u8 = M | IZ;

/// The one-byte opcode map.
#[rustfmt::skip]
const MAP_1: [u8; 256] = [
    // 0     1     2     3     4     5     6     7     8     9     A     B     C     D     E     F
    M,    M,    M,    M,    IB,   IZ,   BAD,  BAD,  M,    M,    M,    M,    IB,   IZ,   BAD,  ES,  // 0
    M,    M,    M,    M,    IB,   IZ,   BAD,  BAD,  M,    M,    M,    M,    IB,   IZ,   BAD,  BAD, // 1
    M,    M,    M,    M,    IB,   IZ,   BAD,  BAD,  M,    M,    M,    M,    IB,   IZ,   BAD,  BAD, // 2
    M,    M,    M,    M,    IB,   IZ,   BAD,  BAD,  M,    M,    M,    M,    IB,   IZ,   BAD,  BAD, // 3
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD, // 4
    NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,  // 5
    BAD,  BAD,  ES,   M,    BAD,  BAD,  BAD,  BAD,  IZ,   MZ,   IB,   MB,   NO,   NO,   NO,   NO,  // 6
    IB,   IB,   IB,   IB,   IB,   IB,   IB,   IB,   IB,   IB,   IB,   IB,   IB,   IB,   IB,   IB,  // 7
    MB,   MZ,   BAD,  MB,   M,    M,    M,    M,    M,    M,    M,    M,    M,    ES,   M,    ES,  // 8
    NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,   BAD,  NO,   NO,   NO,   NO,   NO,  // 9
    MO,   MO,   MO,   MO,   NO,   NO,   NO,   NO,   IB,   IZ,   NO,   NO,   NO,   NO,   NO,   NO,  // A
    IB,   IB,   IB,   IB,   IB,   IB,   IB,   IB,   IV,   IV,   IV,   IV,   IV,   IV,   IV,   IV,  // B
    MB,   MB,   IW,   NO,   ES,   ES,   ES,   ES,   EN,   NO,   IW,   NO,   NO,   IB,   BAD,  NO,  // C
    M,    M,    M,    M,    BAD,  BAD,  BAD,  NO,   M,    M,    M,    M,    M,    M,    M,    M,   // D
    IB,   IB,   IB,   IB,   IB,   IB,   IB,   IB,   RL,   RL,   BAD,  IB,   NO,   NO,   NO,   NO,  // E
    BAD,  NO,   BAD,  BAD,  NO,   NO,   G3|MB,G3|MZ,NO,   NO,   NO,   NO,   NO,   NO,   ES,   ES,  // F
];

/// The two-byte opcode map (`0F xx`).
#[rustfmt::skip]
const MAP_0F: [u8; 256] = [
    // 0     1     2     3     4     5     6     7     8     9     A     B     C     D     E     F
    M,    M,    M,    M,    BAD,  NO,   NO,   NO,   NO,   NO,   BAD,  NO,   BAD,  M,    NO,   MB,  // 0
    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,   // 1
    MREG, MREG, MREG, MREG, BAD,  BAD,  BAD,  BAD,  M,    M,    M,    M,    M,    M,    M,    M,   // 2
    NO,   NO,   NO,   NO,   NO,   NO,   BAD,  NO,   ES,   BAD,  ES,   BAD,  BAD,  BAD,  BAD,  BAD, // 3
    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,   // 4
    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,   // 5
    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,   // 6
    MB,   MB,   MB,   MB,   M,    M,    M,    NO,   ES,   M,    BAD,  BAD,  M,    M,    M,    M,   // 7
    RL,   RL,   RL,   RL,   RL,   RL,   RL,   RL,   RL,   RL,   RL,   RL,   RL,   RL,   RL,   RL,  // 8
    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,   // 9
    NO,   NO,   NO,   M,    MB,   M,    M,    M,    NO,   NO,   NO,   M,    MB,   M,    M,    M,   // A
    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    MB,   M,    M,    M,    M,    M,   // B
    M,    M,    MB,   M,    MB,   MB,   MB,   M,    NO,   NO,   NO,   NO,   NO,   NO,   NO,   NO,  // C
    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,   // D
    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,   // E
    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,    M,   // F
];

/// Map 1 (`0F`) as VEX and EVEX encode it: all ModRM, imm8 only for the shifts/shuffles and
/// compares that take one in the legacy map, no ModRM for `vzeroupper`/`vzeroall`.
const MAP_0F_VEX: [u8; 256] = {
    let mut t = [M; 256];
    let with_imm8 = [0x70, 0x71, 0x72, 0x73, 0xC2, 0xC4, 0xC5, 0xC6];
    let mut i = 0;
    while i < with_imm8.len() {
        t[with_imm8[i]] = MB;
        i += 1;
    }
    t[0x77] = NO;
    t
};

// Prefix bits, as [`PREFIX`] gives them and the decode accumulates them.
/// 66: 16-bit operands.
const OPSIZE: u8 = 1;
/// REX.W of a REX prefix directly before the opcode.
const REX_W: u8 = 2;
/// 67: 32-bit addresses (a `[eip + disp32]` operand is not reported).
const ADDR32: u8 = 4;
/// F2 (selects SSE4a `insertq` at `0F 78`).
const REPNE: u8 = 8;
/// Marks a prefix byte in [`PREFIX`].
const IS_PREFIX: u8 = 0x80;

/// For each byte: [`IS_PREFIX`] and the bits it sets, for the legacy and REX prefixes.
const PREFIX: [u8; 256] = {
    let mut t = [0; 256];
    let legacy = [0xF0, 0xF3, 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65];
    let mut i = 0;
    while i < legacy.len() {
        t[legacy[i]] = IS_PREFIX;
        i += 1;
    }
    t[0x66] = IS_PREFIX | OPSIZE;
    t[0x67] = IS_PREFIX | ADDR32;
    t[0xF2] = IS_PREFIX | REPNE;
    let mut rex = 0x40;
    while rex < 0x50 {
        t[rex] = IS_PREFIX | if rex & 8 != 0 { REX_W } else { 0 };
        rex += 1;
    }
    t
};

// ModRM forms, as [`MODRM`] gives them: the low 3 bits count the SIB and displacement bytes.
/// SIB with mod = 00: a base of 101 adds a disp32.
const SIB_NO_DISP: u8 = 8;
/// `[rip + disp32]`.
const RIP: u8 = 0x10;

/// For each ModRM byte (of a memory-capable operand): its form in 64-bit addressing.
const MODRM: [u8; 256] = {
    let mut t = [0; 256];
    let mut m = 0;
    while m < 256 {
        let (mode, rm) = (m >> 6, m & 7);
        let sib = (rm == 4) as u8;
        t[m] = match mode {
            0 if rm == 5 => RIP | 4,
            0 if rm == 4 => SIB_NO_DISP | 1,
            0 => 0,
            1 => sib + 1,
            2 => sib + 4,
            _ => 0,
        };
        m += 1;
    }
    t
};

/// Immediate bytes by kind (the low nibble of the opcode flags) and the prefix bits
/// `OPSIZE | REX_W | ADDR32` (`IMM[kind * 8 + bits]`).
const IMM: [u8; 128] = {
    let mut t = [0; 128];
    let mut i = 0;
    while i < 128 {
        let (kind, bits) = ((i / 8) as u8, i as u8 % 8);
        let z = if bits & (OPSIZE | REX_W) == OPSIZE {
            2
        } else {
            4
        };
        t[i] = match kind {
            IB => 1,
            IW | I2 => 2,
            IZ => z,
            EN => 3,
            MO if bits & ADDR32 != 0 => 4,
            MO => 8,
            IV if bits & REX_W != 0 => 8,
            IV => z,
            RL | ID => 4,
            _ => 0,
        };
        i += 1;
    }
    t
};

/// Decodes the length of the instruction at `code[0]`, and where its rel32 field is.
/// `None` for an encoding undefined in 64-bit mode, longer than 15 bytes, or running past the
/// end of `code`. As Intel 64 processors do, a 66 prefix leaves rel32 branches rel32 and a REX
/// prefix followed by another prefix is ignored (objdump differs on both); as objdump does, an
/// `fwait` before an x87 instruction is part of it (`9B DF E0` is `fstsw %ax`).
pub fn decode(code: &[u8]) -> Option<Insn> {
    let insn = match code.first_chunk::<WINDOW>() {
        Some(w) => decode_window(w)?,
        None => {
            let mut w = [0; WINDOW];
            w[..code.len()].copy_from_slice(code);
            decode_window(&w)?
        }
    };
    (usize::from(insn.len) <= code.len()).then_some(insn)
}

/// How many bytes from an instruction's start a decode may read: at most 14 prefixes, then a
/// 4-byte EVEX prefix, the opcode, ModRM and SIB, all below 32. Whatever a decode reads past
/// the instruction's end changes nothing (and the window is zero-padded past the code's end),
/// so checking the length against the code's is enough.
const WINDOW: usize = 32;

/// The byte at `i` of a window (the modulo, free, spares the bounds checks).
#[inline(always)]
fn at(w: &[u8; WINDOW], i: usize) -> u8 {
    w[i % WINDOW]
}

/// [`decode`] on a window, without the check against the end of the code.
#[inline(always)]
fn decode_window(w: &[u8; WINDOW]) -> Option<Insn> {
    let mut pre = 0;
    let mut i = 0;
    loop {
        let b = at(w, i);
        let p = PREFIX[usize::from(b)];
        if p == 0 && !(b == 0x9B && fwait_prefix(w, i + 1)) {
            break;
        }
        // A REX prefix counts only right before the opcode.
        pre = (pre & !REX_W) | (p & !IS_PREFIX);
        i += 1;
        if i >= MAX_LEN {
            return None;
        }
    }
    let op = at(w, i);
    match MAP_1[usize::from(op)] {
        ES => escape(w, i + 1, op, pre),
        flags => operands(w, i + 1, flags, pre),
    }
}

/// Whether an `fwait` (9B) before `w[i]` belongs to the x87 instruction that follows (as the
/// `fstsw`, `fstcw` and `finit` of assemblers and objdump; to the processor it is a separate
/// instruction, with no effect on references): whether the next byte that is neither a prefix
/// nor 9B is an x87 escape (D8-DF).
fn fwait_prefix(w: &[u8; WINDOW], mut i: usize) -> bool {
    while i < MAX_LEN && (PREFIX[usize::from(at(w, i))] != 0 || at(w, i) == 0x9B) {
        i += 1;
    }
    matches!(at(w, i), 0xD8..=0xDF)
}

/// The opcodes marked [`ES`] in [`MAP_1`] (`op`; `w[i]` is the byte after it).
fn escape(w: &[u8; WINDOW], i: usize, op: u8, pre: u8) -> Option<Insn> {
    let next = at(w, i);
    match op {
        0x0F => escape_0f(w, i, pre),
        0xC5 => vex(w, i + 1, 1, pre),
        0xC4 => vex(w, i + 2, next & 0x1F, pre),
        0x62 => evex(w, i, pre),
        // XOP when ModRM.reg is not 0, else pop r/m.
        0x8F if next & 0x38 != 0 => xop(w, i, pre),
        0x8F => operands(w, i, M, pre),
        // xbegin rel32 (rel16 with 66).
        0xC7 if next == 0xF8 && pre & OPSIZE == 0 => operands(w, i + 1, RL, pre),
        _ if undefined_form(op, next) => None,
        0xC6 => operands(w, i, MB, pre),
        0xC7 => operands(w, i, MZ, pre),
        _ => operands(w, i, M, pre),
    }
}

/// Whether ModRM byte `modrm` makes one-byte opcode `op` undefined (as objdump's `(bad)`):
/// `lea` of a register, the holes of groups C6/C7 (`mov`, `xabort`, `xbegin`), FE (`inc`,
/// `dec`) and FF (far `call`/`jmp` of a register, /7). Data decoded as code meets them often.
fn undefined_form(op: u8, modrm: u8) -> bool {
    let (reg, register) = ((modrm >> 3) & 7, modrm >= 0xC0);
    match op {
        0x8D => register,
        0xC6 | 0xC7 => reg != 0 && modrm != 0xF8,
        0xFE => reg > 1,
        0xFF => reg == 7 || (register && (reg == 3 || reg == 5)),
        _ => false,
    }
}

/// The instruction after `0F` (at `w[i]`): the two-byte map or the `0F 38`/`0F 3A` maps.
fn escape_0f(w: &[u8; WINDOW], i: usize, pre: u8) -> Option<Insn> {
    let op = at(w, i);
    match (MAP_0F[usize::from(op)], op) {
        (ES, 0x38) => operands(w, i + 2, M, pre),
        (ES, 0x3A) => operands(w, i + 2, MB, pre),
        // extrq/insertq (SSE4a, 66/F2) take two imm8, vmread (no prefix) none.
        (ES, _) if pre & (OPSIZE | REPNE) != 0 => operands(w, i + 1, M | I2, pre),
        (ES, _) => operands(w, i + 1, M, pre),
        (flags, _) => operands(w, i + 1, flags, pre),
    }
}

/// A VEX instruction whose opcode is at `w[i]`, in opcode map `map`.
fn vex(w: &[u8; WINDOW], i: usize, map: u8, pre: u8) -> Option<Insn> {
    let flags = match map {
        1 => MAP_0F_VEX[usize::from(at(w, i))],
        2 => M,
        3 => MB,
        _ => return None,
    };
    operands(w, i + 1, flags, pre)
}

/// An EVEX instruction (`62 P0 P1 P2 opcode`, `w[i]` = P0).
fn evex(w: &[u8; WINDOW], i: usize, pre: u8) -> Option<Insn> {
    let flags = match at(w, i) & 7 {
        1 => MAP_0F_VEX[usize::from(at(w, i + 3))],
        2 | 5 | 6 => M,
        3 => MB,
        _ => return None,
    };
    operands(w, i + 4, flags, pre)
}

/// An AMD XOP instruction (`8F RXBmmmmm WvvvvLpp opcode`, `w[i]` = the second byte).
fn xop(w: &[u8; WINDOW], i: usize, pre: u8) -> Option<Insn> {
    let flags = match at(w, i) & 0x1F {
        8 => MB,
        9 => M,
        0xA => M | ID,
        _ => return None,
    };
    operands(w, i + 3, flags, pre)
}

/// The rest of an instruction with opcode flags `flags`, whose ModRM byte (or immediate)
/// starts at `w[i]`: table look-ups rather than branches, as these are unpredictable.
#[inline(always)]
fn operands(w: &[u8; WINDOW], i: usize, flags: u8, pre: u8) -> Option<Insn> {
    if flags & BAD != 0 {
        return None;
    }
    let modrm = at(w, i);
    let form = if flags & M != 0 {
        MODRM[usize::from(modrm)]
    } else {
        0
    };
    let sib_disp = form & SIB_NO_DISP != 0 && at(w, i + 1) & 7 == 5;
    let disp_at = i + usize::from(flags & (M | MREG) != 0);
    let imm_at = disp_at + usize::from(form & 7) + 4 * usize::from(sib_disp);
    let kind = flags & 0xF;
    let mut imm = IMM[usize::from(kind * 8 + (pre & (OPSIZE | REX_W | ADDR32)))];
    if flags & G3 != 0 && (modrm >> 3) & 7 > 1 {
        imm = 0;
    }
    let len = imm_at + usize::from(imm);
    let rel32 = if form & RIP != 0 && pre & ADDR32 == 0 {
        Some(disp_at as u8)
    } else if kind == RL {
        Some(imm_at as u8)
    } else {
        None
    };
    (len <= MAX_LEN).then_some(Insn {
        len: len as u8,
        rel32,
    })
}

/// The displacement at `field` of `bytes`, if the instruction (`len` bytes) is there.
fn disp(kind: Kind, bytes: &[u8]) -> Option<i32> {
    let (field, len) = (usize::from(kind.field), usize::from(kind.len));
    if field + 4 > len || len > bytes.len() {
        return None;
    }
    let raw: [u8; 4] = bytes[field..field + 4].try_into().ok()?;
    Some(i32::from_le_bytes(raw))
}

impl Isa for X86_64 {
    type Kind = Kind;

    fn scan(code: &[u8], _vaddr: u64, out: &mut Vec<Ref<Kind>>) {
        let mut at = 0;
        while at < code.len() {
            match decode(&code[at..]) {
                Some(insn) => {
                    if let Some(field) = insn.rel32 {
                        out.push(Ref {
                            at,
                            kind: Kind {
                                field,
                                len: insn.len,
                            },
                        });
                    }
                    at += usize::from(insn.len);
                }
                None => at += 1,
            }
        }
    }

    fn span(kind: Kind) -> usize {
        usize::from(kind.len)
    }

    fn target(kind: Kind, bytes: &[u8], pc: u64) -> Option<u64> {
        let d = disp(kind, bytes)?;
        Some(
            pc.wrapping_add(u64::from(kind.len))
                .wrapping_add(d as i64 as u64),
        )
    }

    fn retarget(kind: Kind, bytes: &mut [u8], pc: u64, target: u64) -> bool {
        if disp(kind, bytes).is_none() {
            return false;
        }
        let delta = target.wrapping_sub(pc.wrapping_add(u64::from(kind.len))) as i64;
        let Ok(d) = i32::try_from(delta) else {
            return false;
        };
        let field = usize::from(kind.field);
        bytes[field..field + 4].copy_from_slice(&d.to_le_bytes());
        true
    }
}
