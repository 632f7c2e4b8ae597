//! Frame re-layouts: the prediction of SP-relative words corrected, word by word, by what the
//! new file's prologues rebuilt so far show (`exe::aarch64::frames`).
//!
//! Unlike the rest of the prediction this depends on the new file itself, so both sides run
//! it in the order the new file is produced. Definitions (the applier and the encoder follow
//! them alike):
//! - Every byte of the new file, diff-added or extra, is *observed* in order; each 4-byte word
//!   at a new offset divisible by 4 goes to `FrameLayout::observe` once its last byte is known.
//! - In a window of an add part, a word at a new offset divisible by 4, wholly inside the
//!   window, whose old offset lies in a listed aarch64 range (aligned to 4 from the range
//!   start, wholly inside it), goes to `FrameLayout::observe_old` (as a word of the old code)
//!   and is replaced, after the references are re-targeted and before its diff bytes are
//!   added, by `FrameLayout::relayout` of it, with the layout as observed up to (not
//!   including) that word; once the word of the new file is known, `FrameLayout::correct`
//!   learns from the prediction before and after the re-layout and the new word.

use exe::aarch64::frames::FrameLayout;

use super::Layout;

/// The frame state of a patch being applied or made.
pub struct Frames {
    /// Old file ranges (start, end) whose words are re-laid.
    ranges: Vec<(u64, u64)>,
    layout: FrameLayout,
    /// New offset of the next byte to observe.
    pos: u64,
    word: [u8; 4],
}

impl Frames {
    /// The frame state for `layout`'s re-laid ranges; `None` when it lists none.
    pub fn new(layout: &Layout) -> Option<Frames> {
        let mut ranges: Vec<(u64, u64)> = layout
            .frames
            .iter()
            .filter_map(|&i| layout.code.get(usize::try_from(i).ok()?))
            .filter(|r| r.isa == super::Isa::Aarch64)
            .map(|r| (r.offset, r.offset.saturating_add(r.len)))
            .collect();
        ranges.sort_unstable();
        ranges.dedup();
        (!ranges.is_empty()).then(|| Frames {
            ranges,
            layout: FrameLayout::default(),
            pos: 0,
            word: [0; 4],
        })
    }

    /// Observes the next bytes of the new file.
    pub fn observe(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.observe_byte(b);
        }
    }

    fn observe_byte(&mut self, b: u8) {
        self.word[(self.pos % 4) as usize] = b;
        if self.pos % 4 == 3 {
            self.layout.observe(u32::from_le_bytes(self.word));
        }
        self.pos += 1;
    }

    /// Settles the window `window` (the prediction of the old bytes from old offset `old`; the
    /// next bytes of the new file) byte by byte: words are re-laid first where the definitions
    /// say, then `settle(i, byte)` turns byte `i` of the prediction into the new file's byte
    /// (the applier adds the diff byte; the encoder takes the diff and puts the new byte), which
    /// is then observed.
    pub fn settle(&mut self, window: &mut [u8], old: u64, mut settle: impl FnMut(usize, &mut u8)) {
        // The word being settled: its prediction before and after the re-layout.
        let mut pending: Option<(u32, u32)> = None;
        for i in 0..window.len() {
            if self.pos % 4 == 0 && i + 4 <= window.len() && self.relaid(old.wrapping_add(i as u64))
            {
                let w = &mut window[i..i + 4];
                let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                self.layout.observe_old(word);
                let moved = self.layout.relayout(word).unwrap_or(word);
                w.copy_from_slice(&moved.to_le_bytes());
                pending = Some((word, moved));
            }
            settle(i, &mut window[i]);
            self.observe_byte(window[i]);
            if self.pos % 4 == 0 {
                if let Some((word, moved)) = pending.take() {
                    self.layout
                        .correct(word, moved, u32::from_le_bytes(self.word));
                }
            }
        }
    }

    /// Whether the word at old offset `old` lies in a re-laid range, aligned.
    fn relaid(&self, old: u64) -> bool {
        self.ranges.iter().any(|&(start, end)| {
            old >= start && old.saturating_add(4) <= end && (old - start) % 4 == 0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exepatch::{CodeRange, Isa};

    fn layout() -> Layout {
        Layout {
            code: vec![CodeRange {
                isa: Isa::Aarch64,
                offset: 0,
                len: 64,
                vaddr: 0,
            }],
            frames: vec![0],
            ..Layout::default()
        }
    }

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn words_after_a_prologue_are_relaid_and_both_sides_agree() {
        // Old: stp x29, x30, [sp, #-192]!; mov x29, sp; str x0, [sp, #184]
        let old = words(&[0xA9B4_7BFD, 0x9100_03FD, 0xF900_5FE0]);
        // New: sub sp, sp, #0xc0; stp x29, x30, [sp, #112]; add x29, sp, #0x70; str x0, [sp, #104]
        let new = words(&[0xD103_03FF, 0xA907_7BFD, 0x9101_C3FD, 0xF900_37E0]);
        // The patch aligns old[4..12] with new[8..16]; new[0..8] are extra bytes.
        let mut encoder = Frames::new(&layout()).unwrap();
        encoder.observe(&new[..8]);
        let mut window = old[4..12].to_vec();
        let mut diff = vec![0u8; 8];
        encoder.settle(&mut window, 4, |i, b| {
            diff[i] = new[8 + i].wrapping_sub(*b);
            *b = new[8 + i];
        });
        assert_eq!(diff, [0; 8], "both words predicted");
        let mut applier = Frames::new(&layout()).unwrap();
        applier.observe(&new[..8]);
        let mut window = old[4..12].to_vec();
        applier.settle(&mut window, 4, |i, b| *b = b.wrapping_add(diff[i]));
        assert_eq!(window, new[8..]);
    }

    #[test]
    fn ranges_not_listed_or_not_aarch64_are_left() {
        let mut l = layout();
        l.frames = vec![1, 7];
        assert!(Frames::new(&l).is_none());
        l.code[0].isa = Isa::X86_64;
        l.frames = vec![0];
        assert!(Frames::new(&l).is_none());
    }
}
