//! Block matching: where in the source data each block of a target's data already exists.
//!
//! Source data (the source SWU's uncompressed payloads and the decompressed contents of its
//! compressed payloads) is cut into fixed blocks at offsets relative to each region's start;
//! every block's hash goes into an index. A target's data is then walked block by block: a
//! block found in the index (and confirmed byte for byte) starts a match that is extended for
//! as long as the following blocks continue in the same source region. Filesystem images keep
//! file data block-aligned, so unchanged files are found wherever they moved.
//!
//! All-zero runs and bytes found nowhere are reported separately; the planner decides how to
//! encode them.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Block size of the index: the smallest ext2/3/4 block size, so file data of filesystems
/// with 1, 2 or 4 KiB blocks is aligned to it.
pub const BLOCK: usize = 1024;
/// Shorter matches cost more as recipes than as compressed new bytes.
pub const MIN_MATCH: usize = 4096;
/// Zero runs shorter than this are cheaper as compressed new bytes than as a recipe of their
/// own (ADU's DiffGen uses the same threshold).
pub const MIN_ZERO_RUN: usize = 64 * 1024;

/// A region of source data that target blocks can be taken from.
pub struct Region<'a> {
    /// Caller's identifier (which source item the bytes belong to).
    pub id: usize,
    pub bytes: &'a [u8],
}

/// Where a block of source data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    region: u32,
    offset: u64,
}

/// One piece of a target's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// `len` bytes from `offset` of the region with caller id `region`.
    Source {
        region: usize,
        offset: u64,
        len: u64,
    },
    Zeros {
        len: u64,
    },
    /// Bytes found nowhere: `[start, start + len)` of the target data.
    New {
        start: u64,
        len: u64,
    },
}

impl Piece {
    pub fn len(&self) -> u64 {
        match self {
            Piece::Source { len, .. } | Piece::Zeros { len } | Piece::New { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Hash of a block for the index (collisions are harmless: matches are confirmed by bytes).
fn block_hash(block: &[u8]) -> u64 {
    // SipHash with fixed keys: deterministic within a run, which is all an in-memory index needs.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    block.hash(&mut h);
    h.finish()
}

/// The index of every source block.
pub struct BlockIndex<'a> {
    regions: Vec<Region<'a>>,
    map: HashMap<u64, Location>,
}

impl<'a> BlockIndex<'a> {
    pub fn new(regions: Vec<Region<'a>>) -> Self {
        let blocks: usize = regions.iter().map(|r| r.bytes.len() / BLOCK).sum();
        let mut map = HashMap::with_capacity(blocks);
        for (ri, region) in regions.iter().enumerate() {
            for (k, block) in region.bytes.chunks_exact(BLOCK).enumerate() {
                if block.iter().all(|&b| b == 0) {
                    continue; // zeros are handled on their own
                }
                // The first occurrence wins, so the result does not depend on map internals.
                map.entry(block_hash(block)).or_insert(Location {
                    region: ri as u32,
                    offset: (k * BLOCK) as u64,
                });
            }
        }
        BlockIndex { regions, map }
    }

    /// Number of indexed blocks.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Splits `data` into source matches, zero runs and new bytes. `base` is the offset of
    /// `data` in its content: blocks are looked up on the content's 1 KiB grid, where a
    /// filesystem keeps its file data, whatever part of the content `data` is.
    pub fn plan(&self, data: &[u8], base: u64) -> Vec<Piece> {
        let mut pieces: Vec<Piece> = Vec::new();
        let mut pos = 0usize;
        // Up to the first grid line: new bytes (zeros are merged later if long enough).
        let head = ((BLOCK as u64 - base % BLOCK as u64) % BLOCK as u64) as usize;
        if head > 0 {
            let head = head.min(data.len());
            push(
                &mut pieces,
                Piece::New {
                    start: 0,
                    len: head as u64,
                },
            );
            pos = head;
        }
        while pos < data.len() {
            let end = (pos + BLOCK).min(data.len());
            let block = &data[pos..end];
            if block.len() == BLOCK {
                if block.iter().all(|&b| b == 0) {
                    // Whole zero blocks only, so that the scan stays on the grid.
                    let mut run_end = end;
                    while run_end + BLOCK <= data.len()
                        && data[run_end..run_end + BLOCK].iter().all(|&b| b == 0)
                    {
                        run_end += BLOCK;
                    }
                    push(
                        &mut pieces,
                        Piece::Zeros {
                            len: (run_end - pos) as u64,
                        },
                    );
                    pos = run_end;
                    continue;
                }
                if let Some(loc) = self.map.get(&block_hash(block)) {
                    let region = &self.regions[loc.region as usize];
                    let off = loc.offset as usize;
                    if region.bytes.get(off..off + BLOCK) == Some(block) && {
                        let room = (data.len() - pos).min(region.bytes.len() - off);
                        room >= MIN_MATCH
                            && data[pos..pos + MIN_MATCH] == region.bytes[off..off + MIN_MATCH]
                    } {
                        // Extend block by block, then byte by byte for a ragged end.
                        let mut len = BLOCK;
                        while pos + len < data.len() && off + len < region.bytes.len() {
                            let step = BLOCK
                                .min(data.len() - pos - len)
                                .min(region.bytes.len() - off - len);
                            if data[pos + len..pos + len + step]
                                == region.bytes[off + len..off + len + step]
                            {
                                len += step;
                            } else {
                                break;
                            }
                        }
                        push(
                            &mut pieces,
                            Piece::Source {
                                region: region.id,
                                offset: loc.offset,
                                len: len as u64,
                            },
                        );
                        pos += len;
                        continue;
                    }
                }
            }
            push(
                &mut pieces,
                Piece::New {
                    start: pos as u64,
                    len: block.len() as u64,
                },
            );
            pos = end;
        }
        demote_short_zero_runs(pieces)
    }
}

/// Appends a piece, merging it with the previous one when they continue each other.
fn push(pieces: &mut Vec<Piece>, piece: Piece) {
    match (pieces.last_mut(), &piece) {
        (Some(Piece::New { start, len }), Piece::New { start: s2, len: l2 })
            if *start + *len == *s2 =>
        {
            *len += l2;
        }
        (Some(Piece::Zeros { len }), Piece::Zeros { len: l2 }) => *len += l2,
        (
            Some(Piece::Source {
                region,
                offset,
                len,
            }),
            Piece::Source {
                region: r2,
                offset: o2,
                len: l2,
            },
        ) if region == r2 && *offset + *len == *o2 => *len += l2,
        _ => pieces.push(piece),
    }
}

/// Source matches shorter than `max_len` that touch new bytes become new bytes, merged with
/// their neighbours: for a compressor that sees the old version of the data as its basis they
/// cost a few bytes, where a match of its own costs recipes.
/// `allowed(region, offset, len, start)` says whether the compressor's basis will hold the
/// match (`len` bytes at `offset` of `region`, at `start` of the data).
pub fn absorb_short_matches(
    pieces: Vec<Piece>,
    max_len: u64,
    allowed: impl Fn(usize, u64, u64, u64) -> bool,
) -> Vec<Piece> {
    let is_new = |p: Option<&Piece>| matches!(p, Some(Piece::New { .. }));
    let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
    let mut pos = 0u64;
    for (k, p) in pieces.iter().enumerate() {
        let len = p.len();
        let absorb = match *p {
            Piece::Source { region, offset, .. } => {
                len < max_len
                    && (is_new(out.last()) || is_new(pieces.get(k + 1)))
                    && allowed(region, offset, len, pos)
            }
            _ => false,
        };
        push(
            &mut out,
            if absorb {
                Piece::New { start: pos, len }
            } else {
                p.clone()
            },
        );
        pos += len;
    }
    out
}

/// Zero runs below [`MIN_ZERO_RUN`] become new bytes (they compress to almost nothing there),
/// merged with their neighbours.
fn demote_short_zero_runs(pieces: Vec<Piece>) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
    let mut pos = 0u64;
    for p in pieces {
        let len = p.len();
        let p = match p {
            Piece::Zeros { len } if (len as usize) < MIN_ZERO_RUN => Piece::New { start: pos, len },
            other => other,
        };
        push(&mut out, p);
        pos += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn rebuild(data_len: usize, pieces: &[Piece], regions: &[&[u8]], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data_len);
        for p in pieces {
            match *p {
                Piece::Source {
                    region,
                    offset,
                    len,
                } => out
                    .extend_from_slice(&regions[region][offset as usize..(offset + len) as usize]),
                Piece::Zeros { len } => out.extend(std::iter::repeat_n(0u8, len as usize)),
                Piece::New { start, len } => {
                    out.extend_from_slice(&data[start as usize..(start + len) as usize])
                }
            }
        }
        out
    }

    #[test]
    fn finds_moved_blocks_zero_runs_and_new_bytes() {
        let a = noise(40 * MIN_MATCH, 1);
        let b = noise(10 * MIN_MATCH, 2);
        let mut target = Vec::new();
        target.extend_from_slice(&a[20 * MIN_MATCH..30 * MIN_MATCH]); // moved
        target.extend(std::iter::repeat_n(0u8, 20 * MIN_MATCH)); // long zero run
        target.extend_from_slice(&noise(3 * MIN_MATCH, 9)); // new
        target.extend(std::iter::repeat_n(0u8, MIN_MATCH)); // short zero run: becomes new bytes
        target.extend_from_slice(&b[BLOCK..5 * MIN_MATCH + 17]); // another region, 1 KiB-aligned, ragged end
        let idx = BlockIndex::new(vec![
            Region { id: 0, bytes: &a },
            Region { id: 1, bytes: &b },
        ]);
        let pieces = idx.plan(&target, 0);
        assert_eq!(rebuild(target.len(), &pieces, &[&a, &b], &target), target);
        assert_eq!(
            pieces[0],
            Piece::Source {
                region: 0,
                offset: (20 * MIN_MATCH) as u64,
                len: (10 * MIN_MATCH) as u64
            }
        );
        assert_eq!(
            pieces[1],
            Piece::Zeros {
                len: (20 * MIN_MATCH) as u64
            }
        );
        assert!(matches!(pieces[2], Piece::New { .. }), "{pieces:?}");
        assert!(pieces.iter().any(
            |p| matches!(p, Piece::Source { region: 1, offset, .. } if *offset == BLOCK as u64)
        ));
        let new: u64 = pieces
            .iter()
            .filter(|p| matches!(p, Piece::New { .. }))
            .map(Piece::len)
            .sum();
        assert!(
            new <= (4 * MIN_MATCH + 100 + BLOCK) as u64,
            "new bytes {new}"
        );
    }

    /// File data sits on the content's 1 KiB grid: a slice of a content that starts off the
    /// grid, or odd-length runs of zeros before the data, must not hide it.
    #[test]
    fn blocks_are_looked_up_on_the_contents_grid() {
        let a = noise(16 * BLOCK, 3);
        // In the content: 700 zero bytes, 300 new bytes, then a's blocks 4.. from offset 1024.
        let mut content = vec![0u8; 700];
        content.extend_from_slice(&noise(300 + 24, 4)[..324]);
        content.extend_from_slice(&a[4 * BLOCK..12 * BLOCK]);
        let idx = BlockIndex::new(vec![Region { id: 0, bytes: &a }]);
        let whole = idx.plan(&content, 0);
        assert_eq!(rebuild(content.len(), &whole, &[&a], &content), content);
        assert!(
            whole.contains(&Piece::Source {
                region: 0,
                offset: 4 * BLOCK as u64,
                len: 8 * BLOCK as u64
            }),
            "{whole:?}"
        );
        // The same content planned from byte 500 on (base 500): same match.
        let part = idx.plan(&content[500..], 500);
        assert_eq!(
            rebuild(content.len() - 500, &part, &[&a], &content[500..]),
            &content[500..]
        );
        assert!(
            part.contains(&Piece::Source {
                region: 0,
                offset: 4 * BLOCK as u64,
                len: 8 * BLOCK as u64
            }),
            "{part:?}"
        );
    }

    #[test]
    fn empty_and_tiny_inputs() {
        let idx = BlockIndex::new(vec![]);
        assert!(idx.plan(&[], 0).is_empty());
        assert_eq!(idx.plan(b"abc", 0), vec![Piece::New { start: 0, len: 3 }]);
    }
}
