//! Known items (`ApplyOptions::known_items`): a partition larger than the image written at its
//! start is used through its prefix, and every known item that is not used is reported with
//! the reason (no length fits, the prefixes hash to something else, or the plan did not need
//! what matched).

mod common;

use codec::zlib::{deflate_bytes, DeflateParams};
use common::{apply_bytes, noise, text};
use delta::apply::{ApplyOptions, KnownItem, KnownItemOutcome};
use delta::writer::{DeltaBuilder, Profile};
use delta::{Item, Recipe};

/// An image, the source SWU-like file that holds it gzip'd, and a delta whose target is the
/// image's two halves swapped: the applier must read the decompressed image out of order, so
/// without a known item it spills the whole image to a temp file.
struct Case {
    image: Vec<u8>,
    source: Vec<u8>,
    delta: Vec<u8>,
    target: Vec<u8>,
}

const HEADER: &[u8] = b"SWU-HEADER";

fn case() -> Case {
    let image = [text(5, 600_000), noise(6, 448_576)].concat();
    let gz = deflate_bytes(DeflateParams::GZIP_PROFILE, &image).unwrap();
    let source = [HEADER.to_vec(), gz.clone()].concat();
    let half = image.len() / 2;
    let target = [&image[half..], &image[..half]].concat();

    let mut b = DeltaBuilder::new(
        Item::of_bytes(&target),
        Item::of_bytes(&source),
        Profile::Gzip,
    );
    let gz_item = Item::of_bytes(&gz);
    b.add_recipe(
        gz_item,
        Recipe::Slice {
            offset: HEADER.len() as u64,
            whole: Item::of_bytes(&source),
        },
    )
    .unwrap();
    let image_item = Item::of_bytes(&image);
    b.add_recipe(
        image_item,
        Recipe::ZlibDecompression {
            container: codec::zlib::Container::Gzip,
            compressed: gz_item,
        },
    )
    .unwrap();
    let mut parts = Vec::new();
    for (offset, len) in [(half, image.len() - half), (0, half)] {
        let part = Item::of_bytes(&image[offset..offset + len]);
        b.add_recipe(
            part,
            Recipe::Slice {
                offset: offset as u64,
                whole: image_item,
            },
        )
        .unwrap();
        parts.push(part);
    }
    b.add_recipe(Item::of_bytes(&target), Recipe::Chain(parts))
        .unwrap();
    Case {
        delta: b.to_bytes().unwrap(),
        image,
        source,
        target,
    }
}

/// Applies the case with `known` (file content, optional length) offered as a known item.
fn apply_with(c: &Case, known: &[u8], length: Option<u64>) -> delta::Report {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partition");
    std::fs::write(&path, known).unwrap();
    let options = ApplyOptions {
        known_items: vec![KnownItem { path, length }],
        ..ApplyOptions::default()
    };
    let (out, report) = apply_bytes(&c.source, &c.delta, &options).unwrap();
    assert!(out == c.target, "output differs");
    assert_eq!(report.known_items.len(), 1);
    eprintln!("{}", report.known_items[0]);
    report
}

/// A partition: `image` followed by `trailing` bytes of other data (an unused tail).
fn partition(image: &[u8], trailing: usize) -> Vec<u8> {
    [image.to_vec(), noise(99, trailing)].concat()
}

#[test]
fn without_a_known_item_the_image_is_spilled() {
    let c = case();
    let (_, report) = apply_bytes(&c.source, &c.delta, &ApplyOptions::default()).unwrap();
    assert_eq!(report.spilled_bytes, c.image.len() as u64);
    assert!(report.known_items.is_empty());
}

#[test]
fn a_partition_larger_than_its_image_is_used_through_its_prefix() {
    let c = case();
    let report = apply_with(&c, &partition(&c.image, 3 << 20), None);
    let k = &report.known_items[0];
    assert_eq!(k.size, c.image.len() as u64 + (3 << 20));
    // Two prefixes are items: the image's first half (a slice of the target) and the image.
    let half = c.image.len() / 2;
    assert_eq!(
        k.outcome,
        KnownItemOutcome::Used {
            items: vec![Item::of_bytes(&c.image[..half]), Item::of_bytes(&c.image)]
        }
    );
    // The longest prefix first.
    let text = k.to_string();
    let longest = format!("used, its first {} bytes are item", c.image.len());
    assert!(text.contains(&longest), "{text}");
    assert!(text.contains("; its first 524288 bytes are item 524288 bytes sha256:"));
    assert_eq!(
        report.spilled_bytes, 0,
        "the image is read from the partition"
    );
    assert_eq!(report.spilled_items, 0);
    assert_eq!(report.recipes_run[5], 0, "nothing is decompressed");
}

#[test]
fn a_partition_with_another_image_is_not_used_and_says_why() {
    let c = case();
    let mut other = c.image.clone();
    other[10] ^= 1;
    let known = partition(&other, 3 << 20);
    let report = apply_with(&c, &known, None);
    let k = &report.known_items[0];
    let KnownItemOutcome::NoMatch { tried, longest } = k.outcome else {
        panic!("expected NoMatch: {k}");
    };
    // Lengths of the delta's items up to the partition's size: the two halves, the image, the
    // gzip member and the source; the longest is the image.
    assert!(tried >= 3, "{k}");
    assert_eq!(longest, Item::of_bytes(&other));
    let text = k.to_string();
    assert!(
        text.contains("not used: no prefix is an item of the delta"),
        "{text}"
    );
    assert!(text.contains(&longest.hash().unwrap().hex()), "{text}");
    assert_eq!(report.spilled_bytes, c.image.len() as u64);
}

#[test]
fn a_known_item_shorter_than_every_item_is_not_hashed() {
    let c = case();
    let report = apply_with(&c, b"tiny", None);
    assert_eq!(
        report.known_items[0].outcome,
        KnownItemOutcome::NoLengthFits {
            limit: 4,
            exact: false
        }
    );
    assert!(report.known_items[0]
        .to_string()
        .contains("every item of the delta is longer than its 4 bytes"));
}

#[test]
fn an_exact_length_that_no_item_has_is_reported() {
    let c = case();
    let known = partition(&c.image, 4096);
    let report = apply_with(&c, &known, Some(c.image.len() as u64 + 1));
    assert_eq!(
        report.known_items[0].outcome,
        KnownItemOutcome::NoLengthFits {
            limit: c.image.len() as u64 + 1,
            exact: true
        }
    );
    // With the right length it is used.
    let report = apply_with(&c, &known, Some(c.image.len() as u64));
    assert!(report.known_items[0].used());
}

#[test]
fn a_match_the_plan_does_not_need_is_reported() {
    // The source itself (with a tail) matches the delta's source item, but the source file
    // given to the applier comes first in the pantry.
    let c = case();
    let report = apply_with(&c, &partition(&c.source, 1 << 20), None);
    let k = &report.known_items[0];
    assert_eq!(
        k.outcome,
        KnownItemOutcome::NotNeeded {
            matched: vec![Item::of_bytes(&c.source)]
        }
    );
    assert!(k.to_string().contains("the plan did not need it"), "{k}");
}
