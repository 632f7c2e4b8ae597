//! Fuzzes every decompressor the applier and recompression run on untrusted data, each on the
//! whole input, each reading at most 16 MiB of output (decompression bombs end there):
//!
//! - `codec::zlib::inflater`: gzip first member only (SWUpdate's and ADU's behaviour), gzip all
//!   members, raw deflate, zlib;
//! - `codec::zstd::decoder`: without a basis (window log max 27, as the applier) and with the
//!   fixed 4,400-byte basis as raw prefix (window log max 28).
//!
//! Checked: no panic, hang or crash; when both gzip readers end cleanly, the first member is
//! no longer than all members together.

#![no_main]

use codec::zlib::{inflater, Container};
use codec_fuzz::{drain, old, OUTPUT_LIMIT};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn basis() -> &'static [u8] {
    static BASIS: OnceLock<Vec<u8>> = OnceLock::new();
    BASIS.get_or_init(old)
}

fuzz_target!(|data: &[u8]| {
    let chunk = 1 + data.len() % 65_537;
    let first = drain(
        &mut *inflater(Container::Gzip, data, false),
        OUTPUT_LIMIT,
        chunk,
    );
    let all = drain(
        &mut *inflater(Container::Gzip, data, true),
        OUTPUT_LIMIT,
        chunk,
    );
    if let ((f, Ok(true)), (a, Ok(true))) = (&first, &all) {
        assert!(f <= a, "first gzip member longer than all members");
    }
    let _ = drain(
        &mut *inflater(Container::Raw, data, false),
        OUTPUT_LIMIT,
        chunk,
    );
    let _ = drain(
        &mut *inflater(Container::Zlib, data, false),
        OUTPUT_LIMIT,
        chunk,
    );
    if let Ok(mut d) = codec::zstd::decoder(data, None, 27) {
        let _ = drain(&mut *d, OUTPUT_LIMIT, chunk);
    }
    if let Ok(mut d) = codec::zstd::decoder(data, Some(basis()), 28) {
        let _ = drain(&mut *d, OUTPUT_LIMIT, chunk);
    }
});
