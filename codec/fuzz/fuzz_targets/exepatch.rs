//! Fuzzes executable patches (`codec::exepatch`, what the applier's `exe_bspatch` runs).
//! Input: a mode byte, then
//! - even mode: a hostile patch, decoded against the fixed old file (`codec_fuzz::old()`, with
//!   a second copy of it made of aarch64/x86-looking words appended);
//! - odd mode: `<old length: 2 bytes LE><old><new>`, diffed with a layout that puts every range
//!   kind over parts of the old file and loads over all of it, then decoded.
//!
//! Checked: no panic, no hang, no output beyond the declared size; a patch that decodes
//! without error yields exactly its declared size; the encoder's patch always decodes to the
//! new file.

#![no_main]

use std::io::Read;
use std::sync::OnceLock;

use codec::exepatch::{self, CodeRange, ExePatchReader, Header, Isa, Layout, Load};
use codec_fuzz::old;
use libfuzzer_sys::fuzz_target;

fn old_file() -> &'static [u8] {
    static OLD: OnceLock<Vec<u8>> = OnceLock::new();
    OLD.get_or_init(|| {
        let mut o = old();
        // Words that look like branches, address computations, prologues and stack accesses
        // in several encodings.
        for i in 0..1100u32 {
            let w = [
                0x9400_0000 | i,
                0x9000_0000 | (i << 5),
                0x0000_00E8 | (i << 8),
                0xF000_F800,
                0xD100_03FF | ((i & 0xFFF) << 10),
                0xA900_7BFD | ((i & 0x7F) << 15),
                0xF900_03E0 | ((i & 0xFFF) << 10),
            ][i as usize % 7];
            o.extend_from_slice(&w.to_le_bytes());
        }
        o
    })
}

fn layout(old_len: u64, new_len: u64) -> Layout {
    let load = |len: u64| Load { offset: 0, vaddr: 0x1_0000, file_size: len, mem_size: len + 4096 };
    let kinds = [Isa::X86_64, Isa::Aarch64, Isa::Arm, Isa::Thumb, Isa::Abs64, Isa::Abs32, Isa::PcRel32, Isa::BaseRel32];
    let part = old_len / kinds.len() as u64;
    Layout {
        old_loads: vec![load(old_len)],
        new_loads: vec![load(new_len)],
        code: kinds
            .iter()
            .enumerate()
            .map(|(i, &isa)| CodeRange { isa, offset: i as u64 * part, len: part, vaddr: 0x1_0000 + i as u64 * part })
            .collect(),
        stack: vec![exepatch::StackShift { range: 1, from: 16, by: -16 }],
        frames: vec![1],
    }
}

fn decode(patch: &[u8], old: &[u8], chunk: usize) -> Option<Vec<u8>> {
    let controls = Header::control_count(&patch).ok()?;
    let header = Header::read(&patch, controls.min(1 << 16)).ok()?;
    let mut reader = ExePatchReader::new(patch, old, header.new_size, 1 << 16).ok()?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                assert!(out.len() as u64 <= header.new_size, "more than the declared size");
            }
            Err(_) => return None,
        }
    }
    assert_eq!(out.len() as u64, header.new_size, "fewer bytes than declared without an error");
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let [mode, data @ ..] = data else { return };
    let chunk = 1 + usize::from(*mode) * 257;
    if mode % 2 == 0 {
        // A patch holds its diff and extra bytes, so its output is never longer than itself.
        if let Some(out) = decode(data, old_file(), chunk) {
            assert!(out.len() <= data.len());
        }
        return;
    }
    let [a, b, rest @ ..] = data else { return };
    let split = (usize::from(*a) | usize::from(*b) << 8).min(rest.len());
    let (old, new) = rest.split_at(split);
    let patch = exepatch::diff(old, new, &layout(old.len() as u64, new.len() as u64)).expect("small inputs diff");
    assert_eq!(decode(&patch, old, chunk).as_deref(), Some(new), "round trip");
});
