//! Times codec's bsdiff encoder on a file pair and checks the patch round trip:
//!
//! ```text
//! bsdiff_bench <old> <new> <patch out>
//! ```

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(old), Some(new), Some(out)) = (args.get(1), args.get(2), args.get(3)) else {
        return Err("usage: bsdiff_bench <old> <new> <patch out>".into());
    };
    let old = std::fs::read(old)?;
    let new = std::fs::read(new)?;
    let start = Instant::now();
    let patch = codec::bsdiff::diff(&old, &new)?;
    let took = start.elapsed();
    std::fs::write(out, &patch)?;
    let start = Instant::now();
    let back = codec::bsdiff::apply(&old, &patch)?;
    let patch_time = start.elapsed();
    if back != new {
        return Err("round trip failed".into());
    }
    println!(
        "old {} new {} patch {} bytes; diff {:.2} s, patch {:.2} s",
        old.len(),
        new.len(),
        patch.len(),
        took.as_secs_f64(),
        patch_time.as_secs_f64()
    );
    Ok(())
}
