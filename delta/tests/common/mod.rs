//! Helpers shared by the delta integration tests.
#![allow(dead_code)]

use std::path::Path;

use delta::apply::{apply, ApplyError, ApplyOptions, Report};
use delta::{read_archive, ReadLimits};

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Text-like bytes that compress well.
pub fn text(seed: u64, n: usize) -> Vec<u8> {
    let words = ["alpha ", "beta ", "gamma ", "delta\n", "epsilon ", "zeta "];
    let r = noise(seed, n / 4 + 1);
    let mut out = Vec::with_capacity(n + 8);
    let mut i = 0;
    while out.len() < n {
        out.extend_from_slice(words[usize::from(r[i % r.len()]) % words.len()].as_bytes());
        i += 1;
    }
    out.truncate(n);
    out
}

/// Applies `delta` to `source` in a fresh folder; returns the output bytes.
pub fn apply_bytes(
    source: &[u8],
    delta: &[u8],
    options: &ApplyOptions,
) -> Result<(Vec<u8>, Report), ApplyError> {
    // Thousands of applies in the corruption tests: prefer a RAM-backed folder, where the
    // output's fsync costs nothing.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("temp dir");
    let result = apply_in(dir.path(), source, delta, options);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| n != "source" && n != "delta" && n != "out")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    result
}

fn apply_in(
    dir: &Path,
    source: &[u8],
    delta: &[u8],
    options: &ApplyOptions,
) -> Result<(Vec<u8>, Report), ApplyError> {
    let (s, d, o) = (dir.join("source"), dir.join("delta"), dir.join("out"));
    std::fs::write(&s, source).expect("write source");
    std::fs::write(&d, delta).expect("write delta");
    let mut options = options.clone();
    if options.temp_dir.is_none() {
        options.temp_dir = Some(dir.to_path_buf());
    }
    match apply(&s, &d, &o, &options) {
        Ok(report) => Ok((std::fs::read(&o).expect("output exists"), report)),
        Err(e) => {
            assert!(!o.exists(), "an output exists after the error {e}");
            Err(e)
        }
    }
}

/// ADU's own tools on a delta that diffgen's applier rebuilt `expected` from: one that needs no
/// diffgen extension (every gzip-profile delta) must rebuild `expected` with ADU's `applydiff`
/// too (see `shared_fixtures::AduReference::check_delta`). Skips where `../shared` is absent.
pub fn check_with_adu(source: &[u8], delta: &[u8], expected: &[u8]) {
    if shared_fixtures::adu_reference().is_none() {
        return;
    }
    let archive = read_archive(&delta, &ReadLimits::default()).expect("delta reads back");
    let dir = tempfile::tempdir().expect("temp dir");
    let (s, d) = (dir.path().join("source"), dir.path().join("delta"));
    std::fs::write(&s, source).expect("write source");
    std::fs::write(&d, delta).expect("write delta");
    shared_fixtures::check_delta_with_adu(&s, &d, expected, archive.needs_diffgen_applier());
}
