//! Stage 6, verification: the written delta is applied to the source with diffgen's own
//! applier (the device's code) and must make exactly the target; only then is it published.

use std::path::Path;

use delta::Item;

use crate::{io_at, Error};

/// Applies the delta to the source into a temp folder in `work` and checks the result.
pub(crate) fn verify(
    source: &Path,
    delta_path: &Path,
    target: Item,
    work: &Path,
) -> Result<(), Error> {
    // A registered folder: whatever the applier writes in it is swept on interruption.
    let dir = cleanup::TempDir::new_in(work, ".verify-")
        .map_err(io_at("cannot create a temp folder", work))?;
    let out = dir.path().join("target.swu");
    let options = delta::ApplyOptions {
        temp_dir: Some(dir.path().to_path_buf()),
        ..delta::ApplyOptions::default()
    };
    let result = delta::apply(source, delta_path, &out, &options);
    match result {
        Ok(report) if report.target == target => Ok(()),
        Ok(report) => Err(Error::Verify(format!(
            "it makes {} instead of {}",
            report.target, target
        ))),
        Err(e) => Err(Error::Verify(e.to_string())),
    }
}
