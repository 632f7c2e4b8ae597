//! `libadudiffapi.so` through its C ABI, loaded by a C program (tests/harness.c) exactly as
//! ADU's agent loads it: dlopen, dlsym of the six functions, size_t indexes, the library closed
//! before the session. Deltas of both profiles rebuild their targets; a corrupted delta, a
//! wrong source, bad handles, null and non-UTF-8 paths fail with listed errors and leave no
//! file; two sessions apply in two threads at once; known items come from the environment and
//! the log says what happened.

mod common;

use std::fs;
use std::process::Command;

use common::{fixtures, harness, harness_apply, leftovers, library, scratch, text};

#[test]
fn exports_exactly_the_seven_functions_under_its_soname() {
    let lib = library();
    let o = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .expect("nm (binutils) runs");
    assert!(o.status.success(), "{}", text(&o));
    let mut names: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "adu_diff_apply",
            "adu_diff_apply_close_session",
            "adu_diff_apply_create_session",
            "adu_diff_apply_get_error_code",
            "adu_diff_apply_get_error_count",
            "adu_diff_apply_get_error_text",
            "adu_diff_apply_set_log_path",
        ]
    );
    let o = Command::new("readelf")
        .arg("-d")
        .arg(&lib)
        .output()
        .unwrap();
    let dynamic = String::from_utf8_lossy(&o.stdout);
    assert!(
        dynamic.contains("Library soname: [libadudiffapi.so]"),
        "{dynamic}"
    );
    assert!(dynamic.contains("NODELETE"), "{dynamic}");
}

#[test]
fn applies_a_zstd_profile_delta_and_logs_it() {
    let f = fixtures();
    let dir = scratch();
    let out = dir.path().join("v2.swu");
    let log = dir.path().join("apply.log");
    let a = harness_apply(&f.zstd.source, &f.zstd.delta, &out, Some(&log), &[]);
    assert_eq!(a.result, 0, "{}", a.stdout);
    assert!(a.stdout.contains("set_log_path 0"), "{}", a.stdout);
    assert!(fs::read(&out).unwrap() == fs::read(&f.zstd.target).unwrap());
    let log = fs::read_to_string(&log).unwrap();
    for needle in [
        "libadudiffapi (diffgen ",
        "result:   rebuilt, SHA-256 verified, moved into place",
        "zstd_compression x1",
        "temp disk: ",
        "peak decoder memory ",
        "wall time: ",
    ] {
        assert!(log.contains(needle), "{needle:?} not in the log:\n{log}");
    }
    assert_eq!(
        leftovers(dir.path(), &["v2.swu", "apply.log"]),
        Vec::<String>::new()
    );
}

#[test]
fn applies_a_gzip_profile_delta() {
    let f = fixtures();
    let dir = scratch();
    let out = dir.path().join("v2.swu");
    let a = harness_apply(&f.gzip.source, &f.gzip.delta, &out, None, &[]);
    assert_eq!(a.result, 0, "{}", a.stdout);
    assert!(fs::read(&out).unwrap() == fs::read(&f.gzip.target).unwrap());
}

#[test]
fn a_corrupted_delta_fails_with_readable_errors_and_no_output() {
    let f = fixtures();
    let dir = scratch();
    let out = dir.path().join("v2.swu");
    let log = dir.path().join("apply.log");
    let a = harness_apply(&f.zstd.source, &f.corrupt, &out, Some(&log), &[]);
    assert!(a.result >= 1, "{}", a.stdout);
    assert_eq!(a.errors.len(), a.result as usize, "{}", a.stdout);
    let (code, text) = &a.errors[0];
    assert!(
        *code > 0 && text.len() > 20 && text.is_ascii(),
        "{}",
        a.stdout
    );
    assert!(
        text.contains("corrupt.diff"),
        "the text names the delta: {text}"
    );
    assert!(!out.exists());
    assert_eq!(leftovers(dir.path(), &["apply.log"]), Vec::<String>::new());
    let log = fs::read_to_string(&log).unwrap();
    assert!(log.contains("result:   FAILED"), "{log}");
    assert!(log.contains(&format!("error {code}: ")), "{log}");
}

#[test]
fn a_delta_for_another_source_names_the_source_mismatch() {
    let f = fixtures();
    let dir = scratch();
    let out = dir.path().join("v2.swu");
    // The zstd-profile delta applied to the gzip-recompressed v1: same release, other bytes.
    let a = harness_apply(&f.gzip.source, &f.zstd.delta, &out, None, &[]);
    assert_eq!(a.result, 1, "{}", a.stdout);
    let (code, text) = &a.errors[0];
    assert_eq!(*code, 50001, "{text}");
    assert!(text.contains("the delta was made for source"), "{text}");
    assert!(!out.exists());
    assert_eq!(leftovers(dir.path(), &[]), Vec::<String>::new());
}

#[test]
fn two_sessions_apply_in_two_threads_at_once() {
    let f = fixtures();
    let dir = scratch();
    let (o1, o2) = (dir.path().join("z.swu"), dir.path().join("g.swu"));
    let o = Command::new(harness())
        .arg(library())
        .arg("threads")
        .args([&f.zstd.source, &f.zstd.delta, &o1])
        .args([&f.gzip.source, &f.gzip.delta, &o2])
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("thread 0 result 0") && out.contains("thread 1 result 0"),
        "{out}"
    );
    assert!(fs::read(&o1).unwrap() == fs::read(&f.zstd.target).unwrap());
    assert!(fs::read(&o2).unwrap() == fs::read(&f.gzip.target).unwrap());
}

#[test]
fn bad_handles_paths_and_indexes_give_errors_not_crashes() {
    let f = fixtures();
    let dir = scratch();
    let out = dir.path().join("never.swu");
    let o = Command::new(harness())
        .arg(library())
        .arg("abuse")
        .args([&f.zstd.source, &f.zstd.delta, &out])
        .output()
        .unwrap();
    let report = text(&o);
    assert_eq!(o.status.code(), Some(0), "{report}");
    assert!(!report.contains("FAIL"), "{report}");
    assert!(report.contains("ok closing twice"), "{report}");
    assert!(!out.exists());
}

#[test]
fn known_items_from_the_environment_are_used_through_their_prefix() {
    let f = fixtures();
    let dir = scratch();
    // A "partition": the source image followed by 2 MiB of other data.
    let partition = dir.path().join("mmcblk0p2");
    let mut bytes = fs::read(&f.image).unwrap();
    bytes.extend(std::iter::repeat_n(0x5Au8, 2 << 20));
    fs::write(&partition, bytes).unwrap();
    let missing = dir.path().join("mmcblk0p3");
    let out = dir.path().join("v2.swu");
    let log = dir.path().join("logs");
    fs::create_dir(&log).unwrap();
    let known = format!("{}:{}:rootfs", missing.display(), partition.display());
    let env = [
        ("DIFFGEN_KNOWN_ITEMS", known.as_str()),
        ("DIFFGEN_APPLY_LOG", log.to_str().unwrap()),
        ("DIFFGEN_APPLY_MEMORY_BUDGET", "40M"),
    ];
    let a = harness_apply(&f.zstd.source, &f.zstd.delta, &out, None, &env);
    assert_eq!(a.result, 0, "{}", a.stdout);
    assert!(fs::read(&out).unwrap() == fs::read(&f.zstd.target).unwrap());
    let log = fs::read_to_string(log.join("diffgen-apply.log")).unwrap();
    for needle in [
        "memory budget 41943040 bytes",
        &format!("known item {}: not used: cannot open it", missing.display()),
        &format!("known item {} (", partition.display()),
        "bytes): used, its first ",
        "from DIFFGEN_KNOWN_ITEMS, DIFFGEN_APPLY_MEMORY_BUDGET, DIFFGEN_APPLY_LOG",
    ] {
        assert!(log.contains(needle), "{needle:?} not in the log:\n{log}");
    }
    // `rootfs` is this machine's root device (not the source image: not used), or the reason
    // there is none here.
    assert!(
        log.contains("known item rootfs: not used: ")
            || log
                .lines()
                .any(|l| l.starts_with("known item /dev/") && l.contains("not used")),
        "{log}"
    );

    // Without the partition the decompressed image is spilled to temp files.
    fs::remove_file(&out).unwrap();
    let plain_log = dir.path().join("plain.log");
    let a = harness_apply(&f.zstd.source, &f.zstd.delta, &out, Some(&plain_log), &[]);
    assert_eq!(a.result, 0, "{}", a.stdout);
    let (with, without) = (
        spilled(&log),
        spilled(&fs::read_to_string(&plain_log).unwrap()),
    );
    let image = fs::metadata(&f.image).unwrap().len();
    assert!(
        without >= image && with < without - image / 2,
        "{with} vs {without} bytes"
    );

    // A bad setting fails the apply with its own code and no output.
    fs::remove_file(&out).unwrap();
    let a = harness_apply(
        &f.zstd.source,
        &f.zstd.delta,
        &out,
        None,
        &[("DIFFGEN_APPLY_MEMORY_BUDGET", "plenty")],
    );
    assert_eq!(a.result, 1);
    assert_eq!(a.errors[0].0, 50008, "{}", a.stdout);
    assert!(!out.exists());
}

/// Bytes spilled, from the log's "temp disk: N items spilled, B bytes; ..." line.
fn spilled(log: &str) -> u64 {
    log.lines()
        .find_map(|l| l.strip_prefix("temp disk: "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|b| b.split_whitespace().next())
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("no temp disk line in {log}"))
}
