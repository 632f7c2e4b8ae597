//! Stage 4, encoding: the new-bytes streams become zstd frames in the delta's inline assets.
//! The plain stream (stream 0) is one frame with a window over as much of it as the device
//! allows (in the zstd profile after the x86 branch filter when that compresses better; in
//! the gzip profile with a token basis, or as the deflated remainder); each segment is a frame
//! whose basis is its old bytes. Every basis is decided and its recipe written first (in order,
//! so the delta does not depend on threads); then all frames are compressed in one pool,
//! largest first, each job gathering its own basis so that only as many bases as threads are
//! held at once. bsdiff patches follow the frames in the inline assets.

use std::io;
use std::sync::Arc;

use delta::{Item, Profile, Recipe};
use sha2::{Digest, Sha256};

use crate::items::item_of;
use crate::plan::{Basis, Planner, Segment, SEGMENT_LIMIT};
use crate::source::Sources;
use crate::{io_at, Error, Options};

/// Window of the new-bytes stream's zstd frame (16 MiB: the device reserves
/// min(window, content) from its 48 MiB budget).
const NEW_STREAM_WINDOW_LOG: u32 = 24;
/// Smallest plain new-bytes stream the x86 branch filter is tried on.
const BCJ_MIN_STREAM: usize = 64 * 1024;
/// Bytes of the token basis of the new-bytes stream in the gzip profile.
pub const TOKEN_BASIS: usize = 4096;
/// Window limit of segment frames (their basis plus data is at most [`SEGMENT_LIMIT`]).
const SEGMENT_WINDOW_LOG: u32 = 23;
const _: () = assert!(SEGMENT_LIMIT <= 1 << SEGMENT_WINDOW_LOG);
/// Streams at least this large get a compressibility trial first (see [`compress_new_bytes`]).
const TRIAL_MIN: usize = 16 << 10;
/// Level for streams whose bytes do not compress by themselves.
const INCOMPRESSIBLE_LEVEL: i32 = 9;
/// Search depth (log2 of positions compared) of segment frames (new bytes against their old
/// versions) of at least [`SHALLOW_SEARCH_FROM`] bytes with their basis, at levels from
/// [`BASIS_SEARCH_MIN_LEVEL`] (binary-tree match finders), instead of the level's (2^7 at
/// 19): such a frame's time goes mostly into inserting the megabytes of its basis into the
/// tree, and the matches that count there are long ones, found at any depth. Measured on the
/// upgrade pairs' segments (data plus basis up to 8 MiB each): 5.9 s -> 3.7 s (x86-64) and
/// 5.6 s -> 4.1 s (arm64) of compression, frames 0.4 % and 0.8 % larger. Smaller frames take
/// under a second at full depth, and short matches count more in them (the mkfs pair's inode
/// tables, 2 MiB with their basis: 2 % larger at depth 2^3). The plain stream (new files; in
/// the gzip profile with a token basis) keeps the full depth: its matches are within itself
/// (the gzip-profile package installation: 1 % larger at depth 2^3).
const BASIS_SEARCH_LOG: u32 = 3;
const BASIS_SEARCH_MIN_LEVEL: i32 = 16;
const SHALLOW_SEARCH_FROM: usize = 4 << 20;

/// The streams, encoded: what the `write` stage needs to finish the chains.
pub(crate) struct Encoded {
    /// The segments (streams 1..), whose bytes the chains slice.
    pub segments: Vec<Segment>,
    /// Each stream's item (0: the plain stream; k + 1: segment k).
    pub stream_items: Vec<Item>,
    /// Each stream's (uncompressed, compressed) size; the remainder's compressed size is
    /// known only once the delta is written.
    pub stream_sizes: Vec<(u64, u64)>,
}

/// One zstd frame to make: a new-bytes stream and its basis.
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

/// Per stream: its item, its frame's basis item, and its frame (index in the inline assets).
struct Streams {
    items: Vec<Item>,
    bases: Vec<Option<Item>>,
    frames: Vec<Option<usize>>,
}

/// Encodes the plain stream `new_bytes` and the planner's segments, adding the frames and
/// their recipes to the planner's builder.
pub(crate) fn encode(
    planner: &mut Planner,
    new_bytes: &[u8],
    sources: &Sources,
    options: &Options,
) -> Result<Encoded, Error> {
    let segments = std::mem::take(&mut planner.segments);
    let mut streams = Streams {
        items: vec![Item::EMPTY; segments.len() + 1],
        bases: vec![None; segments.len() + 1],
        frames: vec![None; segments.len() + 1],
    };
    // The plain stream after the x86 branch filter, when that compresses better.
    let filtered = if new_bytes.is_empty() {
        None
    } else {
        bcj_trial(planner, new_bytes, options)?
    };
    let mut jobs: Vec<EncodeJob> = Vec::new();
    if !new_bytes.is_empty() {
        let data = filtered.as_deref().unwrap_or(new_bytes);
        jobs.extend(plain_stream_job(
            planner,
            new_bytes,
            data,
            sources,
            &mut streams,
        )?);
    }
    jobs.extend(segment_jobs(planner, &segments, sources, &mut streams)?);
    let compressed = compress_frames(&jobs, &segments, sources, options)?;
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for (job, frame) in jobs.iter().zip(compressed) {
        planner.stats.new_compressed_bytes += frame.len() as u64;
        if job.stream > 0 {
            planner.stats.referenced_new_bytes += job.data.len() as u64;
        }
        streams.frames[job.stream] = Some(frames.len());
        frames.push(frame);
    }
    planner.stats.segments = segments.len();
    let stream_sizes = (0..=segments.len())
        .map(|k| {
            let data = if k == 0 {
                new_bytes.len()
            } else {
                segments[k - 1].data.len()
            };
            let compressed = streams.frames[k].map_or(0, |f| frames[f].len());
            (data as u64, compressed as u64)
        })
        .collect();
    // bsdiff patches follow the frames; their recipes name them by content.
    frames.append(&mut planner.patches);
    add_inline_assets(planner, frames, &streams, filtered.as_deref())?;
    Ok(Encoded {
        segments,
        stream_items: streams.items,
        stream_sizes,
    })
}

/// Executables among the new bytes compress better with their branch targets made absolute
/// (diffgen's applier undoes it with `bcj_x86_decode`); a quick level-3 comparison decides,
/// since the filter costs a little on other data. Returns the filtered stream when it wins.
fn bcj_trial(
    planner: &mut Planner,
    new_bytes: &[u8],
    options: &Options,
) -> Result<Option<Vec<u8>>, Error> {
    if options.profile != Profile::Extended || new_bytes.len() < BCJ_MIN_STREAM {
        return Ok(None);
    }
    let filtered = codec::bcj::encode(new_bytes);
    let quick = |data: &[u8]| {
        codec::zstd::compress_with_prefix(data, &[], 3, NEW_STREAM_WINDOW_LOG)
            .map(|f| f.len())
            .map_err(io_at("cannot compress new bytes", &options.work_dir))
    };
    let plain_len = quick(new_bytes)?;
    let filtered_len = quick(&filtered)?;
    if filtered != new_bytes && filtered_len * 100 < plain_len * 99 {
        planner.stats.bcj_filtered_bytes = new_bytes.len() as u64;
        return Ok(Some(filtered));
    }
    Ok(None)
}

/// The plain stream's frame: one frame with a window over as much of the stream as the
/// device's budget allows, so that new files that resemble each other (libraries of one
/// package) share matches. In the gzip profile it gets a token basis (the first bytes of the
/// source's first payload, usually its sw-description): ADU's stock applier was seen to crash
/// on zstd frames without a basis but decodes them with one, and zstd level 19 beats the
/// deflated remainder by 10-15 % on new files. Without a source payload to take a token from,
/// the stream becomes the deflated remainder (no job). `data` is what is compressed: the
/// stream, or the stream after the x86 filter.
fn plain_stream_job<'d>(
    planner: &mut Planner,
    new_bytes: &[u8],
    data: &'d [u8],
    sources: &Sources,
    streams: &mut Streams,
) -> Result<Option<EncodeJob<'d>>, Error> {
    let token = match planner.builder.profile() {
        Profile::Extended => Some(None),
        Profile::Gzip => sources
            .data
            .first()
            .map(|s| (0, s.bytes.len().min(TOKEN_BASIS)))
            .filter(|&(_, n)| n > 0)
            .map(Some),
    };
    let Some(basis) = token else {
        streams.items[0] = planner.builder.set_remainder(&mut &new_bytes[..])?;
        return Ok(None);
    };
    let basis_ranges = match basis {
        Some((region, n)) => {
            streams.bases[0] = Some(planner.source_piece(region, 0, n as u64)?);
            vec![(region, 0, n as u64)]
        }
        None => Vec::new(),
    };
    streams.items[0] = item_of(new_bytes);
    Ok(Some(EncodeJob {
        stream: 0,
        data,
        basis: JobBasis::Regions(basis_ranges),
        window_log: NEW_STREAM_WINDOW_LOG,
    }))
}

/// Each segment's basis item (with its recipe) and frame job; none for a segment whose "new"
/// bytes are its old version (too short to be matched as blocks): the basis recipe already
/// makes them.
fn segment_jobs<'d>(
    planner: &mut Planner,
    segments: &'d [Segment],
    sources: &Sources,
    streams: &mut Streams,
) -> Result<Vec<EncodeJob<'d>>, Error> {
    let mut jobs = Vec::new();
    for (k, seg) in segments.iter().enumerate() {
        let mut hasher = Sha256::new();
        let mut parts = Vec::new();
        let basis = match &seg.basis {
            Basis::Source { source, ranges } => {
                let source_bytes: &[u8] = sources.bytes(*source);
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
        streams.items[k + 1] = item;
        if item == basis_item {
            continue;
        }
        streams.bases[k + 1] = Some(basis_item);
        jobs.push(EncodeJob {
            stream: k + 1,
            data: &seg.data,
            basis,
            window_log: SEGMENT_WINDOW_LOG,
        });
    }
    Ok(jobs)
}

/// Compresses every job in one pool, largest first (`crate::queue`); the frames in job order.
fn compress_frames(
    jobs: &[EncodeJob],
    segments: &[Segment],
    sources: &Sources,
    options: &Options,
) -> Result<Vec<Vec<u8>>, Error> {
    let total_jobs = jobs.len() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&j| std::cmp::Reverse(jobs[j].data.len() + jobs[j].basis_len(segments)));
    let frames = crate::queue::run_in_order(jobs, &order, |job| {
        let basis = job.gather_basis(sources, segments);
        let frame = compress_new_bytes(job, &basis, options.new_data_level);
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        options.progress.report("encoding", n, total_jobs);
        frame
    });
    frames
        .into_iter()
        .map(|frame| frame.map_err(io_at("cannot compress new bytes", &options.work_dir)))
        .collect()
}

/// The frame of `job` at `level`, or at [`INCOMPRESSIBLE_LEVEL`] when the bytes do not compress
/// by themselves (zstd level 1 without the basis saves under 5 %: random or already compressed
/// data). Level 19's search then gains nothing on the literals (a few tenths of a percent on
/// the large-binary churn pair) but takes six times as long, and the matches against the basis
/// are found at any level by long-distance matching. Large segment frames search
/// [`BASIS_SEARCH_LOG`] deep.
fn compress_new_bytes(job: &EncodeJob, basis: &[u8], level: i32) -> io::Result<Vec<u8>> {
    let mut level = level;
    if job.data.len() >= TRIAL_MIN && level > INCOMPRESSIBLE_LEVEL {
        let trial = codec::zstd::compress_with_prefix(job.data, &[], 1, job.window_log)?;
        if trial.len() as u64 * 100 >= job.data.len() as u64 * 95 {
            level = INCOMPRESSIBLE_LEVEL;
        }
    }
    let shallow = job.stream > 0
        && basis.len() + job.data.len() >= SHALLOW_SEARCH_FROM
        && level >= BASIS_SEARCH_MIN_LEVEL;
    let search_log = shallow.then_some(BASIS_SEARCH_LOG);
    codec::zstd::compress_with_prefix_searching(job.data, basis, level, job.window_log, search_log)
}

impl EncodeJob<'_> {
    fn basis_len(&self, segments: &[Segment]) -> usize {
        match &self.basis {
            JobBasis::Regions(r) => r.iter().map(|&(_, _, l)| l as usize).sum(),
            JobBasis::Items(k) => segments[*k].basis_len as usize,
        }
    }

    fn gather_basis(&self, sources: &Sources, segments: &[Segment]) -> Vec<u8> {
        let mut basis = Vec::with_capacity(self.basis_len(segments));
        match &self.basis {
            JobBasis::Regions(ranges) => {
                for &(region, off, len) in ranges {
                    basis.extend_from_slice(
                        &sources.bytes(region)[off as usize..(off + len) as usize],
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

/// Puts `frames` (then the patches) into the inline assets, each frame an item sliced from
/// them, and adds the recipe of every stream made from a frame (`zstd_decompression`, then
/// `bcj_x86_decode` when the plain stream was `filtered`).
fn add_inline_assets(
    planner: &mut Planner,
    frames: Vec<Vec<u8>>,
    streams: &Streams,
    filtered: Option<&[u8]>,
) -> Result<(), Error> {
    if frames.is_empty() {
        return Ok(());
    }
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
            let slice = Recipe::Slice {
                offset,
                whole: assets,
            };
            planner.builder.add_recipe(item, slice)?;
            item
        };
        frame_items.push(item);
        offset += f.len() as u64;
    }
    for (stream, frame) in streams.frames.iter().enumerate() {
        let Some(frame) = frame else { continue };
        let decompression = || Recipe::ZstdDecompression {
            compressed: frame_items[*frame],
            basis: streams.bases[stream],
        };
        match (stream, filtered) {
            (0, Some(filtered)) => {
                let filtered_item = item_of(filtered);
                planner.builder.add_recipe(filtered_item, decompression())?;
                planner.builder.add_recipe(
                    streams.items[0],
                    Recipe::BcjX86Decode {
                        filtered: filtered_item,
                    },
                )?;
            }
            _ => planner
                .builder
                .add_recipe(streams.items[stream], decompression())?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(stream: usize, data: &[u8]) -> EncodeJob<'_> {
        EncodeJob {
            stream,
            data,
            basis: JobBasis::Regions(Vec::new()),
            window_log: SEGMENT_WINDOW_LOG,
        }
    }

    /// Text-like bytes that compress (so the level is kept) and differ with the search depth.
    fn words(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed;
        let mut out = Vec::with_capacity(n + 16);
        while out.len() < n {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let word: &[u8] = match (x >> 16) % 8 {
                0 => b"inode ",
                1 => b"block ",
                2 => b"extent ",
                3 => b"group ",
                4 => b"bitmap ",
                5 => b"journal ",
                _ => &[],
            };
            out.extend_from_slice(word);
            out.extend_from_slice(&((x >> 8) as u16).to_le_bytes());
        }
        out.truncate(n);
        out
    }

    #[test]
    fn only_large_segment_frames_search_shallow() {
        let small_basis = words(1 << 20, 1);
        let small = words(1 << 20, 2);
        let frame = compress_new_bytes(&job(1, &small), &small_basis, 19).unwrap();
        let full = codec::zstd::compress_with_prefix(&small, &small_basis, 19, SEGMENT_WINDOW_LOG);
        assert_eq!(frame, full.unwrap(), "a 2 MiB frame keeps level 19's depth");

        let large_basis = words(3 << 20, 3);
        let large = words(1 << 20, 4);
        let frame = compress_new_bytes(&job(1, &large), &large_basis, 19).unwrap();
        let shallow = codec::zstd::compress_with_prefix_searching(
            &large,
            &large_basis,
            19,
            SEGMENT_WINDOW_LOG,
            Some(BASIS_SEARCH_LOG),
        );
        assert_eq!(frame, shallow.unwrap(), "a 4 MiB frame searches shallow");
        let full = codec::zstd::compress_with_prefix(&large, &large_basis, 19, SEGMENT_WINDOW_LOG);
        let full = full.unwrap();
        assert_ne!(frame, full, "the depth makes a difference on these bytes");
        // The plain stream with a (token) basis keeps the full depth.
        let plain = compress_new_bytes(&job(0, &large), &large_basis, 19).unwrap();
        assert_eq!(
            plain, full,
            "the plain stream searches at the level's depth"
        );
    }
}
