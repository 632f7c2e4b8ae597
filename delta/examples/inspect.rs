//! Prints what `diffgen inspect <delta>` will show (text form; the CLI adds `--json` through the
//! `serde` feature):
//!
//! ```text
//! inspect <delta> [--graph]
//! ```

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: inspect <delta> [--graph]");
        return ExitCode::from(2);
    };
    match delta::read_path(Path::new(path), &delta::ReadLimits::default()) {
        Ok((archive, _)) => {
            let graph = args.iter().any(|a| a == "--graph");
            print!(
                "{}",
                delta::inspect::render_text(&delta::inspect::inspect(&archive), graph)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
