//! Hand-checked x86-64 encodings (lengths and rel32 fields as GNU objdump decodes them), the
//! reference API (`target`/`retarget`), robustness on random bytes, and a linear-time check.

use exe::x86::{decode, Insn, Kind, X86_64};
use exe::{Isa, Ref};

mod common;
use common::XorShift;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// (bytes, length, rel32 field), each checked with `objdump -D -b binary -m i386:x86-64`
/// (which shows a REX prefix that does not come right before the opcode as an instruction of
/// its own, where the processor ignores it, and `66 E8` as `callw` rel16, where Intel 64
/// processors ignore the 66).
const CASES: &[(&str, u8, Option<u8>)] = &[
    ("48 8d 05 11 22 33 44", 7, Some(3)), // lea 0x44332211(%rip),%rax
    ("c7 05 11 22 33 44 01 02 03 04", 10, Some(2)), // movl $imm32,d(%rip)
    ("66 c7 05 11 22 33 44 01 02", 9, Some(3)), // movw $imm16,d(%rip)
    ("66 0f 3a 0f 05 11 22 33 44 07", 10, Some(5)), // palignr $7,d(%rip),%xmm0
    ("f3 0f 1e fa", 4, None),             // endbr64
    ("c5 f9 6f 05 11 22 33 44", 8, Some(4)), // vmovdqa d(%rip),%xmm0
    ("62 f1 7d 48 6f 05 11 22 33 44", 10, Some(6)), // vmovdqa32 d(%rip),%zmm0
    ("62 f1 7c 48 10 40 01", 7, None),    // vmovups 0x40(%rax),%zmm0 (disp8*N)
    ("62 f3 7d 48 0f 05 11 22 33 44 05", 11, Some(6)), // vpalignr $5,d(%rip),%zmm0,%zmm0
    ("62 f1 7d 48 72 05 11 22 33 44 05", 11, Some(6)), // vprord $5,d(%rip),%zmm0
    ("62 f5 7c 48 58 05 11 22 33 44", 10, Some(6)), // vaddph (map 5)
    ("e8 11 22 33 44", 5, Some(1)),       // call
    ("e9 11 22 33 44", 5, Some(1)),       // jmp
    ("0f 84 11 22 33 44", 6, Some(2)),    // je rel32
    ("eb 10", 2, None),                   // jmp rel8
    ("74 10", 2, None),                   // je rel8
    ("e3 10", 2, None),                   // jrcxz
    ("48 b8 01 02 03 04 05 06 07 08", 10, None), // movabs $imm64,%rax
    ("66 48 b8 01 02 03 04 05 06 07 08", 11, None), // REX.W wins over 66
    ("b8 01 02 03 04", 5, None),
    ("66 b8 01 02", 4, None),
    ("a1 01 02 03 04 05 06 07 08", 9, None), // movabs moffs64,%eax
    ("67 a1 01 02 03 04", 6, None),          // addr32 mov moffs32,%eax
    ("f6 05 11 22 33 44 01", 7, Some(2)),    // testb $1,d(%rip)
    ("f6 15 11 22 33 44", 6, Some(2)),       // notb d(%rip): no immediate
    ("f7 05 11 22 33 44 01 02 03 04", 10, Some(2)), // testl
    ("66 f7 05 11 22 33 44 01 02", 9, Some(3)), // testw
    ("f7 d8", 2, None),                      // neg %eax
    ("69 05 11 22 33 44 01 02 03 04", 10, Some(2)), // imul $imm32,d(%rip),%eax
    ("6b 05 11 22 33 44 01", 7, Some(2)),    // imul $imm8
    ("80 3d 11 22 33 44 01", 7, Some(2)),    // cmpb $1,d(%rip)
    ("83 3d 11 22 33 44 01", 7, Some(2)),    // cmpl $1,d(%rip)
    ("81 3d 11 22 33 44 01 02 03 04", 10, Some(2)),
    ("c1 e0 04", 3, None),                          // shl $4,%eax
    ("c8 10 00 01", 4, None),                       // enter $0x10,$1
    ("c2 08 00", 3, None),                          // ret $8
    ("ca 08 00", 3, None),                          // lret $8
    ("66 0f 70 c1 1b", 5, None),                    // pshufd
    ("0f ba 25 11 22 33 44 01", 8, Some(3)),        // btl $1,d(%rip)
    ("0f a4 c0 04", 4, None),                       // shld $4
    ("c4 e3 79 0f 05 11 22 33 44 07", 10, Some(5)), // vpalignr (VEX map 3)
    ("c4 e2 79 00 05 11 22 33 44", 9, Some(5)),     // vpshufb (VEX map 2)
    ("66 2e 0f 1f 84 00 00 00 00 00", 10, None),    // cs nopw 0x0(%rax,%rax,1)
    ("8b 04 25 11 22 33 44", 7, None),              // mov abs32 (SIB, no base)
    ("8b 44 24 08", 4, None),                       // mov 0x8(%rsp)
    ("8b 84 24 11 22 33 44", 7, None),              // mov disp32(%rsp)
    ("67 8b 05 11 22 33 44", 7, None),              // mov d(%eip): not reported
    ("0f 20 c0", 3, None),                          // mov %cr0,%rax
    ("0f 22 05", 3, None),                          // mov to %cr0: ModRM always registers
    ("c7 f8 11 22 33 44", 6, Some(2)),              // xbegin
    ("8f c0", 2, None),                             // pop %rax
    ("8f 05 11 22 33 44", 6, Some(2)),              // pop d(%rip)
    ("8f e8 78 c2 c0 01", 6, None),                 // vprotd (XOP map 8)
    ("8f e9 78 90 c0", 5, None),                    // vprotb (XOP map 9)
    ("8f ea 78 10 c0 01 02 03 04", 9, None),        // bextr $imm32 (XOP map A)
    ("66 0f 78 c0 04 08", 6, None),                 // extrq $8,$4,%xmm0
    ("c5 f8 77", 3, None),                          // vzeroupper
    ("c5 f9 c5 c0 01", 5, None),                    // vpextrw
    ("c5 f9 71 d0 03", 5, None),                    // vpsrlw $3
    ("68 01 02 03 04", 5, None),                    // push $imm32
    ("66 68 01 02", 4, None),                       // pushw $imm16
    ("6a 01", 2, None),
    ("48 c7 c0 01 02 03 04", 7, None),
    ("66 81 c4 01 02", 5, None),                // add $imm16,%sp
    ("f0 48 0f b1 0d 11 22 33 44", 9, Some(5)), // lock cmpxchg %rcx,d(%rip)
    ("48 0f c7 0d 11 22 33 44", 8, Some(4)),    // cmpxchg16b d(%rip)
    ("0f 0b", 2, None),                         // ud2
    ("f3 48 a5", 3, None),                      // rep movsq
    ("64 48 8b 04 25 28 00 00 00", 9, None),    // mov %fs:0x28,%rax
    ("0f 01 f8", 3, None),                      // swapgs
    ("0f ae 05 11 22 33 44", 7, Some(3)),       // fxsave d(%rip)
    ("d9 05 11 22 33 44", 6, Some(2)),          // flds d(%rip)
    ("0f 38 f1 05 11 22 33 44", 8, Some(4)),    // movbe
    ("f2 0f 38 f1 c1", 5, None),                // crc32
    ("0f c2 05 11 22 33 44 01", 8, Some(3)),    // cmpltps d(%rip),%xmm0
    ("c4 e2 7d 18 05 11 22 33 44", 9, Some(5)), // vbroadcastss
    ("40 e8 11 22 33 44", 6, Some(2)),          // rex call
    ("66 e8 11 22 33 44", 6, Some(2)),          // 66 ignored (Intel 64)
    ("f2 e9 11 22 33 44", 6, Some(2)),          // bnd jmp
    ("3e ff e0", 3, None),                      // notrack jmp *%rax
    ("ff 15 11 22 33 44", 6, Some(2)),          // call *d(%rip)
    ("4c 8b 1d 11 22 33 44", 7, Some(3)),       // mov d(%rip),%r11
    ("48 40 8b 05 11 22 33 44", 8, Some(4)),    // two REX: the last counts (objdump splits)
    ("48 66 b8 01 02", 5, None),                // REX before 66 is ignored (objdump splits)
    ("9b df e0", 3, None),                      // fstsw %ax (fwait + fnstsw, as objdump shows it)
    ("9b 2e d9 3d 11 22 33 44", 8, Some(4)),    // cs fstcw d(%rip)
    ("9b", 1, None),                            // fwait (alone: not before an x87 escape)
    ("2e 9b", 2, None),                         // cs fwait
    ("0f a7 c8", 3, None),                      // xcrypt-ecb (VIA)
];

#[test]
fn hand_checked_encodings() {
    for &(bytes, len, rel32) in CASES {
        let code = hex(bytes);
        assert_eq!(decode(&code), Some(Insn { len, rel32 }), "{bytes}");
        // One byte short: not an instruction.
        assert_eq!(decode(&code[..code.len() - 1]), None, "{bytes} truncated");
        // Followed by other bytes: the same length.
        let mut longer = code.clone();
        longer.extend_from_slice(&[0x90; 16]);
        assert_eq!(decode(&longer), Some(Insn { len, rel32 }), "{bytes} + nops");
    }
}

#[test]
fn invalid_in_64_bit_mode() {
    for op in [
        0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x60, 0x61, 0x82, 0x9a,
        0xce, 0xd4, 0xd5, 0xd6, 0xea,
    ] {
        assert_eq!(
            decode(&[op, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0]),
            None,
            "{op:02x}"
        );
    }
    assert_eq!(decode(&hex("c4 e0 79 00 c0")), None, "VEX map 0");
    assert_eq!(decode(&hex("62 f0 7d 48 00 c0")), None, "EVEX map 0");
    assert_eq!(decode(&hex("0f 04")), None);
    // Undefined ModRM forms (objdump: `(bad)`).
    for bytes in [
        "8d c0",
        "c6 c8 00",
        "c7 c8 00 00 00 00",
        "fe d0",
        "ff e8",
        "ff d8",
        "ff 38",
    ] {
        assert_eq!(decode(&hex(bytes)), None, "{bytes}");
    }
    assert_eq!(
        decode(&hex("ff 28")),
        Some(Insn {
            len: 2,
            rel32: None
        }),
        "ljmp *(%rax)"
    );
    assert_eq!(
        decode(&hex("c6 f8 01")),
        Some(Insn {
            len: 3,
            rel32: None
        }),
        "xabort"
    );
    assert_eq!(decode(&[]), None);
}

#[test]
fn fifteen_bytes_at_most() {
    let mut code = vec![0x66; 14];
    code.push(0x90);
    assert_eq!(
        decode(&code),
        Some(Insn {
            len: 15,
            rel32: None
        })
    );
    code.insert(0, 0x66);
    assert_eq!(decode(&code), None);
    // 11 prefixes + lea rip: 18 bytes.
    let mut code = vec![0x2e; 11];
    code.extend(hex("48 8d 05 11 22 33 44"));
    assert_eq!(decode(&code), None);
}

#[test]
fn scan_reports_rel32_references_only() {
    // call; jmp rel8; nop; lea rip; garbage 06; je rel32; truncated call.
    let code = hex("e8 10 00 00 00 eb 02 90 48 8d 05 f0 ff ff ff 06 0f 84 00 01 00 00 e8 00 00");
    let mut refs = Vec::new();
    X86_64::scan(&code, 0x1000, &mut refs);
    let want = [
        Ref {
            at: 0,
            kind: Kind { field: 1, len: 5 },
        },
        Ref {
            at: 8,
            kind: Kind { field: 3, len: 7 },
        },
        Ref {
            at: 16,
            kind: Kind { field: 2, len: 6 },
        },
    ];
    assert_eq!(refs, want);
    let t = |r: &Ref<Kind>| X86_64::target(r.kind, &code[r.at..], 0x1000 + r.at as u64);
    assert_eq!(t(&refs[0]), Some(0x1000 + 5 + 0x10));
    assert_eq!(t(&refs[1]), Some(0x1008 + 7 - 0x10));
    assert_eq!(t(&refs[2]), Some(0x1010 + 6 + 0x100));
    assert_eq!(X86_64::span(refs[1].kind), 7);
}

#[test]
fn target_and_retarget() {
    let kind = Kind { field: 3, len: 7 };
    let mut insn = hex("48 8d 05 00 00 00 00");
    let pc = 0xffff_ffff_ffff_fff0u64;
    // Wrapping arithmetic at the top of the address space.
    assert!(X86_64::retarget(kind, &mut insn, pc, 0x20));
    assert_eq!(X86_64::target(kind, &insn, pc), Some(0x20));
    assert_eq!(&insn[3..], &(0x20 - 7 + 0x10i32).to_le_bytes());
    // Backwards, then out of range.
    assert!(X86_64::retarget(kind, &mut insn, 0x1000_0000, 0x1000));
    assert_eq!(X86_64::target(kind, &insn, 0x1000_0000), Some(0x1000));
    let before = insn.clone();
    assert!(!X86_64::retarget(kind, &mut insn, 0, 0x1_0000_0000));
    assert!(!X86_64::retarget(kind, &mut insn, 0x1_0000_0000, 0));
    assert_eq!(insn, before);
    // Limits of i32: exactly representable, one past.
    assert!(X86_64::retarget(kind, &mut insn, 0, 7 + i32::MAX as u64));
    assert!(!X86_64::retarget(kind, &mut insn, 0, 8 + i32::MAX as u64));
    assert!(X86_64::retarget(
        kind,
        &mut insn,
        1 << 40,
        (1 << 40) + 7 - (1 << 31)
    ));
    // Too few bytes, or a field outside the instruction.
    assert_eq!(X86_64::target(kind, &insn[..6], 0), None);
    assert!(!X86_64::retarget(kind, &mut insn[..6], 0, 0));
    let bogus = Kind { field: 5, len: 7 };
    assert_eq!(X86_64::target(bogus, &insn, 0), None);
    assert!(!X86_64::retarget(bogus, &mut insn, 0, 0));
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut buf = [0u8; 64];
    for round in 0..100_000 {
        let n = (rng.next() % 40) as usize;
        for b in &mut buf[..n] {
            // Bias towards prefixes and escapes so the long paths are exercised.
            let r = rng.next();
            *b = match r % 8 {
                0 => [0x66, 0x67, 0xf2, 0xf3, 0x48, 0x0f, 0xc4, 0x62][(r >> 8) as usize % 8],
                _ => (r >> 16) as u8,
            };
        }
        let code = &buf[..n];
        if let Some(insn) = decode(code) {
            assert!(
                (1..=15).contains(&insn.len) && usize::from(insn.len) <= n,
                "{code:02x?}"
            );
            if let Some(f) = insn.rel32 {
                assert!(f + 4 <= insn.len, "{code:02x?}");
            }
            // The instruction's own bytes decide: cut just after it, the same; before, none.
            let len = usize::from(insn.len);
            assert_eq!(decode(&code[..len]), Some(insn), "{code:02x?}");
            assert_eq!(decode(&code[..len - 1]), None, "{code:02x?}");
        }
        let mut refs = Vec::new();
        X86_64::scan(code, round, &mut refs);
        let mut last = None;
        for r in &refs {
            assert!(last < Some(r.at));
            last = Some(r.at);
            assert!(r.at + X86_64::span(r.kind) <= n);
            let pc = rng.next();
            let t = X86_64::target(r.kind, &code[r.at..], pc).unwrap();
            let mut copy = code[r.at..].to_vec();
            assert!(X86_64::retarget(r.kind, &mut copy, pc, t));
            assert_eq!(copy, &code[r.at..]);
        }
    }
}

/// Time per byte must not grow with the input: a sweep of 8× the bytes takes well under 32×
/// the time (generous, for noisy machines), for code-like and for pathological input.
#[test]
fn scan_is_linear() {
    let mut rng = XorShift(7);
    let mut random = vec![0u8; 1 << 20];
    random.iter_mut().for_each(|b| *b = rng.next() as u8);
    let prefixes = vec![0x66u8; 1 << 20];
    for input in [&random, &prefixes] {
        let time = |n: usize| {
            let start = std::time::Instant::now();
            let mut refs = Vec::new();
            X86_64::scan(&input[..n], 0, &mut refs);
            std::hint::black_box(refs);
            start.elapsed()
        };
        time(1 << 17); // warm up
        let small = time(1 << 17);
        let large = time(1 << 20);
        assert!(
            large < small * 32 + std::time::Duration::from_millis(20),
            "{small:?} vs {large:?}"
        );
    }
}
