//! `exe::arm32` on random bytes (many of them shaped like the instructions it looks for): scans,
//! targets and re-targets never panic, a scanned reference always has a target and re-encodes
//! to the same bytes, and a successful re-target reads back while a refused one changes nothing.

use exe::arm32::{Arm, Kind, Thumb};
use exe::{Isa, Ref};

mod common;
use common::XorShift;

const KINDS: [Kind; 10] = [
    Kind::ArmB,
    Kind::ArmBl,
    Kind::ArmBlx,
    Kind::ArmLdr,
    Kind::ThumbBl,
    Kind::ThumbBlx,
    Kind::ThumbB,
    Kind::ThumbBcond,
    Kind::ThumbLdr,
    Kind::ThumbAdr,
];

/// (mask, value) of A32 words and of T32 first << 16 | second halfwords that are, or nearly
/// are, references.
const ARM_SHAPES: [(u32, u32); 2] = [(0x0E00_0000, 0x0A00_0000), (0x0F7F_0000, 0x051F_0000)];
const THUMB_SHAPES: [(u32, u32); 3] = [
    (0xF800_8000, 0xF000_8000),
    (0xFF7F_0000, 0xF85F_0000),
    (0xFB5F_8000, 0xF20F_0000),
];

/// Random code: words, half of them forced into one of the shapes.
fn code(rng: &mut XorShift, thumb: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(17) {
        let mut w = rng.next() as u32;
        let shapes: &[(u32, u32)] = if thumb { &THUMB_SHAPES } else { &ARM_SHAPES };
        if rng.below(2) == 0 {
            let (mask, value) = shapes[rng.below(shapes.len() as u64) as usize];
            w = w & !mask | value;
        }
        match thumb {
            false => out.extend(w.to_le_bytes()),
            true => {
                out.extend([((w >> 16) as u16).to_le_bytes(), (w as u16).to_le_bytes()].concat())
            }
        }
    }
    out.truncate(out.len() - rng.below(4).min(out.len() as u64) as usize);
    out
}

fn scan(thumb: bool, code: &[u8], vaddr: u64) -> Vec<Ref<Kind>> {
    let mut out = Vec::new();
    match thumb {
        false => Arm::scan(code, vaddr, &mut out),
        true => Thumb::scan(code, vaddr, &mut out),
    }
    out
}

fn target(thumb: bool, kind: Kind, bytes: &[u8], pc: u64) -> Option<u64> {
    match thumb {
        false => Arm::target(kind, bytes, pc),
        true => Thumb::target(kind, bytes, pc),
    }
}

/// Re-targets a copy of `bytes` and checks the outcome; true if it succeeded.
fn check_retarget(thumb: bool, kind: Kind, bytes: &[u8], pc: u64, to: u64) -> bool {
    let mut copy = bytes.to_vec();
    let done = match thumb {
        false => Arm::retarget(kind, &mut copy, pc, to),
        true => Thumb::retarget(kind, &mut copy, pc, to),
    };
    match done {
        true => {
            assert_eq!(
                target(thumb, kind, &copy, pc),
                Some(to & 0xFFFF_FFFF),
                "{kind:?}"
            );
            assert_eq!(copy[4..], bytes[4..], "only the span changes");
        }
        false => assert_eq!(copy, bytes, "{kind:?}: refused, yet changed"),
    }
    done
}

fn vaddr(rng: &mut XorShift) -> u64 {
    match rng.below(4) {
        0 => rng.below(0x1_0000_0000) & !3,
        1 => 0xFFFF_FFFC - rng.below(64) * 4,
        2 => u64::MAX - 3 - rng.below(64) * 4,
        _ => rng.next(),
    }
}

#[test]
fn random_bytes_never_panic_and_retargets_read_back() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let (mut refs_seen, mut retargeted) = (0, 0);
    for _ in 0..4000 {
        let thumb = rng.below(2) == 0;
        let code = code(&mut rng, thumb);
        let vaddr = vaddr(&mut rng);
        let refs = scan(thumb, &code, vaddr);
        assert!(refs.windows(2).all(|w| w[0].at < w[1].at));
        for r in refs {
            assert!(r.at + 4 <= code.len());
            let (bytes, pc) = (&code[r.at..], vaddr.wrapping_add(r.at as u64));
            let old = target(thumb, r.kind, bytes, pc).expect("a scanned reference has a target");
            assert!(old < 1 << 32);
            assert!(
                check_retarget(thumb, r.kind, bytes, pc, old),
                "{:?}",
                r.kind
            );
            assert!(check_retarget(thumb, r.kind, bytes, pc, old + (1 << 32)));
            let near = old.wrapping_add(rng.below(1 << 13)).wrapping_sub(1 << 12);
            for to in [near, old ^ 1 << rng.below(32), rng.next()] {
                retargeted += usize::from(check_retarget(thumb, r.kind, bytes, pc, to));
            }
            refs_seen += 1;
        }
        // Every kind on bytes of every length, whatever they hold.
        for kind in KINDS {
            let bytes = &code[..code.len().min(rng.below(6) as usize)];
            let pc = vaddr.wrapping_add(rng.below(8));
            if let Some(old) = target(thumb, kind, bytes, pc) {
                assert!(check_retarget(thumb, kind, bytes, pc, old));
            }
            check_retarget(thumb, kind, bytes, pc, rng.next());
        }
    }
    assert!(
        refs_seen > 5000 && retargeted > 5000,
        "{refs_seen} {retargeted}"
    );
}
