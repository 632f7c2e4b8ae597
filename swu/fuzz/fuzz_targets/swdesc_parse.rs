//! Fuzzes sw-description parsing (libconfig, then JSON), the artifact inventory and the
//! lossless editor, the way recompression uses them:
//!
//! 1. `SwDescription::parse`; an editor with no edits must give back the text unchanged;
//! 2. `inventory()`;
//! 3. one editor round: set `sha256` on every artifact, `finish()` (which re-parses). The
//!    result must parse, keep the syntax and the number of artifacts, and every artifact must
//!    now carry the new hash.

#![no_main]

use libfuzzer_sys::fuzz_target;
use swu::swdesc::SwDescription;

const NEW_SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = SwDescription::parse(data) else {
        return;
    };
    let same = doc
        .editor()
        .finish()
        .expect("an unedited sw-description no longer parses");
    assert_eq!(same.text(), doc.text(), "an empty edit changed the text");
    let _ = doc.position(data.len() / 2);

    let Ok(inventory) = doc.inventory() else {
        return;
    };
    let mut editor = doc.editor();
    for artifact in &inventory.artifacts {
        editor
            .set_string(artifact, "sha256", NEW_SHA)
            .expect("an artifact of this document is not found by its editor");
    }
    let edited = editor
        .finish()
        .expect("setting sha256 on every artifact broke the sw-description");
    assert_eq!(edited.syntax(), doc.syntax());
    let after = edited
        .inventory()
        .expect("the edited sw-description has no inventory any more");
    assert_eq!(
        after.artifacts.len(),
        inventory.artifacts.len(),
        "the edit changed the number of artifacts"
    );
    for a in &after.artifacts {
        assert_eq!(
            a.sha256.as_deref(),
            Some(NEW_SHA),
            "artifact at line {} did not get the new sha256",
            a.line
        );
    }
});
