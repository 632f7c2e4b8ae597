//! Delta generation end to end: every delta rebuilds its target exactly through the applier
//! (and through ADU's own applier when it needs no diffgen extension), the gzip profile stays
//! within what ADU's stock applier accepts, output is deterministic, and bad inputs fail
//! cleanly without output.

use std::fs;
use std::path::{Path, PathBuf};

use codec::zlib::{deflate_bytes, DeflateParams};
use delta::{Profile, Recipe};
use generate::{create, Error, Options};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use swu::cpio::{Format, Header, Writer};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

fn recompressed(input: &Path, out: &Path, profile: recompress::Profile) {
    let o = recompress::Options {
        profile,
        drop_signature: true,
        ..recompress::Options::default()
    };
    recompress::recompress(input, out, &o).unwrap();
}

/// Applies `delta` to `source` with the library applier and returns the result. A delta that
/// needs no diffgen extension (every gzip-profile delta) must rebuild the same bytes with ADU's
/// own applier (where `../shared` is present).
fn apply(source: &Path, delta_path: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("applied.swu");
    delta::apply(source, delta_path, &out, &delta::ApplyOptions::default()).expect("applies");
    let bytes = fs::read(&out).unwrap();
    fs::remove_file(&out).unwrap();
    let (archive, _) = delta::read_path(delta_path, &delta::ReadLimits::default()).unwrap();
    shared_fixtures::check_delta_with_adu(
        source,
        delta_path,
        &bytes,
        archive.needs_diffgen_applier(),
    );
    bytes
}

/// The release pair from testdata, recompressed with `profile`: (source, target).
fn pair(dir: &Path, profile: recompress::Profile) -> (PathBuf, PathBuf) {
    let s = dir.join("v1.swu");
    let t = dir.join("v2.swu");
    recompressed(&testdata("swu/release-v1.swu"), &s, profile);
    recompressed(&testdata("swu/release-v2.swu"), &t, profile);
    (s, t)
}

#[test]
fn zstd_profile_rebuilds_the_release_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (s, t) = pair(dir.path(), recompress::Profile::zstd(3));
    let (d, o) = delta(dir.path(), &s, &t, Profile::Extended);
    assert!(o.verified);
    assert_eq!(apply(&s, &d, dir.path()), fs::read(&t).unwrap());
    assert_eq!(o.stats.recreated.len(), 1, "{:?}", o.stats);
    assert!(o.stats.reused_bytes > 100_000, "{:?}", o.stats);
    assert!(
        o.delta_len < fs::metadata(&t).unwrap().len() / 2,
        "{} bytes",
        o.delta_len
    );
}

#[test]
fn gzip_profile_uses_only_what_adu_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let (s, t) = pair(dir.path(), recompress::Profile::gzip());
    let (d, o) = delta(dir.path(), &s, &t, Profile::Gzip);
    assert_eq!(apply(&s, &d, dir.path()), fs::read(&t).unwrap());
    assert_eq!(o.stats.recreated.len(), 1);
    let (archive, _) = delta::read_path(&d, &delta::ReadLimits::default()).unwrap();
    for set in &archive.recipe_sets {
        for r in &set.recipes {
            assert!(
                !matches!(r, Recipe::ZstdCompression { .. }),
                "zstd_compression in a gzip-profile delta"
            );
            assert!(
                !matches!(r, Recipe::ZstdDecompression { basis: None, .. }),
                "basis-less zstd frame in a gzip-profile delta"
            );
        }
    }
    assert!(!delta::inspect::inspect(&archive).needs_diffgen_applier);
}

#[test]
fn deterministic_and_the_working_folder_is_a_safe_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (s, t) = pair(dir.path(), recompress::Profile::zstd(3));
    let work = dir.path().join("work");
    let a = dir.path().join("a.diff");
    let b = dir.path().join("b.diff");
    create(&s, &t, &a, &Options::new(Profile::Extended, work.clone())).unwrap();
    // Second run reuses the cached contents; a fresh folder must give the same bytes too.
    create(&s, &t, &b, &Options::new(Profile::Extended, work.clone())).unwrap();
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
    create(
        &s,
        &t,
        &b,
        &Options::new(Profile::Extended, dir.path().join("fresh")),
    )
    .unwrap();
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
    // The same working folder for other inputs: still correct.
    let (s2, t2) = (
        testdata("swu/sample-crc.swu"),
        testdata("swu/sample-newc.swu"),
    );
    let c = dir.path().join("c.diff");
    create(&s2, &t2, &c, &Options::new(Profile::Gzip, work)).unwrap();
    assert_eq!(apply(&s2, &c, dir.path()), fs::read(&t2).unwrap());
}

#[test]
fn identical_archives_give_a_tiny_delta() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = pair(dir.path(), recompress::Profile::zstd(3));
    let (d, o) = delta(dir.path(), &s, &s, Profile::Gzip);
    assert!(o.delta_len < 2000, "{} bytes", o.delta_len);
    assert_eq!(apply(&s, &d, dir.path()), fs::read(&s).unwrap());
}

fn swu_file(path: &Path, members: &[(&str, Vec<u8>)]) {
    swu_file_padded(path, members, true)
}

fn swu_file_padded(path: &Path, members: &[(&str, Vec<u8>)], pad_to_512: bool) {
    let mut desc = String::from("software = { images = (");
    for (i, (name, data)) in members.iter().enumerate() {
        let comp = if name.ends_with(".gz") {
            "compressed = \"zlib\"; "
        } else {
            ""
        };
        desc.push_str(&format!(
            "{}{{ filename = \"{name}\"; device = \"/dev/x\"; {comp}sha256 = \"{}\"; }}",
            if i > 0 { ", " } else { "" },
            swu::hex::encode(&Sha256::digest(data))
        ));
    }
    desc.push_str("); };");
    let mut w = Writer::new(Vec::new());
    let h = Header::regular_file(Format::Crc, 0);
    w.write_bytes(&h, "sw-description", desc.as_bytes())
        .unwrap();
    for (name, data) in members {
        w.write_bytes(&h, name, data).unwrap();
    }
    let trailing: Option<&[u8]> = if pad_to_512 { None } else { Some(&[]) };
    fs::write(path, w.finish(Format::Crc, None, trailing).unwrap()).unwrap();
}

#[test]
fn bad_inputs_fail_cleanly_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.diff");
    let opts = Options::new(Profile::Gzip, dir.path().join("w"));
    let good = testdata("swu/sample-crc.swu");
    // Truncated source.
    let bytes = fs::read(&good).unwrap();
    let truncated = dir.path().join("trunc.swu");
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        create(&truncated, &good, &out, &opts),
        Err(Error::Swu(_))
    ));
    // Target whose sha256 does not match its member.
    let bad_target = dir.path().join("bad.swu");
    swu_file(&bad_target, &[("img", b"data".to_vec())]);
    let mut b = fs::read(&bad_target).unwrap();
    let n = b.len();
    let pos = b.windows(4).rposition(|w| w == b"data").unwrap();
    b[pos] = b'D';
    assert_eq!(n, b.len());
    // Keep the crc checksum consistent so only the hash is wrong.
    let a = swu::cpio::Archive::scan(
        &b[..],
        swu::cpio::ReadOptions {
            verify_checksums: false,
            hash_members: false,
        },
    )
    .unwrap();
    let m = a.member("img").unwrap();
    let check_at = m.header_offset as usize + 6 + 8 * 12;
    b[check_at..check_at + 8]
        .copy_from_slice(format!("{:08X}", swu::cpio::byte_sum(0, b"Data")).as_bytes());
    fs::write(&bad_target, &b).unwrap();
    assert!(matches!(
        create(&good, &bad_target, &out, &opts),
        Err(Error::BadTarget(_))
    ));
    // A target of fresh random bytes and no padding: the delta cannot be smaller.
    let mut x = 0x12345678u64;
    let noise: Vec<u8> = (0..4_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let random_target = dir.path().join("random.swu");
    swu_file_padded(&random_target, &[("img", noise)], false);
    assert!(matches!(
        create(&good, &random_target, &out, &opts),
        Err(Error::NotSmaller { .. })
    ));
    assert!(!out.exists());
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".diffgen"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random archive pairs: edits, moves and zero runs in plain and gzip payloads; every
    /// delta (both profiles) rebuilds its target exactly.
    #[test]
    fn random_pairs_round_trip(
        seed in any::<u64>(),
        edits in prop::collection::vec((0usize..60_000, prop::collection::vec(any::<u8>(), 1..200)), 0..6),
        zeros in 0usize..100_000,
        gz in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut x = seed | 1;
        let mut rand = |n: usize| -> Vec<u8> { (0..n).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; (x % 7) as u8 + b'a' }).collect() };
        let base = rand(64 * 1024);
        let other = rand(20 * 1024);
        let mut new = base.clone();
        for (at, bytes) in &edits {
            let at = at % new.len();
            let end = (at + bytes.len()).min(new.len());
            new[at..end].copy_from_slice(&bytes[..end - at]);
        }
        new.extend(std::iter::repeat_n(0u8, zeros));
        new.extend_from_slice(&other[..8192]);
        let enc = |d: &[u8]| if gz { deflate_bytes(DeflateParams::GZIP_PROFILE, d).unwrap() } else { d.to_vec() };
        let name = if gz { "img.gz" } else { "img" };
        let s = dir.path().join("s.swu");
        let t = dir.path().join("t.swu");
        swu_file(&s, &[(name, enc(&base)), ("other", other.clone())]);
        swu_file(&t, &[(name, enc(&new)), ("other", other)]);
        for profile in [Profile::Gzip, Profile::Extended] {
            let d = dir.path().join("d.diff");
            match create(&s, &t, &d, &Options::new(profile, dir.path().join("w"))) {
                Ok(_) => prop_assert_eq!(apply(&s, &d, dir.path()), fs::read(&t).unwrap()),
                Err(Error::NotSmaller { .. }) => prop_assert!(!d.exists()),
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            }
        }
    }
}

/// One file of a random root filesystem: its content as the release build made it, stored
/// raw, gzip'd by GNU gzip (`-9n`, as Debian's man pages) or by zlib level 9 (which the gzip
/// profile re-creates on the device).
#[derive(Clone, Debug)]
enum Stored {
    Raw(Vec<u8>),
    GnuGzip(Vec<u8>),
    ZlibGzip(Vec<u8>),
}

impl Stored {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Stored::Raw(d) => d.clone(),
            Stored::GnuGzip(t) => gzip_9n(t),
            Stored::ZlibGzip(t) => deflate_bytes(DeflateParams::GZIP_PROFILE, t).unwrap(),
        }
    }

    /// The content with a few bytes changed, inserted or removed at `at`.
    fn edited(&self, at: u64) -> Stored {
        let edit = |d: &Vec<u8>| {
            let mut d = d.clone();
            let i = (at as usize) % d.len().max(1);
            match at % 3 {
                0 => d
                    .splice(i..i, b"inserted line\n".iter().copied())
                    .for_each(drop),
                1 => drop(d.drain(i..(i + 40).min(d.len()))),
                _ => d
                    .iter_mut()
                    .skip(i)
                    .step_by(97)
                    .take(50)
                    .for_each(|b| *b ^= 0x5a),
            }
            d
        };
        match self {
            Stored::Raw(d) => Stored::Raw(edit(d)),
            Stored::GnuGzip(t) => Stored::GnuGzip(edit(t)),
            Stored::ZlibGzip(t) => Stored::ZlibGzip(edit(t)),
        }
    }
}

/// A new file `n` of a random kind, named after its kind.
fn random_file(n: usize, seed: u64) -> (String, Stored) {
    let text = codec::test_inputs::prose(seed, 2000 + (seed % 30_000) as usize);
    match seed % 4 {
        0 => (
            format!("usr/bin/prog{n}"),
            Stored::Raw(noise(4096 + (seed % 60_000) as usize, seed)),
        ),
        1 => (format!("etc/app{n}.conf"), Stored::Raw(text)),
        2 => (
            format!("usr/share/man/man1/tool{n}.1.gz"),
            Stored::GnuGzip(text),
        ),
        _ => (
            format!("usr/share/doc/pkg{n}/changelog.gz"),
            Stored::ZlibGzip(text),
        ),
    }
}

/// The next release: each `(op, x)` adds, removes, changes, renames or changes and moves a
/// file (`x` picks which and how).
fn next_release(
    files: &std::collections::BTreeMap<String, Stored>,
    ops: &[(u8, u64)],
) -> std::collections::BTreeMap<String, Stored> {
    let mut next = files.clone();
    for (k, &(op, x)) in ops.iter().enumerate() {
        let names: Vec<String> = next.keys().cloned().collect();
        let name = names[(x as usize) % names.len()].clone();
        match op {
            0 => {
                let (path, file) = random_file(100 + k, x);
                next.insert(path, file);
            }
            1 if next.len() > 1 => drop(next.remove(&name)),
            2 => {
                let edited = next[&name].edited(x);
                next.insert(name, edited);
            }
            _ => {
                let file = next.remove(&name).unwrap();
                let file = if op == 4 { file.edited(x) } else { file };
                let base = name.rsplit('/').next().unwrap();
                next.insert(format!("opt/moved{k}/{base}"), file);
            }
        }
    }
    next
}

/// The files of a release as stored in its image: (path, bytes).
fn stored_release(files: &std::collections::BTreeMap<String, Stored>) -> Vec<(String, Vec<u8>)> {
    files.iter().map(|(p, f)| (p.clone(), f.bytes())).collect()
}

fn borrowed(files: &[(String, Vec<u8>)]) -> Vec<(&str, Vec<u8>)> {
    files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    /// Random small release pairs (ext4 images made by mkfs.ext4 -d from trees where files
    /// were added, removed, changed, renamed; gzip files by GNU gzip and by zlib inside),
    /// through the gzip profile: every delta stays within ADU's stock recipes and ADU's own
    /// applier rebuilds the target byte for byte (in `apply`).
    #[test]
    fn random_release_pairs_in_the_gzip_profile_apply_with_adus_applier(
        seeds in prop::collection::vec(any::<u64>(), 2..7),
        ops in prop::collection::vec((0u8..5, any::<u64>()), 1..7),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let v1: std::collections::BTreeMap<String, Stored> =
            seeds.iter().enumerate().map(|(n, &seed)| random_file(n, seed)).collect();
        let v2 = next_release(&v1, &ops);
        let (t1, t2) = (stored_release(&v1), stored_release(&v2));
        let (s, t) = filesystem_release_pair(dir.path(), [borrowed(&t1), borrowed(&t2)]);
        let d = dir.path().join("d.diff");
        match create(&s, &t, &d, &Options::new(Profile::Gzip, dir.path().join("w"))) {
            Ok(_) => {
                let (archive, _) = delta::read_path(&d, &delta::ReadLimits::default()).unwrap();
                prop_assert!(!archive.needs_diffgen_applier());
                prop_assert!(apply(&s, &d, dir.path()) == fs::read(&t).unwrap());
            }
            Err(Error::NotSmaller { .. }) => prop_assert!(!d.exists()),
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        }
    }
}

#[test]
fn opaque_payloads_are_noted_and_still_delta_coded() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let blob: Vec<u8> = (0..400_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut changed = blob.clone();
    changed[1000..1007].copy_from_slice(b"CHANGED");
    let gz = |d: &[u8]| deflate_bytes(DeflateParams::GZIP_PROFILE, d).unwrap();
    let s = dir.path().join("s.swu");
    let t = dir.path().join("t.swu");
    swu_file(&s, &[("img.gz", gz(&blob))]);
    swu_file(&t, &[("img.gz", gz(&changed))]);
    let (d, o) = delta(dir.path(), &s, &t, Profile::Gzip);
    assert!(
        o.stats
            .notes
            .iter()
            .any(|n| n.contains("img.gz") && n.contains("not opened as a filesystem")),
        "{:?}",
        o.stats.notes
    );
    assert!(o.delta_len < 10_000, "{} bytes", o.delta_len);
    assert_eq!(apply(&s, &d, dir.path()), fs::read(&t).unwrap());
}

/// A payload whose re-creation matches only in its first megabytes (here: a second gzip
/// member after a large first one) passes the quick prefix check, fails verification, and is
/// then planned again with full checks: the delta is still right, and the log says so.
#[test]
fn a_payload_that_matches_only_in_its_prefix_is_planned_again() {
    let dir = tempfile::tempdir().unwrap();
    let gz = |d: &[u8]| deflate_bytes(DeflateParams::GZIP_PROFILE, d).unwrap();
    let old = noise(5 << 20, 21);
    let mut new = old.clone();
    new[4096..4103].copy_from_slice(b"CHANGED");
    let s = dir.path().join("s.swu");
    let t = dir.path().join("t.swu");
    swu_file(&s, &[("img.gz", gz(&old))]);
    let two_members = [gz(&new), gz(b"a second member\n")].concat();
    swu_file(&t, &[("img.gz", two_members)]);
    let (d, o) = delta(dir.path(), &s, &t, Profile::Gzip);
    assert!(
        o.stats.notes.iter().any(|n| n.contains("planned again")),
        "{:?}",
        o.stats.notes
    );
    assert_eq!(apply(&s, &d, dir.path()), fs::read(&t).unwrap());
}

/// Creates the delta from `s` to `t` in `profile` as `<dir>/<profile>.diff`, working in
/// `<dir>/w`; returns its path and the outcome.
fn delta(dir: &Path, s: &Path, t: &Path, profile: Profile) -> (PathBuf, generate::Outcome) {
    let d = dir.join(format!("{profile:?}.diff"));
    let o = create(s, t, &d, &Options::new(profile, dir.join("w"))).unwrap();
    (d, o)
}

/// An ext4 image of `tree` made by mke2fs as Yocto does (`-d`), with fixed identifiers.
fn mkfs_image(tree: &Path, image: &Path, blocks: u32) {
    let st = std::process::Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-N", "128", "-O", "^has_journal"])
        .args(["-U", "0b1d2c3e-4f50-4617-8829-3a4b5c6d7e8f"])
        .args(["-E", "hash_seed=8a9b0c1d-2e3f-4041-9253-64758697a8b9"])
        .arg("-d")
        .arg(tree)
        .arg(image)
        .arg(blocks.to_string())
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .status()
        .expect("mkfs.ext4 runs (scripts/install-deps.sh installs e2fsprogs)");
    assert!(st.success());
}

/// Two releases of a root filesystem: for each, `files` (path, content) written into a tree,
/// packed by mkfs.ext4 as Yocto does, gzip'd into a SWU. Returns (v1.swu, v2.swu).
fn filesystem_release_pair(dir: &Path, releases: [Vec<(&str, Vec<u8>)>; 2]) -> (PathBuf, PathBuf) {
    let mut swus = Vec::new();
    for (v, files) in releases.iter().enumerate() {
        let tree = dir.join(format!("tree{}", v + 1));
        for (path, bytes) in files {
            let p = tree.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, bytes).unwrap();
        }
        let img = dir.join(format!("v{}.ext4", v + 1));
        mkfs_image(&tree, &img, 4096);
        let gz = deflate_bytes(DeflateParams::GZIP_PROFILE, &fs::read(&img).unwrap()).unwrap();
        let swu = dir.join(format!("v{}.swu", v + 1));
        swu_file(&swu, &[("rootfs.ext4.gz", gz)]);
        swus.push(swu);
    }
    (swus[0].clone(), swus[1].clone())
}

/// Pseudo-random bytes (xorshift), the same for the same seed.
fn noise(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `gzip -9n` of `data`, by the real gzip: what Debian packages ship.
fn gzip_9n(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// A changed `gzip -9n` file inside the filesystem differs from its old version in nearly
/// every byte; the device re-creates it from its text, which is diffed against the old text.
#[test]
fn changed_gzip_files_inside_the_filesystem_are_rebuilt_from_their_text() {
    let dir = tempfile::tempdir().unwrap();
    let changelog = |release: u32| -> Vec<u8> {
        let mut text = String::new();
        for v in (1..=release).rev() {
            text.push_str(&format!(
                "demo ({v}.0) stable; urgency=medium\n\n  * Release {v}: fixes for issue {}.\n\n",
                v * 7
            ));
        }
        for line in 0..6000 {
            text.push_str(&format!(
                "  * older entry {line}: adjusted parameter {}\n",
                line * 13 % 97
            ));
        }
        text.into_bytes()
    };
    let manual = |edit: bool| -> Vec<u8> {
        let mut text: Vec<u8> = (0..3000)
            .flat_map(|i| format!(".TP\n.B option{i}\nsets value {}\n", i * 31 % 1000).into_bytes())
            .collect();
        if edit {
            text.splice(20_000..20_000, b"\n.SH NEW SECTION\ntext\n".iter().copied());
        }
        text
    };
    // Prose that only GNU gzip's deflate re-creates (see codec::test_inputs).
    let prose = |edit: bool| -> Vec<u8> {
        let mut text = codec::test_inputs::prose(11, 120_000);
        if edit {
            text.splice(50_000..50_000, b"\nA NEW PARAGRAPH\n".iter().copied());
        }
        text
    };
    let release = |v: u32| {
        vec![
            ("usr/share/doc/demo/changelog.gz", gzip_9n(&changelog(v))),
            ("usr/share/man/man1/demo.1.gz", gzip_9n(&manual(v == 2))),
            ("usr/share/man/man5/prose.5.gz", gzip_9n(&prose(v == 2))),
            ("usr/share/doc/demo/README", b"unchanged\n".repeat(500)),
        ]
    };
    let prose2 = gzip_9n(&prose(true));
    assert_ne!(
        prose2,
        codec::zlib::deflate_bytes(
            codec::zlib::DeflateParams {
                container: codec::zlib::Container::Gzip,
                level: 9
            },
            &prose(true)
        )
        .unwrap(),
        "the prose must be a text zlib does not re-create"
    );
    let (s, t) = filesystem_release_pair(dir.path(), [release(1), release(2)]);
    let mut sizes = Vec::new();
    for profile in [Profile::Gzip, Profile::Extended] {
        let (d, o) = delta(dir.path(), &s, &t, profile);
        // ADU's applier has zlib only: the prose stays a diff of compressed bytes there.
        let (files, gnu) = match profile {
            Profile::Gzip => (2, 0),
            Profile::Extended => (3, 1),
        };
        assert_eq!(o.stats.inner_gz_files, files, "{profile:?}: {:?}", o.stats);
        assert_eq!(
            o.stats.inner_gz_gnu_files, gnu,
            "{profile:?}: {:?}",
            o.stats
        );
        assert_eq!(apply(&s, &d, dir.path()), fs::read(&t).unwrap());
        let (archive, _) = delta::read_path(&d, &delta::ReadLimits::default()).unwrap();
        let uses_gnu = archive
            .recipe_sets
            .iter()
            .flat_map(|set| &set.recipes)
            .any(|r| matches!(r, Recipe::GnuGzipCompression { level: 9, .. }));
        assert_eq!(uses_gnu, gnu == 1, "{profile:?}");
        sizes.push(o.delta_len);
    }
    // Diffs of compressed files would cost tens of kilobytes; the text diffs cost a few
    // hundred bytes, plus recipes.
    assert!(sizes[0] > 20_000, "gzip profile: {} bytes", sizes[0]);
    assert!(sizes[1] < 8_000, "zstd profile: {} bytes", sizes[1]);
}

/// Package installation: new files without old versions. New executables are compressed with
/// their branch targets made absolute (zstd profile), and new gzip files are re-created from
/// their text, which compresses with the other new bytes.
#[test]
fn new_executables_and_new_gzip_files_are_compressed_as_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    // x86-64-like code: calls to a few functions and loads of a few globals from everywhere.
    let program = {
        let mut out = b"\x7fELF\x02\x01\x01\x00".to_vec();
        let r = noise(200_000, 31);
        let mut i = 0;
        while out.len() < 300_000 {
            let k = usize::from(r[i % r.len()]);
            i += 1;
            let (code, target): (&[u8], i64) = match k % 3 {
                0 => (&[0xE8], 0x1_0000 + (k as i64 % 5) * 0x340),
                1 => (&[0x48, 0x8D, 0x05], 0x8_0000 + (k as i64 % 9) * 8),
                _ => (&[0x48, 0x89, 0xC7, 0x31, 0xC0], -1),
            };
            out.extend_from_slice(code);
            if target >= 0 {
                let next = out.len() as i64 + 4;
                out.extend_from_slice(&((target - next) as i32).to_le_bytes());
            }
        }
        out
    };
    let changelog: Vec<u8> = (0..400)
        .flat_map(|v| {
            format!("newpkg ({v}.0-1) stable; urgency=medium\n\n  * New upstream release {v}.\n\n -- Maintainer <m@example.org>  Mon, 0{} Jan 2024\n\n", v % 9 + 1)
                .into_bytes()
        })
        .collect();
    let base = vec![
        ("usr/bin/old", noise(100_000, 32)),
        ("usr/share/doc/base/README", b"unchanged\n".repeat(300)),
    ];
    let mut added = base.clone();
    added.push(("usr/bin/newprog", program));
    added.push((
        "usr/share/doc/newpkg/changelog.Debian.gz",
        gzip_9n(&changelog),
    ));
    let (s, t) = filesystem_release_pair(dir.path(), [base, added]);
    for profile in [Profile::Gzip, Profile::Extended] {
        let (d, o) = delta(dir.path(), &s, &t, profile);
        assert_eq!(apply(&s, &d, dir.path()), fs::read(&t).unwrap());
        assert_eq!(o.stats.inner_gz_files, 1, "{profile:?}: {:?}", o.stats);
        let (archive, _) = delta::read_path(&d, &delta::ReadLimits::default()).unwrap();
        let uses_bcj = archive
            .recipe_sets
            .iter()
            .flat_map(|set| &set.recipes)
            .any(|r| matches!(r, Recipe::BcjX86Decode { .. }));
        match profile {
            // ADU's applier has no such recipe.
            Profile::Gzip => {
                assert!(!uses_bcj);
                assert_eq!(o.stats.bcj_filtered_bytes, 0);
            }
            Profile::Extended => {
                assert!(uses_bcj, "{:?}", o.stats);
                assert!(o.stats.bcj_filtered_bytes > 300_000, "{:?}", o.stats);
            }
        }
    }
}

/// A rebuilt executable: every embedded address moves by the same amount. bsdiff's byte-wise
/// differences are mostly zeros there, where zstd sees changed literals everywhere.
#[test]
fn rebuilt_executables_are_patched_with_bsdiff() {
    let dir = tempfile::tempdir().unwrap();
    let program = |shift: u32| -> Vec<u8> {
        let mut out = b"\x7fELF\x02\x01\x01\x00".to_vec();
        let mut x = 0x2545_F491u32;
        for i in 0..60_000u32 {
            // An "instruction": an opcode from a small set, then an absolute address.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            out.push([0xe8, 0x48, 0x8b, 0x89, 0xff][(x % 5) as usize]);
            let target = 0x40_0000 + (x >> 8) % 0x10_0000 + i % 7;
            out.extend_from_slice(&(target + shift).to_le_bytes());
        }
        out
    };
    let release = |shift: u32| {
        vec![
            ("usr/bin/program", program(shift)),
            ("usr/bin/script", b"#!/bin/sh\necho unchanged\n".repeat(100)),
        ]
    };
    let (s, t) = filesystem_release_pair(dir.path(), [release(0), release(0x1047)]);
    for profile in [Profile::Gzip, Profile::Extended] {
        let (d, o) = delta(dir.path(), &s, &t, profile);
        assert_eq!(o.stats.patched_files, 1, "{profile:?}: {:?}", o.stats);
        assert!(o.stats.patch_saved_bytes > 0, "{:?}", o.stats);
        let top = &o.stats.most_expensive[0];
        assert_eq!(top.path.as_deref(), Some("/usr/bin/program"), "{top:?}");
        assert_eq!(top.member, "rootfs.ext4.gz");
        assert!(top.how.starts_with("bsdiff"), "{top:?}");
        assert!(
            top.delta_bytes > 0 && top.delta_bytes < o.delta_len,
            "{top:?}"
        );
        assert_eq!(apply(&s, &d, dir.path()), fs::read(&t).unwrap());
        let (archive, _) = delta::read_path(&d, &delta::ReadLimits::default()).unwrap();
        assert!(archive
            .recipe_sets
            .iter()
            .flat_map(|set| &set.recipes)
            .any(|r| matches!(r, Recipe::BspatchDecompression { .. })));
        // The same delta with one thread, with three, and with a memory limit that lets only
        // one bsdiff evaluation run at a time.
        for (threads, limit) in [(1, generate::DEFAULT_MEMORY_LIMIT), (3, 40 << 20)] {
            let again = dir.path().join(format!("{profile:?}-{threads}.diff"));
            let mut options = Options::new(profile, dir.path().join(format!("w{threads}")));
            options.memory_limit = limit;
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| create(&s, &t, &again, &options))
                .unwrap();
            assert_eq!(
                fs::read(&again).unwrap(),
                fs::read(&d).unwrap(),
                "{threads} threads"
            );
        }
    }
    // A memory limit too small for any bsdiff evaluation leaves the file to zstd: still a
    // correct delta, just without the patch.
    let d = dir.path().join("small.diff");
    let mut options = Options::new(Profile::Extended, dir.path().join("w"));
    options.memory_limit = 1 << 20;
    let o = create(&s, &t, &d, &options).unwrap();
    assert_eq!(o.stats.patched_files, 0);
    assert_eq!(apply(&s, &d, dir.path()), fs::read(&t).unwrap());
}

/// Changed files whose path changed too: a kernel module directory named after the kernel
/// version, a file moved to another folder, a file renamed and moved. Their old versions are
/// still found (by the path with version numbers blanked, by the file name, by content), so
/// only the changes cost.
#[test]
fn renamed_and_moved_files_are_diffed_against_their_old_versions() {
    let dir = tempfile::tempdir().unwrap();
    let module = noise(300_000, 5);
    let data = noise(200_000, 6);
    let engine = noise(250_000, 7);
    let edit = |mut d: Vec<u8>| {
        for i in (0..d.len()).step_by(1000) {
            d[i] ^= 0x5a;
        }
        d
    };
    let (s, t) = filesystem_release_pair(
        dir.path(),
        [
            vec![
                ("lib/modules/6.1.0-17-amd64/kernel/drv.ko", module.clone()),
                ("opt/old/data.bin", data.clone()),
                ("opt/tool/engine.bin", engine.clone()),
            ],
            vec![
                ("lib/modules/6.1.0-18-amd64/kernel/drv.ko", edit(module)),
                ("usr/share/app/data.bin", edit(data)),
                // Renamed and moved: found by its content.
                ("usr/lib/other/motor.dat", edit(engine)),
            ],
        ],
    );
    let (d, o) = delta(dir.path(), &s, &t, Profile::Gzip);
    assert_eq!(apply(&s, &d, dir.path()), fs::read(&t).unwrap());
    // 750 changed bytes spread over 750 KB of incompressible data: without the old versions
    // the delta would hold all 750 KB.
    assert!(o.delta_len < 60_000, "{} bytes: {:?}", o.delta_len, o.stats);
}

/// A changed file larger than what one segment takes together with its old version: its
/// chunks spill into further segments, each of which must get the old version as basis again
/// (it once got none and the delta could not be written).
#[test]
fn a_large_changed_file_spans_segments_each_with_its_basis() {
    let dir = tempfile::tempdir().unwrap();
    let old = noise(3_900_000, 11);
    let mut new = old.clone();
    for i in (0..new.len()).step_by(1000) {
        new[i] ^= 0xa5; // no 4 KiB block survives unchanged
    }
    new.extend_from_slice(&noise(1_300_000, 12));
    let (s, t) = filesystem_release_pair(
        dir.path(),
        [
            vec![("usr/lib/big.bin", old)],
            vec![("usr/lib/big.bin", new)],
        ],
    );
    let d = dir.path().join("d.diff");
    let mut options = Options::new(Profile::Gzip, dir.path().join("w"));
    options.new_data_level = 3; // fast: the test is about segments, not ratio
    let o = create(&s, &t, &d, &options).unwrap();
    assert!(o.stats.segments >= 2, "{:?}", o.stats);
    assert_eq!(apply(&s, &d, dir.path()), fs::read(&t).unwrap());
    // The 3.9 MB that changed in place cost little; the appended 1.3 MB of noise is most of it.
    assert!(
        o.delta_len < 1_700_000,
        "{} bytes {:?}",
        o.delta_len,
        o.stats
    );
}

/// A decompression bomb: a small gzip payload that expands far beyond what the run accepts
/// stops with an error naming the payload and the limit, leaving no output and no content
/// file behind. (Without `max_content` the working folder's free space is the limit.)
#[test]
fn a_decompression_bomb_stops_at_the_content_limit() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 64 << 20];
    let bomb = deflate_bytes(DeflateParams::GZIP_PROFILE, &zeros).unwrap();
    assert!(bomb.len() < 100_000);
    let (s, t) = (dir.path().join("s.swu"), dir.path().join("t.swu"));
    swu_file(&s, &[("rootfs.ext4.gz", bomb.clone())]);
    swu_file(
        &t,
        &[("rootfs.ext4.gz", bomb), ("extra.bin", b"x".to_vec())],
    );
    let d = dir.path().join("d.diff");
    let work = dir.path().join("w");
    let mut options = Options::new(Profile::Gzip, work.clone());
    options.max_content = 16 << 20;
    let e = create(&s, &t, &d, &options).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Decompress { .. }), "{msg}");
    assert!(
        msg.contains("rootfs.ext4.gz") && msg.contains("more than 16777216 bytes"),
        "{msg}"
    );
    assert!(!d.exists());
    let left: Vec<_> = fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Executables linked with large segment alignment (aarch64: 64 KiB) carry runs of zero
/// padding, which `mkfs.ext4 -d` stores as holes. A hole reads as zeros in both versions: such
/// a sparse file is still compared with bsdiff and patched (it used to be left to zstd), and
/// the device rebuilds its zeros with `all_zeros`.
#[test]
fn sparse_executables_are_patched_with_bsdiff() {
    let dir = tempfile::tempdir().unwrap();
    // Code, 88 KiB of zero padding up to a 64 KiB boundary, more code; each "instruction" an
    // opcode and an absolute address that moves by `shift` in the new build.
    let code = |n: u32, shift: u32, seed: u32| -> Vec<u8> {
        let mut out = Vec::new();
        let mut x = seed;
        for i in 0..n {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            out.push([0x94, 0x97, 0x14, 0x17, 0xd6][(x % 5) as usize]);
            out.extend_from_slice(
                &(0x40_0000 + (x >> 8) % 0x10_0000 + i % 7 + shift).to_le_bytes(),
            );
        }
        out
    };
    let program = |shift: u32| -> Vec<u8> {
        let mut out = b"\x7fELF\x02\x01\x01\x00".to_vec();
        out.extend(code(8_000, shift, 0x2545_F491));
        out.resize(128 << 10, 0);
        out.extend(code(12_000, shift, 0x1234_5677));
        out
    };
    let release = |shift: u32| vec![("usr/bin/program", program(shift))];
    let (s, t) = filesystem_release_pair(dir.path(), [release(0), release(0x1047)]);
    // The image really holds the file with a hole.
    let image = fs::read(dir.path().join("v2.ext4")).unwrap();
    let fs_ = ext4::Filesystem::open(image.as_slice()).unwrap();
    let scan = fs_.scan().unwrap();
    let file = scan
        .files
        .iter()
        .find(|f| f.paths.iter().any(|p| p == "/usr/bin/program"))
        .unwrap();
    let mapped: u64 = file.runs.iter().map(|r| r.len).sum();
    assert!(
        mapped * 4096 < file.size - 4096,
        "mkfs.ext4 -d stored the padding: {:?}",
        file.runs
    );
    for profile in [Profile::Gzip, Profile::Extended] {
        let (d, o) = delta(dir.path(), &s, &t, profile);
        assert_eq!(o.stats.patched_files, 1, "{profile:?}: {:?}", o.stats);
        assert!(
            o.stats
                .executables
                .iter()
                .any(|e| e.contains("/usr/bin/program: bsdiff (bsdiff patch")),
            "{:?}",
            o.stats.executables
        );
        assert_eq!(apply(&s, &d, dir.path()), fs::read(&t).unwrap());
    }
}

/// A C program of `functions` functions, each calling its neighbour and one far away, and a
/// table of pointers to them; in `grown` of them, at even intervals, a statement is added (a
/// rebuilt release: code moves by a different amount after each, so most calls change, each
/// by its own amount, while the new code is a few bytes). Compiled with the system's C
/// compiler as a stripped position-independent executable (as distributions ship them).
fn compiled_program(dir: &Path, name: &str, functions: usize, grown: usize) -> Vec<u8> {
    use std::fmt::Write;
    let mut c = String::from("#include <stdio.h>\nvolatile int sink;\n");
    for i in 0..functions {
        writeln!(c, "int f{i}(int x);").unwrap();
    }
    for i in 0..functions {
        let near = if i == 0 {
            "sink".to_string()
        } else {
            format!("f{}(x + 1)", i - 1)
        };
        let far = (i * 7919 + functions / 2) % functions;
        let added = if grown > 0 && i % (functions / grown) == 0 {
            format!("sink ^= {};", i * 3 + 1)
        } else {
            String::new()
        };
        writeln!(
            c,
            "__attribute__((noinline)) int f{i}(int x) {{ if (x > {i}) return {near}; {added} \
             sink += {i}; if (x < 0) return f{far}(x + 2); return x * {} + {near}; }}",
            i * 7 + 1
        )
        .unwrap();
    }
    c.push_str("int (*const table[])(int) = {");
    for i in 0..functions {
        write!(c, "f{i},").unwrap();
    }
    c.push_str("};\nint main(int argc, char **argv) {");
    writeln!(
        c,
        " printf(\"%d\\n\", sink); return table[argc % {functions}](argc); }}"
    )
    .unwrap();
    let source = dir.join(format!("{name}.c"));
    let binary = dir.join(name);
    fs::write(&source, c).unwrap();
    let status = std::process::Command::new("cc")
        .args(["-O1", "-fPIE", "-pie", "-s", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .expect("a C compiler (cc) is needed: Rust links with it; install build-essential");
    assert!(status.success(), "cc failed on {}", source.display());
    fs::read(&binary).unwrap()
}

#[test]
fn rebuilt_programs_get_executable_patches_in_the_zstd_profile() {
    let dir = tempfile::tempdir().unwrap();
    let old = compiled_program(dir.path(), "v1", 3000, 0);
    let new = compiled_program(dir.path(), "v2", 3000, 100);
    assert!(old.len() > 16 << 10 && new.len() > 16 << 10);
    let release = |bytes: &Vec<u8>| vec![("usr/bin/program", bytes.clone())];
    let (s, t) = filesystem_release_pair(dir.path(), [release(&old), release(&new)]);
    let (d, o) = delta(dir.path(), &s, &t, Profile::Extended);
    assert_eq!(o.stats.exe_patched_files, 1, "{:?}", o.stats.executables);
    let line = o
        .stats
        .executables
        .iter()
        .find(|e| e.contains("/usr/bin/program: "))
        .unwrap();
    assert!(
        line.contains("/usr/bin/program: executable patch ("),
        "{line}"
    );
    // The executable patch beats bsdiff clearly: every call across the insertion changed.
    let sizes: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (exe, bsdiff) = (sizes[sizes.len() - 3], sizes[sizes.len() - 2]);
    assert!(exe * 2 < bsdiff, "{line}");
    let (archive, _) = delta::read_path(&d, &delta::ReadLimits::default()).unwrap();
    assert!(delta::inspect::inspect(&archive).needs_diffgen_applier);
    assert!(archive
        .recipe_sets
        .iter()
        .flat_map(|set| &set.recipes)
        .any(|r| matches!(r, Recipe::ExeBspatch { .. })));
    assert_eq!(apply(&s, &d, dir.path()), fs::read(&t).unwrap());
    // The gzip profile never uses the extension; bsdiff patches the program there.
    let (d, o) = delta(dir.path(), &s, &t, Profile::Gzip);
    assert_eq!(o.stats.exe_patched_files, 0);
    assert_eq!(o.stats.patched_files, 1, "{:?}", o.stats.executables);
    assert_eq!(apply(&s, &d, dir.path()), fs::read(&t).unwrap());
}

/// The rest of a changed file's last block (past its end) gets no reference to the file's old
/// version: those bytes are no part of it, and the old version would only make a segment's
/// basis larger (a whole old executable for a few hundred bytes).
#[test]
fn bytes_past_a_files_end_have_no_reference() {
    let dir = tempfile::tempdir().unwrap();
    let mut images = Vec::new();
    for v in 1..=2u8 {
        let tree = dir.path().join(format!("tree{v}"));
        fs::create_dir_all(&tree).unwrap();
        let mut bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        bytes[5000] = v;
        fs::write(tree.join("data.bin"), bytes).unwrap();
        let img = dir.path().join(format!("v{v}.ext4"));
        mkfs_image(&tree, &img, 1024);
        images.push(fs::read(&img).unwrap());
    }
    let (finder, note) = generate::reference::ReferenceFinder::new(&images[1], &images[0]);
    assert_eq!(note, None);
    let file = finder
        .files()
        .find(|f| f.path.ends_with("data.bin"))
        .unwrap();
    assert_eq!(file.size, 10_000);
    let generate::reference::Stretch::Data { offset, len } = *file.target.last().unwrap() else {
        panic!("the file ends in data: {:?}", file.target);
    };
    let end = offset + len;
    let rest = 4096 - end % 4096;
    assert!(!finder.find(end - 100, 100).is_empty(), "the file's bytes");
    assert_eq!(
        finder.find(end, rest),
        Vec::new(),
        "the rest of its last block"
    );
    assert!(!finder.find(end - 100, 100 + rest).is_empty(), "both");
}
