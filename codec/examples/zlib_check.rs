//! Times the parallel zlib check against the serial one on a real payload.
//!
//! `cargo run --release -p codec --example zlib_check -- <payload.gz> <content> [level]`
//! prints what the scanner finds, then the answer and wall time of the parallel check
//! (default options, the rayon pool's threads) and of the serial check.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use codec::zlib::{Container, DeflateParams};
use codec::zlib_check::{check, survey, Options};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: zlib_check <payload.gz> <content> [level]");
        std::process::exit(2);
    }
    let payload = std::fs::read(&args[1]).expect("payload");
    let content = std::fs::read(&args[2]).expect("content");
    let level = args.get(3).map_or(9, |l| l.parse().expect("level"));
    let params = DeflateParams {
        container: Container::Gzip,
        level,
    };
    let mib = |n: usize| n as f64 / (1 << 20) as f64;
    println!(
        "payload {:.1} MiB, content {:.1} MiB, level {level}, {} threads",
        mib(payload.len()),
        mib(content.len()),
        rayon::current_num_threads()
    );
    let t = Instant::now();
    let s = survey(params, &payload);
    let scan = t.elapsed().as_secs_f64();
    println!(
        "scan: {s:?} in {scan:.3} s ({:.0} MB/s of content)",
        content.len() as f64 / scan / 1e6
    );
    let stop = AtomicBool::new(false);
    for serial_only in [false, true] {
        let options = Options {
            serial_only,
            ..Options::default()
        };
        let t = Instant::now();
        let c = check(params, &content, &payload, &options, &stop);
        println!(
            "{}: matches {} via {:?} in {:.2} s",
            if serial_only { "serial" } else { "parallel" },
            c.matches,
            c.path,
            t.elapsed().as_secs_f64()
        );
    }
}
