//! `diffgen create` and the DiffGenTool positional form: optional recompression, delta
//! generation with verification (and, with `--check-with`, a check by the devices' own
//! applier before the delta is moved into place), logs (`diffgen.log`, `report.json`,
//! `report.html`, `diff.json`, `check-with.log`) and a summary for people or pipelines.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use delta::Profile;
use serde::Serialize;

use crate::check_with::{CheckWith, Staged};
use crate::cli::{CompressionArg, CreateArgs, IdentityArgs, ProfileArg};
use crate::failure::Failure;

/// Deltas to make: one per source, to one target.
pub struct Job {
    pub sources: Vec<PathBuf>,
    pub target: PathBuf,
    /// One output path per source.
    pub outputs: Vec<PathBuf>,
    /// Write the import manifest here, with this identity.
    pub manifest: Option<(PathBuf, IdentityArgs)>,
    /// Recompress the target into this file first, with these options.
    pub recompress: Option<(PathBuf, recompress::Options)>,
    pub profile: ProfileArg,
    /// Working folder; `None`: a temp folder removed afterwards.
    pub work: Option<PathBuf>,
    pub logs: Option<PathBuf>,
    pub verify: bool,
    /// Also rebuild each delta with this applier before publishing it (`--check-with`).
    pub check_with: Option<CheckWith>,
    /// See [`generate::Options::memory_limit`].
    pub memory_limit: u64,
    /// Draw progress on a terminal (not with --quiet or --json).
    pub show_progress: bool,
}

/// What one part of the target cost in the delta, for report.json, report.html and the log
/// (see [`generate::ItemCost`]).
#[derive(Serialize)]
pub struct ExpensiveItem {
    pub member: String,
    /// Path inside the member's filesystem; absent for metadata and non-filesystem bytes.
    pub path: Option<String>,
    /// "file", "metadata" (of a filesystem), "payload" (a member not read as a filesystem) or
    /// "framing" (cpio headers and trailer).
    pub kind: &'static str,
    pub how: &'static str,
    pub changed_bytes: u64,
    pub delta_bytes: u64,
}

/// The parts of the target past [`generate::COST_ITEMS`], summed.
#[derive(Serialize)]
pub struct CostsLeftOut {
    pub parts: u64,
    pub changed_bytes: u64,
    pub delta_bytes: u64,
}

/// What a run made.
#[derive(Serialize)]
pub struct RunSummary {
    pub deltas: Vec<Summary>,
    pub manifest: Option<String>,
}

#[derive(Serialize)]
pub struct Summary {
    pub source: String,
    pub target: String,
    pub output: String,
    pub profile: &'static str,
    pub source_size: u64,
    pub target_size: u64,
    pub delta_size: u64,
    pub delta_sha256: String,
    pub ratio: f64,
    pub verified: bool,
    /// The `--check-with` command that rebuilt the target exactly from this delta.
    pub checked_with: Option<String>,
    pub reused_bytes: u64,
    pub zero_bytes: u64,
    pub new_bytes: u64,
    pub recipes: usize,
    /// gzip files inside target filesystems that the device re-creates from their text.
    pub inner_gzip_files: usize,
    /// Their compressed size in all.
    pub inner_gzip_bytes: u64,
    /// Of those, the files re-created with GNU gzip's deflate (`gnu_gzip_compression`).
    pub inner_gzip_gnu_files: usize,
    /// New bytes compressed after the x86 branch filter (`bcj_x86_decode` on the device).
    pub bcj_filtered_bytes: u64,
    /// Changed files inside filesystems rebuilt with a patch (bsdiff or executable), and the
    /// patches' size in the delta.
    pub patched_files: usize,
    pub patch_bytes: u64,
    /// Of those, the files rebuilt with an executable patch (`exe_bspatch`).
    pub exe_patched_files: usize,
    /// What the patches saved against zstd with the old version as basis.
    pub patch_saved_bytes: u64,
    /// The parts of the target that cost the most in the delta (see
    /// [`generate::ItemCost`]): the first [`generate::TOP_ITEMS`] of `costs`.
    pub most_expensive: Vec<ExpensiveItem>,
    /// Every part, most expensive first, at most [`generate::COST_ITEMS`]; the delta bytes of
    /// the parts past that limit are summed in `costs_left_out`. What the parts do not add
    /// up to of `delta_size` is the delta's own structure (recipes, item hashes, headers).
    pub costs: Vec<ExpensiveItem>,
    pub costs_left_out: CostsLeftOut,
    pub identical_payloads: Vec<String>,
    pub recreated_payloads: Vec<(String, String)>,
    /// What the planner could not do and why (e.g. a content that is not a filesystem).
    pub notes: Vec<String>,
    /// Every changed executable inside target filesystems: the encoding chosen, bsdiff's and
    /// zstd's sizes, or why bsdiff was not evaluated.
    pub executables: Vec<String>,
    pub stage_seconds: Vec<(&'static str, f64)>,
    pub total_seconds: f64,
}

/// The profile "auto" means: zstd if any target payload is a zstd frame.
fn choose_profile(choice: ProfileArg, target: &Path) -> Result<Profile, Failure> {
    match choice {
        ProfileArg::Zstd => return Ok(Profile::Extended),
        ProfileArg::Gzip => return Ok(Profile::Gzip),
        ProfileArg::Auto => {}
    }
    let err = |e: std::io::Error| Failure::new(format!("cannot read: {e} ({})", target.display()));
    let archive = swu::cpio::Archive::scan(
        std::io::BufReader::new(File::open(target).map_err(err)?),
        swu::cpio::ReadOptions::default(),
    )
    .map_err(|e| Failure::new(format!("{}: {e}", target.display())))?;
    let mut f = File::open(target).map_err(err)?;
    for m in &archive.members {
        let mut head = [0u8; 4];
        let mut r = swu::cpio::member_reader(&mut f, m).map_err(err)?;
        let n = r.read(&mut head).map_err(err)?;
        if codec::sniff(&head[..n]) == Some(codec::Sniffed::Zstd) {
            return Ok(Profile::Extended);
        }
    }
    Ok(Profile::Gzip)
}

pub fn execute(job: &Job) -> Result<RunSummary, Failure> {
    let start = Instant::now();
    let target = match &job.recompress {
        Some((path, options)) => {
            let report = crate::recompress::execute(&job.target, path, options)?;
            if let Some(logs) = &job.logs {
                write_log(
                    &logs.join("recompression.log"),
                    &crate::recompress::text(&report),
                )?;
            }
            path.clone()
        }
        None => job.target.clone(),
    };
    let profile = choose_profile(job.profile, &target)?;
    let temp_work;
    let work = match &job.work {
        Some(w) => w.join("diffgen"),
        None => {
            let first = job
                .outputs
                .first()
                .map(|o| parent_of(o))
                .unwrap_or_else(|| PathBuf::from("."));
            temp_work = cleanup::TempDir::new_in(&first, ".diffgen-work-")
                .map_err(|e| Failure::new(format!("cannot create a working folder: {e}")))?;
            temp_work.path().to_path_buf()
        }
    };
    // One working folder for all sources: the target's contents are decompressed once.
    let mut options = generate::Options::new(profile, work);
    options.verify = job.verify;
    options.memory_limit = job.memory_limit;
    let display = crate::progress::Display::new(job.show_progress);
    let check_log = job.logs.as_ref().map(|l| l.join("check-with.log"));
    if let (Some(_), Some(log)) = (&job.check_with, &check_log) {
        let _ = std::fs::remove_file(log); // a log folder may be reused
    }
    let mut deltas = Vec::new();
    for (source, output) in job.sources.iter().zip(&job.outputs) {
        let run_start = Instant::now();
        options.progress = display.progress(&stem(source));
        // With --check-with the delta stays at a temp path until the device's applier has
        // rebuilt the target from it.
        let staged = Staged::new(output, job.check_with.is_some())?;
        let outcome = generate::create(source, &target, staged.path(), &options);
        display.finish();
        let outcome =
            outcome.map_err(|e| Failure::new(format!("{e} (delta from {})", source.display())))?;
        let check = job.check_with.as_ref();
        let where_ = (
            target.as_path(),
            options.work_dir.as_path(),
            check_log.as_deref(),
        );
        let check_secs = check_and_publish(check, staged, source, where_)?;
        let mut summary = summarize(source, &target, output, profile, &outcome, run_start);
        if let (Some(check), Some(secs)) = (check, check_secs) {
            summary.checked_with = Some(check.command.clone());
            summary.stage_seconds.push(("check with", secs));
        }
        deltas.push(summary);
    }
    if !deltas.is_empty() {
        // The first delta's time includes recompression and set-up.
        let first = deltas_total(start, &deltas[1..]);
        deltas[0].total_seconds = first;
    }
    let manifest = match &job.manifest {
        Some((path, identity)) => {
            let pairs: Vec<(PathBuf, PathBuf)> = job
                .outputs
                .iter()
                .cloned()
                .zip(job.sources.iter().cloned())
                .collect();
            crate::manifest_cmd::write_manifest(identity, &target, &pairs, path)?;
            Some(path.display().to_string())
        }
        None => None,
    };
    let run = RunSummary { deltas, manifest };
    if let Some(logs) = &job.logs {
        write_logs(logs, &run, &job.outputs)?;
    }
    Ok(run)
}

/// Runs the `--check-with` command (if any) on the staged delta from `source`, then moves the
/// delta into place; returns the seconds the check took. `(target, work, log)`: the target it
/// must rebuild, the folder for the rebuilt file, the log for the command's output.
fn check_and_publish(
    check: Option<&CheckWith>,
    staged: Staged,
    source: &Path,
    (target, work, log): (&Path, &Path, Option<&Path>),
) -> Result<Option<f64>, Failure> {
    let start = Instant::now();
    if let Some(check) = check {
        check.check(source, staged.path(), target, work, log)?;
    }
    staged.publish()?;
    Ok(check.map(|_| start.elapsed().as_secs_f64()))
}

/// Wall time of the whole run minus that of the other deltas.
fn deltas_total(start: Instant, others: &[Summary]) -> f64 {
    start.elapsed().as_secs_f64() - others.iter().map(|s| s.total_seconds).sum::<f64>()
}

fn summarize(
    source: &Path,
    target: &Path,
    output: &Path,
    profile: Profile,
    outcome: &generate::Outcome,
    start: Instant,
) -> Summary {
    Summary {
        source: source.display().to_string(),
        target: target.display().to_string(),
        output: output.display().to_string(),
        profile: match profile {
            Profile::Extended => "zstd (diffgen applier)",
            Profile::Gzip => "gzip (ADU stock applier)",
        },
        source_size: outcome.source.length(),
        target_size: outcome.target.length(),
        delta_size: outcome.delta_len,
        delta_sha256: swu::hex::encode(&outcome.delta_sha256),
        ratio: outcome.delta_len as f64 / outcome.target.length() as f64,
        verified: outcome.verified,
        checked_with: None,
        reused_bytes: outcome.stats.reused_bytes,
        zero_bytes: outcome.stats.zero_bytes,
        new_bytes: outcome.stats.new_bytes,
        recipes: outcome.stats.recipes,
        inner_gzip_files: outcome.stats.inner_gz_files,
        inner_gzip_bytes: outcome.stats.inner_gz_bytes,
        inner_gzip_gnu_files: outcome.stats.inner_gz_gnu_files,
        bcj_filtered_bytes: outcome.stats.bcj_filtered_bytes,
        patched_files: outcome.stats.patched_files,
        patch_bytes: outcome.stats.patch_bytes,
        exe_patched_files: outcome.stats.exe_patched_files,
        patch_saved_bytes: outcome.stats.patch_saved_bytes,
        most_expensive: outcome.stats.most_expensive.iter().map(item).collect(),
        costs: outcome.stats.costs.iter().map(item).collect(),
        costs_left_out: CostsLeftOut {
            parts: outcome.stats.costs_left_out.parts,
            changed_bytes: outcome.stats.costs_left_out.changed_bytes,
            delta_bytes: outcome.stats.costs_left_out.delta_bytes,
        },
        identical_payloads: outcome.stats.identical_payloads.clone(),
        recreated_payloads: outcome.stats.recreated.clone(),
        notes: outcome.stats.notes.clone(),
        executables: outcome.stats.executables.clone(),
        stage_seconds: outcome
            .timings
            .iter()
            .map(|(s, d)| (*s, d.as_secs_f64()))
            .collect(),
        total_seconds: start.elapsed().as_secs_f64(),
    }
}

fn item(c: &generate::ItemCost) -> ExpensiveItem {
    ExpensiveItem {
        member: c.member.clone(),
        path: c.path.clone(),
        kind: c.kind.name(),
        how: c.how,
        changed_bytes: c.changed_bytes,
        delta_bytes: c.delta_bytes,
    }
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn write_log(path: &Path, text: &str) -> Result<(), Failure> {
    crate::manifest_cmd::write_atomically(path, text.as_bytes())
}

fn write_logs(logs: &Path, run: &RunSummary, outputs: &[PathBuf]) -> Result<(), Failure> {
    let log: String = run
        .deltas
        .iter()
        .map(|s| text(s) + &expensive_text(s))
        .collect::<Vec<_>>()
        .join("\n");
    write_log(&logs.join("diffgen.log"), &log)?;
    let json = serde_json::to_string_pretty(run).expect("plain data");
    write_log(&logs.join("report.json"), &json)?;
    let html = crate::report_html::run_page(run);
    write_log(&logs.join(crate::report_html::FILE_NAME), &html)?;
    for delta_path in outputs {
        let (archive, _) = delta::read_path(delta_path, &delta::ReadLimits::default())
            .map_err(|e| Failure::new(format!("cannot read back the delta: {e}")))?;
        let graph =
            serde_json::to_string_pretty(&delta::inspect::inspect(&archive)).expect("plain data");
        let name = if outputs.len() == 1 {
            "diff.json".to_string()
        } else {
            format!(
                "diff-{}.json",
                delta_path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            )
        };
        write_log(&logs.join(name), &graph)?;
    }
    Ok(())
}

pub fn text(s: &Summary) -> String {
    let mut t = format!(
        "Delta {} -> {}\n  written: {} ({} bytes, {:.2}% of the target's {} bytes), sha256 {}\n  profile: {}\n  verified by applying it: {}\n",
        s.source,
        s.target,
        s.output,
        s.delta_size,
        s.ratio * 100.0,
        s.target_size,
        s.delta_sha256,
        s.profile,
        if s.verified { "yes" } else { "NO (--no-verify)" }
    );
    if let Some(command) = &s.checked_with {
        t.push_str(&format!(
            "  checked with {command:?}: rebuilt the target exactly\n"
        ));
    }
    t.push_str(&format!(
        "  target bytes: {} reused from the source, {} zero runs, {} new; {} recipes\n",
        s.reused_bytes, s.zero_bytes, s.new_bytes, s.recipes
    ));
    if s.inner_gzip_files > 0 {
        t.push_str(&format!(
            "  gzip files inside filesystems rebuilt on the device from their diffed text: {} ({} bytes; {} of them with GNU gzip's deflate)\n",
            s.inner_gzip_files, s.inner_gzip_bytes, s.inner_gzip_gnu_files
        ));
    }
    if s.bcj_filtered_bytes > 0 {
        t.push_str(&format!(
            "  new bytes compressed with x86 branch targets made absolute (executables): {} bytes\n",
            s.bcj_filtered_bytes
        ));
    }
    if s.patched_files > 0 {
        t.push_str(&format!(
            "  changed files patched (smaller than zstd against the old version): {} ({} with an executable patch, {} bytes of patches, {} bytes saved)\n",
            s.patched_files, s.exe_patched_files, s.patch_bytes, s.patch_saved_bytes
        ));
    }
    for p in &s.identical_payloads {
        t.push_str(&format!("  {p}: identical to a source payload\n"));
    }
    for (p, how) in &s.recreated_payloads {
        t.push_str(&format!("  {p}: rebuilt on the device by {how}\n"));
    }
    for n in &s.notes {
        t.push_str(&format!("  note: {n}\n"));
    }
    if !s.executables.is_empty() {
        t.push_str("  changed executables (encoding chosen; sizes of each encoding evaluated):\n");
        for e in &s.executables {
            t.push_str(&format!("    {e}\n"));
        }
    }
    let stages: Vec<String> = s
        .stage_seconds
        .iter()
        .map(|(n, d)| format!("{n} {d:.2}s"))
        .collect();
    t.push_str(&format!(
        "  time: {:.2}s ({})\n",
        s.total_seconds,
        stages.join(", ")
    ));
    t
}

/// The log's table of the most expensive parts of the target.
fn expensive_text(s: &Summary) -> String {
    if s.most_expensive.is_empty() {
        return String::new();
    }
    let mut t = String::from(
        "  most expensive parts of the target (delta bytes, changed bytes, what, how):\n",
    );
    for c in &s.most_expensive {
        let what = match (&c.path, c.kind) {
            (Some(p), _) => format!("{}:{p}", c.member),
            (None, "metadata") => format!("{} (filesystem metadata)", c.member),
            (None, "framing") => format!("{} (cpio header)", c.member),
            (None, _) => format!("{} (payload bytes)", c.member),
        };
        t.push_str(&format!(
            "  {:>10} {:>12}  {what}  [{}]\n",
            c.delta_bytes, c.changed_bytes, c.how
        ));
    }
    t
}

/// The summary's line naming the page of the run in log folder `logs`.
pub fn report_line(logs: &Path) -> String {
    format!(
        "Report: {} (why the delta is this big; open it in a browser)",
        logs.join(crate::report_html::FILE_NAME).display()
    )
}

/// `v1.0.swu` → `v1.0`.
fn stem(p: &Path) -> String {
    let name = p
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    name.strip_suffix(".swu").unwrap_or(&name).to_string()
}

pub fn run(args: &CreateArgs) -> Result<ExitCode, Failure> {
    for p in args.sources().chain([&args.target]) {
        if !p.is_file() {
            return Err(Failure::new(format!("not a file ({})", p.display())));
        }
    }
    if let Some(logs) = &args.logs {
        std::fs::create_dir_all(logs).map_err(|e| {
            Failure::new(format!(
                "cannot create the log folder: {e} ({})",
                logs.display()
            ))
        })?;
    }
    let target_name = stem(args.recompressed.as_ref().unwrap_or(&args.target));
    let outputs: Vec<PathBuf> = if args.source.len() == 1 && !args.output.is_dir() {
        vec![args.output.clone()]
    } else {
        std::fs::create_dir_all(&args.output).map_err(|e| {
            Failure::new(format!(
                "cannot create the output folder: {e} ({})",
                args.output.display()
            ))
        })?;
        let names: Vec<PathBuf> = args
            .source
            .iter()
            .map(|s| {
                args.output
                    .join(format!("{}-to-{target_name}.diff", stem(s)))
            })
            .collect();
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(Failure::new(format!(
                    "two sources would write the same delta ({}); give them different file names",
                    n.display()
                )));
            }
        }
        names
    };
    let manifest = if crate::manifest_cmd::wanted(&args.identity) || args.manifest.is_some() {
        let path = args.manifest.clone().unwrap_or_else(|| {
            parent_of(&outputs[0]).join(format!("{target_name}.importmanifest.json"))
        });
        Some((path, args.identity.clone()))
    } else {
        None
    };
    let recompress = args.recompressed.as_ref().map(|path| {
        let profile = match args.compression {
            CompressionArg::Zstd => recompress::Profile::zstd(3),
            CompressionArg::Gzip => recompress::Profile::gzip(),
        };
        (
            path.clone(),
            recompress::Options {
                profile,
                signing_command: args.sign.clone(),
                ..recompress::Options::default()
            },
        )
    });
    let job = Job {
        sources: args.source.clone(),
        target: args.target.clone(),
        outputs,
        manifest,
        recompress,
        profile: args.profile,
        work: args.work.clone(),
        logs: args.logs.clone(),
        verify: !args.no_verify,
        check_with: CheckWith::from_args(args.check_with.as_deref(), args.check_timeout)?,
        memory_limit: args.memory_limit,
        show_progress: !args.quiet && !args.json,
    };
    if let Some(n) = args.threads {
        // Only the number of threads changes: the output is the same for every count.
        rayon::ThreadPoolBuilder::new()
            .num_threads(usize::from(n))
            .build_global()
            .map_err(|e| Failure::new(format!("cannot start {n} threads: {e}")))?;
    }
    let run = execute(&job)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&run).expect("plain data")
        );
    } else if !args.quiet {
        for s in &run.deltas {
            print!("{}", text(s));
        }
        if let Some(m) = &run.manifest {
            println!("Import manifest: {m}");
        }
        if let Some(logs) = &args.logs {
            println!("{}", report_line(logs));
        }
    }
    Ok(ExitCode::SUCCESS)
}
