//! Known items: files or block devices the caller offers because they may hold an item of the
//! delta — typically a device's running rootfs partition, which is the decompressed source
//! image, so that the applier need not decompress it from the cached SWU and spill it to disk.
//!
//! A partition is usually larger than the image written at its start, so a known item is not
//! hashed whole: it is read once from its first byte, and the SHA-256 state is cloned and
//! finalized at every length some item of the delta has (up to the largest one that fits in the
//! file). Each prefix whose (length, hash) is an item of the delta becomes a pantry entry. The
//! report says for every known item whether the plan used it, and if not, why.

use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;

use crate::archive::Archive;
use crate::io::{FileAt, RangeAt, ReadAt, SharedAt, IO_CHUNK};
use crate::item::{Item, ItemHasher};

use super::ApplyError;

/// A file or block device that holds an item the delta may need (e.g. the uncompressed source
/// image on its partition), used instead of rebuilding it once its hash matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownItem {
    pub path: PathBuf,
    /// Only the first `length` bytes can be the item; `None`: any prefix (or the whole file)
    /// whose length and hash are those of an item of the delta.
    pub length: Option<u64>,
}

/// What became of one known item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownItemReport {
    pub path: PathBuf,
    /// Size of the file or device.
    pub size: u64,
    pub outcome: KnownItemOutcome,
}

/// Whether a known item was used, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownItemOutcome {
    /// The plan read these prefixes of it.
    Used { items: Vec<Item> },
    /// Prefixes matched items of the delta, but the plan made none of them from here (they
    /// were not needed, or an earlier pantry entry, e.g. the source, had them).
    NotNeeded { matched: Vec<Item> },
    /// Prefixes at `tried` lengths were hashed and none is an item of the delta; `longest` is
    /// the longest prefix hashed.
    NoMatch { tried: usize, longest: Item },
    /// No item of the delta fits: none is `limit` bytes or shorter (`exact`: none is exactly
    /// the `limit` bytes asked for).
    NoLengthFits { limit: u64, exact: bool },
}

impl KnownItemReport {
    pub fn used(&self) -> bool {
        matches!(self.outcome, KnownItemOutcome::Used { .. })
    }
}

impl fmt::Display for KnownItemReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} bytes): {}",
            self.path.display(),
            self.size,
            self.outcome
        )
    }
}

impl fmt::Display for KnownItemOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KnownItemOutcome::Used { items } => write!(f, "used, {}", prefixes(items)),
            KnownItemOutcome::NotNeeded { matched } => write!(
                f,
                "not used: {} of the delta, but the plan did not need it from here",
                prefixes(matched)
            ),
            KnownItemOutcome::NoMatch { tried, longest } => write!(
                f,
                "not used: no prefix is an item of the delta ({tried} lengths tried; the first {} bytes hash to {})",
                longest.length(),
                longest.hash().map(|h| format!("{}:{}", h.algorithm_name(), h.hex())).unwrap_or_default()
            ),
            KnownItemOutcome::NoLengthFits { limit, exact: true } => write!(
                f,
                "not used: no item of the delta is exactly {limit} bytes long"
            ),
            KnownItemOutcome::NoLengthFits { limit, exact: false } => write!(
                f,
                "not used: every item of the delta is longer than its {limit} bytes"
            ),
        }
    }
}

/// The longest prefixes (at most [`PREFIXES_SHOWN`]), and how many shorter ones there are (an
/// image's first bytes are often zeros, which many short items of a delta also are).
fn prefixes(items: &[Item]) -> String {
    let mut sorted: Vec<&Item> = items.iter().collect();
    sorted.sort_by_key(|i| std::cmp::Reverse(i.length()));
    let mut text = sorted
        .iter()
        .take(PREFIXES_SHOWN)
        .map(|i| format!("its first {} bytes are item {i}", i.length()))
        .collect::<Vec<_>>()
        .join("; ");
    if sorted.len() > PREFIXES_SHOWN {
        text.push_str(&format!(
            "; and {} shorter prefixes",
            sorted.len() - PREFIXES_SHOWN
        ));
    }
    text
}

/// How many matched prefixes a report names.
const PREFIXES_SHOWN: usize = 2;

/// A known item opened and hashed: its pantry entries (prefixes that are items of the delta)
/// and the outcome so far (`Used` is decided after planning, see [`settle`]).
pub(super) struct Offered {
    pub report: KnownItemReport,
    pub entries: Vec<(Item, SharedAt)>,
}

/// Opens and hashes every known item against the items `archives` mention.
pub(super) fn offer(
    known: &[KnownItem],
    archives: &[&Archive],
) -> Result<Vec<Offered>, ApplyError> {
    if known.is_empty() {
        return Ok(Vec::new());
    }
    let lengths = referenced_lengths(archives);
    known
        .iter()
        .map(|k| offer_one(k, &lengths, archives))
        .collect()
}

fn offer_one(
    known: &KnownItem,
    lengths: &[u64],
    archives: &[&Archive],
) -> Result<Offered, ApplyError> {
    let path = known.path.display().to_string();
    let fail = |reason: String| ApplyError::KnownItem {
        path: path.clone(),
        reason,
    };
    let at = FileAt::open(&known.path).map_err(|e| fail(e.to_string()))?;
    let size = at.size();
    let (limit, exact) = match known.length {
        Some(l) if l > size => {
            return Err(fail(format!("{l} bytes requested, the file has {size}")));
        }
        Some(l) => (l, true),
        None => (size, false),
    };
    let fitting: Vec<u64> = if exact {
        lengths.iter().copied().filter(|&l| l == limit).collect()
    } else {
        lengths
            .iter()
            .copied()
            .take_while(|&l| l <= limit)
            .collect()
    };
    let report = |outcome| KnownItemReport {
        path: known.path.clone(),
        size,
        outcome,
    };
    if fitting.is_empty() {
        let outcome = KnownItemOutcome::NoLengthFits { limit, exact };
        return Ok(Offered {
            report: report(outcome),
            entries: Vec::new(),
        });
    }
    let hashed = prefix_items(&at, &fitting)
        .map_err(|(offset, e)| fail(format!("reading at byte {offset}: {e}")))?;
    let matched = referenced_among(archives, hashed.clone());
    let outcome = match (matched.is_empty(), hashed.last()) {
        (true, Some(&longest)) => KnownItemOutcome::NoMatch {
            tried: hashed.len(),
            longest,
        },
        _ => KnownItemOutcome::NotNeeded {
            matched: matched.clone(),
        },
    };
    let shared: SharedAt = Rc::new(at);
    let entries = matched
        .into_iter()
        .map(|item| {
            let range = RangeAt::new(Rc::clone(&shared), 0, item.length())
                .map_err(|e| fail(e.to_string()))?;
            Ok((item, Rc::new(range) as SharedAt))
        })
        .collect::<Result<_, ApplyError>>()?;
    Ok(Offered {
        report: report(outcome),
        entries,
    })
}

/// The final reports: an offered item whose pantry entries (`first_index` onwards, in order)
/// include one the plan reads becomes `Used` with those items.
pub(super) fn settle(
    offered: Vec<(Offered, usize)>,
    is_needed: impl Fn(usize) -> bool,
) -> Vec<KnownItemReport> {
    offered
        .into_iter()
        .map(|(o, first_index)| {
            let used: Vec<Item> = o
                .entries
                .iter()
                .enumerate()
                .filter(|(i, _)| is_needed(first_index + i))
                .map(|(_, (item, _))| *item)
                .collect();
            let mut report = o.report;
            if !used.is_empty() {
                report.outcome = KnownItemOutcome::Used { items: used };
            }
            report
        })
        .collect()
}

/// Every item the archives mention: targets, sources, recipe results and ingredients.
fn for_each_referenced(archives: &[&Archive], mut f: impl FnMut(&Item)) {
    for a in archives {
        f(&a.target);
        f(&a.source);
        for (result, recipe) in a.recipes() {
            f(result);
            recipe.for_each_item(&mut f);
        }
    }
}

/// Sorted, distinct, non-zero lengths of the items the archives mention: a known item's
/// prefix of any other length can never be used, so it is not even hashed.
fn referenced_lengths(archives: &[&Archive]) -> Vec<u64> {
    let mut lengths = Vec::new();
    for_each_referenced(archives, |i| lengths.push(i.length()));
    lengths.sort_unstable();
    lengths.dedup();
    lengths.retain(|&l| l > 0);
    lengths
}

/// Which of `candidates` are items the archives mention (sorted, distinct).
fn referenced_among(archives: &[&Archive], mut candidates: Vec<Item>) -> Vec<Item> {
    candidates.sort_unstable();
    candidates.dedup();
    let mut hit = vec![false; candidates.len()];
    for_each_referenced(archives, |i| {
        if let Ok(k) = candidates.binary_search(i) {
            hit[k] = true;
        }
    });
    candidates
        .into_iter()
        .zip(hit)
        .filter_map(|(item, hit)| hit.then_some(item))
        .collect()
}

/// The items of `source`'s prefixes at each of `lengths` (sorted ascending, all within the
/// source), hashed in one pass. Errors carry the offset of the failed read.
fn prefix_items(source: &dyn ReadAt, lengths: &[u64]) -> Result<Vec<Item>, (u64, std::io::Error)> {
    let end = lengths.last().copied().unwrap_or(0);
    let mut out = Vec::with_capacity(lengths.len());
    let mut pending = lengths.iter().copied().peekable();
    let mut hasher = ItemHasher::new();
    let mut buf = vec![0u8; IO_CHUNK];
    let mut done = 0u64;
    while done < end {
        let n = (end - done).min(IO_CHUNK as u64) as usize;
        let chunk = &mut buf[..n];
        source.read_exact_at(done, chunk).map_err(|e| (done, e))?;
        let mut fed = 0usize;
        while let Some(cut) = pending.next_if(|&l| l <= done + n as u64) {
            let cut = (cut - done) as usize;
            hasher.update(&chunk[fed..cut]);
            fed = cut;
            out.push(hasher.clone().finish());
        }
        hasher.update(&chunk[fed..]);
        done += n as u64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_hashed_at_every_length_in_one_pass() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let lengths = [1, 65_535, 65_536, 65_537, 131_072, 150_000, 200_000];
        let items = prefix_items(&data, &lengths).unwrap();
        let expected: Vec<Item> = lengths
            .iter()
            .map(|&l| Item::of_bytes(&data[..l as usize]))
            .collect();
        assert_eq!(items, expected);
        assert!(prefix_items(&data, &[]).unwrap().is_empty());
    }
}
