//! `diffgen create` and the DiffGenTool positional form: optional recompression, delta
//! generation with verification, logs (`diffgen.log`, `report.json`, `diff.json`) and a
//! summary for people or pipelines.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use delta::Profile;
use serde::Serialize;

use crate::cli::{CompressionArg, CreateArgs, ProfileArg};
use crate::failure::Failure;

/// One delta to make.
pub struct Job {
    pub source: PathBuf,
    pub target: PathBuf,
    pub output: PathBuf,
    /// Recompress the target into this file first, with these options.
    pub recompress: Option<(PathBuf, recompress::Options)>,
    pub profile: ProfileArg,
    /// Working folder; `None`: a temp folder removed afterwards.
    pub work: Option<PathBuf>,
    pub logs: Option<PathBuf>,
    pub verify: bool,
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
    pub reused_bytes: u64,
    pub zero_bytes: u64,
    pub new_bytes: u64,
    pub recipes: usize,
    pub identical_payloads: Vec<String>,
    pub recreated_payloads: Vec<(String, String)>,
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
        if head[..n] == [0x28, 0xb5, 0x2f, 0xfd] {
            return Ok(Profile::Extended);
        }
    }
    Ok(Profile::Gzip)
}

pub fn execute(job: &Job) -> Result<Summary, Failure> {
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
            temp_work = cleanup::TempDir::new_in(&parent_of(&job.output), ".diffgen-work-")
                .map_err(|e| Failure::new(format!("cannot create a working folder: {e}")))?;
            temp_work.path().to_path_buf()
        }
    };
    let mut options = generate::Options::new(profile, work);
    options.verify = job.verify;
    let outcome = generate::create(&job.source, &target, &job.output, &options)
        .map_err(|e| Failure::new(e.to_string()))?;
    let summary = Summary {
        source: job.source.display().to_string(),
        target: target.display().to_string(),
        output: job.output.display().to_string(),
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
        reused_bytes: outcome.stats.reused_bytes,
        zero_bytes: outcome.stats.zero_bytes,
        new_bytes: outcome.stats.new_bytes,
        recipes: outcome.stats.recipes,
        identical_payloads: outcome.stats.identical_payloads.clone(),
        recreated_payloads: outcome.stats.recreated.clone(),
        stage_seconds: outcome
            .timings
            .iter()
            .map(|(s, d)| (*s, d.as_secs_f64()))
            .collect(),
        total_seconds: start.elapsed().as_secs_f64(),
    };
    if let Some(logs) = &job.logs {
        write_logs(logs, &summary, &job.output)?;
    }
    Ok(summary)
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn write_log(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text)
        .map_err(|e| Failure::new(format!("cannot write the log: {e} ({})", path.display())))
}

fn write_logs(logs: &Path, summary: &Summary, delta_path: &Path) -> Result<(), Failure> {
    write_log(&logs.join("diffgen.log"), &text(summary))?;
    let json = serde_json::to_string_pretty(summary).expect("plain data");
    write_log(&logs.join("report.json"), &json)?;
    let (archive, _) = delta::read_path(delta_path, &delta::ReadLimits::default())
        .map_err(|e| Failure::new(format!("cannot read back the delta: {e}")))?;
    let graph =
        serde_json::to_string_pretty(&delta::inspect::inspect(&archive)).expect("plain data");
    write_log(&logs.join("diff.json"), &graph)
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
    t.push_str(&format!(
        "  target bytes: {} reused from the source, {} zero runs, {} new; {} recipes\n",
        s.reused_bytes, s.zero_bytes, s.new_bytes, s.recipes
    ));
    for p in &s.identical_payloads {
        t.push_str(&format!("  {p}: identical to a source payload\n"));
    }
    for (p, how) in &s.recreated_payloads {
        t.push_str(&format!("  {p}: rebuilt on the device by {how}\n"));
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

pub fn run(args: &CreateArgs) -> Result<ExitCode, Failure> {
    for p in [&args.source, &args.target] {
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
        source: args.source.clone(),
        target: args.target.clone(),
        output: args.output.clone(),
        recompress,
        profile: args.profile,
        work: args.work.clone(),
        logs: args.logs.clone(),
        verify: !args.no_verify,
    };
    let summary = execute(&job)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("plain data")
        );
    } else {
        print!("{}", text(&summary));
    }
    Ok(ExitCode::SUCCESS)
}
