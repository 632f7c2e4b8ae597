//! Stage 1, inputs: both archives opened and checked (a target SWUpdate would reject is
//! refused before any work), mapped into memory and hashed; the working folder exists.

use std::fs::File;
use std::io;
use std::path::Path;

use delta::Item;
use memmap2::Mmap;
use swu::Swu;

use crate::items::item_of;
use crate::{io_at, Error, Options};

/// Both archives, parsed and mapped.
pub(crate) struct Inputs {
    pub source_swu: Swu,
    pub target_swu: Swu,
    pub source_map: Mmap,
    pub target_map: Mmap,
    pub source_item: Item,
    pub target_item: Item,
}

/// Opens, checks, maps and hashes `source` and `target` (the two side by side: each is a
/// pass over a file).
pub(crate) fn open(source: &Path, target: &Path, options: &Options) -> Result<Inputs, Error> {
    let (source_swu, target_swu) = rayon::join(|| Swu::open(source), || Swu::open(target));
    let (source_swu, target_swu) = (source_swu?, target_swu?);
    let problems = target_swu.problems();
    if !problems.is_empty() {
        return Err(Error::BadTarget(problems.join("; ")));
    }
    std::fs::create_dir_all(&options.work_dir)
        .map_err(io_at("cannot create the working folder", &options.work_dir))?;
    let source_map = map_file(source)?.ok_or(Error::Io {
        what: "source is empty",
        path: source.to_path_buf(),
        source: io::Error::from(io::ErrorKind::UnexpectedEof),
    })?;
    let target_map = map_file(target)?.ok_or(Error::EmptyTarget)?;
    let (source_item, target_item) = rayon::join(|| item_of(&source_map), || item_of(&target_map));
    Ok(Inputs {
        source_swu,
        target_swu,
        source_map,
        target_map,
        source_item,
        target_item,
    })
}

/// The file at `path` mapped read-only; `None` when it is empty (an empty file cannot be
/// mapped).
pub(crate) fn map_file(path: &Path) -> Result<Option<Mmap>, Error> {
    let f = File::open(path).map_err(io_at("cannot read", path))?;
    if f.metadata().map_err(io_at("cannot read", path))?.len() == 0 {
        return Ok(None);
    }
    // SAFETY: the files are inputs or our own temp files; nobody truncates them while mapped
    // (a concurrent truncation of an input would be a fault the OS reports as SIGBUS).
    let m = unsafe { Mmap::map(&f) }.map_err(io_at("cannot map", path))?;
    Ok(Some(m))
}
