//! Lossless streaming reader and writer for the two cpio formats SWUpdate reads:
//! SVR4 "newc" (`070701`) and "crc" (`070702`).
//!
//! Layout of one member, offsets relative to the start of the stream:
//!
//! ```text
//! header (110 ASCII bytes) | name + NUL (namesize) | zero padding to 4 | data (filesize) | zero padding to 4
//! ```
//!
//! The archive ends with a member named `TRAILER!!!`, usually followed by zero bytes up to a
//! multiple of 512 (GNU cpio). Everything needed to write an archive back byte for byte is kept:
//! every header field (including the spelling of its hex digits), padding bytes as found, and the
//! bytes after the trailer. The crc "checksum" is the sum of the data bytes modulo 2^32.
//!
//! [`Reader`] walks a stream member by member without buffering member data; [`Archive::scan`]
//! builds an index of every member's offsets for random access; [`Writer`] emits members with
//! correct alignment.

use std::fmt;
use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

/// Size of a newc/crc header in bytes.
pub const HEADER_LEN: usize = 110;
/// Name of the member that ends an archive.
pub const TRAILER_NAME: &str = "TRAILER!!!";
/// SWUpdate rejects names of 256 bytes or more (`MAX_IMAGE_FNAME`), counting the NUL.
pub const MAX_NAMESIZE: u32 = 256;
/// Bytes after the trailer that are kept for a lossless rewrite. GNU cpio writes at most 511;
/// more than this is treated as a damaged archive rather than buffered.
pub const MAX_TRAILING_BYTES: u64 = 1 << 20;

/// The two ASCII formats SWUpdate understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `070701`: the check field is not used.
    Newc,
    /// `070702`: the check field holds the byte sum of the data.
    Crc,
}

impl Format {
    /// The 6-byte magic that starts a header in this format.
    pub fn magic(self) -> &'static [u8; 6] {
        match self {
            Format::Newc => b"070701",
            Format::Crc => b"070702",
        }
    }

    /// Human name, as GNU cpio's `-H` option spells it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Newc => "newc",
            Format::Crc => "crc",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Names of the 13 numeric header fields, in header order.
pub const FIELD_NAMES: [&str; 13] = [
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
];

const NAMESIZE: usize = 11;
const CHECK: usize = 12;

/// A member header. Fields are public; the original hex spelling is remembered so that an
/// unchanged field is written back exactly as it was read (upper or lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub format: Format,
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub filesize: u32,
    pub devmajor: u32,
    pub devminor: u32,
    pub rdevmajor: u32,
    pub rdevminor: u32,
    pub namesize: u32,
    pub check: u32,
    /// The 104 hex digits as read, if this header came from an archive.
    original_digits: Option<[u8; 104]>,
}

impl Header {
    /// A header for a regular file (mode 0100644, nlink 1, everything else 0), as
    /// `cpio --reproducible` would write it. `namesize` and `check` are filled in by the writer.
    pub fn regular_file(format: Format, filesize: u32) -> Header {
        Header {
            format,
            ino: 0,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: 0,
            filesize,
            devmajor: 0,
            devminor: 0,
            rdevmajor: 0,
            rdevminor: 0,
            namesize: 0,
            check: 0,
            original_digits: None,
        }
    }

    fn fields(&self) -> [u32; 13] {
        [
            self.ino,
            self.mode,
            self.uid,
            self.gid,
            self.nlink,
            self.mtime,
            self.filesize,
            self.devmajor,
            self.devminor,
            self.rdevmajor,
            self.rdevminor,
            self.namesize,
            self.check,
        ]
    }

    fn from_fields(format: Format, f: [u32; 13], digits: [u8; 104]) -> Header {
        Header {
            format,
            ino: f[0],
            mode: f[1],
            uid: f[2],
            gid: f[3],
            nlink: f[4],
            mtime: f[5],
            filesize: f[6],
            devmajor: f[7],
            devminor: f[8],
            rdevmajor: f[9],
            rdevminor: f[10],
            namesize: f[11],
            check: f[12],
            original_digits: Some(digits),
        }
    }

    /// Parses a 110-byte header found at `offset` (used only in error messages).
    pub fn parse(bytes: &[u8; HEADER_LEN], offset: u64) -> Result<Header, Error> {
        let format = if &bytes[..6] == Format::Newc.magic() {
            Format::Newc
        } else if &bytes[..6] == Format::Crc.magic() {
            Format::Crc
        } else {
            return Err(Error::BadMagic {
                offset,
                found: printable(&bytes[..6]),
            });
        };
        let mut fields = [0u32; 13];
        for (i, field) in fields.iter_mut().enumerate() {
            let digits = &bytes[6 + 8 * i..14 + 8 * i];
            *field = parse_hex8(digits).ok_or_else(|| Error::BadHexField {
                offset: offset + 6 + 8 * i as u64,
                field: FIELD_NAMES[i],
                found: printable(digits),
            })?;
        }
        let mut digits = [0u8; 104];
        digits.copy_from_slice(&bytes[6..]);
        Ok(Header::from_fields(format, fields, digits))
    }

    /// Encodes the header. Fields whose value did not change keep their original digits; changed
    /// or new fields use the case the original header used (upper case, like GNU cpio, if unknown).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..6].copy_from_slice(self.format.magic());
        let lower = self.original_digits.is_some_and(|d| {
            d.iter().any(u8::is_ascii_lowercase) && !d.iter().any(u8::is_ascii_uppercase)
        });
        for (i, value) in self.fields().into_iter().enumerate() {
            let slot = &mut out[6 + 8 * i..14 + 8 * i];
            if let Some(orig) = &self.original_digits {
                let digits = &orig[8 * i..8 * i + 8];
                if parse_hex8(digits) == Some(value) {
                    slot.copy_from_slice(digits);
                    continue;
                }
            }
            let text = if lower {
                format!("{value:08x}")
            } else {
                format!("{value:08X}")
            };
            slot.copy_from_slice(text.as_bytes());
        }
        out
    }
}

fn parse_hex8(digits: &[u8]) -> Option<u32> {
    if digits.len() != 8 {
        return None;
    }
    let mut v: u32 = 0;
    for &d in digits {
        let n = (d as char).to_digit(16)?;
        v = (v << 4) | n;
    }
    Some(v)
}

/// Renders bytes for an error message: printable ASCII as is, the rest escaped.
fn printable(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// Number of zero bytes needed after `offset` to reach a multiple of 4.
pub fn pad4(offset: u64) -> usize {
    ((4 - (offset % 4)) % 4) as usize
}

/// Byte sum modulo 2^32: the value of the crc format's check field.
pub fn byte_sum(initial: u32, data: &[u8]) -> u32 {
    // Sum in u64 chunks to keep the loop cheap; wrap into u32 at the end of each chunk.
    let mut sum = initial;
    for chunk in data.chunks(1 << 16) {
        let s: u64 = chunk.iter().map(|&b| b as u64).sum();
        sum = sum.wrapping_add(s as u32);
    }
    sum
}

/// Errors of the cpio layer. Each names what is wrong and where (member and byte offset).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read failed: {source} (at byte {offset})")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("write failed: {0}")]
    Write(#[source] io::Error),
    #[error(
        "not a newc/crc cpio header: magic \"{found}\", expected \"070701\" or \"070702\" (at byte {offset})"
    )]
    BadMagic { offset: u64, found: String },
    #[error("cpio header field {field} is not 8 hex digits: \"{found}\" (at byte {offset})")]
    BadHexField {
        offset: u64,
        field: &'static str,
        found: String,
    },
    #[error(
        "archive ends inside {what}{} (at byte {offset})",
        member_suffix(member)
    )]
    Truncated {
        offset: u64,
        what: &'static str,
        member: Option<String>,
    },
    #[error("cpio header has namesize {namesize}, must be 2..={max} (at byte {offset})", max = MAX_NAMESIZE - 1)]
    BadNameSize { offset: u64, namesize: u32 },
    #[error("bad member name \"{name}\": {reason} (at byte {offset})")]
    BadName {
        offset: u64,
        name: String,
        reason: &'static str,
    },
    #[error(
        "bad crc checksum in member \"{member}\": data sums to {computed:#010x}, header says {expected:#010x} (at byte {offset})"
    )]
    Checksum {
        offset: u64,
        member: String,
        expected: u32,
        computed: u32,
    },
    #[error("the cpio trailer at byte {offset} declares {len} bytes of data, more than the {MAX_TRAILING_BYTES} kept")]
    TrailerDataTooLarge { offset: u64, len: u64 },
    #[error("archive has no TRAILER!!! member (ends at byte {offset})")]
    MissingTrailer { offset: u64 },
    #[error("{len} bytes follow the cpio trailer, more than the {MAX_TRAILING_BYTES} kept (at byte {offset})")]
    TooMuchAfterTrailer { offset: u64, len: u64 },
    #[error("member \"{member}\" has {len} bytes, larger than the cpio limit of 4 GiB - 1")]
    TooLarge { member: String, len: u64 },
    #[error("member \"{member}\": data source gave {got} bytes, header says {expected}")]
    SizeMismatch {
        member: String,
        expected: u64,
        got: u64,
    },
}

fn member_suffix(member: &Option<String>) -> String {
    match member {
        Some(m) => format!(" of member \"{m}\""),
        None => String::new(),
    }
}

/// Checks a member name the way diffgen requires: plain file names only, so that nothing read
/// from an archive can ever address a path outside a target folder.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.contains('\0') {
        return Err("contains a NUL byte");
    }
    if name.starts_with('/') {
        return Err("absolute path");
    }
    if name == "." || name == ".." || name.split('/').any(|c| c == "..") {
        return Err("contains a \"..\" path component");
    }
    if name.contains('/') {
        return Err("contains \"/\" (SWUpdate matches plain file names only)");
    }
    Ok(())
}

/// One member of an archive, with everything needed to locate and rewrite it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub header: Header,
    pub name: String,
    /// Offset of the header's first byte.
    pub header_offset: u64,
    /// Padding bytes between the name's NUL and the data, as found (normally zeros).
    pub name_padding: Vec<u8>,
    /// Padding bytes after the data, as found (normally zeros).
    pub data_padding: Vec<u8>,
    /// Byte sum of the data, computed while reading.
    pub data_sum: u32,
    /// SHA-256 of the data, if the reader was asked to compute it.
    pub sha256: Option<[u8; 32]>,
}

impl Entry {
    /// Offset of the first data byte.
    pub fn data_offset(&self) -> u64 {
        self.header_offset
            + HEADER_LEN as u64
            + self.header.namesize as u64
            + self.name_padding.len() as u64
    }

    /// Length of the data.
    pub fn data_len(&self) -> u64 {
        self.header.filesize as u64
    }

    /// Offset just past the data padding, where the next header starts.
    pub fn end_offset(&self) -> u64 {
        self.data_offset() + self.data_len() + self.data_padding.len() as u64
    }

    /// Whether the check field agrees with the data (always true for newc, which has none).
    pub fn checksum_ok(&self) -> bool {
        self.header.format == Format::Newc || self.header.check == self.data_sum
    }
}

/// How strictly [`Reader`] treats what it reads.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Fail on a crc member whose check field does not match (otherwise only recorded).
    pub verify_checksums: bool,
    /// Compute the SHA-256 of every member's data.
    pub hash_members: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            verify_checksums: true,
            hash_members: false,
        }
    }
}

/// Streaming reader: yields members in order; member data can be copied out as it passes.
pub struct Reader<R> {
    inner: R,
    offset: u64,
    options: ReadOptions,
    /// The member whose data has not been consumed yet.
    pending: Option<Entry>,
    finished: bool,
    trailer: Option<Entry>,
    /// The trailer's own data (GNU cpio writes none; kept so a rewrite is byte-exact).
    trailer_data: Vec<u8>,
    trailing: Vec<u8>,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_options(inner, ReadOptions::default())
    }

    pub fn with_options(inner: R, options: ReadOptions) -> Self {
        Reader {
            inner,
            offset: 0,
            options,
            pending: None,
            finished: false,
            trailer: None,
            trailer_data: Vec::new(),
            trailing: Vec::new(),
        }
    }

    /// Current offset in the stream.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the next member's header and name. Returns `None` after the trailer (whose entry
    /// and trailing bytes are then available from [`Reader::trailer`]). Unread data of the
    /// previous member is skipped (and still checksummed).
    ///
    /// The returned entry's `data_padding`, `data_sum` and `sha256` are filled in once its data
    /// has been read: use [`Reader::copy_data`], whose result is the complete entry.
    pub fn next_header(&mut self) -> Result<Option<Entry>, Error> {
        if self.pending.is_some() {
            self.copy_data(&mut io::sink())?;
        }
        if self.finished {
            return Ok(None);
        }
        let header_offset = self.offset;
        let mut raw = [0u8; HEADER_LEN];
        let got = self.read_fully(&mut raw)?;
        if got == 0 {
            return Err(Error::MissingTrailer {
                offset: header_offset,
            });
        }
        if got < HEADER_LEN {
            // A short tail of zeros is padding after a missing trailer, not a header.
            if raw[..got].iter().all(|&b| b == 0) {
                return Err(Error::MissingTrailer {
                    offset: header_offset,
                });
            }
            return Err(Error::Truncated {
                offset: self.offset,
                what: "a cpio header",
                member: None,
            });
        }
        let header = Header::parse(&raw, header_offset)?;
        if header.namesize < 2 || header.namesize >= MAX_NAMESIZE {
            return Err(Error::BadNameSize {
                offset: header_offset + 6 + 8 * NAMESIZE as u64,
                namesize: header.namesize,
            });
        }
        let mut name_buf = vec![0u8; header.namesize as usize];
        if self.read_fully(&mut name_buf)? < name_buf.len() {
            return Err(Error::Truncated {
                offset: self.offset,
                what: "a member name",
                member: None,
            });
        }
        let name_offset = header_offset + HEADER_LEN as u64;
        let bad = |name: &[u8], reason| Error::BadName {
            offset: name_offset,
            name: printable(name),
            reason,
        };
        let (last, body) = name_buf.split_last().expect("namesize >= 2");
        if *last != 0 {
            return Err(bad(&name_buf, "not NUL-terminated within namesize"));
        }
        if body.contains(&0) {
            return Err(bad(body, "contains a NUL byte"));
        }
        let name = std::str::from_utf8(body)
            .map_err(|_| bad(body, "not valid UTF-8"))?
            .to_string();
        if name != TRAILER_NAME {
            check_name(&name).map_err(|reason| bad(body, reason))?;
        }
        let mut name_padding = vec![0u8; pad4(self.offset)];
        if self.read_fully(&mut name_padding)? < name_padding.len() {
            return Err(Error::Truncated {
                offset: self.offset,
                what: "the padding after a member name",
                member: Some(name),
            });
        }
        let entry = Entry {
            header,
            name,
            header_offset,
            name_padding,
            data_padding: Vec::new(),
            data_sum: 0,
            sha256: None,
        };
        if entry.name == TRAILER_NAME {
            // SWUpdate stops at the trailer's name and never reads its data, so such archives
            // install; keep the (bounded) data so a rewrite gives back the same bytes.
            let declared = entry.header.filesize as u64;
            if declared > MAX_TRAILING_BYTES {
                return Err(Error::TrailerDataTooLarge {
                    offset: entry.header_offset,
                    len: declared,
                });
            }
            let mut data = Vec::with_capacity(declared as usize);
            let entry = self.finish_member(entry, &mut data)?;
            self.trailer_data = data;
            self.read_trailing()?;
            self.trailer = Some(entry);
            self.finished = true;
            return Ok(None);
        }
        self.pending = Some(entry.clone());
        Ok(Some(entry))
    }

    /// Streams the pending member's data into `out`, reads its padding, checks its checksum,
    /// and returns the completed entry.
    pub fn copy_data(&mut self, out: &mut dyn Write) -> Result<Entry, Error> {
        let entry = self
            .pending
            .take()
            .expect("copy_data called without a pending member");
        self.finish_member(entry, out)
    }

    /// Reads data and padding of `entry` (whose header and name were read) into `out`.
    fn finish_member(&mut self, mut entry: Entry, out: &mut dyn Write) -> Result<Entry, Error> {
        let mut remaining = entry.header.filesize as u64;
        let mut sum = 0u32;
        let mut hasher = self.options.hash_members.then(Sha256::new);
        let mut buf = vec![0u8; 64 * 1024];
        while remaining > 0 {
            let want = remaining.min(buf.len() as u64) as usize;
            let got = self.read_some(&mut buf[..want])?;
            if got == 0 {
                return Err(Error::Truncated {
                    offset: self.offset,
                    what: "the data",
                    member: Some(entry.name),
                });
            }
            let chunk = &buf[..got];
            sum = byte_sum(sum, chunk);
            if let Some(h) = hasher.as_mut() {
                h.update(chunk);
            }
            out.write_all(chunk).map_err(Error::Write)?;
            remaining -= got as u64;
        }
        let mut padding = vec![0u8; pad4(self.offset)];
        if self.read_fully(&mut padding)? < padding.len() {
            return Err(Error::Truncated {
                offset: self.offset,
                what: "the padding after the data",
                member: Some(entry.name),
            });
        }
        entry.data_padding = padding;
        entry.data_sum = sum;
        entry.sha256 = hasher.map(|h| h.finalize().into());
        if self.options.verify_checksums && !entry.checksum_ok() {
            return Err(Error::Checksum {
                offset: entry.header_offset + 6 + 8 * CHECK as u64,
                member: entry.name,
                expected: entry.header.check,
                computed: sum,
            });
        }
        Ok(entry)
    }

    fn read_trailing(&mut self) -> Result<(), Error> {
        let start = self.offset;
        let mut limited = (&mut self.inner).take(MAX_TRAILING_BYTES + 1);
        let mut trailing = Vec::new();
        limited
            .read_to_end(&mut trailing)
            .map_err(|source| Error::Io {
                offset: start,
                source,
            })?;
        if trailing.len() as u64 > MAX_TRAILING_BYTES {
            let mut rest = 0u64;
            rest += io::copy(&mut self.inner, &mut io::sink()).map_err(|source| Error::Io {
                offset: start,
                source,
            })?;
            return Err(Error::TooMuchAfterTrailer {
                offset: start,
                len: trailing.len() as u64 + rest,
            });
        }
        self.offset += trailing.len() as u64;
        self.trailing = trailing;
        Ok(())
    }

    /// The trailer entry, once [`Reader::next_header`] has returned `None`.
    pub fn trailer(&self) -> Option<&Entry> {
        self.trailer.as_ref()
    }

    /// The trailer's data (empty in archives written by GNU cpio).
    pub fn trailer_data(&self) -> &[u8] {
        &self.trailer_data
    }

    /// Bytes found after the trailer (normally zero padding to a multiple of 512).
    pub fn trailing(&self) -> &[u8] {
        &self.trailing
    }

    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Io {
                        offset: self.offset,
                        source,
                    })
                }
            }
        }
    }

    /// Reads until `buf` is full or the stream ends; returns the number of bytes read.
    fn read_fully(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut filled = 0;
        while filled < buf.len() {
            let n = self.read_some(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        Ok(filled)
    }
}

/// Index of a whole archive: every member with its offsets, the trailer and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub members: Vec<Entry>,
    pub trailer: Entry,
    /// The trailer's data (empty in archives written by GNU cpio; at most
    /// [`MAX_TRAILING_BYTES`]).
    pub trailer_data: Vec<u8>,
    /// Bytes after the trailer.
    pub trailing: Vec<u8>,
    /// Total length of the archive.
    pub len: u64,
}

impl Archive {
    /// Reads a whole archive once, streaming, and indexes it. Member data is not kept.
    pub fn scan<R: Read>(reader: R, options: ReadOptions) -> Result<Archive, Error> {
        let mut r = Reader::with_options(reader, options);
        let mut members = Vec::new();
        while r.next_header()?.is_some() {
            members.push(r.copy_data(&mut io::sink())?);
        }
        let trailer = r
            .trailer
            .take()
            .expect("trailer is set when next_header returns None");
        Ok(Archive {
            members,
            trailer,
            trailer_data: std::mem::take(&mut r.trailer_data),
            trailing: std::mem::take(&mut r.trailing),
            len: r.offset,
        })
    }

    /// The first member with this name.
    pub fn member(&self, name: &str) -> Option<&Entry> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Position of the first member with this name.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name == name)
    }
}

/// Reads exactly the data of `entry` from a seekable copy of the archive.
pub fn member_reader<R: Read + io::Seek>(mut archive: R, entry: &Entry) -> io::Result<io::Take<R>> {
    archive.seek(io::SeekFrom::Start(entry.data_offset()))?;
    Ok(archive.take(entry.data_len()))
}

/// Streaming writer. Alignment is computed from the writer's own offset, so the archive must be
/// written from its first byte.
pub struct Writer<W> {
    inner: W,
    offset: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(inner: W) -> Self {
        Writer { inner, offset: 0 }
    }

    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.inner.write_all(bytes).map_err(Error::Write)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Writes padding to a multiple of 4: the `original` bytes if they have the right length
    /// (lossless rewrite), zeros otherwise.
    fn pad(&mut self, original: &[u8]) -> Result<(), Error> {
        let n = pad4(self.offset);
        if original.len() == n {
            self.put(original)
        } else {
            self.put(&[0u8; 3][..n])
        }
    }

    /// Writes one member. `header.namesize` is set from `name`; `header.filesize` must equal the
    /// number of bytes `data` yields and `header.check` must already be right for crc (see
    /// [`Writer::write_bytes`] to have it computed). `padding` supplies original padding bytes
    /// for a lossless rewrite; pass `None` for zeros.
    pub fn write_member(
        &mut self,
        header: &Header,
        name: &str,
        padding: Option<(&[u8], &[u8])>,
        data: &mut dyn Read,
    ) -> Result<(), Error> {
        let mut header = header.clone();
        header.namesize = name.len() as u32 + 1;
        self.put(&header.encode())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        let (name_pad, data_pad) = padding.unwrap_or((&[], &[]));
        self.pad(name_pad)?;
        let expected = header.filesize as u64;
        let mut limited = data.take(expected + 1);
        let got = io::copy(&mut limited, &mut CountingWriter(self)).map_err(Error::Write)?;
        if got != expected {
            return Err(Error::SizeMismatch {
                member: name.to_string(),
                expected,
                got,
            });
        }
        self.pad(data_pad)
    }

    /// Writes a member whose data is in memory; size and (for crc) check are computed.
    pub fn write_bytes(&mut self, header: &Header, name: &str, data: &[u8]) -> Result<(), Error> {
        let len = u32::try_from(data.len()).map_err(|_| Error::TooLarge {
            member: name.to_string(),
            len: data.len() as u64,
        })?;
        let mut header = header.clone();
        header.filesize = len;
        header.check = match header.format {
            Format::Crc => byte_sum(0, data),
            Format::Newc => header.check,
        };
        self.write_member(&header, name, None, &mut &data[..])
    }

    /// Rewrites an entry read from an archive, byte for byte, taking its data from `data`.
    pub fn copy_entry(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<(), Error> {
        self.write_member(
            &entry.header,
            &entry.name,
            Some((&entry.name_padding, &entry.data_padding)),
            data,
        )
    }

    /// Writes the trailer and the bytes that follow it. `trailer` keeps the original trailer's
    /// header fields and data ([`Archive::trailer_data`]); `None` writes a fresh one.
    /// `trailing` of `None` pads to a multiple of 512 like GNU cpio.
    pub fn finish(
        mut self,
        format: Format,
        trailer: Option<(&Entry, &[u8])>,
        trailing: Option<&[u8]>,
    ) -> Result<W, Error> {
        match trailer {
            Some((t, data)) => self.copy_entry(t, &mut &data[..])?,
            None => {
                let mut h = Header::regular_file(format, 0);
                h.mode = 0;
                self.write_member(&h, TRAILER_NAME, None, &mut io::empty())?
            }
        }
        match trailing {
            Some(bytes) => self.put(bytes)?,
            None => {
                let n = ((512 - self.offset % 512) % 512) as usize;
                self.put(&vec![0u8; n])?;
            }
        }
        self.inner.flush().map_err(Error::Write)?;
        Ok(self.inner)
    }
}

/// Adapter so `io::copy` can stream into a [`Writer`] while it counts the offset.
struct CountingWriter<'a, W>(&'a mut Writer<W>);

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.inner.write(buf)?;
        self.0.offset += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(format: Format) -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        let h = Header::regular_file(format, 0);
        w.write_bytes(&h, "sw-description", b"software = {};\n")
            .unwrap();
        w.write_bytes(&h, "a", b"xy").unwrap();
        w.write_bytes(&h, "empty", b"").unwrap();
        w.finish(format, None, None).unwrap()
    }

    #[test]
    fn written_archive_is_aligned_and_padded_to_512() {
        for format in [Format::Newc, Format::Crc] {
            let bytes = sample(format);
            assert_eq!(bytes.len() % 512, 0);
            let a = Archive::scan(&bytes[..], ReadOptions::default()).unwrap();
            assert_eq!(a.members.len(), 3);
            for m in &a.members {
                assert_eq!(m.data_offset() % 4, 0, "{}", m.name);
                assert_eq!(m.end_offset() % 4, 0);
            }
            assert_eq!(a.members[1].data_len(), 2);
            assert_eq!(&bytes[a.members[1].data_offset() as usize..][..2], b"xy");
        }
    }

    #[test]
    fn crc_check_is_byte_sum() {
        let bytes = sample(Format::Crc);
        let a = Archive::scan(&bytes[..], ReadOptions::default()).unwrap();
        assert_eq!(a.members[1].header.check, b'x' as u32 + b'y' as u32);
    }

    #[test]
    fn header_keeps_lowercase_digits_and_uses_their_case_for_changes() {
        let mut raw = [b'0'; HEADER_LEN];
        raw[..6].copy_from_slice(b"070701");
        raw[6 + 8..14 + 8].copy_from_slice(b"000081a4");
        let mut h = Header::parse(&raw, 0).unwrap();
        assert_eq!(h.mode, 0o100644);
        assert_eq!(h.encode(), raw);
        h.filesize = 0xabc;
        let enc = h.encode();
        assert_eq!(&enc[6 + 48..14 + 48], b"00000abc");
    }

    #[test]
    fn names_that_escape_are_rejected() {
        for bad in ["/etc/passwd", "../x", "a/../b", "dir/file", "..", ""] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name("rootfs.ext4.gz").is_ok());
        assert!(check_name("...").is_ok());
    }
}
