//! Executable patches of real ELF files for the devices' instruction sets: programs assembled
//! and linked with binutils for aarch64 and 32-bit ARM (Thumb-2 and A32), in two versions
//! whose code moves by a different amount after each of many small insertions. The patch must
//! rebuild the new version exactly and be far smaller than bsdiff's, which pays for every call,
//! address computation and pointer that crosses an insertion.

use std::path::Path;
use std::process::Command;

use codec::bsdiff::{DiffOptions, ReadAt};
use codec::exepatch::ExePatchReader;
use std::io::Read;

/// How many functions the programs have, and every how many one grows in the new version.
const FUNCTIONS: usize = 3000;
const GROWS_EVERY: usize = 37;

/// Assembles and links `source` with the binutils of `triple` (e.g. `aarch64-linux-gnu`).
fn build(dir: &Path, triple: &str, name: &str, source: &str) -> Vec<u8> {
    let (s, o, out) = (
        dir.join(format!("{name}.s")),
        dir.join(format!("{name}.o")),
        dir.join(name),
    );
    std::fs::write(&s, source).unwrap();
    for (tool, args) in [
        ("as", vec![s.as_os_str(), "-o".as_ref(), o.as_os_str()]),
        ("ld", vec![o.as_os_str(), "-o".as_ref(), out.as_os_str()]),
    ] {
        let program = format!("{triple}-{tool}");
        let status = Command::new(&program)
            .args(args)
            .status()
            .unwrap_or_else(|e| {
                panic!("{program} is needed ({e}): run scripts/install-deps.sh (binutils-{triple})")
            });
        assert!(status.success(), "{program} failed on {}", s.display());
    }
    std::fs::read(out).unwrap()
}

/// Whether function `i` has extra instructions in the new version.
fn grows(i: usize, new: bool) -> bool {
    new && i % GROWS_EVERY == 5
}

/// aarch64: functions (each with its own constant, as real functions differ) calling each
/// other (BL), reaching data with ADRP+ADD, a branch (CBZ), and tables of pointers to them.
fn aarch64_program(new: bool) -> String {
    let mut s = String::from(".text\n.globl _start\n_start:\n  bl f0\n  b _start\n");
    for i in 0..FUNCTIONS {
        s += &format!("f{i}:\n");
        if grows(i, new) {
            s += &"  nop\n".repeat(1 + i % 5);
        }
        let (callee, data) = ((i * 7919 + FUNCTIONS / 2) % FUNCTIONS, i % 50);
        s += &format!(
            "  stp x29, x30, [sp, #-16]!\n  mov x1, #{i}\n  adrp x0, d{data}\n  \
             add x0, x0, :lo12:d{data}\n  cbz x0, 1f\n  bl f{callee}\n1:\n  \
             ldp x29, x30, [sp], #16\n  ret\n"
        );
    }
    s += &data_tables(".quad");
    s
}

/// Thumb-2 (or A32 with `arm`): functions calling each other (BL), loading addresses from
/// literal pools, and tables of pointers to them.
fn arm_program(new: bool, arm: bool) -> String {
    let mode = if arm { ".arm" } else { ".thumb" };
    let mut s =
        format!(".syntax unified\n{mode}\n.text\n.globl _start\n_start:\n  bl f0\n  b _start\n");
    for i in 0..FUNCTIONS {
        if !arm {
            s += ".thumb_func\n";
        }
        s += &format!("f{i}:\n");
        if grows(i, new) {
            s += &"  nop\n".repeat(1 + i % 5);
        }
        let (callee, data) = ((i * 7919 + FUNCTIONS / 2) % FUNCTIONS, i % 50);
        s += &format!(
            "  push {{r4, lr}}\n  movw r1, #{i}\n  ldr r0, =d{data}\n  cmp r0, #0\n  beq 1f\n  \
             bl f{callee}\n1:\n  pop {{r4, pc}}\n"
        );
        if i % 64 == 63 {
            s += "  .ltorg\n";
        }
    }
    s += "  .ltorg\n";
    s += &data_tables(".word");
    s
}

fn data_tables(directive: &str) -> String {
    let mut s = String::from(".data\n");
    for k in 0..50 {
        s += &format!(
            "d{k}:\n  {directive} f{}\n  {directive} 0\n",
            (k * 13) % FUNCTIONS
        );
    }
    s += ".section .data.rel.ro,\"aw\"\n";
    for i in (0..FUNCTIONS).step_by(3) {
        s += &format!("  {directive} f{i}\n");
    }
    s
}

/// The executable patch and bsdiff's patch of a pair; checks the executable patch rebuilds
/// the new file.
fn sizes(old: &[u8], new: &[u8]) -> (usize, usize) {
    let options = DiffOptions::default();
    let triples = codec::bsdiff::triples(old, new, &options).unwrap();
    let mut bsdiff = Vec::new();
    codec::bsdiff::write_patch(old, new, &triples, &options, &mut bsdiff).unwrap();
    let exe = generate::exe_patch::encode(old, new, &triples).expect("an ELF pair exe knows");
    let mut rebuilt = Vec::new();
    ExePatchReader::new(&exe.patch[..], old, new.len() as u64, 1 << 20)
        .unwrap()
        .read_to_end(&mut rebuilt)
        .unwrap();
    assert!(
        rebuilt == new,
        "the executable patch does not rebuild the new file"
    );
    assert_eq!(exe.patch.size(), exe.patch.len() as u64);
    (exe.frame.len(), bsdiff.len())
}

/// Checks that the executable patch is smaller than bsdiff's by `factor` at least.
fn check(triple: &str, factor: f64, program: impl Fn(bool) -> String) {
    let dir = tempfile::tempdir().unwrap();
    let old = build(dir.path(), triple, "v1", &program(false));
    let new = build(dir.path(), triple, "v2", &program(true));
    assert_ne!(old, new);
    let (exe, bsdiff) = sizes(&old, &new);
    eprintln!("{triple}: executable patch {exe} bytes, bsdiff {bsdiff} bytes");
    assert!(
        exe as f64 * factor < bsdiff as f64,
        "{triple}: executable patch {exe}, bsdiff {bsdiff}"
    );
}

#[test]
fn aarch64_programs() {
    // Measured: 613 against 7,702 bytes.
    check("aarch64-linux-gnu", 5.0, aarch64_program);
}

#[test]
fn thumb2_programs() {
    // Measured: 4,475 against 21,235 bytes.
    check("arm-linux-gnueabihf", 3.0, |new| arm_program(new, false));
}

#[test]
fn arm_programs() {
    // Measured: 6,927 against 12,698 bytes. A32 gains less here: bsdiff aligns some grown
    // functions with other, similar-looking ones (their literal pools make the bodies alike),
    // and calls into them are then predicted from the wrong place.
    check("arm-linux-gnueabihf", 1.5, |new| arm_program(new, true));
}
