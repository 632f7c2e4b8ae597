//! An opened `.swu`: the member index, the parsed sw-description, and the checks SWUpdate
//! would make (member order, crc checksums, presence and sha256 of every referenced member).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::cpio::{self, Archive, Entry, ReadOptions};
use crate::hex;
use crate::swdesc::{self, Artifact, Compression, Inventory, SwDescription};

/// Name of the first member.
pub const SWDESC_NAME: &str = "sw-description";
/// Name of the signature member, second when present.
pub const SIG_NAME: &str = "sw-description.sig";
/// Largest sw-description read into memory. Real ones are a few KiB; SWUpdate HEAD has a
/// configurable limit of its own.
pub const MAX_SWDESC_LEN: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {source}", path.display())]
    Cpio {
        path: PathBuf,
        #[source]
        source: cpio::Error,
    },
    #[error("first member is \"{found}\", SWUpdate requires \"sw-description\" ({}: byte 0)", path.display())]
    NoSwDescription { path: PathBuf, found: String },
    #[error("archive has no members ({})", path.display())]
    Empty { path: PathBuf },
    #[error("sw-description is {len} bytes, more than the {MAX_SWDESC_LEN} accepted ({})", path.display())]
    SwDescriptionTooLarge { path: PathBuf, len: u64 },
    #[error("sw-description: {source} ({})", path.display())]
    SwDescription {
        path: PathBuf,
        #[source]
        source: swdesc::Error,
    },
}

/// Status of one member for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberStatus {
    /// crc member whose checksum matches.
    ChecksumOk,
    /// newc member: no checksum to check.
    NoChecksum,
    /// crc member whose check field does not match its data.
    ChecksumBad { expected: u32, computed: u32 },
}

/// Result of checking one artifact against the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactCheck {
    /// Member present and its sha256 matches.
    Ok,
    /// Member present, sw-description gives no sha256 (signed SWUpdate builds reject this).
    NoHash,
    /// The entry names no file; SWUpdate skips it.
    NoFilename,
    /// No member has this name.
    MissingMember,
    /// `sha256` is not 64 hex digits.
    MalformedHash,
    /// The member's data does not hash to `sha256`.
    HashMismatch { actual: String },
}

impl ArtifactCheck {
    /// Whether SWUpdate would refuse the archive for this.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            ArtifactCheck::MissingMember
                | ArtifactCheck::MalformedHash
                | ArtifactCheck::HashMismatch { .. }
        )
    }
}

/// An opened `.swu`.
#[derive(Debug, Clone)]
pub struct Swu {
    pub path: PathBuf,
    pub archive: Archive,
    /// The bytes of the sw-description member.
    pub swdesc_bytes: Vec<u8>,
    pub swdesc: SwDescription,
    pub inventory: Inventory,
}

impl Swu {
    /// Reads the whole archive once (hashing every member), then parses sw-description.
    /// crc checksum mismatches are recorded, not fatal, so that reports can list all problems;
    /// use [`Swu::problems`] to see them.
    pub fn open(path: &Path) -> Result<Swu, Error> {
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let options = ReadOptions {
            verify_checksums: false,
            hash_members: true,
        };
        let archive =
            Archive::scan(BufReader::with_capacity(1 << 20, file), options).map_err(|source| {
                Error::Cpio {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        let first = archive.members.first().ok_or_else(|| Error::Empty {
            path: path.to_path_buf(),
        })?;
        if first.name != SWDESC_NAME {
            return Err(Error::NoSwDescription {
                path: path.to_path_buf(),
                found: first.name.clone(),
            });
        }
        if first.data_len() > MAX_SWDESC_LEN {
            return Err(Error::SwDescriptionTooLarge {
                path: path.to_path_buf(),
                len: first.data_len(),
            });
        }
        let mut swdesc_bytes = Vec::with_capacity(first.data_len() as usize);
        cpio::member_reader(File::open(path).map_err(io_err)?, first)
            .and_then(|mut r| r.read_to_end(&mut swdesc_bytes))
            .map_err(io_err)?;
        if swdesc_bytes.len() as u64 != first.data_len() {
            return Err(io_err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file changed while reading",
            )));
        }
        let sw_err = |source| Error::SwDescription {
            path: path.to_path_buf(),
            source,
        };
        let swdesc = SwDescription::parse(&swdesc_bytes).map_err(sw_err)?;
        let inventory = swdesc.inventory().map_err(sw_err)?;
        Ok(Swu {
            path: path.to_path_buf(),
            archive,
            swdesc_bytes,
            swdesc,
            inventory,
        })
    }

    /// Whether member 2 is `sw-description.sig`.
    pub fn is_signed(&self) -> bool {
        self.archive
            .members
            .get(1)
            .is_some_and(|m| m.name == SIG_NAME)
    }

    pub fn member_status(entry: &Entry) -> MemberStatus {
        match entry.header.format {
            cpio::Format::Newc => MemberStatus::NoChecksum,
            cpio::Format::Crc if entry.checksum_ok() => MemberStatus::ChecksumOk,
            cpio::Format::Crc => MemberStatus::ChecksumBad {
                expected: entry.header.check,
                computed: entry.data_sum,
            },
        }
    }

    /// The member an artifact refers to.
    pub fn member_for(&self, artifact: &Artifact) -> Option<&Entry> {
        artifact
            .filename
            .as_deref()
            .and_then(|name| self.archive.member(name))
    }

    /// Checks one artifact against the archive.
    pub fn check_artifact(&self, artifact: &Artifact) -> ArtifactCheck {
        if artifact.filename.is_none() {
            return ArtifactCheck::NoFilename;
        }
        let Some(member) = self.member_for(artifact) else {
            return ArtifactCheck::MissingMember;
        };
        let Some(expected) = &artifact.sha256 else {
            return ArtifactCheck::NoHash;
        };
        let Some(expected) = hex::decode_sha256(expected) else {
            return ArtifactCheck::MalformedHash;
        };
        let actual = member.sha256.expect("Swu::open hashes every member");
        if actual == expected {
            ArtifactCheck::Ok
        } else {
            ArtifactCheck::HashMismatch {
                actual: hex::encode(&actual),
            }
        }
    }

    /// Everything SWUpdate would reject, as one line each. Empty means the archive passes
    /// every check diffgen can make without the signing key.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.archive.members {
            if let MemberStatus::ChecksumBad { expected, computed } = Self::member_status(m) {
                out.push(format!(
                    "member \"{}\": bad crc checksum: data sums to {computed:#010x}, header says {expected:#010x} (at byte {})",
                    m.name, m.header_offset
                ));
            }
        }
        if let Some(pos) = self.archive.position(SIG_NAME) {
            if pos != 1 {
                out.push(format!(
                    "member \"{SIG_NAME}\" is member {} but SWUpdate requires it second",
                    pos + 1
                ));
            }
        }
        for (i, m) in self.archive.members.iter().enumerate() {
            if self.archive.members[..i].iter().any(|o| o.name == m.name) {
                out.push(format!(
                    "member \"{}\" appears more than once (at byte {})",
                    m.name, m.header_offset
                ));
            }
        }
        for a in &self.inventory.artifacts {
            let name = a.filename.as_deref().unwrap_or("");
            let at = format!("line {}, column {}", a.line, a.column);
            match self.check_artifact(a) {
                ArtifactCheck::MissingMember => out.push(format!(
                    "artifact \"{name}\" has no member in the archive (sw-description {at})"
                )),
                ArtifactCheck::MalformedHash => out.push(format!(
                    "artifact \"{name}\": sha256 is not 64 hex digits (sw-description {at})"
                )),
                ArtifactCheck::HashMismatch { actual } => out.push(format!(
                    "artifact \"{name}\": sha256 mismatch: sw-description says {}, member hashes to {actual} (sw-description {at})",
                    a.sha256.as_deref().unwrap_or("")
                )),
                _ => {}
            }
        }
        out
    }

    /// Things worth telling the user that SWUpdate may accept.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.inventory.warnings.clone();
        for a in &self.inventory.artifacts {
            let name = a.filename.as_deref().unwrap_or("(no filename)");
            match self.check_artifact(a) {
                ArtifactCheck::NoHash => out.push(format!(
                    "artifact \"{name}\" has no sha256 (SWUpdate builds that verify signatures reject it)"
                )),
                ArtifactCheck::NoFilename => out.push(format!(
                    "{} entry at line {} has no filename; SWUpdate skips it",
                    a.section.name(),
                    a.line
                )),
                _ => {}
            }
            if let Compression::Other(c) = &a.compressed {
                out.push(format!(
                    "artifact \"{name}\": compressed = \"{c}\" is unknown to SWUpdate 2022.12 (it knows zlib and zstd)"
                ));
            }
        }
        let referenced = |m: &Entry| {
            m.name == SWDESC_NAME
                || m.name == SIG_NAME
                || self
                    .inventory
                    .artifacts
                    .iter()
                    .any(|a| a.filename.as_deref() == Some(&m.name))
        };
        for m in self.archive.members.iter().filter(|m| !referenced(m)) {
            out.push(format!(
                "member \"{}\" is not referenced by sw-description (SWUpdate skips it)",
                m.name
            ));
        }
        out
    }
}
