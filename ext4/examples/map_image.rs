//! Maps an ext2/3/4 image and prints a summary with timings:
//! `cargo run --release -p ext4 --example map_image -- <image> [--text|--json] [--read]`.
//!
//! `--read` also streams every regular file (not system inodes) through its block map.

use std::io::{self, Read, Write};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: map_image <image> [--text|--json] [--read]");
        std::process::exit(2);
    };
    let started = Instant::now();
    let fs = ext4::Filesystem::open(std::fs::File::open(path)?)?;
    let opened = started.elapsed();
    let scan = fs.scan()?;
    let scanned = started.elapsed();
    let map = fs.block_map(&scan)?;
    let mapped = started.elapsed();

    let sb = fs.superblock();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "{path}: {} blocks of {} bytes, {} inodes in use, {} map runs",
        sb.blocks_count,
        sb.block_size,
        scan.files.len(),
        map.runs.len()
    )?;
    for (kind, blocks) in map.blocks_by_kind() {
        writeln!(out, "  {kind:<26} {blocks}")?;
    }
    writeln!(
        out,
        "open {opened:?}, scan {:?}, block map {:?}, total {mapped:?}",
        scanned - opened,
        mapped - scanned
    )?;

    if args.iter().any(|a| a == "--read") {
        let started = Instant::now();
        let mut total = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        for file in scan
            .files
            .iter()
            .filter(|f| f.kind == ext4::FileKind::Regular && f.role == ext4::Role::Normal)
        {
            let mut reader = fs.read_file(file);
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
        }
        writeln!(
            out,
            "read {total} bytes of regular files in {:?}",
            started.elapsed()
        )?;
    }
    if args.iter().any(|a| a == "--text" || a == "--json") {
        let report = fs.report()?;
        if args.iter().any(|a| a == "--json") {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        } else {
            report.write_text(&mut out)?;
        }
    }
    Ok(())
}
