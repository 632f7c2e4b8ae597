//! Damaged deltas: every truncation and a flip of every byte of small deltas must end in an
//! error or in the exact target (a flip in ignored bytes such as the name table), never in a
//! wrong output, a panic or a hang.

mod common;

use std::sync::Arc;

use codec::zlib::{deflate_bytes, Container, DeflateParams};
use common::{apply_bytes, noise, text};
use delta::apply::ApplyOptions;
use delta::writer::{DeltaBuilder, Profile};
use delta::{read_archive, Item, ReadLimits, Recipe};

/// A small delta that uses a remainder, inline assets, bspatch, zlib both ways, zeros and
/// chains, with its source and target.
fn sample() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let item = Item::of_bytes;
    let source = text(1, 3000);
    let old = &source[500..2500];
    let mut new = old.to_vec();
    new[100..104].copy_from_slice(b"EDIT");
    let patch = codec::bsdiff::diff(old, &new).unwrap();
    let gz = deflate_bytes(DeflateParams::GZIP_PROFILE, &source[..1000]).unwrap();
    let packed = deflate_bytes(
        DeflateParams {
            container: Container::Raw,
            level: 9,
        },
        &source[1000..1600],
    )
    .unwrap();
    let assets: Vec<u8> = [patch.clone(), packed.clone()].concat();
    let literal = noise(2, 40);
    let target: Vec<u8> = [
        new.clone(),
        gz.clone(),
        vec![0u8; 300],
        literal.clone(),
        source[1000..1600].to_vec(),
    ]
    .concat();

    let mut b = DeltaBuilder::new(item(&target), item(&source), Profile::Gzip);
    b.set_inline_assets(Arc::new(assets.clone())).unwrap();
    let slice = |b: &mut DeltaBuilder, whole: &[u8], offset: usize, len: usize| {
        let part = item(&whole[offset..offset + len]);
        b.add_recipe(
            part,
            Recipe::Slice {
                offset: offset as u64,
                whole: item(whole),
            },
        )
        .unwrap();
        part
    };
    let patch_item = slice(&mut b, &assets, 0, patch.len());
    let packed_item = slice(&mut b, &assets, patch.len(), packed.len());
    let old_item = slice(&mut b, &source, 500, 2000);
    let head = slice(&mut b, &source, 0, 1000);
    b.add_recipe(
        item(&new),
        Recipe::BspatchDecompression {
            patch: patch_item,
            old: old_item,
        },
    )
    .unwrap();
    b.add_recipe(
        item(&gz),
        Recipe::ZlibCompression {
            container: Container::Gzip,
            level: 9,
            uncompressed: head,
        },
    )
    .unwrap();
    b.add_recipe(
        item(&source[1000..1600]),
        Recipe::ZlibDecompression {
            container: Container::Raw,
            compressed: packed_item,
        },
    )
    .unwrap();
    b.add_recipe(item(&[0u8; 300]), Recipe::AllZeros).unwrap();
    let rem = b.set_remainder(&mut &literal[..]).unwrap();
    b.add_recipe(
        item(&target),
        Recipe::Chain(vec![
            item(&new),
            item(&gz),
            item(&[0u8; 300]),
            rem,
            item(&source[1000..1600]),
        ]),
    )
    .unwrap();
    (source, b.to_bytes().unwrap(), target)
}

fn hammer(name: &str, source: &[u8], delta: &[u8], target: &[u8]) {
    let options = ApplyOptions::default();
    let (out, _) = apply_bytes(source, delta, &options).expect("the intact delta applies");
    assert!(out == target, "{name}: intact delta");
    // Every position of the structure (the first 2 KiB holds header and cookbook of these
    // deltas); inside large blobs every 13th byte keeps the run time reasonable.
    let positions: Vec<usize> = (0..delta.len())
        .filter(|&i| i < 2048 || i % 13 == 0)
        .collect();
    let mut accepted_truncations = 0;
    for &len in &positions {
        if let Ok((out, _)) = apply_bytes(source, &delta[..len], &options) {
            // Only possible if the cut removed nothing the applier reads.
            assert!(
                out == target,
                "{name}: truncation at {len} gave a wrong output"
            );
            accepted_truncations += 1;
        }
    }
    assert_eq!(
        accepted_truncations, 0,
        "{name}: the nested count is the last field"
    );
    let mut accepted_flips = 0;
    for &i in &positions {
        for mask in [0x01u8, 0x80] {
            let mut bad = delta.to_vec();
            bad[i] ^= mask;
            // Reading alone must not panic either.
            let _ = read_archive(&bad, &ReadLimits::default());
            if let Ok((out, _)) = apply_bytes(source, &bad, &options) {
                assert!(
                    out == target,
                    "{name}: flip {mask:#x} at {i} gave a wrong output"
                );
                accepted_flips += 1;
            }
        }
    }
    eprintln!(
        "{name}: {} bytes; {} of {} flips tried still apply correctly (ignored bytes), the rest are errors",
        delta.len(),
        accepted_flips,
        positions.len() * 2
    );
}

#[test]
fn hand_built_delta_survives_truncation_and_flips() {
    let (source, delta, target) = sample();
    hammer("sample", &source, &delta, &target);
}

#[test]
fn reference_deltas_survive_truncation_and_flips() {
    let Some(dir) = shared_fixtures::adu_vectors() else {
        return;
    };
    for case in [
        "03_bspatch_slice",
        "06_remainder_inline_slices",
        "07_nested_archive",
    ] {
        let c = dir.join(case);
        let read = |f: &str| std::fs::read(c.join(f)).expect("vector file");
        hammer(case, &read("source"), &read("delta.diff"), &read("target"));
    }
}
