//! sw-description: the corpus in testdata/swdesc parses to the hand-written expectations, and
//! in-place edits change exactly the bytes they target.

use std::fs;
use std::path::{Path, PathBuf};

use swu::swdesc::{Artifact, Compression, Section, SwDescription, Syntax};

fn corpus() -> Vec<(PathBuf, String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/swdesc");
    let mut cases: Vec<_> = fs::read_dir(&dir)
        .expect("testdata/swdesc exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "swdesc"))
        .map(|p| {
            let text = String::from_utf8(fs::read(&p).unwrap()).unwrap();
            let expected = fs::read_to_string(p.with_extension("expected"))
                .unwrap_or_else(|_| panic!("{} has no .expected", p.display()));
            (p, text, expected)
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 12, "corpus too small: {}", cases.len());
    cases
}

fn section_name(s: Section) -> &'static str {
    s.name()
}

/// The inventory in the corpus's expectation format.
fn describe(doc: &SwDescription) -> Vec<String> {
    let inv = doc.inventory().expect("inventory");
    let mut lines: Vec<String> = inv
        .artifacts
        .iter()
        .map(|a| {
            format!(
                "artifact {} {} {} {} {}",
                section_name(a.section),
                a.filename.as_deref().unwrap_or("-"),
                a.compressed.label(),
                a.sha256.as_deref().unwrap_or("-"),
                a.selections.join(",")
            )
        })
        .collect();
    lines.extend(
        inv.bootenv
            .iter()
            .map(|b| format!("bootenv {} {} {}", b.name, b.value, b.selections.join(","))),
    );
    lines
}

#[test]
fn corpus_matches_expectations() {
    let mut failures = Vec::new();
    for (path, text, expected) in corpus() {
        let expected: Vec<String> = expected
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let got = match SwDescription::parse(text.as_bytes()) {
            Ok(doc) => describe(&doc),
            Err(swu::swdesc::Error::Syntax(e)) => vec![format!("error {} {}", e.line, e.column)],
            Err(e) => vec![format!("error {e}")],
        };
        if got != expected {
            failures.push(format!(
                "{}:\n  expected:\n    {}\n  got:\n    {}",
                path.display(),
                expected.join("\n    "),
                got.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn parse_ok(text: &str) -> Option<SwDescription> {
    SwDescription::parse(text.as_bytes()).ok()
}

/// The new text equals the old one outside `old_range`, which became `new_len` bytes.
fn assert_only_changed(old: &str, new: &str, at: usize, old_len: usize) {
    assert_eq!(&new[..at], &old[..at], "bytes before the edit changed");
    assert_eq!(
        &new[new.len() - (old.len() - at - old_len)..],
        &old[at + old_len..],
        "bytes after the edit changed"
    );
}

#[test]
fn no_edits_keep_every_byte() {
    for (path, text, _) in corpus() {
        if let Some(doc) = parse_ok(&text) {
            let same = doc.editor().finish().unwrap();
            assert_eq!(same.text(), text, "{}", path.display());
        }
    }
}

/// For every artifact of every corpus file: replace sha256, set compressed and filename; each
/// edit alone touches only its own bytes and reads back.
#[test]
fn single_edits_touch_only_their_bytes() {
    let new_sha = "0123456789abcdef".repeat(4);
    let mut edits = 0;
    for (path, text, _) in corpus() {
        let Some(doc) = parse_ok(&text) else { continue };
        let inv = doc.inventory().unwrap();
        for (i, a) in inv.artifacts.iter().enumerate() {
            for (key, value) in [
                ("sha256", new_sha.as_str()),
                ("compressed", "zstd"),
                ("filename", "renamed \"file\".zst"),
            ] {
                let mut ed = doc.editor();
                ed.set_string(a, key, value).unwrap();
                let new = ed
                    .finish()
                    .unwrap_or_else(|e| panic!("{} artifact {i} {key}: {e}", path.display()));
                let inv2 = new.inventory().unwrap();
                let b = inv2
                    .artifacts
                    .iter()
                    .find(|b| b.entry_span.start == a.entry_span.start)
                    .unwrap_or_else(|| panic!("{} artifact {i} lost", path.display()));
                match key {
                    "sha256" => assert_eq!(b.sha256.as_deref(), Some(new_sha.as_str())),
                    "compressed" => assert_eq!(b.compressed, Compression::Zstd),
                    _ => assert_eq!(b.filename.as_deref(), Some(value)),
                }
                // Every other artifact is unchanged.
                assert_eq!(inv2.artifacts.len(), inv.artifacts.len());
                let group = find_setting_span(&doc, a, key);
                match group {
                    Some((start, len)) => assert_only_changed(&text, new.text(), start, len),
                    None => {
                        // Inserted: the old text is the new text minus one contiguous run.
                        let diff = new.text().len() - text.len();
                        let at = common_prefix(&text, new.text());
                        assert_eq!(&new.text()[at + diff..], &text[at..], "{}", path.display());
                    }
                }
                edits += 1;
            }
        }
    }
    assert!(edits > 60, "only {edits} edits exercised");
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

/// Span of the existing value of `key` in the artifact's entry, if any.
fn find_setting_span(doc: &SwDescription, a: &Artifact, key: &str) -> Option<(usize, usize)> {
    fn walk<'n>(
        n: &'n swu::swdesc::Node,
        span: &std::ops::Range<usize>,
    ) -> Option<&'n swu::swdesc::Group> {
        use swu::swdesc::Value;
        match &n.value {
            Value::Group(g) if n.span == *span => Some(g),
            Value::Group(g) => g.settings.iter().find_map(|s| walk(&s.value, span)),
            Value::List(v) | Value::Array(v) => v.iter().find_map(|x| walk(x, span)),
            _ => None,
        }
    }
    let g = walk(doc.root(), &a.entry_span)?;
    let s = g.get(key)?;
    Some((s.value.span.start, s.value.span.len()))
}

#[test]
fn combined_edits_recompression_style() {
    // What recompression does: every compressed artifact gets compressed = "zstd", a new
    // filename and a new sha256, all in one pass.
    for (path, text, _) in corpus() {
        let Some(doc) = parse_ok(&text) else { continue };
        let inv = doc.inventory().unwrap();
        let mut ed = doc.editor();
        for a in inv.artifacts.iter().filter(|a| a.filename.is_some()) {
            ed.set_string(a, "compressed", "zstd").unwrap();
            ed.set_string(a, "sha256", &"ab".repeat(32)).unwrap();
            ed.set_string(a, "filename", "x.zst").unwrap();
        }
        let new = ed
            .finish()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(new.syntax(), doc.syntax());
        let inv2 = new.inventory().unwrap();
        assert_eq!(
            inv2.artifacts.len(),
            inv.artifacts.len(),
            "{}",
            path.display()
        );
        for a in inv2.artifacts.iter().filter(|a| a.filename.is_some()) {
            assert_eq!(a.filename.as_deref(), Some("x.zst"));
            assert_eq!(a.compressed, Compression::Zstd);
            assert_eq!(a.sha256.as_deref(), Some("ab".repeat(32).as_str()));
        }
    }
}

#[test]
fn inserted_settings_follow_their_neighbours_style() {
    let text = "software = {\n\timages: (\n\t\t{\n\t\t\tfilename = \"a.gz\";\n\t\t\ttype = \"raw\";\n\t\t}\n\t);\n};\n";
    let doc = SwDescription::parse(text.as_bytes()).unwrap();
    let a = &doc.inventory().unwrap().artifacts[0];
    let mut ed = doc.editor();
    ed.set_string(a, "sha256", "ab").unwrap();
    ed.set_string(a, "compressed", "zstd").unwrap();
    let new = ed.finish().unwrap();
    assert_eq!(
        new.text(),
        "software = {\n\timages: (\n\t\t{\n\t\t\tfilename = \"a.gz\";\n\t\t\ttype = \"raw\";\n\t\t\tsha256 = \"ab\";\n\t\t\tcompressed = \"zstd\";\n\t\t}\n\t);\n};\n"
    );

    // One-line entries, `:` separators and `,` terminators.
    let text = "software: { images: ( { filename: \"a\", type: \"raw\", } ); };";
    let doc = SwDescription::parse(text.as_bytes()).unwrap();
    let a = &doc.inventory().unwrap().artifacts[0];
    let mut ed = doc.editor();
    ed.set_string(a, "sha256", "ab").unwrap();
    assert_eq!(
        ed.finish().unwrap().text(),
        "software: { images: ( { filename: \"a\", type: \"raw\", sha256: \"ab\", } ); };"
    );

    // JSON, CRLF line endings.
    let text = "{\r\n  \"software\": {\r\n    \"images\": [\r\n      {\r\n        \"filename\": \"a\"\r\n      }\r\n    ]\r\n  }\r\n}\r\n";
    let doc = SwDescription::parse(text.as_bytes()).unwrap();
    assert_eq!(doc.syntax(), Syntax::Json);
    let a = &doc.inventory().unwrap().artifacts[0];
    let mut ed = doc.editor();
    ed.set_string(a, "sha256", "ab").unwrap();
    assert_eq!(
        ed.finish().unwrap().text(),
        "{\r\n  \"software\": {\r\n    \"images\": [\r\n      {\r\n        \"filename\": \"a\",\r\n        \"sha256\": \"ab\"\r\n      }\r\n    ]\r\n  }\r\n}\r\n"
    );

    // Empty entry.
    let text = "software = { images = ( {} ); };";
    let doc = SwDescription::parse(text.as_bytes()).unwrap();
    let a = &doc.inventory().unwrap().artifacts[0];
    let mut ed = doc.editor();
    ed.set_string(a, "filename", "x").unwrap();
    assert_eq!(
        ed.finish().unwrap().text(),
        "software = { images = ( { filename = \"x\"; } ); };"
    );
}

#[test]
fn replacing_a_boolean_compressed_and_concatenated_strings() {
    let text = "software = { images = ( { filename = \"root\" /* c */ \"fs.gz\"; compressed = true; } ); };";
    let doc = SwDescription::parse(text.as_bytes()).unwrap();
    let a = &doc.inventory().unwrap().artifacts[0];
    assert_eq!(a.filename.as_deref(), Some("rootfs.gz"));
    assert_eq!(a.compressed, Compression::Zlib { boolean_form: true });
    let mut ed = doc.editor();
    ed.set_string(a, "compressed", "zstd").unwrap();
    ed.set_string(a, "filename", "rootfs.zst").unwrap();
    assert_eq!(
        ed.finish().unwrap().text(),
        "software = { images = ( { filename = \"rootfs.zst\"; compressed = \"zstd\"; } ); };"
    );
}

#[test]
fn escapes_are_written_in_each_syntax() {
    for (text, expected) in [
        (
            "software = { images = ( { filename = \"a\"; } ); };",
            "software = { images = ( { filename = \"q\\\"\\\\\\n\\x01\"; } ); };",
        ),
        (
            "{\"software\": {\"images\": [{\"filename\": \"a\"}]}}",
            "{\"software\": {\"images\": [{\"filename\": \"q\\\"\\\\\\n\\u0001\"}]}}",
        ),
    ] {
        let doc = SwDescription::parse(text.as_bytes()).unwrap();
        let a = &doc.inventory().unwrap().artifacts[0];
        let mut ed = doc.editor();
        ed.set_string(a, "filename", "q\"\\\n\u{1}").unwrap();
        let new = ed.finish().unwrap();
        assert_eq!(new.text(), expected);
        assert_eq!(
            new.inventory().unwrap().artifacts[0].filename.as_deref(),
            Some("q\"\\\n\u{1}")
        );
    }
}

#[test]
fn structure_errors_have_positions() {
    for (text, needle) in [
        (
            "software = { images = ( { ref = \"#./nowhere\"; } ); };",
            "line 1, column 33",
        ),
        ("software = { images = ( 1 ); };", "expected a group"),
        (
            "software = { images = ( { filename = 3; } ); };",
            "\"filename\" must be a string",
        ),
        (
            "software = { images = ( { compressed = 1.5; } ); };",
            "\"compressed\" must be",
        ),
        ("\n\nsoftware = 3;", "no \"software\" group"),
    ] {
        let msg = match SwDescription::parse(text.as_bytes()) {
            Ok(doc) => doc.inventory().unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains(needle), "{text}: {needle:?} not in {msg}");
    }
    let e = SwDescription::parse(b"\xff").unwrap_err();
    assert!(e.to_string().contains("UTF-8"));
}

#[test]
fn link_loops_end() {
    let text = "software = { a = { ref = \"#./b\"; }; b = { ref = \"#./a\"; }; images = ( { ref = \"#./loop\"; } ); loop = ( { ref = \"#./loop\"; } ); };";
    let doc = SwDescription::parse(text.as_bytes()).unwrap();
    assert!(doc.inventory().is_err());
}
