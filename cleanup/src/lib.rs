//! Temp files that disappear when the process is interrupted.
//!
//! Outputs are written to temp files and renamed into place when complete; destructors remove
//! the temp files on errors. A signal ends the process without running destructors, so paths
//! are also registered here, and [`install`] starts a thread that waits for SIGINT, SIGTERM and
//! SIGHUP, removes every registered path, and exits with 128 + the signal number (130, 143,
//! 129). The thread is an ordinary thread (signal-hook's iterator), so it may take locks and
//! touch the file system, which a signal handler may not.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

fn registry() -> MutexGuard<'static, BTreeSet<PathBuf>> {
    static REGISTRY: OnceLock<Mutex<BTreeSet<PathBuf>>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| Mutex::new(BTreeSet::new()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Keeps `path` registered until dropped. Dropping does not delete anything: the owner of the
/// temp file does that (or renames it into place).
#[must_use = "the path is unregistered when the guard is dropped"]
pub struct Registered(PathBuf);

impl Drop for Registered {
    fn drop(&mut self) {
        registry().remove(&self.0);
    }
}

/// Registers a temp file or folder for removal on interruption.
pub fn register(path: &Path) -> Registered {
    registry().insert(path.to_path_buf());
    Registered(path.to_path_buf())
}

/// Removes every registered path (folders recursively).
pub fn remove_all() {
    let paths: Vec<PathBuf> = registry().iter().cloned().collect();
    for p in paths {
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Starts the signal thread (once per process; later calls do nothing).
pub fn install() -> std::io::Result<()> {
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
                remove_all();
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
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let file = dir.join("f.tmp");
        std::fs::write(&file, b"x").unwrap();
        let g1 = register(&file);
        let g2 = register(&dir);
        remove_all();
        assert!(!file.exists() && !dir.exists());
        drop((g1, g2));
        assert!(registry().is_empty());
    }
}
