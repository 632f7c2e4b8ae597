//! `diffgen apply`: the CLI over the `delta` crate's applier.

use std::process::ExitCode;

use serde::Serialize;

use crate::cli::ApplyArgs;
use crate::failure::Failure;

#[derive(Serialize)]
struct Summary {
    target: String,
    size: u64,
    sha256: String,
    spilled_bytes: u64,
    peak_reserved_memory: u64,
    known_items: Vec<KnownItemSummary>,
}

/// One known item: whether the applier used it, and the reason in words.
#[derive(Serialize)]
struct KnownItemSummary {
    path: String,
    size: u64,
    used: bool,
    outcome: String,
}

pub fn run(args: &ApplyArgs) -> Result<ExitCode, Failure> {
    for (p, what) in [(&args.source, "source"), (&args.delta, "delta")] {
        if !p.is_file() {
            return Err(Failure::new(format!(
                "the {what} is not a file ({})",
                p.display()
            )));
        }
    }
    let options = delta::ApplyOptions {
        temp_dir: args.temp_dir.clone(),
        known_items: args
            .known_items
            .iter()
            .map(|path| delta::KnownItem {
                path: path.clone(),
                length: None,
            })
            .collect(),
        max_target_len: args.max_target_size,
        memory_budget: args
            .memory_budget
            .unwrap_or(delta::apply::DEFAULT_MEMORY_BUDGET),
        ..delta::ApplyOptions::default()
    };
    let report = delta::apply(&args.source, &args.delta, &args.target, &options)
        .map_err(|e| Failure::new(format!("{e} (applying {})", args.delta.display())))?;
    let summary = Summary {
        target: args.target.display().to_string(),
        size: report.target.length(),
        sha256: report
            .target
            .sha256_bytes()
            .map(|h| swu::hex::encode(h))
            .unwrap_or_default(),
        spilled_bytes: report.spilled_bytes,
        peak_reserved_memory: report.peak_reserved_memory,
        known_items: report
            .known_items
            .iter()
            .map(|k| KnownItemSummary {
                path: k.path.display().to_string(),
                size: k.size,
                used: k.used(),
                outcome: k.outcome.to_string(),
            })
            .collect(),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("plain data")
        );
    } else {
        println!(
            "Rebuilt {} ({} bytes, sha256 {}, verified); {} bytes spilled to temp files",
            summary.target, summary.size, summary.sha256, summary.spilled_bytes
        );
        for k in &summary.known_items {
            println!("Known item {}", k.outcome);
        }
    }
    Ok(ExitCode::SUCCESS)
}
