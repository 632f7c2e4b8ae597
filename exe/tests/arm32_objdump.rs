//! `exe::arm32` checked against GNU binutils for armhf: a program of ARM and Thumb code with
//! every kind of reference (all conditions, forward and backward, near and far, calls into the
//! other mode) is assembled and linked at test time; every reference objdump disassembles must
//! be found, at the address and with the target objdump prints, and nothing else. Then every
//! reference is re-targeted (often to the ends of its range) and objdump must read the new
//! targets from the rewritten program.
//!
//! The tools come from the Debian package binutils-arm-linux-gnueabihf, which
//! scripts/install-deps.sh installs; without them the test fails and says so.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use exe::arm32::{Arm, Kind, Thumb};
use exe::{Isa, Ref};

/// Where the linker puts `.text`.
const TEXT: u64 = 0x10000;

const CONDS: [&str; 14] = [
    "eq", "ne", "cs", "cc", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le",
];

/// The program: ARM code, then Thumb code, each with zero-filled gaps for far targets.
fn source() -> String {
    let mut s = String::from("\t.syntax unified\n\t.text\n\t.arm\narm_begin:\narm_back:\n\tnop\n");
    let mut arm = |line: String| s.push_str(&format!("\t{line}\n"));
    for c in CONDS.iter().chain(&[""]) {
        for label in ["arm_back", "arm_fwd", "arm_far"] {
            arm(format!("b{c} {label}"));
            arm(format!("bl{c} {label}"));
        }
        arm(format!("ldr{c} r{}, arm_lit", c.len() + 1));
    }
    for line in [
        "blx thumb_fn0",
        "blx thumb_fn2",
        "bl thumb_fn0",
        "blx thumb_far",
        "ldr r1, arm_back",
        "ldr r2, [pc, #4092]",
        "ldr r2, [pc, #-4095]",
        "ldrne r1, [pc, #-0]",
        "ldr pc, [pc, #-4]",
        "ldr r3, [pc, r4]",
        "ldrb r0, arm_lit",
        "adr r2, arm_lit",
        "blx r3",
        "bx lr",
    ] {
        arm(line.to_string());
    }
    s.push_str("arm_fwd:\n\tnop\n\t.balign 4\narm_lit:\n\t.word 0x12345678\n\t.space 0x200000\n");
    s.push_str("arm_far:\n\tb arm_back\n\tbl arm_back\n\tblx thumb_fn2\n\tbx lr\narm_end:\n");
    s.push_str(
        "\t.thumb\n\t.thumb_func\nthumb_begin:\nthumb_fn0:\n\tnop\nthumb_fn2:\nthumb_back:\n",
    );
    // Each 32-bit instruction followed by a 16-bit nop: every other one is at 2 mod 4.
    let mut thumb = |line: String| s.push_str(&format!("\t{line}\n\tnop\n"));
    for c in CONDS {
        for label in ["thumb_back", "thumb_fwd", "thumb_mid"] {
            thumb(format!("b{c}.w {label}"));
        }
    }
    for label in ["thumb_back", "thumb_fwd", "thumb_mid", "thumb_far"] {
        thumb(format!("b.w {label}"));
        thumb(format!("bl {label}"));
    }
    for label in ["thumb_back", "thumb_fwd"] {
        thumb(format!("ldr.w r0, {label}"));
        thumb(format!("adr.w r1, {label}"));
    }
    for line in [
        "blx arm_back",
        "blx arm_fwd",
        "blx arm_far",
        "bl arm_fwd",
        "ldr.w r2, [pc, #4095]",
        "ldr.w r2, [pc, #-4095]",
        "ldr.w pc, [pc, #-8]",
        "addw r5, pc, #2049",
        "subw r6, pc, #4095",
        "addw r3, r4, #12",
        "pld [pc, #8]",
        "ldrb.w r0, [pc, #12]",
        "it ne\n\tblne thumb_fwd",
        "it eq\n\tbeq.w thumb_back",
        "ite lt\n\tldrlt.w r0, thumb_fwd\n\tldrge.w r0, thumb_back",
        "ldr r7, thumb_fwd",
        "cbz r0, 1f\n\tnop\n1:",
        "b.n 1f\n\tnop\n1:",
        "bne.n 1b",
        "mrs r0, apsr",
        "msr apsr_nzcvq, r0",
    ] {
        thumb(line.to_string());
    }
    s.push_str("\tb.w thumb_fwd\nthumb_fwd:\n\tnop\n\t.space 0xC0000\n");
    s.push_str("thumb_mid:\n\tbeq.w thumb_back\n\tbl thumb_back\n\t.space 0x100000\n");
    s.push_str("thumb_far:\n\tbl thumb_back\n\tb.w thumb_back\n\tblx arm_back\n\tblx arm_far\n");
    s.push_str("\tbx lr\n\t.balign 4\nthumb_end:\n");
    s
}

/// Runs a binutils tool, or fails saying how to get it.
fn tool(name: &str, args: &[&str]) -> String {
    let program = format!("arm-linux-gnueabihf-{name}");
    let out = Command::new(&program).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {program} ({e}): install binutils-arm-linux-gnueabihf with scripts/install-deps.sh")
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).expect("tool output is UTF-8")
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("exe-arm32-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One instruction of `objdump -d`.
#[derive(Debug, Clone)]
struct Line {
    addr: u64,
    /// A 32-bit Thumb instruction (shown as two halfwords).
    thumb32: bool,
    mnemonic: String,
    operands: String,
    /// After `@`.
    comment: String,
}

fn disassemble(elf: &str) -> BTreeMap<u64, Line> {
    let mut lines = BTreeMap::new();
    for text in tool("objdump", &["-d", elf]).lines() {
        let parts: Vec<&str> = text.split('\t').collect();
        let Some(addr) = parts[0].trim().strip_suffix(':') else {
            continue;
        };
        let (Ok(addr), Some(encoding), Some(mnemonic)) =
            (u64::from_str_radix(addr, 16), parts.get(1), parts.get(2))
        else {
            continue;
        };
        let comment = parts
            .get(4)
            .and_then(|c| c.strip_prefix("@ "))
            .unwrap_or("");
        let line = Line {
            addr,
            thumb32: encoding.split_whitespace().count() == 2,
            mnemonic: mnemonic.to_string(),
            operands: parts.get(3).unwrap_or(&"").to_string(),
            comment: comment.to_string(),
        };
        lines.insert(addr, line);
    }
    lines
}

/// The mnemonic without `.w`/`.n` and without a condition.
fn base_mnemonic(m: &str) -> &str {
    let m = m.trim_end_matches(".w").trim_end_matches(".n");
    let conds = CONDS.iter().chain(&["al", "hs", "lo"]);
    match conds.clone().find(|c| m.len() > 2 && m.ends_with(*c)) {
        Some(c) if ["b", "bl", "ldr"].contains(&&m[..m.len() - c.len()]) => &m[..m.len() - c.len()],
        _ => m,
    }
}

fn hex_prefix(s: &str) -> Option<u64> {
    let s = s.trim_start_matches('(');
    let end = s.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(s.len());
    u64::from_str_radix(&s[..end], 16).ok()
}

/// The target objdump shows for a reference `exe::arm32` is meant to find, if `line` is one.
fn objdump_target(line: &Line, thumb: bool) -> Option<u64> {
    if thumb && !line.thumb32 {
        return None;
    }
    match base_mnemonic(&line.mnemonic) {
        "b" | "bl" | "blx" => Some(hex_prefix(&line.operands)? & 0xFFFF_FFFF),
        "ldr" if line.operands.contains("[pc") => Some(hex_prefix(&line.comment)? & 0xFFFF_FFFF),
        m @ ("addw" | "subw") if thumb && line.operands.contains(", pc, #") => {
            let imm: u64 = line.operands.rsplit('#').next()?.parse().ok()?;
            let base = (line.addr + 4) & !3;
            Some(if m == "addw" {
                base + imm
            } else {
                base.wrapping_sub(imm) & 0xFFFF_FFFF
            })
        }
        _ => None,
    }
}

fn symbol(nm: &str, name: &str) -> u64 {
    let line = nm
        .lines()
        .find(|l| l.ends_with(&format!(" {name}")))
        .expect(name);
    u64::from_str_radix(&line[..8], 16).unwrap()
}

/// The `.text` of `elf`: its address and its offset and size in the file.
fn text_section(elf: &str) -> (u64, usize, usize) {
    let headers = tool("objdump", &["-h", elf]);
    let line = headers
        .lines()
        .find(|l| l.contains(" .text "))
        .expect(".text");
    let f: Vec<&str> = line.split_whitespace().collect();
    let hex = |s: &str| usize::from_str_radix(s, 16).unwrap();
    (hex(f[3]) as u64, hex(f[5]), hex(f[2]))
}

/// A region of `.text` in one instruction set.
struct Region {
    thumb: bool,
    start: u64,
    end: u64,
}

/// The references of a region of `text` (at `vma`), by address: kind and target.
fn scan(text: &[u8], vma: u64, r: &Region) -> BTreeMap<u64, (Kind, u64)> {
    let code = &text[(r.start - vma) as usize..(r.end - vma) as usize];
    let mut refs: Vec<Ref<Kind>> = Vec::new();
    match r.thumb {
        false => Arm::scan(code, r.start, &mut refs),
        true => Thumb::scan(code, r.start, &mut refs),
    }
    assert!(refs.windows(2).all(|w| w[0].at < w[1].at));
    let entry = |x: &Ref<Kind>| {
        let pc = r.start + x.at as u64;
        let target = target_of(r.thumb, x.kind, &code[x.at..], pc).expect("a target");
        (pc, (x.kind, target))
    };
    refs.iter().map(entry).collect()
}

/// The targets objdump shows for the references of a region.
fn expected(lines: &BTreeMap<u64, Line>, r: &Region) -> BTreeMap<u64, u64> {
    let region = lines.range(r.start..r.end);
    region
        .filter_map(|(&a, l)| Some((a, objdump_target(l, r.thumb)?)))
        .collect()
}

/// The address an offset of this kind counts from, for an instruction at `pc`.
fn base(kind: Kind, pc: u64) -> i64 {
    let pc = pc as i64;
    match kind {
        Kind::ArmB | Kind::ArmBl | Kind::ArmBlx => pc + 8,
        Kind::ArmLdr => (pc + 8) & !3,
        Kind::ThumbBl | Kind::ThumbB | Kind::ThumbBcond => pc + 4,
        Kind::ThumbBlx | Kind::ThumbLdr | Kind::ThumbAdr => (pc + 4) & !3,
    }
}

/// Offsets each kind can hold, ends of the range first, and its step (offsets are multiples).
fn offsets(kind: Kind) -> (&'static [i64], i64) {
    match kind {
        Kind::ArmB | Kind::ArmBl => (&[0x1FF_FFFC, -0x200_0000, 4, -4, 0x12344, -0x8_0008], 4),
        Kind::ArmBlx => (&[0x1FF_FFFE, -0x200_0000, 2, -2, 0x12_3456, -0x10_0006], 2),
        Kind::ArmLdr | Kind::ThumbLdr | Kind::ThumbAdr => (&[4095, -4095, 0, 8, -12, 2049], 1),
        Kind::ThumbBl | Kind::ThumbB => (&[0xFF_FFFE, -0x100_0000, 0x40_0002, -0x80_0002, 2], 2),
        Kind::ThumbBlx => (&[0xFF_FFFC, -0x100_0000, 0x40_0004, -0x80_0004, 4, -4], 4),
        Kind::ThumbBcond => (&[0xF_FFFE, -0x10_0000, 0x4_0000, -0x8_0002, 2, -2], 2),
    }
}

fn target_of(thumb: bool, kind: Kind, bytes: &[u8], pc: u64) -> Option<u64> {
    match thumb {
        false => Arm::target(kind, bytes, pc),
        true => Thumb::target(kind, bytes, pc),
    }
}

fn retarget(thumb: bool, kind: Kind, bytes: &mut [u8], pc: u64, target: u64) -> bool {
    match thumb {
        false => Arm::retarget(kind, bytes, pc, target),
        true => Thumb::retarget(kind, bytes, pc, target),
    }
}

/// Targets just out of range or misaligned are refused, leaving the bytes as they were.
fn check_refused(thumb: bool, kind: Kind, bytes: &[u8], pc: u64) {
    let (ends, step) = offsets(kind);
    let b = base(kind, pc);
    let mut bad = vec![b + ends[0] + step, b + ends[1] - step];
    if step > 1 {
        bad.extend([b + ends[0] - 1, b + ends[0] - step / 2]);
    }
    for t in bad {
        let mut copy = bytes.to_vec();
        assert!(
            !retarget(thumb, kind, &mut copy, pc, t as u64),
            "{kind:?} at {pc:#x} to {t:#x}"
        );
        assert_eq!(copy, bytes);
    }
}

#[test]
fn references_match_objdump_and_retarget_as_objdump_reads_them() {
    let dir = TempDir::new();
    let (src, obj, elf) = (dir.path("t.s"), dir.path("t.o"), dir.path("t.elf"));
    std::fs::write(&src, source()).unwrap();
    tool("as", &["-march=armv7-a", "-o", &obj, &src]);
    let text_at = format!("-Ttext={TEXT:#x}");
    tool("ld", &[&text_at, "-e", "arm_begin", "-o", &elf, &obj]);
    let (vma, offset, size) = text_section(&elf);
    assert_eq!(vma, TEXT);
    let mut file = std::fs::read(&elf).unwrap();
    let text = file[offset..offset + size].to_vec();
    let nm = tool("nm", &[&elf]);
    let regions = [
        Region {
            thumb: false,
            start: symbol(&nm, "arm_begin"),
            end: symbol(&nm, "arm_end"),
        },
        Region {
            thumb: true,
            start: symbol(&nm, "thumb_begin"),
            end: symbol(&nm, "thumb_end"),
        },
    ];
    let lines = disassemble(&elf);

    let mut found = Vec::new();
    for r in &regions {
        let refs = scan(&text, TEXT, r);
        let ours: BTreeMap<u64, u64> = refs.iter().map(|(&a, &(_, t))| (a, t)).collect();
        assert_eq!(ours, expected(&lines, r), "thumb: {}", r.thumb);
        found.extend(refs.into_iter().map(|(a, (k, _))| (r.thumb, a, k)));
    }
    let kinds: std::collections::BTreeSet<String> =
        found.iter().map(|f| format!("{:?}", f.2)).collect();
    assert_eq!(kinds.len(), 10, "every kind is in the program: {kinds:?}");

    // Every reference re-targeted (each kind cycling through its offsets), in one copy.
    let mut patched = text.clone();
    let mut wanted = BTreeMap::new();
    for (i, &(thumb, addr, kind)) in found.iter().enumerate() {
        let bytes = &mut patched[(addr - TEXT) as usize..];
        check_refused(thumb, kind, bytes, addr);
        let (choices, _) = offsets(kind);
        let old = target_of(thumb, kind, bytes, addr).unwrap();
        let new = (0..choices.len())
            .map(|j| (base(kind, addr) + choices[(i + j) % choices.len()]) as u64 & 0xFFFF_FFFF)
            .find(|&t| t != old)
            .unwrap();
        assert!(
            retarget(thumb, kind, bytes, addr, new),
            "{kind:?} at {addr:#x} to {new:#x}"
        );
        assert_eq!(
            target_of(thumb, kind, bytes, addr),
            Some(new),
            "{kind:?} at {addr:#x}"
        );
        wanted.insert(addr, new);
    }
    file[offset..offset + size].copy_from_slice(&patched);
    let patched_elf = dir.path("patched.elf");
    std::fs::write(&patched_elf, &file).unwrap();
    let relines = disassemble(&patched_elf);
    for &(thumb, addr, kind) in &found {
        let line = &relines[&addr];
        let same = base_mnemonic(&line.mnemonic) == base_mnemonic(&lines[&addr].mnemonic);
        assert!(
            same || kind == Kind::ThumbAdr,
            "{line:?} was {:?}",
            lines[&addr]
        );
        assert_eq!(
            objdump_target(line, thumb),
            Some(wanted[&addr]),
            "{kind:?}: {line:?}"
        );
    }
}

#[test]
fn tool_missing_message_names_the_install_script() {
    let result = std::panic::catch_unwind(|| tool("no-such-tool", &[]));
    let message = *result.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("scripts/install-deps.sh"), "{message}");
}

/// The armhf program at `$ARM32_ELF`: the references in its `.text` match objdump's. The
/// program must keep its mapping symbols (`$a`, `$t`, `$d`: where ARM code, Thumb code and
/// data start), as linked programs do until stripped. Not run by default (it needs such a
/// program, e.g. `arm-linux-gnueabihf-gcc -O2 -static`):
/// `ARM32_ELF=prog cargo test -p exe --test arm32_objdump -- --ignored`.
#[test]
#[ignore]
fn a_real_program_matches_objdump() {
    let elf = std::env::var("ARM32_ELF").expect("ARM32_ELF names an armhf ELF program");
    let (vma, offset, size) = text_section(&elf);
    let file = std::fs::read(&elf).unwrap();
    let text = &file[offset..offset + size];
    let end = vma + size as u64;
    // (start, code, thumb) of each run of ARM code, Thumb code or data.
    let mut maps: Vec<(u64, bool, bool)> = Vec::new();
    for line in tool("nm", &["--special-syms", &elf]).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(addr), Some(name)) = (f.first(), f.get(2)) else {
            continue;
        };
        let map = name.strip_prefix('$').and_then(|n| n.chars().next());
        let addr = u64::from_str_radix(addr, 16).unwrap_or(u64::MAX);
        if (vma..end).contains(&addr) && matches!(map, Some('a' | 't' | 'd')) {
            maps.push((addr, map != Some('d'), map == Some('t')));
        }
    }
    maps.sort_by_key(|m| m.0);
    maps.dedup_by_key(|m| m.0);
    assert!(
        !maps.is_empty(),
        "no mapping symbols: is the program stripped?"
    );
    let lines = disassemble(&elf);
    let (mut count, mut wrong) = (0, Vec::new());
    for (i, &(start, code, thumb)) in maps.iter().enumerate() {
        let r = Region {
            thumb,
            start,
            end: maps.get(i + 1).map_or(end, |m| m.0),
        };
        if !code || r.start == r.end {
            continue;
        }
        let ours: BTreeMap<u64, u64> = scan(text, vma, &r)
            .iter()
            .map(|(&a, &(_, t))| (a, t))
            .collect();
        let theirs = expected(&lines, &r);
        count += theirs.len();
        for addr in ours.keys().chain(theirs.keys()) {
            if ours.get(addr) != theirs.get(addr) {
                wrong.push((*addr, ours.get(addr).copied(), lines.get(addr).cloned()));
            }
        }
    }
    eprintln!("{count} references, {} mismatches", wrong.len());
    assert!(wrong.is_empty(), "{:#?}", &wrong[..wrong.len().min(20)]);
}
