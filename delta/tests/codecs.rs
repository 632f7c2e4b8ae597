//! Property tests of the codecs through the applier: zstd deltas against a raw-prefix basis,
//! plain zstd frames, diffgen's `zstd_compression` recipe, and bsdiff patches — random pairs
//! must always rebuild exactly, with ADU's applier too where the delta is for it.

mod common;

use std::sync::Arc;

use codec::zstd::ZstdParams;
use common::{apply_bytes, check_with_adu};
use delta::apply::ApplyOptions;
use delta::writer::{DeltaBuilder, Profile};
use delta::{Item, Recipe};
use proptest::prelude::*;

fn zstd_delta(basis: &[u8], target: &[u8], level: i32) -> Vec<u8> {
    use zstd::stream::raw::{Encoder, InBuffer, Operation, OutBuffer};
    let mut enc = Encoder::with_ref_prefix(level, basis).expect("encoder");
    let mut frame = vec![0u8; target.len() + 1024];
    let mut input = InBuffer::around(target);
    let mut output = OutBuffer::around(&mut frame);
    enc.run(&mut input, &mut output).expect("compress");
    enc.finish(&mut output, true).expect("finish");
    let n = output.pos();
    frame.truncate(n);
    frame
}

/// `new` derived from `old` by a few random edits.
fn mutate(old: &[u8], edits: &[(u16, u8, u8)]) -> Vec<u8> {
    let mut new = old.to_vec();
    for &(at, len, value) in edits {
        if new.is_empty() {
            new.push(value);
            continue;
        }
        let at = usize::from(at) % new.len();
        match value % 3 {
            0 => new
                .splice(at..at, vec![value; usize::from(len)])
                .for_each(drop),
            1 => {
                let end = (at + usize::from(len)).min(new.len());
                new.drain(at..end);
            }
            _ => new[at] = value,
        }
    }
    if new.is_empty() {
        new.push(1);
    }
    new
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn zstd_prefix_deltas_apply(old in proptest::collection::vec(any::<u8>(), 1..20_000),
                                edits in proptest::collection::vec((any::<u16>(), any::<u8>(), any::<u8>()), 0..8),
                                level in 1i32..=19) {
        let new = mutate(&old, &edits);
        prop_assume!(new != old);
        let frame = zstd_delta(&old, &new, level);
        let mut b = DeltaBuilder::new(Item::of_bytes(&new), Item::of_bytes(&old), Profile::Gzip);
        b.set_inline_assets(Arc::new(frame.clone())).unwrap();
        b.add_recipe(Item::of_bytes(&new), Recipe::ZstdDecompression {
            compressed: Item::of_bytes(&frame),
            basis: Some(Item::of_bytes(&old)),
        }).unwrap();
        let bytes = b.to_bytes().unwrap();
        let (out, _) = apply_bytes(&old, &bytes, &ApplyOptions::default()).unwrap();
        prop_assert_eq!(&out, &new);
        check_with_adu(&old, &bytes, &new);
    }

    #[test]
    fn zstd_compression_recipe_reproduces_frames(content in proptest::collection::vec(any::<u8>(), 1..50_000),
                                                 level in 1i32..=9, checksum in any::<bool>()) {
        let params = ZstdParams { checksum, ..ZstdParams::profile(level) };
        let frame = codec::zstd::compress_bytes(params, &content).unwrap();
        let mut b = DeltaBuilder::new(Item::of_bytes(&frame), Item::of_bytes(&content), Profile::Extended);
        b.add_recipe(Item::of_bytes(&frame), Recipe::ZstdCompression {
            params,
            uncompressed: Item::of_bytes(&content),
        }).unwrap();
        let (out, _) = apply_bytes(&content, &b.to_bytes().unwrap(), &ApplyOptions::default()).unwrap();
        prop_assert_eq!(out, frame);
    }

    #[test]
    fn bsdiff_patches_apply_through_the_applier(old in proptest::collection::vec(any::<u8>(), 1..20_000),
                                                edits in proptest::collection::vec((any::<u16>(), any::<u8>(), any::<u8>()), 0..8)) {
        let new = mutate(&old, &edits);
        prop_assume!(new != old);
        let patch = codec::bsdiff::diff(&old, &new).unwrap();
        let mut b = DeltaBuilder::new(Item::of_bytes(&new), Item::of_bytes(&old), Profile::Gzip);
        b.set_inline_assets(Arc::new(patch.clone())).unwrap();
        b.add_recipe(Item::of_bytes(&new), Recipe::BspatchDecompression {
            patch: Item::of_bytes(&patch),
            old: Item::of_bytes(&old),
        }).unwrap();
        let bytes = b.to_bytes().unwrap();
        let (out, _) = apply_bytes(&old, &bytes, &ApplyOptions::default()).unwrap();
        prop_assert_eq!(&out, &new);
        check_with_adu(&old, &bytes, &new);
    }
}
