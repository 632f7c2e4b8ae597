//! Files the applier writes: spill files for items that must be random-access (in the temp
//! folder, removed as soon as they are closed) and the output, written beside its final path and
//! renamed into place only after it has been verified.

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Creates uniquely named files in one folder.
#[derive(Debug)]
pub struct TempFiles {
    dir: PathBuf,
    counter: Cell<u32>,
}

/// A spill file. On Unix its name is removed right after creation, so the space is freed when
/// the handle closes, even if the process is killed; elsewhere it is removed on drop.
#[derive(Debug)]
pub struct SpillFile {
    pub file: File,
    #[cfg_attr(unix, allow(dead_code))]
    path: Option<PathBuf>,
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = fs::remove_file(p);
        }
    }
}

impl TempFiles {
    pub fn new(dir: PathBuf) -> TempFiles {
        TempFiles {
            dir,
            counter: Cell::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new, empty, exclusive file named `<prefix><pid>-<n>` in the folder.
    fn create_named(dir: &Path, prefix: &str, counter: &Cell<u32>) -> io::Result<(File, PathBuf)> {
        loop {
            let n = counter.get();
            counter.set(n.wrapping_add(1));
            let path = dir.join(format!("{prefix}{}-{n}", std::process::id()));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => return Ok((f, path)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < u32::MAX => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// A spill file for intermediate data.
    pub fn spill(&self) -> io::Result<SpillFile> {
        let (file, path) = Self::create_named(&self.dir, ".diffgen-spill-", &self.counter)?;
        #[cfg(unix)]
        {
            fs::remove_file(&path)?;
            Ok(SpillFile { file, path: None })
        }
        #[cfg(not(unix))]
        {
            Ok(SpillFile {
                file,
                path: Some(path),
            })
        }
    }
}

/// The output under construction: a file beside the final path, removed unless committed.
#[derive(Debug)]
pub struct PendingOutput {
    pub file: File,
    temp_path: PathBuf,
    final_path: PathBuf,
    committed: bool,
}

impl PendingOutput {
    pub fn create(final_path: &Path) -> io::Result<PendingOutput> {
        let name = final_path.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name")
        })?;
        let dir = match final_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let prefix = format!(".{}.partial-", name.to_string_lossy());
        let (file, temp_path) = TempFiles::create_named(&dir, &prefix, &Cell::new(0))?;
        Ok(PendingOutput {
            file,
            temp_path,
            final_path: final_path.to_path_buf(),
            committed: false,
        })
    }

    /// Flushes to disk and renames into place.
    pub fn commit(mut self) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.temp_path, &self.final_path)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PendingOutput {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}
