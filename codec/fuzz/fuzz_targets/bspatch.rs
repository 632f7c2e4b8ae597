//! Fuzzes the BSDIFF40 decoder (`codec::bsdiff::BspatchReader`, what the applier's
//! `bspatch_decompression` runs) with the input as the patch and a fixed 4,400-byte old file.
//! Output is read in chunks whose size depends on the input, up to 16 MiB.
//!
//! Checked: a patch that decodes without error yields exactly the header's new size; after an
//! error every further read fails; for outputs up to 1 MiB the in-memory `bsdiff::apply` agrees
//! with the stream (same bytes, or both fail).

#![no_main]

use std::io::Read;
use std::sync::OnceLock;

use codec::bsdiff::{self, BspatchReader};
use codec_fuzz::{old, OUTPUT_LIMIT};
use libfuzzer_sys::fuzz_target;

fn old_file() -> &'static [u8] {
    static OLD: OnceLock<Vec<u8>> = OnceLock::new();
    OLD.get_or_init(old)
}

fuzz_target!(|patch: &[u8]| {
    let old = old_file();
    let Ok(mut reader) = BspatchReader::new(patch, old, None) else {
        return;
    };
    let new_size = reader.new_size();
    let keep = new_size <= 1 << 20;
    let chunk = 1 + patch.len() % 70_001;
    let mut buf = vec![0u8; chunk];
    let mut out = Vec::new();
    let mut total = 0u64;
    let outcome = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                total += n as u64;
                assert!(total <= new_size, "decoder produced more than the new size");
                if keep {
                    out.extend_from_slice(&buf[..n]);
                }
                if total > OUTPUT_LIMIT {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
    };
    match &outcome {
        Ok(()) => assert_eq!(total, new_size, "decoder ended early without an error"),
        Err(_) => assert!(
            reader.read(&mut buf).is_err(),
            "decoder went on after an error"
        ),
    }
    if keep {
        match bsdiff::apply(old, patch) {
            Ok(whole) => {
                assert!(outcome.is_ok(), "apply succeeded where the stream failed");
                assert!(whole == out, "apply and the stream disagree");
            }
            Err(_) => assert!(outcome.is_err(), "apply failed where the stream succeeded"),
        }
    }
});
