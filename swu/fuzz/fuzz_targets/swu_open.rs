//! Fuzzes opening a whole `.swu` as `diffgen inspect` does: `Swu::open` (cpio scan with
//! hashing, sw-description as member 1, parse, inventory), then every check and report line
//! (`problems`, `warnings`, `check_artifact`, `member_for`, `is_signed`).
//!
//! `Swu::open` takes a path, so the input is written to a file in a per-process folder under
//! the temporary directory (set TMPDIR to keep it elsewhere; scripts/fuzz.sh does).

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use swu::Swu;

fn input_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("swu-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the fuzz work folder");
        dir.join("input.swu")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = input_path();
    std::fs::write(path, data).expect("writing the input");
    let Ok(swu) = Swu::open(path) else {
        return;
    };
    let _ = swu.is_signed();
    let _ = swu.problems();
    let _ = swu.warnings();
    for a in &swu.inventory.artifacts {
        let _ = swu.check_artifact(a);
        let _ = swu.member_for(a);
    }
    for m in &swu.archive.members {
        let _ = Swu::member_status(m);
    }
});
