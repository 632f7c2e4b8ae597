//! `diffgen manifest` and `diffgen cache-path`: the CLI over the `manifest` library.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine;
use manifest::{Delta, FileInfo, ManifestSpec, UpdateId};

use crate::cli::{CachePathArgs, ManifestArgs};
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
    let compatibility = args
        .compat
        .iter()
        .map(|c| {
            manifest::parse_properties(c).map_err(|e| Failure::new(format!("--compat {c}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut handler_properties = BTreeMap::new();
    for p in &args.handler_property {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| Failure::new(format!("--handler-property \"{p}\" is not key=value")))?;
        handler_properties.insert(k.to_string(), v.to_string());
    }
    let target = FileInfo::from_path(&args.target).map_err(fail)?;
    let deltas = args
        .delta
        .iter()
        .zip(&args.source)
        .map(|(d, s)| {
            let source = FileInfo::from_path(s).map_err(fail)?;
            Ok(Delta {
                delta: FileInfo::from_path(d).map_err(fail)?,
                source_sha256: source.sha256,
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let spec = ManifestSpec {
        update_id: UpdateId {
            provider: args.provider.clone(),
            name: args.name.clone(),
            version: args.version.clone(),
        },
        description: args.description.clone(),
        compatibility,
        handler: args.handler.clone(),
        handler_properties,
        target,
        deltas,
        created: args.created.clone().unwrap_or_else(manifest::now_utc),
    };
    let json = spec.to_json().map_err(fail)?;
    write_atomically(&args.output, json.as_bytes())?;
    println!("{}", args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes a temp file next to `path` and renames it into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
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
