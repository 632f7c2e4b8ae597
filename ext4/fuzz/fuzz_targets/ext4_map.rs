//! Fuzzes the whole reader on one input image: open, scan (inodes, block maps, directory walk),
//! whole-image block map, reading every file (capped at 4 MiB each), and the text report.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Read;

fuzz_target!(|image: &[u8]| {
    let Ok(fs) = ext4::Filesystem::open(image) else {
        return;
    };
    let Ok(scan) = fs.scan() else { return };
    let _ = fs.block_map(&scan);
    let mut sink = Vec::new();
    for file in &scan.files {
        sink.clear();
        // Sizes are attacker-controlled; a sparse 2^40-byte file is valid but would take forever.
        let _ = fs.read_file(file).take(4 << 20).read_to_end(&mut sink);
    }
    if let Ok(report) = fs.report() {
        let _ = report.write_text(&mut std::io::sink());
    }
});
