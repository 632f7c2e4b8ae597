//! One `adu_diff_apply` call: the C paths taken apart, the settings loaded, `delta::apply` run
//! (with its panics caught, so a bug never unwinds into the host), the errors turned into
//! ADU-style (code, text) pairs, and the log written.
//!
//! Where files go: the output is written beside the target path and renamed into place only
//! after its SHA-256 matched the delta (delta::apply); spill files go to the `temp_dir` setting
//! or, by default, the target's folder — ADU's download sandbox, on the storage that must hold
//! the target anyway — not `TMPDIR`, which is a RAM-backed tmpfs on many devices. Spill files
//! are unlinked as soon as they are created, so nothing is left behind on failure, even if the
//! host is killed.

use std::ffi::{c_char, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use crate::codes;
use crate::log;
use crate::rootfs;
use crate::session::ApiError;
use crate::settings::{self, Settings};

/// Applies and returns the errors (empty: the target is in place and verified). `log_path`:
/// the session's log path, which wins over the `log` setting.
///
/// # Safety
/// Each path is null (an error) or a NUL-terminated string.
pub unsafe fn apply(
    source: *const c_char,
    delta: *const c_char,
    target: *const c_char,
    log_path: Option<&Path>,
) -> Vec<ApiError> {
    // SAFETY: the caller's contract above.
    let args = unsafe {
        (
            path_arg(source, "source"),
            path_arg(delta, "diff"),
            path_arg(target, "target"),
        )
    };
    let (source, delta, target) = match args {
        (Ok(s), Ok(d), Ok(t)) => (s, d, t),
        (s, d, t) => return [s.err(), d.err(), t.err()].into_iter().flatten().collect(),
    };
    let started = (SystemTime::now(), Instant::now());
    let settings = settings::load();
    let (report, skipped, errors) = match &settings {
        Ok(s) => run(&source, &delta, &target, s),
        Err(e) => (
            None,
            Vec::new(),
            vec![ApiError::new(codes::BAD_SETTINGS, e)],
        ),
    };
    let log_to = log_path
        .map(Path::to_path_buf)
        .or_else(|| settings.as_ref().ok().and_then(|s| s.log.clone()));
    if let Some(path) = log_to {
        let record = log::Record {
            started: started.0,
            source: &source,
            delta: &delta,
            target: &target,
            settings: settings.as_ref().ok(),
            skipped: &skipped,
            report: report.as_ref(),
            errors: &errors,
            wall: started.1.elapsed(),
        };
        // The log is a diagnostic: failing to write it does not fail the update.
        let _ = log::append(&path, &record);
    }
    errors
}

/// A path argument: bytes as the kernel takes them (no UTF-8 requirement); null is an error.
///
/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn path_arg(p: *const c_char, what: &str) -> Result<PathBuf, ApiError> {
    if p.is_null() {
        return Err(ApiError::new(
            codes::INVALID_ARGUMENT,
            &format!("the {what} path is a null pointer"),
        ));
    }
    // SAFETY: the caller's contract above; null is excluded.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

type Ran = (Option<delta::Report>, Vec<String>, Vec<ApiError>);

fn run(source: &Path, delta: &Path, target: &Path, settings: &Settings) -> Ran {
    let (known_items, skipped) = openable(&settings.known_items);
    let options = delta::ApplyOptions {
        temp_dir: Some(
            settings
                .temp_dir
                .clone()
                .unwrap_or_else(|| folder_of(target)),
        ),
        known_items,
        memory_budget: settings.memory_budget,
        ..delta::ApplyOptions::default()
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        delta::apply(source, delta, target, &options)
    }));
    let context = format!(" (applying {} to {})", delta.display(), source.display());
    match result {
        Ok(Ok(report)) => (Some(report), skipped, Vec::new()),
        Ok(Err(e)) => {
            let text = e.to_string().replace('\n', " ") + &context;
            (None, skipped, vec![ApiError::new(codes::of(&e), &text)])
        }
        Err(panic) => {
            let text = format!(
                "internal error (a bug in diffgen, please report it): {}{context}",
                panic_message(&*panic)
            );
            (None, skipped, vec![ApiError::new(codes::INTERNAL, &text)])
        }
    }
}

/// Known items that can be opened (`rootfs` resolved to the root filesystem's device), and a
/// note for each that cannot (the agent's user may not read a partition): those are skipped,
/// not fatal.
fn openable(paths: &[PathBuf]) -> (Vec<delta::KnownItem>, Vec<String>) {
    let mut known = Vec::new();
    let mut skipped = Vec::new();
    for p in paths {
        let path = if p.as_os_str() == rootfs::KEYWORD {
            match rootfs::device() {
                Ok(dev) => dev,
                Err(e) => {
                    skipped.push(format!("{}: not used: {e}", rootfs::KEYWORD));
                    continue;
                }
            }
        } else {
            p.clone()
        };
        match std::fs::File::open(&path) {
            Ok(_) => known.push(delta::KnownItem { path, length: None }),
            Err(e) => skipped.push(format!("{}: not used: cannot open it: {e}", path.display())),
        }
    }
    (known, skipped)
}

fn folder_of(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The message of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
