//! The device applier under an address-space limit (`ulimit -v`), as on a small device: a
//! delta with a zstd basis and a bsdiff patch over a multi-megabyte source applies within
//! 64 MiB of virtual memory, and hostile deltas that ask for more are refused with one error
//! line, never a crash or an allocation failure.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use delta::{DeltaBuilder, Item, Profile, Recipe};

/// Virtual memory for the applier, in KiB: the default 48 MiB budget plus code and buffers.
const LIMIT_KIB: u32 = 64 * 1024;

fn apply_limited(source: &Path, delta: &Path, out: &Path) -> Output {
    let script = format!(
        "ulimit -v {LIMIT_KIB} && exec \"$0\" --temp-dir \"$(dirname \"$3\")\" \"$1\" \"$2\" \"$3\""
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_diffgen-apply"))
        .arg(source)
        .arg(delta)
        .arg(out)
        .output()
        .unwrap()
}

fn noise(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn applies_within_64_mib_of_address_space_and_refuses_more() {
    let dir = tempfile::tempdir().unwrap();
    // 12 MiB source: a 6 MiB "image" and a 6 MiB "binary".
    let image = noise(6 << 20, 1);
    let binary = noise(6 << 20, 2);
    let source: Vec<u8> = [image.clone(), binary.clone()].concat();
    let mut new_image = image.clone();
    new_image[1_000_000..1_000_100].copy_from_slice(&[7u8; 100]);
    let mut new_binary = binary.clone();
    for i in (0..new_binary.len()).step_by(4096) {
        new_binary[i] = new_binary[i].wrapping_add(1);
    }
    let target: Vec<u8> = [new_image.clone(), new_binary.clone()].concat();

    let s = Item::of_bytes(&source);
    let t = Item::of_bytes(&target);
    let old_image = Item::of_bytes(&image);
    let old_binary = Item::of_bytes(&binary);
    let frame = codec::zstd::compress_with_prefix(&new_image, &image, 3, 23).unwrap();
    let patch = codec::bsdiff::diff(&binary, &new_binary).unwrap();
    let assets: Vec<u8> = [frame.clone(), patch.clone()].concat();

    let build = |frame_basis: Item| {
        let mut b = DeltaBuilder::new(t, s, Profile::Gzip);
        let assets_item = b
            .set_inline_assets(std::sync::Arc::new(assets.clone()))
            .unwrap();
        let (f, p) = (Item::of_bytes(&frame), Item::of_bytes(&patch));
        b.add_recipe(
            f,
            Recipe::Slice {
                offset: 0,
                whole: assets_item,
            },
        )
        .unwrap();
        b.add_recipe(
            p,
            Recipe::Slice {
                offset: frame.len() as u64,
                whole: assets_item,
            },
        )
        .unwrap();
        b.add_recipe(
            old_image,
            Recipe::Slice {
                offset: 0,
                whole: s,
            },
        )
        .unwrap();
        b.add_recipe(
            old_binary,
            Recipe::Slice {
                offset: image.len() as u64,
                whole: s,
            },
        )
        .unwrap();
        let (ni, nb) = (Item::of_bytes(&new_image), Item::of_bytes(&new_binary));
        b.add_recipe(
            ni,
            Recipe::ZstdDecompression {
                compressed: f,
                basis: Some(frame_basis),
            },
        )
        .unwrap();
        b.add_recipe(
            nb,
            Recipe::BspatchDecompression {
                patch: p,
                old: old_binary,
            },
        )
        .unwrap();
        b.add_recipe(t, Recipe::Chain(vec![ni, nb])).unwrap();
        b.to_bytes().unwrap()
    };
    let src = dir.path().join("source.bin");
    fs::write(&src, &source).unwrap();

    // A 6 MiB basis, an 8 MiB window, a bsdiff patch with its three bzip2 streams.
    let good = dir.path().join("good.diff");
    fs::write(&good, build(old_image)).unwrap();
    let out = dir.path().join("out.bin");
    let o = apply_limited(&src, &good, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(fs::read(&out).unwrap() == target, "rebuilt target differs");

    // A hostile delta: the same frame with an all-zeros "basis" of 1 GiB. The memory budget
    // refuses it before anything is allocated, with one error line and no output.
    let huge = Item::sha256(1 << 30, [9u8; 32]);
    let mut b = DeltaBuilder::new(t, s, Profile::Gzip);
    let assets_item = b
        .set_inline_assets(std::sync::Arc::new(frame.clone()))
        .unwrap();
    b.add_recipe(huge, Recipe::AllZeros).unwrap();
    b.add_recipe(
        t,
        Recipe::ZstdDecompression {
            compressed: assets_item,
            basis: Some(huge),
        },
    )
    .unwrap();
    let hostile = dir.path().join("hostile.diff");
    fs::write(&hostile, b.to_bytes().unwrap()).unwrap();
    let out2 = dir.path().join("out2.bin");
    let o = apply_limited(&src, &hostile, &out2);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("Error: ") && err.contains("budget"),
        "{err}"
    );
    assert!(!out2.exists());
}
