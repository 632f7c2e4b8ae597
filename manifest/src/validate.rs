//! The rules of ADU's import manifest v5 schema (SchemaStore
//! `azure-deviceupdate-import-manifest-5.0.json` and its definitions file) plus the limits the
//! service documents but the schema does not state (2-4 version parts, each ≤ 2^31 - 1; total
//! payload ≤ 2 GB), checked in code so that a bad manifest is refused before it is written.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::ManifestSpec;

/// One broken rule: where (a JSON path) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Largest file the service accepts, and the largest total.
pub const MAX_FILE_SIZE: u64 = 2_147_483_648;

fn identifier_ok(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// `^\S+/\S+:\d{1,5}$`, 5 to 32 characters.
fn handler_id_ok(s: &str) -> bool {
    if !(5..=32).contains(&s.chars().count()) || s.chars().any(char::is_whitespace) {
        return false;
    }
    let Some((name, number)) = s.rsplit_once(':') else {
        return false;
    };
    let Some((a, b)) = name.split_once('/') else {
        return false;
    };
    !a.is_empty()
        && !b.is_empty()
        && (1..=5).contains(&number.len())
        && number.bytes().all(|c| c.is_ascii_digit())
}

/// 2 to 4 dot-separated numbers, each at most 2147483647.
fn version_ok(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    (2..=4).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|c| c.is_ascii_digit())
                && p.parse::<u64>().is_ok_and(|n| n <= i32::MAX as u64)
        })
}

pub(crate) fn check(
    spec: &ManifestSpec,
    handler_properties: &BTreeMap<&str, &str>,
) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut bad = |path: &str, message: String| {
        v.push(Violation {
            path: path.to_string(),
            message,
        })
    };
    let id = &spec.update_id;
    if !identifier_ok(&id.provider) {
        bad(
            "updateId.provider",
            format!(
                "\"{}\" must be 1-64 characters of a-z, A-Z, 0-9, '.', '-'",
                id.provider
            ),
        );
    }
    if !identifier_ok(&id.name) {
        bad(
            "updateId.name",
            format!(
                "\"{}\" must be 1-64 characters of a-z, A-Z, 0-9, '.', '-'",
                id.name
            ),
        );
    }
    if !version_ok(&id.version) {
        bad(
            "updateId.version",
            format!(
                "\"{}\" must be 2 to 4 dot-separated numbers, each at most 2147483647",
                id.version
            ),
        );
    }
    if let Some(d) = &spec.description {
        if !(1..=512).contains(&d.chars().count()) {
            bad("description", "must be 1-512 characters".to_string());
        }
    }
    if !(1..=10).contains(&spec.compatibility.len()) {
        bad(
            "compatibility",
            format!("{} sets given, 1 to 10 allowed", spec.compatibility.len()),
        );
    }
    for (i, set) in spec.compatibility.iter().enumerate() {
        let path = format!("compatibility[{i}]");
        if !(1..=5).contains(&set.len()) {
            bad(&path, format!("{} properties, 1 to 5 allowed", set.len()));
        }
        for (k, val) in set {
            if !(1..=32).contains(&k.chars().count()) {
                bad(
                    &path,
                    format!("property name \"{k}\" must be 1-32 characters"),
                );
            }
            if !(1..=64).contains(&val.chars().count()) {
                bad(
                    &format!("{path}.{k}"),
                    format!("value \"{val}\" must be 1-64 characters"),
                );
            }
        }
    }
    if !handler_id_ok(&spec.handler) {
        bad(
            "instructions.steps[0].handler",
            format!(
                "\"{}\" must look like owner/name:version (5-32 characters)",
                spec.handler
            ),
        );
    }
    if handler_properties
        .get("installedCriteria")
        .is_none_or(|c| c.is_empty())
    {
        bad(
            "instructions.steps[0].handlerProperties.installedCriteria",
            "must not be empty".to_string(),
        );
    }

    let mut names = BTreeSet::new();
    let mut total = 0u64;
    let mut file = |path: &str, f: &crate::FileInfo, v: &mut Vec<Violation>| {
        if !(1..=255).contains(&f.filename.chars().count()) {
            v.push(Violation {
                path: format!("{path}.filename"),
                message: "must be 1-255 characters".into(),
            });
        }
        if !(1..=MAX_FILE_SIZE).contains(&f.size) {
            v.push(Violation {
                path: format!("{path}.sizeInBytes"),
                message: format!("{} bytes; the service accepts 1 to {MAX_FILE_SIZE}", f.size),
            });
        }
        if !names.insert(f.filename.clone()) {
            v.push(Violation {
                path: format!("{path}.filename"),
                message: format!("\"{}\" is used twice", f.filename),
            });
        }
        total = total.saturating_add(f.size);
    };
    file("files[0]", &spec.target, &mut v);
    if spec.deltas.len() > 4 {
        v.push(Violation {
            path: "files[0].relatedFiles".into(),
            message: format!(
                "{} deltas; the schema allows at most 4 related files per file",
                spec.deltas.len()
            ),
        });
    }
    for (i, d) in spec.deltas.iter().enumerate() {
        file(&format!("files[0].relatedFiles[{i}]"), &d.delta, &mut v);
    }
    if total > MAX_FILE_SIZE {
        v.push(Violation {
            path: "files".into(),
            message: format!("{total} bytes in all; the service accepts at most {MAX_FILE_SIZE}"),
        });
    }
    let mut sources = BTreeSet::new();
    for (i, d) in spec.deltas.iter().enumerate() {
        if !sources.insert(d.source_sha256) {
            v.push(Violation {
                path: format!("files[0].relatedFiles[{i}]"),
                message: "a delta for the same source is listed twice".into(),
            });
        }
        if d.source_sha256 == spec.target.sha256 {
            v.push(Violation {
                path: format!("files[0].relatedFiles[{i}]"),
                message: "its source is the target itself".into(),
            });
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(handler_id_ok("microsoft/swupdate:2"));
        assert!(handler_id_ok("microsoft/delta:1"));
        assert!(!handler_id_ok("microsoft/swupdate"));
        assert!(!handler_id_ok("swupdate:2"));
        assert!(!handler_id_ok("a/b:123456"));
        assert!(!handler_id_ok("a b/c:1"));
        assert!(version_ok("1.0") && version_ok("2021.11.8") && version_ok("1.2.3.4"));
        assert!(
            !version_ok("1")
                && !version_ok("1.2.3.4.5")
                && !version_ok("1.x")
                && !version_ok("1.2147483648")
        );
        assert!(identifier_ok("Contoso.Ltd-1") && !identifier_ok("Con toso") && !identifier_ok(""));
        assert!(!identifier_ok(&"a".repeat(65)));
    }
}
