//! Items of bytes the planner holds: the (length, SHA-256) identity by which the delta names
//! every piece of data (see `delta::item`).

use delta::Item;
use sha2::{Digest, Sha256};

pub(crate) fn sha256_of(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub(crate) fn item_of(data: &[u8]) -> Item {
    Item::sha256(data.len() as u64, sha256_of(data))
}

/// The item of `len` zero bytes.
pub(crate) fn zeros_item(len: u64) -> Item {
    let block = [0u8; 64 * 1024];
    let mut sha = Sha256::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        sha.update(&block[..n]);
        left -= n as u64;
    }
    Item::sha256(len, sha.finalize().into())
}
