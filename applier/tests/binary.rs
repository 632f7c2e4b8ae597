//! The standalone applier binary: rebuilds a target from a hand-built delta, and fails cleanly
//! (one `Error:` line, exit 1, no output) on a wrong source or bad arguments.

use std::fs;
use std::process::Command;

use delta::{DeltaBuilder, Item, Profile, Recipe};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_diffgen-apply")
}

#[test]
fn applies_and_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let source: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let mut target = source[1000..21000].to_vec();
    target.extend(std::iter::repeat_n(0u8, 30_000));
    let s = Item::of_bytes(&source);
    let t = Item::of_bytes(&target);
    let part = Item::of_bytes(&source[1000..21000]);
    let zeros = Item::of_bytes(&[0u8; 30_000]);
    let mut b = DeltaBuilder::new(t, s, Profile::Gzip);
    b.add_recipe(t, Recipe::Chain(vec![part, zeros])).unwrap();
    b.add_recipe(
        part,
        Recipe::Slice {
            offset: 1000,
            whole: s,
        },
    )
    .unwrap();
    b.add_recipe(zeros, Recipe::AllZeros).unwrap();
    let src = dir.path().join("source.bin");
    let delta = dir.path().join("d.diff");
    let out = dir.path().join("out.bin");
    fs::write(&src, &source).unwrap();
    fs::write(&delta, b.to_bytes().unwrap()).unwrap();

    let o = Command::new(bin())
        .arg(&src)
        .arg(&delta)
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(fs::read(&out).unwrap(), target);
    assert!(String::from_utf8_lossy(&o.stdout).contains("verified"));

    // Another source: the slice it needs does not exist there.
    let wrong = dir.path().join("wrong.bin");
    fs::write(&wrong, vec![1u8; 50_000]).unwrap();
    let out2 = dir.path().join("out2.bin");
    let o = Command::new(bin())
        .arg(&wrong)
        .arg(&delta)
        .arg(&out2)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("Error: ")).count(),
        1,
        "{err}"
    );
    assert!(!out2.exists());

    // Device limits: the target is 50,000 bytes.
    let out3 = dir.path().join("out3.bin");
    let run_with = |extra: &[&str]| {
        Command::new(bin())
            .args(extra)
            .arg(&src)
            .arg(&delta)
            .arg(&out3)
            .output()
            .unwrap()
    };
    let o = run_with(&["--max-target-size", "48K"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("target is 50000 bytes, more than the 49152-byte limit"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out3.exists());
    let o = run_with(&["--memory-budget", "1K"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("1024-byte budget"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run_with(&["--max-target-size", "49K", "--memory-budget", "64M"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(fs::read(&out3).unwrap(), target);

    for args in [
        vec!["a", "b"],
        vec!["--bogus", "a", "b", "c"],
        vec!["--temp-dir"],
        vec!["--memory-budget", "lots", "a", "b", "c"],
    ] {
        let o = Command::new(bin()).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Error: "),
            "{args:?}"
        );
    }
    let o = Command::new(bin()).arg("--help").output().unwrap();
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("usage"));
}
