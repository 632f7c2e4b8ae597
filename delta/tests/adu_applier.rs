//! What ADU's own applier (`../shared/tools/adu-reference`, `libadudiffapi.so` 3.0.0) does with
//! what diffgen writes, pinned so that docs/format.md §1 stays true: it rejects every delta
//! that uses one of diffgen's extensions when loading it (`dumpdiff` too, so ADU's tools cannot
//! even list such a delta), and it reads nested archives two deep with their own remainders.
//! The writer's gzip-profile guard keeps extensions out, nested archives included.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::sync::Arc;

use codec::zstd::ZstdParams;
use common::{apply_bytes, check_with_adu, noise, text};
use delta::apply::ApplyOptions;
use delta::writer::{DeltaBuilder, Profile, WriteError};
use delta::{Item, Recipe, RecipeType};

fn item(data: &[u8]) -> Item {
    Item::of_bytes(data)
}

/// A zstd-profile delta whose target is made by one `recipe` of type `t` from `content` (the
/// source), with the bytes it must rebuild.
fn extension_delta(t: RecipeType) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let content = match t {
        // Calls whose targets the x86 filter makes absolute.
        RecipeType::BcjX86Decode => codec::bcj::encode(&calls()),
        _ => text(41, 20_000),
    };
    let (target, recipe) = match t {
        RecipeType::ZstdCompression => {
            let params = ZstdParams::profile(3);
            let frame = codec::zstd::compress_bytes(params, &content).unwrap();
            let uncompressed = item(&content);
            (
                frame,
                Recipe::ZstdCompression {
                    params,
                    uncompressed,
                },
            )
        }
        RecipeType::GnuGzipCompression => {
            let member = codec::gnu_gzip::gzip_bytes(9, &content).unwrap();
            let uncompressed = item(&content);
            (
                member,
                Recipe::GnuGzipCompression {
                    level: 9,
                    uncompressed,
                },
            )
        }
        _ => {
            let decoded = codec::bcj::decode(&content);
            let filtered = item(&content);
            (decoded, Recipe::BcjX86Decode { filtered })
        }
    };
    let mut b = DeltaBuilder::new(item(&target), item(&content), Profile::Extended);
    b.add_recipe(item(&target), recipe).unwrap();
    let bytes = b.to_bytes().unwrap();
    let (out, _) = apply_bytes(&content, &bytes, &ApplyOptions::default()).unwrap();
    assert!(out == target, "diffgen's applier rebuilds the {t} delta");
    (content, bytes, target)
}

/// x86-64-like code: `call rel32` to a few functions from everywhere.
fn calls() -> Vec<u8> {
    let mut code = Vec::new();
    for i in 0..4000u32 {
        code.push(0xE8);
        let next = code.len() as i64 + 4;
        code.extend_from_slice(&((0x4_0000 + i64::from(i % 7) * 64 - next) as i32).to_le_bytes());
        code.extend_from_slice(&[0x48, 0x89, 0xC7]);
    }
    code
}

const SIGSEGV: i32 = 11;

fn killed_by_sigsegv(o: &Output) -> bool {
    // `timeout` passes the signal on by dying of it, or reports 128 + 11.
    o.status.signal() == Some(SIGSEGV) || o.status.code() == Some(128 + SIGSEGV)
}

#[test]
fn adus_tools_refuse_every_extension_when_loading() {
    let Some(adu) = shared_fixtures::adu_reference() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for t in [
        RecipeType::ZstdCompression,
        RecipeType::GnuGzipCompression,
        RecipeType::BcjX86Decode,
    ] {
        let (source, delta, _) = extension_delta(t);
        let (s, d, o) = (
            dir.path().join("source"),
            dir.path().join(format!("{}.diff", t.name())),
            dir.path().join("out"),
        );
        std::fs::write(&s, &source).unwrap();
        std::fs::write(&d, &delta).unwrap();
        let dump = adu.dumpdiff(&d);
        let apply = adu.applydiff(&s, &d, &o, None);
        let said = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();
        if t == RecipeType::ZstdCompression {
            // "Expection while loading diff. Code: 31702, Message: zstd_compression_recipe::
            // zstd_compression_recipe(): zstd_compression_recipe is no longer supported"
            for o in [&dump, &apply] {
                assert_eq!(o.status.code(), Some(1), "{t}: {}", said(o));
                assert!(
                    said(o).contains("Code: 31702")
                        && said(o).contains("zstd_compression_recipe is no longer supported"),
                    "{t}: {}",
                    said(o)
                );
            }
        } else {
            // Ids 8 and 9 index past ADU's table of recipe types: a null pointer.
            for o in [&dump, &apply] {
                assert!(killed_by_sigsegv(o), "{t}: {} {}", o.status, said(o));
                assert!(o.stdout.is_empty() || !said(o).contains("TargetItem"));
            }
        }
        assert!(!o.exists() || std::fs::metadata(&o).unwrap().len() == 0);
        let _ = std::fs::remove_file(&o);
    }
}

#[test]
fn the_gzip_profile_refuses_extensions_in_nested_archives() {
    let content = text(42, 5000);
    let params = ZstdParams::profile(3);
    let frame = codec::zstd::compress_bytes(params, &content).unwrap();
    let mut inner = DeltaBuilder::new(item(&frame), Item::EMPTY, Profile::Extended);
    inner
        .add_recipe(
            item(&frame),
            Recipe::ZstdCompression {
                params,
                uncompressed: item(&content),
            },
        )
        .unwrap();
    let mut outer = DeltaBuilder::new(item(&frame), item(&content), Profile::Gzip);
    let e = outer.add_nested(&inner).unwrap_err();
    assert!(
        matches!(
            e,
            WriteError::NestedProfileForbids {
                recipe: RecipeType::ZstdCompression
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("zstd_compression"), "{e}");
    // Two levels down as well: a zstd-profile middle archive that nests it.
    let mut middle = DeltaBuilder::new(item(&frame), Item::EMPTY, Profile::Extended);
    middle.add_nested(&inner).unwrap();
    assert!(outer.add_nested(&middle).is_err());
    assert!(middle.recipe_types().contains(&RecipeType::ZstdCompression));
    // The zstd profile nests it.
    let mut extended = DeltaBuilder::new(item(&frame), item(&content), Profile::Extended);
    extended.add_nested(&middle).unwrap();
    extended.to_bytes().unwrap();
}

/// Nested archives two deep, each with inline assets and a remainder of its own: diffgen's
/// applier and ADU's rebuild the same target.
#[test]
fn nested_archives_two_deep_apply_with_adus_applier() {
    let source = noise(43, 40_000);
    let (a, b, c) = (text(44, 3000), text(45, 4000), text(46, 5000));
    let inner_new = b"bytes only the innermost remainder holds".to_vec();
    let mut inner = DeltaBuilder::new(item(&c), Item::EMPTY, Profile::Gzip);
    inner.set_inline_assets(Arc::new(c.clone())).unwrap();
    let inner_rest = inner.set_remainder(&mut &inner_new[..]).unwrap();
    let mut middle = DeltaBuilder::new(item(&b), Item::EMPTY, Profile::Gzip);
    middle.set_inline_assets(Arc::new(b.clone())).unwrap();
    middle.add_nested(&inner).unwrap();
    let mut outer_target = [a.clone(), b, c, inner_new].concat();
    outer_target.extend_from_slice(&source[100..9000]);
    let mut outer = DeltaBuilder::new(item(&outer_target), item(&source), Profile::Gzip);
    let a_item = outer.set_remainder(&mut &a[..]).unwrap();
    outer.add_nested(&middle).unwrap();
    let from_source = item(&source[100..9000]);
    outer
        .add_recipe(
            from_source,
            Recipe::Slice {
                offset: 100,
                whole: item(&source),
            },
        )
        .unwrap();
    let parts = vec![
        a_item,
        item(&text(45, 4000)),
        item(&text(46, 5000)),
        inner_rest,
        from_source,
    ];
    outer
        .add_recipe(item(&outer_target), Recipe::Chain(parts))
        .unwrap();
    let bytes = outer.to_bytes().unwrap();
    let (out, _) = apply_bytes(&source, &bytes, &ApplyOptions::default()).unwrap();
    assert!(out == outer_target, "diffgen's applier");
    check_with_adu(&source, &bytes, &outer_target);
}
