//! BSDIFF40 encoding over a suffix array of the old file.
//!
//! The matcher follows bsdiff's idea: walk the new file; at each position find the longest exact
//! match in the old file (binary search on the suffix array); accept it when it beats the current
//! alignment (the old offset of the previous match) by more than 8 matching bytes; then extend the
//! previous match forward and the new one backward while at least half the bytes agree, and emit
//! one control triple. Approximate matches make the diff block mostly zeros, which bzip2 packs
//! well.
//!
//! Two changes keep it from going quadratic where classic bsdiff does (large regions that differ
//! from the old file by a few scattered bytes, long runs of one byte):
//! - the suffix-array search carries the common-prefix lengths of both bounds, so a search costs
//!   about `log n + match length` instead of `log n * match length`;
//! - when a long match is rejected because the current alignment already covers it nearly as
//!   well, the walk jumps to near the end of that match instead of retrying at the next byte
//!   (each retry would cost the match length again).

use std::io::Write;

use bzip2::write::BzEncoder;
use bzip2::Compression;

use super::{encode_offtin, BsdiffError, MAGIC};

/// Tuning of the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffOptions {
    /// bzip2 block size in 100 kB units (1..=9); 9 is what bsdiff uses.
    pub bzip2_level: u32,
    /// A rejected exact match at least this long makes the walk jump ahead (see module docs).
    pub skip_threshold: usize,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            bzip2_level: 9,
            skip_threshold: 64,
        }
    }
}

/// A match must beat the current alignment by more than this many bytes to start a new triple
/// (bsdiff's constant: a control triple costs about this much after compression).
const MIN_GAIN: usize = 8;
/// The suffix sorter indexes with i32.
const MAX_INPUT: usize = i32::MAX as usize;

/// Makes a BSDIFF40 patch that turns `old` into `new`.
pub fn diff(old: &[u8], new: &[u8]) -> Result<Vec<u8>, BsdiffError> {
    let mut out = Vec::new();
    diff_to_writer(old, new, &DiffOptions::default(), &mut out)?;
    Ok(out)
}

/// Makes a BSDIFF40 patch and writes it to `out`.
pub fn diff_to_writer(
    old: &[u8],
    new: &[u8],
    options: &DiffOptions,
    out: &mut dyn Write,
) -> Result<(), BsdiffError> {
    let triples = triples(old, new, options)?;
    write_patch(old, new, &triples, options, out)
}

/// Writes the BSDIFF40 patch of an alignment `triples` ([`triples`] of the same files).
pub fn write_patch(
    old: &[u8],
    new: &[u8],
    triples: &[Triple],
    options: &DiffOptions,
    out: &mut dyn Write,
) -> Result<(), BsdiffError> {
    let level = Compression::new(options.bzip2_level.clamp(1, 9));
    let mut control = BzEncoder::new(Vec::new(), level);
    let mut diff = BzEncoder::new(Vec::new(), level);
    let mut extra = BzEncoder::new(Vec::new(), level);
    let (mut old_pos, mut new_pos) = (0usize, 0usize);
    let mut buf = [0u8; 4096];
    for t in triples {
        let (Some(new_add), Some(old_add), Some(new_copy)) = (
            new.get(new_pos..new_pos + t.add),
            old.get(old_pos..old_pos + t.add),
            new.get(new_pos + t.add..new_pos + t.add + t.copy),
        ) else {
            return Err(BsdiffError::BadControl {
                index: 0,
                new_pos: new_pos as u64,
                reason: "triple outside the files it aligns".into(),
            });
        };
        let write = |e| BsdiffError::Write(e);
        control
            .write_all(&encode_offtin(t.add as i64))
            .map_err(write)?;
        control
            .write_all(&encode_offtin(t.copy as i64))
            .map_err(write)?;
        control.write_all(&encode_offtin(t.seek)).map_err(write)?;
        for (n_chunk, o_chunk) in new_add.chunks(buf.len()).zip(old_add.chunks(buf.len())) {
            for ((d, &n), &o) in buf.iter_mut().zip(n_chunk).zip(o_chunk) {
                *d = n.wrapping_sub(o);
            }
            diff.write_all(&buf[..n_chunk.len()]).map_err(write)?;
        }
        extra.write_all(new_copy).map_err(write)?;
        new_pos += t.add + t.copy;
        old_pos = (old_pos as i64 + t.add as i64 + t.seek) as usize;
    }

    let control = control.finish().map_err(BsdiffError::Write)?;
    let diff = diff.finish().map_err(BsdiffError::Write)?;
    let extra = extra.finish().map_err(BsdiffError::Write)?;
    let mut header = Vec::with_capacity(32);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&encode_offtin(control.len() as i64));
    header.extend_from_slice(&encode_offtin(diff.len() as i64));
    header.extend_from_slice(&encode_offtin(new.len() as i64));
    for part in [&header, &control, &diff, &extra] {
        out.write_all(part).map_err(BsdiffError::Write)?;
    }
    Ok(())
}

/// One control triple of a patch (see the module docs of [`super`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Triple {
    pub add: usize,
    pub copy: usize,
    pub seek: i64,
}

/// The control triples of the patch [`diff`] would make, for formats that encode the same
/// alignment differently (`exepatch`).
pub fn triples(old: &[u8], new: &[u8], options: &DiffOptions) -> Result<Vec<Triple>, BsdiffError> {
    check_sizes(old, new)?;
    let index = SuffixIndex::new(old);
    let mut out = Vec::new();
    let mut emit = |t: &Triple| -> std::io::Result<()> {
        out.push(*t);
        Ok(())
    };
    scan(old, new, &index, options, &mut emit).map_err(BsdiffError::Write)?;
    Ok(out)
}

fn check_sizes(old: &[u8], new: &[u8]) -> Result<(), BsdiffError> {
    for (what, data) in [("old file", old), ("new file", new)] {
        if data.len() > MAX_INPUT {
            return Err(BsdiffError::InputTooLarge {
                what,
                len: data.len() as u64,
                limit: MAX_INPUT as u64,
            });
        }
    }
    Ok(())
}

/// Suffix array of the old file with a longest-match search.
struct SuffixIndex<'a> {
    old: &'a [u8],
    sa: Vec<i32>,
}

impl<'a> SuffixIndex<'a> {
    fn new(old: &'a [u8]) -> Self {
        let mut sa = vec![0i32; old.len()];
        if !old.is_empty() {
            divsufsort::sort_in_place(old, &mut sa);
        }
        SuffixIndex { old, sa }
    }

    fn suffix(&self, rank: usize) -> (usize, &[u8]) {
        let start = self.sa[rank] as usize;
        (start, &self.old[start..])
    }

    /// The longest prefix of `pattern` that occurs in the old file: (length, old position).
    fn longest_match(&self, pattern: &[u8]) -> (usize, usize) {
        if self.sa.is_empty() || pattern.is_empty() {
            return (0, 0);
        }
        let mut lo = 0usize;
        let mut hi = self.sa.len() - 1;
        let mut lo_lcp = common_prefix(self.suffix(lo).1, pattern, 0);
        let mut hi_lcp = common_prefix(self.suffix(hi).1, pattern, 0);
        // Suffixes between lo and hi share at least min(lo_lcp, hi_lcp) bytes with the pattern
        // (they are sorted), so comparisons start there.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let (start, suffix) = self.suffix(mid);
            let l = common_prefix(suffix, pattern, lo_lcp.min(hi_lcp));
            if l == pattern.len() {
                return (l, start);
            }
            // The suffix sorts before the pattern if it ended, or its next byte is smaller.
            let before = suffix.get(l).is_none_or(|&b| b < pattern[l]);
            if before {
                lo = mid;
                lo_lcp = l;
            } else {
                hi = mid;
                hi_lcp = l;
            }
        }
        if lo_lcp >= hi_lcp {
            (lo_lcp, self.sa[lo] as usize)
        } else {
            (hi_lcp, self.sa[hi] as usize)
        }
    }
}

/// Length of the common prefix of `a` and `b`, knowing the first `known` bytes agree.
fn common_prefix(a: &[u8], b: &[u8], known: usize) -> usize {
    let limit = a.len().min(b.len());
    let mut i = known.min(limit);
    // Compare 8 bytes at a time; the tail byte by byte.
    while i + 8 <= limit {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let d = x ^ y;
        if d != 0 {
            return i + (d.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < limit && a[i] == b[i] {
        i += 1;
    }
    i
}

/// Whether new[i] equals old[i + offset] (false when that old position does not exist).
fn aligned_eq(old: &[u8], new: &[u8], i: usize, offset: i64) -> bool {
    let j = i as i64 + offset;
    j >= 0 && (j as usize) < old.len() && old[j as usize] == new[i]
}

/// Walks the new file and calls `emit` for each control triple, in order.
fn scan(
    old: &[u8],
    new: &[u8],
    index: &SuffixIndex,
    options: &DiffOptions,
    emit: &mut dyn FnMut(&Triple) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let skip_threshold = options.skip_threshold.max(2 * MIN_GAIN);
    let (mut scan, mut len, mut pos) = (0usize, 0usize, 0usize);
    let (mut last_scan, mut last_pos) = (0usize, 0usize);
    let mut last_offset: i64 = 0;

    while scan < new.len() {
        // Matches of the current alignment (last_offset) within [scan, scored_to).
        let mut old_score = 0usize;
        scan += len;
        let mut scored_to = scan;
        while scan < new.len() {
            (len, pos) = index.longest_match(&new[scan..]);
            while scored_to < scan + len {
                if aligned_eq(old, new, scored_to, last_offset) {
                    old_score += 1;
                }
                scored_to += 1;
            }
            if (len == old_score && len != 0) || len > old_score + MIN_GAIN {
                break;
            }
            // Rejected: the current alignment is about as good here. Move on by one byte, or
            // for a long match to near its end, dropping the moved-over bytes from the score.
            let step = if len >= skip_threshold {
                len - skip_threshold / 2
            } else {
                1
            };
            for i in scan..scan + step {
                if aligned_eq(old, new, i, last_offset) {
                    old_score -= 1;
                }
            }
            scan += step;
        }

        if len == old_score && scan != new.len() {
            continue;
        }

        // Extend the previous match forward from last_scan while at least half agrees.
        let mut forward = 0usize;
        {
            let (mut agree, mut best) = (0i64, 0i64);
            let mut i = 0usize;
            while last_scan + i < scan && last_pos + i < old.len() {
                if old[last_pos + i] == new[last_scan + i] {
                    agree += 1;
                }
                i += 1;
                if agree * 2 - i as i64 > best * 2 - forward as i64 {
                    best = agree;
                    forward = i;
                }
            }
        }
        // Extend the new match backward from scan likewise.
        let mut backward = 0usize;
        if scan < new.len() {
            let (mut agree, mut best) = (0i64, 0i64);
            let mut i = 1usize;
            while scan >= last_scan + i && pos >= i {
                if old[pos - i] == new[scan - i] {
                    agree += 1;
                }
                if agree * 2 - i as i64 > best * 2 - backward as i64 {
                    best = agree;
                    backward = i;
                }
                i += 1;
            }
        }
        // If the extensions overlap, split the overlap where the forward one stops paying.
        if last_scan + forward > scan - backward {
            let overlap = (last_scan + forward) - (scan - backward);
            let (mut score, mut best, mut keep) = (0i64, 0i64, 0usize);
            for i in 0..overlap {
                if new[last_scan + forward - overlap + i] == old[last_pos + forward - overlap + i] {
                    score += 1;
                }
                if new[scan - backward + i] == old[pos - backward + i] {
                    score -= 1;
                }
                if score > best {
                    best = score;
                    keep = i + 1;
                }
            }
            forward = forward + keep - overlap;
            backward -= keep;
        }

        let copy_new = last_scan + forward;
        let next_old = pos - backward;
        emit(&Triple {
            add: forward,
            copy: (scan - backward) - copy_new,
            seek: next_old as i64 - (last_pos + forward) as i64,
        })?;
        last_scan = scan - backward;
        last_pos = next_old;
        last_offset = pos as i64 - scan as i64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_match_finds_the_best_suffix() {
        let old = b"the quick brown fox jumps over the lazy dog";
        let index = SuffixIndex::new(old);
        assert_eq!(index.longest_match(b"lazy cat"), (5, 35));
        assert_eq!(index.longest_match(b"zzz").0, 1);
        assert_eq!(index.longest_match(b"#").0, 0);
        assert_eq!(index.longest_match(b"the quick"), (9, 0));
    }

    #[test]
    fn common_prefix_handles_words_and_tails() {
        let a = b"0123456789abcdefXYZ";
        let b = b"0123456789abcdefXYq";
        assert_eq!(common_prefix(a, b, 0), 18);
        assert_eq!(common_prefix(a, b, 5), 18);
        assert_eq!(common_prefix(a, &b[..4], 0), 4);
        assert_eq!(common_prefix(b"x", b"y", 0), 0);
    }
}
