//! Our deflate output must equal the reference zlib's byte for byte for the parameters ADU's
//! `zlib_compression` recipe uses (memLevel 9, windowBits 15, default strategy). The reference
//! is the system zlib as Python's `zlib` module links it (Debian's libz, what ADU devices use).

use std::io::Write;
use std::process::{Command, Stdio};

use codec::zlib::{deflate_bytes, Container, DeflateParams};

/// Compresses `data` with the system zlib through Python.
fn reference(data: &[u8], level: i32, wbits: i32) -> Vec<u8> {
    let script = format!(
        "import sys, zlib\n\
         c = zlib.compressobj({level}, zlib.DEFLATED, {wbits}, 9)\n\
         d = sys.stdin.buffer.read()\n\
         sys.stdout.buffer.write(c.compress(d) + c.flush())\n"
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is required for this test: run scripts/install-deps.sh");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    let text: Vec<u8> = (0..200_000)
        .flat_map(|i: u32| format!("line {i}: the quick brown fox {}\n", i % 97).into_bytes())
        .take(2_000_000)
        .collect();
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let random: Vec<u8> = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut mixed = vec![0u8; 100_000];
    mixed.extend_from_slice(&random[..50_000]);
    mixed.extend_from_slice(&text[..150_000]);
    mixed.extend(std::iter::repeat_n(0xAAu8, 70_000));
    vec![
        ("empty", Vec::new()),
        ("one byte", vec![42]),
        ("text", text),
        ("random", random),
        ("mixed", mixed),
    ]
}

#[test]
fn deflate_equals_reference_zlib_for_every_container_and_level() {
    for (name, data) in inputs() {
        for (container, wbits) in [
            (Container::Gzip, 31),
            (Container::Raw, -15),
            (Container::Zlib, 15),
        ] {
            for level in [1, 6, 9, -1] {
                if container != Container::Gzip && level != 9 && name != "mixed" {
                    continue; // keep the run short: all levels on gzip, level 9 elsewhere
                }
                let ours = deflate_bytes(DeflateParams { container, level }, &data).unwrap();
                let theirs = reference(&data, level, wbits);
                assert!(
                    ours == theirs,
                    "{name}: {container:?} level {level}: {} bytes vs reference {} bytes (zlib {})",
                    ours.len(),
                    theirs.len(),
                    codec::zlib::zlib_version()
                );
            }
        }
    }
}
