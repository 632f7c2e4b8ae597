//! `diffgen-apply`: the device side of diffgen as a small standalone binary.
//!
//! ```text
//! diffgen-apply [--temp-dir DIR] [--known-item FILE]... [--memory-budget SIZE]
//!               [--max-target-size SIZE] <source.swu> <delta> <target.swu>
//! ```
//!
//! Rebuilds the target from the source and the delta, checks its SHA-256 against the delta
//! before moving it into place, and prints one line. Every failure is one `Error:` line on
//! stderr and exit code 1, with no output file. Arguments are parsed by hand so the binary
//! carries nothing but the applier (see docs/format.md for cross-compiling it).

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: diffgen-apply [--temp-dir DIR] [--known-item FILE]... [--memory-budget SIZE] [--max-target-size SIZE] <source.swu> <delta> <target.swu>

  --temp-dir DIR          folder for spill files (default: the system's temp folder)
  --known-item FILE       a file or block device that may hold an item of the delta
  --memory-budget SIZE    memory for recipes and decoder state, e.g. 64M (default 48M)
  --max-target-size SIZE  refuse a delta whose target is larger (e.g. the partition size)";

fn parse(args: &[String]) -> Result<(Vec<PathBuf>, delta::ApplyOptions), String> {
    let mut positional = Vec::new();
    let mut options = delta::ApplyOptions::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let value = |i: usize| {
            args.get(i + 1)
                .map(PathBuf::from)
                .ok_or_else(|| format!("{a} needs a value"))
        };
        let size = |i: usize| {
            let text = args
                .get(i + 1)
                .ok_or_else(|| format!("{a} needs a value"))?;
            delta::size::parse_size(text).map_err(|e| format!("{a}: {e}"))
        };
        match a.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--temp-dir" => {
                options.temp_dir = Some(value(i)?);
                i += 1;
            }
            "--known-item" => {
                options.known_items.push(delta::KnownItem {
                    path: value(i)?,
                    length: None,
                });
                i += 1;
            }
            "--memory-budget" => {
                options.memory_budget = size(i)?;
                i += 1;
            }
            "--max-target-size" => {
                options.max_target_len = Some(size(i)?);
                i += 1;
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => positional.push(PathBuf::from(a)),
        }
        i += 1;
    }
    if positional.len() != 3 {
        return Err(format!("expected 3 paths, got {}", positional.len()));
    }
    Ok((positional, options))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (paths, options) = match parse(&args) {
        Ok(p) => p,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("{USAGE}");
            eprintln!("Error: {msg}");
            return ExitCode::from(1);
        }
    };
    match delta::apply(&paths[0], &paths[1], &paths[2], &options) {
        Ok(report) => {
            println!(
                "Rebuilt {} ({} bytes, sha256 {}, verified)",
                paths[2].display(),
                report.target.length(),
                report
                    .target
                    .sha256_bytes()
                    .map(|h| delta::item::hex(h))
                    .unwrap_or_default()
            );
            println!("Temp disk: {} bytes spilled", report.spilled_bytes);
            for k in &report.known_items {
                println!("Known item {k}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "Error: {} (applying {})",
                e.to_string().replace('\n', " "),
                paths[1].display()
            );
            ExitCode::from(1)
        }
    }
}
