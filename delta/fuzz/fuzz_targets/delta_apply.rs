//! Fuzzes the device-side applier (`delta::apply`) end to end, with a small memory budget.
//!
//! Input layout: a 4-byte little-endian number N, then the source and the delta: the source is
//! the first N mod (remaining length + 1) bytes of the rest, the delta is what follows. Blob
//! hashes in the delta are fixed up as a hostile writer would (see `read_fixing_hashes`). Both
//! are written to a per-process folder under the temporary directory and applied with
//! `memory_budget` = 16 MiB and spill files in a subfolder.
//!
//! Checked, whatever the input:
//! - no panic, no hang (libFuzzer's -timeout), no crash;
//! - heap growth during the apply stays within the memory budget plus a fixed allowance
//!   (every malloc counted through AddressSanitizer's allocator hooks, so zlib's and zstd's
//!   C allocations count too), so the "bounded memory" promise holds on hostile input;
//! - on success the output exists and is the delta's target; on failure no output exists;
//! - no temporary or spill file is left behind.
//!
//! Not fuzzed: deltas naming an item over 16 MiB (or 64 MiB of distinct items in all). The
//! applier honestly streams such sizes (an `all_zeros` target of 2^40 bytes fills the disk), so
//! they are skipped to keep every run short; see docs/robustness.md.

#![no_main]
// Weak references to AddressSanitizer's allocator interface (see "Heap accounting");
// nightly-only, like the rest of the fuzz build.
#![feature(linkage)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::OnceLock;

use delta::{ApplyOptions, Item, ReadLimits};
use delta_fuzz::{item_sizes, read_fixing_hashes};
use libfuzzer_sys::fuzz_target;

const MEMORY_BUDGET: u64 = 16 << 20;
/// Heap the applier may use besides its budget: I/O buffers, zlib states, the output path.
const HEAP_ALLOWANCE: usize = 16 << 20;
const MAX_ITEM: u64 = 16 << 20;
const MAX_ITEMS_TOTAL: u64 = 64 << 20;

// ---- Heap accounting ----------------------------------------------------------------------
//
// Under AddressSanitizer (cargo fuzz's default) every malloc/free is counted through ASan's
// allocator hooks, so memory that zlib and zstd (C libraries) allocate is counted too. Without
// ASan the symbols resolve to null and only Rust allocations are counted, by the global
// allocator below.

type MallocHook = unsafe extern "C" fn(*const c_void, usize);
type FreeHook = unsafe extern "C" fn(*const c_void);

extern "C" {
    #[linkage = "extern_weak"]
    static __sanitizer_install_malloc_and_free_hooks:
        Option<unsafe extern "C" fn(Option<MallocHook>, Option<FreeHook>) -> i32>;
    #[linkage = "extern_weak"]
    static __sanitizer_get_allocated_size: Option<unsafe extern "C" fn(*const c_void) -> usize>;
}

// Signed: frees of blocks allocated before the hooks were installed may take it below zero.
static CURRENT: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);
/// Whether the ASan hooks count (then the global allocator does not).
static HOOKED: AtomicBool = AtomicBool::new(false);

fn grew(n: usize) {
    let n = n as i64;
    let now = CURRENT.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(n: usize) {
    CURRENT.fetch_sub(n as i64, Ordering::Relaxed);
}

unsafe extern "C" fn on_malloc(_ptr: *const c_void, size: usize) {
    grew(size);
}

unsafe extern "C" fn on_free(ptr: *const c_void) {
    if let Some(size_of) = __sanitizer_get_allocated_size {
        if !ptr.is_null() {
            shrank(size_of(ptr));
        }
    }
}

fn install_hooks() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| unsafe {
        if let (Some(install), Some(_)) = (
            __sanitizer_install_malloc_and_free_hooks,
            __sanitizer_get_allocated_size,
        ) {
            if install(Some(on_malloc), Some(on_free)) != 0 {
                HOOKED.store(true, Ordering::Relaxed);
            }
        }
    });
}

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() && !HOOKED.load(Ordering::Relaxed) {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() && !HOOKED.load(Ordering::Relaxed) {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        if !HOOKED.load(Ordering::Relaxed) {
            shrank(layout.size());
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() && !HOOKED.load(Ordering::Relaxed) {
            shrank(layout.size());
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct Work {
    dir: PathBuf,
    source: PathBuf,
    delta: PathBuf,
    output: PathBuf,
    spill: PathBuf,
}

fn work() -> &'static Work {
    static WORK: OnceLock<Work> = OnceLock::new();
    WORK.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("delta-fuzz-{}", std::process::id()));
        let spill = dir.join("spill");
        std::fs::create_dir_all(&spill).expect("creating the fuzz work folder");
        Work {
            source: dir.join("source"),
            delta: dir.join("delta"),
            output: dir.join("output"),
            spill,
            dir,
        }
    })
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("listing the work folder")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let n = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
    let rest = &data[4..];
    let (source, delta) = rest.split_at(n % (rest.len() + 1));
    let mut delta = delta.to_vec();
    let limits = ReadLimits::default();
    let archive = read_fixing_hashes(&mut delta, &limits).ok();
    if let Some(a) = &archive {
        let (max, sum) = item_sizes(a);
        if max > MAX_ITEM || sum > MAX_ITEMS_TOTAL {
            return;
        }
    }

    let w = work();
    let _ = std::fs::remove_file(&w.output);
    std::fs::write(&w.source, source).expect("writing the source");
    std::fs::write(&w.delta, &delta).expect("writing the delta");
    let options = ApplyOptions {
        temp_dir: Some(w.spill.clone()),
        memory_budget: MEMORY_BUDGET,
        limits,
        ..ApplyOptions::default()
    };

    install_hooks();
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = delta::apply(&w.source, &w.delta, &w.output, &options);
    let growth = (PEAK.load(Ordering::Relaxed) - before).max(0) as usize;
    if std::env::var_os("DELTA_FUZZ_VERBOSE").is_some() {
        eprintln!(
            "apply: {} (heap growth {growth} bytes)",
            match &result {
                Ok(r) => format!(
                    "ok, peak reserved {}, all mallocs counted: {}",
                    r.peak_reserved_memory,
                    HOOKED.load(Ordering::Relaxed)
                ),
                Err(e) => e.to_string(),
            }
        );
    }
    assert!(
        growth <= MEMORY_BUDGET as usize + HEAP_ALLOWANCE,
        "apply grew the heap by {growth} bytes with a {MEMORY_BUDGET}-byte budget"
    );

    match &result {
        Ok(report) => {
            let out = std::fs::read(&w.output).expect("apply succeeded but left no output");
            assert_eq!(
                Item::of_bytes(&out),
                report.target,
                "output is not the target"
            );
            assert_eq!(
                Some(report.target),
                archive.map(|a| a.target),
                "apply made something other than the delta's target"
            );
            assert!(report.peak_reserved_memory <= MEMORY_BUDGET);
        }
        Err(e) => assert!(
            !w.output.exists(),
            "apply failed ({e}) but left an output file"
        ),
    }
    let mut expected = vec!["delta", "source", "spill"];
    if result.is_ok() {
        expected.insert(1, "output");
    }
    assert_eq!(names(&w.dir), expected, "apply left files behind");
    assert!(names(&w.spill).is_empty(), "apply left spill files behind");
});
