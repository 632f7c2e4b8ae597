//! Test support: the material that lives beside the checkout in `../shared` and is never copied
//! into the repository: ADU's interoperability vectors (`adu-vectors/`) and ADU's own delta
//! applier (`tools/adu-reference/`: `applydiff`, `dumpdiff`, `libadudiffapi.so` 3.0.0).
//!
//! In someone's own clone `../shared` may be absent: a test asks [`adu_vectors`] or
//! [`adu_reference`], gets `None`, and skips after one visible line on stderr. In CI the folder
//! is there, and `.ci/run` sets `DIFFGEN_REQUIRE_SHARED=1`, so a missing folder is a test
//! failure instead of a silent skip.
//!
//! Programs that `scripts/install-deps.sh` installs for a few tests (headless Chromium for the
//! browser test of `report.html`) follow the same rule: [`program`] finds one in `PATH`, or
//! skips with one line, or fails when `DIFFGEN_REQUIRE_SHARED` is set (CI installs them).
//!
//! ADU's programs run under `timeout` (a corrupt bsdiff patch can make ADU's applier hang; see
//! the reference README), with ADU's own library unless a test names another.
//!
//! [`check_delta_with_adu`] is what every end-to-end test calls where it verifies a delta it
//! wrote: ADU's `dumpdiff` must read it and ADU's `applydiff` must rebuild the same bytes,
//! unless the delta uses one of diffgen's extensions, which ADU's tools must refuse.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

/// Environment variable that turns a missing `../shared` (or a missing [`program`]) into a
/// failure (set by `.ci/run`).
pub const REQUIRE_ENV: &str = "DIFFGEN_REQUIRE_SHARED";

/// How long one run of ADU's `applydiff` or `dumpdiff` may take before it is killed.
pub const ADU_TIMEOUT: Duration = Duration::from_secs(300);

/// The `shared/` folder beside the checkout (it may not exist).
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// `../shared/<relative>` if it exists; otherwise one line on stderr saying which tests did
/// not run, and `None`, or a panic when [`REQUIRE_ENV`] is set.
pub fn find(relative: &str, what: &str) -> Option<PathBuf> {
    let dir = shared_dir().join(relative);
    if dir.exists() {
        return Some(dir.canonicalize().unwrap_or(dir));
    }
    let line = format!(
        "SKIPPED: {what}: {} not found (it lives beside the checkout in ../shared)",
        dir.display()
    );
    skip(&line)
}

/// Whether [`REQUIRE_ENV`] is set (to anything but empty or `0`): what the tests look for must
/// be there.
pub fn required() -> bool {
    std::env::var_os(REQUIRE_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// One visible line saying what did not run, and `None`; a panic when [`required`].
fn skip<T>(line: &str) -> Option<T> {
    if required() {
        panic!("{line}, but {REQUIRE_ENV} is set: these tests must run here");
    }
    eprintln!("\n*** {line} ***\n");
    None
}

/// The first of `names` found in `PATH` (a program `scripts/install-deps.sh` installs);
/// otherwise like [`find`]: `None` after one line on stderr, or a panic when [`required`].
pub fn program(names: &[&str], what: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    skip(&format!(
        "SKIPPED: {what}: none of {} in PATH (scripts/install-deps.sh installs it)",
        names.join(", ")
    ))
}

/// ADU's interoperability vectors (`../shared/adu-vectors`), if present.
pub fn adu_vectors() -> Option<PathBuf> {
    find("adu-vectors", "ADU's reference vectors")
}

/// ADU's reference applier and tools.
#[derive(Debug, Clone)]
pub struct AduReference {
    /// `../shared/tools/adu-reference`.
    pub dir: PathBuf,
}

/// ADU's reference applier (`../shared/tools/adu-reference`), if present. Looked up once per
/// test binary, so an absent folder costs one line, not one per delta.
pub fn adu_reference() -> Option<AduReference> {
    static FOUND: OnceLock<Option<AduReference>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            find("tools/adu-reference", "checks with ADU's own applier")
                .map(|dir| AduReference { dir })
        })
        .clone()
}

/// [`AduReference::check_delta`] where `../shared` is present (the end-to-end tests call this
/// wherever they verify a delta they wrote).
pub fn check_delta_with_adu(
    source: &Path,
    delta: &Path,
    expected: &[u8],
    needs_diffgen_applier: bool,
) {
    if let Some(adu) = adu_reference() {
        adu.check_delta(source, delta, expected, needs_diffgen_applier);
    }
}

impl AduReference {
    pub fn applydiff_path(&self) -> PathBuf {
        self.dir.join("bin/applydiff")
    }

    pub fn dumpdiff_path(&self) -> PathBuf {
        self.dir.join("bin/dumpdiff")
    }

    /// Runs `applydiff <source> <delta> <out>` under `timeout`. With `library_dir`, the
    /// `libadudiffapi.so` in that folder is loaded instead of ADU's (the binaries carry
    /// DT_RUNPATH, so `LD_LIBRARY_PATH` wins). Without it `LD_LIBRARY_PATH` is removed: under
    /// `cargo test` it holds `target/*/deps`, where diffgen's drop-in `libadudiffapi.so` may
    /// lie, and that one would be tested instead of ADU's. Exit status = ADU's error count
    /// (124: timed out).
    pub fn applydiff(
        &self,
        source: &Path,
        delta: &Path,
        out: &Path,
        library_dir: Option<&Path>,
    ) -> Output {
        self.applydiff_command(source, delta, out, library_dir)
            .output()
            .expect("run applydiff under timeout")
    }

    /// The command [`applydiff`](Self::applydiff) runs, for a caller that adds environment
    /// variables (e.g. settings of the library it loads).
    pub fn applydiff_command(
        &self,
        source: &Path,
        delta: &Path,
        out: &Path,
        library_dir: Option<&Path>,
    ) -> Command {
        let mut cmd = timeout_command(&self.applydiff_path());
        cmd.arg(source).arg(delta).arg(out);
        match library_dir {
            Some(dir) => cmd.env("LD_LIBRARY_PATH", dir),
            None => cmd.env_remove("LD_LIBRARY_PATH"),
        };
        cmd
    }

    /// Applies with ADU's own library and panics unless `out` equals `expected` byte for byte.
    pub fn assert_rebuilds(&self, source: &Path, delta: &Path, out: &Path, expected: &[u8]) {
        let output = self.applydiff(source, delta, out, None);
        assert!(
            output.status.success(),
            "ADU's applydiff failed on {} ({}): {}{}",
            delta.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let made = std::fs::read(out).expect("applydiff wrote its output");
        assert!(
            made == expected,
            "ADU's applydiff rebuilt {} bytes that differ from the {}-byte target ({})",
            made.len(),
            expected.len(),
            delta.display()
        );
    }

    /// Runs `dumpdiff <delta>` under `timeout`, with ADU's own library.
    pub fn dumpdiff(&self, delta: &Path) -> Output {
        let mut cmd = timeout_command(&self.dumpdiff_path());
        cmd.arg(delta).env_remove("LD_LIBRARY_PATH");
        cmd.output().expect("run dumpdiff under timeout")
    }

    /// ADU's tools on a delta diffgen wrote. A delta that needs no diffgen extension (every
    /// gzip-profile delta) must be read by `dumpdiff` and must rebuild `expected` byte for byte
    /// with `applydiff`. One that uses an extension must be refused by `dumpdiff` (it cannot
    /// load such a delta at all: docs/format.md §1), never taken for something else.
    pub fn check_delta(
        &self,
        source: &Path,
        delta: &Path,
        expected: &[u8],
        needs_diffgen_applier: bool,
    ) {
        let dump = self.dumpdiff(delta);
        let text = String::from_utf8_lossy(&dump.stdout);
        if needs_diffgen_applier {
            assert!(
                !dump.status.success(),
                "ADU's dumpdiff read a delta that uses diffgen's extensions ({}): {text}",
                delta.display()
            );
            return;
        }
        assert!(
            dump.status.success()
                && text.contains("\"TargetItem\"")
                && text.contains("\"Recipes\""),
            "ADU's dumpdiff cannot read {} ({}): {text}{}",
            delta.display(),
            dump.status,
            String::from_utf8_lossy(&dump.stderr)
        );
        let mut out = delta.as_os_str().to_owned();
        out.push(".adu-rebuilt");
        let out = PathBuf::from(out);
        self.assert_rebuilds(source, delta, &out, expected);
        let _ = std::fs::remove_file(&out);
    }
}

fn timeout_command(program: &Path) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=10")
        .arg(ADU_TIMEOUT.as_secs().to_string())
        .arg(program);
    cmd
}
