//! Stack frames laid out anew: the callee-saved registers moved from the bottom of every
//! aarch64 frame to its top.
//!
//! GCC's aarch64 frame layout changed with its fix for CVE-2023-4039 (Debian bookworm's
//! gcc-12 carries it): the frame record (x29, x30) and the callee-saved registers, which sat
//! at the bottom of each frame with the locals above them, now sit above the locals. A
//! library rebuilt across that change differs in nearly every SP-relative load, store and
//! address computation (on the arm64 bench pair, 40,000 words of libapt-pkg), each by an
//! amount of its own function.
//!
//! [`FrameLayout`] predicts them. It reads the *new* code as it is rebuilt, word by word
//! ([`FrameLayout::observe`]), and learns each function's new frame from its prologue:
//!
//! - `sub sp, sp, #F` then `stp x29, x30, [sp, #L]` (frames up to 512 bytes): locals `L`
//!   bytes at the bottom, saved registers `F - L` above them;
//! - `stp x29, x30, [sp, #-S]!`, then within [`ALLOC_WINDOW`] words `sub sp, sp, #L`
//!   (larger frames): saved registers `S` bytes, locals `L` below them (a second `sub`
//!   right after the first adds to `L`, as `sub sp, sp, #1, lsl #12` does; huge frames
//!   subtract a register that a MOVZ set).
//!
//! From the old code as the prediction places it ([`FrameLayout::observe_old`]) it learns
//! where the old function kept its frame record, `K` bytes up (old frames with outgoing
//! arguments had a `sub sp, sp, #F; stp x29, x30, [sp, #K]` prologue already).
//! [`FrameLayout::relayout`] then moves an old-layout offset `o` of the current function:
//! `K <= o < K + S` (a saved register) to `o - K + L`, `max(K, S) <= o < S + L` (a local)
//! to `o - S`; offsets below `K` and beyond the frame (incoming arguments, the varargs save
//! area) stay. Where that turns out wrong for an offset ([`FrameLayout::correct`]), the
//! function's later words at that offset go where it went. A function without such a
//! prologue (a leaf, or one already laid out the new way) keeps the state learned before,
//! or [`FrameLayout::default`]'s: nothing moves until a prologue is seen.
//!
//! Deterministic and total: any word sequence is a valid input, a prediction that turns out
//! wrong costs delta size only (the diff bytes correct it).

/// How many words after `stp x29, x30, [sp, #-S]!` a `sub sp, sp, #L` still sizes the same
/// frame's locals (the callee-saved stores come in between).
pub const ALLOC_WINDOW: u32 = 16;

/// The frame of the function being rebuilt, as far as its prologue has shown it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameLayout {
    /// Bytes of saved registers (at the top of the new frame) and of locals (below them),
    /// once known.
    saved: Option<i64>,
    locals: Option<i64>,
    /// A `sub sp, sp, #F` waiting for its `stp x29, x30, [sp, #L]`.
    pending: Option<i64>,
    /// Words since the last `stp x29, x30, [sp, #-S]!` (saturating).
    since_push: u32,
    /// Whether the previous word allocated stack (`sub sp, sp, #n`).
    after_alloc: bool,
    /// Offsets of this function the layout got wrong, and where they went instead (old, new).
    learned: [(i64, i64); LEARNED],
    learned_len: usize,
    /// The value each register got from its last MOVZ (64-bit), for `sub sp, sp, xN`.
    constants: [Option<i64>; 32],
    /// The old function's frame record offset (bytes below it kept their place), and an old
    /// `sub sp, sp, #F` waiting for its frame record.
    old_record: i64,
    old_pending: bool,
}

/// How many corrected offsets a function remembers.
pub const LEARNED: usize = 16;

impl FrameLayout {
    /// Learns from `w`, the next word of the new code.
    pub fn observe(&mut self, w: u32) {
        self.since_push = self.since_push.saturating_add(1);
        if let Some((reg, value)) = movz(w) {
            self.constants[reg] = Some(value);
        }
        let alloc = stack_alloc(w).or_else(|| {
            // sub sp, sp, xN (extended register, UXTX), xN set by a MOVZ: huge frames.
            (w & 0xFFE0_FFFF == 0xCB20_63FF)
                .then(|| self.constants[(w >> 16) as usize & 31])
                .flatten()
        });
        if let Some(n) = alloc {
            self.allocated(n);
        } else if let Some(s) = frame_push(w) {
            *self = FrameLayout {
                saved: Some(s),
                locals: Some(0),
                constants: self.constants,
                ..FrameLayout::default()
            };
        } else if let (Some(f), Some(l)) = (self.pending, frame_record_at(w)) {
            self.locals = Some(l);
            self.saved = Some(f.saturating_sub(l));
            self.pending = None;
        }
        self.after_alloc = alloc.is_some();
    }

    /// Learns from a word whose prediction (`old`, before [`FrameLayout::relayout`]) turned
    /// out as `new`: when both address the stack in the same form but at other offsets than
    /// predicted, later words of the function at `old`'s offset go where `new`'s went.
    pub fn correct(&mut self, old: u32, predicted: u32, new: u32) {
        if predicted == new {
            return;
        }
        let (Some(was), Some(is)) = (Slot::of(old), Slot::of(new)) else {
            return;
        };
        if was.field != is.field || (old ^ new) & !(((1 << was.bits) - 1) << was.field) != 0 {
            return;
        }
        let known = &mut self.learned[..self.learned_len];
        if let Some(l) = known.iter_mut().find(|l| l.0 == was.offset) {
            l.1 = is.offset;
        } else if self.learned_len < LEARNED {
            self.learned[self.learned_len] = (was.offset, is.offset);
            self.learned_len += 1;
        }
    }

    /// Learns from `w`, the next word of the *old* code as the prediction places it: where the
    /// old function kept its frame record (`stp x29, x30, [sp, #-F]!`: at the bottom;
    /// `sub sp, sp, #F` then `stp x29, x30, [sp, #K]`: `K` bytes up, below it an area that
    /// keeps its place).
    pub fn observe_old(&mut self, w: u32) {
        if frame_push(w).is_some() {
            (self.old_record, self.old_pending) = (0, false);
        } else if stack_alloc(w).is_some() {
            (self.old_record, self.old_pending) = (0, true);
        } else if let (true, Some(k)) = (self.old_pending, frame_record_at(w)) {
            (self.old_record, self.old_pending) = (k, false);
        }
    }

    /// `sub sp, sp, #n`: more of the same allocation, the locals of a pushed frame, or the
    /// start of a new frame.
    fn allocated(&mut self, n: i64) {
        if self.after_alloc {
            if let (Some(v), _) | (None, Some(v)) = (&mut self.pending, &mut self.locals) {
                *v = v.saturating_add(n);
                return;
            }
        }
        if self.saved.is_some() && self.locals == Some(0) && self.since_push <= ALLOC_WINDOW {
            self.locals = Some(n);
        } else {
            *self = FrameLayout {
                pending: Some(n),
                since_push: u32::MAX,
                constants: self.constants,
                ..FrameLayout::default()
            };
        }
    }

    /// `w` (a word of the old code) with its stack offset moved from the old layout to the
    /// current function's new one: LDR/STR with an unsigned offset and LDP/STP with a signed
    /// offset from SP, and ADD Xd, SP, #imm. `None` when nothing is known, `w` is none of
    /// those, the offset stays, or the moved offset cannot be encoded.
    pub fn relayout(&self, w: u32) -> Option<u32> {
        let slot = Slot::of(w)?;
        let o = slot.offset;
        if let Some(&(_, to)) = self.learned[..self.learned_len].iter().find(|l| l.0 == o) {
            return (to != o).then(|| slot.with(w, to)).flatten();
        }
        let (saved, locals) = (self.saved?, self.locals?);
        let below = self.old_record;
        // Saturating: the values come from untrusted words.
        let moved = if (below..below.saturating_add(saved)).contains(&o) {
            o.saturating_sub(below).saturating_add(locals)
        } else if (below.max(saved)..saved.saturating_add(locals)).contains(&o) {
            o.saturating_sub(saved)
        } else {
            return None;
        };
        (moved != o).then(|| slot.with(w, moved)).flatten()
    }
}

/// `sub sp, sp, #n` (64-bit, immediate, optionally shifted by 12): `n`.
fn stack_alloc(w: u32) -> Option<i64> {
    if w & 0xFF80_03FF != 0xD100_03FF {
        return None;
    }
    let imm = ((w >> 10) & 0xFFF) as i64;
    Some(if w & (1 << 22) != 0 { imm << 12 } else { imm })
}

/// MOVZ Xd, #imm16, LSL #(16 * hw): `d` and the value.
fn movz(w: u32) -> Option<(usize, i64)> {
    (w & 0xFF80_0000 == 0xD280_0000).then(|| {
        (
            (w & 31) as usize,
            (((w >> 5) & 0xFFFF) as i64) << (16 * ((w >> 21) & 3)),
        )
    })
}

/// `stp x29, x30, [sp, #-S]!`: `S`.
fn frame_push(w: u32) -> Option<i64> {
    (w & 0xFFC0_7FFF == 0xA980_7BFD).then(|| -(imm7(w) << 3))
}

/// `stp x29, x30, [sp, #L]` (signed offset): `L`.
fn frame_record_at(w: u32) -> Option<i64> {
    (w & 0xFFC0_7FFF == 0xA900_7BFD).then(|| imm7(w) << 3)
}

fn imm7(w: u32) -> i64 {
    super::sext((w >> 15) & 0x7F, 7)
}

/// Where an SP-relative instruction keeps its offset.
struct Slot {
    offset: i64,
    scale: u32,
    field: u32,
    bits: u32,
    signed: bool,
}

impl Slot {
    fn of(w: u32) -> Option<Slot> {
        if (w >> 5) & 31 != 31 {
            return None;
        }
        if let Some((offset, scale)) = super::stack_load_store(w) {
            return Some(Slot {
                offset,
                scale,
                field: 10,
                bits: 12,
                signed: false,
            });
        }
        if let Some(scale) = super::pair_scale(w, 0x2900_0000) {
            return Some(Slot {
                offset: imm7(w) << scale,
                scale,
                field: 15,
                bits: 7,
                signed: true,
            });
        }
        // ADD Xd, SP, #imm (unshifted), Xd not SP: the address of a local.
        (w & 0xFFC0_0000 == 0x9100_0000 && w & 31 != 31).then_some(Slot {
            offset: ((w >> 10) & 0xFFF) as i64,
            scale: 0,
            field: 10,
            bits: 12,
            signed: false,
        })
    }

    /// `w` with offset `o`, if it can be encoded.
    fn with(&self, w: u32, o: i64) -> Option<u32> {
        if o & ((1 << self.scale) - 1) != 0 {
            return None;
        }
        let scaled = o >> self.scale;
        let fits = if self.signed {
            super::fits(scaled, self.bits)
        } else {
            (0..1 << self.bits).contains(&scaled)
        };
        let mask = (1u32 << self.bits) - 1;
        fits.then(|| (w & !(mask << self.field)) | ((scaled as u32 & mask) << self.field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned(prologue: &[u32]) -> FrameLayout {
        let mut f = FrameLayout::default();
        prologue.iter().for_each(|&w| f.observe(w));
        f
    }

    #[test]
    fn a_small_frame_learns_from_sub_and_the_frame_record() {
        // sub sp, sp, #0xc0; adrp x3, ...; stp x29, x30, [sp, #112]
        let f = learned(&[0xD103_03FF, 0xD000_0B63, 0xA907_7BFD]);
        // stp x19, x20, [sp, #16] -> [sp, #128]; str x0, [sp, #184] -> [sp, #104]
        assert_eq!(f.relayout(0xA901_53F3), Some(0xA908_53F3));
        assert_eq!(f.relayout(0xF900_5FE0), Some(0xF900_37E0));
        // add x21, sp, #0x60 -> #0x10; mov x29, sp -> add x29, sp, #0x70
        assert_eq!(f.relayout(0x9101_83F5), Some(0x9100_43F5));
        assert_eq!(f.relayout(0x9100_03FD), Some(0x9101_C3FD));
        // Not SP-based, or beyond the frame: unchanged.
        assert_eq!(f.relayout(0xF940_0661), None);
        assert_eq!(f.relayout(0xF900_67E0), None);
    }

    #[test]
    fn a_large_frame_learns_from_the_push_and_the_allocation() {
        // stp x29, x30, [sp, #-96]!; mov x29, sp; stp x19, x20, [sp, #16]; sub sp, sp, #0x290
        let f = learned(&[0xA9BA_7BFD, 0x9100_03FD, 0xA901_53F3, 0xD10A_43FF]);
        // str x5, [sp, #744] (local at 744 - 96 = 648); strb wzr, [sp, #216] -> #120
        assert_eq!(f.relayout(0xF901_77E5), Some(0xF901_47E5));
        assert_eq!(f.relayout(0x3903_63FF), Some(0x3901_E3FF));
        // ldp x19, x20, [sp, #16] -> [sp, #672]: beyond ldp's reach, left.
        assert_eq!(f.relayout(0xA941_53F3), None);
        // Huge frames: mov x13, #0x4790; stp x29, x30, [sp, #-96]!; sub sp, sp, x13
        let f = learned(&[0xD288_F20D, 0xA9BA_7BFD, 0xCB2D_63FF]);
        // str x3, [sp, #392 + 96] -> [sp, #392]
        assert_eq!(f.relayout(0xF900_F7E3), Some(0xF900_C7E3));
    }

    #[test]
    fn a_late_allocation_starts_a_new_frame() {
        let mut words = vec![0xA9BE_7BFD]; // stp x29, x30, [sp, #-32]!
        words.extend([0xAA00_03F3; ALLOC_WINDOW as usize]);
        words.push(0xD104_43FF); // sub sp, sp, #0x110: a new function's frame
        let f = learned(&words);
        assert_eq!(f.relayout(0xF900_5FE0), None);
        // ... whose frame record then tells its layout: locals 176, saved 96.
        let mut f = f;
        f.observe(0xA90B_7BFD);
        assert_eq!(f.relayout(0xA901_53F3), Some(0xA90C_53F3));
    }

    #[test]
    fn hostile_sizes_saturate() {
        // movz x13, #0x7fff, lsl #48; stp x29, x30, [sp, #-96]!; then sub sp, sp, x13 many
        // times: the locals saturate instead of overflowing.
        let mut words = vec![0xD2EF_FFED, 0xA9BA_7BFD];
        words.extend([0xCB2D_63FF; 64]);
        let f = learned(&words);
        // A local still moves down past the saved registers; a saved register's new place
        // cannot be encoded.
        assert_eq!(f.relayout(0xF900_F7E3), Some(0xF900_C7E3));
        assert_eq!(f.relayout(0xA941_53F3), None);
    }

    #[test]
    fn nothing_moves_before_a_prologue_and_random_words_never_panic() {
        assert_eq!(FrameLayout::default().relayout(0xF900_5FE0), None);
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut f = FrameLayout::default();
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f.observe(x as u32);
            if let Some(moved) = f.relayout((x >> 32) as u32) {
                assert_eq!(
                    moved & !0x003F_FC00 & !0x003F_8000,
                    (x >> 32) as u32 & !0x003F_FC00 & !0x003F_8000
                );
            }
        }
    }
}
