//! Delta generation: from a source SWU and a (recompressed) target SWU to an ADU diff that
//! rebuilds the target byte for byte, verified by applying it.
//!
//! [`create`] runs a pipeline of stages, each a module with one job, each handing typed values
//! to the next (a later stage may use an earlier one's types, never the reverse):
//!
//! 1. [`inputs`]: both archives opened, checked, mapped and hashed;
//! 2. [`source`]: the source items (payloads and decompressed contents) and their block index
//!    (the target's compressed payloads are decompressed beside the source's, for planning);
//! 3. [`plan`]: which target bytes come from where: identical payloads, payloads re-created
//!    from their content on the device, changed gzip files and executables inside
//!    filesystems, block matching, and new bytes in streams (the plain one and segments with
//!    a basis of old bytes);
//! 4. [`encode`]: the streams compressed into zstd frames in the inline assets;
//! 5. [`write`]: the remaining chains finished, the delta written to a temp file;
//! 6. [`verify`]: the delta applied to the source must make the target;
//! 7. [`report`]: what each part of the target cost.
//!
//! Below the stages sit the tools they use: [`blocks`] (block matching), [`content`]
//! (decompressed contents and how a payload is re-created), [`reference`] (files of two ext
//! images and their old versions), [`inner_gz`] and [`inner_patch`] (gzip files and
//! executables rebuilt from their old versions), [`items`] (hashing) and [`queue`] (jobs of
//! very different sizes on the thread pool, largest first).
//!
//! Only a verified delta is written, atomically (temp file and rename).

pub mod blocks;
pub mod content;
pub mod encode;
pub mod exe_patch;
pub mod inner_gz;
pub mod inner_patch;
pub mod inputs;
mod items;
pub mod plan;
mod queue;
pub mod reference;
pub mod report;
pub mod source;
pub mod verify;
pub mod write;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use content::Check;
use delta::{Item, Profile};

pub use plan::SEGMENT_LIMIT;

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
/// not known. Stages: "reading the inputs", "decompressing" (both archives' compressed
/// payloads), "indexing the source", "planning" (target bytes), "encoding" (segments),
/// "writing", "verifying".
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
    /// Changed files inside target filesystems rebuilt with a patch (bsdiff or executable),
    /// their size, the patches' size in the delta, and what the patches saved against zstd
    /// with the old version as basis.
    pub patched_files: usize,
    pub patched_bytes: u64,
    pub patch_bytes: u64,
    pub patch_saved_bytes: u64,
    /// Of the patched files, those rebuilt with an executable patch (`exe_bspatch`).
    pub exe_patched_files: usize,
    /// Things the log should say (contents not opened as filesystems, and why).
    pub notes: Vec<String>,
    /// Every changed executable inside target filesystems: `member: path: encoding chosen
    /// (sizes of the executable patch, bsdiff and zstd, or why no patch was evaluated)`, for
    /// the log.
    pub executables: Vec<String>,
    /// What every part of the target cost in the delta, most expensive first (at most
    /// [`COST_ITEMS`]; the rest are summed in `costs_left_out`).
    pub costs: Vec<ItemCost>,
    pub costs_left_out: CostsLeftOut,
    /// The first [`TOP_ITEMS`] of `costs`.
    pub most_expensive: Vec<ItemCost>,
}

/// How many entries [`Stats::most_expensive`] keeps.
pub const TOP_ITEMS: usize = 20;

/// How many entries [`Stats::costs`] keeps: every changed file of a large system upgrade
/// (about 2,000 on the benchmark's Debian upgrades) while `report.json` stays a few MB at
/// most; the cheaper parts past it are only counted ([`CostsLeftOut`]).
pub const COST_ITEMS: usize = 10_000;

/// The parts past [`COST_ITEMS`] that [`Stats::costs`] leaves out, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CostsLeftOut {
    pub parts: u64,
    pub changed_bytes: u64,
    pub delta_bytes: u64,
}

/// Where a part of the target lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartKind {
    /// A file inside a filesystem image ([`ItemCost::path`] names it).
    File,
    /// Bytes of a filesystem image that no file owns: inode tables, directories, bitmaps,
    /// journal, superblocks.
    Metadata,
    /// A payload's own bytes where it is not read as a filesystem (sw-description, scripts,
    /// images of other kinds).
    Payload,
    /// cpio headers and padding of the archive (charged to the member they introduce) and
    /// its trailer.
    Framing,
}

impl PartKind {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            PartKind::File => "file",
            PartKind::Metadata => "metadata",
            PartKind::Payload => "payload",
            PartKind::Framing => "framing",
        }
    }
}

/// What one part of the target (a file inside a filesystem image, or the other bytes of a
/// payload) costs in the delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemCost {
    /// The target member it belongs to.
    pub member: String,
    /// The file's path inside the member's filesystem; `None` for filesystem metadata, cpio
    /// headers and payloads that are not filesystems.
    pub path: Option<String>,
    /// What kind of part it is.
    pub kind: PartKind,
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

pub(crate) fn io_at<'p>(
    what: &'static str,
    path: &'p Path,
) -> impl FnOnce(io::Error) -> Error + 'p {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
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

/// One run of the stages, re-created payloads compared as `check` says.
fn create_checked(
    source: &Path,
    target: &Path,
    output: &Path,
    options: &Options,
    check: Check,
) -> Result<Outcome, Error> {
    let mut timings = Timings::start();
    let progress = &options.progress;
    progress.report("reading the inputs", 0, 0);
    let inputs = inputs::open(source, target, options)?;
    timings.lap("read inputs");
    progress.report("decompressing", 0, 0);
    // The target's contents, which planning needs first, are decompressed beside the
    // source's (each a single-threaded stream).
    let (contents, ()) = rayon::join(
        || source::decompress(&inputs, source, options),
        || plan::prefetch_contents(&inputs, target, options),
    );
    let contents = contents?;
    timings.lap("decompress");
    progress.report("indexing the source", 0, 0);
    let sources = contents.sources(&inputs.source_map);
    timings.lap("index source");
    let plan::Plan {
        mut planner,
        pending,
        new_bytes,
        new_file: _new_file,
    } = plan::plan(&inputs, target, &sources, options, check)?;
    let new_bytes = new_bytes.as_deref().unwrap_or(&[]);
    timings.lap("plan");
    progress.report("encoding", 0, 0);
    let encoded = encode::encode(&mut planner, new_bytes, &sources, options)?;
    timings.lap("encode");
    progress.report("writing", 0, 0);
    let written = write::write(&mut planner, pending, new_bytes, encoded, output)?;
    report::report(&mut planner.stats, &planner.costs, &written.stream_sizes);
    timings.lap("write");
    if written.len >= inputs.target_item.length() {
        return Err(Error::NotSmaller {
            delta: written.len,
            target: inputs.target_item.length(),
        });
    }
    if options.verify {
        progress.report("verifying", 0, 0);
        verify::verify(
            source,
            written.file.path(),
            inputs.target_item,
            &options.work_dir,
            &mut planner.rechecks,
        )?;
        timings.lap("verify");
    }
    publish(written.file, output)?;
    Ok(Outcome {
        source: inputs.source_item,
        target: inputs.target_item,
        delta_len: written.len,
        delta_sha256: written.sha256,
        stats: planner.stats,
        verified: options.verify,
        timings: timings.laps,
    })
}

/// Moves the finished delta into place, on disk first.
fn publish(file: tempfile::NamedTempFile, output: &Path) -> Result<(), Error> {
    file.as_file()
        .sync_all()
        .map_err(io_at("cannot write", output))?;
    file.persist(output).map_err(|e| Error::Io {
        what: "cannot move the finished delta into place",
        path: output.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Wall time per stage.
struct Timings {
    stage: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl Timings {
    fn start() -> Self {
        Timings {
            stage: Instant::now(),
            laps: Vec::new(),
        }
    }

    /// Ends stage `name` and starts the next.
    fn lap(&mut self, name: &'static str) {
        self.laps.push((name, self.stage.elapsed()));
        self.stage = Instant::now();
    }
}
