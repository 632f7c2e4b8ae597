//! Tests of the parts the soundness argument takes on trust or from zlib's source: the
//! scanner's map against zlib's own inflate, and the window model (`plan::window_base`)
//! against the stored/coded decisions zlib actually takes.

use std::sync::atomic::AtomicBool;

use libz_sys as z;
use proptest::prelude::*;

use super::plan::{self, window_base};
use super::scan::{scan, Block, Kind};
use super::stream::{self, RawDeflate};
use super::{check, Options, Path};
use crate::test_inputs::{noise, prose};
use crate::zlib::{deflate_bytes, Container, DeflateParams};

/// Noise with a 3-byte repeat from 3000 bytes back every 400 bytes: zlib takes those matches
/// (within TOO_FAR) although they save next to nothing, so blocks stay worth storing while
/// covering about 180 bytes more than 32 KiB each; over 7 MB the window offset of their
/// starts then sweeps all values in steps smaller than the 262 where a block leaves the
/// window before it is flushed.
fn noise_with_repeats(seed: u64, len: usize) -> Vec<u8> {
    let mut data = noise(seed, len);
    for at in (3300..len.saturating_sub(3)).step_by(400) {
        data.copy_within(at - 3000..at - 2997, at);
    }
    data
}

/// Block ends as zlib's inflate reports them with Z_BLOCK: (bit offset, output offset).
fn inflate_block_ends(raw: &[u8], out_len: usize) -> Vec<(u64, u64)> {
    let mut strm = Box::new(stream::blank());
    // SAFETY: a blank stream, our version and size.
    let ret = unsafe {
        z::inflateInit2_(
            strm.as_mut(),
            -15,
            z::zlibVersion(),
            std::mem::size_of::<z::z_stream>() as i32,
        )
    };
    assert_eq!(ret, z::Z_OK);
    let mut out = vec![0u8; out_len + 1];
    strm.next_in = raw.as_ptr() as *mut u8;
    strm.avail_in = raw.len() as u32;
    strm.next_out = out.as_mut_ptr();
    strm.avail_out = out.len() as u32;
    let mut ends = Vec::new();
    loop {
        // SAFETY: the buffers outlive the stream's use of them (ended below).
        let ret = unsafe { z::inflate(strm.as_mut(), z::Z_BLOCK) };
        assert!(ret == z::Z_OK || ret == z::Z_STREAM_END, "inflate: {ret}");
        // The last block's end comes with 128 too, before Z_STREAM_END (which has skipped the
        // padding bits).
        if strm.data_type & 128 != 0 && ret != z::Z_STREAM_END {
            let bit = strm.total_in * 8 - (strm.data_type & 63) as u64;
            ends.push((bit, strm.total_out));
        }
        if ret == z::Z_STREAM_END {
            break;
        }
    }
    unsafe { z::inflateEnd(strm.as_mut()) };
    ends
}

/// A raw stream with a sync flush after each piece (fixed blocks, empty stored blocks).
fn raw_with_flushes(level: i32, pieces: &[&[u8]]) -> Vec<u8> {
    let mut z = RawDeflate::new(level).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    for (i, piece) in pieces.iter().enumerate() {
        let flush = if i + 1 == pieces.len() {
            z::Z_FINISH
        } else {
            z::Z_SYNC_FLUSH
        };
        let mut rest: &[u8] = piece;
        loop {
            let step = z.run(rest, flush, &mut buf).unwrap();
            out.extend_from_slice(&buf[..step.produced]);
            rest = &rest[step.consumed..];
            if step.ended || (rest.is_empty() && step.produced < buf.len()) {
                break;
            }
        }
    }
    out
}

fn assert_scan_matches_inflate(raw: &[u8], content_len: usize, what: &str) {
    let blocks = scan(raw, 0, content_len as u64).unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let ours: Vec<(u64, u64)> = blocks.iter().map(|b| (b.end_bit, b.out_end)).collect();
    assert_eq!(ours, inflate_block_ends(raw, content_len), "{what}");
    assert_eq!(blocks.last().unwrap().out_end, content_len as u64, "{what}");
    assert!(blocks
        .windows(2)
        .all(|w| w[0].end_bit == w[1].start_bit && w[0].out_end == w[1].out_start));
}

#[test]
fn scan_agrees_with_zlibs_inflate() {
    let text = prose(3, 1_500_000);
    let mut mixed = noise(5, 300_000);
    mixed.extend_from_slice(&text[..400_000]);
    mixed.extend(std::iter::repeat_n(0u8, 500_000));
    mixed.extend_from_slice(&noise(9, 100_000));
    for (what, data) in [("text", &text), ("mixed", &mixed)] {
        for level in [1, 4, 6, 9] {
            let p = DeflateParams {
                container: Container::Raw,
                level,
            };
            let raw = deflate_bytes(p, data).unwrap();
            assert_scan_matches_inflate(&raw, data.len(), &format!("{what} level {level}"));
        }
    }
    let pieces: Vec<&[u8]> = vec![b"a", &text[..100], &text[100..5000], b"", &mixed[..70_000]];
    let raw = raw_with_flushes(9, &pieces);
    let len = pieces.iter().map(|p| p.len()).sum();
    let blocks = scan(&raw, 0, len as u64).unwrap();
    assert!(blocks.iter().any(|b| b.kind == Kind::Fixed));
    assert!(blocks
        .iter()
        .any(|b| b.kind == Kind::Stored && b.out_start == b.out_end));
    assert_scan_matches_inflate(&raw, len, "flushed pieces");
}

/// The blocks within `from..to` that end with a literal, each with its start's window offset
/// when it was flushed (at the loop top `out_end`).
fn literal_ended_blocks(blocks: &[Block], from: u64, to: u64) -> Vec<(Block, i64)> {
    blocks
        .iter()
        .filter(|b| b.out_start >= from && b.out_end <= to && !b.ends_with_match)
        .map(|b| (*b, b.out_start as i64 - window_base(b.out_end) as i64))
        .collect()
}

#[test]
fn window_model_predicts_which_blocks_zlib_can_store() {
    let mut content = prose(1, 700_000);
    let noise_at = content.len() as u64;
    content.extend_from_slice(&noise_with_repeats(2, 7_000_000));
    let noise_end = content.len() as u64;
    content.extend_from_slice(&prose(4, 300_000));
    let params = DeflateParams::GZIP_PROFILE;
    let payload = deflate_bytes(params, &content).unwrap();
    let blocks = scan(&payload, 10, content.len() as u64).unwrap();
    // zlib stores a block only while its start is in the window, and then whenever storing
    // is smaller (its test: stored length + 4 <= the coded block's bytes).
    let mut coded = Vec::new();
    for (b, offset) in literal_ended_blocks(&blocks, noise_at, noise_end) {
        let worth_storing = b.out_end - b.out_start + 4 <= (b.end_bit - b.start_bit).div_ceil(8);
        match b.kind {
            Kind::Stored => assert!(offset >= 0, "{b:?} stored from offset {offset}"),
            _ if worth_storing => {
                assert!(offset < 0, "{b:?} coded from offset {offset}");
                coded.push(b);
            }
            _ => {}
        }
    }
    assert!(!coded.is_empty(), "no block of noise left the window");

    // Those blocks lie in a restarted chunk, and the check still agrees.
    let options = Options {
        min_chunk: 64 << 10,
        chunks_per_thread: 1 << 20,
        ..Options::default()
    };
    let chunks = plan::chunks(
        &blocks,
        content.len() as u64,
        super::target(&content, &options),
    );
    let restarted = chunks.iter().find(|c| c.in_end > noise_at).unwrap();
    assert!(restarted.in_start > 0 && restarted.in_start < coded[0].out_start);
    let c = check(
        params,
        &content,
        &payload,
        &options,
        &AtomicBool::new(false),
    );
    assert_eq!((c.matches, c.path), (true, Path::Parallel(chunks.len())));
}

/// A truncated stream ends in an error at once, even with no bound on the output (as
/// `survey` scans): the zero bits read past the end must not decode on and on.
#[test]
fn a_truncated_stream_is_invalid_without_an_output_bound() {
    let raw = deflate_bytes(
        DeflateParams {
            container: Container::Raw,
            level: 9,
        },
        &prose(11, 200_000),
    )
    .unwrap();
    for cut in [1, raw.len() / 3, raw.len() / 2, raw.len() - 2] {
        assert!(scan(&raw[..cut], 0, u64::MAX).is_err(), "cut at {cut}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Garbage and damaged streams end in an error or a map, never a panic.
    #[test]
    fn scan_survives_any_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..3000),
        flips in proptest::collection::vec(any::<u32>(), 0..4),
        seed in any::<u64>(),
    ) {
        let _ = scan(&bytes, 0, 1 << 20);
        let content = prose(seed, 5000);
        let mut raw = deflate_bytes(
            DeflateParams { container: Container::Raw, level: 9 },
            &content,
        ).unwrap();
        for f in flips {
            let bit = f as usize % (raw.len() * 8);
            raw[bit / 8] ^= 1 << (bit % 8);
        }
        let _ = scan(&raw, 0, 1 << 20);
        let _ = scan(&raw, 0, 100);
    }
}
