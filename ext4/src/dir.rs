//! Directory entries: parsing linear directory blocks (which also covers htree directories, whose
//! index nodes hide behind empty entries) and inline directories, and turning names into paths.

use crate::error::{Error, Result};
use crate::le::{u16_at, u32_at, u8_at};

/// Smallest valid `rec_len`: an 8-byte header plus a name padded to 4 bytes.
const MIN_REC_LEN: usize = 12;
const HEADER_LEN: usize = 8;

/// One live directory entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DirEntry<'a> {
    pub ino: u32,
    pub name: &'a [u8],
}

/// Decodes an on-disk `rec_len`; 64 KiB blocks encode 65536 specially.
fn decode_rec_len(raw: u16, block_size: u32) -> usize {
    if block_size < 65536 {
        usize::from(raw)
    } else if raw == u16::MAX || raw == 0 {
        65536
    } else {
        usize::from(raw & 0xFFFC) | (usize::from(raw & 3) << 16)
    }
}

/// Calls `visit` for every entry with a non-zero inode in `region` (one directory block or one
/// inline-data region). Entries must tile the region exactly.
///
/// Deleted entries, the htree index nodes (one empty entry spanning the block) and the
/// `metadata_csum` tail (an empty 12-byte entry) all have inode 0 and are skipped.
pub(crate) fn for_each_entry<'a>(
    region: &'a [u8],
    block_size: u32,
    filetype: bool,
    dir: u32,
    location: &dyn Fn() -> String,
    mut visit: impl FnMut(DirEntry<'a>) -> Result<()>,
) -> Result<()> {
    let bad = |offset: usize, reason: String| Error::BadDirEntry {
        dir,
        location: location(),
        offset,
        reason,
    };
    let mut off = 0usize;
    while off < region.len() {
        if region.len() - off < HEADER_LEN {
            return Err(bad(
                off,
                format!(
                    "{} trailing bytes, too short for an entry",
                    region.len() - off
                ),
            ));
        }
        let ino = u32_at(region, off);
        let rec_len = decode_rec_len(u16_at(region, off + 4), block_size);
        let name_len = if filetype {
            usize::from(u8_at(region, off + 6))
        } else {
            usize::from(u16_at(region, off + 6))
        };
        if rec_len < MIN_REC_LEN || rec_len % 4 != 0 {
            return Err(bad(
                off,
                format!("rec_len {rec_len} is not a multiple of 4 of at least {MIN_REC_LEN}"),
            ));
        }
        if rec_len > region.len() - off {
            return Err(bad(
                off,
                format!(
                    "rec_len {rec_len} runs past the end ({} bytes left)",
                    region.len() - off
                ),
            ));
        }
        if HEADER_LEN + name_len > rec_len {
            return Err(bad(
                off,
                format!("name_len {name_len} does not fit rec_len {rec_len}"),
            ));
        }
        if ino != 0 {
            if name_len == 0 {
                return Err(bad(off, format!("entry for inode {ino} has an empty name")));
            }
            let name = region
                .get(off + HEADER_LEN..off + HEADER_LEN + name_len)
                .unwrap_or_default();
            visit(DirEntry { ino, name })?;
        }
        off += rec_len;
    }
    Ok(())
}

/// Turns a name into a path component. Valid UTF-8 is kept as is; bytes that are not valid UTF-8,
/// and `/` or NUL (which a name cannot contain), become `\xNN`. Returns whether anything was
/// escaped, so callers can flag paths that do not round-trip.
pub(crate) fn escape_name(name: &[u8]) -> (String, bool) {
    if let Ok(text) = std::str::from_utf8(name) {
        if !text.contains(['/', '\0']) {
            return (text.to_string(), false);
        }
    }
    let mut out = String::with_capacity(name.len() + 8);
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '/' || c == '\0' {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    (out, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_invalid_utf8_and_slashes() {
        assert_eq!(escape_name(b"plain"), ("plain".to_string(), false));
        assert_eq!(escape_name("ü".as_bytes()), ("ü".to_string(), false));
        assert_eq!(escape_name(b"a\xffb"), ("a\\xffb".to_string(), true));
        assert_eq!(escape_name(b"a/b"), ("a\\x2fb".to_string(), true));
    }

    #[test]
    fn rec_len_64k() {
        assert_eq!(decode_rec_len(0, 65536), 65536);
        assert_eq!(decode_rec_len(12, 65536), 12);
        assert_eq!(decode_rec_len(12, 4096), 12);
    }

    #[test]
    fn rejects_bad_rec_len() {
        let mut block = vec![0u8; 1024];
        block[0..4].copy_from_slice(&5u32.to_le_bytes());
        block[4..6].copy_from_slice(&6u16.to_le_bytes());
        let r = for_each_entry(&block, 1024, true, 2, &|| "logical block 0".into(), |_| {
            Ok(())
        });
        assert!(
            matches!(r, Err(Error::BadDirEntry { offset: 0, .. })),
            "{r:?}"
        );
    }
}
