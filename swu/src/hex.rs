//! Lowercase hex encoding of digests, as sw-description writes `sha256`.

/// Lowercase hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Decodes a 64-digit hex SHA-256 (either case).
pub fn decode_sha256(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let d = [0xABu8; 32];
        let h = super::encode(&d);
        assert_eq!(&h[..4], "abab");
        assert_eq!(super::decode_sha256(&h.to_uppercase()), Some(d));
        assert_eq!(super::decode_sha256("abc"), None);
        assert_eq!(super::decode_sha256(&"zz".repeat(32)), None);
    }
}
