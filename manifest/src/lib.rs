//! Azure Device Update import manifests (v5) for delta updates, and the device cache path.
//!
//! An import manifest lists the recompressed target SWU as the update's file and each delta
//! as a related file carrying the hash of the source SWU it applies to
//! (`microsoft.sourceFileHash`), with the `microsoft/delta:1` download handler. ADU's own
//! tooling cannot write these; diffgen does, and validates them against the rules of the
//! official JSON schema (plus the service's documented limits) before anything is written.
//!
//! Hashes here are standard Base64 of the raw SHA-256 (not hex, unlike sw-description).

mod time;
mod validate;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use time::{format_utc, now_utc};
pub use validate::Violation;

/// The agent's default source-update cache (`${ADUC_DATA_FOLDER}/sdc`).
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/adu/sdc";
/// The download handler that rebuilds a payload from a related delta file.
pub const DELTA_DOWNLOAD_HANDLER: &str = "microsoft/delta:1";
/// The SWUpdate step handler recommended for delta updates.
pub const DEFAULT_STEP_HANDLER: &str = "microsoft/swupdate:2";

/// Standard Base64 (with padding) of a SHA-256, as ADU writes file hashes.
pub fn base64_sha256(digest: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// A file's size and SHA-256, read in one streaming pass.
pub fn measure_file(path: &Path) -> io::Result<(u64, [u8; 32])> {
    let mut f = File::open(path)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sha.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, sha.finalize().into()))
}

/// `Contoso` → `Contoso`; every byte that is not an ASCII letter, digit or `-` becomes `_`
/// (the agent's `PathUtils_SanitizePathSegment`).
pub fn sanitize_path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                b as char
            } else {
                '_'
            }
        })
        .collect()
}

/// Base64 made safe as one path segment: `+` → `_2B`, `/` → `_2F`, `=` → `_3D`.
pub fn encode_hash_for_path(b64: &str) -> String {
    b64.replace('+', "_2B")
        .replace('/', "_2F")
        .replace('=', "_3D")
}

/// Where ADU's agent looks for a cached source update: `<root>/<provider>/sha256-<hash>`,
/// with `root` normally [`DEFAULT_CACHE_DIR`].
pub fn cache_path(root: &Path, provider: &str, source_sha256_base64: &str) -> PathBuf {
    root.join(sanitize_path_segment(provider)).join(format!(
        "{}-{}",
        sanitize_path_segment("sha256"),
        encode_hash_for_path(source_sha256_base64)
    ))
}

/// `updateId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateId {
    pub provider: String,
    pub name: String,
    pub version: String,
}

/// A file as the manifest names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub filename: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

impl FileInfo {
    /// Measures a file on disk; the manifest names it by its base name.
    pub fn from_path(path: &Path) -> Result<FileInfo, Error> {
        let filename = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::BadPath(path.to_path_buf()))?
            .to_string();
        let (size, sha256) = measure_file(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(FileInfo {
            filename,
            size,
            sha256,
        })
    }
}

/// One delta and the source SWU it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    pub delta: FileInfo,
    /// SHA-256 of the source SWU exactly as the device holds it (as it was imported).
    pub source_sha256: [u8; 32],
}

/// Everything a delta update's import manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSpec {
    pub update_id: UpdateId,
    pub description: Option<String>,
    /// 1-10 sets of 1-5 properties.
    pub compatibility: Vec<BTreeMap<String, String>>,
    /// Step handler, e.g. `microsoft/swupdate:2`.
    pub handler: String,
    /// Step handler properties; `installedCriteria` and `swuFileName` are filled in from the
    /// version and the target file name unless given.
    pub handler_properties: BTreeMap<String, String>,
    /// The recompressed target SWU.
    pub target: FileInfo,
    pub deltas: Vec<Delta>,
    /// ISO 8601, e.g. `2025-01-01T00:00:00Z`.
    pub created: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read: {source} ({})", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("file name is not valid UTF-8 ({})", .0.display())]
    BadPath(PathBuf),
    #[error("import manifest is invalid: {}", join(.0))]
    Invalid(Vec<Violation>),
}

fn join(v: &[Violation]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

// ---- JSON shape (field order as in ADU's documentation) -----------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImportManifest<'a> {
    update_id: &'a UpdateId,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    compatibility: &'a [BTreeMap<String, String>],
    instructions: Instructions<'a>,
    files: Vec<JsonFile<'a>>,
    created_date_time: &'a str,
    manifest_version: &'static str,
}

#[derive(Serialize)]
struct Instructions<'a> {
    steps: Vec<Step<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Step<'a> {
    handler: &'a str,
    files: Vec<&'a str>,
    handler_properties: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonFile<'a> {
    filename: &'a str,
    size_in_bytes: u64,
    hashes: Hashes,
    #[serde(skip_serializing_if = "Option::is_none")]
    download_handler: Option<DownloadHandler>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related_files: Vec<JsonRelated<'a>>,
}

#[derive(Serialize)]
struct Hashes {
    sha256: String,
}

#[derive(Serialize)]
struct DownloadHandler {
    id: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRelated<'a> {
    filename: &'a str,
    size_in_bytes: u64,
    hashes: Hashes,
    properties: BTreeMap<&'static str, String>,
}

impl ManifestSpec {
    /// Handler properties with the defaults filled in.
    fn effective_handler_properties(&self) -> BTreeMap<&str, &str> {
        let mut p: BTreeMap<&str, &str> = self
            .handler_properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        p.entry("installedCriteria")
            .or_insert(self.update_id.version.as_str());
        p.entry("swuFileName")
            .or_insert(self.target.filename.as_str());
        p
    }

    /// Checks every rule; all violations are reported together.
    pub fn validate(&self) -> Result<(), Error> {
        let violations = validate::check(self, &self.effective_handler_properties());
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(violations))
        }
    }

    /// The manifest as pretty JSON (validated first). Deterministic for the same spec.
    pub fn to_json(&self) -> Result<String, Error> {
        self.validate()?;
        let related: Vec<JsonRelated> = self
            .deltas
            .iter()
            .map(|d| JsonRelated {
                filename: &d.delta.filename,
                size_in_bytes: d.delta.size,
                hashes: Hashes {
                    sha256: base64_sha256(&d.delta.sha256),
                },
                properties: BTreeMap::from([
                    ("microsoft.sourceFileHashAlgorithm", "sha256".to_string()),
                    ("microsoft.sourceFileHash", base64_sha256(&d.source_sha256)),
                ]),
            })
            .collect();
        let manifest = ImportManifest {
            update_id: &self.update_id,
            description: self.description.as_deref(),
            compatibility: &self.compatibility,
            instructions: Instructions {
                steps: vec![Step {
                    handler: &self.handler,
                    files: vec![&self.target.filename],
                    handler_properties: self.effective_handler_properties(),
                }],
            },
            files: vec![JsonFile {
                filename: &self.target.filename,
                size_in_bytes: self.target.size,
                hashes: Hashes {
                    sha256: base64_sha256(&self.target.sha256),
                },
                download_handler: (!related.is_empty()).then_some(DownloadHandler {
                    id: DELTA_DOWNLOAD_HANDLER,
                }),
                related_files: related,
            }],
            created_date_time: &self.created,
            manifest_version: "5.0",
        };
        let mut text = serde_json::to_string_pretty(&manifest).expect("plain data serialises");
        text.push('\n');
        Ok(text)
    }
}

/// Parses `key=value[,key=value...]` into one compatibility set.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for pair in text.split(',') {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("\"{pair}\" is not key=value"))?;
        if map
            .insert(k.trim().to_string(), v.trim().to_string())
            .is_some()
        {
            return Err(format!("property \"{}\" given twice", k.trim()));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_path_encoding() {
        assert_eq!(encode_hash_for_path("ab+/cd=="), "ab_2B_2Fcd_3D_3D");
        assert_eq!(sanitize_path_segment("Contoso.Ltd-1"), "Contoso_Ltd-1");
        assert_eq!(
            cache_path(Path::new("/var/lib/adu/sdc"), "Contoso", "q+/A="),
            PathBuf::from("/var/lib/adu/sdc/Contoso/sha256-q_2B_2FA_3D")
        );
    }

    #[test]
    fn base64_of_known_digest() {
        // sha256("") in Base64, as `az iot du update calculate-hash` prints it.
        let d: [u8; 32] = Sha256::digest(b"").into();
        assert_eq!(
            base64_sha256(&d),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn properties() {
        let m = parse_properties("manufacturer=contoso, model=toaster").unwrap();
        assert_eq!(m["model"], "toaster");
        assert!(parse_properties("a").is_err());
        assert!(parse_properties("a=1,a=2").is_err());
    }
}
