//! Differential fuzzing of `codec::zlib_check`: the parallel check (cut into chunks of 4 KiB,
//! so that even small inputs are split) must give the serial check's answer, for payloads made
//! from the input in three ways:
//!
//! - the input as a payload (garbage, or a seed that is a real gzip stream), its content what
//!   zlib inflates from it (at most 1 MiB);
//! - zlib's own output for the input as content (the answer must be true);
//! - that output with one bit flipped where the input's first bytes say.
//!
//! Checked: no panic or hang, and the two answers agree.

#![no_main]

use std::io::Read;
use std::sync::atomic::AtomicBool;

use codec::zlib::{deflate_bytes, inflater, Container, DeflateParams};
use codec::zlib_check::{check, Options};
use libfuzzer_sys::fuzz_target;

const CONTENT_LIMIT: u64 = 1 << 20;

fn agree(params: DeflateParams, content: &[u8], payload: &[u8]) -> bool {
    let stop = AtomicBool::new(false);
    let parallel = Options {
        min_chunk: 4096,
        chunks_per_thread: 4,
        serial_only: false,
    };
    let serial = Options {
        serial_only: true,
        ..parallel
    };
    let a = check(params, content, payload, &parallel, &stop).matches;
    let b = check(params, content, payload, &serial, &stop).matches;
    assert_eq!(a, b, "parallel and serial checks disagree");
    a
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let params = DeflateParams {
        container: Container::Gzip,
        level: 4 + i32::from(selector % 6),
    };
    match selector / 6 % 3 {
        0 => {
            let mut content = Vec::new();
            let _ = inflater(Container::Gzip, rest, false)
                .take(CONTENT_LIMIT)
                .read_to_end(&mut content);
            agree(params, &content, rest);
        }
        1 => {
            let payload = deflate_bytes(params, rest).expect("deflate");
            assert!(agree(params, rest, &payload), "zlib's own output refused");
        }
        _ => {
            let mut payload = deflate_bytes(params, rest).expect("deflate");
            let at = usize::from(selector) * 7919 % (payload.len() * 8);
            payload[at / 8] ^= 1 << (at % 8);
            agree(params, rest, &payload);
        }
    }
});
