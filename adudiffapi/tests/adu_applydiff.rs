//! ADU's own `applydiff` (`../shared/tools/adu-reference`, a thin program over the C API) run
//! with `LD_LIBRARY_PATH` at a folder holding diffgen's `libadudiffapi.so`: the drop-in check.
//! Both profiles rebuild their targets (ADU's own library refuses the zstd profile), corrupt
//! deltas and wrong sources fail with listed errors and no output, every positive ADU vector
//! rebuilds and both negative vectors fail. The log each apply appends proves that diffgen's
//! library did the work, not ADU's.
//!
//! Skipped with one line when `../shared` is absent, unless `DIFFGEN_REQUIRE_SHARED` is set.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{fixtures, leftovers, library_dir, scratch, text};
use shared_fixtures::AduReference;

/// ADU's applydiff with diffgen's library.
struct DropIn {
    adu: AduReference,
    lib: PathBuf,
}

impl DropIn {
    fn new(work: &Path) -> Option<DropIn> {
        let adu = shared_fixtures::adu_reference()?;
        Some(DropIn {
            adu,
            lib: library_dir(work),
        })
    }

    /// Runs applydiff; the library appends to `log` (a setting it reads from the
    /// environment applydiff inherits).
    fn applydiff(&self, source: &Path, delta: &Path, out: &Path, log: &Path) -> Output {
        self.adu
            .applydiff_command(source, delta, out, Some(&self.lib))
            .env("DIFFGEN_APPLY_LOG", log)
            .env_remove("DIFFGEN_KNOWN_ITEMS")
            .output()
            .expect("applydiff runs")
    }
}

fn log_entries(log: &Path) -> usize {
    fs::read_to_string(log)
        .map(|t| t.matches("libadudiffapi (diffgen ").count())
        .unwrap_or(0)
}

#[test]
fn applydiff_with_diffgens_library() {
    let dir = scratch();
    let Some(drop) = DropIn::new(dir.path()) else {
        return;
    };
    let f = fixtures();
    let log = dir.path().join("apply.log");

    // Both profiles rebuild their targets; ADU's own library cannot apply the zstd profile.
    for (name, pair) in [("zstd", &f.zstd), ("gzip", &f.gzip)] {
        let out = dir.path().join(format!("{name}.swu"));
        let o = drop.applydiff(&pair.source, &pair.delta, &out, &log);
        assert!(o.status.success(), "{name}: {}", text(&o));
        assert!(text(&o).contains("Finished successfully."), "{}", text(&o));
        assert!(
            fs::read(&out).unwrap() == fs::read(&pair.target).unwrap(),
            "{name}"
        );
    }
    assert_eq!(log_entries(&log), 2, "diffgen's library did both applies");
    let out = dir.path().join("adu-own.swu");
    let o = drop
        .adu
        .applydiff(&f.zstd.source, &f.zstd.delta, &out, None);
    assert!(
        text(&o).contains("Code: 31702"),
        "ADU's library: {}",
        text(&o)
    );

    // A corrupted delta and a wrong source: exit status = error count, readable text, no file.
    for (source, delta, needle) in [
        (&f.zstd.source, &f.corrupt, "corrupt.diff"),
        (
            &f.gzip.source,
            &f.zstd.delta,
            "Code: 50001, Text: the delta cannot make its target",
        ),
    ] {
        let out = dir.path().join("failed.swu");
        let o = drop.applydiff(source, delta, &out, &log);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains(needle), "{needle:?} not in {}", text(&o));
        assert!(!out.exists());
    }
    assert!(fs::read_to_string(&log)
        .unwrap()
        .contains("the delta was made for source"));
    let mut expected = vec!["apply.log", "lib", "zstd.swu", "gzip.swu"];
    expected.push("adu-own.swu"); // ADU's library leaves its partial output behind
    let left = leftovers(dir.path(), &expected);
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn applydiff_with_diffgens_library_on_adus_vectors() {
    let dir = scratch();
    let (Some(drop), Some(vectors)) = (DropIn::new(dir.path()), shared_fixtures::adu_vectors())
    else {
        return;
    };
    let log = dir.path().join("vectors.log");
    let mut cases: Vec<PathBuf> = fs::read_dir(&vectors)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    let (mut positive, mut negative) = (0, 0);
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let out = dir.path().join(format!("{name}.out"));
        let o = drop.applydiff(&case.join("source"), &case.join("delta.diff"), &out, &log);
        if name.contains("_neg_") {
            assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o));
            assert!(!out.exists(), "{name}: output left behind");
            negative += 1;
            continue;
        }
        assert!(o.status.success(), "{name}: {}", text(&o));
        let expected = fs::read_to_string(case.join("target.sha256")).unwrap();
        let made = delta::Item::of_bytes(&fs::read(&out).unwrap());
        let line = format!("{} {}", made.hash().unwrap().hex(), made.length());
        assert_eq!(line, expected.trim(), "{name}");
        positive += 1;
    }
    assert!(
        positive >= 13 && negative == 2,
        "{positive} positive, {negative} negative"
    );
    assert_eq!(
        log_entries(&log),
        positive + negative,
        "diffgen's library did every apply"
    );
    // ADU answers 31702 to its own recipe 6; so does diffgen's library.
    let log = fs::read_to_string(&log).unwrap();
    assert!(log.contains("error 31702: "), "{log}");
}
