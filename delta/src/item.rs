//! Item definitions: what the format identifies every piece of data by — a length and one hash.
//!
//! Names are never serialized; the applier finds items only by (length, hash). Zero-length items
//! carry no hash and can never be found, which is why the writer refuses them as ingredients.

use std::fmt;

use sha2::{Digest, Sha256};

/// On-disk hash algorithm id of SHA-256 (Windows CryptoAPI `CALG_SHA_256`).
pub const ALG_SHA256: u32 = 0x0000_800C;
/// On-disk hash algorithm id of MD5 (`CALG_MD5`); readable, never written.
pub const ALG_MD5: u32 = 0x0000_8003;

/// The one hash of a non-empty item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemHash {
    // Variant order gives the reference writer's ordering (MD5 before SHA-256 among items of one
    // length), see `Item`'s `Ord`.
    Md5([u8; 16]),
    Sha256([u8; 32]),
}

impl ItemHash {
    /// The on-disk algorithm id.
    pub fn algorithm_id(&self) -> u32 {
        match self {
            ItemHash::Sha256(_) => ALG_SHA256,
            ItemHash::Md5(_) => ALG_MD5,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            ItemHash::Sha256(b) => b,
            ItemHash::Md5(b) => b,
        }
    }

    pub fn algorithm_name(&self) -> &'static str {
        match self {
            ItemHash::Sha256(_) => "sha256",
            ItemHash::Md5(_) => "md5",
        }
    }

    /// Lowercase hex of the hash bytes.
    pub fn hex(&self) -> String {
        hex(self.bytes())
    }
}

/// An item definition: length and, when the length is not zero, its hash.
///
/// Ordering is the reference writer's: length first, then the hash bytes (so recipe sets come
/// out in the same order as ADU's serializer writes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Item {
    length: u64,
    hash: Option<ItemHash>,
}

impl Item {
    /// The empty item (length 0, no hash).
    pub const EMPTY: Item = Item {
        length: 0,
        hash: None,
    };

    /// An item of `length` bytes with SHA-256 `sha256`; a zero length gives [`Item::EMPTY`].
    pub fn sha256(length: u64, sha256: [u8; 32]) -> Item {
        Item::with_hash(length, ItemHash::Sha256(sha256))
    }

    /// An item with any hash; a zero length gives [`Item::EMPTY`].
    pub fn with_hash(length: u64, hash: ItemHash) -> Item {
        if length == 0 {
            Item::EMPTY
        } else {
            Item {
                length,
                hash: Some(hash),
            }
        }
    }

    /// The item that `data` is.
    pub fn of_bytes(data: &[u8]) -> Item {
        Item::sha256(data.len() as u64, Sha256::digest(data).into())
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    /// The hash; `None` exactly when the length is 0.
    pub fn hash(&self) -> Option<&ItemHash> {
        self.hash.as_ref()
    }

    /// The SHA-256 if the item has one.
    pub fn sha256_bytes(&self) -> Option<&[u8; 32]> {
        match &self.hash {
            Some(ItemHash::Sha256(h)) => Some(h),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hash {
            None => write!(f, "(empty item)"),
            Some(h) => write!(
                f,
                "{} bytes {}:{}",
                self.length,
                h.algorithm_name(),
                h.hex()
            ),
        }
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Incremental SHA-256 that also counts bytes, yielding the [`Item`] of what was fed.
#[derive(Default, Clone)]
pub struct ItemHasher {
    hasher: Sha256,
    length: u64,
}

impl ItemHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.length += data.len() as u64;
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    pub fn finish(self) -> Item {
        Item::sha256(self.length, self.hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_items_have_no_hash_and_sort_first() {
        assert_eq!(Item::of_bytes(b""), Item::EMPTY);
        assert!(Item::EMPTY.hash().is_none());
        let a = Item::of_bytes(b"a");
        assert!(Item::EMPTY < a);
        assert!(a < Item::of_bytes(b"ab"));
    }

    #[test]
    fn hex_and_display() {
        let item = Item::of_bytes(b"hello");
        assert_eq!(
            item.hash().map(|h| h.hex()).unwrap_or_default(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(item
            .to_string()
            .starts_with("5 bytes sha256:2cf24dba5fb0a30e26e8"));
        let mut h = ItemHasher::new();
        h.update(b"hel");
        h.update(b"lo");
        assert_eq!(h.finish(), item);
    }
}
