//! The prediction of an executable patch: old bytes with their references re-targeted through
//! the map of matched regions the patch's control triples make.
//!
//! Definitions (the applier and the encoder both follow them, so their predictions agree):
//! - A *segment* is the add part of a control triple: `add` old bytes from the old position,
//!   placed at the new position. Segments of length 0 are ignored.
//! - An old *address* maps to a new one as follows. In an old load's file part, its file
//!   offset goes through the segment being predicted if that holds it, else through the
//!   longest segment that holds it (of equally long ones, the one
//!   with the lowest old, then new, offset); an offset no segment holds goes with the nearest
//!   segment piece before it (the region after a match usually moved with it). Then back to
//!   an address through the new load that holds the new offset. In an old load's memory-only part (`.bss`), it keeps its distance from the
//!   end of the file part of the new load with the same index. Other addresses do not map.
//! - Each segment is predicted in windows of [`WINDOW`] bytes (from its start); in each
//!   window, each old code range it overlaps is scanned from the overlap's first byte (aligned
//!   up to the instruction size from the range start for ARM and aarch64, to 2 for Thumb).
//!   Every reference found wholly inside the window whose target maps, and whose new
//!   position lies in a new load (for instructions and `pcrel32`; `baserel32`: whose range's
//!   first address maps), is re-targeted (targets are read before any rewrite).
//! - Stack shifts: in an aarch64 range with a shift, every word that addresses the stack at
//!   an offset of at least the threshold gets the amount added (`exe::aarch64::
//!   shift_stack_offset`), before the references are found and re-targeted.
//! - Data ranges: `abs64`/`abs32` take every aligned word as an address; `pcrel32` every
//!   aligned 32-bit word as an offset from its own address, `baserel32` as an offset from the
//!   range's first address (re-targeted relative to where that address maps). Offsets from
//!   their own address count only when they point into an old code range (in `.eh_frame`
//!   other words are lengths and offsets back to a CIE).

use exe::aarch64::Aarch64;
use exe::arm32::{Arm, Thumb};
use exe::data::{Abs32, Abs64, Rel32};
use exe::x86::X86_64;

use super::{Control, Layout};

/// Prediction works on windows of this many bytes (bounds the applier's buffer).
pub const WINDOW: usize = 64 * 1024;

/// An instruction set of a code range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    X86_64,
    Aarch64,
    Arm,
    Thumb,
    /// Data: 64-bit absolute addresses.
    Abs64,
    /// Data: 32-bit absolute addresses.
    Abs32,
    /// Data: 32-bit offsets from the word's own address (`.eh_frame`).
    PcRel32,
    /// Data: 32-bit offsets from the range's first address (`.eh_frame_hdr`).
    BaseRel32,
}

impl Isa {
    pub fn id(self) -> u64 {
        match self {
            Isa::X86_64 => 1,
            Isa::Aarch64 => 2,
            Isa::Arm => 3,
            Isa::Thumb => 4,
            Isa::Abs64 => 5,
            Isa::Abs32 => 6,
            Isa::PcRel32 => 7,
            Isa::BaseRel32 => 8,
        }
    }

    pub fn from_id(id: u64) -> Option<Isa> {
        Some(match id {
            1 => Isa::X86_64,
            2 => Isa::Aarch64,
            3 => Isa::Arm,
            4 => Isa::Thumb,
            5 => Isa::Abs64,
            6 => Isa::Abs32,
            7 => Isa::PcRel32,
            8 => Isa::BaseRel32,
            _ => return None,
        })
    }

    /// Instruction alignment a scan starts at, relative to the code range.
    fn alignment(self) -> u64 {
        match self {
            Isa::X86_64 => 1,
            Isa::Thumb => 2,
            Isa::Abs64 => 8,
            Isa::Aarch64 | Isa::Arm | Isa::Abs32 | Isa::PcRel32 | Isa::BaseRel32 => 4,
        }
    }
}

/// A loadable segment of an ELF file (`PT_LOAD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub offset: u64,
    pub vaddr: u64,
    pub file_size: u64,
    pub mem_size: u64,
}

/// A segment: `len` old bytes from `old` placed at `new` (file offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Segment {
    pub old: u64,
    pub new: u64,
    pub len: u64,
}

impl Segment {
    fn end(&self) -> u64 {
        self.old.saturating_add(self.len)
    }
}

/// Old offsets `start..end` go to `new` onwards: the old file cut into the pieces where one
/// segment rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    start: u64,
    end: u64,
    new: u64,
}

/// Old addresses to new ones, as the module docs define it.
pub struct AddressMap {
    layout: Layout,
    /// Sorted, not overlapping.
    pieces: Vec<Piece>,
}

impl AddressMap {
    /// The memory a map of `controls` triples takes while built, about.
    pub const BYTES_PER_CONTROL: u64 = 3 * 24 + 3 * 8;

    /// The map of `controls` (old offsets follow BSDIFF40's rules, with wrapping arithmetic:
    /// a hostile patch gets a useless map, not a panic).
    pub fn new(layout: Layout, controls: &[Control]) -> AddressMap {
        let mut segments = Vec::with_capacity(controls.len());
        let (mut old, mut new) = (0u64, 0u64);
        for c in controls {
            if c.add > 0 {
                segments.push(Segment {
                    old,
                    new,
                    len: c.add,
                });
            }
            new = new.wrapping_add(c.add).wrapping_add(c.copy);
            old = old.wrapping_add(c.add).wrapping_add(c.seek as u64);
        }
        AddressMap {
            layout,
            pieces: pieces(segments),
        }
    }

    /// The new address of old address `target`.
    pub fn map(&self, target: u64) -> Option<u64> {
        self.map_from(target, None)
    }

    /// [`AddressMap::map`] from inside `segment`: a target in the segment's old bytes goes
    /// with the segment.
    fn map_from(&self, target: u64, segment: Option<Segment>) -> Option<u64> {
        for (i, l) in self.layout.old_loads.iter().enumerate() {
            let Some(inside) = target.checked_sub(l.vaddr).filter(|&d| d < l.mem_size) else {
                continue;
            };
            if inside < l.file_size {
                let offset = l.offset.wrapping_add(inside);
                let new_offset = match segment.filter(|s| offset.wrapping_sub(s.old) < s.len) {
                    Some(s) => s.new.wrapping_add(offset - s.old),
                    None => self.new_offset(offset)?,
                };
                return self.new_address(new_offset);
            }
            let n = self.layout.new_loads.get(i)?;
            let past_file = inside - l.file_size;
            return Some(n.vaddr.wrapping_add(n.file_size).wrapping_add(past_file));
        }
        None
    }

    /// Where old file offset `offset` went, through the piece that holds it or the nearest
    /// one before.
    fn new_offset(&self, offset: u64) -> Option<u64> {
        let after = self.pieces.partition_point(|p| p.start <= offset);
        let p = self.pieces[after.checked_sub(1)?];
        Some(p.new.wrapping_add(offset - p.start))
    }

    /// The address of new file offset `offset`, if a new load's file part holds it.
    pub fn new_address(&self, offset: u64) -> Option<u64> {
        self.layout.new_loads.iter().find_map(|l| {
            let inside = offset.checked_sub(l.offset).filter(|&d| d < l.file_size)?;
            Some(l.vaddr.wrapping_add(inside))
        })
    }

    /// Re-targets the references in `window`: the old bytes from old offset `old`, which the
    /// patch places at new offset `new`, as part of `segment`.
    pub fn predict(&self, window: &mut [u8], old: u64, new: u64, segment: Segment) {
        self.predict_at(window, old, Some((new, segment)));
    }

    /// [`AddressMap::predict`], or with `placed` unknown, [`AddressMap::project`]'s window.
    fn predict_at(&self, window: &mut [u8], old: u64, placed: Option<(u64, Segment)>) {
        let end = old.saturating_add(window.len() as u64);
        for (i, range) in self.layout.code.iter().enumerate() {
            let range_end = range.offset.saturating_add(range.len);
            let from = old.max(range.offset);
            let to = end.min(range_end);
            if from >= to {
                continue;
            }
            let align = range.isa.alignment();
            let from = range.offset + (from - range.offset).div_ceil(align) * align;
            if from >= to {
                continue;
            }
            let anchor = match range.isa {
                // A base that does not map leaves the range as it is.
                Isa::BaseRel32 => match self.map(range.vaddr) {
                    Some(new_base) => Anchor::Base(range.vaddr, new_base),
                    None => continue,
                },
                Isa::Abs64 | Isa::Abs32 => Anchor::None,
                _ => Anchor::Own,
            };
            let span = Span {
                start: (from - old) as usize,
                end: (to - old) as usize,
                pc: range.vaddr.wrapping_add(from - range.offset),
                new: placed.map(|(n, _)| n.wrapping_add(from - old)),
                segment: placed.map(|(_, s)| s),
                anchor,
                code_only: range.isa == Isa::PcRel32,
            };
            if range.isa == Isa::Aarch64 {
                self.shift_stack(i, &mut window[span.start..span.end]);
            }
            match range.isa {
                Isa::X86_64 => self.retarget::<X86_64>(window, span),
                Isa::Aarch64 => self.retarget::<Aarch64>(window, span),
                Isa::Arm => self.retarget::<Arm>(window, span),
                Isa::Thumb => self.retarget::<Thumb>(window, span),
                Isa::Abs64 => self.retarget::<Abs64>(window, span),
                Isa::Abs32 => self.retarget::<Abs32>(window, span),
                Isa::PcRel32 | Isa::BaseRel32 => self.retarget::<Rel32>(window, span),
            }
        }
    }

    /// Applies the stack shifts of code range `range` to the (aligned) words of `code`.
    fn shift_stack(&self, range: usize, code: &mut [u8]) {
        for s in self.layout.stack.iter().filter(|s| s.range == range as u64) {
            for word in code.chunks_exact_mut(4) {
                let w = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                if let Some(shifted) = exe::aarch64::shift_stack_offset(w, s.from, s.by) {
                    word.copy_from_slice(&shifted.to_le_bytes());
                }
            }
        }
    }

    /// Whether old address `a` lies in an old code range (of an instruction set).
    fn in_code(&self, a: u64) -> bool {
        self.layout.code.iter().any(|r| {
            !matches!(
                r.isa,
                Isa::Abs64 | Isa::Abs32 | Isa::PcRel32 | Isa::BaseRel32
            ) && a.wrapping_sub(r.vaddr) < r.len
        })
    }

    /// The old and new anchor of the reference at `at` of a span: its own address, the
    /// span's base, or nothing (absolute addresses: 0, wherever the word is).
    fn anchors(&self, span: &Span, at: usize) -> Option<(u64, u64)> {
        match span.anchor {
            Anchor::None => Some((0, 0)),
            Anchor::Base(base, new_base) => Some((base, new_base)),
            Anchor::Own => {
                let pc = span.pc.wrapping_add(at as u64);
                let new_pc = match span.new {
                    Some(new) => self.new_address(new.wrapping_add(at as u64))?,
                    None => self.map(pc)?,
                };
                Some((pc, new_pc))
            }
        }
    }

    /// The old file with its references re-targeted as if each stayed with its own region
    /// (new positions from the map as well). The encoder aligns this *projection* with the new
    /// file: references that moved consistently then match byte for byte, so the alignment
    /// follows the code, not the noise of changed references.
    #[cfg(feature = "bsdiff-encoder")]
    pub fn project(&self, old: &mut [u8]) {
        for start in (0..old.len()).step_by(WINDOW) {
            let end = (start + WINDOW).min(old.len());
            self.predict_at(&mut old[start..end], start as u64, None);
        }
    }

    /// Finds the references of `window[span]` and re-targets those that map.
    fn retarget<I: exe::Isa>(&self, window: &mut [u8], span: Span) {
        let code = &window[span.start..span.end];
        let mut refs = Vec::new();
        I::scan(code, span.pc, &mut refs);
        let mut moves = Vec::with_capacity(refs.len());
        for r in refs {
            let Some((pc, new_pc)) = self.anchors(&span, r.at) else {
                continue;
            };
            let Some(target) = I::target(r.kind, &code[r.at..], pc) else {
                continue;
            };
            if span.code_only && !self.in_code(target) {
                continue;
            }
            if let Some(new_target) = self.map_from(target, span.segment) {
                moves.push((span.start + r.at, r.kind, new_pc, new_target));
            }
        }
        for (at, kind, pc, target) in moves {
            let end = at + I::span(kind);
            if end <= span.end {
                I::retarget(kind, &mut window[at..end], pc, target);
            }
        }
    }
}

/// Cuts the old file into pieces, each ruled by the longest segment holding it (a sweep over
/// segment starts and ends with the holding segments in a heap).
fn pieces(mut segments: Vec<Segment>) -> Vec<Piece> {
    use std::cmp::Reverse;
    segments.sort_unstable();
    let mut points: Vec<u64> = segments.iter().flat_map(|s| [s.old, s.end()]).collect();
    points.sort_unstable();
    points.dedup();
    let mut holding = std::collections::BinaryHeap::new();
    let mut next = 0;
    let mut out: Vec<Piece> = Vec::new();
    for w in points.windows(2) {
        let (from, to) = (w[0], w[1]);
        while let Some(s) = segments.get(next).filter(|s| s.old <= from) {
            holding.push((s.len, Reverse(s.old), Reverse(s.new)));
            next += 1;
        }
        while let Some(&(len, Reverse(old), _)) = holding.peek() {
            if old.saturating_add(len) > from {
                break;
            }
            holding.pop();
        }
        let Some(&(_, Reverse(old), Reverse(new))) = holding.peek() else {
            continue;
        };
        let new = new.wrapping_add(from - old);
        match out.last_mut() {
            Some(p) if p.end == from && p.new.wrapping_add(from - p.start) == new => p.end = to,
            _ => out.push(Piece {
                start: from,
                end: to,
                new,
            }),
        }
    }
    out
}

/// What a reference's value is relative to.
#[derive(Debug, Clone, Copy)]
enum Anchor {
    /// Its own address (instructions, `.eh_frame`).
    Own,
    /// A fixed address (`.eh_frame_hdr`: the section's start) and where it maps.
    Base(u64, u64),
    /// Nothing: an absolute address, which may lie outside the loads (`.symtab`).
    None,
}

/// The part of a window one code range covers.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    /// Old address of `window[start]`.
    pc: u64,
    /// New file offset of `window[start]` (unknown when projecting).
    new: Option<u64>,
    /// The segment the window belongs to (unknown when projecting).
    segment: Option<Segment>,
    /// What the references' values are relative to.
    anchor: Anchor,
    /// Whether only targets in code count.
    code_only: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exepatch::CodeRange;

    fn load(offset: u64, vaddr: u64, file_size: u64, mem_size: u64) -> Load {
        Load {
            offset,
            vaddr,
            file_size,
            mem_size,
        }
    }

    #[test]
    fn addresses_follow_their_segment_and_bss_follows_the_end_of_file_data() {
        let layout = Layout {
            old_loads: vec![
                load(0, 0x1000, 0x100, 0x100),
                load(0x100, 0x3100, 0x80, 0x200),
            ],
            new_loads: vec![
                load(0, 0x1000, 0x110, 0x110),
                load(0x110, 0x3110, 0x80, 0x200),
            ],
            code: vec![],
            stack: vec![],
            frames: vec![],
        };
        // Old [0, 0x40) stays, 16 new bytes, then old [0x40, 0x180) moved by 0x10.
        let controls = [
            Control {
                add: 0x40,
                copy: 0x10,
                seek: 0,
            },
            Control {
                add: 0x140,
                copy: 0,
                seek: 0,
            },
        ];
        let map = AddressMap::new(layout, &controls);
        assert_eq!(map.map(0x1020), Some(0x1020));
        assert_eq!(map.map(0x1050), Some(0x1060));
        assert_eq!(map.map(0x3120), Some(0x3130));
        assert_eq!(map.map(0x3180 + 8), Some(0x3190 + 8), ".bss");
        assert_eq!(map.map(0x9000), None);
    }

    #[test]
    fn a_moved_call_target_is_predicted() {
        // aarch64: at old 0x0 a BL to old 0x100; the callee moved to new 0x110.
        let layout = Layout {
            old_loads: vec![load(0, 0x1000, 0x200, 0x200)],
            new_loads: vec![load(0, 0x1000, 0x210, 0x210)],
            code: vec![CodeRange {
                isa: Isa::Aarch64,
                offset: 0,
                len: 0x200,
                vaddr: 0x1000,
            }],
            stack: Vec::new(),
            frames: Vec::new(),
        };
        let controls = [
            Control {
                add: 0x80,
                copy: 0x10,
                seek: 0,
            },
            Control {
                add: 0x180,
                copy: 0,
                seek: 0,
            },
        ];
        let map = AddressMap::new(layout, &controls);
        let mut window = 0x9400_0040u32.to_le_bytes().to_vec(); // bl 0x1100
        window.resize(0x80, 0);
        let segment = Segment {
            old: 0,
            new: 0,
            len: 0x80,
        };
        map.predict(&mut window, 0, 0, segment);
        assert_eq!(window[..4], 0x9400_0044u32.to_le_bytes(), "bl 0x1110");
    }
}
