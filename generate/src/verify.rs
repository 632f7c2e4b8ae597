//! Stage 6, verification: the written delta is applied to the source with diffgen's own
//! applier (the device's code) and must make exactly the target; only then is it published.
//!
//! Payloads that planning took as re-creatable on a prefix check are compared in full in the
//! background ([`Recheck`]); the verification waits for those comparisons, and the apply then
//! reads such a payload from the target instead of compressing its content a second time,
//! while it still makes the content and checks its hash (`delta::KnownResult`). Should a
//! comparison fail, verification fails, and the delta is planned again with full checks.

use std::path::Path;

use delta::Item;

use crate::plan::Recheck;
use crate::{io_at, Error};

/// Applies the delta to the source into a temp folder in `work` and checks the result, once
/// every payload check in `rechecks` has passed.
pub(crate) fn verify(
    source: &Path,
    delta_path: &Path,
    target: Item,
    work: &Path,
    rechecks: &mut [Recheck],
) -> Result<(), Error> {
    let mut known_results = Vec::new();
    for r in rechecks {
        if !r.passed() {
            return Err(Error::Verify(format!(
                "{}: compressing its content again does not make the payload",
                r.member
            )));
        }
        known_results.push(delta::KnownResult {
            item: r.payload,
            path: r.target.clone(),
            offset: r.offset,
        });
    }
    // A registered folder: whatever the applier writes in it is swept on interruption.
    let dir = cleanup::TempDir::new_in(work, ".verify-")
        .map_err(io_at("cannot create a temp folder", work))?;
    let out = dir.path().join("target.swu");
    let options = delta::ApplyOptions {
        temp_dir: Some(dir.path().to_path_buf()),
        known_results,
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
