//! Fuzzes the delta reader (`delta::read_archive`, default `ReadLimits`) on one input file, with
//! blob hashes fixed up as a hostile writer would (see the crate's `read_fixing_hashes`), then
//! everything that looks at a parsed delta without applying it:
//!
//! - `inspect` and `render_text` (with the recipe graph): what `diffgen inspect` prints;
//! - `apply::requirements`: the applier's resolution (fixed point, depth) without any file;
//! - re-serialisation: when `DeltaBuilder::from_archive` accepts the archive, its canonical
//!   bytes must read back and re-serialise to the same bytes.

#![no_main]

use std::sync::Arc;

use delta::{inspect, DeltaBuilder, Profile, ReadLimits};
use delta_fuzz::read_fixing_hashes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = ReadLimits::default();
    let mut bytes = data.to_vec();
    let Ok(archive) = read_fixing_hashes(&mut bytes, &limits) else {
        return;
    };
    let _ = archive.needs_diffgen_applier();
    let _ = archive.remainder_uncompressed();
    let inspection = inspect::inspect(&archive);
    let _ = inspect::render_text(&inspection, true);
    let _ = delta::apply::requirements(&archive);

    // Canonical form: write, read back, write again.
    let bytes = Arc::new(bytes);
    let Ok(builder) = DeltaBuilder::from_archive(&archive, bytes, Profile::Extended) else {
        return;
    };
    let Ok(canonical) = builder.to_bytes() else {
        return;
    };
    let again = delta::read_archive(&canonical, &limits)
        .unwrap_or_else(|e| panic!("the writer wrote a delta its reader refuses: {e}"));
    let rewritten =
        DeltaBuilder::from_archive(&again, Arc::new(canonical.clone()), Profile::Extended)
            .and_then(|b| b.to_bytes())
            .unwrap_or_else(|e| panic!("a delta the writer wrote cannot be rewritten: {e}"));
    assert!(rewritten == canonical, "canonical form is not stable");
});
