//! BSDIFF40: round trips of our encoder and decoder (random and structured inputs), interop with
//! Debian's bsdiff/bspatch 4.3 in both directions, and hostile patches.
//!
//! The interop tests need Debian's `bsdiff` package; they fail with a clear message when the
//! tools are missing (scripts/install-deps.sh installs them).
#![cfg(feature = "bsdiff-encoder")]

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use codec::bsdiff::{apply, diff, encode_offtin, BsdiffError, BspatchReader};
use proptest::prelude::*;

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn round_trip(old: &[u8], new: &[u8]) -> Vec<u8> {
    let patch = diff(old, new).expect("diff");
    let back = apply(old, &patch).expect("patch applies");
    assert!(
        back == new,
        "round trip differs (old {} new {})",
        old.len(),
        new.len()
    );
    patch
}

fn edited(old: &[u8], seed: u64) -> Vec<u8> {
    // Insertions, deletions, overwrites and a zero run, at positions derived from the seed.
    let mut new = old.to_vec();
    let r = noise(seed, 64);
    let pos = |i: usize, len: usize| -> usize {
        if len == 0 {
            0
        } else {
            (usize::from(r[i]) << 8 | usize::from(r[i + 1])) % len
        }
    };
    let p = pos(0, new.len());
    new.splice(p..p, noise(seed + 1, 300));
    let p = pos(2, new.len());
    let end = (p + 500).min(new.len());
    new.drain(p..end);
    let p = pos(4, new.len());
    for b in new.iter_mut().skip(p).step_by(97).take(200) {
        *b = b.wrapping_add(1);
    }
    let p = pos(6, new.len());
    new.splice(p..p, vec![0u8; 5000]);
    new
}

#[test]
fn round_trips_on_structured_inputs() {
    let base = noise(7, 200_000);
    round_trip(&base, &base);
    round_trip(&base, &edited(&base, 3));
    round_trip(&[], &base[..1000]);
    round_trip(&base[..1000], &[]);
    round_trip(&[], &[]);
    round_trip(&vec![0u8; 100_000], &vec![0u8; 150_000]);
    // text-like data with repeats
    let text: Vec<u8> = (0..50_000u32)
        .flat_map(|i| format!("line {} value {}\n", i % 1000, i * 7 % 13).into_bytes())
        .collect();
    let mut changed = text.clone();
    changed.splice(1000..1000, b"inserted line\n".iter().copied());
    let patch = round_trip(&text, &changed);
    assert!(
        patch.len() < 2000,
        "small edit gives a small patch: {}",
        patch.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_pairs_round_trip(old in proptest::collection::vec(any::<u8>(), 0..3000),
                               new in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let patch = diff(&old, &new).unwrap();
        prop_assert_eq!(apply(&old, &patch).unwrap(), new);
    }

    #[test]
    fn edits_round_trip(seed in any::<u64>(), len in 0usize..20_000, alphabet in 1u8..=255) {
        let old: Vec<u8> = noise(seed, len).into_iter().map(|b| b % alphabet).collect();
        let new = edited(&old, seed ^ 0x5555);
        let patch = diff(&old, &new).unwrap();
        prop_assert_eq!(apply(&old, &patch).unwrap(), new);
    }
}

/// Fails with the install hint when Debian's tools are not there.
fn require_tool(name: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is missing: install Debian's `bsdiff` package (apt-get install bsdiff, or scripts/install-deps.sh)"
    );
}

fn run(cmd: &str, args: &[&Path]) {
    let status = Command::new(cmd).args(args).status().expect("tool runs");
    assert!(status.success(), "{cmd} failed: {status}");
}

fn interop_inputs() -> Vec<(Vec<u8>, Vec<u8>)> {
    let base = noise(11, 300_000);
    let mut zeros = vec![0u8; 400_000];
    zeros[1000..1100].copy_from_slice(&noise(3, 100));
    let mut zeros_new = zeros.clone();
    zeros_new[200_000..200_050].copy_from_slice(&noise(4, 50));
    vec![
        (base.clone(), edited(&base, 1)),
        (base[..50_000].to_vec(), base[10_000..].to_vec()),
        (zeros, zeros_new),
        (Vec::new(), noise(5, 1000)),
    ]
}

#[test]
fn our_patches_apply_with_debian_bspatch() {
    require_tool("bspatch");
    let dir = tempfile::tempdir().unwrap();
    for (i, (old, new)) in interop_inputs().into_iter().enumerate() {
        let (o, n, p) = (
            dir.path().join(format!("{i}.old")),
            dir.path().join(format!("{i}.new")),
            dir.path().join(format!("{i}.patch")),
        );
        std::fs::write(&o, &old).unwrap();
        std::fs::write(&p, diff(&old, &new).unwrap()).unwrap();
        run("bspatch", &[&o, &n, &p]);
        assert!(
            std::fs::read(&n).unwrap() == new,
            "case {i}: bspatch output differs"
        );
    }
}

#[test]
fn debian_bsdiff_patches_apply_with_our_decoder() {
    require_tool("bsdiff");
    let dir = tempfile::tempdir().unwrap();
    for (i, (old, new)) in interop_inputs().into_iter().enumerate() {
        if old.is_empty() {
            continue; // Debian's bsdiff cannot map an empty old file
        }
        let (o, n, p) = (
            dir.path().join(format!("{i}.old")),
            dir.path().join(format!("{i}.new")),
            dir.path().join(format!("{i}.patch")),
        );
        std::fs::write(&o, &old).unwrap();
        std::fs::write(&n, &new).unwrap();
        run("bsdiff", &[&o, &n, &p]);
        let patch = std::fs::read(&p).unwrap();
        assert!(apply(&old, &patch).unwrap() == new, "case {i}");
    }
}

/// A hand-made patch with the given control triples and blocks.
fn make_patch(
    triples: &[(i64, i64, i64)],
    diff_bytes: &[u8],
    extra: &[u8],
    new_size: i64,
) -> Vec<u8> {
    use std::io::Write;
    let bz = |data: &[u8]| {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let control: Vec<u8> = triples
        .iter()
        .flat_map(|&(x, y, z)| [encode_offtin(x), encode_offtin(y), encode_offtin(z)])
        .flatten()
        .collect();
    let (c, d, e) = (bz(&control), bz(diff_bytes), bz(extra));
    let mut p = b"BSDIFF40".to_vec();
    p.extend(encode_offtin(c.len() as i64));
    p.extend(encode_offtin(d.len() as i64));
    p.extend(encode_offtin(new_size));
    p.extend(c);
    p.extend(d);
    p.extend(e);
    p
}

#[test]
fn old_positions_outside_the_old_file_read_as_zero() {
    let old = b"ABCDEFGH";
    // Seek to -2, add 4 diff bytes (two before the file, two inside), copy 1 extra byte,
    // then seek far past the end and add 2 more.
    let patch = make_patch(
        &[(0, 0, -2), (4, 1, 100), (2, 0, 0)],
        &[1, 1, 1, 1, 5, 5],
        b"!",
        7,
    );
    let out = apply(old, &patch).unwrap();
    assert_eq!(out, vec![1, 1, b'A' + 1, b'B' + 1, b'!', 5, 5]);
}

#[test]
fn hostile_control_values_are_errors() {
    let old = vec![1u8; 100];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "x past the end",
            make_patch(&[(11, 0, 0)], &[0; 11], b"", 10),
        ),
        (
            "y past the end",
            make_patch(&[(0, 11, 0)], b"", &[0; 11], 10),
        ),
        ("negative x", make_patch(&[(-1, 0, 0)], b"", b"", 10)),
        ("negative y", make_patch(&[(0, -5, 0)], b"", b"", 10)),
        (
            "seek overflow",
            make_patch(&[(5, 0, i64::MAX), (5, 0, 0)], &[0; 10], b"", 10),
        ),
        (
            "control ends early",
            make_patch(&[(5, 0, 0)], &[0; 5], b"", 10),
        ),
        (
            "diff block too short",
            make_patch(&[(10, 0, 0)], &[0; 4], b"", 10),
        ),
        (
            "extra block too short",
            make_patch(&[(0, 10, 0)], b"", &[0; 3], 10),
        ),
        ("negative size", make_patch(&[], b"", b"", -10)),
    ];
    for (what, patch) in cases {
        let r = apply(&old, &patch);
        assert!(r.is_err(), "{what}: accepted");
    }
    // Billions of idle triples from a tiny bzip2 stream: refused quickly, not spun through.
    let idle = make_patch(&vec![(0, 0, 0); 200_000], b"", b"", 10);
    let start = Instant::now();
    assert!(matches!(
        apply(&old, &idle),
        Err(BsdiffError::BadControl { .. })
    ));
    assert!(start.elapsed() < Duration::from_secs(20));
    // A header announcing more output than the caller expects is refused before decoding.
    let ok = make_patch(&[(10, 0, 0)], &[0; 10], b"", 10);
    assert!(matches!(
        BspatchReader::new(&ok[..], &old[..], Some(9)),
        Err(BsdiffError::NewSizeMismatch { .. })
    ));
}

#[test]
fn truncated_or_flipped_patches_never_panic_or_hang() {
    let old = noise(21, 4000);
    let new = edited(&old, 9);
    let patch = diff(&old, &new).unwrap();
    for len in 0..patch.len() {
        assert!(
            apply(&old, &patch[..len]).is_err(),
            "truncated at {len} accepted"
        );
    }
    for i in 0..patch.len() {
        let mut bad = patch.clone();
        bad[i] ^= 0x10;
        // Either an error or an output of the declared size (a flip inside a block can still
        // decode); never a panic or a hang.
        if let Ok(out) = apply(&old, &bad) {
            assert!(
                out.len() <= new.len() + 16,
                "flip at {i}: {} bytes",
                out.len()
            );
        }
    }
}

#[test]
fn pathological_inputs_are_not_quadratic() {
    // Classic bsdiff spends O(n * match length) here: large regions that differ from the old
    // file by a byte every few dozen, and long zero runs.
    let old = noise(99, 1 << 20);
    let mut near = old.clone();
    for b in near.iter_mut().step_by(40) {
        *b = b.wrapping_add(1);
    }
    let zeros_old = vec![0u8; 4 << 20];
    let mut zeros_new = vec![0u8; 4 << 20];
    zeros_new[2 << 20] = 1;
    for (name, o, n) in [
        ("near-identical", &old, &near),
        ("zero runs", &zeros_old, &zeros_new),
    ] {
        let start = Instant::now();
        let patch = diff(o, n).unwrap();
        let took = start.elapsed();
        assert!(apply(o, &patch).unwrap() == *n, "{name}");
        // Generous for unoptimised test builds on a shared 2-core machine.
        assert!(took < Duration::from_secs(60), "{name}: diff took {took:?}");
        eprintln!(
            "{name}: {} bytes -> patch {} bytes in {took:?}",
            n.len(),
            patch.len()
        );
    }
}

#[test]
fn reader_streams_in_small_reads() {
    let old = noise(1, 100_000);
    let new = edited(&old, 2);
    let patch = diff(&old, &new).unwrap();
    let mut r = BspatchReader::new(&patch[..], &old[..], Some(new.len() as u64)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert!(out == new);
}
