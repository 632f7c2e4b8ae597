//! DiffGenTool's positional command line, accepted unchanged so release scripts written for
//! any DiffGenTool generation keep working:
//!
//! ```text
//! <source> <target> <output> <log folder> <working folder> [<recompressed target> ["<signing command>"]]
//! <source> <target> <output> <working folder>          (logs in <working>/logs/<n>)
//! ```
//!
//! Unlike DiffGenTool, every failure (including a wrong argument count) exits 1 with an
//! `Error:` line, and nothing is checked by launching helper binaries. The environment
//! variable `DIFFGEN_CHECK_WITH` (and `DIFFGEN_CHECK_TIMEOUT`) stands in for `diffgen create
//! --check-with` (see `check_with`), which this form has no room for.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::failure::Failure;

const USAGE: [&str; 2] = [
    "Usage: diffgen <source archive> <target archive> <output path> <log folder> <working folder> [<recompressed target archive> [\"<signing command>\"]]",
    "Usage: diffgen <source archive> <target archive> <output path> <working folder>",
];

/// Whether the command line uses the positional form: the binary was invoked as
/// `DiffGenTool`, or its first argument is neither an option nor a subcommand.
pub fn is_legacy_invocation(args: &[OsString], command: &clap::Command) -> bool {
    let invoked_as = args
        .first()
        .map(Path::new)
        .and_then(Path::file_stem)
        .and_then(OsStr::to_str)
        .unwrap_or("");
    if invoked_as.eq_ignore_ascii_case("DiffGenTool") {
        return true;
    }
    let Some(first) = args.get(1).and_then(|a| a.to_str()) else {
        return args.len() > 1; // a non-UTF-8 first argument can only be a path
    };
    if first.starts_with('-') || first == "help" {
        return false;
    }
    !command
        .get_subcommands()
        .any(|s| s.get_name() == first || s.get_all_aliases().any(|a| a == first))
}

/// The validated arguments of the positional form.
#[derive(Debug)]
pub struct Invocation {
    pub source: PathBuf,
    pub target: PathBuf,
    pub output: PathBuf,
    pub log_folder: PathBuf,
    pub working_folder: PathBuf,
    pub recompressed_target: Option<PathBuf>,
    pub signing_command: Option<String>,
}

/// Options that may follow the positional arguments: the update identity, to write the
/// import manifest next to the delta.
#[derive(Debug, clap::Parser)]
#[command(name = "diffgen", no_binary_name = true)]
struct TrailingOptions {
    #[command(flatten)]
    identity: crate::cli::IdentityArgs,
    /// Where to write the import manifest (default: <target>.importmanifest.json next to
    /// the delta).
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
}

pub fn run(args: &[OsString]) -> Result<ExitCode, Failure> {
    let all = &args[1.min(args.len())..];
    // Positional arguments first; options (starting with "--") after them.
    let split = all
        .iter()
        .position(|a| a.to_str().is_some_and(|s| s.starts_with("--")))
        .unwrap_or(all.len());
    let (operands, options) = all.split_at(split);
    let options = <TrailingOptions as clap::Parser>::try_parse_from(options).map_err(|e| {
        let text = e.to_string();
        Failure::new(
            text.lines()
                .next()
                .unwrap_or("bad option")
                .trim_start_matches("error: ")
                .to_string(),
        )
    })?;
    if !(4..=7).contains(&operands.len()) {
        for line in USAGE {
            eprintln!("{line}");
        }
        return Err(Failure::new(format!(
            "expected 4 to 7 arguments, got {} (see the usage lines above)",
            operands.len()
        )));
    }
    let invocation = parse(operands)?;
    let manifest = if crate::manifest_cmd::wanted(&options.identity) || options.manifest.is_some() {
        let target = invocation
            .recompressed_target
            .as_ref()
            .unwrap_or(&invocation.target);
        let stem = target
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let stem = stem.strip_suffix(".swu").unwrap_or(&stem).to_string();
        let dir = match invocation.output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Some((
            options
                .manifest
                .clone()
                .unwrap_or_else(|| dir.join(format!("{stem}.importmanifest.json"))),
            options.identity.clone(),
        ))
    } else {
        None
    };
    // The 6/7-argument form recompresses (and re-signs) the target first, as DiffGenTool
    // 1.0/2.0 did; the zstd profile is diffgen's default.
    let job = crate::create::Job {
        sources: vec![invocation.source.clone()],
        target: invocation.target.clone(),
        outputs: vec![invocation.output.clone()],
        manifest,
        recompress: invocation.recompressed_target.clone().map(|path| {
            (
                path,
                recompress::Options {
                    signing_command: invocation.signing_command.clone(),
                    ..recompress::Options::default()
                },
            )
        }),
        profile: crate::cli::ProfileArg::Auto,
        memory_limit: generate::DEFAULT_MEMORY_LIMIT,
        show_progress: true,
        work: Some(invocation.working_folder.clone()),
        logs: Some(invocation.log_folder.clone()),
        verify: true,
        check_with: crate::check_with::CheckWith::from_args(None, None)?,
    };
    println!("Starting main task.");
    let run = crate::create::execute(&job)?;
    for summary in &run.deltas {
        print!("{}", crate::create::text(summary));
    }
    if let Some(m) = &run.manifest {
        println!("Import manifest: {m}");
    }
    println!("{}", crate::create::report_line(&invocation.log_folder));
    println!("Finished main task.");
    Ok(ExitCode::SUCCESS)
}

/// Validates the operands and prepares the folders, as DiffGenTool does before its stages run.
pub fn parse(operands: &[OsString]) -> Result<Invocation, Failure> {
    let names = [
        "source archive",
        "target archive",
        "output path",
        if operands.len() == 4 {
            "working folder"
        } else {
            "log folder"
        },
        "working folder",
        "recompressed target archive",
        "signing command",
    ];
    for (value, name) in operands.iter().zip(names) {
        if value.is_empty() {
            return Err(Failure::new(format!("the {name} argument is empty")));
        }
    }
    let path = |i: usize| PathBuf::from(&operands[i]);
    let source = path(0);
    let target = path(1);
    let output = path(2);
    require_file(&source, "source archive")?;
    require_file(&target, "target archive")?;

    let (log_folder, working_folder) = if operands.len() == 4 {
        let working = path(3);
        ensure_writable_dir(&working, "working folder")?;
        (next_log_folder(&working)?, working)
    } else {
        let logs = path(3);
        let working = path(4);
        ensure_writable_dir(&logs, "log folder")?;
        ensure_writable_dir(&working, "working folder")?;
        (logs, working)
    };

    check_output_path(&output, "output path", &[&source, &target])?;
    let recompressed_target = operands.get(5).map(PathBuf::from);
    if let Some(r) = &recompressed_target {
        check_output_path(
            r,
            "recompressed target archive",
            &[&source, &target, &output],
        )?;
    }
    let signing_command = match operands.get(6) {
        None => None,
        Some(c) => Some(
            c.to_str()
                .ok_or_else(|| Failure::new("the signing command is not valid UTF-8"))?
                .to_string(),
        ),
    };
    Ok(Invocation {
        source,
        target,
        output,
        log_folder,
        working_folder,
        recompressed_target,
        signing_command,
    })
}

fn require_file(path: &Path, what: &str) -> Result<(), Failure> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => fs::File::open(path)
            .map(drop)
            .map_err(|e| Failure::new(format!("cannot read the {what}: {e} ({})", path.display()))),
        Ok(_) => Err(Failure::new(format!(
            "the {what} is not a regular file ({})",
            path.display()
        ))),
        Err(e) => Err(Failure::new(format!(
            "the {what} does not exist or cannot be read: {e} ({})",
            path.display()
        ))),
    }
}

/// Creates the folder if needed and proves it writable by creating and removing a file in it.
fn ensure_writable_dir(dir: &Path, what: &str) -> Result<(), Failure> {
    if dir.exists() && !dir.is_dir() {
        return Err(Failure::new(format!(
            "the {what} exists and is not a folder ({})",
            dir.display()
        )));
    }
    fs::create_dir_all(dir)
        .map_err(|e| Failure::new(format!("cannot create the {what}: {e} ({})", dir.display())))?;
    let probe = dir.join(format!(".diffgen-write-test-{}", std::process::id()));
    fs::write(&probe, b"")
        .and_then(|()| fs::remove_file(&probe))
        .map_err(|e| {
            Failure::new(format!(
                "the {what} is not writable: {e} ({})",
                dir.display()
            ))
        })
}

/// An output file: its folder must be creatable and writable, and it must not be a folder or
/// one of the inputs (which diffgen never overwrites).
fn check_output_path(path: &Path, what: &str, inputs: &[&Path]) -> Result<(), Failure> {
    if path.is_dir() {
        return Err(Failure::new(format!(
            "the {what} is a folder, expected a file name ({})",
            path.display()
        )));
    }
    for input in inputs {
        if same_file(path, input) {
            return Err(Failure::new(format!(
                "the {what} is the same file as {} (inputs are never overwritten)",
                input.display()
            )));
        }
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    ensure_writable_dir(parent, &format!("folder of the {what}"))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `<working>/logs/<n>` for the first n that does not exist yet (DiffGenTool stops at 1000;
/// diffgen does not).
fn next_log_folder(working: &Path) -> Result<PathBuf, Failure> {
    let base = working.join("logs");
    fs::create_dir_all(&base).map_err(|e| {
        Failure::new(format!(
            "cannot create the log folder: {e} ({})",
            base.display()
        ))
    })?;
    for n in 0u64.. {
        let candidate = base.join(n.to_string());
        match fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Failure::new(format!(
                    "cannot create the log folder: {e} ({})",
                    candidate.display()
                )))
            }
        }
    }
    unreachable!("u64 log folder numbers exhausted")
}
