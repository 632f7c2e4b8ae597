//! Delta generation: from a source SWU and a (recompressed) target SWU to an ADU diff that
//! rebuilds the target byte for byte, verified by applying it.
//!
//! The target archive is decomposed into cpio framing and member payloads. Each payload is
//! taken, in order of preference, from:
//!
//! 1. an identical payload of the source (a slice of the source file);
//! 2. its decompressed content compressed again on the device (`zlib_compression`, or
//!    diffgen's `zstd_compression` in the zstd profile) when the parameters that made it can be
//!    found ([`content::reproduce`]); the content itself then comes from 3;
//! 3. block matching ([`blocks`]) against all source data (uncompressed payloads and the
//!    decompressed contents of compressed ones): matched runs are slices of source items,
//!    long zero runs are `all_zeros`, and everything else is new bytes.
//!
//! New bytes (framing included) form one stream, compressed into the delta: zstd level 19 in
//! the inline assets for the zstd profile, the deflated remainder for the gzip profile (ADU's
//! stock applier was seen to crash on basis-less zstd frames). The result is applied to the
//! source before it is published; only a verified delta is written, atomically.
//!
//! This first planner works on bytes and blocks. Filesystem-aware planning (per-file deltas
//! against old versions, metadata against metadata) builds on the `ext4` crate next.

pub mod blocks;
pub mod content;
pub mod inner_gz;
pub mod inner_patch;
pub mod reference;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blocks::{BlockIndex, Piece, Region};
use content::{Check, Kind, Recreate};
use delta::{DeltaBuilder, Item, Profile, Recipe};
use memmap2::Mmap;
use rayon::prelude::*;
use reference::{Layout, Ranges, ReferenceFinder, Stretch};
use sha2::{Digest, Sha256};
use swu::Swu;

/// What to make and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// `Gzip`: only what ADU's stock applier accepts. `Extended`: diffgen's applier.
    pub profile: Profile,
    /// Folder for decompressed contents (a cache keyed by payload hash) and temp files.
    pub work_dir: PathBuf,
    /// Apply the delta before publishing it (on by default; turning it off is for benchmarks).
    pub verify: bool,
    /// zstd level of the new-bytes stream (zstd profile).
    pub new_data_level: i32,
    /// Bound on the planner's working memory for work it can size or defer (bsdiff
    /// evaluations in parallel, their suffix arrays). Mapped input and content files are not
    /// counted: the kernel pages them in and out.
    pub memory_limit: u64,
    /// Told when a stage starts or advances (nothing by default).
    pub progress: Progress,
    /// Largest decompressed payload content the planner takes (besides the working folder's
    /// free space, which always bounds it): a decompression bomb stops with an error.
    pub max_content: u64,
}

/// A progress callback: `(stage, done, total)`, where `total` is 0 when the amount of work is
/// not known. Stages: "reading the inputs", "decompressing the source", "indexing the
/// source", "planning" (target bytes), "encoding" (segments), "writing", "verifying".
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<ReportFn>>);

/// What [`Progress`] calls.
type ReportFn = dyn Fn(&str, u64, u64) + Send + Sync;

impl Progress {
    pub fn new(report: impl Fn(&str, u64, u64) + Send + Sync + 'static) -> Self {
        Progress(Some(Arc::new(report)))
    }

    fn report(&self, stage: &str, done: u64, total: u64) {
        if let Some(f) = &self.0 {
            f(stage, done, total);
        }
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(reporting)"
        } else {
            "Progress(none)"
        })
    }
}

/// Default [`Options::memory_limit`].
pub const DEFAULT_MEMORY_LIMIT: u64 = 2 << 30;

impl Options {
    pub fn new(profile: Profile, work_dir: PathBuf) -> Self {
        Options {
            profile,
            work_dir,
            verify: true,
            new_data_level: 19,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            progress: Progress::default(),
            max_content: u64::MAX,
        }
    }
}

/// Where the target's bytes came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes taken from the source (payloads and contents, counted at the level they were used).
    pub reused_bytes: u64,
    pub zero_bytes: u64,
    /// New bytes before and after compression.
    pub new_bytes: u64,
    pub new_compressed_bytes: u64,
    /// Payloads rebuilt by compressing their content on the device: (member, how).
    pub recreated: Vec<(String, String)>,
    /// Payloads identical to a source payload.
    pub identical_payloads: Vec<String>,
    pub recipes: usize,
    /// New bytes compressed against old versions (in segments with a basis).
    pub referenced_new_bytes: u64,
    pub segments: usize,
    /// gzip files inside target filesystems re-created on the device from their content.
    pub inner_gz_files: usize,
    /// Their compressed size in all.
    pub inner_gz_bytes: u64,
    /// Of those, the files re-created with GNU gzip's deflate (zlib makes other bytes).
    pub inner_gz_gnu_files: usize,
    /// Bytes of the plain new-bytes stream compressed after the x86 branch filter (0: not).
    pub bcj_filtered_bytes: u64,
    /// Changed files inside target filesystems rebuilt with a bsdiff patch, their size, the
    /// patches' size, and what the patches saved against zstd with the old version as basis.
    pub patched_files: usize,
    pub patched_bytes: u64,
    pub patch_bytes: u64,
    pub patch_saved_bytes: u64,
    /// Things the log should say (contents not opened as filesystems, and why).
    pub notes: Vec<String>,
    /// Every changed executable inside target filesystems: `member: path: encoding chosen
    /// (bsdiff and zstd sizes, or why bsdiff was not evaluated)`, for the log.
    pub executables: Vec<String>,
    /// The parts of the target that cost the most in the delta, most expensive first (at most
    /// [`TOP_ITEMS`]).
    pub most_expensive: Vec<ItemCost>,
}

/// How many entries [`Stats::most_expensive`] keeps.
pub const TOP_ITEMS: usize = 20;

/// What one part of the target (a file inside a filesystem image, or the other bytes of a
/// payload) costs in the delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemCost {
    /// The target member it belongs to.
    pub member: String,
    /// The file's path inside the member's filesystem; `None` for filesystem metadata, cpio
    /// headers and payloads that are not filesystems.
    pub path: Option<String>,
    /// How it was encoded.
    pub how: &'static str,
    /// Target bytes that were not taken from the source as they are.
    pub changed_bytes: u64,
    /// Its share of the delta: exact for bsdiff patches; for bytes compressed together with
    /// others, the compressed stream's size in proportion to its bytes.
    pub delta_bytes: u64,
}

/// What [`create`] did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub source: Item,
    pub target: Item,
    pub delta_len: u64,
    pub delta_sha256: [u8; 32],
    pub stats: Stats,
    pub verified: bool,
    /// Wall time per stage.
    pub timings: Vec<(&'static str, Duration)>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Swu(#[from] swu::Error),
    #[error("the target would be rejected by SWUpdate: {0}")]
    BadTarget(String),
    #[error("{what}: {source} ({})", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing the delta: {0}")]
    Write(#[from] delta::WriteError),
    #[error("the delta does not rebuild the target: {0}")]
    Verify(String),
    #[error("the delta ({delta} bytes) is not smaller than the target ({target} bytes); ship the full update instead")]
    NotSmaller { delta: u64, target: u64 },
    #[error("the target is empty")]
    EmptyTarget,
    #[error("cannot decompress the {side} payload {member}: {source} ({})", work.display())]
    Decompress {
        member: String,
        side: &'static str,
        /// The working folder the content goes to.
        work: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_at<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> Error + 'p {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn map_file(path: &Path) -> Result<Option<Mmap>, Error> {
    let f = File::open(path).map_err(io_at("cannot read", path))?;
    if f.metadata().map_err(io_at("cannot read", path))?.len() == 0 {
        return Ok(None);
    }
    // SAFETY: the files are inputs or our own temp files; nobody truncates them while mapped
    // (a concurrent truncation of an input would be a fault the OS reports as SIGBUS).
    let m = unsafe { Mmap::map(&f) }.map_err(io_at("cannot map", path))?;
    Ok(Some(m))
}

fn sha256_of(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn item_of(data: &[u8]) -> Item {
    Item::sha256(data.len() as u64, sha256_of(data))
}

/// Streams at least this large get a compressibility trial first (see [`compress_new_bytes`]).
const TRIAL_MIN: usize = 16 << 10;
/// Level for streams whose bytes do not compress by themselves.
const INCOMPRESSIBLE_LEVEL: i32 = 9;

/// The frame of `job` at `level`, or at [`INCOMPRESSIBLE_LEVEL`] when the bytes do not compress
/// by themselves (zstd level 1 without the basis saves under 5 %: random or already compressed
/// data). Level 19's search then gains nothing on the literals (a few tenths of a percent on
/// the large-binary churn pair) but takes six times as long, and the matches against the basis
/// are found at any level by long-distance matching.
fn compress_new_bytes(job: &EncodeJob, basis: &[u8], level: i32) -> io::Result<Vec<u8>> {
    let mut level = level;
    if job.data.len() >= TRIAL_MIN && level > INCOMPRESSIBLE_LEVEL {
        let trial = codec::zstd::compress_with_prefix(job.data, &[], 1, job.window_log)?;
        if trial.len() as u64 * 100 >= job.data.len() as u64 * 95 {
            level = INCOMPRESSIBLE_LEVEL;
        }
    }
    codec::zstd::compress_with_prefix(job.data, basis, level, job.window_log)
}

/// One zstd frame to make in the encoding stage: a new-bytes stream and its basis.
struct EncodeJob<'d> {
    /// 0 for the plain stream, k + 1 for segment k.
    stream: usize,
    data: &'d [u8],
    basis: JobBasis,
    window_log: u32,
}

/// Where a frame's basis bytes come from, gathered only when its job runs.
enum JobBasis {
    /// `(region, offset, length)` ranges of the source data, in order.
    Regions(Vec<(usize, u64, u64)>),
    /// The items of segment k's [`Basis::Items`].
    Items(usize),
}

impl EncodeJob<'_> {
    fn basis_len(&self, segments: &[Segment]) -> usize {
        match &self.basis {
            JobBasis::Regions(r) => r.iter().map(|&(_, _, l)| l as usize).sum(),
            JobBasis::Items(k) => segments[*k].basis_len as usize,
        }
    }

    fn gather_basis(&self, region_bytes: &[(usize, &[u8])], segments: &[Segment]) -> Vec<u8> {
        let mut basis = Vec::with_capacity(self.basis_len(segments));
        match &self.basis {
            JobBasis::Regions(ranges) => {
                for &(region, off, len) in ranges {
                    basis.extend_from_slice(
                        &region_bytes[region].1[off as usize..(off + len) as usize],
                    );
                }
            }
            JobBasis::Items(k) => {
                if let Basis::Items(items) = &segments[*k].basis {
                    for (_, bytes) in items {
                        basis.extend_from_slice(bytes);
                    }
                }
            }
        }
        basis
    }
}

/// The item of `len` zero bytes.
fn zeros_item(len: u64) -> Item {
    let block = [0u8; 64 * 1024];
    let mut sha = Sha256::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        sha.update(&block[..n]);
        left -= n as u64;
    }
    Item::sha256(len, sha.finalize().into())
}

/// How a source item is made from the source file.
#[derive(Debug, Clone, Copy)]
enum Derivation {
    /// Bytes `[offset, offset + len)` of the source file.
    Slice { offset: u64 },
    /// Decompression of another source item.
    Decompress { kind: Kind, from: usize },
}

struct SourceData<'a> {
    /// The source member it belongs to.
    member: String,
    item: Item,
    how: Derivation,
    /// The bytes: a range of the mapped source file, or a mapped content file.
    bytes: &'a [u8],
}

/// A part of a chain being planned.
#[derive(Debug, Clone, Copy)]
enum Part {
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

const HOW_NEW: &str = "new bytes, compressed";
const HOW_ZSTD_BASIS: &str = "zstd against the old version";
const HOW_GZIP: &str = "gzip re-created from its text, diffed against the old text";
const HOW_GZIP_NEW: &str = "new gzip file re-created from its text, compressed";
const HOW_BSDIFF: &str = "bsdiff patch of the old version";

/// Window of the new-bytes stream's zstd frame (16 MiB: the device reserves
/// min(window, content) from its 48 MiB budget).
const NEW_STREAM_WINDOW_LOG: u32 = 24;
/// Smallest plain new-bytes stream the x86 branch filter is tried on.
const BCJ_MIN_STREAM: usize = 64 * 1024;
/// Bytes of the token basis of the new-bytes stream in the gzip profile.
const TOKEN_BASIS: usize = 4096;
/// Window limit of segment frames (their basis plus data is at most [`SEGMENT_LIMIT`]).
pub(crate) const SEGMENT_WINDOW_LOG: u32 = 23;

/// New bytes with references go to segments in pieces of at most this size.
const REFERENCED_CHUNK: u64 = 1 << 20;

/// Data of new files (no old version) at least this long goes to the plain new-bytes stream
/// even when it sits between changed bytes (shorter runs stay with their neighbours: a piece
/// of its own costs two recipes).
const NEW_FILE_SPAN: u64 = 16 * 1024;

/// Matches shorter than this next to referenced new bytes become new bytes themselves.
const ABSORB_MATCH: u64 = 256 * 1024;

/// New bytes compressed against a basis of old bytes (their old versions).
struct Segment {
    data: Vec<u8>,
    basis: Basis,
    basis_len: u64,
}

/// What a segment's basis is made of, in order.
enum Basis {
    /// Ranges of source content `source`.
    Source { source: usize, ranges: Ranges },
    /// Items the plan makes otherwise (uncompressed contents of old gzip files), with their
    /// bytes.
    Items(Vec<(Item, Vec<u8>)>),
}

/// A part of the target whose cost is settled once the streams are compressed.
struct Cost {
    member: String,
    path: Option<String>,
    how: &'static str,
    /// Bytes it put into new-bytes stream `stream`.
    stream: Option<usize>,
    bytes: u64,
    /// Delta bytes known already (a patch).
    fixed: u64,
}

/// State of one run.
struct Planner<'a> {
    options: &'a Options,
    builder: DeltaBuilder,
    source_item: Item,
    sources: Vec<SourceData<'a>>,
    /// Sources whose recipes are in the builder.
    used: Vec<bool>,
    new_file: io::BufWriter<File>,
    new_len: u64,
    /// Streams 1.. (stream 0 is `new_file`).
    segments: Vec<Segment>,
    /// bsdiff patches for the inline assets.
    patches: Vec<Vec<u8>>,
    /// The target member being planned, and what its parts cost.
    member: String,
    costs: Vec<Cost>,
    stats: Stats,
}

impl<'a> Planner<'a> {
    fn source_bytes(&self, i: usize) -> &'a [u8] {
        self.sources[i].bytes
    }

    /// Makes sure the builder can produce source item `i`; returns it.
    fn use_source(&mut self, i: usize) -> Result<Item, Error> {
        let item = self.sources[i].item;
        if self.used[i] {
            return Ok(item);
        }
        self.used[i] = true;
        match self.sources[i].how {
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
    fn source_piece(&mut self, i: usize, offset: u64, len: u64) -> Result<Item, Error> {
        if offset == 0 && len == self.sources[i].item.length() {
            return self.use_source(i);
        }
        let bytes = &self.source_bytes(i)[offset as usize..(offset + len) as usize];
        let item = item_of(bytes);
        // Slices of source payloads come straight from the source file.
        let recipe = match self.sources[i].how {
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

    /// Records that `len` bytes put into new-bytes stream `stream` belong to `path` of the
    /// current member.
    fn note_cost(&mut self, path: Option<&str>, how: &'static str, stream: usize, len: u64) {
        if len == 0 {
            return;
        }
        self.costs.push(Cost {
            member: self.member.clone(),
            path: path.map(str::to_string),
            how,
            stream: Some(stream),
            bytes: len,
            fixed: 0,
        });
    }

    /// Plain new bytes (headers, opaque payloads) of the current member, with their cost.
    fn push_new_noted(&mut self, bytes: &[u8]) -> Result<Part, Error> {
        let part = self.push_new(bytes)?;
        self.note_cost(None, HOW_NEW, 0, bytes.len() as u64);
        Ok(part)
    }

    /// New bytes with references into source content `source`: into the current segment, or
    /// a new one when it would grow past [`SEGMENT_LIMIT`]. Without usable references (or for
    /// runs too large for a segment) they go to the plain stream.
    fn push_referenced(
        &mut self,
        bytes: &[u8],
        source: usize,
        refs: Ranges,
    ) -> Result<Part, Error> {
        let len = bytes.len() as u64;
        let refs_len: u64 = refs.iter().map(|r| r.1).sum();
        if refs_len == 0 || len + refs_len > SEGMENT_LIMIT {
            return self.push_new(bytes);
        }
        let current = self.segments.last().and_then(|s| match &s.basis {
            Basis::Source { source: s0, ranges } if *s0 == source => Some((s, ranges)),
            _ => None,
        });
        // References already in the current segment's basis cost nothing more there.
        let fresh_len: u64 = current.map_or(refs_len, |(_, ranges)| {
            refs.iter()
                .filter(|r| !ranges.contains(r))
                .map(|r| r.1)
                .sum()
        });
        let fits = current.is_some_and(|(s, _)| {
            s.data.len() as u64 + s.basis_len + len + fresh_len <= SEGMENT_LIMIT
        });
        if !fits {
            // A new segment needs all the references, not only those the last one lacked.
            self.segments.push(Segment {
                data: Vec::new(),
                basis: Basis::Source {
                    source,
                    ranges: Ranges::new(),
                },
                basis_len: 0,
            });
        }
        let stream = self.segments.len();
        let seg = self.segments.last_mut().expect("just ensured");
        let offset = seg.data.len() as u64;
        seg.data.extend_from_slice(bytes);
        let Basis::Source { ranges, .. } = &mut seg.basis else {
            unreachable!("the last segment has a source basis")
        };
        for r in refs {
            seg.basis_len += add_basis_range(ranges, r);
        }
        self.stats.new_bytes += len;
        Ok(Part::New {
            stream,
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
            let part = self.push_referenced(chunk, source, refs)?;
            if let Part::New { stream, .. } = part {
                let how = if stream == 0 { HOW_NEW } else { HOW_ZSTD_BASIS };
                for (path, len) in f.owners(base + at, n) {
                    self.note_cost(path, how, stream, len);
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
    fn plan_bytes(
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
                                    self.note_cost(path, HOW_NEW, 0, n);
                                }
                                push_part(out, part);
                                at = span_at + span_len;
                            }
                            self.plan_referenced(bytes, base + start, at, len, f, source, out)?;
                            continue;
                        }
                        None => self.push_new_noted(bytes)?,
                    }
                }
            };
            push_part(out, part);
        }
        Ok(())
    }

    /// Plans `data` with the ranges in `claimed` (sorted `(start, len, item)`, the item making
    /// exactly those bytes) taken as they are and the bytes between them by [`Self::plan_bytes`].
    fn plan_around(
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

    /// Plans the changed gzip files of a target filesystem ([`inner_gz`]): each is re-created
    /// on the device from its content, and the contents are compressed together against the
    /// old versions' contents. Returns the ranges of the target content the files now make
    /// (for [`Self::plan_around`]) and the contents still to be made from the new streams.
    #[allow(clippy::type_complexity)]
    fn plan_inner_gz(
        &mut self,
        source: usize,
        files: Vec<inner_gz::InnerGz>,
    ) -> Result<(Vec<(u64, u64, Item)>, Vec<(Item, Vec<Part>)>), Error> {
        let mut claimed = Vec::new();
        let mut pending = Vec::new();
        for f in files {
            let old_len = f.old.as_ref().map_or(0, |(_, c)| c.len());
            let cost = (f.content.len() + old_len) as u64;
            if f.old.is_some() && cost > SEGMENT_LIMIT / 2 {
                continue; // too large for one segment: planned as plain bytes
            }
            let file_item = item_of(&f.bytes);
            let content_item = item_of(&f.content);
            let recipe = match f.recreate {
                inner_gz::Recreate::Zlib(params) => Recipe::ZlibCompression {
                    container: params.container,
                    level: params.level,
                    uncompressed: content_item,
                },
                inner_gz::Recreate::GnuGzip(level) => Recipe::GnuGzipCompression {
                    level,
                    uncompressed: content_item,
                },
            };
            self.builder.add_recipe(file_item, recipe)?;
            self.claim_file(&f.layout, &f.bytes, file_item, &mut claimed)?;
            self.stats.inner_gz_files += 1;
            self.stats.inner_gz_bytes += f.bytes.len() as u64;
            if matches!(f.recreate, inner_gz::Recreate::GnuGzip(_)) {
                self.stats.inner_gz_gnu_files += 1;
            }
            // Whether the content is made already: by another file's plan (the same text
            // twice), or as the old text in a basis (only the compression changed).
            let made = |planner: &Self, pending: &[(Item, Vec<Part>)]| {
                pending.iter().any(|(i, _)| *i == content_item)
                    || planner.segments.iter().any(|s| match &s.basis {
                        Basis::Items(items) => items.iter().any(|(i, _)| *i == content_item),
                        Basis::Source { .. } => false,
                    })
            };
            let Some((old_layout, old_content)) = f.old else {
                // A new file: its text joins the plain new bytes (with the other new files,
                // whose texts often share much).
                if made(self, &pending) {
                    continue;
                }
                let len = f.content.len() as u64;
                let part = self.push_new(&f.content)?;
                self.note_cost(Some(&f.path), HOW_GZIP_NEW, 0, len);
                pending.push((content_item, vec![part]));
                continue;
            };
            // The old file, then its content on the device.
            let old_item = self.old_file(source, &old_layout)?;
            let old_content_item = item_of(&old_content);
            self.builder.add_recipe(
                old_content_item,
                Recipe::ZlibDecompression {
                    container: codec::zlib::Container::Gzip,
                    compressed: old_item,
                },
            )?;
            if content_item == old_content_item || made(self, &pending) {
                continue;
            }
            // Its content joins the current gzip-content segment, or starts one.
            let len = f.content.len() as u64;
            let fits = self.segments.last().is_some_and(|s| {
                matches!(s.basis, Basis::Items(_))
                    && s.data.len() as u64 + s.basis_len + cost <= SEGMENT_LIMIT
            });
            if !fits {
                self.segments.push(Segment {
                    data: Vec::new(),
                    basis: Basis::Items(Vec::new()),
                    basis_len: 0,
                });
            }
            let stream = self.segments.len();
            let seg = self.segments.last_mut().expect("just ensured");
            let offset = seg.data.len() as u64;
            seg.data.extend_from_slice(&f.content);
            seg.basis_len += old_content.len() as u64;
            if let Basis::Items(items) = &mut seg.basis {
                items.push((old_content_item, old_content));
            }
            self.stats.new_bytes += len;
            self.note_cost(Some(&f.path), HOW_GZIP, stream, len);
            pending.push((
                content_item,
                vec![Part::New {
                    stream,
                    offset,
                    len,
                }],
            ));
        }
        claimed.sort_unstable_by_key(|c| c.0);
        Ok((claimed, pending))
    }

    /// Plans the changed executables that bsdiff patches better than zstd ([`inner_patch`]);
    /// returns the ranges of the target content they now make.
    fn plan_inner_patches(
        &mut self,
        source: usize,
        files: Vec<inner_patch::InnerPatch>,
    ) -> Result<Vec<(u64, u64, Item)>, Error> {
        let mut claimed = Vec::new();
        for f in files {
            let old_item = self.old_file(source, &f.old_layout)?;
            let file_item = item_of(&f.bytes);
            let patch_item = item_of(&f.patch);
            self.builder.add_recipe(
                file_item,
                Recipe::BspatchDecompression {
                    patch: patch_item,
                    old: old_item,
                },
            )?;
            self.claim_file(&f.layout, &f.bytes, file_item, &mut claimed)?;
            self.stats.patched_files += 1;
            self.stats.patched_bytes += f.bytes.len() as u64;
            self.stats.patch_bytes += f.patch.len() as u64;
            self.stats.patch_saved_bytes += (f.zstd_len - f.patch.len()) as u64;
            self.stats.new_bytes += f.bytes.len() as u64;
            self.costs.push(Cost {
                member: self.member.clone(),
                path: Some(f.path.clone()),
                how: HOW_BSDIFF,
                stream: None,
                bytes: f.bytes.len() as u64,
                fixed: f.patch.len() as u64,
            });
            self.patches.push(f.patch);
        }
        Ok(claimed)
    }

    /// The item of an old file laid out in source content `source`, with its recipes (its
    /// zeros from `all_zeros`).
    fn old_file(&mut self, source: usize, layout: &Layout) -> Result<Item, Error> {
        let mut parts = Vec::with_capacity(layout.len());
        for stretch in layout {
            parts.push(match *stretch {
                Stretch::Data { offset, len } => self.source_piece(source, offset, len)?,
                Stretch::Zeros(len) => self.zeros(len)?,
            });
        }
        Ok(match parts.as_slice() {
            [one] => *one,
            _ => {
                let bytes = reference::gather_file(self.source_bytes(source), layout);
                let item = item_of(&bytes);
                self.builder.add_recipe(item, Recipe::Chain(parts))?;
                item
            }
        })
    }

    /// The item of `len` zero bytes, with its recipe.
    fn zeros(&mut self, len: u64) -> Result<Item, Error> {
        let item = zeros_item(len);
        self.builder.add_recipe(item, Recipe::AllZeros)?;
        Ok(item)
    }

    /// Records where a file made as `file_item` sits in the target content: the file itself
    /// when it is one stretch of data, else a slice of it per stretch of data (its zeros are
    /// holes: not in the content).
    fn claim_file(
        &mut self,
        layout: &Layout,
        bytes: &[u8],
        file_item: Item,
        claimed: &mut Vec<(u64, u64, Item)>,
    ) -> Result<(), Error> {
        if let [Stretch::Data { offset, len }] = layout.as_slice() {
            claimed.push((*offset, *len, file_item));
            return Ok(());
        }
        let mut at = 0u64;
        for stretch in layout {
            if let Stretch::Data { offset, len } = *stretch {
                let piece = item_of(&bytes[at as usize..(at + len) as usize]);
                self.builder.add_recipe(
                    piece,
                    Recipe::Slice {
                        offset: at,
                        whole: file_item,
                    },
                )?;
                claimed.push((offset, len, piece));
            }
            at += stretch.size();
        }
        Ok(())
    }
}

/// The [`TOP_ITEMS`] most expensive parts of the target. `stream_sizes` holds each new-bytes
/// stream's (uncompressed, compressed) size; bytes in a stream are charged its compressed
/// size in proportion.
fn most_expensive(costs: &[Cost], stream_sizes: &[(u64, u64)]) -> Vec<ItemCost> {
    let mut by_part: HashMap<(&str, Option<&str>, &'static str), (u64, u64)> = HashMap::new();
    for c in costs {
        let share = c.stream.map_or(0, |s| {
            let (data, compressed) = stream_sizes.get(s).copied().unwrap_or((0, 0));
            if data == 0 {
                0
            } else {
                (u128::from(c.bytes) * u128::from(compressed) / u128::from(data)) as u64
            }
        });
        let entry = by_part
            .entry((c.member.as_str(), c.path.as_deref(), c.how))
            .or_default();
        entry.0 += c.bytes;
        entry.1 += c.fixed + share;
    }
    let mut all: Vec<ItemCost> = by_part
        .into_iter()
        .map(|((member, path, how), (changed, delta))| ItemCost {
            member: member.to_string(),
            path: path.map(str::to_string),
            how,
            changed_bytes: changed,
            delta_bytes: delta,
        })
        .collect();
    // Most expensive first; ties in a fixed order so that logs are reproducible.
    all.sort_by(|a, b| {
        b.delta_bytes
            .cmp(&a.delta_bytes)
            .then_with(|| (&a.member, &a.path, a.how).cmp(&(&b.member, &b.path, b.how)))
    });
    all.truncate(TOP_ITEMS);
    all
}

/// Basis ranges closer than this are joined (with the bytes between them): every range costs
/// a recipe (~150 bytes in the delta), the bytes between cost nothing in the delta.
const BASIS_JOIN_GAP: u64 = 64 * 1024;

/// Adds `r` to a segment's basis ranges; returns how many bytes the basis grew by.
fn add_basis_range(ranges: &mut Ranges, r: (u64, u64)) -> u64 {
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
fn push_part(parts: &mut Vec<Part>, part: Part) {
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

/// Hashes a whole file.
fn hash_file(data: &[u8]) -> Item {
    item_of(data)
}

/// Bytes of a compressed target payload compared with its re-creation when the delta is
/// verified afterwards (wrong parameters show in the first blocks; see [`content::Check`]).
const REPRODUCE_PREFIX: usize = 4 << 20;

/// Builds, verifies and writes the delta from `source` to `target` into `output`.
///
/// With verification on, a compressed target payload is taken as re-creatable once the first
/// [`REPRODUCE_PREFIX`] bytes of its re-creation match (compressing a whole image only to
/// compare it costs as much as the verification, which re-creates it anyway). Should the
/// verification then fail, the delta is planned again with every payload checked in full.
pub fn create(
    source: &Path,
    target: &Path,
    output: &Path,
    options: &Options,
) -> Result<Outcome, Error> {
    if !options.verify {
        return create_checked(source, target, output, options, Check::Full);
    }
    match create_checked(
        source,
        target,
        output,
        options,
        Check::Prefix(REPRODUCE_PREFIX),
    ) {
        Err(Error::Verify(why)) => {
            let mut outcome = create_checked(source, target, output, options, Check::Full)?;
            outcome.stats.notes.push(format!(
                "the first plan failed verification ({why}); planned again with every re-created payload compared in full"
            ));
            Ok(outcome)
        }
        other => other,
    }
}

fn create_checked(
    source: &Path,
    target: &Path,
    output: &Path,
    options: &Options,
    check: Check,
) -> Result<Outcome, Error> {
    let mut timings = Vec::new();
    let mut stage = Instant::now();
    let mut lap = |name: &'static str, timings: &mut Vec<(&'static str, Duration)>| {
        timings.push((name, stage.elapsed()));
        stage = Instant::now();
    };

    let progress = &options.progress;
    progress.report("reading the inputs", 0, 0);
    let source_swu = Swu::open(source)?;
    let target_swu = Swu::open(target)?;
    let problems = target_swu.problems();
    if !problems.is_empty() {
        return Err(Error::BadTarget(problems.join("; ")));
    }
    std::fs::create_dir_all(&options.work_dir)
        .map_err(io_at("cannot create the working folder", &options.work_dir))?;
    let source_map = map_file(source)?.ok_or(Error::Io {
        what: "source is empty",
        path: source.to_path_buf(),
        source: io::Error::from(io::ErrorKind::UnexpectedEof),
    })?;
    let target_map = map_file(target)?.ok_or(Error::EmptyTarget)?;
    let source_item = hash_file(&source_map);
    let target_item = hash_file(&target_map);
    lap("read inputs", &mut timings);
    progress.report("decompressing the source", 0, 0);

    // Source data: every payload, and the content of every compressed payload the profile can
    // decompress on the device. Contents are mapped first; the items then borrow the maps.
    enum Where {
        InSource { start: usize, len: usize },
        Content(usize),
    }
    let mut found: Vec<(String, Item, Derivation, Where)> = Vec::new();
    let mut content_maps: Vec<Mmap> = Vec::new();
    for m in &source_swu.archive.members {
        if m.data_len() == 0 {
            continue;
        }
        let payload = found.len();
        let sha = m.sha256.expect("Swu::open hashes members");
        found.push((
            m.name.clone(),
            Item::sha256(m.data_len(), sha),
            Derivation::Slice {
                offset: m.data_offset(),
            },
            Where::InSource {
                start: m.data_offset() as usize,
                len: m.data_len() as usize,
            },
        ));
        let payload_bytes = &source_map[m.data_offset() as usize..][..m.data_len() as usize];
        if let Some((kind, c)) = member_content(source, m, payload_bytes, "source", options)? {
            content_maps.push(map_file(&c.path)?.expect("contents are never empty"));
            found.push((
                m.name.clone(),
                Item::sha256(c.len, c.sha256),
                Derivation::Decompress {
                    kind,
                    from: payload,
                },
                Where::Content(content_maps.len() - 1),
            ));
        }
    }
    let sources: Vec<SourceData> = found
        .into_iter()
        .map(|(member, item, how, at)| SourceData {
            member,
            item,
            how,
            bytes: match at {
                Where::InSource { start, len } => &source_map[start..start + len],
                Where::Content(k) => &content_maps[k],
            },
        })
        .collect();
    lap("decompress source", &mut timings);
    progress.report("indexing the source", 0, 0);

    let region_bytes: Vec<(usize, &[u8])> = sources.iter().map(|s| s.bytes).enumerate().collect();
    let index = BlockIndex::new(
        region_bytes
            .iter()
            .map(|&(id, bytes)| Region { id, bytes })
            .collect(),
    );
    let by_item: HashMap<Item, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.item, i))
        .rev()
        .collect();
    let (new_tmp, _new_registered) =
        cleanup::temp_file(&options.work_dir, ".new-bytes-", ".tmp")
            .map_err(io_at("cannot create a temp file", &options.work_dir))?;
    let mut planner = Planner {
        options,
        builder: DeltaBuilder::new(target_item, source_item, options.profile),
        source_item,
        used: vec![false; sources.len()],
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
    };
    lap("index source", &mut timings);

    // The target: framing and payloads, in archive order. Chains whose parts include new
    // bytes are finished once the new-bytes stream is complete.
    let mut pending: Vec<(Item, Vec<Part>)> = Vec::new();
    let mut top: Vec<Part> = Vec::new();
    let mut cursor = 0u64;
    let mut contents_keep: Vec<Mmap> = Vec::new();
    for m in &target_swu.archive.members {
        progress.report("planning", m.header_offset, target_item.length());
        let framing = &target_map[cursor as usize..m.data_offset() as usize];
        planner.member = m.name.clone();
        let part = planner.push_new_noted(framing)?;
        push_part(&mut top, part);
        cursor = m.data_offset() + m.data_len();
        if m.data_len() == 0 {
            continue;
        }
        let payload = &target_map[m.data_offset() as usize..cursor as usize];
        let sha = m.sha256.expect("Swu::open hashes members");
        let payload_item = Item::sha256(m.data_len(), sha);
        if let Some(&i) = by_item.get(&payload_item) {
            planner.stats.identical_payloads.push(m.name.clone());
            planner.stats.reused_bytes += m.data_len();
            push_part(&mut top, Part::Item(planner.use_source(i)?));
            continue;
        }
        if let Some((how, content_item, map)) = recreatable(target, m, payload, options, check)? {
            match by_item.get(&content_item) {
                Some(&i) => {
                    planner.stats.reused_bytes += content_item.length();
                    planner.use_source(i)?;
                }
                None => {
                    let paired = paired_content(&planner.sources, &m.name, &region_bytes);
                    let finder = paired.map(|(i, bytes)| {
                        let (finder, note) = ReferenceFinder::new(&map, bytes);
                        if let Some(why) = note {
                            planner.stats.notes.push(format!(
                                "{}: content not opened as a filesystem ({why}); changed bytes are compressed against the same offsets of the old content",
                                m.name
                            ));
                        }
                        (finder, i)
                    });
                    let (claimed, gz_pending) = match &finder {
                        Some((f, i)) if f.is_file_aware() => {
                            let old = region_bytes[*i].1;
                            progress.report("planning: changed gzip files", 0, 0);
                            // GNU gzip's deflate needs diffgen's applier.
                            let gnu_gzip = options.profile != Profile::Gzip;
                            let files = inner_gz::find(&map, old, f, gnu_gzip);
                            let (mut claimed, pending) = planner.plan_inner_gz(*i, files)?;
                            let ranges: Vec<(u64, u64)> =
                                claimed.iter().map(|c| (c.0, c.1)).collect();
                            let (patches, choices) = inner_patch::find(
                                &map,
                                old,
                                f,
                                options.new_data_level,
                                &ranges,
                                options.memory_limit,
                                progress,
                            );
                            planner
                                .stats
                                .executables
                                .extend(choices.iter().map(|c| format!("{}: {c}", m.name)));
                            claimed.extend(planner.plan_inner_patches(*i, patches)?);
                            claimed.sort_unstable_by_key(|c| c.0);
                            (claimed, pending)
                        }
                        _ => Default::default(),
                    };
                    pending.extend(gz_pending);
                    progress.report("planning: matching blocks", 0, 0);
                    let mut parts = Vec::new();
                    planner.plan_around(
                        &map,
                        &claimed,
                        &index,
                        finder.as_ref().map(|(f, i)| (f, *i)),
                        &mut parts,
                    )?;
                    pending.push((content_item, parts));
                }
            }
            let recipe = match how {
                Recreate::Zlib(p) => Recipe::ZlibCompression {
                    container: p.container,
                    level: p.level,
                    uncompressed: content_item,
                },
                Recreate::Zstd(p) => Recipe::ZstdCompression {
                    params: p,
                    uncompressed: content_item,
                },
            };
            planner.builder.add_recipe(payload_item, recipe)?;
            planner
                .stats
                .recreated
                .push((m.name.clone(), describe(&how)));
            push_part(&mut top, Part::Item(payload_item));
            contents_keep.push(map);
            continue;
        }
        planner.plan_bytes(payload, 0, &index, None, &mut top)?;
    }
    let tail = &target_map[cursor as usize..];
    let part = planner.push_new_noted(tail)?;
    push_part(&mut top, part);
    pending.push((target_item, top));
    lap("plan", &mut timings);
    progress.report("encoding", 0, 0);

    // The new-bytes stream: compressed into the delta, then every chain is finished.
    planner
        .new_file
        .flush()
        .map_err(io_at("cannot write new bytes", &options.work_dir))?;
    let new_map = map_file(new_tmp.path())?;
    let new_bytes: &[u8] = new_map.as_deref().unwrap_or(&[]);
    // Frames for the inline assets: the plain stream (zstd profile) and every segment. First
    // every basis is decided and its recipe written (in order, so the delta does not depend
    // on threads); then all frames are compressed in one pool, largest first, each job
    // gathering its own basis so that only as many bases as threads are held at once.
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut frame_of_stream: Vec<Option<usize>> = vec![None; planner.segments.len() + 1];
    let mut stream_items: Vec<Item> = vec![Item::EMPTY; planner.segments.len() + 1];
    let mut stream0_basis: Option<Item> = None;
    // The plain stream after the x86 branch filter, when that compresses better.
    let mut stream0_filtered: Option<Vec<u8>> = None;
    let segments = std::mem::take(&mut planner.segments);
    let mut basis_items: Vec<Option<Item>> = vec![None; segments.len()];
    let mut jobs: Vec<EncodeJob> = Vec::new();
    if !new_bytes.is_empty() {
        // One frame with a window over as much of the stream as the device's budget allows,
        // so that new files that resemble each other (libraries of one package) share
        // matches. In the gzip profile it gets a token basis (the first bytes of the source's
        // first payload, usually its sw-description): ADU's stock applier was seen to crash on
        // zstd frames without a basis but decodes them with one, and zstd level 19 beats the
        // deflated remainder by 10-15 % on new files.
        let token = match options.profile {
            Profile::Extended => Some(None),
            Profile::Gzip => region_bytes
                .first()
                .map(|&(i, bytes)| (i, bytes.len().min(TOKEN_BASIS)))
                .filter(|&(_, n)| n > 0)
                .map(Some),
        };
        // Executables among the new bytes compress better with their branch targets made
        // absolute (diffgen's applier undoes it with `bcj_x86_decode`); a quick level-3
        // comparison decides, since the filter costs a little on other data.
        if options.profile == Profile::Extended && new_bytes.len() >= BCJ_MIN_STREAM {
            let filtered = codec::bcj::encode(new_bytes);
            let quick = |data: &[u8]| {
                codec::zstd::compress_with_prefix(data, &[], 3, NEW_STREAM_WINDOW_LOG)
                    .map(|f| f.len())
            };
            let plain_len =
                quick(new_bytes).map_err(io_at("cannot compress new bytes", &options.work_dir))?;
            let filtered_len =
                quick(&filtered).map_err(io_at("cannot compress new bytes", &options.work_dir))?;
            if filtered != new_bytes && filtered_len * 100 < plain_len * 99 {
                planner.stats.bcj_filtered_bytes = new_bytes.len() as u64;
                stream0_filtered = Some(filtered);
            }
        }
        match token {
            Some(basis) => {
                let basis_ranges = match basis {
                    Some((region, n)) => {
                        stream0_basis = Some(planner.source_piece(region, 0, n as u64)?);
                        vec![(region, 0, n as u64)]
                    }
                    None => Vec::new(),
                };
                stream_items[0] = item_of(new_bytes);
                jobs.push(EncodeJob {
                    stream: 0,
                    data: stream0_filtered.as_deref().unwrap_or(new_bytes),
                    basis: JobBasis::Regions(basis_ranges),
                    window_log: NEW_STREAM_WINDOW_LOG,
                });
            }
            // No source payload to take a token from: the deflated remainder.
            None => stream_items[0] = planner.builder.set_remainder(&mut &new_bytes[..])?,
        }
    }
    for (k, seg) in segments.iter().enumerate() {
        let mut hasher = Sha256::new();
        let mut parts = Vec::new();
        let basis = match &seg.basis {
            Basis::Source { source, ranges } => {
                let source_bytes: &[u8] = region_bytes[*source].1;
                for &(off, len) in ranges {
                    hasher.update(&source_bytes[off as usize..(off + len) as usize]);
                    parts.push(planner.source_piece(*source, off, len)?);
                }
                JobBasis::Regions(ranges.iter().map(|&(o, l)| (*source, o, l)).collect())
            }
            Basis::Items(items) => {
                for (item, bytes) in items {
                    hasher.update(bytes);
                    parts.push(*item);
                }
                JobBasis::Items(k)
            }
        };
        let basis_item = if parts.len() == 1 {
            parts[0]
        } else {
            let item = Item::sha256(seg.basis_len, hasher.finalize().into());
            planner.builder.add_recipe(item, Recipe::Chain(parts))?;
            item
        };
        let item = item_of(&seg.data);
        stream_items[k + 1] = item;
        if item == basis_item {
            // The "new" bytes are their old version (too short to be matched as blocks):
            // the basis recipe already makes them.
            continue;
        }
        basis_items[k] = Some(basis_item);
        jobs.push(EncodeJob {
            stream: k + 1,
            data: &seg.data,
            basis,
            window_log: SEGMENT_WINDOW_LOG,
        });
    }
    let total_jobs = jobs.len() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&j| std::cmp::Reverse(jobs[j].data.len() + jobs[j].basis_len(&segments)));
    let compressed: Vec<(usize, io::Result<Vec<u8>>)> = order
        .par_iter()
        .map(|&j| {
            let job = &jobs[j];
            let basis = job.gather_basis(&region_bytes, &segments);
            let frame = compress_new_bytes(job, &basis, options.new_data_level);
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress.report("encoding", n, total_jobs);
            (j, frame)
        })
        .collect();
    let mut by_job: Vec<Option<io::Result<Vec<u8>>>> = (0..jobs.len()).map(|_| None).collect();
    for (j, frame) in compressed {
        by_job[j] = Some(frame);
    }
    for (job, frame) in jobs.iter().zip(by_job) {
        let frame = frame
            .expect("every job ran")
            .map_err(io_at("cannot compress new bytes", &options.work_dir))?;
        planner.stats.new_compressed_bytes += frame.len() as u64;
        if job.stream > 0 {
            planner.stats.referenced_new_bytes += job.data.len() as u64;
        }
        frame_of_stream[job.stream] = Some(frames.len());
        frames.push(frame);
    }
    planner.stats.segments = segments.len();
    // What each new-bytes stream holds and costs (stream 0 in the gzip profile goes to the
    // remainder, whose size is known once the delta is written).
    let mut stream_sizes: Vec<(u64, u64)> = (0..=segments.len())
        .map(|k| {
            let data = if k == 0 {
                new_bytes.len()
            } else {
                segments[k - 1].data.len()
            };
            let compressed = frame_of_stream[k].map_or(0, |f| frames[f].len());
            (data as u64, compressed as u64)
        })
        .collect();
    // bsdiff patches follow the frames; their recipes name them by content.
    frames.append(&mut planner.patches);
    if !frames.is_empty() {
        let blob: Vec<u8> = frames.concat();
        let blob_len = blob.len() as u64;
        let assets = planner.builder.set_inline_assets(Arc::new(blob))?;
        let mut offset = 0u64;
        let mut frame_items = Vec::new();
        for f in &frames {
            let item = if offset == 0 && f.len() as u64 == blob_len {
                assets
            } else {
                let item = item_of(f);
                planner.builder.add_recipe(
                    item,
                    Recipe::Slice {
                        offset,
                        whole: assets,
                    },
                )?;
                item
            };
            frame_items.push(item);
            offset += f.len() as u64;
        }
        for (stream, frame) in frame_of_stream.iter().enumerate() {
            let Some(frame) = frame else { continue };
            let basis = if stream == 0 {
                stream0_basis
            } else {
                basis_items[stream - 1]
            };
            match (stream, &stream0_filtered) {
                (0, Some(filtered)) => {
                    let filtered_item = item_of(filtered);
                    planner.builder.add_recipe(
                        filtered_item,
                        Recipe::ZstdDecompression {
                            compressed: frame_items[*frame],
                            basis,
                        },
                    )?;
                    planner.builder.add_recipe(
                        stream_items[0],
                        Recipe::BcjX86Decode {
                            filtered: filtered_item,
                        },
                    )?;
                }
                _ => planner.builder.add_recipe(
                    stream_items[stream],
                    Recipe::ZstdDecompression {
                        compressed: frame_items[*frame],
                        basis,
                    },
                )?,
            }
        }
    }
    let stream_bytes = |stream: usize| -> &[u8] {
        if stream == 0 {
            new_bytes
        } else {
            &segments[stream - 1].data
        }
    };
    for (result, parts) in pending {
        let mut items = Vec::with_capacity(parts.len());
        for part in parts {
            items.push(match part {
                Part::Item(item) => item,
                Part::New {
                    stream,
                    offset,
                    len,
                } if offset == 0 && len == stream_items[stream].length() => stream_items[stream],
                Part::New {
                    stream,
                    offset,
                    len,
                } => {
                    let item =
                        item_of(&stream_bytes(stream)[offset as usize..(offset + len) as usize]);
                    planner.builder.add_recipe(
                        item,
                        Recipe::Slice {
                            offset,
                            whole: stream_items[stream],
                        },
                    )?;
                    item
                }
            });
        }
        items.retain(|i| !i.is_empty());
        // A single part that is the result itself needs no chain (it would refer to itself).
        if !(items.len() == 1 && items[0] == result) {
            planner.builder.add_recipe(result, Recipe::Chain(items))?;
        }
    }
    drop(contents_keep);
    lap("encode", &mut timings);
    progress.report("writing", 0, 0);

    // Write to a temp file next to the output, verify by applying, then move into place.
    let out_dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (mut tmp, _registered) = cleanup::temp_file(&out_dir, ".diffgen-delta-", ".tmp").map_err(
        io_at("cannot create a temp file in the output folder", &out_dir),
    )?;
    let delta_len = {
        let mut w = io::BufWriter::new(tmp.as_file_mut());
        let n = planner.builder.write_to(&mut w)?;
        w.flush().map_err(io_at("cannot write", output))?;
        n
    };
    let delta_sha256 = {
        let m = map_file(tmp.path())?.expect("a delta is never empty");
        sha256_of(&m)
    };
    // Sizes as the written delta states them.
    let (archive, _) = delta::read_path(tmp.path(), &delta::ReadLimits::default())
        .map_err(|e| Error::Verify(format!("the written delta does not read back: {e}")))?;
    let inspection = delta::inspect::inspect(&archive);
    planner.stats.recipes = inspection.recipes as usize;
    if let Some(r) = &inspection.remainder_compressed {
        planner.stats.new_compressed_bytes = r.length;
        stream_sizes[0].1 = r.length;
    }
    planner.stats.most_expensive = most_expensive(&planner.costs, &stream_sizes);
    lap("write", &mut timings);
    if delta_len >= target_item.length() {
        return Err(Error::NotSmaller {
            delta: delta_len,
            target: target_item.length(),
        });
    }
    if options.verify {
        progress.report("verifying", 0, 0);
        verify(source, tmp.path(), target_item, &options.work_dir)?;
        lap("verify", &mut timings);
    }
    tmp.as_file()
        .sync_all()
        .map_err(io_at("cannot write", output))?;
    tmp.persist(output).map_err(|e| Error::Io {
        what: "cannot move the finished delta into place",
        path: output.to_path_buf(),
        source: e.error,
    })?;
    Ok(Outcome {
        source: source_item,
        target: target_item,
        delta_len,
        delta_sha256,
        stats: planner.stats,
        verified: options.verify,
        timings,
    })
}

/// If `payload` is compressed and can be re-created from its content on the device (in this
/// profile), the parameters, the content's item and the mapped content.
fn recreatable(
    target: &Path,
    m: &swu::cpio::Entry,
    payload: &[u8],
    options: &Options,
    check: Check,
) -> Result<Option<(Recreate, Item, Mmap)>, Error> {
    let Some((kind, c)) = member_content(target, m, payload, "target", options)? else {
        return Ok(None);
    };
    let map = map_file(&c.path)?.expect("contents are never empty");
    Ok(content::reproduce(kind, &map, payload, check)
        .map(|how| (how, Item::sha256(c.len, c.sha256), map)))
}

/// The content of member `m` of the SWU at `archive` (its bytes `payload`), decompressed into
/// the working folder, when it is compressed in a way the device can decompress in this
/// profile (gzip always, zstd in the zstd profile). `side` names the archive in errors.
fn member_content(
    archive: &Path,
    m: &swu::cpio::Entry,
    payload: &[u8],
    side: &'static str,
    options: &Options,
) -> Result<Option<(Kind, content::Content)>, Error> {
    let kind = match content::sniff(payload) {
        Some(Kind::Zstd) if options.profile == Profile::Gzip => return Ok(None),
        Some(k) => k,
        None => return Ok(None),
    };
    let sha = m.sha256.expect("Swu::open hashes members");
    let content = content::materialize(
        archive,
        m.data_offset(),
        m.data_len(),
        &sha,
        kind,
        &options.work_dir,
        content::ContentLimit::for_work_dir(&options.work_dir, options.max_content),
    )
    .map_err(|e| Error::Decompress {
        member: m.name.clone(),
        side,
        work: options.work_dir.clone(),
        source: e,
    })?;
    Ok(content.map(|c| (kind, c)))
}

/// The source content a target member's content most likely evolved from: the content of the
/// source member with the same name apart from a `.gz`/`.zst` suffix, else the largest one.
fn paired_content<'b>(
    sources: &[SourceData],
    name: &str,
    region_bytes: &'b [(usize, &'b [u8])],
) -> Option<(usize, &'b [u8])> {
    let stem = |n: &str| -> String {
        n.strip_suffix(".gz")
            .or_else(|| n.strip_suffix(".zst"))
            .or_else(|| n.strip_suffix(".zstd"))
            .unwrap_or(n)
            .to_string()
    };
    let contents = sources
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s.how, Derivation::Decompress { .. }));
    let by_name = contents
        .clone()
        .find(|(_, s)| stem(&s.member) == stem(name));
    let chosen =
        by_name.or_else(|| contents.max_by_key(|(i, s)| (s.item.length(), usize::MAX - i)));
    chosen.map(|(i, _)| (i, region_bytes[i].1))
}

/// Applies the delta to the source into a temp file and checks the result.
fn verify(source: &Path, delta_path: &Path, target: Item, work: &Path) -> Result<(), Error> {
    // A registered folder: whatever the applier writes in it is swept on interruption.
    let dir = cleanup::TempDir::new_in(work, ".verify-")
        .map_err(io_at("cannot create a temp folder", work))?;
    let out = dir.path().join("target.swu");
    let options = delta::ApplyOptions {
        temp_dir: Some(dir.path().to_path_buf()),
        ..delta::ApplyOptions::default()
    };
    let result = delta::apply(source, delta_path, &out, &options);
    match result {
        Ok(report) if report.target == target => Ok(()),
        Ok(report) => Err(Error::Verify(format!(
            "it makes {} instead of {}",
            report.target, target
        ))),
        Err(e) => Err(Error::Verify(e.to_string())),
    }
}

fn describe(how: &Recreate) -> String {
    match how {
        Recreate::Zlib(p) => format!("zlib level {}", p.level),
        Recreate::Zstd(p) => format!(
            "zstd level {} (zstd {})",
            p.level,
            codec::zstd::version_string(p.version)
        ),
    }
}
