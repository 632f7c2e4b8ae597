//! Planning bytes by block matching: matched runs are slices of source items, long zero runs
//! `all_zeros`, and the rest new bytes; inside a filesystem, the new bytes of changed files
//! go to segments whose basis is their old version ([`ReferenceFinder`]), and the data of new
//! files to the plain stream.

use delta::Item;

use super::{
    push_part, Basis, Part, Planner, Segment, ABSORB_MATCH, HOW_NEW, HOW_ZSTD_BASIS, NEW_FILE_SPAN,
    REFERENCED_CHUNK, SEGMENT_LIMIT,
};
use crate::blocks::{self, BlockIndex, Piece};
use crate::plan::add_basis_range;
use crate::reference::{Ranges, ReferenceFinder};
use crate::{Error, PartKind};

/// What bytes of a content that `f` found `path` (or no file) owning are: a file, or, in a
/// filesystem, its metadata; else the payload's own bytes.
fn owner<'p>(f: &ReferenceFinder, path: Option<&'p str>) -> (PartKind, Option<&'p str>) {
    match path {
        Some(_) => (PartKind::File, path),
        None if f.is_file_aware() => (PartKind::Metadata, None),
        None => (PartKind::Payload, None),
    }
}

/// The segment that `len` new bytes of this kind (`metadata` or file data) with references
/// `refs` into source content `source` join: the last segment of their kind with a basis in
/// that content, if they fit it within [`SEGMENT_LIMIT`] (references already in its basis
/// cost nothing more there).
fn open_segment(
    segments: &[Segment],
    source: usize,
    metadata: bool,
    len: u64,
    refs: &Ranges,
) -> Option<usize> {
    let k = segments.iter().rposition(|s| {
        s.metadata == metadata
            && matches!(&s.basis, Basis::Source { source: s0, .. } if *s0 == source)
    })?;
    let s = &segments[k];
    let Basis::Source { ranges, .. } = &s.basis else {
        return None;
    };
    let fresh_len: u64 = refs
        .iter()
        .filter(|r| !ranges.contains(r))
        .map(|r| r.1)
        .sum();
    (s.data.len() as u64 + s.basis_len + len + fresh_len <= SEGMENT_LIMIT).then_some(k)
}

impl Planner<'_> {
    /// New bytes with references into source content `source`: into the open segment of
    /// their kind (metadata, or file data: kept apart, so that a segment's compressed size is
    /// charged to parts that compress alike, and metadata, which compresses worst, does not
    /// share a frame's statistics with files), or a new one when it would grow past
    /// [`SEGMENT_LIMIT`]. Without usable references (or for runs too large for a segment)
    /// they go to the plain stream.
    fn push_referenced(
        &mut self,
        bytes: &[u8],
        source: usize,
        refs: Ranges,
        metadata: bool,
    ) -> Result<Part, Error> {
        let len = bytes.len() as u64;
        let refs_len: u64 = refs.iter().map(|r| r.1).sum();
        if refs_len == 0 || len + refs_len > SEGMENT_LIMIT {
            return self.push_new(bytes);
        }
        let k = match open_segment(&self.segments, source, metadata, len, &refs) {
            Some(k) => k,
            // A new segment needs all the references, not only those the last one lacked.
            None => {
                self.segments.push(Segment {
                    data: Vec::new(),
                    basis: Basis::Source {
                        source,
                        ranges: Ranges::new(),
                    },
                    basis_len: 0,
                    metadata,
                });
                self.segments.len() - 1
            }
        };
        let seg = &mut self.segments[k];
        let offset = seg.data.len() as u64;
        seg.data.extend_from_slice(bytes);
        let Basis::Source { ranges, .. } = &mut seg.basis else {
            unreachable!("the open segment has a source basis")
        };
        for r in refs {
            seg.basis_len += add_basis_range(ranges, r);
        }
        self.stats.new_bytes += len;
        Ok(Part::New {
            stream: k + 1,
            offset,
            len,
        })
    }

    /// New bytes `bytes[from..to]` (at `base` in the target content) with references into
    /// the old versions of what they belong to: in chunks, so that a large changed file still
    /// fits a segment together with its old version.
    #[allow(clippy::too_many_arguments)]
    fn plan_referenced(
        &mut self,
        bytes: &[u8],
        base: u64,
        from: u64,
        to: u64,
        f: &ReferenceFinder,
        source: usize,
        out: &mut Vec<Part>,
    ) -> Result<(), Error> {
        let mut at = from;
        while at < to {
            let n = (to - at).min(REFERENCED_CHUNK);
            let chunk = &bytes[at as usize..(at + n) as usize];
            let refs = f.find(base + at, n);
            let owners = f.owners(base + at, n);
            let metadata = owners.iter().all(|(path, _)| path.is_none());
            let part = self.push_referenced(chunk, source, refs, metadata)?;
            if let Part::New { stream, .. } = part {
                let how = if stream == 0 { HOW_NEW } else { HOW_ZSTD_BASIS };
                for (path, len) in owners {
                    self.note_cost(owner(f, path), how, stream, len);
                }
            }
            push_part(out, part);
            at += n;
        }
        Ok(())
    }

    /// Plans `data` by block matching; new bytes go to a new-bytes stream, with references
    /// into `finder`'s source content when one is given. `base` is the offset of `data` in
    /// the content `finder` was made for.
    pub(crate) fn plan_bytes(
        &mut self,
        data: &[u8],
        base: u64,
        index: &BlockIndex,
        finder: Option<(&ReferenceFinder, usize)>,
        out: &mut Vec<Part>,
    ) -> Result<(), Error> {
        let mut pieces = index.plan(data, base);
        if let Some((f, source)) = finder {
            // Next to changed bytes that are compressed against their old version, a short
            // match from that old version costs almost nothing inside the compressed stream,
            // but two recipes outside it.
            pieces = blocks::absorb_short_matches(pieces, ABSORB_MATCH, |region, off, len, at| {
                region == source
                    && f.find(base + at, len)
                        .iter()
                        .any(|&(o, l)| o <= off && off + len <= o + l)
            });
        }
        for piece in pieces {
            let part = match piece {
                Piece::Source {
                    region,
                    offset,
                    len,
                } => {
                    self.stats.reused_bytes += len;
                    Part::Item(self.source_piece(region, offset, len)?)
                }
                Piece::Zeros { len } => {
                    self.stats.zero_bytes += len;
                    Part::Item(self.zeros(len)?)
                }
                Piece::New { start, len } => {
                    let bytes = &data[start as usize..(start + len) as usize];
                    match finder {
                        Some((f, source)) => {
                            // Data of new files goes to the plain stream, the rest in pieces
                            // against their old versions.
                            let mut at = 0u64;
                            let spans = f.new_file_spans(base + start, len, NEW_FILE_SPAN);
                            for (span_at, span_len) in spans {
                                // Runs of a corrupt image may overlap: never go back.
                                let span_end = span_at + span_len;
                                if span_end <= at {
                                    continue;
                                }
                                let span_at = span_at.max(at);
                                let span_len = span_end - span_at;
                                self.plan_referenced(
                                    bytes,
                                    base + start,
                                    at,
                                    span_at,
                                    f,
                                    source,
                                    out,
                                )?;
                                let span = &bytes[span_at as usize..(span_at + span_len) as usize];
                                let part = self.push_new(span)?;
                                for (path, n) in f.owners(base + start + span_at, span_len) {
                                    self.note_cost(owner(f, path), HOW_NEW, 0, n);
                                }
                                push_part(out, part);
                                at = span_at + span_len;
                            }
                            self.plan_referenced(bytes, base + start, at, len, f, source, out)?;
                            continue;
                        }
                        None => self.push_new_noted(bytes, PartKind::Payload)?,
                    }
                }
            };
            push_part(out, part);
        }
        Ok(())
    }

    /// Plans `data` with the ranges in `claimed` (sorted `(start, len, item)`, the item making
    /// exactly those bytes) taken as they are and the bytes between them by [`Self::plan_bytes`].
    pub(crate) fn plan_around(
        &mut self,
        data: &[u8],
        claimed: &[(u64, u64, Item)],
        index: &BlockIndex,
        finder: Option<(&ReferenceFinder, usize)>,
        out: &mut Vec<Part>,
    ) -> Result<(), Error> {
        let mut pos = 0u64;
        for &(start, len, item) in claimed {
            if start < pos {
                continue; // overlapping claims cannot happen in a valid filesystem; stay safe
            }
            if start > pos {
                let gap = &data[pos as usize..start as usize];
                self.plan_bytes(gap, pos, index, finder, out)?;
            }
            push_part(out, Part::Item(item));
            pos = start + len;
        }
        if pos < data.len() as u64 {
            self.plan_bytes(&data[pos as usize..], pos, index, finder, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(metadata: bool, basis: Basis, data: usize, basis_len: u64) -> Segment {
        Segment {
            data: vec![0; data],
            basis,
            basis_len,
            metadata,
        }
    }

    fn source(source: usize, ranges: Ranges) -> Basis {
        Basis::Source { source, ranges }
    }

    #[test]
    fn new_bytes_join_the_last_segment_of_their_kind_that_fits() {
        let segments = vec![
            segment(true, source(0, vec![(0, 1000)]), 100, 1000),
            segment(false, source(0, vec![(5000, 1000)]), 100, 1000),
            segment(false, Basis::Items(Vec::new()), 100, 1000),
        ];
        let refs = vec![(9000, 100)];
        // Metadata joins the metadata segment, though a file segment came after it.
        assert_eq!(open_segment(&segments, 0, true, 10, &refs), Some(0));
        // File data joins the file segment with a source basis, not the one of gzip texts.
        assert_eq!(open_segment(&segments, 0, false, 10, &refs), Some(1));
        // Another source content: a new segment.
        assert_eq!(open_segment(&segments, 1, false, 10, &refs), None);
        // Too large with its references: a new segment, unless the references are there.
        let room = SEGMENT_LIMIT - 1100;
        assert_eq!(open_segment(&segments, 0, true, room, &refs), None);
        assert_eq!(
            open_segment(&segments, 0, true, room, &[(0, 1000)].to_vec()),
            Some(0)
        );
        assert_eq!(open_segment(&[], 0, true, 10, &refs), None);
    }
}
