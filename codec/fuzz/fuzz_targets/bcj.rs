//! Fuzzes `codec::bcj` (the x86-64 filter the applier undoes for `bcj_x86_decode`): input = a
//! read-size selector, then the data.
//!
//! Checked: no panic; decoding inverts encoding, in one piece and streamed with any read size,
//! and the length never changes.

#![no_main]

use std::io::Read;

use codec::bcj::{decode, encode, Decoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [step, data @ ..] = data else {
        return;
    };
    let step = 1 + usize::from(*step) * 61;
    let filtered = encode(data);
    assert_eq!(filtered.len(), data.len());
    assert_eq!(decode(&filtered), data, "decode(encode(x)) != x");
    // Decoding the data itself as if filtered must be safe too (a hostile delta).
    let _ = decode(data);
    let mut d = Decoder::new(&filtered[..]);
    let mut out = Vec::new();
    let mut buf = vec![0u8; step];
    loop {
        let n = d.read(&mut buf).expect("reads from a slice");
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(out, data, "streamed decoding differs");
});
