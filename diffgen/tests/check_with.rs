//! `diffgen create --check-with CMD` and `DIFFGEN_CHECK_WITH` for the DiffGenTool form: the
//! devices' applier rebuilds the target from each delta before it is written. Passes with
//! ADU's applydiff (and diffgen's own) on gzip-profile deltas; fails cleanly (exit 1, one
//! `Error:` line, no delta, no temp files) on wrong bytes, a non-zero exit, a timeout, and
//! ADU's applydiff on a zstd-profile delta that uses `zstd_compression`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_diffgen")
}

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(bin())
        .args(args)
        // cargo test points LD_LIBRARY_PATH at target/*/deps, where diffgen's drop-in
        // libadudiffapi.so may lie: ADU's applydiff would load it instead of ADU's library.
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("DIFFGEN_CHECK_WITH")
        .env_remove("DIFFGEN_CHECK_TIMEOUT")
        .envs(env.iter().copied())
        .output()
        .expect("run diffgen")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A folder whose name has a space and a quote, holding the release pair recompressed with
/// `compression` (gzip: ADU's stock applier can rebuild it): (folder, v1, v2).
fn pair(compression: &str) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("it's a folder");
    fs::create_dir(&sub).unwrap();
    let mut out = Vec::new();
    for v in ["v1", "v2"] {
        let path = sub.join(format!("release {v}.swu"));
        let input = testdata(&format!("swu/release-{v}.swu"));
        let o = run(
            &[
                "recompress",
                "--drop-signature",
                "--compression",
                compression,
                input.to_str().unwrap(),
                path.to_str().unwrap(),
            ],
            &[],
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        out.push(path.to_str().unwrap().to_string());
    }
    let v2 = out.pop().unwrap();
    (dir, out.pop().unwrap(), v2)
}

fn create(source: &str, target: &str, output: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "create", "--source", source, "--target", target, "-o", output, "--quiet",
    ];
    args.extend_from_slice(extra);
    run(&args, &[])
}

/// Exit 1, one `Error:` line (the last), no delta and no temp file next to it; returns the
/// line.
fn assert_refused(o: &Output, delta: &Path) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or("").to_string();
    assert!(last.starts_with("Error: --check-with "), "{err}");
    assert_eq!(err.matches("Error:").count(), 1, "{err}");
    assert!(last.contains("no delta written"), "{last}");
    assert!(!delta.exists(), "{} was written", delta.display());
    let folder = delta.parent().unwrap();
    let left: Vec<_> = fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
    last
}

#[test]
fn adus_applier_accepts_a_gzip_profile_delta() {
    let Some(adu) = shared_fixtures::adu_reference() else {
        return;
    };
    let (dir, v1, v2) = pair("gzip");
    let delta = dir.path().join("it's a folder/v1 to v2.diff");
    let logs = dir.path().join("logs");
    let applydiff = adu.applydiff_path();
    let o = create(
        &v1,
        &v2,
        delta.to_str().unwrap(),
        &[
            "--profile",
            "gzip",
            "--check-with",
            applydiff.to_str().unwrap(),
            "--logs",
            logs.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["deltas"][0]["checked_with"].as_str(),
        applydiff.to_str(),
        "{v}"
    );
    let log = fs::read_to_string(logs.join("check-with.log")).unwrap();
    assert!(log.contains("Finished successfully."), "{log}");
    // The delta that was checked is the one written.
    let out = dir.path().join("rebuilt.swu");
    adu.assert_rebuilds(Path::new(&v1), &delta, &out, &fs::read(&v2).unwrap());
}

#[test]
fn diffgens_own_applier_as_the_check_and_the_summary_line() {
    let (dir, v1, v2) = pair("gzip");
    let delta = dir.path().join("d.diff");
    let check = format!("'{}' apply", bin());
    let o = run(
        &[
            "create",
            "--source",
            &v1,
            "--target",
            &v2,
            "-o",
            delta.to_str().unwrap(),
            "--check-with",
            &check,
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("rebuilt the target exactly"), "{out}");
    assert!(out.contains("check with "), "{out}");
    assert!(delta.is_file());
}

#[test]
fn a_command_that_rebuilds_other_bytes_is_refused() {
    let (dir, v1, v2) = pair("gzip");
    let delta = dir.path().join("d.diff");
    // "Rebuilds" the source: same kind of file, other bytes.
    let o = create(
        &v1,
        &v2,
        delta.to_str().unwrap(),
        &["--check-with", "f() { cp \"$1\" \"$3\"; }; f"],
    );
    let line = assert_refused(&o, &delta);
    assert!(
        line.contains("differs from the target at byte")
            || line.contains("bytes where the target has"),
        "{line}"
    );
    // One that exits 0 and writes nothing.
    let o = create(&v1, &v2, delta.to_str().unwrap(), &["--check-with", "true"]);
    let line = assert_refused(&o, &delta);
    assert!(line.contains("left no output file"), "{line}");
}

#[test]
fn a_failing_or_hanging_command_is_refused_with_its_output_shown() {
    let (dir, v1, v2) = pair("gzip");
    let delta = dir.path().join("d.diff");
    let o = create(
        &v1,
        &v2,
        delta.to_str().unwrap(),
        &["--check-with", "echo 'applier says no' >&2; exit 3; :"],
    );
    let line = assert_refused(&o, &delta);
    assert!(line.contains("exited with status 3"), "{line}");
    assert!(
        text(&o.stderr).contains("applier says no"),
        "{}",
        text(&o.stderr)
    );
    // With a log folder the output goes there.
    let logs = dir.path().join("logs");
    let o = create(
        &v1,
        &v2,
        delta.to_str().unwrap(),
        &[
            "--check-with",
            "echo 'applier says no'; exit 3; :",
            "--logs",
            logs.to_str().unwrap(),
        ],
    );
    let line = assert_refused(&o, &delta);
    assert!(line.contains("check-with.log"), "{line}");
    let log = fs::read_to_string(logs.join("check-with.log")).unwrap();
    assert!(log.contains("applier says no"), "{log}");
    // A command that hangs is killed at the timeout.
    let start = std::time::Instant::now();
    let o = create(
        &v1,
        &v2,
        delta.to_str().unwrap(),
        &["--check-with", "sleep 60; :", "--check-timeout", "1"],
    );
    let line = assert_refused(&o, &delta);
    assert!(line.contains("did not finish within 1 s"), "{line}");
    assert!(start.elapsed().as_secs() < 30);
}

#[test]
fn adus_applier_rejects_a_zstd_compression_delta() {
    let Some(adu) = shared_fixtures::adu_reference() else {
        return;
    };
    let (dir, v1, v2) = pair("zstd");
    let delta = dir.path().join("z.diff");
    let logs = dir.path().join("logs");
    let o = create(
        &v1,
        &v2,
        delta.to_str().unwrap(),
        &[
            "--profile",
            "zstd",
            "--check-with",
            adu.applydiff_path().to_str().unwrap(),
            "--logs",
            logs.to_str().unwrap(),
        ],
    );
    let line = assert_refused(&o, &delta);
    assert!(line.contains("exited with status 1"), "{line}");
    let log = fs::read_to_string(logs.join("check-with.log")).unwrap();
    assert!(
        log.contains("Code: 31702") && log.contains("zstd_compression"),
        "{log}"
    );
}

#[test]
fn several_sources_each_checked_and_the_diffgentool_form_uses_the_environment() {
    let (dir, v1, v2) = pair("gzip");
    let other = testdata("swu/sample-crc.swu");
    let out = dir.path().join("out");
    let calls = dir.path().join("calls.txt");
    let check = format!(
        "f() {{ echo \"$2\" >> '{}'; '{}' apply \"$@\"; }}; f",
        calls.display(),
        bin()
    );
    let o = run(
        &[
            "create",
            "--source",
            &v1,
            "--source",
            other.to_str().unwrap(),
            "--target",
            &v2,
            "-o",
            out.to_str().unwrap(),
            "--check-with",
            &check,
            "--quiet",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(fs::read_to_string(&calls).unwrap().lines().count(), 2);
    assert_eq!(fs::read_dir(&out).unwrap().count(), 2);

    // DiffGenTool's positional form: DIFFGEN_CHECK_WITH.
    let delta = dir.path().join("legacy.diff");
    let (logs, work) = (dir.path().join("l"), dir.path().join("w"));
    let positional = [
        v1.as_str(),
        v2.as_str(),
        delta.to_str().unwrap(),
        logs.to_str().unwrap(),
        work.to_str().unwrap(),
    ];
    let o = run(
        &positional,
        &[("DIFFGEN_CHECK_WITH", "f() { cp \"$1\" \"$3\"; }; f")],
    );
    assert_refused(&o, &delta);
    let o = run(
        &positional,
        &[("DIFFGEN_CHECK_WITH", &format!("'{}' apply", bin()))],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("rebuilt the target exactly"));
    assert!(logs.join("check-with.log").is_file());
    assert!(delta.is_file());
}
