//! Recompression of one member: stream its data through the decompressor and the profile's
//! compressor into a temp file, hashing both sides on the way. Memory stays bounded by the
//! codecs' windows and a few buffers, whatever the member's size.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use codec::zlib::{self, Container};
use codec::zstd as zstd_codec;
use sha2::{Digest, Sha256};
use swu::cpio::{self, Entry};
use swu::swdesc::Compression;
use tempfile::NamedTempFile;

use crate::{Error, Profile};

/// What recompression did to one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recompressed {
    pub original_name: String,
    /// The member's name in the output (`.gz` → `.zst` unless names are kept).
    pub name: String,
    /// Compression of the input member ("zlib" or "zstd").
    pub from: &'static str,
    pub profile: Profile,
    pub original_len: u64,
    /// Length and SHA-256 of the decompressed content: what a device compresses again.
    pub content_len: u64,
    pub content_sha256: [u8; 32],
    pub compressed_len: u64,
    pub sha256: [u8; 32],
}

/// A recompressed member waiting in a temp file.
pub(crate) struct Spilled {
    pub file: NamedTempFile,
    /// Removes the temp file if a signal stops the process.
    pub _registered: cleanup::Registered,
    /// Byte sum of the compressed data (the crc format's check field).
    pub sum: u32,
    pub info: Recompressed,
}

/// Largest window accepted from an input zstd frame (`zstd --long=31`).
const INPUT_WINDOW_LOG_MAX: u32 = 31;

pub(crate) fn recompress_member(
    archive: &mut File,
    entry: &Entry,
    from: &Compression,
    new_name: &str,
    profile: Profile,
    temp_dir: &Path,
) -> Result<Spilled, Error> {
    let artifact_err = |message: String| Error::Artifact {
        member: entry.name.clone(),
        message,
    };
    let from_label = match from {
        Compression::Zlib { .. } => "zlib",
        Compression::Zstd => "zstd",
        _ => unreachable!("only zlib and zstd members are planned"),
    };
    check_magic(archive, entry, from_label).map_err(artifact_err)?;
    let decode_err =
        |e: io::Error| artifact_err(format!("cannot decompress the {from_label} data: {e}"));

    // zstd output records the content size, so it must be known up front: take the hint the
    // input carries (gzip ISIZE, zstd frame header) and count only if there is none or it
    // proves wrong (multi-member gzip, content over 4 GiB, several zstd frames).
    let (size, hinted) = match profile {
        Profile::Gzip(_) => (None, false),
        Profile::Zstd(_) => match size_hint(archive, entry, from_label) {
            Some(h) => (Some(h), true),
            None => (
                Some(count_content(archive, entry, from_label).map_err(decode_err)?),
                false,
            ),
        },
    };
    let pass = match attempt(archive, entry, from_label, profile, size, temp_dir) {
        Err(Attempt::WrongSize) if hinted => {
            let counted = count_content(archive, entry, from_label).map_err(decode_err)?;
            attempt(archive, entry, from_label, profile, Some(counted), temp_dir)
        }
        other => other,
    };
    let pass = pass.map_err(|e| match e {
        Attempt::WrongSize => {
            artifact_err("decompressed size changed between two reads of the same data".into())
        }
        Attempt::Decode(e) => decode_err(e),
        Attempt::Output(source) => Error::Io {
            what: "cannot write a temp file",
            path: temp_dir.to_path_buf(),
            source,
        },
    })?;
    Ok(Spilled {
        file: pass.file,
        _registered: pass.registered,
        sum: pass.sum,
        info: Recompressed {
            original_name: entry.name.clone(),
            name: new_name.to_string(),
            from: from_label,
            profile,
            original_len: entry.data_len(),
            content_len: pass.content_len,
            content_sha256: pass.content_sha256,
            compressed_len: pass.compressed_len,
            sha256: pass.sha256,
        },
    })
}

enum Attempt {
    /// The content was not as long as announced to the zstd compressor.
    WrongSize,
    Decode(io::Error),
    Output(io::Error),
}

/// The result of one successful pass.
struct Pass {
    file: NamedTempFile,
    registered: cleanup::Registered,
    sum: u32,
    content_len: u64,
    content_sha256: [u8; 32],
    compressed_len: u64,
    sha256: [u8; 32],
}

/// One pass: decompress → hash → compress → temp file.
fn attempt(
    archive: &mut File,
    entry: &Entry,
    from: &str,
    profile: Profile,
    size: Option<u64>,
    temp_dir: &Path,
) -> Result<Pass, Attempt> {
    let (file, registered) =
        cleanup::temp_file(temp_dir, ".diffgen-payload-", ".tmp").map_err(Attempt::Output)?;
    let decoded = decoder(archive, entry, from).map_err(Attempt::Decode)?;
    let mut content = HashingReader::new(decoded);
    let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, file.as_file()));
    let result = match (profile, size) {
        (Profile::Zstd(params), Some(size)) => {
            zstd_codec::compress_stream(params, size, &mut content, &mut out).map(drop)
        }
        (Profile::Zstd(_), None) => unreachable!("zstd output needs the content size"),
        (Profile::Gzip(params), _) => {
            zlib::deflate_stream(params, &mut content, &mut out).map(drop)
        }
    };
    if let Err(e) = result {
        // The zstd compressor refuses content of another length than announced with
        // InvalidInput; other failures come from the decoder or the disk.
        return Err(if content.failed_read {
            Attempt::Decode(e)
        } else if e.kind() == io::ErrorKind::InvalidInput {
            Attempt::WrongSize
        } else {
            Attempt::Output(e)
        });
    }
    let (content_len, content_sha256) = content.finish();
    let (buffered, compressed_len, sha256, sum) = out.finish();
    buffered
        .into_inner()
        .map_err(|e| Attempt::Output(e.into_error()))?;
    Ok(Pass {
        file,
        registered,
        sum,
        content_len,
        content_sha256,
        compressed_len,
        sha256,
    })
}

/// The decompressed content of a member.
fn decoder<'a>(archive: &'a mut File, entry: &Entry, from: &str) -> io::Result<Box<dyn Read + 'a>> {
    let raw = io::BufReader::with_capacity(1 << 20, cpio::member_reader(archive, entry)?);
    Ok(match from {
        "zlib" => zlib::inflater(Container::Gzip, raw, true),
        _ => zstd_codec::decoder(raw, None, INPUT_WINDOW_LOG_MAX)?,
    })
}

fn check_magic(archive: &mut File, entry: &Entry, from: &str) -> Result<(), String> {
    let mut head = [0u8; 4];
    let mut r = cpio::member_reader(archive, entry).map_err(|e| e.to_string())?;
    let n = r.read(&mut head).map_err(|e| e.to_string())?;
    let expected = match from {
        "zlib" => codec::Sniffed::Gzip,
        _ => codec::Sniffed::Zstd,
    };
    let ok = codec::sniff(&head[..n]) == Some(expected);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "sw-description says compressed = \"{from}\" but the data does not start like {} (SWUpdate would fail to install it)",
            if from == "zlib" { "gzip" } else { "a zstd frame" }
        ))
    }
}

/// The decompressed size the data announces, if any: gzip's ISIZE (size mod 2^32 of the last
/// member), or the content size in the first zstd frame's header.
fn size_hint(archive: &mut File, entry: &Entry, from: &str) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let len = entry.data_len();
    match from {
        "zlib" if len >= 18 => {
            let mut isize = [0u8; 4];
            archive
                .seek(SeekFrom::Start(entry.data_offset() + len - 4))
                .ok()?;
            archive.read_exact(&mut isize).ok()?;
            Some(u32::from_le_bytes(isize) as u64)
        }
        "zstd" => {
            let mut head = [0u8; 18];
            let mut r = cpio::member_reader(archive, entry).ok()?;
            let n = r.read(&mut head).ok()?;
            zstd::zstd_safe::get_frame_content_size(&head[..n])
                .ok()
                .flatten()
        }
        _ => None,
    }
}

/// Decompresses once just to count the bytes.
fn count_content(archive: &mut File, entry: &Entry, from: &str) -> io::Result<u64> {
    io::copy(&mut decoder(archive, entry, from)?, &mut io::sink())
}

/// A reader that hashes what passes and remembers whether the inner reader failed.
struct HashingReader<R> {
    inner: R,
    sha: Sha256,
    len: u64,
    failed_read: bool,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            sha: Sha256::new(),
            len: 0,
            failed_read: false,
        }
    }

    fn finish(self) -> (u64, [u8; 32]) {
        (self.len, self.sha.finalize().into())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.sha.update(&buf[..n]);
                self.len += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.failed_read = true;
                Err(e)
            }
        }
    }
}

/// A writer that hashes, counts and byte-sums what passes.
pub(crate) struct HashingWriter<W> {
    inner: W,
    sha: Sha256,
    len: u64,
    sum: u32,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            sha: Sha256::new(),
            len: 0,
            sum: 0,
        }
    }

    /// The inner writer, and the length, SHA-256 and byte sum of what was written.
    pub fn finish(self) -> (W, u64, [u8; 32], u32) {
        (self.inner, self.len, self.sha.finalize().into(), self.sum)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.sum = cpio::byte_sum(self.sum, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
