//! Temp files that disappear when the process is interrupted.
//!
//! Outputs are written to temp files and renamed into place when complete; destructors remove
//! the temp files on errors. A signal ends the process without running destructors, so every
//! temp path is registered here *before* it is created, and [`install`] starts a thread that
//! waits for SIGINT, SIGTERM and SIGHUP, removes every registered path and exits with
//! 128 + the signal number (130, 143, 129).
//!
//! The thread holds the registry lock from the sweep until the exit, so no other thread can
//! register (and therefore create) a temp file after the sweep. It is an ordinary thread
//! (signal-hook's iterator), so it may take locks and touch the file system, which a signal
//! handler may not. It also kills the process groups of the child commands being waited for
//! ([`child::wait_or_kill`]).

pub mod child;

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use tempfile::NamedTempFile;

fn registry() -> MutexGuard<'static, BTreeSet<PathBuf>> {
    static REGISTRY: OnceLock<Mutex<BTreeSet<PathBuf>>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| Mutex::new(BTreeSet::new()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Keeps a path registered until dropped. Dropping does not delete anything: the owner of the
/// temp file does that (or renames it into place).
#[must_use = "the path is unregistered when the guard is dropped"]
pub struct Registered(PathBuf);

impl Drop for Registered {
    fn drop(&mut self) {
        registry().remove(&self.0);
    }
}

/// Registers a path for removal on interruption. Prefer [`temp_file`] and [`TempDir`], which
/// register and create under one lock; a path registered separately from its creation can
/// leak if the signal comes in between.
pub fn register(path: &Path) -> Registered {
    registry().insert(path.to_path_buf());
    Registered(path.to_path_buf())
}

/// A named temp file in `dir`, registered before it is created. The file is removed when the
/// returned `NamedTempFile` is dropped (unless persisted) and when the process is interrupted.
pub fn temp_file(
    dir: &Path,
    prefix: &str,
    suffix: &str,
) -> io::Result<(NamedTempFile, Registered)> {
    let mut registered = None;
    let file = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(suffix)
        .make_in(dir, |path| {
            // Registered and created under the lock: a sweep happens either before (and this
            // thread then waits for the exit) or after (and removes the file).
            let mut reg = registry();
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(path)?;
            reg.insert(path.to_path_buf());
            registered = Some(Registered(path.to_path_buf()));
            Ok(f)
        })?;
    Ok((file, registered.expect("set when the file was created")))
}

/// A temp folder in `dir`, registered before it is created, removed (with its contents) when
/// dropped or when the process is interrupted.
pub struct TempDir {
    path: PathBuf,
    _registered: Registered,
}

impl TempDir {
    pub fn new_in(dir: &Path, prefix: &str) -> io::Result<TempDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{prefix}{}-{n}", std::process::id()));
            let mut reg = registry();
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    reg.insert(path.clone());
                    return Ok(TempDir {
                        _registered: Registered(path.clone()),
                        path,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn remove(paths: &BTreeSet<PathBuf>) {
    for p in paths {
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(p);
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Removes every registered path (folders recursively).
pub fn remove_all() {
    let paths = registry().clone();
    remove(&paths);
}

/// Starts the signal thread (once per process; later calls do nothing).
pub fn install() -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    static INSTALLED: OnceLock<()> = OnceLock::new();
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let _ = INSTALLED.set(());
    std::thread::Builder::new()
        .name("diffgen-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                // Held until exit: nothing can be registered, hence created, after the sweep.
                let held = registry();
                child::kill_all();
                remove(&held);
                let name = match sig {
                    SIGINT => "SIGINT",
                    SIGTERM => "SIGTERM",
                    _ => "SIGHUP",
                };
                eprintln!("Error: interrupted by {name}; temp files removed, no output written");
                std::process::exit(128 + sig);
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_paths_are_removed() {
        let dir = std::env::temp_dir().join(format!("cleanup-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (file, g1) = temp_file(&dir, ".t-", ".tmp").unwrap();
        let sub = TempDir::new_in(&dir, ".d-").unwrap();
        std::fs::write(sub.path().join("x"), b"x").unwrap();
        let g2 = register(&dir);
        remove_all();
        assert!(!file.path().exists() && !sub.path().exists() && !dir.exists());
        drop((g1, g2, sub, file));
        assert!(registry().is_empty());
    }
}
