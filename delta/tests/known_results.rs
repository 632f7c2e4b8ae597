//! Known results (`ApplyOptions::known_results`): a result whose recipe the caller checked
//! itself is read from its file instead of being made, but the recipe's ingredients are still
//! made and checked, and the target's hash still decides.

mod common;

use codec::zlib::{deflate_bytes, Container, DeflateParams};
use common::{noise, text};
use delta::apply::{apply, ApplyError, ApplyOptions};
use delta::writer::{DeltaBuilder, Profile};
use delta::{Item, KnownResult, Recipe, RecipeType};

/// A delta making `prefix + gzip(content)` from `noise + content`, where the content is the
/// source slice at `content_at` (300 is right).
fn gzip_delta(content_at: u64) -> (Vec<u8>, Vec<u8>, Vec<u8>, Item) {
    let content = text(6, 100_000);
    let source: Vec<u8> = [noise(7, 300), content.clone()].concat();
    let gz = deflate_bytes(DeflateParams::GZIP_PROFILE, &content).unwrap();
    let target = [b"prefix".to_vec(), gz.clone()].concat();
    let mut b = DeltaBuilder::new(
        Item::of_bytes(&target),
        Item::of_bytes(&source),
        Profile::Gzip,
    );
    let content_item = Item::of_bytes(&content);
    let whole = Item::of_bytes(&source);
    b.add_recipe(
        content_item,
        Recipe::Slice {
            offset: content_at,
            whole,
        },
    )
    .unwrap();
    b.add_recipe(
        Item::of_bytes(&gz),
        Recipe::ZlibCompression {
            container: Container::Gzip,
            level: 9,
            uncompressed: content_item,
        },
    )
    .unwrap();
    let remainder = b.set_remainder(&mut &b"prefix"[..]).unwrap();
    b.add_recipe(
        Item::of_bytes(&target),
        Recipe::Chain(vec![remainder, Item::of_bytes(&gz)]),
    )
    .unwrap();
    (source, b.to_bytes().unwrap(), target, content_item)
}

/// Applies with the compressed member known from `known_file` (at offset 6).
fn apply_known(
    source: &[u8],
    delta: &[u8],
    target: &[u8],
    known_file: &[u8],
) -> Result<(Vec<u8>, delta::Report), ApplyError> {
    let dir = tempfile::tempdir().unwrap();
    let [s, d, k, o] = ["source", "delta", "known", "out"].map(|n| dir.path().join(n));
    std::fs::write(&s, source).unwrap();
    std::fs::write(&d, delta).unwrap();
    std::fs::write(&k, known_file).unwrap();
    let options = ApplyOptions {
        temp_dir: Some(dir.path().to_path_buf()),
        known_results: vec![KnownResult {
            item: Item::of_bytes(&target[6..]),
            path: k,
            offset: 6,
        }],
        ..ApplyOptions::default()
    };
    let result = apply(&s, &d, &o, &options);
    match &result {
        Ok(_) => {}
        Err(_) => assert!(!o.exists(), "no output after an error"),
    }
    result.map(|report| (std::fs::read(&o).unwrap(), report))
}

#[test]
fn a_known_result_is_read_instead_of_made() {
    let (source, delta, target, _) = gzip_delta(300);
    let (out, report) = apply_known(&source, &delta, &target, &target).unwrap();
    assert!(out == target);
    let zlib = RecipeType::ZlibCompression.id() as usize;
    assert_eq!(report.recipes_run[zlib], 0, "the compression did not run");
}

#[test]
fn the_ingredients_of_a_known_result_are_still_checked() {
    // The delta makes the content from the wrong place: caught at the content, although the
    // compressed member is given.
    let (source, delta, target, content_item) = gzip_delta(299);
    match apply_known(&source, &delta, &target, &target) {
        Err(ApplyError::ItemMismatch { expected, .. }) => assert_eq!(expected, content_item),
        other => panic!("expected the content to mismatch, got {other:?}"),
    }
}

#[test]
fn a_wrong_known_result_fails_the_target_hash() {
    let (source, delta, target, _) = gzip_delta(300);
    let mut wrong = target.clone();
    let last = wrong.len() - 1;
    wrong[last] ^= 1;
    match apply_known(&source, &delta, &target, &wrong) {
        Err(ApplyError::TargetMismatch { .. }) => {}
        other => panic!("expected a target mismatch, got {other:?}"),
    }
}
