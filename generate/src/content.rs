//! The decompressed contents of compressed payloads, and how a payload can be re-created.
//!
//! Contents are written to the working folder under the SHA-256 of the compressed payload
//! they come from, so a reused working folder is a cache, never a conflict: a file there is
//! only ever the content of the payload its name says.
//!
//! A target payload can be rebuilt on the device from its content only if compressing that
//! content with known parameters gives exactly its bytes. [`reproduce`] finds such parameters
//! by compressing and comparing as it goes, abandoning a candidate at its first differing
//! byte, so wrong candidates cost little.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use codec::zlib::{self, Container, DeflateParams};
use codec::zlib_check;
use codec::zstd::{self as zstd_codec, ZstdParams};
use sha2::{Digest, Sha256};

/// How a payload is compressed.
pub use codec::Sniffed as Kind;

/// The compression a payload's first bytes announce.
pub use codec::sniff;

/// Parameters that re-create a payload from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recreate {
    Zlib(DeflateParams),
    Zstd(ZstdParams),
}

/// A decompressed content in the working folder.
#[derive(Debug, Clone)]
pub struct Content {
    pub path: PathBuf,
    pub len: u64,
    pub sha256: [u8; 32],
}

/// How large a decompressed content may grow, and why (for the error message).
#[derive(Debug, Clone, Copy)]
pub struct ContentLimit {
    pub bytes: u64,
    pub reason: &'static str,
}

impl ContentLimit {
    /// The smaller of `max` and the free space of `work` less a reserve for the delta and the
    /// logs (a quarter of it, at most 256 MiB): a decompression bomb stops there with a clear
    /// error instead of filling the disk.
    pub fn for_work_dir(work: &Path, max: u64) -> ContentLimit {
        let usable = delta::apply::free_space(work).map(|free| free - (free / 4).min(256 << 20));
        match usable {
            Some(bytes) if bytes < max => ContentLimit {
                bytes,
                reason: "the free space of the working folder less a reserve for the delta",
            },
            _ => ContentLimit {
                bytes: max,
                reason: "the largest content this run accepts",
            },
        }
    }
}

/// Decompresses `payload_len` bytes at `offset` of `archive` into the working folder (or
/// reuses a previous run's result). gzip decodes the first member only, as the device's
/// `zlib_decompression` does. Returns `None` when the data does not decode; an error when the
/// content would exceed `limit`.
pub fn materialize(
    archive: &Path,
    offset: u64,
    payload_len: u64,
    payload_sha256: &[u8; 32],
    kind: Kind,
    work: &Path,
    limit: ContentLimit,
) -> io::Result<Option<Content>> {
    let name = format!(
        "{}.{}",
        swu::hex::encode(payload_sha256),
        match kind {
            Kind::Gzip => "gunzip",
            Kind::Zstd => "unzstd",
        }
    );
    let path = work.join(&name);
    let info = work.join(format!("{name}.sha256"));
    if let (Ok(meta), Ok(text)) = (std::fs::metadata(&path), std::fs::read_to_string(&info)) {
        if let Some(sha) = swu::hex::decode_sha256(text.trim()) {
            return Ok(Some(Content {
                path,
                len: meta.len(),
                sha256: sha,
            }));
        }
    }
    let mut f = File::open(archive)?;
    f.seek(SeekFrom::Start(offset))?;
    let raw = BufReader::with_capacity(1 << 20, f.take(payload_len));
    let mut decoder: Box<dyn Read> = match kind {
        Kind::Gzip => zlib::inflater(Container::Gzip, raw, false),
        Kind::Zstd => zstd_codec::decoder(raw, None, zstd_codec::WINDOW_LOG_MAX_PLAIN)?,
    };
    let (mut tmp, _registered) = cleanup::temp_file(work, ".content-", ".tmp")?;
    let mut sha = Sha256::new();
    let mut len = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    {
        let mut out = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        loop {
            let n = match decoder.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Ok(None),
            };
            len += n as u64;
            if len > limit.bytes {
                return Err(io::Error::other(format!(
                    "the payload decompresses to more than {} bytes ({})",
                    limit.bytes, limit.reason
                )));
            }
            sha.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        out.flush()?;
    }
    if len == 0 {
        return Ok(None);
    }
    let sha256: [u8; 32] = sha.finalize().into();
    tmp.persist(&path).map_err(|e| e.error)?;
    std::fs::write(&info, swu::hex::encode(&sha256))?;
    Ok(Some(Content { path, len, sha256 }))
}

/// How much of a payload a re-creation candidate must reproduce to be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Every byte.
    Full,
    /// The first this many bytes: wrong parameters show within the first blocks, and a delta
    /// that is verified by applying it catches the rest (the caller then checks fully).
    Prefix(usize),
}

/// A writer that compares what it receives with `expected` and fails at the first difference,
/// or stops (successfully, `reached`) once `limit` bytes compared equal.
struct Comparer<'a> {
    expected: &'a [u8],
    pos: usize,
    limit: usize,
    reached: bool,
}

impl<'a> Comparer<'a> {
    fn new(expected: &'a [u8], check: Check) -> Self {
        let limit = match check {
            Check::Full => expected.len(),
            Check::Prefix(n) => n.min(expected.len()),
        };
        Comparer {
            expected,
            pos: 0,
            limit,
            reached: false,
        }
    }

    /// Whether the output matched, given whether the compressor finished without error.
    fn matched(&self, finished: bool) -> bool {
        self.reached || (finished && self.pos == self.expected.len())
    }
}

impl Write for Comparer<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let end = self.pos + buf.len();
        if self.limit < self.expected.len() && end >= self.limit {
            let head = self.limit - self.pos;
            if self.expected[self.pos..self.limit] == buf[..head] {
                self.reached = true;
            }
            return Err(io::Error::other("compared as far as asked"));
        }
        if self.expected.get(self.pos..end) != Some(buf) {
            return Err(io::Error::other("differs"));
        }
        self.pos = end;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The zlib levels tried, most likely first (the gzip profile uses 9).
const ZLIB_LEVELS: [i32; 9] = [9, 6, 1, 2, 3, 4, 5, 7, 8];
/// The zstd levels tried, most likely first (the zstd profile defaults to 3).
const ZSTD_LEVELS: [i32; 19] = [
    3, 19, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
];

/// Finds parameters that compress `content` into exactly `payload` (as far as `check` asks),
/// if any.
pub fn reproduce(kind: Kind, content: &[u8], payload: &[u8], check: Check) -> Option<Recreate> {
    match kind {
        Kind::Gzip => {
            reproduce_gzip_checked(content, payload, &ZLIB_LEVELS, check).map(Recreate::Zlib)
        }
        Kind::Zstd => reproduce_zstd(content, payload, check),
    }
}

/// The gzip parameters among `levels` whose output for `content` is exactly `payload`.
pub fn reproduce_gzip(content: &[u8], payload: &[u8], levels: &[i32]) -> Option<DeflateParams> {
    reproduce_gzip_checked(content, payload, levels, Check::Full)
}

fn reproduce_gzip_checked(
    content: &[u8],
    payload: &[u8],
    levels: &[i32],
    check: Check,
) -> Option<DeflateParams> {
    // The device's fixed header: no mtime, no name, OS 3 (what `gzip -n` writes too).
    if payload.len() < 18 || payload[3..8] != [0, 0, 0, 0, 0] || payload[9] != 3 {
        return None;
    }
    levels.iter().find_map(|&level| {
        let params = DeflateParams {
            container: Container::Gzip,
            level,
        };
        let how = Recreate::Zlib(params);
        let mut input = content;
        let len = content.len() as u64;
        let matched = match check {
            // A large payload: the wrong levels fail within the probe; the right one is
            // confirmed on all cores (the serial answer, see codec::zlib_check).
            Check::Full if payload.len() > FULL_CHECK_PROBE => {
                compare(
                    &how,
                    &mut input,
                    len,
                    payload,
                    Check::Prefix(FULL_CHECK_PROBE),
                ) && recreates(&how, content, payload, &AtomicBool::new(false))
            }
            _ => compare(&how, &mut input, len, payload, check),
        };
        matched.then_some(params)
    })
}

/// Bytes of a large gzip payload compared serially before its full check runs in parallel.
const FULL_CHECK_PROBE: usize = 1 << 20;

/// Whether compressing `content` as `how` says makes exactly `payload`, every byte, with the
/// compressors the device's applier runs; false once `cancel` is raised. zlib payloads are
/// checked on all cores of the rayon pool (codec::zlib_check, whose answer is that of one
/// serial compression), zstd ones in one stream.
pub fn recreates(how: &Recreate, content: &[u8], payload: &[u8], cancel: &AtomicBool) -> bool {
    match *how {
        Recreate::Zlib(params) => {
            let options = zlib_check::Options::default();
            zlib_check::check(params, content, payload, &options, cancel).matches
        }
        Recreate::Zstd(_) => {
            let mut input = Cancellable {
                data: content,
                cancel,
            };
            compare(how, &mut input, content.len() as u64, payload, Check::Full)
        }
    }
}

/// The content, read a MiB at a time until the check is cancelled.
struct Cancellable<'a> {
    data: &'a [u8],
    cancel: &'a AtomicBool,
}

impl Read for Cancellable<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled"));
        }
        let n = buf.len().min(self.data.len()).min(1 << 20);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Compresses `content` as `how` says, comparing as it goes, as far as `check` asks.
fn compare(how: &Recreate, content: &mut dyn Read, len: u64, payload: &[u8], check: Check) -> bool {
    let mut cmp = Comparer::new(payload, check);
    let finished = match *how {
        Recreate::Zlib(params) => zlib::deflate_stream(params, content, &mut cmp).is_ok(),
        Recreate::Zstd(params) => {
            zstd_codec::compress_stream(params, len, content, &mut cmp).is_ok()
        }
    };
    cmp.matched(finished)
}

/// The GNU gzip level among `levels` whose `gzip -n` output for `content` is exactly `payload`.
pub fn reproduce_gnu_gzip(content: &[u8], payload: &[u8], levels: &[u32]) -> Option<u32> {
    levels.iter().copied().find(|&level| {
        let mut cmp = Comparer::new(payload, Check::Full);
        let Ok(mut gzip) = codec::gnu_gzip::GzipWriter::new(level, &mut cmp) else {
            return false;
        };
        let finished = gzip.write_all(content).is_ok() && gzip.finish().is_ok();
        cmp.matched(finished)
    })
}

fn reproduce_zstd(content: &[u8], payload: &[u8], check: Check) -> Option<Recreate> {
    for checksum in [true, false] {
        for &level in &ZSTD_LEVELS {
            let params = ZstdParams {
                level,
                checksum,
                version: zstd_codec::zstd_version_number(),
            };
            let how = Recreate::Zstd(params);
            if compare(
                &how,
                &mut &content[..],
                content.len() as u64,
                payload,
                check,
            ) {
                return Some(how);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_parameters_that_made_a_payload() {
        let content: Vec<u8> = (0..300_000u32)
            .map(|i| (i % 97) as u8 ^ (i >> 11) as u8)
            .collect();
        for level in [9, 1, 6] {
            let p = DeflateParams {
                container: Container::Gzip,
                level,
            };
            let gz = zlib::deflate_bytes(p, &content).unwrap();
            assert_eq!(
                reproduce(Kind::Gzip, &content, &gz, Check::Full),
                Some(Recreate::Zlib(p))
            );
        }
        for level in [3, 7] {
            let p = ZstdParams::profile(level);
            let z = zstd_codec::compress_bytes(p, &content).unwrap();
            assert_eq!(
                reproduce(Kind::Zstd, &content, &z, Check::Full),
                Some(Recreate::Zstd(p))
            );
        }
        // GNU-gzip-style header with a name: not reproducible.
        let mut gz = zlib::deflate_bytes(DeflateParams::GZIP_PROFILE, &content).unwrap();
        gz[4] = 1;
        assert_eq!(reproduce(Kind::Gzip, &content, &gz, Check::Full), None);
        // Not the content's compression at all.
        assert_eq!(
            reproduce(
                Kind::Zstd,
                b"other",
                &zstd_codec::compress_bytes(ZstdParams::profile(3), &content).unwrap(),
                Check::Full
            ),
            None
        );
    }

    #[test]
    fn a_prefix_check_looks_only_at_the_prefix() {
        let content: Vec<u8> = (0..2_000_000u32)
            .map(|i| (i % 251) as u8 ^ (i >> 9) as u8)
            .collect();
        let p = ZstdParams::profile(3);
        let mut z = zstd_codec::compress_bytes(p, &content).unwrap();
        let last = z.len() - 10;
        z[last] ^= 1;
        assert_eq!(reproduce(Kind::Zstd, &content, &z, Check::Full), None);
        assert_eq!(
            reproduce(Kind::Zstd, &content, &z, Check::Prefix(1000)),
            Some(Recreate::Zstd(p))
        );
        // A wrong level shows in the prefix.
        let other = zstd_codec::compress_bytes(ZstdParams::profile(5), &content).unwrap();
        assert_ne!(
            reproduce(Kind::Zstd, &content, &other, Check::Prefix(1000)),
            Some(Recreate::Zstd(p))
        );
        // A prefix longer than the payload is the whole payload.
        let whole = zstd_codec::compress_bytes(p, &content).unwrap();
        assert_eq!(
            reproduce(Kind::Zstd, &content, &whole, Check::Prefix(usize::MAX)),
            Some(Recreate::Zstd(p))
        );
    }
}
