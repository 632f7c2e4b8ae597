//! Changed executables inside a target filesystem, patched with bsdiff or an executable patch
//! where one beats zstd.
//!
//! A rebuilt program or library differs from its old version in many small places (addresses
//! and offsets shift by the same amount throughout). bsdiff encodes such changes as byte-wise
//! differences that are mostly zeros, which compress far better than the literals zstd emits
//! for them: on a Debian security upgrade, bsdiff's patch of `libapt-pkg.so` is a third of
//! `zstd -19 --patch-from`'s. Where the profile allows diffgen's extensions, an executable
//! patch ([`crate::exe_patch`]) also predicts the changed references themselves, and is
//! usually smaller again (perl on aarch64: a fifth of bsdiff's). For text and other data zstd
//! with the old version as basis usually wins, so each candidate is encoded every way and the
//! smallest is kept.

use crate::reference::{first_data, gather_file, Layout, ReferenceFinder, Stretch};

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
    /// The file as stretches of the target content, in file order.
    pub layout: Layout,
    pub bytes: Vec<u8>,
    /// The old version as stretches of the source content.
    pub old_layout: Layout,
    /// How `bytes` is made from the old version.
    pub encoding: Encoding,
    /// What zstd with the old version as basis would have taken, for the log.
    pub zstd_len: usize,
}

/// What a candidate is compared with: zstd at `zstd_level` (at most level 9, see
/// `EVALUATION_LEVEL`) with the old version as basis, and executable patches if the profile
/// allows them.
#[derive(Debug, Clone, Copy)]
pub struct Encodings {
    pub zstd_level: i32,
    pub executables: bool,
}

/// A patch from the old version of a file to the new one.
pub enum Encoding {
    /// A BSDIFF40 patch (`bspatch_decompression`).
    Bsdiff(Vec<u8>),
    /// An executable patch (`exe_bspatch`; zstd profile only).
    Exe(crate::exe_patch::ExePatch),
}

impl Encoding {
    /// Bytes the patch takes in the delta.
    pub fn stored_len(&self) -> usize {
        match self {
            Encoding::Bsdiff(p) => p.len(),
            Encoding::Exe(e) => e.frame.len(),
        }
    }
}

/// Working memory of evaluating one candidate, about: bsdiff's suffix array (8 bytes per old
/// byte) and copies of both versions, zstd level 19's tables and window over both; with
/// executable patches also the projected old version, the uncompressed patch (as long as the
/// new version) and level 19's tables over it (about 12 bytes per byte of its window).
pub fn evaluation_memory(old_len: u64, new_len: u64, executables: bool) -> u64 {
    let base = 12 * old_len + 4 * new_len + (16 << 20);
    if !executables {
        return base;
    }
    let window = new_len.next_power_of_two().min(1 << 23);
    base + old_len + new_len + 12 * window
}

/// What became of one changed executable, for the log (the next miss shows there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub path: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The encodings were made: sizes of the bsdiff patch, the executable patch (when the
    /// profile allows it and the file's instruction set is known) and the zstd frame.
    Evaluated {
        bsdiff: usize,
        exe: Option<usize>,
        zstd: usize,
    },
    /// Left to zstd without a comparison, and why.
    NotEvaluated(&'static str),
}

/// Which encoding is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Winner {
    Bsdiff,
    Exe,
    Zstd,
}

/// The smallest encoding, a patch only when it saves more than its recipes cost (an
/// executable patch has one more: its zstd frame).
fn winner(bsdiff: usize, exe: Option<usize>, zstd: usize) -> Winner {
    let exe = exe.map_or(usize::MAX, |e| e + 2 * RECIPE_COST);
    let bsdiff = bsdiff.saturating_add(RECIPE_COST);
    if exe < bsdiff && exe < zstd {
        Winner::Exe
    } else if bsdiff < zstd {
        Winner::Bsdiff
    } else {
        Winner::Zstd
    }
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.outcome {
            Outcome::Evaluated { bsdiff, exe, zstd } => {
                let chosen = match winner(bsdiff, exe, zstd) {
                    Winner::Exe => "executable patch",
                    Winner::Bsdiff => "bsdiff",
                    Winner::Zstd => "zstd against the old version",
                };
                let exe = exe
                    .map(|e| format!("executable patch {e} bytes, "))
                    .unwrap_or_default();
                write!(
                    f,
                    "{}: {chosen} ({exe}bsdiff patch {bsdiff} bytes, zstd {zstd} bytes)",
                    self.path
                )
            }
            Outcome::NotEvaluated(why) => write!(
                f,
                "{}: zstd against the old version (bsdiff not evaluated: {why})",
                self.path
            ),
        }
    }
}

/// A changed executable to evaluate, or why it is not.
struct Candidate<'f> {
    path: &'f str,
    layout: &'f Layout,
    old_layout: &'f Layout,
    unfit: Option<&'static str>,
}

/// Finds the changed ELF files of the target filesystem whose bsdiff patch (or, with
/// `executables`, executable patch) against the old version
/// ([`crate::reference::FilePair::old`]) is smaller than zstd with the old version as basis
/// ([`Encodings`]). Holes (zero padding that `mkfs.ext4 -d` did not store) read as zeros in
/// both versions. Files whose target data overlaps `skip` (already planned otherwise) are left
/// out. Candidates are evaluated in parallel, as many at once as `memory_limit` allows
/// ([`evaluation_memory`]); one that alone needs more is left to zstd. The result does not
/// depend on the grouping. Also returns a [`Choice`] for every changed executable.
pub fn find(
    target: &[u8],
    source: &[u8],
    finder: &ReferenceFinder,
    encodings: Encodings,
    skip: &[(u64, u64)],
    memory_limit: u64,
    progress: &crate::Progress,
) -> (Vec<InnerPatch>, Vec<Choice>) {
    let mut choices = Vec::new();
    let mut candidates = Vec::new();
    for c in changed_executables(
        target,
        source,
        finder,
        skip,
        memory_limit,
        encodings.executables,
    ) {
        match c.unfit {
            Some(why) => choices.push(Choice {
                path: c.path.to_string(),
                outcome: Outcome::NotEvaluated(why),
            }),
            None => candidates.push(c),
        }
    }
    // Largest first, each as soon as a thread is free and the memory limit allows (a thread
    // waits for memory only at the start of a candidate, holding none); results in candidate
    // order, so the outcome does not depend on threads or timing (`crate::queue`).
    let total = |l: &Layout| l.iter().map(Stretch::size).sum::<u64>();
    let need = |c: &Candidate| {
        evaluation_memory(total(c.old_layout), total(c.layout), encodings.executables)
    };
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(need(&candidates[i])));
    let gate = MemoryGate::new(memory_limit);
    let done = std::sync::atomic::AtomicU64::new(0);
    let results = crate::queue::run_in_order(&candidates, &order, |c| {
        let _memory = gate.acquire(need(c));
        let found = evaluate(target, source, c, encodings);
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress.report(
            "planning: bsdiff or zstd for changed executables",
            n,
            candidates.len() as u64,
        );
        found
    });
    let mut patches = Vec::new();
    for evaluation in results {
        choices.push(evaluation.choice);
        patches.extend(evaluation.patch);
    }
    choices.sort_by(|a, b| a.path.cmp(&b.path));
    (patches, choices)
}

/// The ELF files of the target filesystem whose bytes differ from their old version (also
/// ELF), each with the reason it cannot be evaluated, if any.
fn changed_executables<'f>(
    target: &[u8],
    source: &[u8],
    finder: &'f ReferenceFinder,
    skip: &[(u64, u64)],
    memory_limit: u64,
    executables: bool,
) -> Vec<Candidate<'f>> {
    let elf = |data: &[u8], layout: &Layout| {
        first_data(layout).is_some_and(|at| data[at as usize..].starts_with(b"\x7fELF"))
    };
    let mut out = Vec::new();
    for file in finder.files() {
        let Some(old) = file.old else { continue };
        let len: u64 = file.target.iter().map(Stretch::size).sum();
        let old_len: u64 = old.iter().map(Stretch::size).sum();
        if len != file.size || !elf(target, file.target) || !elf(source, old) {
            continue;
        }
        if len == old_len && same_bytes(target, file.target, source, old) {
            continue;
        }
        let taken = file.target.iter().any(|s| match *s {
            Stretch::Data { offset: o, len: l } => {
                skip.iter().any(|&(s, sl)| o < s + sl && s < o + l)
            }
            Stretch::Zeros(_) => false,
        });
        let unfit = if taken {
            Some("planned otherwise")
        } else if len < MIN_FILE {
            Some("smaller than 16 KiB")
        } else if len.max(old_len) > MAX_FILE {
            Some("larger than 64 MiB")
        } else if evaluation_memory(old_len, len, executables) > memory_limit {
            Some("needs more memory than --memory-limit")
        } else {
            None
        };
        out.push(Candidate {
            path: file.path,
            layout: file.target,
            old_layout: old,
            unfit,
        });
    }
    out
}

/// Whether two files (layouts of the same length) hold the same bytes.
fn same_bytes(a: &[u8], a_layout: &Layout, b: &[u8], b_layout: &Layout) -> bool {
    let total: u64 = a_layout.iter().map(Stretch::size).sum();
    let (mut x, mut y) = (FileCursor::new(a, a_layout), FileCursor::new(b, b_layout));
    let mut pos = 0;
    while pos < total {
        let (p, q) = (x.bytes_at(pos), y.bytes_at(pos));
        let n = p.len().min(q.len());
        if n == 0 || p[..n] != q[..n] {
            return false;
        }
        pos += n as u64;
    }
    true
}

/// Reads a file laid out in its image from front to back, without gathering it.
struct FileCursor<'d> {
    data: &'d [u8],
    layout: &'d Layout,
    /// The stretch that holds the last position asked for, and its first byte in the file.
    index: usize,
    start: u64,
}

impl<'d> FileCursor<'d> {
    fn new(data: &'d [u8], layout: &'d Layout) -> Self {
        FileCursor {
            data,
            layout,
            index: 0,
            start: 0,
        }
    }

    /// Bytes of the file from `pos` on (at least one unless `pos` is past the end; zeros a
    /// few KiB at a time). Positions must not go backwards.
    fn bytes_at(&mut self, pos: u64) -> &'d [u8] {
        static ZEROS: [u8; 4096] = [0; 4096];
        while let Some(s) = self.layout.get(self.index) {
            let end = self.start + s.size();
            if pos < end {
                let skip = pos - self.start;
                return match *s {
                    Stretch::Data { offset, .. } => {
                        &self.data[(offset + skip) as usize..(offset + s.size()) as usize]
                    }
                    Stretch::Zeros(n) => &ZEROS[..(n - skip).min(4096) as usize],
                };
            }
            self.index += 1;
            self.start = end;
        }
        &[]
    }
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

/// One candidate encoded both ways: its [`Choice`], and the patch when bsdiff wins.
struct Evaluation {
    choice: Choice,
    patch: Option<InnerPatch>,
}

/// Encodes one candidate every way.
fn evaluate(target: &[u8], source: &[u8], c: &Candidate, encodings: Encodings) -> Evaluation {
    let bytes = gather_file(target, c.layout);
    let old = gather_file(source, c.old_layout);
    let not_evaluated = |why| Evaluation {
        choice: Choice {
            path: c.path.to_string(),
            outcome: Outcome::NotEvaluated(why),
        },
        patch: None,
    };
    let options = codec::bsdiff::DiffOptions::default();
    let Ok(triples) = codec::bsdiff::triples(&old, &bytes, &options) else {
        return not_evaluated("bsdiff failed");
    };
    let mut patch = Vec::new();
    if codec::bsdiff::write_patch(&old, &bytes, &triples, &options, &mut patch).is_err() {
        return not_evaluated("bsdiff failed");
    }
    let exe = encodings
        .executables
        .then(|| crate::exe_patch::encode(&old, &bytes, &triples))
        .flatten();
    let zstd_len = codec::zstd::compress_with_prefix(
        &bytes,
        &old,
        encodings.zstd_level.min(EVALUATION_LEVEL),
        27,
    )
    .map(|f| f.len())
    .unwrap_or(usize::MAX);
    let exe_len = exe.as_ref().map(|e| e.frame.len());
    let choice = Choice {
        path: c.path.to_string(),
        outcome: Outcome::Evaluated {
            bsdiff: patch.len(),
            exe: exe_len,
            zstd: zstd_len,
        },
    };
    let encoding = match (winner(patch.len(), exe_len, zstd_len), exe) {
        (Winner::Exe, Some(exe)) => Some(Encoding::Exe(exe)),
        (Winner::Bsdiff, _) => Some(Encoding::Bsdiff(patch)),
        _ => None,
    };
    Evaluation {
        choice,
        patch: encoding.map(|encoding| InnerPatch {
            path: c.path.to_string(),
            layout: c.layout.clone(),
            bytes,
            old_layout: c.old_layout.clone(),
            encoding,
            zstd_len,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_with_holes_compare_by_their_bytes() {
        let data: Vec<u8> = (0..64u8).chain(std::iter::repeat_n(0, 10_000)).collect();
        let d = |offset, len| Stretch::Data { offset, len };
        // 10 data bytes then 5,000 zeros, as one layout with a hole and as one run of data.
        let sparse = vec![d(0, 10), Stretch::Zeros(5_000)];
        let dense = vec![d(0, 10), d(100, 5_000)];
        assert!(same_bytes(&data, &sparse, &data, &dense));
        assert!(same_bytes(&data, &dense, &data, &sparse));
        let shifted = vec![d(1, 10), Stretch::Zeros(5_000)];
        assert!(!same_bytes(&data, &sparse, &data, &shifted));
        // A zero in the hole's place that is not zero.
        let other = vec![d(0, 10), d(100, 4_000), d(5, 1), d(200, 999)];
        assert!(!same_bytes(&data, &sparse, &data, &other));
    }
}
