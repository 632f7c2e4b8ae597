//! The device-side applier: rebuilds a delta's target from a source file within a fixed memory
//! bound, verifies it, and only then puts it in place.
//!
//! Sequence: read and check the delta (blob hashes, recipes); hash the source and any known-item
//! files into the pantry; resolve the target (module `plan`); stream it through the recipes
//! (module `kitchen`) into a temporary file beside the output while hashing; compare length and
//! SHA-256 with the delta's target item; rename. Any error leaves no output behind.

mod budget;
mod kitchen;
mod known;
mod plan;
mod streams;
mod temp;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::archive::Archive;
use crate::io::{FileAt, RangeAt, ReadAt, SharedAt, IO_CHUNK};
use crate::item::Item;
use crate::reader::{hash_range, read_path, ReadError, ReadLimits};
use crate::recipe::{Recipe, RecipeType};

pub use kitchen::{zstd_compression_memory, BSPATCH_MEMORY};
pub use known::{KnownItem, KnownItemOutcome, KnownItemReport};

/// Default memory budget for the cookbook and decoder state (see
/// [`ApplyOptions::memory_budget`]). With the applier's baseline (a few MiB of code, I/O
/// buffers and zlib state) peak RSS stays under 64 MiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 48 << 20;
/// Recipe graphs deeper than this are refused (the executor recurses once per level).
pub const MAX_PLAN_DEPTH: usize = 256;

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Folder for spill files (items that must be read out of order). Default: the system's
    /// temporary folder.
    pub temp_dir: Option<PathBuf>,
    /// Extra pantry files (see [`KnownItem`]): every prefix whose length is that of an item
    /// of the delta is hashed, in one pass, and each prefix that is such an item is offered.
    pub known_items: Vec<KnownItem>,
    /// Bytes the cookbook (parsed recipes and the plan, see [`COOKBOOK_BYTES_PER_SET`]) and
    /// the large decoder state (zstd windows and bases, bspatch's bzip2 blocks, zstd compression
    /// tables) may take at once. A delta that needs more is refused with the numbers.
    pub memory_budget: u64,
    /// Limits for reading the delta.
    pub limits: ReadLimits,
    /// Refuse a delta whose target is longer than this (a device knows the largest image it
    /// can take). `None`: no limit besides the free space of the output's filesystem, which is
    /// always checked before anything is written.
    pub max_target_len: Option<u64>,
    /// Results checked elsewhere (see [`KnownResult`]); devices have no use for them.
    pub known_results: Vec<KnownResult>,
}

/// An item whose recipe the caller has checked itself, in a file: its recipe is not run,
/// but every ingredient of that recipe is still made and checked against its hash, and the
/// item's bytes are read from `path` at `offset`. diffgen's generator verifies a delta this
/// way: it compares each re-created payload with the compression of its content while it
/// plans (with the compressors this applier runs), so the verifying apply need not compress
/// the content again; that the delta makes the content is still checked here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownResult {
    pub item: Item,
    pub path: PathBuf,
    pub offset: u64,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            temp_dir: None,
            known_items: Vec::new(),
            memory_budget: DEFAULT_MEMORY_BUDGET,
            limits: ReadLimits::default(),
            max_target_len: None,
            known_results: Vec::new(),
        }
    }
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The target made and verified.
    pub target: Item,
    /// The source file as hashed.
    pub source: Item,
    /// Recipes started, by type id (a recipe used twice in a stream counts twice).
    pub recipes_run: [u64; RecipeType::COUNT],
    /// Each known item offered, in order: used, or why not.
    pub known_items: Vec<KnownItemReport>,
    /// Items written to spill files, and their bytes (the temp disk space used).
    pub spilled_items: u64,
    pub spilled_bytes: u64,
    /// Largest decoder memory reserved at once.
    pub peak_reserved_memory: u64,
    /// Depth of the recipe graph used.
    pub plan_depth: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "target:  {} (verified)", self.target)?;
        writeln!(f, "source:  {}", self.source)?;
        let used: Vec<String> = RecipeType::ALL
            .iter()
            .filter_map(|t| {
                let n = self.recipes_run.get(t.id() as usize).copied().unwrap_or(0);
                (n > 0).then(|| format!("{} x{n}", t.name()))
            })
            .collect();
        writeln!(f, "recipes: {}", used.join(", "))?;
        for k in &self.known_items {
            writeln!(f, "known item {k}")?;
        }
        writeln!(
            f,
            "temp disk: {} items spilled, {} bytes; peak decoder memory {} bytes; graph depth {}",
            self.spilled_items, self.spilled_bytes, self.peak_reserved_memory, self.plan_depth
        )
    }
}

/// Why an apply failed. No output file exists after any of these.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("delta: {0}")]
    Delta(Box<ReadError>),
    #[error("source {path}: {source}")]
    Source {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("known item {path}: {reason}")]
    KnownItem { path: String, reason: String },
    #[error("the delta's target item is empty; there is nothing to apply")]
    EmptyTarget,
    #[error("the delta's target is {length} bytes, more than the {limit}-byte limit")]
    TargetTooLarge { length: u64, limit: u64 },
    #[error(
        "the delta's target is {needed} bytes, but only {available} bytes are free for {path}"
    )]
    NoSpace {
        path: String,
        needed: u64,
        available: u64,
    },
    #[error("{0}")]
    Unresolvable(Box<Unresolved>),
    #[error("the delta's recipe graph is {depth} levels deep; the limit is {limit}")]
    TooDeep { depth: usize, limit: usize },
    #[error("{what} needs {needed} bytes of memory, but only {} of the {limit}-byte budget are free; raise the budget or make the delta with smaller windows/bases", limit - in_use)]
    MemoryLimit {
        what: String,
        needed: u64,
        in_use: u64,
        limit: u64,
    },
    #[error("making {item}{}: {source}", recipe.map(|r| format!(" with {r}")).unwrap_or_default())]
    Produce {
        item: Item,
        recipe: Option<RecipeType>,
        #[source]
        source: io::Error,
    },
    #[error(
        "an intermediate item came out wrong (expected {expected}, made {actual}), so the target did not match; nothing was written"
    )]
    ItemMismatch { expected: Item, actual: Item },
    #[error(
        "the rebuilt target is {actual}, but the delta's target is {expected}; nothing was written"
    )]
    TargetMismatch { expected: Item, actual: Item },
    #[error("temporary file in {dir}: {source}")]
    TempFile {
        dir: String,
        #[source]
        source: io::Error,
    },
    #[error("output {path}: {source}")]
    Output {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ReadError> for ApplyError {
    fn from(e: ReadError) -> Self {
        ApplyError::Delta(Box::new(e))
    }
}

/// Details of [`ApplyError::Unresolvable`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the delta cannot make its target {target}: nothing makes {}{}", list(.missing), source_hint(.delta_source, .given_source, .missing))]
pub struct Unresolved {
    pub target: Item,
    /// Items the target needs that no pantry entry or recipe makes (up to 8).
    pub missing: Vec<Item>,
    /// The source item the delta declares.
    pub delta_source: Item,
    /// The source file given, as hashed.
    pub given_source: Item,
}

fn list(items: &[Item]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn source_hint(delta_source: &Item, given: &Item, missing: &[Item]) -> String {
    if missing.contains(delta_source) && delta_source != given {
        format!(" (the delta was made for source {delta_source}; the source given is {given})")
    } else {
        String::new()
    }
}

/// What applying a delta will take, known before it is applied (assuming the device has the
/// source the delta declares, and no known items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    /// Items written to temp files, and their total size: the temp disk space needed.
    pub spilled_items: u64,
    pub spill_bytes: u64,
    /// Largest zstd basis (held in memory while decoding).
    pub largest_zstd_basis: u64,
    /// Recipes the plan uses, by type id.
    pub recipes_used: [u64; RecipeType::COUNT],
    /// Depth of the recipe graph used.
    pub plan_depth: usize,
}

/// Plans the apply of `archive` without any file: which recipes it will use, what it spills,
/// the largest zstd basis. Fails with [`ApplyError::Unresolvable`] if the target cannot be made
/// from the declared source.
pub fn requirements(archive: &Archive) -> Result<Requirements, ApplyError> {
    let archives = archive.walk();
    let mut pantry_items = vec![archive.source];
    for a in &archives {
        pantry_items.extend(
            [a.inline_assets, a.remainder]
                .into_iter()
                .flatten()
                .map(|b| b.item),
        );
    }
    let plan = plan::resolve(archive.target, &pantry_items, &archives).map_err(|u| {
        ApplyError::Unresolvable(Box::new(Unresolved {
            target: archive.target,
            missing: u.missing,
            delta_source: archive.source,
            given_source: archive.source,
        }))
    })?;
    let spilled = kitchen::spilled_items(&plan);
    let mut recipes_used = [0u64; RecipeType::COUNT];
    let mut largest_zstd_basis = 0;
    for (_, step) in plan.needed() {
        if let plan::Step::Recipe(r) = step {
            if let Some(c) = recipes_used.get_mut(r.recipe_type().id() as usize) {
                *c += 1;
            }
            if let Recipe::ZstdDecompression { basis: Some(b), .. } = r {
                largest_zstd_basis = largest_zstd_basis.max(b.length());
            }
        }
    }
    Ok(Requirements {
        spilled_items: spilled.len() as u64,
        spill_bytes: spilled.iter().map(|i| i.length()).sum(),
        largest_zstd_basis,
        recipes_used,
        plan_depth: plan.depth,
    })
}

/// Rebuilds the target of `delta` from `source` into `output`.
pub fn apply(
    source: &Path,
    delta: &Path,
    output: &Path,
    options: &ApplyOptions,
) -> Result<Report, ApplyError> {
    // 1. The delta, fully checked before anything else is read or written.
    let (archive, delta_file) = read_path(delta, &options.limits)?;
    if archive.target.is_empty() {
        return Err(ApplyError::EmptyTarget);
    }
    let length = archive.target.length();
    if let Some(limit) = options.max_target_len.filter(|&l| length > l) {
        return Err(ApplyError::TargetTooLarge { length, limit });
    }
    // A hostile or mistaken delta can declare any length (an all-zeros target of a terabyte
    // takes a few bytes): refuse what cannot fit before reading the source.
    let out_dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Some(available) = free_space(out_dir).filter(|&a| length > a) {
        return Err(ApplyError::NoSpace {
            path: output.display().to_string(),
            needed: length,
            available,
        });
    }
    let delta_file: SharedAt = Rc::new(delta_file);
    let archives = archive.walk();

    // 2. The pantry: the source, known items, and every archive's blobs.
    let source_at = FileAt::open(source).map_err(|e| ApplyError::Source {
        path: source.display().to_string(),
        source: e,
    })?;
    let source_item =
        hash_range(&source_at, 0, source_at.size()).map_err(|(_, e)| ApplyError::Source {
            path: source.display().to_string(),
            source: e,
        })?;
    let mut pantry_items = vec![source_item];
    let mut pantry: Vec<SharedAt> = vec![Rc::new(source_at)];

    let mut offered = Vec::new();
    for o in known::offer(&options.known_items, &archives)? {
        let first_index = pantry.len();
        for (item, at) in &o.entries {
            pantry_items.push(*item);
            pantry.push(Rc::clone(at));
        }
        offered.push((o, first_index));
    }
    for a in &archives {
        for blob in [a.inline_assets, a.remainder].into_iter().flatten() {
            let range = RangeAt::new(Rc::clone(&delta_file), blob.offset, blob.item.length())
                .map_err(|e| ReadError::Io {
                    offset: blob.offset,
                    source: e,
                })?;
            pantry_items.push(blob.item);
            pantry.push(Rc::new(range));
        }
    }

    // 3. Resolution. The cookbook and the plan take their share of the memory budget first.
    let budget = budget::Budget::new(options.memory_budget);
    let (cookbook_bytes, entries) = cookbook_memory(&archives);
    let _cookbook_memory = budget.reserve(
        cookbook_bytes,
        &format!("the cookbook ({entries} recipe sets, recipes and ingredients)"),
    )?;
    let plan = plan::resolve(archive.target, &pantry_items, &archives).map_err(|u| {
        ApplyError::Unresolvable(Box::new(Unresolved {
            target: archive.target,
            missing: u.missing,
            delta_source: archive.source,
            given_source: source_item,
        }))
    })?;
    if plan.depth > MAX_PLAN_DEPTH {
        return Err(ApplyError::TooDeep {
            depth: plan.depth,
            limit: MAX_PLAN_DEPTH,
        });
    }

    let known_items = known::settle(offered, |index| {
        plan.needed()
            .any(|(_, s)| matches!(s, plan::Step::Pantry(n) if n == index))
    });

    // 4. Execution into a pending output, hashed on the way.
    let temp_dir = options.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let temp = temp::TempFiles::new(temp_dir);
    let known_results = open_known_results(&options.known_results)?;
    let kitchen = kitchen::Kitchen::new(&plan, &pantry, &known_results, &temp, Rc::clone(&budget));
    let output_err = |e: io::Error| ApplyError::Output {
        path: output.display().to_string(),
        source: e,
    };
    let mut pending = temp::PendingOutput::create(output).map_err(output_err)?;
    let made = match write_target(&kitchen, &archive.target, &mut pending.file, output) {
        Ok(made) => made,
        // A decoder that fails on an intermediate (a patch, a basis) may have been fed a
        // wrong spill: name the spill then, it is the cause.
        Err(e @ ApplyError::Produce { .. }) => {
            return Err(match kitchen.first_wrong_spill() {
                Some((expected, actual)) => ApplyError::ItemMismatch { expected, actual },
                None => e,
            })
        }
        Err(e) => return Err(e),
    };
    if made != archive.target {
        if let Some((expected, actual)) = kitchen.first_wrong_spill() {
            return Err(ApplyError::ItemMismatch { expected, actual });
        }
        return Err(ApplyError::TargetMismatch {
            expected: archive.target,
            actual: made,
        });
    }
    // 5. Verified: put it in place.
    pending.commit().map_err(output_err)?;

    let stats = kitchen.stats();
    Ok(Report {
        target: made,
        source: source_item,
        recipes_run: stats.recipes_run,
        known_items,
        spilled_items: stats.spilled_items,
        spilled_bytes: stats.spilled_bytes,
        peak_reserved_memory: budget.peak(),
        plan_depth: plan.depth,
    })
}

/// The files of [`ApplyOptions::known_results`], opened, by item.
fn open_known_results(
    results: &[KnownResult],
) -> Result<std::collections::HashMap<Item, SharedAt>, ApplyError> {
    let mut out = std::collections::HashMap::new();
    for r in results {
        let err = |e: io::Error| ApplyError::KnownItem {
            path: r.path.display().to_string(),
            reason: format!("known result {} at offset {}: {e}", r.item, r.offset),
        };
        let file = FileAt::open(&r.path).map_err(err)?;
        let at = RangeAt::new(Rc::new(file), r.offset, r.item.length()).map_err(err)?;
        out.insert(r.item, Rc::new(at) as SharedAt);
    }
    Ok(out)
}

/// Bytes an unprivileged process may still write on the filesystem that holds `dir`, or
/// `None` when that cannot be told.
#[cfg(unix)]
pub fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c_path` is NUL-terminated and `st` is a writable statvfs; statvfs only writes
    // into it and we read it only after success.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs succeeded and filled the struct.
    let st = unsafe { st.assume_init() };
    // The field types differ between targets (32-bit on some 32-bit ARM C libraries).
    #[allow(clippy::unnecessary_cast)]
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(not(unix))]
pub fn free_space(_dir: &Path) -> Option<u64> {
    None
}

/// Streams the target into `out`; returns the item of what was written.
fn write_target(
    kitchen: &kitchen::Kitchen,
    target: &Item,
    out: &mut std::fs::File,
    output: &Path,
) -> Result<Item, ApplyError> {
    let output_err = |e: io::Error| ApplyError::Output {
        path: output.display().to_string(),
        source: e,
    };
    let mut writer = io::BufWriter::with_capacity(IO_CHUNK, out);
    let made = kitchen.make_into(target, &mut writer, &output_err)?;
    writer.flush().map_err(output_err)?;
    Ok(made)
}

/// Estimated memory of the cookbook in the applier, per element: the parsed archive (a recipe
/// set is 72 bytes, a recipe 104, a chain part 48) plus the plan (item table, step and tables
/// per item; ids per recipe and ingredient). Conservative: measured about 90 bytes per element
/// on a 240,000-element cookbook, where this estimate gives 128.
pub const COOKBOOK_BYTES_PER_SET: u64 = 240;
pub const COOKBOOK_BYTES_PER_RECIPE: u64 = 140;
pub const COOKBOOK_BYTES_PER_INGREDIENT: u64 = 64;

/// The cookbook's memory estimate and its size in entries, over all archives.
fn cookbook_memory(archives: &[&Archive]) -> (u64, u64) {
    let (mut sets, mut recipes, mut ingredients) = (0u64, 0u64, 0u64);
    for a in archives {
        sets += a.recipe_sets.len() as u64;
        for (_, r) in a.recipes() {
            recipes += 1;
            r.for_each_item(|_| ingredients += 1);
        }
    }
    let bytes = sets * COOKBOOK_BYTES_PER_SET
        + recipes * COOKBOOK_BYTES_PER_RECIPE
        + ingredients * COOKBOOK_BYTES_PER_INGREDIENT;
    (bytes, sets + recipes + ingredients)
}
