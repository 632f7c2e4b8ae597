//! Fuzzes the bsdiff encoder (`codec::bsdiff::diff`, used by the delta generator) for
//! correctness and for the quadratic cases it claims to avoid: the input is split into an old
//! and a new file (first byte: the old file's share of the rest, in 256ths), the patch is made
//! and applied, and must give back the new file exactly.

#![no_main]

use codec::bsdiff;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&share, rest)) = data.split_first() else {
        return;
    };
    let (old, new) = rest.split_at(rest.len() * share as usize / 256);
    let patch = bsdiff::diff(old, new).expect("diff of in-memory inputs");
    let back = bsdiff::apply(old, &patch).expect("a patch the encoder made does not apply");
    assert!(back == new, "round trip changed the new file");
});
