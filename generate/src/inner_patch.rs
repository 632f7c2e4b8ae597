//! Changed executables inside a target filesystem, patched with bsdiff where it beats zstd.
//!
//! A rebuilt program or library differs from its old version in many small places (addresses
//! and offsets shift by the same amount throughout). bsdiff encodes such changes as byte-wise
//! differences that are mostly zeros, which compress far better than the literals zstd emits
//! for them: on a Debian security upgrade, bsdiff's patch of `libapt-pkg.so` is a third of
//! `zstd -19 --patch-from`'s. For text and other data zstd with the old version as basis
//! usually wins, so each candidate is encoded both ways and the smaller one is kept.

use rayon::prelude::*;

use crate::reference::{Ranges, ReferenceFinder};

/// Files smaller than this are left to zstd: the recipes of a patch cost a few hundred bytes.
const MIN_FILE: u64 = 16 * 1024;
/// Larger files are left to zstd: bsdiff's suffix array takes 8 bytes per old byte.
pub const MAX_FILE: u64 = 64 << 20;
/// zstd level of the comparison: level 19 would take most of the planning time, and its
/// frames are only 5-10 % smaller on executables than level 9's, a margin bsdiff's wins
/// (2-3x on rebuilt libraries) do not depend on (on the Debian upgrade pair levels 9 and 12
/// choose the same eight files).
const EVALUATION_LEVEL: i32 = 9;
/// What the recipes of a patched file cost in the delta, about (old file, patch, result).
const RECIPE_COST: usize = 400;

/// A changed file of the target filesystem with its bsdiff patch.
pub struct InnerPatch {
    /// The file's path in the target filesystem.
    pub path: String,
    /// The file's bytes as ranges of the target content, in file order.
    pub ranges: Ranges,
    pub bytes: Vec<u8>,
    /// The old version as ranges of the source content.
    pub old_ranges: Ranges,
    /// BSDIFF40 patch from the old version to `bytes`.
    pub patch: Vec<u8>,
    /// What zstd with the old version as basis would have taken, for the log.
    pub zstd_len: usize,
}

/// Working memory of evaluating one candidate, about: bsdiff's suffix array (8 bytes per old
/// byte) and copies of both versions, zstd level 19's tables and window over both.
pub fn evaluation_memory(old_len: u64, new_len: u64) -> u64 {
    12 * old_len + 4 * new_len + (16 << 20)
}

/// Finds the changed ELF files of the target filesystem whose bsdiff patch against the old
/// version ([`crate::reference::FilePair::old`]) is smaller than zstd at `level` with the old version as basis. Files
/// whose target ranges overlap `skip` (already planned otherwise) are left out. Candidates
/// are evaluated in parallel, as many at once as `memory_limit` allows ([`evaluation_memory`]);
/// one that alone needs more is left to zstd. The result does not depend on the grouping.
pub fn find(
    target: &[u8],
    source: &[u8],
    finder: &ReferenceFinder,
    level: i32,
    skip: &[(u64, u64)],
    memory_limit: u64,
    progress: &crate::Progress,
) -> Vec<InnerPatch> {
    let candidates: Vec<(Ranges, Ranges, &str)> = finder
        .files()
        .filter_map(|file| {
            let len: u64 = file.target.iter().map(|r| r.1).sum();
            let old = file.old?;
            let old_len: u64 = old.iter().map(|r| r.1).sum();
            let whole = len == file.size && (MIN_FILE..=MAX_FILE).contains(&len);
            let &(first, _) = file.target.first()?;
            let &(old_first, _) = old.first()?;
            let elf = |data: &[u8], at: u64| data[at as usize..].starts_with(b"\x7fELF");
            let taken = file
                .target
                .iter()
                .any(|&(o, l)| skip.iter().any(|&(s, sl)| o < s + sl && s < o + l));
            (whole
                && old_len <= MAX_FILE
                && evaluation_memory(old_len, len) <= memory_limit
                && !taken
                && elf(target, first)
                && elf(source, old_first))
            .then(|| (file.target.clone(), old.clone(), file.path))
        })
        .collect();
    // Largest first, each as soon as a thread is free and the memory limit allows (a thread
    // waits for memory only at the start of a candidate, holding none); results in candidate
    // order, so the outcome does not depend on threads or timing.
    let total = |r: &Ranges| r.iter().map(|x| x.1).sum::<u64>();
    let need = |i: usize| evaluation_memory(total(&candidates[i].1), total(&candidates[i].0));
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(need(i)));
    let gate = MemoryGate::new(memory_limit);
    let done = std::sync::atomic::AtomicU64::new(0);
    let mut results: Vec<(usize, Option<InnerPatch>)> = order
        .par_iter()
        .map(|&i| {
            let _memory = gate.acquire(need(i));
            let (ranges, old_ranges, path) = &candidates[i];
            let found = evaluate(target, source, path, ranges, old_ranges, level);
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress.report(
                "planning: bsdiff or zstd for changed executables",
                n,
                candidates.len() as u64,
            );
            (i, found)
        })
        .collect();
    results.sort_by_key(|r| r.0);
    results.into_iter().filter_map(|r| r.1).collect()
}

/// Lets evaluations start while their memory fits the limit together.
struct MemoryGate {
    limit: u64,
    used: std::sync::Mutex<u64>,
    freed: std::sync::Condvar,
}

impl MemoryGate {
    fn new(limit: u64) -> Self {
        MemoryGate {
            limit,
            used: std::sync::Mutex::new(0),
            freed: std::sync::Condvar::new(),
        }
    }

    /// Waits until `need` more bytes fit (at once when nothing is running, so a candidate
    /// that fits the limit alone always starts).
    fn acquire(&self, need: u64) -> Permit<'_> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used > 0 && *used + need > self.limit {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += need;
        Permit { gate: self, need }
    }
}

struct Permit<'g> {
    gate: &'g MemoryGate,
    need: u64,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut used = self.gate.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.need;
        self.gate.freed.notify_all();
    }
}

/// Encodes one candidate both ways; `Some` when bsdiff wins.
fn evaluate(
    target: &[u8],
    source: &[u8],
    path: &str,
    ranges: &Ranges,
    old_ranges: &Ranges,
    level: i32,
) -> Option<InnerPatch> {
    let bytes = crate::reference::gather(target, ranges);
    let old = crate::reference::gather(source, old_ranges);
    if bytes == old {
        return None;
    }
    let patch = codec::bsdiff::diff(&old, &bytes).ok()?;
    let zstd_len = codec::zstd::compress_with_prefix(&bytes, &old, level.min(EVALUATION_LEVEL), 27)
        .map(|f| f.len())
        .unwrap_or(usize::MAX);
    (patch.len() + RECIPE_COST < zstd_len).then(|| InnerPatch {
        path: path.to_string(),
        ranges: ranges.clone(),
        bytes,
        old_ranges: old_ranges.clone(),
        patch,
        zstd_len,
    })
}
