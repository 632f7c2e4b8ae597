//! Shared by the library's integration tests: the built `libadudiffapi.so`, the C harness
//! (compiled with `cc`), and deltas of both profiles made from the sample release pair.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The library cargo built for this test run. Cargo builds the package's library (cdylib and
/// rlib, see Cargo.toml) before its integration tests, into the `deps/` folder the test
/// executable runs from; `target/<profile>/libadudiffapi.so` is refreshed only by `cargo build`.
pub fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let lib = exe.with_file_name("libadudiffapi.so");
    assert!(lib.is_file(), "{} not built", lib.display());
    lib
}

/// A folder holding only a copy of the library, for `LD_LIBRARY_PATH`.
pub fn library_dir(work: &Path) -> PathBuf {
    let dir = work.join("lib");
    fs::create_dir_all(&dir).unwrap();
    fs::copy(library(), dir.join("libadudiffapi.so")).unwrap();
    dir
}

/// Scratch space under cargo's target folder.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch folder")
}

/// `target/tmp/<what>-<pid>` for this test process, after removing those of processes that
/// have ended (fixtures and the harness live as long as the test executable).
fn per_process_dir(what: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for entry in fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix(what).and_then(|r| r.strip_prefix('-'));
        if pid.is_some_and(|p| !Path::new("/proc").join(p).exists()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    let dir = root.join(format!("{what}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The C harness (tests/harness.c), compiled once per test executable.
pub fn harness() -> &'static Path {
    static HARNESS: OnceLock<PathBuf> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/harness.c");
        let dir = per_process_dir("harness");
        let exe = dir.join("harness");
        let o = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args([
                "-std=gnu11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-O1",
                "-pthread",
                "-o",
            ])
            .arg(&exe)
            .arg(&src)
            .arg("-ldl")
            .output()
            .expect("cc runs (the build image has gcc)");
        assert!(
            o.status.success(),
            "cc failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        exe
    })
}

/// What one `harness LIB apply` run printed.
#[derive(Debug)]
pub struct Applied {
    pub result: i32,
    /// (code, text) of each listed error.
    pub errors: Vec<(i32, String)>,
    pub stdout: String,
}

/// Runs the harness's agent-like apply with extra environment variables.
pub fn harness_apply(
    source: &Path,
    delta: &Path,
    target: &Path,
    log: Option<&Path>,
    env: &[(&str, &str)],
) -> Applied {
    let mut cmd = Command::new(harness());
    cmd.arg(library())
        .arg("apply")
        .arg(source)
        .arg(delta)
        .arg(target);
    if let Some(l) = log {
        cmd.arg(l);
    }
    cmd.env_remove("DIFFGEN_KNOWN_ITEMS")
        .env_remove("DIFFGEN_APPLY_LOG");
    cmd.envs(env.iter().copied());
    let o = cmd.output().expect("harness runs");
    assert_eq!(o.status.code(), Some(0), "harness: {}", text(&o));
    parse_applied(&String::from_utf8_lossy(&o.stdout))
}

fn parse_applied(stdout: &str) -> Applied {
    let mut result = None;
    let mut errors = Vec::new();
    for line in stdout.lines() {
        if let Some(r) = line.strip_prefix("result ") {
            result = r.parse().ok();
        } else if let Some(e) = line.strip_prefix("error ") {
            let (code, text) = e.split_once(' ').unwrap_or((e, ""));
            errors.push((code.parse().expect("numeric code"), text.to_string()));
        }
    }
    Applied {
        result: result.unwrap_or_else(|| panic!("no result line in {stdout}")),
        errors,
        stdout: stdout.to_string(),
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Deltas made once per test executable from the sample release pair.
pub struct Fixtures {
    /// Source and target recompressed with zstd, and their zstd-profile delta.
    pub zstd: Pair,
    /// Source and target recompressed with gzip (ADU's parameters), and their gzip-profile
    /// delta.
    pub gzip: Pair,
    /// The zstd-profile delta with one byte of its inline assets flipped.
    pub corrupt: PathBuf,
    /// The source's decompressed rootfs image (what a device's active partition holds).
    pub image: PathBuf,
}

pub struct Pair {
    pub source: PathBuf,
    pub target: PathBuf,
    pub delta: PathBuf,
}

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = per_process_dir("fixtures");
        let zstd = pair(
            &dir,
            "zstd",
            recompress::Profile::zstd(3),
            delta::Profile::Extended,
        );
        let gzip = pair(
            &dir,
            "gzip",
            recompress::Profile::gzip(),
            delta::Profile::Gzip,
        );
        let corrupt = dir.join("corrupt.diff");
        let mut bytes = fs::read(&zstd.delta).unwrap();
        let at = bytes.len() - 100;
        bytes[at] ^= 0x40;
        fs::write(&corrupt, bytes).unwrap();
        let image = dir.join("v1.ext4");
        fs::write(&image, source_image()).unwrap();
        Fixtures {
            zstd,
            gzip,
            corrupt,
            image,
        }
    })
}

fn pair(dir: &Path, name: &str, rp: recompress::Profile, dp: delta::Profile) -> Pair {
    let recompressed = |v: &str| {
        let out = dir.join(format!("{v}-{name}.swu"));
        let o = recompress::Options {
            profile: rp,
            drop_signature: true,
            ..recompress::Options::default()
        };
        recompress::recompress(&testdata(&format!("swu/release-{v}.swu")), &out, &o).unwrap();
        out
    };
    let (source, target) = (recompressed("v1"), recompressed("v2"));
    let delta = dir.join(format!("{name}.diff"));
    let options = generate::Options::new(dp, dir.join(format!("work-{name}")));
    generate::create(&source, &target, &delta, &options).expect("delta created");
    Pair {
        source,
        target,
        delta,
    }
}

/// The rootfs image inside the sample v1 release, decompressed.
fn source_image() -> Vec<u8> {
    let path = testdata("swu/release-v1.swu");
    let archive =
        swu::cpio::Archive::scan(fs::File::open(&path).unwrap(), Default::default()).unwrap();
    let entry = archive.member("rootfs.ext4.gz").expect("rootfs member");
    let member = swu::cpio::member_reader(fs::File::open(&path).unwrap(), entry).unwrap();
    let mut image = Vec::new();
    std::io::Read::read_to_end(
        &mut codec::zlib::inflater(codec::zlib::Container::Gzip, member, false),
        &mut image,
    )
    .unwrap();
    image
}

/// Files in `dir` other than `expected` (leftovers of an apply).
pub fn leftovers(dir: &Path, expected: &[&str]) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !expected.contains(&n.as_str()))
        .collect()
}
