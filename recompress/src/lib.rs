//! Deterministic recompression of a target SWU, so that a device can rebuild its compressed
//! images byte for byte from their content.
//!
//! Every member that sw-description declares compressed (`"zlib"`, boolean `true`, `"zstd"`)
//! is decompressed and compressed again with fixed, recorded parameters: the zstd profile
//! (default; zstd level 3, single-threaded, content size in the frame) or the gzip profile
//! (zlib level 9, memLevel 9, fixed header: what ADU's stock applier can re-create). The
//! sw-description is edited in place (sha256, compressed, filename), re-signed through the
//! user's command, and the archive is written with every other byte and header field kept.
//! The output appears atomically: a temp file next to it, renamed when complete.

mod payload;
mod sign;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;

use codec::zlib::DeflateParams;
use codec::zstd::ZstdParams;
use swu::cpio::{self, Entry, Format, Writer};
use swu::swdesc::{Artifact, Compression};
use swu::{Swu, SIG_NAME, SWDESC_NAME};

pub use payload::Recompressed;
pub use sign::{run_signing_command, SignError};

/// Which compressor the recompressed images get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// zstd with recorded parameters; needs diffgen's applier on the device.
    Zstd(ZstdParams),
    /// gzip by zlib with ADU's parameters; ADU's stock applier can re-create it.
    Gzip(DeflateParams),
}

impl Profile {
    /// The zstd profile at `level`.
    pub fn zstd(level: i32) -> Profile {
        Profile::Zstd(ZstdParams::profile(level))
    }

    /// The gzip profile (level 9).
    pub fn gzip() -> Profile {
        Profile::Gzip(DeflateParams::GZIP_PROFILE)
    }

    /// The `compressed` value sw-description gets.
    fn label(&self) -> &'static str {
        match self {
            Profile::Zstd(_) => "zstd",
            Profile::Gzip(_) => "zlib",
        }
    }

    /// The file name suffix of this compression.
    fn suffix(&self) -> &'static str {
        match self {
            Profile::Zstd(_) => ".zst",
            Profile::Gzip(_) => ".gz",
        }
    }
}

/// What to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub profile: Profile,
    /// Shell command that signs a file: run as `sh -c '<command> <path>'`; must create
    /// `<path>.sig`.
    pub signing_command: Option<String>,
    /// How long the signing command may take.
    pub signing_timeout: Duration,
    /// Allow dropping the signature of a signed input whose sw-description changes when no
    /// signing command is given (otherwise that is an error: the signature would be stale).
    pub drop_signature: bool,
    /// Keep member and file names (no `.gz` → `.zst` renaming).
    pub keep_names: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            profile: Profile::zstd(3),
            signing_command: None,
            signing_timeout: Duration::from_secs(120),
            drop_signature: false,
            keep_names: false,
        }
    }
}

/// What was done, for logs and `--json`.
#[derive(Debug, Clone)]
pub struct Report {
    pub input: PathBuf,
    pub output: PathBuf,
    pub output_len: u64,
    pub output_sha256: [u8; 32],
    pub members: Vec<Recompressed>,
    /// Whether the output carries a signature, and whether it is a new one.
    pub signed: bool,
    pub resigned: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Swu(#[from] swu::Error),
    #[error("the input would be rejected by SWUpdate: {0}")]
    BadInput(String),
    #[error("artifact \"{member}\": {message}")]
    Artifact { member: String, message: String },
    #[error(
        "{0} is signed and its sw-description changes, but no signing command was given (the old signature would be invalid; pass a signing command, or --drop-signature to write it unsigned)"
    )]
    StaleSignature(PathBuf),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("{what}: {source} ({})", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing the archive: {0}")]
    Cpio(#[from] cpio::Error),
    #[error("editing sw-description: {0}")]
    Edit(#[from] swu::swdesc::EditError),
    #[error("the written archive fails its own check: {0}")]
    SelfCheck(String),
}

fn io_err<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> Error + 'p {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A member of the output and where its data comes from.
struct OutMember<'a> {
    entry: &'a Entry,
    name: String,
    data: Data,
}

enum Data {
    /// Unchanged: copied from the input archive.
    Original,
    /// New content in memory (sw-description, signature).
    Bytes(Vec<u8>),
    /// New content in a temp file (recompressed payloads).
    File(Box<payload::Spilled>),
}

/// Recompresses `input` into `output` (see the crate documentation).
pub fn recompress(input: &Path, output: &Path, options: &Options) -> Result<Report, Error> {
    let swu = Swu::open(input)?;
    let problems = swu.problems();
    if !problems.is_empty() {
        return Err(Error::BadInput(problems.join("; ")));
    }
    let mut warnings = Vec::new();
    let plan = plan(&swu, options, &mut warnings)?;

    let out_dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut input_file = File::open(input).map_err(io_err("cannot read", input))?;

    // Recompress each planned member into a temp file next to the output.
    let mut recompressed: BTreeMap<String, payload::Spilled> = BTreeMap::new();
    for (name, (from, to_name)) in &plan {
        let entry = swu.archive.member(name).expect("planned members exist");
        let spilled = payload::recompress_member(
            &mut input_file,
            entry,
            from,
            to_name,
            options.profile,
            &out_dir,
        )?;
        recompressed.insert(name.clone(), spilled);
    }
    let infos: Vec<Recompressed> = recompressed.values().map(|s| s.info.clone()).collect();

    // Edit sw-description for every artifact whose member changed.
    let mut editor = swu.swdesc.editor();
    for artifact in &swu.inventory.artifacts {
        let Some(info) = artifact
            .filename
            .as_ref()
            .and_then(|f| recompressed.get(f))
            .map(|s| &s.info)
        else {
            continue;
        };
        editor.set_string(artifact, "sha256", &swu::hex::encode(&info.sha256))?;
        let keep_boolean = matches!(
            (&artifact.compressed, options.profile),
            (Compression::Zlib { boolean_form: true }, Profile::Gzip(_))
        );
        if !keep_boolean {
            editor.set_string(artifact, "compressed", options.profile.label())?;
        }
        if info.name != info.original_name {
            editor.set_string(artifact, "filename", &info.name)?;
        }
    }
    let new_swdesc = editor.finish()?;
    let swdesc_changed = new_swdesc.text().as_bytes() != swu.swdesc_bytes.as_slice();

    // Signature: a fresh one, the old one (still valid), or none.
    let old_sig = swu.archive.member(SIG_NAME);
    let signature: Option<Data> = match (&options.signing_command, old_sig) {
        (Some(cmd), _) => Some(Data::Bytes(sign::sign_bytes(
            cmd,
            new_swdesc.text().as_bytes(),
            options.signing_timeout,
        )?)),
        (None, Some(_)) if !swdesc_changed => Some(Data::Original),
        (None, Some(_)) if options.drop_signature => {
            warnings.push("signature dropped: the output is unsigned".to_string());
            None
        }
        (None, Some(_)) => return Err(Error::StaleSignature(input.to_path_buf())),
        (None, None) => None,
    };
    let resigned = options.signing_command.is_some();

    // Member list in the original order; the signature goes right after sw-description.
    let swdesc_entry = &swu.archive.members[0];
    let sig_template;
    let mut members: Vec<OutMember> = vec![OutMember {
        entry: swdesc_entry,
        name: SWDESC_NAME.to_string(),
        data: if swdesc_changed {
            Data::Bytes(new_swdesc.text().as_bytes().to_vec())
        } else {
            Data::Original
        },
    }];
    if let Some(data) = signature {
        let entry = match old_sig {
            Some(e) => e,
            None => {
                sig_template = signature_entry(&swu);
                &sig_template
            }
        };
        members.push(OutMember {
            entry,
            name: SIG_NAME.to_string(),
            data,
        });
    }
    for entry in &swu.archive.members[1..] {
        if entry.name == SIG_NAME {
            continue;
        }
        match recompressed.remove(&entry.name) {
            Some(spilled) => members.push(OutMember {
                entry,
                name: spilled.info.name.clone(),
                data: Data::File(Box::new(spilled)),
            }),
            None => members.push(OutMember {
                entry,
                name: entry.name.clone(),
                data: Data::Original,
            }),
        }
    }
    let (output_len, output_sha256) =
        write_archive(&swu, &mut input_file, &members, output, &out_dir)?;

    // Read back what was written: every hash and checksum must hold.
    let check = Swu::open(output)?;
    let problems = check.problems();
    if !problems.is_empty() {
        let _ = std::fs::remove_file(output);
        return Err(Error::SelfCheck(problems.join("; ")));
    }
    Ok(Report {
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        output_len,
        output_sha256,
        members: infos,
        signed: check.is_signed(),
        resigned,
        warnings,
    })
}

/// Members to recompress: name → (its current compression, its new name).
fn plan(
    swu: &Swu,
    options: &Options,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, (Compression, String)>, Error> {
    let mut plan: BTreeMap<String, (Compression, String)> = BTreeMap::new();
    let mut by_member: BTreeMap<&str, Vec<&Artifact>> = BTreeMap::new();
    for a in &swu.inventory.artifacts {
        if let Some(f) = &a.filename {
            by_member.entry(f).or_default().push(a);
        }
    }
    for (name, artifacts) in by_member {
        let compressions: Vec<&Compression> = artifacts.iter().map(|a| &a.compressed).collect();
        let first = compressions[0];
        let consistent = compressions
            .iter()
            .all(|c| std::mem::discriminant(*c) == std::mem::discriminant(first));
        if !consistent {
            return Err(Error::Artifact {
                member: name.to_string(),
                message: "entries disagree on whether and how it is compressed".to_string(),
            });
        }
        if artifacts.iter().any(|a| a.encrypted) {
            if first.is_compressed() {
                warnings.push(format!(
                    "artifact \"{name}\" is encrypted: kept as it is (its compressed content cannot be reached)"
                ));
            }
            continue;
        }
        match first {
            Compression::None => continue,
            Compression::Other(c) => {
                warnings.push(format!(
                    "artifact \"{name}\": compressed = \"{c}\" is not supported for recompression; kept as it is"
                ));
                continue;
            }
            Compression::Zlib { .. } | Compression::Zstd => {}
        }
        let new_name = if options.keep_names {
            name.to_string()
        } else {
            renamed(name, options.profile)
        };
        if new_name != name && swu.archive.member(&new_name).is_some() {
            return Err(Error::Artifact {
                member: name.to_string(),
                message: format!("cannot rename it to \"{new_name}\": a member of that name exists (use --keep-names)"),
            });
        }
        plan.insert(name.to_string(), (first.clone(), new_name));
    }
    Ok(plan)
}

/// `rootfs.ext4.gz` → `rootfs.ext4.zst` in the zstd profile, and back in the gzip profile.
fn renamed(name: &str, profile: Profile) -> String {
    let stem = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".zst"))
        .or_else(|| name.strip_suffix(".zstd"));
    match stem {
        Some(stem) => format!("{stem}{}", profile.suffix()),
        None => name.to_string(),
    }
}

/// Header of a new `sw-description.sig`: sw-description's, with an unused inode number.
fn signature_entry(swu: &Swu) -> Entry {
    let mut e = swu.archive.members[0].clone();
    let max_ino = swu
        .archive
        .members
        .iter()
        .map(|m| m.header.ino)
        .max()
        .unwrap_or(0);
    e.header.ino = max_ino.wrapping_add(1);
    e.name = SIG_NAME.to_string();
    e.name_padding.clear();
    e.data_padding.clear();
    e
}

/// Writes the archive to a temp file in `out_dir` and renames it to `output`. Returns the
/// output's length and SHA-256.
fn write_archive(
    swu: &Swu,
    input: &mut File,
    members: &[OutMember],
    output: &Path,
    out_dir: &Path,
) -> Result<(u64, [u8; 32]), Error> {
    let (temp, _registered) = cleanup::temp_file(out_dir, ".diffgen-recompress-", ".tmp").map_err(
        io_err("cannot create a temp file in the output folder", out_dir),
    )?;
    let hashing = payload::HashingWriter::new(BufWriter::with_capacity(1 << 20, temp.as_file()));
    let mut w = Writer::new(hashing);
    for m in members {
        let mut header = m.entry.header.clone();
        let padding = Some((
            m.entry.name_padding.as_slice(),
            m.entry.data_padding.as_slice(),
        ));
        match &m.data {
            Data::Original => {
                let mut r = cpio::member_reader(&mut *input, m.entry)
                    .map_err(io_err("cannot read", &swu.path))?;
                w.write_member(&header, &m.name, padding, &mut r)?;
            }
            Data::Bytes(bytes) => {
                set_size(
                    &mut header,
                    &m.name,
                    bytes.len() as u64,
                    cpio::byte_sum(0, bytes),
                )?;
                w.write_member(&header, &m.name, padding, &mut &bytes[..])?;
            }
            Data::File(spilled) => {
                set_size(
                    &mut header,
                    &m.name,
                    spilled.info.compressed_len,
                    spilled.sum,
                )?;
                let mut f = spilled
                    .file
                    .reopen()
                    .map_err(io_err("cannot read back", spilled.file.path()))?;
                f.rewind()
                    .map_err(io_err("cannot read back", spilled.file.path()))?;
                w.write_member(
                    &header,
                    &m.name,
                    padding,
                    &mut f.take(spilled.info.compressed_len),
                )?;
            }
        }
    }
    // Keep GNU cpio's padding to 512 if the input had it; otherwise keep what followed.
    let a = &swu.archive;
    let padded_to_512 = a.len % 512 == 0 && a.trailing.iter().all(|&b| b == 0);
    let trailing = if padded_to_512 {
        None
    } else {
        Some(a.trailing.as_slice())
    };
    let format = swu.archive.trailer.header.format;
    let hashing = w.finish(format, Some((&a.trailer, &a.trailer_data)), trailing)?;
    let (buffered, len, sha, _) = hashing.finish();
    buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .map_err(io_err("cannot write", output))?;
    temp.persist(output).map_err(|e| Error::Io {
        what: "cannot move the finished file into place",
        path: output.to_path_buf(),
        source: e.error,
    })?;
    Ok((len, sha))
}

/// Sets the size and, for crc members, the checksum of a header.
fn set_size(header: &mut cpio::Header, name: &str, len: u64, sum: u32) -> Result<(), Error> {
    header.filesize = u32::try_from(len).map_err(|_| cpio::Error::TooLarge {
        member: name.to_string(),
        len,
    })?;
    if header.format == Format::Crc {
        header.check = sum;
    }
    Ok(())
}
