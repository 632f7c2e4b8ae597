//! The `diffgen` binary: `inspect` on good and deliberately broken SWUs, the DiffGenTool
//! positional forms, and the error contract (one `Error:` line, exit 1, never a panic).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest, Sha256};
use swu::cpio::{Format, Header, Writer};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_diffgen")
}

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run diffgen")
}

fn run_str(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run diffgen")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts the error contract: exit 1, exactly one `Error:` line on stderr (after any usage
/// lines), no panic; returns that line.
fn assert_error(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("Error: ")).collect();
    assert_eq!(errors.len(), 1, "stderr: {err}");
    assert_eq!(
        err.lines().last(),
        Some(errors[0]),
        "Error: must be the last line: {err}"
    );
    errors[0].to_string()
}

/// Rebuilds `expected` from `source` and `delta` with `diffgen apply`. A delta that needs no
/// diffgen extension (every gzip-profile delta) must rebuild it with ADU's own applier too, and
/// ADU's dumpdiff must read it (where ../shared is present).
fn assert_rebuilds(source: &str, delta: &str, expected: &Path) {
    let out = format!("{delta}.rebuilt");
    let o = run_str(&["apply", source, delta, &out]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let want = fs::read(expected).unwrap();
    assert!(
        fs::read(&out).unwrap() == want,
        "{delta} rebuilt other bytes"
    );
    fs::remove_file(&out).unwrap();
    let (archive, _) = delta::read_path(Path::new(delta), &delta::ReadLimits::default()).unwrap();
    shared_fixtures::check_delta_with_adu(
        Path::new(source),
        Path::new(delta),
        &want,
        archive.needs_diffgen_applier(),
    );
}

fn inspect_json(path: &Path) -> (Output, Value) {
    let o = run(&["inspect".as_ref(), "--json".as_ref(), path.as_os_str()]);
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {} / {}", stdout(&o), stderr(&o)));
    (o, v)
}

fn sha_hex(data: &[u8]) -> String {
    swu::hex::encode(&Sha256::digest(data))
}

/// Builds a crc SWU from (name, data) members.
fn build_swu(path: &Path, members: &[(&str, &[u8])]) {
    let mut w = Writer::new(Vec::new());
    for (name, data) in members {
        w.write_bytes(&Header::regular_file(Format::Crc, 0), name, data)
            .unwrap();
    }
    fs::write(path, w.finish(Format::Crc, None, None).unwrap()).unwrap();
}

fn swdesc_for(files: &[(&str, &[u8])]) -> String {
    let mut s = String::from(
        "software = {\n  version = \"1.0\";\n  hardware-compatibility = [\"1.0\"];\n  images: (\n",
    );
    for (i, (name, data)) in files.iter().enumerate() {
        let sep = if i + 1 < files.len() { "," } else { "" };
        s.push_str(&format!(
            "    {{ filename = \"{name}\"; device = \"/dev/x{i}\"; sha256 = \"{}\"; }}{sep}\n",
            sha_hex(data)
        ));
    }
    s.push_str("  );\n};\n");
    s
}

#[test]
fn inspect_reports_the_signed_sample() {
    let (o, v) = inspect_json(&testdata("swu/sample.swu"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(v["ok"], true);
    assert_eq!(v["signed"], true);
    assert_eq!(v["sw_description"]["syntax"], "libconfig");
    let names: Vec<&str> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "sw-description",
            "sw-description.sig",
            "rootfs.ext4.gz",
            "kernel.img.zst",
            "app.tar.gz",
            "update.sh"
        ]
    );
    assert!(v["members"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["checksum"] == "ok" && m["format"] == "crc"));
    let arts = v["artifacts"].as_array().unwrap();
    assert_eq!(arts.len(), 4);
    assert!(arts
        .iter()
        .all(|a| a["hash"] == "ok" && a["member"] == "present"));
    assert_eq!(arts[0]["compressed"], "zlib");
    assert_eq!(arts[1]["compressed"], "zstd");
    assert_eq!(arts[1]["installed_directly"], true);
    assert_eq!(arts[2]["section"], "files");
    assert_eq!(arts[2]["compressed"], "zlib"); // `compressed = true`
    assert_eq!(arts[3]["section"], "scripts");
    assert_eq!(v["bootenv"][0]["name"], "rootpart");
    // The member sha256 equals the real hash of the member bytes.
    let bytes = fs::read(testdata("swu/sample.swu")).unwrap();
    let m = &v["members"][2];
    let start = m["data_offset"].as_u64().unwrap() as usize;
    let size = m["size"].as_u64().unwrap() as usize;
    assert_eq!(m["sha256"], sha_hex(&bytes[start..start + size]));
}

#[test]
fn inspect_handles_every_sample_layout() {
    for (file, signed, artifacts, format) in [
        ("sample-crc.swu", false, 4, "crc"),
        ("sample-newc.swu", false, 4, "newc"),
        ("sample-newc-repro.swu", true, 4, "newc"),
        ("collections.swu", false, 4, "crc"),
        ("json.swu", false, 1, "crc"),
    ] {
        let (o, v) = inspect_json(&testdata(&format!("swu/{file}")));
        assert_eq!(o.status.code(), Some(0), "{file}: {}", stderr(&o));
        assert_eq!(v["signed"], signed, "{file}");
        assert_eq!(
            v["artifacts"].as_array().unwrap().len(),
            artifacts,
            "{file}"
        );
        assert_eq!(v["members"][0]["format"], format, "{file}");
        if format == "newc" {
            assert_eq!(v["members"][0]["checksum"], "none");
        }
    }
    let (_, v) = inspect_json(&testdata("swu/json.swu"));
    assert_eq!(v["sw_description"]["syntax"], "JSON");
    let (_, v) = inspect_json(&testdata("swu/collections.swu"));
    let sel: Vec<&str> = v["artifacts"][1]["selections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        sel,
        [
            "software.myboard.stable.copy1.scripts[0]",
            "software.myboard.stable.copy2.scripts[0][0]",
            "software.myboard.fallback.main.scripts[0]"
        ]
    );
}

#[test]
fn inspect_text_output_is_readable() {
    let o = run_str(&["inspect", testdata("swu/sample.swu").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for needle in [
        "signed: yes",
        "rootfs.ext4.gz",
        "sha256 ok",
        "Result: OK",
        "software.images[0]",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
}

/// A broken SWU that still parses: inspect reports the problem and exits 1.
fn assert_inspect_fails(path: &Path, needle: &str) {
    let (o, v) = inspect_json(path);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(v["ok"], false);
    let problems = v["problems"].to_string();
    assert!(problems.contains(needle), "{needle:?} not in {problems}");
    let text = run(&["inspect".as_ref(), path.as_os_str()]);
    assert_eq!(text.status.code(), Some(1));
    assert!(stdout(&text).contains("Result: FAILED"));
}

#[test]
fn inspect_detects_hash_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.swu");
    let desc = swdesc_for(&[("img", b"original")]);
    build_swu(
        &p,
        &[("sw-description", desc.as_bytes()), ("img", b"tampered")],
    );
    assert_inspect_fails(&p, "sha256 mismatch");
}

#[test]
fn inspect_detects_missing_member() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.swu");
    let desc = swdesc_for(&[("img", b"x"), ("gone", b"y")]);
    build_swu(&p, &[("sw-description", desc.as_bytes()), ("img", b"x")]);
    assert_inspect_fails(&p, "\\\"gone\\\" has no member");
}

#[test]
fn inspect_detects_malformed_hash() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.swu");
    let desc = "software = { images: ( { filename = \"img\"; sha256 = \"abc\"; } ); };";
    build_swu(&p, &[("sw-description", desc.as_bytes()), ("img", b"x")]);
    assert_inspect_fails(&p, "not 64 hex digits");
}

#[test]
fn inspect_detects_signature_out_of_place() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.swu");
    let desc = swdesc_for(&[("img", b"x")]);
    build_swu(
        &p,
        &[
            ("sw-description", desc.as_bytes()),
            ("img", b"x"),
            ("sw-description.sig", b"sig"),
        ],
    );
    assert_inspect_fails(&p, "requires it second");
}

#[test]
fn inspect_detects_bad_crc_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.swu");
    let mut bytes = fs::read(testdata("swu/sample-crc.swu")).unwrap();
    // Corrupt the check field (last 8 header digits) of member 6 (update.sh) only: its data
    // and sha256 stay intact, so the checksum is the one problem.
    let a = swu::cpio::Archive::scan(&bytes[..], Default::default()).unwrap();
    let m = a.member("update.sh").unwrap();
    let check_at = m.header_offset as usize + 6 + 8 * 12;
    bytes[check_at..check_at + 8].copy_from_slice(b"DEADBEEF");
    fs::write(&p, &bytes).unwrap();
    assert_inspect_fails(&p, "bad crc checksum");
}

#[test]
fn inspect_detects_duplicate_members() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.swu");
    let desc = swdesc_for(&[("img", b"x")]);
    build_swu(
        &p,
        &[
            ("sw-description", desc.as_bytes()),
            ("img", b"x"),
            ("img", b"x"),
        ],
    );
    assert_inspect_fails(&p, "more than once");
}

#[test]
fn inspect_warns_but_passes_on_what_swupdate_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.swu");
    let desc = "software = { images: ( { filename = \"img\"; }, { device = \"/dev/x\"; } ); };";
    build_swu(
        &p,
        &[
            ("sw-description", desc.as_bytes()),
            ("img", b"x"),
            ("extra", b"y"),
        ],
    );
    let (o, v) = inspect_json(&p);
    assert_eq!(o.status.code(), Some(0), "{v}");
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("has no sha256"), "{warnings}");
    assert!(warnings.contains("no filename"), "{warnings}");
    assert!(
        warnings.contains("\\\"extra\\\" is not referenced"),
        "{warnings}"
    );
}

/// Structurally broken archives: one `Error:` line naming what and where, exit 1.
#[test]
fn inspect_rejects_structurally_broken_archives() {
    let dir = tempfile::tempdir().unwrap();
    let good = fs::read(testdata("swu/sample-crc.swu")).unwrap();
    let a = swu::cpio::Archive::scan(&good[..], Default::default()).unwrap();
    let rootfs = a.member("rootfs.ext4.gz").unwrap().clone();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();

    let mut v = good.clone();
    v[rootfs.header_offset as usize] = b'X';
    cases.push(("bad-magic", v, "magic"));

    let mut v = good.clone();
    v[rootfs.header_offset as usize + 6 + 8 * 6] = b'Z';
    cases.push(("non-hex", v, "filesize is not 8 hex digits"));

    cases.push((
        "truncated-data",
        good[..rootfs.data_offset() as usize + 100].to_vec(),
        "ends inside the data of member \"rootfs.ext4.gz\"",
    ));
    cases.push((
        "truncated-header",
        good[..rootfs.header_offset as usize + 50].to_vec(),
        "ends inside a cpio header",
    ));
    cases.push((
        "no-trailer",
        good[..a.trailer.header_offset as usize].to_vec(),
        "no TRAILER!!!",
    ));

    let mut v = good.clone();
    let ns = rootfs.header_offset as usize + 6 + 8 * 11;
    v[ns..ns + 8].copy_from_slice(b"00000000");
    cases.push(("namesize-zero", v, "namesize 0"));

    let mut v = good.clone();
    v[ns..ns + 8].copy_from_slice(b"0000FFFF");
    cases.push(("namesize-absurd", v, "namesize 65535"));

    cases.push(("empty", Vec::new(), "no TRAILER!!!"));

    // Escaping names, built by hand with a valid structure otherwise.
    for (label, name, needle) in [
        ("dotdot", "../../etc/passwd", "\"..\""),
        ("absolute", "/etc/passwd", "absolute path"),
        ("slash", "dir/file", "contains \"/\""),
    ] {
        let mut w = Writer::new(Vec::new());
        let h = Header::regular_file(Format::Crc, 0);
        w.write_bytes(&h, "sw-description", b"software = {};")
            .unwrap();
        w.write_bytes(&h, name, b"evil").unwrap();
        cases.push((label, w.finish(Format::Crc, None, None).unwrap(), needle));
    }

    // sw-description problems.
    let mut w = Writer::new(Vec::new());
    let h = Header::regular_file(Format::Crc, 0);
    w.write_bytes(&h, "img", b"x").unwrap();
    w.write_bytes(&h, "sw-description", b"software = {};")
        .unwrap();
    cases.push((
        "swdesc-not-first",
        w.finish(Format::Crc, None, None).unwrap(),
        "first member is \"img\"",
    ));
    let mut w = Writer::new(Vec::new());
    w.write_bytes(&h, "sw-description", b"software = {\n  version = ;\n};")
        .unwrap();
    cases.push((
        "swdesc-syntax",
        w.finish(Format::Crc, None, None).unwrap(),
        "line 2, column 13",
    ));
    let mut w = Writer::new(Vec::new());
    w.write_bytes(&h, "sw-description", b"hardware = {};")
        .unwrap();
    cases.push((
        "swdesc-no-software",
        w.finish(Format::Crc, None, None).unwrap(),
        "no \"software\" group",
    ));

    for (label, bytes, needle) in cases {
        let p = dir.path().join(format!("{label}.swu"));
        fs::write(&p, &bytes).unwrap();
        let o = run(&["inspect".as_ref(), p.as_os_str()]);
        let line = assert_error(&o);
        assert!(line.contains(needle), "{label}: {needle:?} not in {line}");
        assert!(stdout(&o).is_empty(), "{label}: no partial report");
        assert_eq!(fs::read(&p).unwrap(), bytes, "{label}: input modified");
    }
}

#[test]
fn inspect_of_a_missing_file_is_a_clean_error() {
    let line = assert_error(&run_str(&["inspect", "/nonexistent/x.swu"]));
    assert!(line.contains("/nonexistent/x.swu"), "{line}");
}

#[test]
fn help_explains_both_forms_and_usage_errors_exit_1() {
    let o = run_str(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("DiffGenTool-compatible form"), "{out}");
    assert!(out.contains("inspect"), "{out}");
    let o = run_str(&["inspect", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("--json"));
    let o = run_str(&["inspect", "--bogus", "x"]);
    assert_eq!(o.status.code(), Some(1));
    let o = run_str(&[]);
    assert_eq!(o.status.code(), Some(1));
}

// ---- DiffGenTool positional form -------------------------------------------------------

#[test]
fn legacy_wrong_argument_count_prints_usage_and_exits_1() {
    for n in [1usize, 2, 3, 8] {
        let args: Vec<String> = (0..n).map(|i| format!("arg{i}")).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run_str(&args);
        let line = assert_error(&o);
        assert!(line.contains("expected 4 to 7 arguments"), "{line}");
        assert_eq!(stderr(&o).matches("Usage: ").count(), 2);
    }
}

fn sample() -> String {
    testdata("swu/sample.swu").to_str().unwrap().to_string()
}

#[test]
fn legacy_validates_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let s = sample();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                d("missing.swu"),
                s.clone(),
                d("out.diff"),
                d("logs"),
                d("work"),
            ],
            "source archive does not exist",
        ),
        (
            vec![
                s.clone(),
                d("missing.swu"),
                d("out.diff"),
                d("logs"),
                d("work"),
            ],
            "target archive does not exist",
        ),
        (
            vec![
                dir.path().to_str().unwrap().into(),
                s.clone(),
                d("o"),
                d("l"),
                d("w"),
            ],
            "source archive is not a regular file",
        ),
        (
            vec![s.clone(), s.clone(), s.clone(), d("logs"), d("work")],
            "output path is the same file as",
        ),
        (
            vec![s.clone(), s.clone(), d("out.diff"), "".into(), d("work")],
            "log folder argument is empty",
        ),
        (
            vec![
                s.clone(),
                s.clone(),
                d("out.diff"),
                "/dev/null/logs".into(),
                d("work"),
            ],
            "cannot create the log folder",
        ),
        (
            vec![s.clone(), s.clone(), d("out.diff"), d("logs"), s.clone()],
            "working folder exists and is not a folder",
        ),
        (
            vec![
                s.clone(),
                s.clone(),
                d("out.diff"),
                d("logs"),
                d("work"),
                s.clone(),
            ],
            "recompressed target archive is the same file as",
        ),
        (
            vec![s.clone(), s.clone(), d("logs"), d("logs"), d("work")],
            "output path is a folder",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let line = assert_error(&run_str(&args));
        assert!(line.contains(needle), "{args:?}: {needle:?} not in {line}");
    }
}

#[test]
fn legacy_unwritable_folder_is_reported() {
    // Permission bits do not stop root; skip the check only in that case, loudly.
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    fs::create_dir(&ro).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    if fs::write(ro.join("probe"), b"").is_ok() {
        eprintln!("running as root: permission bits are not enforced, using /proc instead");
        let line = assert_error(&run_str(&[
            &sample(),
            &sample(),
            "/proc/diffgen-out.diff",
            dir.path().join("l").to_str().unwrap(),
            dir.path().join("w").to_str().unwrap(),
        ]));
        assert!(
            line.contains("not writable") || line.contains("cannot"),
            "{line}"
        );
        return;
    }
    let line = assert_error(&run_str(&[
        &sample(),
        &sample(),
        ro.join("out.diff").to_str().unwrap(),
        dir.path().join("l").to_str().unwrap(),
        dir.path().join("w").to_str().unwrap(),
    ]));
    assert!(line.contains("not writable"), "{line}");
}

#[test]
fn legacy_forms_create_a_verified_delta_with_logs() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let v1 = testdata("swu/release-v1.swu").to_str().unwrap().to_string();
    let v2 = testdata("swu/release-v2.swu").to_str().unwrap().to_string();
    // 5 arguments.
    let o = run_str(&[&v1, &v2, &d("out/x.diff"), &d("logs"), &d("work")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("Finished main task."), "{}", stdout(&o));
    assert!(stdout(&o).contains("verified by applying it: yes"));
    for log in ["diffgen.log", "report.json", "report.html", "diff.json"] {
        assert!(dir.path().join("logs").join(log).is_file(), "{log}");
    }
    let page = dir.path().join("logs/report.html");
    assert!(
        stdout(&o).contains(&format!("Report: {}", page.display())),
        "{}",
        stdout(&o)
    );
    let report: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("logs/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["deltas"][0]["verified"], true);
    // The most expensive parts are named (here GNU gzip's payload cannot be re-created, so it
    // is delta coded as opaque bytes; files inside images are named in generate's tests).
    let top = report["deltas"][0]["most_expensive"].as_array().unwrap();
    assert!(!top.is_empty() && top.len() <= 20, "{top:?}");
    assert_eq!(top[0]["member"], "rootfs.ext4.gz", "{top:?}");
    assert!(top[0]["delta_bytes"].as_u64().unwrap() > 0, "{top:?}");
    let log = fs::read_to_string(dir.path().join("logs/diffgen.log")).unwrap();
    assert!(log.contains("most expensive parts of the target"), "{log}");
    assert_eq!(
        report["deltas"][0]["delta_size"],
        fs::metadata(dir.path().join("out/x.diff")).unwrap().len()
    );
    // The delta applies through the CLI (and ADU's applier) and rebuilds v2.
    assert_rebuilds(&v1, &d("out/x.diff"), Path::new(&v2));
    // 4 arguments: logs in <working>/logs/<n>, a new n each run; the working folder is reused.
    for n in 0..2 {
        let o = run_str(&[&v1, &v2, &d("o.diff"), &d("w4")]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(dir
            .path()
            .join(format!("w4/logs/{n}/diffgen.log"))
            .is_file());
    }
}

#[test]
fn legacy_six_and_seven_arguments_recompress_the_target_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let v1 = testdata("swu/release-v1.swu").to_str().unwrap().to_string();
    let v2 = testdata("swu/release-v2.swu").to_str().unwrap().to_string();
    // 6 arguments on a signed target: no signing command, so the stale signature is refused.
    let line = assert_error(&run_str(&[
        &v1,
        &v2,
        &d("o.diff"),
        &d("l"),
        &d("w"),
        &d("re.swu"),
    ]));
    assert!(line.contains("no signing command"), "{line}");
    assert!(!dir.path().join("re.swu").exists() && !dir.path().join("o.diff").exists());
    // 7 arguments: recompressed, signed, delta built against the recompressed target.
    let sign = format!(
        "SIGN_CERT={} SIGN_KEY={} {}",
        testdata("keys/signer.crt").display(),
        testdata("keys/signer.key").display(),
        testdata("../scripts/sign-cms.sh").display()
    );
    let o = run_str(&[
        &v1,
        &v2,
        &d("o.diff"),
        &d("l"),
        &d("w"),
        &d("re.swu"),
        &sign,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let log = fs::read_to_string(dir.path().join("l/recompression.log")).unwrap();
    assert!(log.contains("rootfs.ext4.zst"), "{log}");
    let (_, v) = inspect_json(&dir.path().join("re.swu"));
    assert_eq!(v["signed"], true);
    assert_eq!(v["ok"], true);
    assert_rebuilds(&v1, &d("o.diff"), &dir.path().join("re.swu"));
    // Applying to the wrong source: one clear error, no output.
    let wrong = d("wrong.swu");
    let line = assert_error(&run_str(&["apply", &v2, &d("o.diff"), &wrong]));
    assert!(line.contains("the delta was made for source"), "{line}");
    assert!(!dir.path().join("wrong.swu").exists());
}

#[test]
fn create_command_json_and_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let v1 = testdata("swu/release-v1.swu").to_str().unwrap().to_string();
    let v2 = testdata("swu/release-v2.swu").to_str().unwrap().to_string();
    for (profile, expected) in [
        ("gzip", "gzip (ADU stock applier)"),
        ("zstd", "zstd (diffgen applier)"),
    ] {
        let o = run_str(&[
            "create",
            "--source",
            &v1,
            "--target",
            &v2,
            "-o",
            &d("c.diff"),
            "--profile",
            profile,
            "--threads",
            "1",
            "--memory-limit",
            "256M",
            "--json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let d = &v["deltas"][0];
        assert_eq!(d["profile"], expected);
        assert_eq!(d["verified"], true);
        assert!(d["delta_size"].as_u64().unwrap() < d["target_size"].as_u64().unwrap());
        assert!(v["manifest"].is_null());
        assert_rebuilds(
            &v1,
            &dir.path().join("c.diff").to_string_lossy(),
            Path::new(&v2),
        );
    }
    let line = assert_error(&run_str(&[
        "create",
        "--source",
        "/nonexistent",
        "--target",
        &v2,
        "-o",
        &d("x.diff"),
    ]));
    assert!(line.contains("/nonexistent"), "{line}");
    for (flag, value) in [("--memory-limit", "lots"), ("--threads", "0")] {
        let o = run_str(&[
            "create",
            "--source",
            &v1,
            "--target",
            &v2,
            "-o",
            &d("y.diff"),
            flag,
            value,
        ]);
        assert_eq!(o.status.code(), Some(1), "{flag} {value}");
        assert!(stderr(&o).contains(flag), "{}", stderr(&o));
        assert!(!dir.path().join("y.diff").exists());
    }
    // No temp working folders left next to the output.
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn recompress_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.swu");
    let input = testdata("swu/sample-crc.swu");
    let o = run(&[
        "recompress".as_ref(),
        input.as_os_str(),
        out.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["members"].as_array().unwrap().len(), 3);
    assert_eq!(v["members"][0]["profile"]["compressor"], "zstd");
    assert_eq!(v["members"][0]["profile"]["level"], 3);
    assert_eq!(v["output_sha256"], sha_hex(&fs::read(&out).unwrap()));
    // gzip profile with a zstd level is a usage error; so is overwriting the input.
    let line = assert_error(&run(&[
        "recompress".as_ref(),
        input.as_os_str(),
        out.as_os_str(),
        "--compression".as_ref(),
        "gzip".as_ref(),
        "--zstd-level".as_ref(),
        "5".as_ref(),
    ]));
    assert!(line.contains("zstd profile only"), "{line}");
    let line = assert_error(&run(&[
        "recompress".as_ref(),
        out.as_os_str(),
        out.as_os_str(),
    ]));
    assert!(line.contains("inputs are never overwritten"), "{line}");
    // A signed input without --sign: one clear line, exit 1, no output.
    let signed_out = dir.path().join("signed.swu");
    let line = assert_error(&run(&[
        "recompress".as_ref(),
        testdata("swu/sample.swu").as_os_str(),
        signed_out.as_os_str(),
    ]));
    assert!(line.contains("--drop-signature"), "{line}");
    assert!(!signed_out.exists());
    // Text summary.
    let o = run(&[
        "recompress".as_ref(),
        input.as_os_str(),
        out.as_os_str(),
        "--compression".as_ref(),
        "gzip".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("gzip -9"), "{}", stdout(&o));
}

#[test]
fn answers_to_the_name_diffgentool() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("DiffGenTool");
    std::os::unix::fs::symlink(bin(), &link).unwrap();
    // As DiffGenTool, even "inspect" is a positional argument: 2 arguments → usage.
    let o = Command::new(&link)
        .args(["inspect", &sample()])
        .output()
        .unwrap();
    let line = assert_error(&o);
    assert!(line.contains("expected 4 to 7 arguments"), "{line}");
    assert!(stderr(&o).contains("Usage: "));
}

// ---- manifest and cache-path ----------------------------------------------------------------

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data))
}

#[test]
fn manifest_lists_target_and_each_delta_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let target = testdata("swu/release-v2.swu").to_str().unwrap().to_string();
    let s1 = testdata("swu/release-v1.swu").to_str().unwrap().to_string();
    let s2 = testdata("swu/sample-crc.swu").to_str().unwrap().to_string();
    for (s, out) in [(&s1, "1-to-3.diff"), (&s2, "2-to-3.diff")] {
        let o = run_str(&[
            "create",
            "--source",
            s,
            "--target",
            &target,
            "-o",
            &d(out),
            "--profile",
            "gzip",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_rebuilds(s, &d(out), Path::new(&target));
    }
    fs::create_dir(dir.path().join("out")).unwrap();
    let out = d("out/im.json");
    let base: Vec<String> = [
        "manifest",
        "--target",
        &target,
        "--delta",
        &d("1-to-3.diff"),
        "--source",
        &s1,
        "--delta",
        &d("2-to-3.diff"),
        "--source",
        &s2,
        "--provider",
        "Contoso",
        "--name",
        "Toaster",
        "--version",
        "3.0",
        "--compat",
        "manufacturer=contoso,model=toaster",
        "--compat",
        "manufacturer=contoso,model=oven",
        "--handler-property",
        "installedCriteria=3.0-release",
        "--created",
        "2025-01-01T00:00:00Z",
        "-o",
        &out,
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    let args = |v: &[String]| -> Output {
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        run_str(&refs)
    };
    let o = args(&base);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&fs::read_to_string(&out).unwrap()).unwrap();
    let f = &v["files"][0];
    assert_eq!(f["filename"], "release-v2.swu");
    assert_eq!(f["sizeInBytes"], fs::metadata(&target).unwrap().len());
    assert_eq!(f["hashes"]["sha256"], b64(&fs::read(&target).unwrap()));
    assert_eq!(f["downloadHandler"]["id"], "microsoft/delta:1");
    let r = f["relatedFiles"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(
        r[0]["hashes"]["sha256"],
        b64(&fs::read(d("1-to-3.diff")).unwrap())
    );
    assert_eq!(
        r[0]["properties"]["microsoft.sourceFileHash"],
        b64(&fs::read(&s1).unwrap())
    );
    assert_eq!(
        r[1]["sizeInBytes"],
        fs::metadata(d("2-to-3.diff")).unwrap().len()
    );
    assert_eq!(
        r[1]["properties"]["microsoft.sourceFileHash"],
        b64(&fs::read(&s2).unwrap())
    );
    assert_eq!(v["compatibility"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["instructions"]["steps"][0]["handlerProperties"]["installedCriteria"],
        "3.0-release"
    );
    assert_eq!(v["createdDateTime"], "2025-01-01T00:00:00Z");

    // Same inputs, same bytes.
    let first = fs::read(&out).unwrap();
    assert_eq!(args(&base).status.code(), Some(0));
    assert_eq!(fs::read(&out).unwrap(), first);

    // Unpaired --delta/--source, invalid identity, a file that is not a delta: clean errors,
    // nothing written.
    let bad = d("bad.json");
    let with = |edit: &dyn Fn(&mut Vec<String>)| {
        let mut v = base.clone();
        let n = v.len();
        v[n - 1] = bad.clone();
        edit(&mut v);
        v
    };
    let line = assert_error(&args(&with(&|v| {
        let i = v.iter().rposition(|a| a == "--source").unwrap();
        v.drain(i..i + 2);
    })));
    assert!(line.contains("in pairs"), "{line}");
    let line = assert_error(&args(&with(&|v| {
        let i = v.iter().position(|a| a == "--version").unwrap();
        v[i + 1] = "3".into();
    })));
    assert!(line.contains("updateId.version"), "{line}");
    let not_delta = d("notes.txt");
    fs::write(&not_delta, "not a delta").unwrap();
    let line = assert_error(&args(&with(&|v| {
        let i = v.iter().position(|a| a == "--delta").unwrap();
        v[i + 1] = not_delta.clone();
    })));
    assert!(line.contains("PAMZ"), "{line}");
    assert!(!Path::new(&bad).exists());
    let line = assert_error(&run_str(&[
        "manifest",
        "--target",
        "/nonexistent.swu",
        "--provider",
        "P",
        "--name",
        "N",
        "--version",
        "1.0",
        "--compat",
        "a=b",
        "-o",
        &bad,
    ]));
    assert!(line.contains("/nonexistent.swu"), "{line}");
}

#[test]
fn cache_path_encodes_plus_slash_and_equals() {
    // A hash whose Base64 has all three characters that need encoding.
    let hash = format!("++//{}=", "A".repeat(39));
    let o = run_str(&["cache-path", "--provider", "Contoso", "--hash", &hash]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        format!(
            "/var/lib/adu/sdc/Contoso/sha256-_2B_2B_2F_2F{}_3D",
            "A".repeat(39)
        )
    );
    // From a file, under a test root, with a provider the agent sanitises.
    let sample = testdata("swu/sample.swu");
    let expected_hash = b64(&fs::read(&sample).unwrap())
        .replace('+', "_2B")
        .replace('/', "_2F")
        .replace('=', "_3D");
    let o = run(&[
        "cache-path".as_ref(),
        "--provider".as_ref(),
        "Contoso.Ltd".as_ref(),
        "--root".as_ref(),
        "/tmp/devroot/var/lib/adu/sdc".as_ref(),
        sample.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o).trim(),
        format!("/tmp/devroot/var/lib/adu/sdc/Contoso_Ltd/sha256-{expected_hash}")
    );
    let line = assert_error(&run_str(&[
        "cache-path",
        "--provider",
        "P",
        "--hash",
        "abc",
    ]));
    assert!(line.contains("Base64") || line.contains("32"), "{line}");
    assert_eq!(
        run_str(&["cache-path", "--provider", "P"]).status.code(),
        Some(1)
    );
}

// ---- inspect: ext images, members, deltas ---------------------------------------------------

#[test]
fn inspect_ext_images_members_and_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let v1 = testdata("swu/release-v1.swu").to_str().unwrap().to_string();
    let v2 = testdata("swu/release-v2.swu").to_str().unwrap().to_string();
    // A gzip member: decompressed, then read as ext.
    let o = run_str(&["inspect", "--json", &v2, "--member", "rootfs.ext4.gz"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["block_size"], 1024);
    let files = v["files"].to_string();
    for path in ["/usr/lib/libplugin.so", "/usr/bin/app", "/etc/os-release"] {
        assert!(files.contains(path), "{path} missing");
    }
    assert!(!files.contains("/usr/lib/libold.so"), "removed in v2");
    // A raw image and the text form.
    let raw = d("rootfs.ext4");
    let mut img = Vec::new();
    {
        use std::io::Read;
        let s = swu::Swu::open(Path::new(&v2)).unwrap();
        let e = s.archive.member("rootfs.ext4.gz").unwrap();
        let r = swu::cpio::member_reader(fs::File::open(&v2).unwrap(), e).unwrap();
        codec::zlib::inflater(codec::zlib::Container::Gzip, r, true)
            .read_to_end(&mut img)
            .unwrap();
    }
    fs::write(&raw, &img).unwrap();
    let o = run_str(&["inspect", &raw]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("ext filesystem"), "{}", stdout(&o));
    // A delta.
    let delta = d("v.diff");
    let o = run_str(&[
        "create",
        "--source",
        &v1,
        "--target",
        &v2,
        "-o",
        &delta,
        "--profile",
        "gzip",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_rebuilds(&v1, &delta, Path::new(&v2));
    let o = run_str(&["inspect", "--json", &delta]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["needs_diffgen_applier"], false);
    assert_eq!(v["target"]["length"], fs::metadata(&v2).unwrap().len());
    // These releases were gzipped by GNU gzip, which zlib cannot reproduce: the payload
    // travels as bytes (here a zstd frame with a token basis, which ADU's applier decodes),
    // never as zlib_compression.
    let o = run_str(&["inspect", "--graph", &delta]);
    assert!(stdout(&o).contains("recipe graph:"), "{}", stdout(&o));
    assert!(stdout(&o).contains("zstd_decompression"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("zlib_compression"), "{}", stdout(&o));
    assert_eq!(
        v["apply_needs"]["largest_zstd_basis"]
            .as_u64()
            .map(|b| b > 0),
        Some(true)
    );
    // Errors: unknown member, unknown kind of file, a member that is not ext.
    let line = assert_error(&run_str(&["inspect", &v2, "--member", "nope"]));
    assert!(line.contains("no member \"nope\""), "{line}");
    let text = d("x.txt");
    fs::write(&text, "hello").unwrap();
    let line = assert_error(&run_str(&["inspect", &text]));
    assert!(line.contains("not a .swu"), "{line}");
    let line = assert_error(&run_str(&["inspect", &v2, "--member", "sw-description"]));
    assert!(line.contains("member sw-description"), "{line}");
}

#[test]
fn multi_source_release_with_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    // Two old releases as devices hold them, one new release.
    let rec = |input: &str, out: &str| {
        let o = run_str(&[
            "recompress",
            "--drop-signature",
            testdata(input).to_str().unwrap(),
            &d(out),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    };
    rec("swu/release-v1.swu", "toaster-1.0.swu");
    rec("swu/sample.swu", "toaster-0.9.swu");
    rec("swu/release-v2.swu", "toaster-2.0.swu");
    let o = run_str(&[
        "create",
        "--source",
        &d("toaster-1.0.swu"),
        "--source",
        &d("toaster-0.9.swu"),
        "--target",
        &d("toaster-2.0.swu"),
        "-o",
        &d("out"),
        "--work",
        &d("work"),
        "--provider",
        "Contoso",
        "--name",
        "Toaster",
        "--version",
        "2.0",
        "--compat",
        "manufacturer=contoso,model=toaster",
        "--created",
        "2025-01-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["deltas"].as_array().unwrap().len(), 2);
    let multi_a = fs::read(d("out/toaster-1.0-to-toaster-2.0.diff")).unwrap();
    let multi_b = fs::read(d("out/toaster-0.9-to-toaster-2.0.diff")).unwrap();
    // Each equals the delta a single-source run makes.
    for (source, multi) in [("toaster-1.0.swu", &multi_a), ("toaster-0.9.swu", &multi_b)] {
        let single = d(&format!("single-{source}.diff"));
        let o = run_str(&[
            "create",
            "--source",
            &d(source),
            "--target",
            &d("toaster-2.0.swu"),
            "-o",
            &single,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            fs::read(&single).unwrap() == *multi,
            "{source}: multi-source delta differs"
        );
    }
    // The manifest lists both, each with its source's hash.
    let manifest_path = v["manifest"].as_str().unwrap().to_string();
    assert!(
        manifest_path.ends_with("toaster-2.0.importmanifest.json"),
        "{manifest_path}"
    );
    let m: Value = serde_json::from_str(&fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let related = m["files"][0]["relatedFiles"].as_array().unwrap();
    assert_eq!(related.len(), 2);
    assert_eq!(related[0]["filename"], "toaster-1.0-to-toaster-2.0.diff");
    assert_eq!(
        related[0]["properties"]["microsoft.sourceFileHash"],
        b64(&fs::read(d("toaster-1.0.swu")).unwrap())
    );
    assert_eq!(
        related[1]["properties"]["microsoft.sourceFileHash"],
        b64(&fs::read(d("toaster-0.9.swu")).unwrap())
    );
    assert_eq!(
        m["files"][0]["hashes"]["sha256"],
        b64(&fs::read(d("toaster-2.0.swu")).unwrap())
    );
    // The manifest command refuses a delta paired with the wrong source.
    let line = assert_error(&run_str(&[
        "manifest",
        "--target",
        &d("toaster-2.0.swu"),
        "--delta",
        &d("out/toaster-1.0-to-toaster-2.0.diff"),
        "--source",
        &d("toaster-0.9.swu"),
        "--provider",
        "Contoso",
        "--name",
        "Toaster",
        "--version",
        "2.0",
        "--compat",
        "a=b",
        "-o",
        &d("bad.json"),
    ]));
    assert!(line.contains("made for another source"), "{line}");
    // Identity options without all required ones: refused before any work is published.
    let line = assert_error(&run_str(&[
        "create",
        "--source",
        &d("toaster-1.0.swu"),
        "--target",
        &d("toaster-2.0.swu"),
        "-o",
        &d("x.diff"),
        "--provider",
        "Contoso",
    ]));
    assert!(line.contains("needs --name"), "{line}");
}

#[test]
fn legacy_form_writes_the_manifest_with_identity_options() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let v1 = testdata("swu/release-v1.swu").to_str().unwrap().to_string();
    let v2 = testdata("swu/release-v2.swu").to_str().unwrap().to_string();
    let o = run_str(&[
        &v1,
        &v2,
        &d("out/x.diff"),
        &d("logs"),
        &d("work"),
        "--provider",
        "Contoso",
        "--name",
        "Toaster",
        "--version",
        "2.0",
        "--compat",
        "model=toaster",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_rebuilds(&v1, &d("out/x.diff"), Path::new(&v2));
    let m: Value =
        serde_json::from_str(&fs::read_to_string(d("out/release-v2.importmanifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["files"][0]["relatedFiles"][0]["filename"], "x.diff");
    assert_eq!(
        m["files"][0]["relatedFiles"][0]["properties"]["microsoft.sourceFileHash"],
        b64(&fs::read(&v1).unwrap())
    );
    let line = assert_error(&run_str(&[
        &v1,
        &v2,
        &d("o.diff"),
        &d("w4"),
        "--provider",
        "Contoso",
    ]));
    assert!(line.contains("needs --name"), "{line}");
    let line = assert_error(&run_str(&[&v1, &v2, &d("o.diff"), &d("w4"), "--colour"]));
    assert!(line.contains("--colour"), "{line}");
}
