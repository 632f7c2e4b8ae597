//! Minimal applier command for measurements and manual checks (the real CLI is diffgen's):
//!
//! ```text
//! apply <source> <delta> <output> [--known PATH[:LENGTH]]... [--temp DIR] [--budget BYTES]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use delta::apply::{apply, ApplyOptions, KnownItem};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut options = ApplyOptions::default();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--known" => {
                let (path, length) = match value.rsplit_once(':') {
                    Some((p, l)) if l.parse::<u64>().is_ok() => (p.to_string(), l.parse().ok()),
                    _ => (value.clone(), None),
                };
                options.known_items.push(KnownItem {
                    path: PathBuf::from(path),
                    length,
                });
                i += 2;
            }
            "--temp" => {
                options.temp_dir = Some(PathBuf::from(value));
                i += 2;
            }
            "--budget" => {
                options.memory_budget = value.parse().unwrap_or(options.memory_budget);
                i += 2;
            }
            other => {
                positional.push(PathBuf::from(other));
                i += 1;
            }
        }
    }
    let [source, delta, output] = positional.as_slice() else {
        eprintln!("usage: apply <source> <delta> <output> [--known PATH[:LENGTH]]... [--temp DIR] [--budget BYTES]");
        return ExitCode::from(2);
    };
    match apply(source, delta, output, &options) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
