//! References in machine code: the calls, branches and address computations of an executable
//! whose encoded value changes whenever the code or data they point to moves.
//!
//! A rebuilt program differs from its old version mostly in such values: a function that grew
//! by 16 bytes changes every call that crosses it. A delta that knows where the references are
//! can predict the new values from a map of how regions moved (see `predict`), so only the
//! real changes are left to encode (the idea of Chromium's Courgette and Zucchini).
//!
//! One module per instruction set, each an [`Isa`]: `x86` (x86-64: rel32 branches and
//! RIP-relative operands, needing instruction lengths), `aarch64` (branches, ADR/ADRP pairs,
//! literal loads; and stack frames laid out anew, `aarch64::frames`), `arm32` (ARM and
//! Thumb-2 branches); `data` treats tables of pointers and offsets the same way. Everything
//! here is deterministic and works on untrusted bytes: a scan never panics, whatever the
//! input, and a reference that cannot be re-encoded is left as it is. Mistakes (a
//! "reference" that is really data) cost delta size, never correctness: the byte patch that
//! follows a prediction corrects them.

pub mod aarch64;
pub mod arm32;
pub mod data;
pub mod x86;

/// A reference found by a scan: the instruction (or instruction pair) that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ref<K> {
    /// Offset in the scanned code of the first byte of the instruction.
    pub at: usize,
    pub kind: K,
}

/// An instruction set's references: how to find them, read them and write them.
pub trait Isa {
    /// What is known about one reference (its encoding, and where its field is).
    type Kind: Copy + std::fmt::Debug + PartialEq + Eq;

    /// Appends the references of `code` to `out`, in increasing `at` order. `vaddr` is the
    /// address of `code[0]`; a scan starts at an instruction boundary (for fixed-length sets,
    /// at an address aligned to the instruction size). A reference whose bytes do not all lie
    /// in `code` is not reported.
    fn scan(code: &[u8], vaddr: u64, out: &mut Vec<Ref<Self::Kind>>);

    /// How many bytes from `at` the reference spans (the bytes [`Isa::retarget`] may change
    /// lie in `at..at + span`).
    fn span(kind: Self::Kind) -> usize;

    /// The address the reference points to. `bytes` starts at the instruction (at least
    /// `span` bytes); `pc` is the instruction's address. `None` when the bytes no longer hold
    /// this kind of reference.
    fn target(kind: Self::Kind, bytes: &[u8], pc: u64) -> Option<u64>;

    /// Rewrites the reference in `bytes` (as for [`Isa::target`]) so that an instruction at
    /// `pc` points to `target`. Returns false, with `bytes` unchanged, when the target cannot
    /// be encoded (out of range, misaligned, or the bytes are not this kind of reference).
    fn retarget(kind: Self::Kind, bytes: &mut [u8], pc: u64, target: u64) -> bool;
}
