//! The parallel zlib check gives the serial check's answer: true for codec::zlib's own output
//! of every kind of content (noise, text, zero runs, an ext4 image of real files), false for
//! damaged payloads, payloads of other levels, payloads with a forced flush and wrong
//! trailers; and it really runs in parallel on large contents.

use std::io::Read;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use codec::test_inputs::{noise, prose};
use codec::zlib::{deflate_bytes, Container, DeflateParams};
use codec::zlib_check::{check, deflates_to, Checked, Fallback, Options, Path};
use libz_sys as z;
use proptest::prelude::*;

const GZIP9: DeflateParams = DeflateParams::GZIP_PROFILE;

/// Small chunks, so that contents of a few MiB are cut into many.
fn small_chunks() -> Options {
    Options {
        min_chunk: 64 << 10,
        chunks_per_thread: 1 << 20,
        serial_only: false,
    }
}

fn parallel(params: DeflateParams, content: &[u8], payload: &[u8]) -> Checked {
    check(
        params,
        content,
        payload,
        &small_chunks(),
        &AtomicBool::new(false),
    )
}

fn serial(params: DeflateParams, content: &[u8], payload: &[u8]) -> bool {
    let options = Options {
        serial_only: true,
        ..Options::default()
    };
    let c = check(params, content, payload, &options, &AtomicBool::new(false));
    assert_eq!(c.path, Path::Serial(Fallback::Asked));
    c.matches
}

/// The parallel answer for `payload`, asserted equal to the serial one.
fn agreed(params: DeflateParams, content: &[u8], payload: &[u8], what: &str) -> Checked {
    let c = parallel(params, content, payload);
    assert_eq!(c.matches, serial(params, content, payload), "{what}: {c:?}");
    c
}

fn zero_runs(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    for (i, at) in (0..len).step_by(300_007).enumerate() {
        data[at] = i as u8 | 1;
    }
    data
}

fn mixed() -> Vec<u8> {
    let mut data = prose(1, 1_000_000);
    data.extend_from_slice(&noise(2, 300_000));
    data.extend_from_slice(&zero_runs(700_000));
    data.extend_from_slice(&prose(3, 800_000));
    data.extend_from_slice(&noise(4, 100_000));
    data.extend_from_slice(&prose(5, 600_000));
    data
}

/// An ext4 image (8 MiB) that `mkfs.ext4 -d` made from a copy of up to 5 MiB of /usr files
/// (made once per test run).
fn ext4_image() -> Vec<u8> {
    static IMAGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    IMAGE.get_or_init(make_ext4_image).clone()
}

fn make_ext4_image() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let mut budget: i64 = 5 << 20;
    for top in ["/usr/bin", "/usr/share/doc", "/usr/lib/x86_64-linux-gnu"] {
        let Ok(entries) = std::fs::read_dir(top) else {
            continue;
        };
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !meta.is_file() || meta.len() > 600_000 || budget < meta.len() as i64 {
                continue;
            }
            let to = tree.join(path.strip_prefix("/").unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            if std::fs::copy(&path, &to).is_ok() {
                budget -= meta.len() as i64;
            }
        }
    }
    let image = dir.path().join("image.ext4");
    let status = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&tree)
        .arg(&image)
        .arg("8M")
        .status()
        .expect("mkfs.ext4 is required: run scripts/install-deps.sh");
    assert!(status.success());
    std::fs::read(&image).unwrap()
}

#[test]
fn own_output_is_confirmed_for_every_kind_of_content() {
    let inputs = [
        ("noise", noise(7, 2_000_000)),
        ("prose", prose(8, 3_000_000)),
        ("zero runs", zero_runs(4_000_000)),
        ("mixed", mixed()),
        ("ext4 image", ext4_image()),
        ("tiny", b"hello".to_vec()),
        ("empty", Vec::new()),
    ];
    for (what, content) in &inputs {
        let payload = deflate_bytes(GZIP9, content).unwrap();
        let c = agreed(GZIP9, content, &payload, what);
        assert!(c.matches, "{what}");
        match *what {
            // Noise is stored (no block end with a known state); 4 MB of zero runs are fewer
            // than 32767 symbols: one block.
            "noise" | "zero runs" | "tiny" | "empty" => {
                assert_eq!(c.path, Path::Serial(Fallback::Short), "{what}")
            }
            _ => assert!(
                matches!(c.path, Path::Parallel(n) if n >= 3),
                "{what}: {c:?}"
            ),
        }
    }
    let content = &inputs[3].1;
    assert!(deflates_to(
        GZIP9,
        content,
        &deflate_bytes(GZIP9, content).unwrap()
    ));
}

/// Deterministic positions spread over `0..len`.
fn positions(len: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % len as u64) as usize
        })
        .collect()
}

/// `payload` with single bits flipped at `flips` spread positions and at both ends, and
/// (`resized`) cut short and lengthened.
fn damaged(payload: &[u8], flips: usize, resized: bool) -> Vec<(String, Vec<u8>)> {
    let mut variants = Vec::new();
    let bits = payload.len() * 8;
    // Near both ends, and every bit of the stream's last byte (end-of-block code, padding).
    let ends = [3, 90, bits - 20].into_iter().chain(bits - 72..bits - 64);
    for bit in positions(bits, flips, 11).into_iter().chain(ends) {
        let mut p = payload.to_vec();
        p[bit / 8] ^= 1 << (bit % 8);
        variants.push((format!("bit {bit} flipped"), p));
    }
    if resized {
        for cut in [1, 8, 9, 500, payload.len() / 2] {
            variants.push((
                format!("{cut} bytes cut"),
                payload[..payload.len() - cut].to_vec(),
            ));
        }
        let mut longer = payload.to_vec();
        longer.push(0);
        variants.push(("a byte appended".into(), longer));
    }
    variants
}

#[test]
fn damaged_payloads_are_refused_as_serially() {
    let mixed = mixed();
    let payload = deflate_bytes(GZIP9, &mixed).unwrap();
    let mut parallel_paths = 0;
    for (how, p) in damaged(&payload, 12, true) {
        let c = agreed(GZIP9, &mixed, &p, &how);
        assert!(!c.matches, "{how}");
        parallel_paths += usize::from(matches!(c.path, Path::Parallel(_)));
    }
    // Most flips leave a valid deflate stream: then the restarted streams decide.
    assert!(parallel_paths >= 6, "{parallel_paths}");
    let image = ext4_image();
    let payload = deflate_bytes(GZIP9, &image).unwrap();
    for (how, p) in damaged(&payload, 3, false) {
        assert!(!agreed(GZIP9, &image, &p, &format!("ext4 image, {how}")).matches);
    }
}

/// The bits of `payload`'s last deflate byte (before the 8-byte trailer) that decoding
/// ignores: the padding after the final block.
fn padding_bits(payload: &[u8], content: &[u8]) -> Vec<usize> {
    let byte = payload.len() - 9;
    (0..8)
        .map(|i| byte * 8 + i)
        .filter(|&bit| {
            let mut p = payload.to_vec();
            p[bit / 8] ^= 1 << (bit % 8);
            let mut out = Vec::new();
            let decoded = codec::zlib::inflater(Container::Gzip, &p[..], false)
                .read_to_end(&mut out)
                .is_ok();
            decoded && out == content
        })
        .collect()
}

#[test]
fn padding_bits_are_compared() {
    let mut found = 0;
    for seed in 0..4 {
        let content = prose(seed, 1_000_000 + seed as usize);
        let payload = deflate_bytes(GZIP9, &content).unwrap();
        for bit in padding_bits(&payload, &content) {
            let mut p = payload.clone();
            p[bit / 8] ^= 1 << (bit % 8);
            let c = agreed(
                GZIP9,
                &content,
                &p,
                &format!("seed {seed}, padding bit {bit}"),
            );
            assert!(!c.matches, "{c:?}");
            found += usize::from(matches!(c.path, Path::Parallel(_)));
        }
    }
    assert!(found >= 4, "{found}");
}

#[test]
fn payloads_of_other_levels_are_refused() {
    let content = mixed();
    let own = deflate_bytes(GZIP9, &content).unwrap();
    let mut refused = 0;
    for level in [4, 5, 6, 7, 8] {
        let params = DeflateParams {
            container: Container::Gzip,
            level,
        };
        let mut payload = deflate_bytes(params, &content).unwrap();
        let c = agreed(params, &content, &payload, &format!("level {level}"));
        assert!(c.matches && matches!(c.path, Path::Parallel(_)), "{c:?}");
        // The same stream claimed as level 9 (its header says so too): refused by the chunks,
        // unless the level makes level 9's bytes for this content (level 8 does).
        payload[8] = 2;
        let c = agreed(GZIP9, &content, &payload, &format!("level {level} as 9"));
        assert_eq!(c.matches, payload == own, "level {level}");
        assert!(matches!(c.path, Path::Parallel(_)), "level {level}: {c:?}");
        refused += usize::from(!c.matches);
    }
    assert!(refused >= 3);
    // zlib's fast levels have no lazy matcher: serial.
    for level in [1, 2, 3] {
        let params = DeflateParams {
            container: Container::Gzip,
            level,
        };
        let payload = deflate_bytes(params, &content).unwrap();
        let c = agreed(params, &content, &payload, &format!("level {level}"));
        assert_eq!((c.matches, c.path), (true, Path::Serial(Fallback::Level)));
    }
}

#[test]
fn other_containers_are_checked_in_parallel_too() {
    let content = mixed();
    for container in [Container::Raw, Container::Zlib] {
        let params = DeflateParams {
            container,
            level: 9,
        };
        let mut payload = deflate_bytes(params, &content).unwrap();
        let c = agreed(params, &content, &payload, &format!("{container:?}"));
        assert!(c.matches && matches!(c.path, Path::Parallel(_)), "{c:?}");
        let last = payload.len() - 1;
        payload[last] ^= 0x10;
        assert!(
            !agreed(
                params,
                &content,
                &payload,
                &format!("{container:?} damaged")
            )
            .matches
        );
    }
}

/// A gzip member as codec::zlib frames it, whose raw stream had a `flush` after `at` bytes.
fn with_flush(content: &[u8], at: usize, flush: i32) -> Vec<u8> {
    extern "C" fn alloc(_: z::voidpf, items: z::uInt, size: z::uInt) -> z::voidpf {
        unsafe { libc::calloc(items as libc::size_t, size as libc::size_t) }
    }
    extern "C" fn free(_: z::voidpf, p: z::voidpf) {
        unsafe { libc::free(p) }
    }
    let mut strm = Box::new(z::z_stream {
        next_in: std::ptr::null_mut(),
        avail_in: 0,
        total_in: 0,
        next_out: std::ptr::null_mut(),
        avail_out: 0,
        total_out: 0,
        msg: std::ptr::null_mut(),
        state: std::ptr::null_mut(),
        zalloc: alloc,
        zfree: free,
        opaque: std::ptr::null_mut(),
        data_type: 0,
        adler: 0,
        reserved: 0,
    });
    let size = std::mem::size_of::<z::z_stream>() as i32;
    let ret = unsafe {
        z::deflateInit2_(
            strm.as_mut(),
            9,
            z::Z_DEFLATED,
            -15,
            9,
            0,
            z::zlibVersion(),
            size,
        )
    };
    assert_eq!(ret, z::Z_OK);
    let mut out = deflate_bytes(GZIP9, b"").unwrap()[..10].to_vec();
    let mut buf = vec![0u8; content.len() + (1 << 16)];
    for (piece, f) in [(&content[..at], flush), (&content[at..], z::Z_FINISH)] {
        strm.next_in = piece.as_ptr() as *mut u8;
        strm.avail_in = piece.len() as u32;
        strm.next_out = buf.as_mut_ptr();
        strm.avail_out = buf.len() as u32;
        let ret = unsafe { z::deflate(strm.as_mut(), f) };
        assert!(ret == z::Z_OK || ret == z::Z_STREAM_END);
        out.extend_from_slice(&buf[..buf.len() - strm.avail_out as usize]);
    }
    unsafe { z::deflateEnd(strm.as_mut()) };
    out.extend_from_slice(&crc32fast::hash(content).to_le_bytes());
    out.extend_from_slice(&(content.len() as u32).to_le_bytes());
    out
}

#[test]
fn a_forced_flush_is_refused() {
    let content = mixed();
    let own = deflate_bytes(GZIP9, &content).unwrap();
    for (at, flush) in [
        (content.len() / 2, z::Z_SYNC_FLUSH),
        (1_234_567, z::Z_SYNC_FLUSH),
        (content.len() / 3, z::Z_FULL_FLUSH),
        (0, z::Z_SYNC_FLUSH),
    ] {
        let payload = with_flush(&content, at, flush);
        assert_ne!(payload, own);
        let c = agreed(GZIP9, &content, &payload, &format!("flush {flush} at {at}"));
        assert!(!c.matches && matches!(c.path, Path::Parallel(_)), "{c:?}");
    }
    // The helper itself makes codec::zlib's bytes without the flush.
    assert_eq!(with_flush(&content, 0, z::Z_NO_FLUSH), own);
}

#[test]
fn wrong_trailers_and_headers_are_refused() {
    let content = prose(9, 1_000_000);
    let payload = deflate_bytes(GZIP9, &content).unwrap();
    let n = payload.len();
    for at in [n - 8, n - 5, n - 4, n - 1, 3, 4, 9] {
        let mut p = payload.clone();
        p[at] ^= 0x01;
        let c = agreed(GZIP9, &content, &p, &format!("byte {at}"));
        assert_eq!((c.matches, c.path), (false, Path::Frame));
    }
    // The same deflate stream for another content: only the trailer tells.
    let mut other = content.clone();
    other[500_000] ^= 0x20;
    assert!(!agreed(GZIP9, &other, &payload, "other content").matches);
}

#[test]
fn a_large_content_takes_the_parallel_path() {
    let mut content = Vec::new();
    while content.len() < 24 << 20 {
        content.extend_from_slice(&prose(content.len() as u64, 3 << 20));
        content.extend_from_slice(&zero_runs(1 << 20));
        content.extend_from_slice(&noise(content.len() as u64, 200_000));
    }
    let payload = deflate_bytes(GZIP9, &content).unwrap();
    let c = check(
        GZIP9,
        &content,
        &payload,
        &Options::default(),
        &AtomicBool::new(false),
    );
    assert!(
        c.matches && matches!(c.path, Path::Parallel(n) if n >= 2),
        "{c:?}"
    );
}

#[test]
fn a_raised_stop_flag_stops() {
    let content = mixed();
    let payload = deflate_bytes(GZIP9, &content).unwrap();
    let stop = AtomicBool::new(true);
    for options in [
        small_chunks(),
        Options {
            serial_only: true,
            ..small_chunks()
        },
    ] {
        let c = check(GZIP9, &content, &payload, &options, &stop);
        assert!(c.stopped && !c.matches, "{c:?}");
    }
}

/// A content of random pieces: noise, text, zero runs, repeats of earlier bytes.
fn pieces() -> impl Strategy<Value = Vec<u8>> {
    let piece = (0u8..4, any::<u64>(), 1usize..200_000);
    proptest::collection::vec(piece, 1..12).prop_map(|pieces| {
        let mut data = Vec::new();
        for (kind, seed, len) in pieces {
            match kind {
                0 => data.extend_from_slice(&noise(seed, len / 4)),
                1 => data.extend_from_slice(&prose(seed, len)),
                2 => data.extend_from_slice(&zero_runs(len)),
                _ if !data.is_empty() => {
                    let from = seed as usize % data.len();
                    let take = len.min(data.len() - from);
                    data.extend_from_within(from..from + take);
                }
                _ => {}
            }
        }
        data
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn parallel_and_serial_agree(
        content in pieces(),
        min_chunk in 1u64..300_000,
        flip in any::<u64>(),
    ) {
        let payload = deflate_bytes(GZIP9, &content).unwrap();
        let options = Options { min_chunk, ..small_chunks() };
        let c = check(GZIP9, &content, &payload, &options, &AtomicBool::new(false));
        prop_assert!(c.matches, "{:?}", c);
        let mut damaged = payload.clone();
        let bit = (flip % (payload.len() as u64 * 8)) as usize;
        damaged[bit / 8] ^= 1 << (bit % 8);
        let c = check(GZIP9, &content, &damaged, &options, &AtomicBool::new(false));
        prop_assert_eq!(c.matches, serial(GZIP9, &content, &damaged));
    }
}
