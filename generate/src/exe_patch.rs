//! Changed executables patched with their references re-targeted (`codec::exepatch`, the
//! `exe_bspatch` extension of the zstd profile).
//!
//! A rebuilt program's bsdiff patch is mostly references that changed because code or data
//! moved (on aarch64 more than half of a security upgrade's delta). The executable patch
//! carries what the device needs to predict them: the load segments of both versions, the old
//! version's code sections with their instruction set, and bsdiff's alignment, which doubles
//! as the map of moved regions (without its excursions, where that is smaller). For aarch64
//! files whose stack frames were laid out anew by the compiler it also lists the code ranges
//! whose frames the device re-lays as the new prologues show (`codec::exepatch::frames`). ELF
//! headers are read with the `object` crate; a file it cannot read, or of another
//! architecture, gets no executable patch.

use codec::bsdiff::Triple;
use codec::exepatch::{CodeRange, Control, Isa, Layout, Load, StackShift};
use object::{Architecture, Object, ObjectSection, ObjectSegment, SectionKind};

/// zstd level of the stored patch: patches are small, and level 19 packs the sparse diff
/// bytes about 10 % tighter than level 9 (arm64 upgrade pair: 254 KB against 279 KB).
const LEVEL: i32 = 19;
/// zstd level at which variants of a patch are compared (40 times faster than level 19).
const TRIAL_LEVEL: i32 = 9;
/// The most old and new bytes for which the frame gets the old version as basis (the
/// patch is about as long as the new version, and the frame's window covers both).
const BASIS_LIMIT: u64 = 8 << 20;
/// How many SP-based loads and stores must be mispredicted by the same amount before frame
/// re-layouts or a stack shift are tried (a rebuilt library with a changed frame layout has
/// thousands).
const MIN_STACK_MISSES: usize = 64;
/// The frame's window, at most 8 MiB as the delta's other frames with a basis: the device
/// decodes it within its memory budget (48 MiB by default). An uncompressed patch is as long
/// as the file, mostly zeros, so a longer window would gain little.
const WINDOW_LOG: u32 = 23;

/// An executable patch from an old version to a new one, compressed for the delta.
pub struct ExePatch {
    /// The uncompressed patch (the ingredient of `exe_bspatch`).
    pub patch: Vec<u8>,
    /// One zstd frame of `patch`, as the delta stores it.
    pub frame: Vec<u8>,
    /// Whether the frame was made with the old version as basis (the extra bytes of a patch,
    /// new code, often repeat old code elsewhere).
    pub basis: bool,
}

/// The smallest executable patch from `old` to `new`, if both are ELF files of an instruction
/// set `exe` knows. Variants: for 32-bit ARM both ARM and Thumb-2 decoding (stripped files do
/// not say which their code uses); for aarch64, when the first patch mispredicts many stack
/// offsets, also frame re-layouts ([`relaid_ranges`]) and, where those do not beat the first
/// patch, a stack shift ([`stack_shifts`]); each with and without the alignment's excursions
/// (`codec::exepatch::drop_excursions`, where it drops any). They are compared at
/// [`TRIAL_LEVEL`] (with the basis the frame gets); the winner's frame is made at [`LEVEL`].
/// `triples` is bsdiff's alignment of the two.
pub fn encode(old: &[u8], new: &[u8], triples: &[Triple]) -> Option<ExePatch> {
    // The device holds a basis in memory besides the frame's window: as for the delta's
    // other frames with a basis, both together stay within 8 MiB.
    let basis = old.len().saturating_add(new.len()) as u64 <= BASIS_LIMIT;
    let prefix: &[u8] = if basis { old } else { &[] };
    let mut smallest = Smallest { prefix, best: None };
    for layout in layouts(old, new)? {
        let Ok(controls) = codec::exepatch::align(old, new, &layout, triples) else {
            continue;
        };
        let first = smallest.offer_layout(old, new, &layout, &controls);
        let shifts = stack_shifts(&stack_misses(new, &first, &layout));
        let relaid = Layout {
            frames: relaid_ranges(&shifts),
            ..layout.clone()
        };
        if !relaid.frames.is_empty() {
            // Frame re-layouts do not change the projection, nor so the alignment.
            smallest.offer_layout(old, new, &relaid, &controls);
        }
        // A stack shift, the cruder model, only where re-layouts did not win (aligned again:
        // the shifted projection matches the new frames better).
        if !shifts.is_empty() && !smallest.best.as_ref().is_some_and(|b| b.relaid) {
            let shifted = Layout {
                stack: shifts,
                ..layout
            };
            if let Ok(controls) = codec::exepatch::align(old, new, &shifted, triples) {
                smallest.offer_layout(old, new, &shifted, &controls);
            }
        }
    }
    let patch = smallest.best?.patch;
    let frame = codec::zstd::compress_with_prefix(&patch, prefix, LEVEL, WINDOW_LOG).ok()?;
    Some(ExePatch {
        patch,
        frame,
        basis,
    })
}

/// The smallest patch offered so far. Patches are compared by their size at [`TRIAL_LEVEL`]
/// with `prefix` as basis, taken only once a second patch is offered: a file with one
/// candidate needs no trial.
struct Smallest<'a> {
    prefix: &'a [u8],
    best: Option<Candidate>,
}

struct Candidate {
    patch: Vec<u8>,
    /// Its trial size, once taken.
    size: Option<usize>,
    /// Whether it re-lays frames.
    relaid: bool,
}

impl Smallest<'_> {
    /// Offers the patches of `layout` and its alignment `controls`, with and without
    /// excursions; returns the first (for its mispredictions).
    fn offer_layout(
        &mut self,
        old: &[u8],
        new: &[u8],
        layout: &Layout,
        controls: &[Control],
    ) -> Vec<u8> {
        let relaid = !layout.frames.is_empty();
        let dropped = codec::exepatch::drop_excursions(controls);
        let first = codec::exepatch::diff_with(old, new, layout, &dropped);
        self.offer(first.clone(), relaid);
        if dropped.len() != controls.len() {
            self.offer(
                codec::exepatch::diff_with(old, new, layout, controls),
                relaid,
            );
        }
        first
    }

    fn offer(&mut self, patch: Vec<u8>, relaid: bool) {
        let trial = |patch: &[u8]| {
            codec::zstd::compress_with_prefix(patch, self.prefix, TRIAL_LEVEL, WINDOW_LOG)
                .map_or(usize::MAX, |f| f.len())
        };
        let Some(best) = &mut self.best else {
            self.best = Some(Candidate {
                patch,
                size: None,
                relaid,
            });
            return;
        };
        let best_size = *best.size.get_or_insert_with(|| trial(&best.patch));
        let size = trial(&patch);
        if size < best_size {
            *best = Candidate {
                patch,
                size: Some(size),
                relaid,
            };
        }
    }
}

/// SP-based offsets that `patch` mispredicts, per code range: how often the new file's offset
/// differed from the predicted one by each amount, and the smallest predicted offset each
/// amount occurred at. Counted are 64-bit loads and stores whose prediction differs from the
/// new word only in the offset.
type StackMisses = Vec<std::collections::HashMap<i64, (usize, i64)>>;

fn stack_misses(new: &[u8], patch: &[u8], layout: &Layout) -> StackMisses {
    let mut seen: StackMisses = vec![Default::default(); layout.code.len()];
    let Ok(header) = codec::exepatch::Header::read(&patch, u64::MAX) else {
        return seen;
    };
    let (mut old_pos, mut new_pos, mut diff) = (0u64, 0usize, header.diff_start as usize);
    for c in &header.controls {
        for (i, range) in layout.code.iter().enumerate() {
            if range.isa != Isa::Aarch64 {
                continue;
            }
            let words = (0..c.add).step_by(4).filter_map(|k| {
                let from_range = (old_pos + k).checked_sub(range.offset)?;
                let k = k + (4 - from_range % 4) % 4;
                (k + 4 <= c.add && old_pos + k + 4 <= range.offset + range.len).then_some(k)
            });
            for k in words {
                let (at, d) = (new_pos + k as usize, diff + k as usize);
                let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let actual = word(&new[at..at + 4]);
                let predicted = word(&[0, 1, 2, 3].map(|j| new[at + j].wrapping_sub(patch[d + j])));
                let (Some((was, scale)), Some((is, _))) = (
                    exe::aarch64::stack_load_store(predicted),
                    exe::aarch64::stack_load_store(actual),
                ) else {
                    continue;
                };
                if (predicted ^ actual) & !(0xFFF << 10) == 0 && was != is && scale == 3 {
                    let e = seen[i].entry(is - was).or_insert((0, i64::MAX));
                    e.0 += 1;
                    e.1 = e.1.min(was);
                }
            }
        }
        old_pos = old_pos.wrapping_add(c.add).wrapping_add(c.seek as u64);
        new_pos += (c.add + c.copy) as usize;
        diff += c.add as usize;
    }
    seen
}

/// The stack shifts (one per aarch64 code range at most) that the misses suggest: the most
/// common difference, if it accounts for at least [`MIN_STACK_MISSES`] of them, from the
/// smallest offset it occurs at.
fn stack_shifts(misses: &StackMisses) -> Vec<StackShift> {
    misses
        .iter()
        .enumerate()
        .filter_map(|(i, by)| {
            let (&by, &(count, from)) = by.iter().max_by_key(|(d, (n, _))| (*n, -**d))?;
            (count >= MIN_STACK_MISSES).then_some(StackShift {
                range: i as u64,
                from: from as u64,
                by,
            })
        })
        .collect()
}

/// The aarch64 code ranges worth a frame re-layout (`codec::exepatch::frames`): those of the
/// stack shifts. Frames that changed shape function by function leave misses of many amounts,
/// but one of them common (−96 bytes for apt, libzstd and pcre2 on the arm64 upgrade pair,
/// where the re-layout beats the shift); a program whose stack accesses merely moved with
/// changed code (perl there: 76 misses of 10 amounts) is not worth the trial.
fn relaid_ranges(shifts: &[StackShift]) -> Vec<u64> {
    shifts.iter().map(|s| s.range).collect()
}

/// The layouts to try for a pair of ELF files (none if either is not ELF, they differ in
/// architecture, or `exe` does not know it).
fn layouts(old: &[u8], new: &[u8]) -> Option<Vec<Layout>> {
    let (old_file, new_file) = (
        object::File::parse(old).ok()?,
        object::File::parse(new).ok()?,
    );
    let arch = old_file.architecture();
    if new_file.architecture() != arch {
        return None;
    }
    let isas: &[Isa] = match arch {
        Architecture::X86_64 => &[Isa::X86_64],
        Architecture::Aarch64 => &[Isa::Aarch64],
        Architecture::Arm => &[Isa::Thumb, Isa::Arm],
        _ => return None,
    };
    let (old_loads, new_loads) = (loads(&old_file), loads(&new_file));
    Some(
        isas.iter()
            .map(|&isa| Layout {
                old_loads: old_loads.clone(),
                new_loads: new_loads.clone(),
                code: code_ranges(&old_file, isa),
                stack: Vec::new(),
                frames: Vec::new(),
            })
            .collect(),
    )
}

/// The file's loadable segments.
fn loads(file: &object::File) -> Vec<Load> {
    file.segments()
        .map(|s| {
            let (offset, file_size) = s.file_range();
            Load {
                offset,
                vaddr: s.address(),
                file_size,
                mem_size: s.size(),
            }
        })
        .collect()
}

/// Sections of absolute addresses: relocations (offset and addend), pointer data, the GOT,
/// constructor tables, the dynamic section, symbol values (also of unstripped files).
const POINTER_SECTIONS: &[&str] = &[
    ".rela.dyn",
    ".rela.plt",
    ".rel.dyn",
    ".rel.plt",
    ".data.rel.ro",
    ".data",
    ".got",
    ".got.plt",
    ".init_array",
    ".fini_array",
    ".dynamic",
    ".dynsym",
    ".symtab",
];

/// The file's code sections as ranges of `isa`, and its tables of references as data ranges,
/// in file order; a section overlapping the one before is left out (the patch format allows
/// no overlaps).
fn code_ranges(file: &object::File, isa: Isa) -> Vec<CodeRange> {
    let pointers = if file.is_64() { Isa::Abs64 } else { Isa::Abs32 };
    let mut ranges: Vec<CodeRange> = file
        .sections()
        .filter_map(|s| {
            let name = s.name().ok()?;
            let isa = if s.kind() == SectionKind::Text {
                isa
            } else if POINTER_SECTIONS.contains(&name) {
                pointers
            } else if name == ".eh_frame" {
                Isa::PcRel32
            } else if name == ".eh_frame_hdr" {
                Isa::BaseRel32
            } else {
                return None;
            };
            let (offset, len) = s.file_range()?;
            Some(CodeRange {
                isa,
                offset,
                len,
                vaddr: s.address(),
            })
        })
        .collect();
    ranges.sort_by_key(|r| (r.offset, r.len));
    let mut end = 0;
    ranges.retain(|r| {
        let keep = r.offset >= end;
        if keep {
            end = r.offset.saturating_add(r.len);
        }
        keep
    });
    ranges
}
