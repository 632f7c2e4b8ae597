//! The interoperability vectors written and applied by ADU's reference implementation
//! (`shared/adu-vectors`, beside the repository): every positive case must rebuild its target
//! exactly, every negative case must be refused without leaving an output.
//!
//! The vectors are not part of the repository. When the folder is absent the tests say so on one
//! line and skip, unless `DIFFGEN_REQUIRE_SHARED` is set (CI), see the `shared-fixtures` crate.

use std::fs;
use std::path::{Path, PathBuf};

use delta::apply::{apply, ApplyError, ApplyOptions};
use delta::writer::{DeltaBuilder, Profile};
use delta::{read_path, ReadError, ReadLimits, RecipeError};

fn vectors_dir() -> Option<PathBuf> {
    shared_fixtures::adu_vectors()
}

/// Case folders whose name does not contain `_neg_`, sorted.
fn cases(dir: &Path, negative: bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .expect("vectors folder is readable")
        .map(|e| e.expect("folder entry").path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.contains("_neg_") == negative
        })
        .collect();
    out.sort();
    out
}

/// (sha256 hex, length) from `target.sha256`.
fn expected(case: &Path) -> (String, u64) {
    let text = fs::read_to_string(case.join("target.sha256")).expect("target.sha256");
    let mut parts = text.split_whitespace();
    let hash = parts.next().expect("hash").to_string();
    let len = parts
        .next()
        .expect("length")
        .parse()
        .expect("numeric length");
    (hash, len)
}

#[test]
fn every_positive_vector_rebuilds_its_target() {
    let Some(dir) = vectors_dir() else { return };
    let cases = cases(&dir, false);
    assert!(
        cases.len() >= 13,
        "expected the 13 positive cases, found {}",
        cases.len()
    );
    let work = tempfile::tempdir().expect("temp dir");
    for case in cases {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let out = work.path().join(format!("{name}.out"));
        let options = ApplyOptions {
            temp_dir: Some(work.path().to_path_buf()),
            ..ApplyOptions::default()
        };
        let report = apply(
            &case.join("source"),
            &case.join("delta.diff"),
            &out,
            &options,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (hash, len) = expected(&case);
        let bytes = fs::read(&out).expect("output exists");
        assert_eq!(bytes.len() as u64, len, "{name}: length");
        assert_eq!(
            delta::Item::of_bytes(&bytes).hash().map(|h| h.hex()),
            Some(hash),
            "{name}"
        );
        if case.join("target").exists() {
            assert!(
                bytes == fs::read(case.join("target")).expect("target"),
                "{name}: bytes"
            );
        }
        assert_eq!(report.target.length(), len);
        // The dry-run plan predicts the temp disk use exactly.
        let (archive, _) = read_path(&case.join("delta.diff"), &ReadLimits::default()).unwrap();
        let needs = delta::apply::requirements(&archive).expect("plans");
        assert_eq!(
            needs.spill_bytes, report.spilled_bytes,
            "{name}: spill prediction"
        );
        assert_eq!(
            needs.spilled_items, report.spilled_items,
            "{name}: spill prediction"
        );
        eprintln!("{name}: ok ({report:?})");
    }
}

#[test]
fn negative_vectors_are_refused_while_loading_and_leave_no_output() {
    let Some(dir) = vectors_dir() else { return };
    let work = tempfile::tempdir().expect("temp dir");

    let case = dir.join("09a_neg_inline_assets_hash");
    let out = work.path().join("09a.out");
    let err = apply(
        &case.join("source"),
        &case.join("delta.diff"),
        &out,
        &ApplyOptions::default(),
    )
    .expect_err("09a must fail");
    assert!(
        matches!(&err, ApplyError::Delta(e) if matches!(**e, ReadError::BlobMismatch {
            what: "inline assets",
            ..
        })),
        "09a: {err}"
    );
    eprintln!("09a: {err}");
    assert!(!out.exists());

    // ADU's id-6 recipe carries no numbers: diffgen's zstd_compression needs three, so the
    // recipe is refused at load with the reason.
    let case = dir.join("09b_neg_recipe_id_6_zstd_compression");
    let out = work.path().join("09b.out");
    let err = apply(
        &case.join("source"),
        &case.join("delta.diff"),
        &out,
        &ApplyOptions::default(),
    )
    .expect_err("09b must fail");
    match &err {
        ApplyError::Delta(e) if matches!(**e, ReadError::Recipe { .. }) => {
            let ReadError::Recipe {
                offset,
                source: RecipeError::NumberCount { recipe, .. },
            } = &**e
            else {
                panic!("09b: unexpected error {err}")
            };
            assert_eq!(*offset, 336, "09b: the recipe's byte offset");
            assert_eq!(recipe.id(), 6);
        }
        other => panic!("09b: unexpected error {other}"),
    }
    eprintln!("09b: {err}");
    assert!(!out.exists());
    let leftovers: Vec<_> = fs::read_dir(work.path()).expect("dir").collect();
    assert!(leftovers.is_empty(), "no partial files: {leftovers:?}");
}

#[test]
fn writer_reproduces_every_reference_delta_byte_for_byte() {
    let Some(dir) = vectors_dir() else { return };
    for case in cases(&dir, false) {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let path = case.join("delta.diff");
        let (archive, file) = read_path(&path, &ReadLimits::default()).expect("reads");
        let builder =
            DeltaBuilder::from_archive(&archive, std::sync::Arc::new(file), Profile::Gzip)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        let written = builder.to_bytes().expect("writes");
        let original = fs::read(&path).expect("delta");
        assert!(written == original, "{name}: re-serialized delta differs");
    }
}

/// (name, result, numbers, ingredients) with items as "length:sha256".
type RecipeKey = (String, String, Vec<u64>, Vec<String>);

fn dump_item(v: &serde_json::Value) -> String {
    format!(
        "{}:{}",
        v["Length"],
        v["Hashes"]["Sha256"]["value"].as_str().unwrap_or("")
    )
}

#[test]
fn inspection_agrees_with_the_reference_dumpdiff() {
    let Some(dir) = vectors_dir() else { return };
    for case in cases(&dir, false) {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let text = fs::read_to_string(case.join("dumpdiff.txt")).expect("dumpdiff.txt");
        let dump: serde_json::Value = serde_json::from_str(&text).expect("dumpdiff is JSON");
        let (archive, _) = read_path(&case.join("delta.diff"), &ReadLimits::default()).unwrap();
        let ours = delta::inspect::inspect(&archive);
        let item = |i: &delta::inspect::ItemInfo| {
            format!("{}:{}", i.length, i.hash.clone().unwrap_or_default())
        };
        assert_eq!(item(&ours.target), dump_item(&dump["TargetItem"]), "{name}");
        assert_eq!(item(&ours.source), dump_item(&dump["SourceItem"]), "{name}");
        let mut theirs: Vec<RecipeKey> = dump["Recipes"]
            .as_array()
            .expect("Recipes")
            .iter()
            .map(|r| {
                (
                    r["Name"].as_str().unwrap_or("").to_string(),
                    dump_item(&r["Result"]),
                    r["NumberIngredients"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|n| n.as_u64()).collect())
                        .unwrap_or_default(),
                    r["ItemIngredients"]
                        .as_array()
                        .map(|a| a.iter().map(dump_item).collect())
                        .unwrap_or_default(),
                )
            })
            .collect();
        let mut mine: Vec<RecipeKey> = ours
            .recipe_graph
            .iter()
            .map(|r| {
                (
                    r.recipe_type.clone(),
                    item(&r.result),
                    r.numbers.clone(),
                    r.ingredients.iter().map(item).collect(),
                )
            })
            .collect();
        theirs.sort();
        mine.sort();
        assert_eq!(mine, theirs, "{name}: recipes differ from dumpdiff");
        for (label, blob) in [
            ("inline_assets", &ours.inline_assets),
            ("remainder.compressed", &ours.remainder_compressed),
        ] {
            let listed = dump["Pantry"]
                .as_array()
                .and_then(|p| p.iter().find(|e| e["Names"][0] == label).map(dump_item));
            assert_eq!(blob.as_ref().map(item), listed, "{name}: {label}");
        }
        let text = delta::inspect::render_text(&ours, true);
        assert!(text.contains("target:"), "{name}");
    }
}
