//! Hand-built deltas for every recipe type, applied to known outputs; the writer's refusals;
//! round trips through the reader; the applier's checks and resource bounds.

mod common;

use std::sync::Arc;

use codec::zlib::{deflate_bytes, Container, DeflateParams};
use codec::zstd::ZstdParams;
use common::{apply_bytes, check_with_adu, noise, text};
use delta::apply::{ApplyError, ApplyOptions, KnownItem};
use delta::writer::{DeltaBuilder, Profile, WriteError};
use delta::{read_archive, Item, ReadLimits, Recipe, RecipeError};

fn item(data: &[u8]) -> Item {
    Item::of_bytes(data)
}

/// Adds `slice(offset)` of `whole` making `part`, returns the part's item.
fn slice(b: &mut DeltaBuilder, whole: &[u8], offset: usize, len: usize) -> Item {
    let part = item(&whole[offset..offset + len]);
    b.add_recipe(
        part,
        Recipe::Slice {
            offset: offset as u64,
            whole: item(whole),
        },
    )
    .expect("slice recipe");
    part
}

fn check(source: &[u8], b: &DeltaBuilder, expected: &[u8]) -> delta::Report {
    let bytes = b.to_bytes().expect("delta writes");
    // Every written delta reads back to the same archive and re-serializes identically.
    let archive = read_archive(&bytes, &ReadLimits::default()).expect("delta reads back");
    let again = DeltaBuilder::from_archive(&archive, Arc::new(bytes.clone()), b.profile())
        .expect("rebuilds")
        .to_bytes()
        .expect("rewrites");
    assert!(again == bytes, "round trip changed the bytes");
    let (out, report) = apply_bytes(source, &bytes, &ApplyOptions::default())
        .unwrap_or_else(|e| panic!("apply failed: {e}"));
    assert!(out == expected, "output differs");
    check_with_adu(source, &bytes, expected);
    report
}

#[test]
fn all_zeros_and_chains() {
    let source = noise(1, 5000);
    let target: Vec<u8> = [vec![0u8; 700], source.clone(), vec![0u8; 3000]].concat();
    let mut b = DeltaBuilder::new(item(&target), item(&source), Profile::Gzip);
    let (z1, z2) = (item(&[0u8; 700]), item(&vec![0u8; 3000]));
    b.add_recipe(z1, Recipe::AllZeros).unwrap();
    b.add_recipe(z2, Recipe::AllZeros).unwrap();
    let head = item(&target[..5700]);
    b.add_recipe(head, Recipe::Chain(vec![z1, item(&source)]))
        .unwrap();
    b.add_recipe(item(&target), Recipe::Chain(vec![head, z2]))
        .unwrap();
    let report = check(&source, &b, &target);
    assert_eq!(
        report.spilled_items, 0,
        "all random-access, nothing spilled"
    );
}

/// A delta can declare any target length in a few bytes; the applier refuses what the device
/// does not accept or cannot store before it reads the source or writes anything.
#[test]
fn target_length_is_checked_against_the_limit_and_the_free_space() {
    let source = noise(1, 5000);
    let zeros = |len: u64| {
        let target = Item::sha256(len, [7u8; 32]);
        let mut b = DeltaBuilder::new(target, item(&source), Profile::Gzip);
        b.add_recipe(target, Recipe::AllZeros).unwrap();
        b.to_bytes().unwrap()
    };
    let limited = ApplyOptions {
        max_target_len: Some(4096),
        ..ApplyOptions::default()
    };
    let err = apply_bytes(&source, &zeros(4097), &limited).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the delta's target is 4097 bytes, more than the 4096-byte limit"
    );
    // At the limit the check passes (and the made target then fails the hash check).
    let err = apply_bytes(&source, &zeros(4096), &limited).unwrap_err();
    assert!(matches!(err, ApplyError::TargetMismatch { .. }), "{err}");

    // 2^60 bytes fit on no filesystem this test runs on.
    let err = apply_bytes(&source, &zeros(1 << 60), &ApplyOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("the delta's target is 1152921504606846976 bytes, but only "),
        "{msg}"
    );
    assert!(msg.contains(" bytes are free for "), "{msg}");
}

#[test]
fn slices_of_the_source_reordered() {
    let source = noise(2, 40_000);
    let target: Vec<u8> = [
        &source[30_000..35_000],
        &source[0..8000],
        &source[30_000..35_000],
    ]
    .concat();
    let mut b = DeltaBuilder::new(item(&target), item(&source), Profile::Gzip);
    let p1 = slice(&mut b, &source, 30_000, 5000);
    let p2 = slice(&mut b, &source, 0, 8000);
    b.add_recipe(item(&target), Recipe::Chain(vec![p1, p2, p1]))
        .unwrap();
    check(&source, &b, &target);
}

#[test]
fn bspatch_with_patch_in_inline_assets_and_old_from_source() {
    let source = text(3, 60_000);
    let old = &source[10_000..50_000];
    let mut new = old.to_vec();
    new.splice(5000..5000, b"a brand new line\n".iter().copied());
    new[20_000..20_010].copy_from_slice(b"0123456789");
    let patch = codec::bsdiff::diff(old, &new).unwrap();
    let filler = noise(4, 100);
    let assets: Vec<u8> = [filler.clone(), patch.clone()].concat();

    let mut b = DeltaBuilder::new(item(&new), item(&source), Profile::Gzip);
    b.set_inline_assets(Arc::new(assets.clone())).unwrap();
    let patch_item = slice(&mut b, &assets, filler.len(), patch.len());
    let old_item = slice(&mut b, &source, 10_000, 40_000);
    b.add_recipe(
        item(&new),
        Recipe::BspatchDecompression {
            patch: patch_item,
            old: old_item,
        },
    )
    .unwrap();
    let report = check(&source, &b, &new);
    assert_eq!(report.recipes_run[3], 1);
    assert!(report.peak_reserved_memory >= delta::apply::BSPATCH_MEMORY);
}

#[test]
fn bspatch_of_a_decompressed_source_spills_the_old_file() {
    // old = inflate(gzip member in the source): sequential, so it is spilled once and checked.
    let image = text(5, 200_000);
    let gz = deflate_bytes(DeflateParams::GZIP_PROFILE, &image).unwrap();
    let source: Vec<u8> = [b"HEADER".to_vec(), gz.clone()].concat();
    let mut new_image = image.clone();
    new_image[100_000..100_004].copy_from_slice(b"EDIT");
    let patch = codec::bsdiff::diff(&image, &new_image).unwrap();

    let mut b = DeltaBuilder::new(item(&new_image), item(&source), Profile::Gzip);
    b.set_inline_assets(Arc::new(patch.clone())).unwrap();
    let gz_item = slice(&mut b, &source, 6, gz.len());
    b.add_recipe(
        item(&image),
        Recipe::ZlibDecompression {
            container: Container::Gzip,
            compressed: gz_item,
        },
    )
    .unwrap();
    b.add_recipe(
        item(&new_image),
        Recipe::BspatchDecompression {
            patch: item(&patch),
            old: item(&image),
        },
    )
    .unwrap();
    let report = check(&source, &b, &new_image);
    assert_eq!(report.spilled_items, 1);
    assert_eq!(report.spilled_bytes, image.len() as u64);

    // The same with the uncompressed image given as a known item: nothing is spilled.
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("image");
    let mut partition = image.clone();
    partition.extend_from_slice(&[0xAA; 4096]); // a partition larger than the image
    std::fs::write(&known, &partition).unwrap();
    let options = ApplyOptions {
        known_items: vec![KnownItem {
            path: known.clone(),
            length: Some(image.len() as u64),
        }],
        ..ApplyOptions::default()
    };
    let (out, report) = apply_bytes(&source, &b.to_bytes().unwrap(), &options).unwrap();
    assert!(out == new_image);
    assert_eq!(report.spilled_items, 0);
    assert_eq!(report.known_items.len(), 1);
    assert!(report.known_items[0].used(), "{}", report.known_items[0]);

    // A known item with the right length but other content is hashed and simply not used.
    std::fs::write(&known, vec![1u8; image.len()]).unwrap();
    let options = ApplyOptions {
        known_items: vec![KnownItem {
            path: known,
            length: None,
        }],
        ..ApplyOptions::default()
    };
    let (out, report) = apply_bytes(&source, &b.to_bytes().unwrap(), &options).unwrap();
    assert!(out == new_image);
    assert!(!report.known_items[0].used(), "{}", report.known_items[0]);
}

#[test]
fn zlib_compression_recreates_gzip_members() {
    let content = text(6, 100_000);
    let source: Vec<u8> = [noise(7, 300), content.clone()].concat();
    let mut target = b"prefix".to_vec();
    let gz = deflate_bytes(DeflateParams::GZIP_PROFILE, &content).unwrap();
    target.extend_from_slice(&gz);
    let raw6 = deflate_bytes(
        DeflateParams {
            container: Container::Raw,
            level: -1,
        },
        &content,
    )
    .unwrap();
    target.extend_from_slice(&raw6);

    let mut b = DeltaBuilder::new(item(&target), item(&source), Profile::Gzip);
    let content_item = slice(&mut b, &source, 300, content.len());
    b.add_recipe(
        item(&gz),
        Recipe::ZlibCompression {
            container: Container::Gzip,
            level: 9,
            uncompressed: content_item,
        },
    )
    .unwrap();
    b.add_recipe(
        item(&raw6),
        Recipe::ZlibCompression {
            container: Container::Raw,
            level: -1,
            uncompressed: content_item,
        },
    )
    .unwrap();
    let remainder = b.set_remainder(&mut &b"prefix"[..]).unwrap();
    assert_eq!(remainder, item(b"prefix"));
    b.add_recipe(
        item(&target),
        Recipe::Chain(vec![remainder, item(&gz), item(&raw6)]),
    )
    .unwrap();
    check(&source, &b, &target);
}

#[test]
fn zlib_decompression_of_all_containers() {
    let content = text(8, 50_000);
    for container in [Container::Raw, Container::Gzip, Container::Zlib] {
        let packed = deflate_bytes(
            DeflateParams {
                container,
                level: 6,
            },
            &content,
        )
        .unwrap();
        let mut b = DeltaBuilder::new(item(&content), Item::EMPTY, Profile::Gzip);
        b.set_inline_assets(Arc::new(packed.clone())).unwrap();
        b.add_recipe(
            item(&content),
            Recipe::ZlibDecompression {
                container,
                compressed: item(&packed),
            },
        )
        .unwrap();
        check(b"unused source", &b, &content);
    }
}

#[test]
fn remainder_pieces_are_slices_of_the_inflated_remainder() {
    let source = noise(9, 1000);
    let pieces = [text(10, 3000), noise(11, 500), text(12, 7000)];
    let remainder: Vec<u8> = pieces.concat();
    let target: Vec<u8> = [&pieces[2][..], &source[..], &pieces[0][..], &pieces[1][..]].concat();
    let mut b = DeltaBuilder::new(item(&target), item(&source), Profile::Gzip);
    let rem = b.set_remainder(&mut &remainder[..]).unwrap();
    assert_eq!(rem, item(&remainder));
    let p0 = slice(&mut b, &remainder, 0, 3000);
    let p1 = slice(&mut b, &remainder, 3000, 500);
    let p2 = slice(&mut b, &remainder, 3500, 7000);
    b.add_recipe(
        item(&target),
        Recipe::Chain(vec![p2, item(&source), p0, p1]),
    )
    .unwrap();
    let report = check(&source, &b, &target);
    // The inflated remainder is sequential, sliced three times: spilled once, reused.
    assert_eq!(report.spilled_items, 1);
}

fn zstd_delta(basis: &[u8], target: &[u8]) -> Vec<u8> {
    use zstd::stream::raw::{Encoder, InBuffer, Operation, OutBuffer};
    let mut enc = Encoder::with_ref_prefix(19, basis).unwrap();
    let mut frame = vec![0u8; target.len() + 1024];
    let mut input = InBuffer::around(target);
    let mut output = OutBuffer::around(&mut frame);
    enc.run(&mut input, &mut output).unwrap();
    enc.finish(&mut output, true).unwrap();
    let n = output.pos();
    frame.truncate(n);
    frame
}

#[test]
fn zstd_decompression_with_and_without_basis() {
    let source = text(13, 120_000);
    let basis = &source[20_000..100_000];
    let mut new = basis.to_vec();
    new.splice(40_000..40_000, b"zstd sees this insertion".iter().copied());
    let delta_frame = zstd_delta(basis, &new);
    let plain =
        codec::zstd::compress_bytes(ZstdParams::profile(3), b"plain frame content").unwrap();
    let assets: Vec<u8> = [delta_frame.clone(), plain.clone()].concat();
    let plain_out = b"plain frame content".to_vec();
    let target: Vec<u8> = [new.clone(), plain_out.clone()].concat();

    let mut b = DeltaBuilder::new(item(&target), item(&source), Profile::Gzip);
    b.set_inline_assets(Arc::new(assets.clone())).unwrap();
    let frame_item = slice(&mut b, &assets, 0, delta_frame.len());
    let plain_item = slice(&mut b, &assets, delta_frame.len(), plain.len());
    let basis_item = slice(&mut b, &source, 20_000, 80_000);
    b.add_recipe(
        item(&new),
        Recipe::ZstdDecompression {
            compressed: frame_item,
            basis: Some(basis_item),
        },
    )
    .unwrap();
    b.add_recipe(
        item(&plain_out),
        Recipe::ZstdDecompression {
            compressed: plain_item,
            basis: None,
        },
    )
    .unwrap();
    b.add_recipe(
        item(&target),
        Recipe::Chain(vec![item(&new), item(&plain_out)]),
    )
    .unwrap();
    let report = check(&source, &b, &target);
    assert_eq!(report.recipes_run[7], 2);

    // A budget smaller than basis + window refuses with the numbers, before decoding.
    let options = ApplyOptions {
        memory_budget: 100_000,
        ..ApplyOptions::default()
    };
    let err = apply_bytes(&source, &b.to_bytes().unwrap(), &options).unwrap_err();
    assert!(matches!(err, ApplyError::MemoryLimit { .. }), "{err}");
    assert!(err.to_string().contains("100000"), "{err}");
}

/// A zstd frame with a 2^27-byte window and no content size: what `zstd --long=27` writes to a
/// pipe.
fn wide_window_frame(content: &[u8]) -> Vec<u8> {
    use zstd::stream::raw::CParameter;
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.set_parameter(CParameter::WindowLog(27)).unwrap();
    enc.include_contentsize(false).unwrap();
    std::io::Write::write_all(&mut enc, content).unwrap();
    enc.finish().unwrap()
}

/// Fuzz finding 2 (docs/robustness.md): the memory for a `zstd_decompression` is reserved from
/// the first frame's header; a later frame must not need a larger window.
#[test]
fn a_later_zstd_frame_may_not_outgrow_the_first_frames_reservation() {
    let source = b"src\n".to_vec();
    let small = codec::zstd::compress_bytes(ZstdParams::profile(3), b"hello").unwrap();
    let zeros = vec![0u8; 1000];
    let build = |second: &[u8], out: &[u8]| {
        let assets: Vec<u8> = [small.clone(), second.to_vec()].concat();
        let target: Vec<u8> = [b"hello".to_vec(), out.to_vec()].concat();
        let mut b = DeltaBuilder::new(item(&target), item(&source), Profile::Gzip);
        b.set_inline_assets(Arc::new(assets.clone())).unwrap();
        let frames = item(&assets);
        b.add_recipe(
            item(&target),
            Recipe::ZstdDecompression {
                compressed: frames,
                basis: None,
            },
        )
        .unwrap();
        (b, target)
    };

    // Two frames of the same kind decode as one stream.
    let same = codec::zstd::compress_bytes(ZstdParams::profile(3), b"hello").unwrap();
    let (b, target) = build(&same, b"hello");
    check(&source, &b, &target);

    // A second frame asking for a 128 MiB window is refused, naming both sizes.
    let (b, _) = build(&wide_window_frame(&zeros), &zeros);
    let err = apply_bytes(&source, &b.to_bytes().unwrap(), &ApplyOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("zstd frame 2 needs a 134217728-byte window"),
        "{msg}"
    );
    assert!(msg.contains("reserved for the first frame"), "{msg}");

    // The input the fuzzing campaign kept: source length, source, delta.
    let kept = include_bytes!("../fuzz/regressions/delta_apply/zstd-second-frame-window.bin");
    let n = u32::from_le_bytes(kept[..4].try_into().unwrap()) as usize;
    let rest = &kept[4..];
    let (kept_source, kept_delta) = rest.split_at(n % (rest.len() + 1));
    let err = apply_bytes(kept_source, kept_delta, &ApplyOptions::default()).unwrap_err();
    assert!(err.to_string().contains("zstd frame 2 needs"), "{err}");
}

#[test]
fn zstd_compression_is_an_extension_of_the_extended_profile() {
    let content = text(14, 300_000);
    let source: Vec<u8> = [noise(15, 64), content.clone()].concat();
    let params = ZstdParams::profile(3);
    let frame = codec::zstd::compress_bytes(params, &content).unwrap();
    let target: Vec<u8> = [b"cpio-ish header".to_vec(), frame.clone()].concat();

    let recipe = Recipe::ZstdCompression {
        params,
        uncompressed: item(&content),
    };
    let mut gzip = DeltaBuilder::new(item(&target), item(&source), Profile::Gzip);
    assert!(matches!(
        gzip.add_recipe(item(&frame), recipe.clone()),
        Err(WriteError::ProfileForbids { .. })
    ));

    let mut b = DeltaBuilder::new(item(&target), item(&source), Profile::Extended);
    slice(&mut b, &source, 64, content.len());
    b.add_recipe(item(&frame), recipe).unwrap();
    let header = b.set_remainder(&mut &b"cpio-ish header"[..]).unwrap();
    b.add_recipe(item(&target), Recipe::Chain(vec![header, item(&frame)]))
        .unwrap();
    let bytes = b.to_bytes().unwrap();
    let archive = read_archive(&bytes, &ReadLimits::default()).unwrap();
    assert!(archive.needs_diffgen_applier());
    let report = check(&source, &b, &target);
    assert_eq!(report.recipes_run[6], 1);
    // The frame is streamed into the chain, not spilled to a temp file first.
    assert_eq!(report.spilled_items, 0);

    // A frame recorded with another zstd version cannot be reproduced: a clear error.
    let mut other = params;
    other.version += 1;
    let mut b = DeltaBuilder::new(item(&target), item(&source), Profile::Extended);
    slice(&mut b, &source, 64, content.len());
    b.add_recipe(
        item(&frame),
        Recipe::ZstdCompression {
            params: other,
            uncompressed: item(&content),
        },
    )
    .unwrap();
    let header = b.set_remainder(&mut &b"cpio-ish header"[..]).unwrap();
    b.add_recipe(item(&target), Recipe::Chain(vec![header, item(&frame)]))
        .unwrap();
    let err = apply_bytes(&source, &b.to_bytes().unwrap(), &ApplyOptions::default()).unwrap_err();
    assert!(err.to_string().contains("zstd"), "{err}");
}

/// A gzip member as GNU gzip writes it (which zlib does not re-create) is made on the device
/// from its text: a diffgen extension, refused in the gzip profile.
#[test]
fn gnu_gzip_compression_is_an_extension_of_the_extended_profile() {
    let content = codec::test_inputs::prose(24, 200_000);
    let source: Vec<u8> = [noise(25, 64), content.clone()].concat();
    let member = codec::gnu_gzip::gzip_bytes(9, &content).unwrap();
    assert!(
        member
            != deflate_bytes(
                DeflateParams {
                    container: Container::Gzip,
                    level: 9
                },
                &content
            )
            .unwrap(),
        "this text must be one that zlib compresses differently"
    );
    let target: Vec<u8> = [b"tar-ish header".to_vec(), member.clone()].concat();
    let recipe = Recipe::GnuGzipCompression {
        level: 9,
        uncompressed: item(&content),
    };
    let mut gzip = DeltaBuilder::new(item(&target), item(&source), Profile::Gzip);
    assert!(matches!(
        gzip.add_recipe(item(&member), recipe.clone()),
        Err(WriteError::ProfileForbids { .. })
    ));

    let mut b = DeltaBuilder::new(item(&target), item(&source), Profile::Extended);
    slice(&mut b, &source, 64, content.len());
    b.add_recipe(item(&member), recipe).unwrap();
    let header = b.set_remainder(&mut &b"tar-ish header"[..]).unwrap();
    b.add_recipe(item(&target), Recipe::Chain(vec![header, item(&member)]))
        .unwrap();
    let bytes = b.to_bytes().unwrap();
    let archive = read_archive(&bytes, &ReadLimits::default()).unwrap();
    assert!(archive.needs_diffgen_applier());
    let shown = delta::inspect::render_text(&delta::inspect::inspect(&archive), false);
    assert!(shown.contains("uses gnu_gzip_compression"), "{shown}");
    let report = check(&source, &b, &target);
    assert_eq!(report.recipes_run[8], 1);
    assert_eq!(report.spilled_items, 0);
}

/// New executables are compressed with their branch targets made absolute; the device undoes
/// the filter as it streams (`bcj_x86_decode`, a diffgen extension).
#[test]
fn bcj_x86_decode_undoes_the_branch_filter() {
    let mut code = Vec::new();
    for i in 0..20_000u32 {
        code.push(0xE8);
        let next = code.len() as i64 + 4;
        code.extend_from_slice(&((0x4_0000 + i64::from(i % 7) * 64 - next) as i32).to_le_bytes());
        code.extend_from_slice(&[0x48, 0x89, 0xC7]);
    }
    let filtered = codec::bcj::encode(&code);
    assert_ne!(filtered, code);
    let frame = codec::zstd::compress_with_prefix(&filtered, &[], 19, 24).unwrap();
    let recipe = Recipe::BcjX86Decode {
        filtered: item(&filtered),
    };
    let mut gzip = DeltaBuilder::new(item(&code), Item::EMPTY, Profile::Gzip);
    assert!(matches!(
        gzip.add_recipe(item(&code), recipe.clone()),
        Err(WriteError::ProfileForbids { .. })
    ));
    let mut b = DeltaBuilder::new(item(&code), Item::EMPTY, Profile::Extended);
    b.set_inline_assets(Arc::new(frame.clone())).unwrap();
    b.add_recipe(
        item(&filtered),
        Recipe::ZstdDecompression {
            compressed: item(&frame),
            basis: None,
        },
    )
    .unwrap();
    b.add_recipe(item(&code), recipe).unwrap();
    let report = check(b"unused source", &b, &code);
    assert_eq!(report.recipes_run[9], 1);
    // The filter keeps the length: a recipe claiming otherwise is refused.
    let mut bad = DeltaBuilder::new(item(&code), Item::EMPTY, Profile::Extended);
    assert!(matches!(
        bad.add_recipe(
            item(&code[1..]),
            Recipe::BcjX86Decode {
                filtered: item(&filtered)
            }
        ),
        Err(WriteError::Recipe {
            source: RecipeError::LengthChange { .. },
            ..
        })
    ));
}

/// A rebuilt program is made from its old version by an executable patch, whose prediction
/// re-targets the moved calls (`exe_bspatch`, a diffgen extension); the patch's control
/// triples are reserved from the memory budget before they are read.
#[test]
fn exe_bspatch_rebuilds_a_program_whose_calls_moved() {
    use codec::exepatch::{CodeRange, Isa, Layout, Load};
    // aarch64 code: BLs to a function past a gap that grows by 64 bytes.
    let program = |gap: usize| -> Vec<u8> {
        let mut code = Vec::new();
        for i in 0..8_000usize {
            let words = (8 * 8_000 + gap - 8 * i) / 4;
            code.extend_from_slice(&(0x9400_0000 | words as u32).to_le_bytes());
            code.extend_from_slice(&(0xAA00_0000 | (i as u32 * 0x9E37) & 0xFF_FFFF).to_le_bytes());
        }
        code.extend(std::iter::repeat_n(0x1F, gap));
        code.extend_from_slice(&0xD65F_03C0u32.to_le_bytes());
        code
    };
    let (old, new) = (program(64), program(128));
    let load = |len: usize| Load {
        offset: 0,
        vaddr: 0x1_0000,
        file_size: len as u64,
        mem_size: len as u64,
    };
    let layout = Layout {
        old_loads: vec![load(old.len())],
        new_loads: vec![load(new.len())],
        code: vec![CodeRange {
            isa: Isa::Aarch64,
            offset: 0,
            len: old.len() as u64,
            vaddr: 0x1_0000,
        }],
        stack: Vec::new(),
        frames: Vec::new(),
    };
    let patch = codec::exepatch::diff(&old, &new, &layout).unwrap();
    let recipe = Recipe::ExeBspatch {
        patch: item(&patch),
        old: item(&old),
    };
    let mut gzip = DeltaBuilder::new(item(&new), item(&old), Profile::Gzip);
    assert!(matches!(
        gzip.add_recipe(item(&new), recipe.clone()),
        Err(WriteError::ProfileForbids { .. })
    ));
    let mut b = DeltaBuilder::new(item(&new), item(&old), Profile::Extended);
    b.set_inline_assets(Arc::new(patch.clone())).unwrap();
    b.add_recipe(item(&new), recipe).unwrap();
    let report = check(&old, &b, &new);
    assert_eq!(report.recipes_run[10], 1);
    let bytes = b.to_bytes().unwrap();
    let archive = read_archive(&bytes, &ReadLimits::default()).unwrap();
    assert!(archive.needs_diffgen_applier());
    // A budget too small for the patch's controls and window is refused before reading them.
    let small = ApplyOptions {
        memory_budget: 1 << 20,
        ..ApplyOptions::default()
    };
    let err = apply_bytes(&old, &bytes, &small).unwrap_err();
    assert!(matches!(err, ApplyError::MemoryLimit { .. }), "{err}");
    // A patch applied to another old file is an error, not a wrong result.
    let other = program(0);
    let mut wrong = DeltaBuilder::new(item(&new), item(&other), Profile::Extended);
    wrong.set_inline_assets(Arc::new(patch.clone())).unwrap();
    wrong
        .add_recipe(
            item(&new),
            Recipe::ExeBspatch {
                patch: item(&patch),
                old: item(&other),
            },
        )
        .unwrap();
    assert!(apply_bytes(&other, &wrong.to_bytes().unwrap(), &ApplyOptions::default()).is_err());
}

/// Compressors reading from compressors are all open at once; each takes its share of the
/// memory budget, so a delta nesting a hundred of them is refused, not allowed to grow.
#[test]
fn nested_compressors_count_against_the_memory_budget() {
    let source = text(40, 2000);
    let mut layers = vec![source.clone()];
    for _ in 0..120 {
        let next = codec::gnu_gzip::gzip_bytes(9, layers.last().unwrap()).unwrap();
        layers.push(next);
    }
    // A delta making layer `n` from the source through `n` nested compressions.
    let nested = |n: usize| {
        let mut b = DeltaBuilder::new(item(&layers[n]), item(&source), Profile::Extended);
        for pair in layers[..=n].windows(2) {
            b.add_recipe(
                item(&pair[1]),
                Recipe::GnuGzipCompression {
                    level: 9,
                    uncompressed: item(&pair[0]),
                },
            )
            .unwrap();
        }
        b
    };
    let bytes = nested(120).to_bytes().unwrap();
    let err = apply_bytes(&source, &bytes, &ApplyOptions::default()).unwrap_err();
    assert!(matches!(err, ApplyError::MemoryLimit { .. }), "{err}");
    // Ten of them fit.
    let b = nested(10);
    check(&source, &b, &layers[10]);
}

#[test]
fn nested_archives_contribute_pantry_and_cookbook() {
    let source = noise(16, 30_000);
    let asset = text(17, 5000);
    let target: Vec<u8> = [asset.clone(), source[1..9001].to_vec()].concat();
    let mut inner = DeltaBuilder::new(item(&asset), Item::EMPTY, Profile::Gzip);
    inner.set_inline_assets(Arc::new(asset.clone())).unwrap();
    let from_source = slice(&mut inner, &source, 1, 9000);
    let mut outer = DeltaBuilder::new(item(&target), item(&source), Profile::Gzip);
    outer.add_nested(&inner).unwrap();
    outer
        .add_recipe(
            item(&target),
            Recipe::Chain(vec![item(&asset), from_source]),
        )
        .unwrap();
    check(&source, &outer, &target);
}

#[test]
fn writer_refuses_what_appliers_reject() {
    let a = item(b"aaaa");
    let whole = item(b"aaaabbbb");
    let mut b = DeltaBuilder::new(whole, Item::EMPTY, Profile::Gzip);
    let refuse = |b: &mut DeltaBuilder, result, recipe| {
        let e = b.add_recipe(result, recipe).expect_err("must be refused");
        eprintln!("refused: {e}");
        e
    };
    // self-reference (ADU 33001)
    assert!(matches!(
        refuse(&mut b, whole, Recipe::Slice { offset: 0, whole }),
        WriteError::Recipe {
            source: RecipeError::SelfReferential { .. },
            ..
        }
    ));
    // zero-length ingredient
    refuse(&mut b, a, Recipe::Chain(vec![a, Item::EMPTY]));
    // empty result
    refuse(&mut b, Item::EMPTY, Recipe::AllZeros);
    // slice out of range, chain that does not add up
    refuse(&mut b, a, Recipe::Slice { offset: 5, whole });
    refuse(&mut b, whole, Recipe::Chain(vec![a]));
    // level 0 is not reproducible
    refuse(
        &mut b,
        a,
        Recipe::ZlibCompression {
            container: Container::Gzip,
            level: 0,
            uncompressed: whole,
        },
    );
    // an empty target
    let empty = DeltaBuilder::new(Item::EMPTY, Item::EMPTY, Profile::Gzip);
    assert!(matches!(empty.to_bytes(), Err(WriteError::EmptyTarget)));

    // zstd frames whose window a device cannot hold (only checkable when the frame is in the
    // inline assets): a hand-made frame header declaring a 2^30 window.
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, (30 - 10) << 3];
    frame.extend_from_slice(&[0u8; 16]);
    let out = item(b"whatever");
    let mut b = DeltaBuilder::new(out, Item::EMPTY, Profile::Gzip);
    b.set_inline_assets(Arc::new(frame.clone())).unwrap();
    b.add_recipe(
        out,
        Recipe::ZstdDecompression {
            compressed: item(&frame),
            basis: None,
        },
    )
    .unwrap();
    assert!(matches!(b.to_bytes(), Err(WriteError::ZstdFrame { .. })));
}

#[test]
fn wrong_source_names_what_is_missing() {
    let source = noise(18, 2000);
    let target = source[100..600].to_vec();
    let mut b = DeltaBuilder::new(item(&target), item(&source), Profile::Gzip);
    slice(&mut b, &source, 100, 500);
    let err = apply_bytes(
        &noise(19, 2000),
        &b.to_bytes().unwrap(),
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ApplyError::Unresolvable(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("made for source"), "{text}");
}

#[test]
fn a_target_that_comes_out_wrong_is_not_written() {
    // The recipe makes 500 zero bytes, but the target item claims other content of that
    // length: ADU's applier would write it and exit 0; this one refuses.
    let claimed = noise(20, 500);
    let zeros = vec![0u8; 500];
    let mut b = DeltaBuilder::new(item(&claimed), Item::EMPTY, Profile::Gzip);
    // The writer cannot know the bytes; build the lie by hand: all_zeros "makes" the target.
    b.add_recipe(item(&claimed), Recipe::AllZeros).unwrap();
    let err = apply_bytes(b"src", &b.to_bytes().unwrap(), &ApplyOptions::default()).unwrap_err();
    match err {
        ApplyError::TargetMismatch { expected, actual } => {
            assert_eq!(expected, item(&claimed));
            assert_eq!(actual, item(&zeros));
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn spilled_items_are_verified() {
    // A slice of an inflated stream whose declared item is a lie: the target comes out wrong,
    // and the spilled intermediate is named as the cause.
    let content = text(21, 10_000);
    let packed = deflate_bytes(
        DeflateParams {
            container: Container::Raw,
            level: 9,
        },
        &content,
    )
    .unwrap();
    let fake = noise(22, content.len());
    let target = fake[..100].to_vec();
    let mut b = DeltaBuilder::new(item(&target), Item::EMPTY, Profile::Gzip);
    b.set_inline_assets(Arc::new(packed.clone())).unwrap();
    b.add_recipe(
        item(&fake),
        Recipe::ZlibDecompression {
            container: Container::Raw,
            compressed: item(&packed),
        },
    )
    .unwrap();
    slice(&mut b, &fake, 0, 100);
    let err = apply_bytes(b"src", &b.to_bytes().unwrap(), &ApplyOptions::default()).unwrap_err();
    assert!(matches!(err, ApplyError::ItemMismatch { .. }), "{err}");
}

#[cfg(feature = "serde")]
#[test]
fn inspection_serializes_to_json() {
    let source = noise(30, 100);
    let target = source[10..60].to_vec();
    let mut b = DeltaBuilder::new(item(&target), item(&source), Profile::Gzip);
    slice(&mut b, &source, 10, 50);
    let archive = read_archive(&b.to_bytes().unwrap(), &ReadLimits::default()).unwrap();
    let json = serde_json::to_value(delta::inspect::inspect(&archive)).unwrap();
    assert_eq!(json["target"]["length"], 50);
    assert_eq!(json["recipe_graph"][0]["type"], "slice");
    assert_eq!(json["recipe_graph"][0]["numbers"][0], 10);
}

#[test]
fn cookbook_size_is_bounded_by_limits_and_budget() {
    let source = noise(40, 4000);
    let target = source[..3000].to_vec();
    let mut b = DeltaBuilder::new(item(&target), item(&source), Profile::Gzip);
    let parts: Vec<Item> = (0..30)
        .map(|k| slice(&mut b, &source, k * 100, 100))
        .collect();
    b.add_recipe(item(&target), Recipe::Chain(parts)).unwrap();
    let bytes = b.to_bytes().unwrap();
    // 31 sets, 31 recipes, 60 ingredients
    let limits = ReadLimits {
        max_entries: 100,
        ..ReadLimits::default()
    };
    let err = read_archive(&bytes, &limits).unwrap_err();
    assert!(matches!(err, delta::ReadError::TooLarge { .. }), "{err}");
    let options = ApplyOptions {
        memory_budget: 10_000,
        ..ApplyOptions::default()
    };
    let err = apply_bytes(&source, &bytes, &options).unwrap_err();
    assert!(
        matches!(&err, ApplyError::MemoryLimit { what, .. } if what.contains("cookbook")),
        "{err}"
    );
    assert!(apply_bytes(&source, &bytes, &ApplyOptions::default()).is_ok());
}

#[test]
fn shared_subgraphs_are_built_once() {
    // A_i = chain(A_{i-1}, A_{i-1}): a 2^40-byte virtual item from 41 recipes. The target is a
    // slice deep inside it; building every path separately would take 2^40 steps.
    let level = |i: u32| Item::sha256(1u64 << i, [i as u8 + 1; 32]);
    let target = vec![0u8; 100];
    let mut b = DeltaBuilder::new(item(&target), Item::EMPTY, Profile::Gzip);
    b.add_recipe(level(0), Recipe::AllZeros).unwrap();
    for i in 1..=40 {
        b.add_recipe(level(i), Recipe::Chain(vec![level(i - 1), level(i - 1)]))
            .unwrap();
    }
    b.add_recipe(
        item(&target),
        Recipe::Slice {
            offset: (1u64 << 39) - 50,
            whole: level(40),
        },
    )
    .unwrap();
    let start = std::time::Instant::now();
    let (out, _) = apply_bytes(b"src", &b.to_bytes().unwrap(), &ApplyOptions::default()).unwrap();
    assert_eq!(out, target);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}
