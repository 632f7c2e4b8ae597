//! Making an executable patch: bsdiff's alignment of old and new, the prediction it implies,
//! and the differences from the prediction.

use super::map::{AddressMap, Segment, WINDOW};
use super::reader::predict_window;
use super::{write_header, Control, Layout};
use crate::bsdiff::{BsdiffError, DiffOptions, Triple};

/// Makes the (uncompressed) patch that turns `old` into `new`; `layout` describes both files
/// (their loads) and the old file's code.
pub fn diff(old: &[u8], new: &[u8], layout: &Layout) -> Result<Vec<u8>, BsdiffError> {
    let first = crate::bsdiff::triples(old, new, &DiffOptions::default())?;
    diff_aligned(old, new, layout, &first)
}

/// [`diff`] with bsdiff's alignment of `old` and `new` already made ([`crate::bsdiff::triples`]
/// with default options).
pub fn diff_aligned(
    old: &[u8],
    new: &[u8],
    layout: &Layout,
    first: &[Triple],
) -> Result<Vec<u8>, BsdiffError> {
    let first: Vec<Control> = first.iter().map(control).collect();
    let controls = if layout.code.is_empty() {
        first
    } else {
        // Align again, the old file's references projected through the first alignment.
        let mut projected = old.to_vec();
        AddressMap::new(layout.clone(), &first).project(&mut projected);
        self::controls(&projected, new)?
    };
    Ok(diff_with(old, new, layout, &controls))
}

/// The patch with these final `controls`.
fn diff_with(old: &[u8], new: &[u8], layout: &Layout, controls: &[Control]) -> Vec<u8> {
    let map = AddressMap::new(layout.clone(), controls);
    let mut out = Vec::with_capacity(new.len() / 4);
    write_header(new.len() as u64, layout, controls, &mut out);
    let (mut old_pos, mut new_pos) = (0u64, 0usize);
    let mut extra = Vec::new();
    let mut window = vec![0u8; WINDOW];
    for c in controls {
        let segment = Segment {
            old: old_pos,
            new: new_pos as u64,
            len: c.add,
        };
        let mut left = c.add as usize;
        while left > 0 {
            let n = left.min(WINDOW);
            let w = &mut window[..n];
            let place = (old_pos, new_pos as u64, segment);
            // Reading a slice cannot fail.
            let _ = predict_window(&map, &old, place, w);
            let target = &new[new_pos..new_pos + n];
            out.extend(target.iter().zip(w.iter()).map(|(t, p)| t.wrapping_sub(*p)));
            old_pos = old_pos.wrapping_add(n as u64);
            new_pos += n;
            left -= n;
        }
        extra.extend_from_slice(&new[new_pos..new_pos + c.copy as usize]);
        new_pos += c.copy as usize;
        old_pos = old_pos.wrapping_add(c.seek as u64);
    }
    out.extend_from_slice(&extra);
    out
}

/// bsdiff's alignment of `old` and `new`.
fn controls(old: &[u8], new: &[u8]) -> Result<Vec<Control>, BsdiffError> {
    let triples = crate::bsdiff::triples(old, new, &DiffOptions::default())?;
    Ok(triples.iter().map(control).collect())
}

fn control(t: &Triple) -> Control {
    Control {
        add: t.add as u64,
        copy: t.copy as u64,
        seek: t.seek,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exepatch::{CodeRange, ExePatchReader, Isa, Load};
    use std::io::Read;

    fn apply(patch: &[u8], old: &[u8], len: u64) -> Vec<u8> {
        let mut out = Vec::new();
        ExePatchReader::new(patch, old, len, 1 << 20)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// aarch64 code: BLs (each followed by a distinct ORR) to a function after a gap that
    /// grows in the new version.
    fn program(gap: usize) -> Vec<u8> {
        let callee = 8 * 4096 + gap;
        let mut code = Vec::new();
        for i in 0..4096usize {
            let words = ((callee - 8 * i) / 4) as u32;
            code.extend_from_slice(&(0x9400_0000 | words).to_le_bytes());
            code.extend_from_slice(&(0xAA00_0000 | (i as u32 * 0x9E37) & 0xFF_FFFF).to_le_bytes());
        }
        code.extend(std::iter::repeat_n(0xAA, gap));
        code.extend_from_slice(&0xD65F_03C0u32.to_le_bytes()); // ret
        code
    }

    fn layout(old: &[u8], new: &[u8]) -> Layout {
        let load = |len: usize| Load {
            offset: 0,
            vaddr: 0x10000,
            file_size: len as u64,
            mem_size: len as u64,
        };
        Layout {
            old_loads: vec![load(old.len())],
            new_loads: vec![load(new.len())],
            code: vec![CodeRange {
                isa: Isa::Aarch64,
                offset: 0,
                len: old.len() as u64,
                vaddr: 0x10000,
            }],
            stack: Vec::new(),
        }
    }

    #[test]
    fn moved_callees_cost_nothing_and_patches_round_trip() {
        let (old, new) = (program(64), program(96));
        let plain = diff(&old, &new, &Layout::default()).unwrap();
        let aware = diff(&old, &new, &layout(&old, &new)).unwrap();
        assert_eq!(apply(&plain, &old, new.len() as u64), new);
        assert_eq!(apply(&aware, &old, new.len() as u64), new);
        let nonzero = |p: &[u8]| p.iter().filter(|&&b| b != 0).count();
        // Every BL changed (4096 words); with the prediction only the gap's new bytes remain.
        assert!(nonzero(&plain) > 4000, "{}", nonzero(&plain));
        assert!(nonzero(&aware) < 200, "{}", nonzero(&aware));
    }

    #[test]
    fn a_stack_shift_predicts_frames_that_changed_shape() {
        // Stores to locals at sp+0x68.., one per function; the new build has 96 bytes less
        // at the bottom of every frame.
        let frame = |shift: u32| -> Vec<u8> {
            let mut code = Vec::new();
            for i in 0..4000u32 {
                let imm = 13 + i % 40 - shift / 8; // str x(i%8), [sp, #8 * imm]
                code.extend_from_slice(&(0xF900_03E0 | (imm << 10) | (i % 8)).to_le_bytes());
                code.extend_from_slice(&(0xAA00_0000 | (i * 0x9E37) & 0xFF_FFFF).to_le_bytes());
            }
            code
        };
        let (old, new) = (frame(0), frame(96));
        let mut layout = layout(&old, &new);
        let plain = diff(&old, &new, &layout).unwrap();
        layout.stack = vec![crate::exepatch::StackShift {
            range: 0,
            from: 96,
            by: -96,
        }];
        let shifted = diff(&old, &new, &layout).unwrap();
        assert_eq!(apply(&shifted, &old, new.len() as u64), new);
        let nonzero = |p: &[u8]| p.iter().filter(|&&b| b != 0).count();
        assert!(nonzero(&plain) > 3000, "{}", nonzero(&plain));
        assert!(nonzero(&shifted) < 100, "{}", nonzero(&shifted));
    }

    #[test]
    fn wrong_sizes_and_truncation_are_errors() {
        let (old, new) = (program(64), program(96));
        let patch = diff(&old, &new, &layout(&old, &new)).unwrap();
        assert!(ExePatchReader::new(&patch[..], &old[..], 5, 1 << 20).is_err());
        let cut = &patch[..patch.len() - 1];
        assert!(ExePatchReader::new(cut, &old[..], new.len() as u64, 1 << 20).is_err());
    }
}
