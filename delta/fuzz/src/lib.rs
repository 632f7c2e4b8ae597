//! Helpers shared by the delta fuzz targets.
//!
//! The reader verifies the SHA-256 of the inline-assets and remainder blobs, so almost every
//! mutation of a blob's bytes (bsdiff patches, zstd frames, the deflated remainder) would stop
//! at "the stored bytes are ..., but the header declares ...". Whoever writes a delta also
//! writes those hashes, so a hostile delta always has consistent ones. [`read_fixing_hashes`]
//! models that: after such a mismatch it rewrites every copy of the declared hash in the file
//! (the blob's ITEM and every recipe that names the blob) to the actual hash and reads again.
//! The unfixed input is always read first, so the mismatch path is exercised as well.

use delta::{read_archive, Archive, ReadError, ReadLimits};

/// At most this many blobs are re-hashed per input (two per archive level, nested ones included).
pub const MAX_FIXUPS: usize = 8;

/// Reads `bytes` as a delta, fixing blob hashes as described in the crate documentation.
/// `bytes` is left in its fixed-up form.
#[allow(clippy::result_large_err)] // ReadError is delta's own type, returned as is
pub fn read_fixing_hashes(bytes: &mut Vec<u8>, limits: &ReadLimits) -> Result<Archive, ReadError> {
    let mut fixes = 0;
    loop {
        let result = read_archive(&*bytes, limits);
        if fixes == MAX_FIXUPS {
            return result;
        }
        let Err(ReadError::BlobMismatch {
            declared, actual, ..
        }) = &result
        else {
            return result;
        };
        let (Some(d), Some(a)) = (declared.hash(), actual.hash()) else {
            return result;
        };
        let (d, a) = (d.bytes().to_vec(), a.bytes().to_vec());
        if d.len() != a.len() || declared.length() != actual.length() || !replace_all(bytes, &d, &a)
        {
            return result;
        }
        fixes += 1;
    }
}

/// Replaces every occurrence of `from` in `bytes` by `to` (same length); whether any was found.
pub fn replace_all(bytes: &mut [u8], from: &[u8], to: &[u8]) -> bool {
    assert_eq!(from.len(), to.len());
    if from.is_empty() || bytes.len() < from.len() {
        return false;
    }
    let mut found = false;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if bytes[i..i + from.len()] == *from {
            bytes[i..i + from.len()].copy_from_slice(to);
            found = true;
            i += from.len();
        } else {
            i += 1;
        }
    }
    found
}

/// The largest item length and the sum of the distinct item lengths named anywhere in the
/// delta (target, recipe results and ingredients, nested archives included).
pub fn item_sizes(archive: &Archive) -> (u64, u64) {
    let mut items = std::collections::BTreeSet::new();
    for a in archive.walk() {
        items.insert(a.target);
        for (result, recipe) in a.recipes() {
            items.insert(*result);
            recipe.for_each_item(|i| {
                items.insert(*i);
            });
        }
    }
    let max = items.iter().map(|i| i.length()).max().unwrap_or(0);
    let sum = items.iter().fold(0u64, |s, i| s.saturating_add(i.length()));
    (max, sum)
}
