//! Emitted manifests validate against ADU's official import manifest v5 JSON schema (read from
//! `../shared/schemas` when present), and manifests the schema rejects are refused by our own
//! checks before anything is written.

use std::collections::BTreeMap;

use manifest::{Delta, Error, FileInfo, ManifestSpec, UpdateId};
use serde_json::Value;

/// The official validator, or None (with a loud note) when the schemas are not present.
fn validator() -> Option<jsonschema::Validator> {
    let dir = shared_fixtures::find("schemas", "official-schema validation of manifests")?;
    let read = |name: &str| -> Option<Value> {
        let text = std::fs::read_to_string(dir.join(name)).ok()?;
        Some(serde_json::from_str(&text).expect("schema is JSON"))
    };
    let (Some(main), Some(defs)) = (
        read("azure-deviceupdate-import-manifest-5.0.json"),
        read("azure-deviceupdate-manifest-definitions-5.0.json"),
    ) else {
        panic!("ADU schemas missing in {}", dir.display());
    };
    let defs_id = defs["$id"].as_str().unwrap().to_string();
    let resource = jsonschema::Resource::from_contents(defs).unwrap();
    Some(
        jsonschema::options()
            .with_resource(defs_id, resource)
            .build(&main)
            .expect("schema compiles"),
    )
}

fn schema_errors(v: &jsonschema::Validator, json: &Value) -> Vec<String> {
    v.iter_errors(json)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

fn file(name: &str, size: u64, byte: u8) -> FileInfo {
    FileInfo {
        filename: name.to_string(),
        size,
        sha256: [byte; 32],
    }
}

fn spec() -> ManifestSpec {
    ManifestSpec {
        update_id: UpdateId {
            provider: "Contoso".into(),
            name: "Toaster".into(),
            version: "2.0".into(),
        },
        description: Some("Toaster firmware 2.0".into()),
        compatibility: vec![BTreeMap::from([
            ("manufacturer".to_string(), "contoso".to_string()),
            ("model".to_string(), "toaster".to_string()),
        ])],
        handler: "microsoft/swupdate:2".into(),
        handler_properties: BTreeMap::new(),
        target: file("toaster-2.0.swu", 118_000_000, 1),
        deltas: vec![
            Delta {
                delta: file("toaster-1.0-to-2.0.diff", 3_300_000, 2),
                source_sha256: [3; 32],
            },
            Delta {
                delta: file("toaster-1.1-to-2.0.diff", 2_100_000, 4),
                source_sha256: [5; 32],
            },
        ],
        created: "2025-01-01T00:00:00Z".into(),
    }
}

#[test]
fn emitted_manifest_has_the_documented_shape_and_passes_the_schema() {
    let text = spec().to_json().unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["manifestVersion"], "5.0");
    assert_eq!(json["updateId"]["provider"], "Contoso");
    let f = &json["files"][0];
    assert_eq!(f["filename"], "toaster-2.0.swu");
    assert_eq!(f["sizeInBytes"], 118_000_000);
    assert_eq!(
        f["hashes"]["sha256"],
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
    );
    assert_eq!(f["downloadHandler"]["id"], "microsoft/delta:1");
    let r = &f["relatedFiles"][1];
    assert_eq!(r["filename"], "toaster-1.1-to-2.0.diff");
    assert_eq!(
        r["properties"]["microsoft.sourceFileHashAlgorithm"],
        "sha256"
    );
    assert_eq!(
        r["properties"]["microsoft.sourceFileHash"],
        "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU="
    );
    let step = &json["instructions"]["steps"][0];
    assert_eq!(step["handler"], "microsoft/swupdate:2");
    assert_eq!(step["files"][0], "toaster-2.0.swu");
    assert_eq!(step["handlerProperties"]["installedCriteria"], "2.0");
    assert_eq!(step["handlerProperties"]["swuFileName"], "toaster-2.0.swu");
    // Deterministic.
    assert_eq!(text, spec().to_json().unwrap());
    if let Some(v) = validator() {
        assert_eq!(schema_errors(&v, &json), Vec::<String>::new());
        // Without deltas: no related files, no download handler; still valid.
        let mut s = spec();
        s.deltas.clear();
        let json: Value = serde_json::from_str(&s.to_json().unwrap()).unwrap();
        assert!(json["files"][0].get("downloadHandler").is_none());
        assert_eq!(schema_errors(&v, &json), Vec::<String>::new());
    }
}

/// Each mutation breaks one rule of the schema (or the service): our checks refuse it, and
/// where the schema itself can tell, the official validator agrees it is invalid.
#[test]
fn violations_are_refused_before_writing() {
    type Mutation = (&'static str, fn(&mut ManifestSpec), bool);
    let cases: Vec<Mutation> = vec![
        (
            "updateId.provider",
            |s| s.update_id.provider = "Con toso".into(),
            true,
        ),
        (
            "updateId.provider",
            |s| s.update_id.provider = "x".repeat(65),
            true,
        ),
        ("updateId.name", |s| s.update_id.name = String::new(), true),
        (
            "updateId.version",
            |s| s.update_id.version = "2".into(),
            true,
        ),
        (
            "updateId.version",
            |s| s.update_id.version = "1.2.3.4.5".into(),
            false,
        ),
        (
            "updateId.version",
            |s| s.update_id.version = "1.x".into(),
            true,
        ),
        (
            "description",
            |s| s.description = Some("d".repeat(513)),
            true,
        ),
        ("compatibility", |s| s.compatibility.clear(), true),
        (
            "compatibility",
            |s| s.compatibility = vec![s.compatibility[0].clone(); 11],
            true,
        ),
        (
            "compatibility[0]",
            |s| s.compatibility[0] = (0..6).map(|i| (format!("k{i}"), "v".to_string())).collect(),
            true,
        ),
        (
            "compatibility[0]",
            |s| {
                s.compatibility[0].insert("k".repeat(33), "v".into());
            },
            false,
        ),
        (
            "compatibility[0].model",
            |s| {
                s.compatibility[0].insert("model".into(), "m".repeat(65));
            },
            true,
        ),
        (
            "instructions.steps[0].handler",
            |s| s.handler = "swupdate".into(),
            true,
        ),
        (
            "files[0].relatedFiles",
            |s| {
                for i in 0..3u8 {
                    s.deltas.push(Delta {
                        delta: file(&format!("x{i}.diff"), 10, 10 + i),
                        source_sha256: [20 + i; 32],
                    })
                }
            },
            true,
        ),
        ("files[0].sizeInBytes", |s| s.target.size = 0, true),
        ("files[0].sizeInBytes", |s| s.target.size = 3 << 30, true),
        (
            "files",
            |s| {
                s.target.size = 1 << 31;
                s.deltas[0].delta.size = 1 << 30;
            },
            false,
        ),
        (
            "files[0].filename",
            |s| s.target.filename = "f".repeat(256),
            true,
        ),
        (
            "files[0].relatedFiles[1].filename",
            |s| s.deltas[1].delta.filename = s.deltas[0].delta.filename.clone(),
            false,
        ),
        (
            "files[0].relatedFiles[1]",
            |s| s.deltas[1].source_sha256 = s.deltas[0].source_sha256,
            false,
        ),
        (
            "files[0].relatedFiles[0]",
            |s| s.deltas[0].source_sha256 = s.target.sha256,
            false,
        ),
        (
            "instructions.steps[0].handlerProperties.installedCriteria",
            |s| {
                s.handler_properties
                    .insert("installedCriteria".into(), String::new());
            },
            false,
        ),
    ];
    let v = validator();
    for (path, mutate, schema_can_tell) in cases {
        let mut s = spec();
        mutate(&mut s);
        match s.to_json() {
            Err(Error::Invalid(violations)) => {
                assert!(
                    violations.iter().any(|x| x.path == path),
                    "{path}: got {violations:?}"
                );
            }
            other => panic!("{path}: expected a violation, got {other:?}"),
        }
        if let (Some(v), true) = (&v, schema_can_tell) {
            // Render without our checks to show the schema rejects it too.
            let json = unchecked_json(&s);
            assert!(
                !schema_errors(v, &json).is_empty(),
                "{path}: schema accepted it"
            );
        }
    }
}

/// The JSON our writer would produce if it skipped validation: built from a valid manifest
/// with the offending values patched in.
fn unchecked_json(s: &ManifestSpec) -> Value {
    let mut ok = spec();
    ok.deltas.truncate(s.deltas.len().min(4));
    let mut json: Value = serde_json::from_str(&ok.to_json().unwrap()).unwrap();
    json["updateId"]["provider"] = s.update_id.provider.clone().into();
    json["updateId"]["name"] = s.update_id.name.clone().into();
    json["updateId"]["version"] = s.update_id.version.clone().into();
    if let Some(d) = &s.description {
        json["description"] = d.clone().into();
    }
    json["compatibility"] = serde_json::to_value(&s.compatibility).unwrap();
    json["instructions"]["steps"][0]["handler"] = s.handler.clone().into();
    let f = &mut json["files"][0];
    f["filename"] = s.target.filename.clone().into();
    f["sizeInBytes"] = s.target.size.into();
    let related: Vec<Value> = s
        .deltas
        .iter()
        .map(|d| {
            serde_json::json!({
                "filename": d.delta.filename,
                "sizeInBytes": d.delta.size,
                "hashes": {"sha256": manifest::base64_sha256(&d.delta.sha256)},
                "properties": {
                    "microsoft.sourceFileHashAlgorithm": "sha256",
                    "microsoft.sourceFileHash": manifest::base64_sha256(&d.source_sha256)
                }
            })
        })
        .collect();
    f["relatedFiles"] = related.into();
    json
}

#[test]
fn files_are_measured_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.swu");
    std::fs::write(&p, b"").unwrap();
    let f = FileInfo::from_path(&p).unwrap();
    assert_eq!(f.filename, "a.swu");
    assert_eq!(f.size, 0);
    assert_eq!(
        manifest::base64_sha256(&f.sha256),
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
    assert!(FileInfo::from_path(&dir.path().join("missing")).is_err());
}
