//! Fuzzes `codec::gnu_gzip` (GNU gzip's deflate, which the applier runs for
//! `gnu_gzip_compression`): input = level selector, write-size selector, then the content.
//!
//! Checked: no panic; the output does not depend on how the content is written (whole reads
//! only, as gzip reads a regular file); it inflates back to the content.

#![no_main]

use std::io::{Read, Write};

use codec::gnu_gzip::{gzip_bytes, GzipWriter};
use codec::zlib::{inflater, Container};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [level, step, content @ ..] = data else {
        return;
    };
    let level = 4 + u32::from(*level) % 6;
    let step = 1 + usize::from(*step) * 97;
    let whole = gzip_bytes(level, content).expect("levels 4..=9 are supported");
    let mut w = GzipWriter::new(level, Vec::new()).expect("levels 4..=9 are supported");
    for piece in content.chunks(step) {
        w.write_all(piece).expect("writes to a Vec");
    }
    assert_eq!(w.finish().expect("writes to a Vec"), whole, "depends on write sizes");
    let mut back = Vec::new();
    inflater(Container::Gzip, &whole[..], false)
        .read_to_end(&mut back)
        .expect("inflates");
    assert_eq!(back, content, "round trip");
});
