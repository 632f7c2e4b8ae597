//! `diffgen manifest` and `diffgen cache-path`: the CLI over the `manifest` library.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine;
use manifest::{Delta, FileInfo, ManifestSpec, UpdateId};

use crate::cli::{CachePathArgs, IdentityArgs, ManifestArgs};
use crate::failure::Failure;

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::new(e.to_string())
}

pub fn run(args: &ManifestArgs) -> Result<ExitCode, Failure> {
    if args.delta.len() != args.source.len() {
        return Err(Failure::new(format!(
            "give --delta and --source in pairs: {} deltas, {} sources",
            args.delta.len(),
            args.source.len()
        )));
    }
    let pairs: Vec<(PathBuf, PathBuf)> = args
        .delta
        .iter()
        .cloned()
        .zip(args.source.iter().cloned())
        .collect();
    write_manifest(&args.identity, &args.target, &pairs, &args.output)?;
    println!("{}", args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Whether any identity option was given (then all required ones must be).
pub fn wanted(id: &IdentityArgs) -> bool {
    id.provider.is_some() || id.name.is_some() || id.version.is_some() || !id.compat.is_empty()
}

/// Builds, validates and writes the manifest for `target` and its (delta, source) pairs.
/// Each delta must be for exactly that source and target (checked from its header).
pub fn write_manifest(
    id: &IdentityArgs,
    target: &Path,
    pairs: &[(PathBuf, PathBuf)],
    output: &Path,
) -> Result<(), Failure> {
    let need = |v: &Option<String>, flag: &str| {
        v.clone()
            .ok_or_else(|| Failure::new(format!("the import manifest needs {flag}")))
    };
    let update_id = UpdateId {
        provider: need(&id.provider, "--provider")?,
        name: need(&id.name, "--name")?,
        version: need(&id.version, "--version")?,
    };
    if id.compat.is_empty() {
        return Err(Failure::new(
            "the import manifest needs at least one --compat key=value set",
        ));
    }
    let compatibility = id
        .compat
        .iter()
        .map(|c| {
            manifest::parse_properties(c).map_err(|e| Failure::new(format!("--compat {c}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut handler_properties = BTreeMap::new();
    for p in &id.handler_property {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| Failure::new(format!("--handler-property \"{p}\" is not key=value")))?;
        handler_properties.insert(k.to_string(), v.to_string());
    }
    let target_info = FileInfo::from_path(target).map_err(fail)?;
    let mut deltas = Vec::new();
    for (d, s) in pairs {
        let source = FileInfo::from_path(s).map_err(fail)?;
        check_delta_matches(d, &source, &target_info)?;
        deltas.push(Delta {
            delta: FileInfo::from_path(d).map_err(fail)?,
            source_sha256: source.sha256,
        });
    }
    let spec = ManifestSpec {
        update_id,
        description: id.description.clone(),
        compatibility,
        handler: id.handler.clone(),
        handler_properties,
        target: target_info,
        deltas,
        created: id.created.clone().unwrap_or_else(manifest::now_utc),
    };
    let json = spec.to_json().map_err(fail)?;
    write_atomically(output, json.as_bytes())
}

/// A delta names its source and target (length and SHA-256) in its header: they must be
/// these files, or devices would fail to apply it (or rebuild something else).
fn check_delta_matches(
    delta_path: &Path,
    source: &FileInfo,
    target: &FileInfo,
) -> Result<(), Failure> {
    let (archive, _) = delta::read_path(delta_path, &delta::ReadLimits::default())
        .map_err(|e| Failure::new(format!("{e} ({})", delta_path.display())))?;
    let same = |item: &delta::Item, f: &FileInfo| {
        item.length() == f.size && item.sha256_bytes() == Some(&f.sha256)
    };
    if !same(&archive.source, source) {
        return Err(Failure::new(format!(
            "the delta was made for another source than {} ({})",
            source.filename,
            delta_path.display()
        )));
    }
    if !same(&archive.target, target) {
        return Err(Failure::new(format!(
            "the delta rebuilds another target than {} ({})",
            target.filename,
            delta_path.display()
        )));
    }
    Ok(())
}

/// Writes a temp file next to `path` and renames it into place.
/// Writes `bytes` to `path` through a temp file beside it: a reader never sees a cut-off file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let err = |e: std::io::Error| Failure::new(format!("cannot write: {e} ({})", path.display()));
    let (mut tmp, _registered) = cleanup::temp_file(&dir, ".diffgen-", ".tmp").map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

pub fn cache_path(args: &CachePathArgs) -> Result<ExitCode, Failure> {
    let hash = match (&args.source, &args.hash) {
        (Some(file), _) => {
            manifest::base64_sha256(&FileInfo::from_path(file).map_err(fail)?.sha256)
        }
        (None, Some(h)) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(h)
                .map_err(|e| Failure::new(format!("--hash is not Base64: {e}")))?;
            if raw.len() != 32 {
                return Err(Failure::new(format!(
                    "--hash decodes to {} bytes, a SHA-256 has 32",
                    raw.len()
                )));
            }
            h.clone()
        }
        (None, None) => unreachable!("clap requires one of them"),
    };
    if args.provider.is_empty() {
        return Err(Failure::new("--provider is empty"));
    }
    let root = args
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from(manifest::DEFAULT_CACHE_DIR));
    println!(
        "{}",
        manifest::cache_path(&root, &args.provider, &hash).display()
    );
    Ok(ExitCode::SUCCESS)
}
