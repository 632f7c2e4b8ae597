//! Making an executable patch: bsdiff's alignment of old and new, the prediction it implies,
//! and the differences from the prediction.

use super::frames::Frames;
use super::map::{AddressMap, Segment, WINDOW};
use super::reader::predict_window;
use super::{write_header, Control, Layout};
use crate::bsdiff::{BsdiffError, DiffOptions, Triple};

/// Makes the (uncompressed) patch that turns `old` into `new`; `layout` describes both files
/// (their loads) and the old file's code. Excursions are dropped ([`drop_excursions`]).
pub fn diff(old: &[u8], new: &[u8], layout: &Layout) -> Result<Vec<u8>, BsdiffError> {
    let first = crate::bsdiff::triples(old, new, &DiffOptions::default())?;
    let controls = align(old, new, layout, &first)?;
    Ok(diff_with(old, new, layout, &drop_excursions(&controls)))
}

/// The final alignment of `old` and `new` for `layout`, from bsdiff's alignment `first`
/// ([`crate::bsdiff::triples`] with default options): with code ranges, bsdiff's alignment of
/// the old file's *projection* (its references re-targeted through the map of `first`,
/// without its excursions) with the new file; without, `first` itself.
pub fn align(
    old: &[u8],
    new: &[u8],
    layout: &Layout,
    first: &[Triple],
) -> Result<Vec<Control>, BsdiffError> {
    let first: Vec<Control> = first.iter().map(control).collect();
    if layout.code.is_empty() {
        return Ok(first);
    }
    let mut projected = old.to_vec();
    AddressMap::new(layout.clone(), &drop_excursions(&first)).project(&mut projected);
    controls(&projected, new)
}

/// Segments shorter than this that leave the prevailing alignment become extra bytes
/// ([`drop_excursions`]).
const EXCURSION_LEN: u64 = 128;
/// How far (bytes of drift, new minus old offset) a segment must be from the one before to
/// count as an excursion.
const EXCURSION_DRIFT: u64 = 256;

/// `controls` with their *excursions* turned into extra bytes: bsdiff's alignment jumps to a
/// far part of the old file for a short match (an epilogue or a call sequence that many
/// functions share) and back. Each jump costs two triples, and its segment puts a bogus piece
/// into the address map, so references near it mispredict; as extra bytes the match is still
/// found by the zstd frame, which has the old file as basis. On the arm64 upgrade pair this
/// halves the triples of libapt-pkg and makes its patch 16 % smaller; but a small function
/// that really moved is an excursion too, and some patches grow (pcre2 1 to 4 %): the
/// generator makes the patch both ways and keeps the smaller.
pub fn drop_excursions(controls: &[Control]) -> Vec<Control> {
    let mut out: Vec<Control> = Vec::with_capacity(controls.len());
    let (mut old_pos, mut new_pos) = (0i64, 0i64);
    // The drift of the last segment kept.
    let mut drift: Option<i64> = None;
    for c in controls {
        let here = new_pos.wrapping_sub(old_pos);
        let far = drift.is_some_and(|d| d.wrapping_sub(here).unsigned_abs() > EXCURSION_DRIFT);
        match out.last_mut() {
            Some(last) if c.add > 0 && c.add < EXCURSION_LEN && far => {
                last.copy = last.copy.saturating_add(c.add).saturating_add(c.copy);
                last.seek = last.seek.wrapping_add(c.add as i64).wrapping_add(c.seek);
            }
            _ => {
                out.push(*c);
                if c.add > 0 {
                    drift = Some(here);
                }
            }
        }
        old_pos = old_pos.wrapping_add(c.add as i64).wrapping_add(c.seek);
        new_pos = new_pos.wrapping_add((c.add + c.copy) as i64);
    }
    out
}

/// The patch with these final `controls` (from [`align`], with or without
/// [`drop_excursions`]; they must make exactly `new.len()` bytes, as those do).
pub fn diff_with(old: &[u8], new: &[u8], layout: &Layout, controls: &[Control]) -> Vec<u8> {
    let map = AddressMap::new(layout.clone(), controls);
    let mut frames = Frames::new(layout);
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
            match &mut frames {
                Some(frames) => frames.settle(w, old_pos, |i, b| {
                    out.push(target[i].wrapping_sub(*b));
                    *b = target[i];
                }),
                None => out.extend(target.iter().zip(w.iter()).map(|(t, p)| t.wrapping_sub(*p))),
            }
            old_pos = old_pos.wrapping_add(n as u64);
            new_pos += n;
            left -= n;
        }
        let copied = &new[new_pos..new_pos + c.copy as usize];
        if let Some(frames) = &mut frames {
            frames.observe(copied);
        }
        extra.extend_from_slice(copied);
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
            frames: Vec::new(),
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

    /// aarch64 functions with 32 bytes of saved registers and locals above them (`old`), or
    /// below them (`new`: the layout of GCC's CVE-2023-4039 fix), frames of 64 to 176 bytes;
    /// between the stack accesses code that stays.
    fn frames(relaid: bool) -> Vec<u8> {
        let mut code = Vec::new();
        let mut put = |w: u32| code.extend_from_slice(&w.to_le_bytes());
        for i in 0..1000u32 {
            let (f, s) = (64 + 16 * (i % 8), 32);
            let l = f - s;
            let (local, saved) = if relaid { (0, l) } else { (s, 0) };
            let filler = |put: &mut dyn FnMut(u32), k: u32| {
                for j in 0..6 {
                    // movz x(j), #(i * 7 + k + j); eor x(j), x(j), x(j + 1)
                    put(0xD280_0000 | ((i * 7 + k + j) & 0xFFFF) << 5 | j);
                    put(0xCA00_0000 | ((j + 1) << 16) | (j << 5) | j);
                }
            };
            if relaid {
                put(0xD100_03FF | (f << 10)); // sub sp, sp, #f
                put(0xA900_7BFD | ((l / 8) << 15)); // stp x29, x30, [sp, #l]
                put(0x9100_03FD | (l << 10)); // add x29, sp, #l
            } else {
                put(0xA980_7BFD | (((f / 8).wrapping_neg() & 0x7F) << 15)); // stp x29, x30, [sp, #-f]!
                put(0x9100_03FD); // mov x29, sp
            }
            put(0xA900_53F3 | (((saved + 16) / 8) << 15)); // stp x19, x20, [sp, #saved + 16]
            filler(&mut put, 0);
            put(0xF900_03E0 | (((local + 8) / 8) << 10)); // str x0, [sp, #local + 8]
            filler(&mut put, 100);
            put(0xF940_03E1 | (((local + l - 8) / 8) << 10)); // ldr x1, [sp, #local + l - 8]
            filler(&mut put, 200);
            put(0x9100_03E2 | ((local + 16) << 10)); // add x2, sp, #local + 16
            filler(&mut put, 300);
            put(0xA940_53F3 | (((saved + 16) / 8) << 15)); // ldp x19, x20, [sp, #saved + 16]
            if relaid {
                put(0xA940_7BFD | ((l / 8) << 15)); // ldp x29, x30, [sp, #l]
                put(0x9100_03FF | (f << 10)); // add sp, sp, #f
            } else {
                put(0xA8C0_7BFD | ((f / 8) << 15)); // ldp x29, x30, [sp], #f
            }
            put(0xD65F_03C0); // ret
        }
        code
    }

    #[test]
    fn frames_that_changed_layout_are_relaid_from_the_new_prologues() {
        let (old, new) = (frames(false), frames(true));
        let mut layout = layout(&old, &new);
        let plain = diff(&old, &new, &layout).unwrap();
        layout.frames = vec![0];
        let relaid = diff(&old, &new, &layout).unwrap();
        assert_eq!(apply(&relaid, &old, new.len() as u64), new);
        // Nonzero diff bytes (the inserted prologue and epilogue words are extra bytes).
        let nonzero = |p: &[u8]| {
            let h = crate::exepatch::Header::read(&p, u64::MAX).unwrap();
            let diff = &p[h.diff_start as usize..h.extra_start as usize];
            diff.iter().filter(|&&b| b != 0).count()
        };
        // The stack words of every function change (7,500 diff bytes); with the re-layout a
        // byte per function is left (1,000).
        assert!(nonzero(&plain) > 6000, "{}", nonzero(&plain));
        assert!(
            nonzero(&relaid) < nonzero(&plain) / 4,
            "{} {}",
            nonzero(&relaid),
            nonzero(&plain)
        );
    }

    #[test]
    fn excursions_become_extra_bytes_and_positions_are_kept() {
        let c = |add, copy, seek| Control { add, copy, seek };
        // 100 bytes in place, 20 matched 5000 bytes further in the old file, back, 50 more.
        let controls = [c(100, 0, 5000), c(20, 0, -5000), c(50, 0, 0)];
        assert_eq!(drop_excursions(&controls), [c(100, 20, 20), c(50, 0, 0)]);
        // A long segment or a small shift is no excursion.
        let kept = [c(100, 0, 0), c(50, 4, -4), c(50, 0, 5000), c(500, 0, 0)];
        assert_eq!(drop_excursions(&kept), kept);
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
