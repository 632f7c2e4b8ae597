//! Stage 3, planning: which target bytes come from where. The target archive is walked in
//! order: cpio framing, payloads identical to a source payload, compressed payloads re-created
//! on the device from their content (`members`), and, inside filesystem contents, changed gzip
//! files and changed executables (`files`), then block matching with references into the old
//! versions (`bytes`). What the source does not hold goes to new-bytes streams: the plain one
//! (stream 0, a temp file) and segments (streams 1.., each with a basis of old bytes). The
//! result, a [`Plan`], holds the recipes decided so far and the chains still waiting for the
//! streams' items (made in the `encode` and `write` stages).

mod bytes;
mod files;
mod members;
mod recheck;

pub(crate) use members::{prefetch_contents, Pending};
pub(crate) use recheck::Recheck;

use std::io::{self, Write};

use delta::{DeltaBuilder, Item, Recipe};
use memmap2::Mmap;

use crate::content::{Check, Kind};
use crate::inputs::{map_file, Inputs};
use crate::items::{item_of, zeros_item};
use crate::reference::Ranges;
use crate::source::{Derivation, Sources};
use crate::{io_at, Error, Options, PartKind, Stats};

/// A part of a chain being planned.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part {
    Item(Item),
    /// `[offset, offset + len)` of new-bytes stream `stream`.
    New {
        stream: usize,
        offset: u64,
        len: u64,
    },
}

/// Largest basis + new bytes of one segment: the device's zstd window and basis must fit its
/// decoder memory budget (48 MiB by default) with room to spare.
pub const SEGMENT_LIMIT: u64 = 8 << 20;

// How a part of the target was encoded ([`crate::ItemCost::how`]; reports tell them apart by
// these values).
pub const HOW_NEW: &str = "new bytes, compressed";
pub const HOW_ZSTD_BASIS: &str = "zstd against the old version";
pub const HOW_GZIP: &str = "gzip re-created from its text, diffed against the old text";
pub const HOW_GZIP_NEW: &str = "new gzip file re-created from its text, compressed";
pub const HOW_BSDIFF: &str = "bsdiff patch of the old version";
pub const HOW_EXE: &str = "executable patch of the old version";
/// [`HOW_NEW`] when the plain stream was compressed after the x86 filter (set by the report).
pub const HOW_NEW_X86: &str = "new bytes, x86 filter, compressed";

/// New bytes with references go to segments in pieces of at most this size.
const REFERENCED_CHUNK: u64 = 1 << 20;

/// Data of new files (no old version) at least this long goes to the plain new-bytes stream
/// even when it sits between changed bytes (shorter runs stay with their neighbours: a piece
/// of its own costs two recipes).
const NEW_FILE_SPAN: u64 = 16 * 1024;

/// Matches shorter than this next to referenced new bytes become new bytes themselves.
const ABSORB_MATCH: u64 = 256 * 1024;

/// New bytes compressed against a basis of old bytes (their old versions).
pub(crate) struct Segment {
    pub data: Vec<u8>,
    pub basis: Basis,
    pub basis_len: u64,
    /// Whether it holds metadata (bytes no file owns) rather than file data.
    pub metadata: bool,
}

/// What a segment's basis is made of, in order.
pub(crate) enum Basis {
    /// Ranges of source content `source`.
    Source { source: usize, ranges: Ranges },
    /// Items the plan makes otherwise (uncompressed contents of old gzip files), with their
    /// bytes.
    Items(Vec<(Item, Vec<u8>)>),
}

/// A part of the target whose cost is settled once the streams are compressed.
pub(crate) struct Cost {
    pub member: String,
    pub path: Option<String>,
    pub kind: PartKind,
    pub how: &'static str,
    /// Bytes it put into new-bytes stream `stream`.
    pub stream: Option<usize>,
    pub bytes: u64,
    /// Delta bytes known already (a patch).
    pub fixed: u64,
}

/// State of one run's planning; the `encode` and `write` stages go on adding recipes to its
/// builder.
pub(crate) struct Planner<'a> {
    options: &'a Options,
    pub builder: DeltaBuilder,
    source_item: Item,
    sources: &'a Sources<'a>,
    /// Sources whose recipes are in the builder.
    used: Vec<bool>,
    new_file: io::BufWriter<std::fs::File>,
    new_len: u64,
    /// Streams 1.. (stream 0 is `new_file`).
    pub segments: Vec<Segment>,
    /// Patches (bsdiff patches, zstd frames of executable patches) for the inline assets.
    pub patches: Vec<Vec<u8>>,
    /// The target member being planned, and what its parts cost.
    member: String,
    pub costs: Vec<Cost>,
    pub stats: Stats,
    /// Full comparisons of the re-created payloads taken on a prefix check, running.
    pub rechecks: Vec<Recheck>,
}

/// What planning decided.
pub(crate) struct Plan<'a> {
    pub planner: Planner<'a>,
    /// Chains to finish once every new-bytes stream has its item: each result and its parts,
    /// the whole target last.
    pub pending: Vec<Pending>,
    /// The plain new-bytes stream (stream 0), written out and mapped (`None`: empty).
    pub new_bytes: Option<Mmap>,
    /// Its temp file, removed when this is dropped (or the process is interrupted).
    pub new_file: (tempfile::NamedTempFile, cleanup::Registered),
}

/// Plans the target of `inputs` against `sources`. `check` says how much of a re-created
/// payload must be compared before it is taken as re-creatable (see [`Check`]).
pub(crate) fn plan<'a>(
    inputs: &Inputs,
    target: &std::path::Path,
    sources: &'a Sources<'a>,
    options: &'a Options,
    check: Check,
) -> Result<Plan<'a>, Error> {
    let (new_tmp, registered) = cleanup::temp_file(&options.work_dir, ".new-bytes-", ".tmp")
        .map_err(io_at("cannot create a temp file", &options.work_dir))?;
    let mut planner = Planner {
        options,
        builder: DeltaBuilder::new(inputs.target_item, inputs.source_item, options.profile),
        source_item: inputs.source_item,
        used: vec![false; sources.data.len()],
        sources,
        new_file: io::BufWriter::new(
            new_tmp
                .reopen()
                .map_err(io_at("cannot open a temp file", new_tmp.path()))?,
        ),
        new_len: 0,
        segments: Vec::new(),
        patches: Vec::new(),
        member: String::new(),
        costs: Vec::new(),
        stats: Stats::default(),
        rechecks: Vec::new(),
    };
    let pending = members::plan_members(&mut planner, inputs, target, check)?;
    planner
        .new_file
        .flush()
        .map_err(io_at("cannot write new bytes", &options.work_dir))?;
    let new_bytes = map_file(new_tmp.path())?;
    Ok(Plan {
        planner,
        pending,
        new_bytes,
        new_file: (new_tmp, registered),
    })
}

impl<'a> Planner<'a> {
    pub(crate) fn source_bytes(&self, i: usize) -> &'a [u8] {
        self.sources.bytes(i)
    }

    /// Makes sure the builder can produce source item `i`; returns it.
    pub(crate) fn use_source(&mut self, i: usize) -> Result<Item, Error> {
        let item = self.sources.data[i].item;
        if self.used[i] {
            return Ok(item);
        }
        self.used[i] = true;
        match self.sources.data[i].how {
            Derivation::Slice { offset } => {
                if item != self.source_item {
                    self.builder.add_recipe(
                        item,
                        Recipe::Slice {
                            offset,
                            whole: self.source_item,
                        },
                    )?;
                }
            }
            Derivation::Decompress { kind, from } => {
                let compressed = self.use_source(from)?;
                let recipe = match kind {
                    Kind::Gzip => Recipe::ZlibDecompression {
                        container: codec::zlib::Container::Gzip,
                        compressed,
                    },
                    Kind::Zstd => Recipe::ZstdDecompression {
                        compressed,
                        basis: None,
                    },
                };
                self.builder.add_recipe(item, recipe)?;
            }
        }
        Ok(item)
    }

    /// The item of `len` bytes at `offset` of source `i`, with its recipe.
    pub(crate) fn source_piece(&mut self, i: usize, offset: u64, len: u64) -> Result<Item, Error> {
        if offset == 0 && len == self.sources.data[i].item.length() {
            return self.use_source(i);
        }
        let bytes = &self.source_bytes(i)[offset as usize..(offset + len) as usize];
        let item = item_of(bytes);
        // Slices of source payloads come straight from the source file.
        let recipe = match self.sources.data[i].how {
            Derivation::Slice { offset: base } => Recipe::Slice {
                offset: base + offset,
                whole: self.source_item,
            },
            Derivation::Decompress { .. } => Recipe::Slice {
                offset,
                whole: self.use_source(i)?,
            },
        };
        self.builder.add_recipe(item, recipe)?;
        Ok(item)
    }

    fn push_new(&mut self, bytes: &[u8]) -> Result<Part, Error> {
        let part = Part::New {
            stream: 0,
            offset: self.new_len,
            len: bytes.len() as u64,
        };
        self.new_file
            .write_all(bytes)
            .map_err(io_at("cannot write new bytes", &self.options.work_dir))?;
        self.new_len += bytes.len() as u64;
        self.stats.new_bytes += bytes.len() as u64;
        Ok(part)
    }

    /// Records that `len` bytes put into new-bytes stream `stream` belong to `path` (a part
    /// of kind `kind`) of the current member.
    fn note_cost(
        &mut self,
        (kind, path): (PartKind, Option<&str>),
        how: &'static str,
        stream: usize,
        len: u64,
    ) {
        if len == 0 {
            return;
        }
        self.costs.push(Cost {
            member: self.member.clone(),
            path: path.map(str::to_string),
            kind,
            how,
            stream: Some(stream),
            bytes: len,
            fixed: 0,
        });
    }

    /// Plain new bytes (headers, opaque payloads: `kind`) of the current member, with their
    /// cost.
    fn push_new_noted(&mut self, bytes: &[u8], kind: PartKind) -> Result<Part, Error> {
        let part = self.push_new(bytes)?;
        self.note_cost((kind, None), HOW_NEW, 0, bytes.len() as u64);
        Ok(part)
    }

    /// The item of `len` zero bytes, with its recipe.
    fn zeros(&mut self, len: u64) -> Result<Item, Error> {
        let item = zeros_item(len);
        self.builder.add_recipe(item, Recipe::AllZeros)?;
        Ok(item)
    }
}

/// Basis ranges closer than this are joined (with the bytes between them): every range costs
/// a recipe (~150 bytes in the delta), the bytes between cost nothing in the delta.
const BASIS_JOIN_GAP: u64 = 64 * 1024;

/// Adds `r` to a segment's basis ranges; returns how many bytes the basis grew by.
pub(crate) fn add_basis_range(ranges: &mut Ranges, r: (u64, u64)) -> u64 {
    let end = r.0 + r.1;
    if ranges.iter().any(|&(o, l)| o <= r.0 && end <= o + l) {
        return 0;
    }
    if let Some(last) = ranges.last_mut() {
        let last_end = last.0 + last.1;
        if last.0 <= r.0 && r.0 <= last_end + BASIS_JOIN_GAP {
            let grown = end.max(last_end) - last_end;
            last.1 += grown;
            return grown;
        }
    }
    ranges.push(r);
    r.1
}

/// Appends a part, merging consecutive pieces of the same new-bytes stream.
pub(crate) fn push_part(parts: &mut Vec<Part>, part: Part) {
    if let (
        Some(Part::New {
            stream,
            offset,
            len,
        }),
        Part::New {
            stream: s2,
            offset: o2,
            len: l2,
        },
    ) = (parts.last_mut(), part)
    {
        if *stream == s2 && *offset + *len == o2 {
            *len += l2;
            return;
        }
    }
    parts.push(part);
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use delta::Profile;

    use super::*;
    use crate::{inputs, source};

    /// Release `n` of the sample pair, recompressed for the gzip profile into `dir`.
    fn release(n: u32, dir: &Path) -> PathBuf {
        let input =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../testdata/swu/release-v{n}.swu"));
        let out = dir.join(format!("v{n}.swu"));
        let options = recompress::Options {
            profile: recompress::Profile::gzip(),
            drop_signature: true,
            ..recompress::Options::default()
        };
        recompress::recompress(&input, &out, &options).unwrap();
        out
    }

    fn part_len(part: &Part) -> u64 {
        match *part {
            Part::Item(item) => item.length(),
            Part::New { len, .. } => len,
        }
    }

    /// The planning stage alone, on the sample release pair: no delta is written, and the plan
    /// accounts for every target byte.
    #[test]
    fn plans_a_release_pair_without_writing_a_delta() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::new(Profile::Gzip, dir.path().join("work"));
        let (s, t) = (release(1, dir.path()), release(2, dir.path()));
        let inputs = inputs::open(&s, &t, &options).unwrap();
        let contents = source::decompress(&inputs, &s, &options).unwrap();
        let sources = contents.sources(&inputs.source_map);
        let plan = plan(&inputs, &t, &sources, &options, Check::Full).unwrap();

        // The whole target is the last chain, and its parts add up to it.
        let (whole, parts) = plan.pending.last().unwrap();
        assert_eq!(*whole, inputs.target_item);
        assert_eq!(
            parts.iter().map(part_len).sum::<u64>(),
            inputs.target_item.length()
        );
        // The rootfs is re-created from its content, which is planned as its own chain.
        let stats = &plan.planner.stats;
        assert_eq!(stats.recreated.len(), 1, "{stats:?}");
        let content_len: u64 = sources
            .data
            .iter()
            .filter(|s| matches!(s.how, Derivation::Decompress { .. }))
            .map(|s| s.item.length())
            .sum();
        assert!(content_len > 0);
        assert!(stats.reused_bytes > 0, "{stats:?}");
        // Every new byte is in a stream (plain or segment) or in a patched file.
        let streamed: u64 = plan.new_bytes.as_deref().map_or(0, |b| b.len() as u64)
            + plan
                .planner
                .segments
                .iter()
                .map(|s| s.data.len() as u64)
                .sum::<u64>();
        assert_eq!(streamed + stats.patched_bytes, stats.new_bytes);
        // File data never joins a metadata segment (bytes no file owns do join file data
        // when a run of new bytes holds both, as on this small image).
        let segments = &plan.planner.segments;
        assert!(
            segments.iter().any(|s| !s.metadata),
            "the pair changes files"
        );
        for c in &plan.planner.costs {
            let Some(k) = c.stream.filter(|&k| k > 0) else {
                continue;
            };
            if segments[k - 1].metadata {
                assert_eq!(c.kind, PartKind::Metadata, "{:?} in segment {k}", c.path);
            }
        }
        // Nothing was written beside the inputs but the working folder.
        let mut written: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        written.sort();
        assert_eq!(written, ["v1.swu", "v2.swu", "work"]);
    }
}
