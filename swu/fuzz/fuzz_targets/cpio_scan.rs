//! Fuzzes the cpio newc/crc reader (`swu::cpio::Archive::scan`) on one input archive, with
//! checksum verification on and off (member hashing on), and checks what a successful scan
//! promises:
//!
//! - verification on accepts a subset of what verification off accepts, with the same index;
//! - the index covers the input exactly: members, trailer and trailing bytes are contiguous
//!   from byte 0 to the end;
//! - each member's recorded byte sum and SHA-256 are those of its data bytes;
//! - rewriting every member with `cpio::Writer::copy_entry` (the lossless path recompression
//!   uses) gives back the input byte for byte.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use swu::cpio::{self, Archive, ReadOptions, Writer};

fuzz_target!(|data: &[u8]| {
    let strict = Archive::scan(
        data,
        ReadOptions {
            verify_checksums: true,
            hash_members: true,
        },
    );
    let lax = Archive::scan(
        data,
        ReadOptions {
            verify_checksums: false,
            hash_members: true,
        },
    );
    if let Ok(strict) = &strict {
        let lax = lax
            .as_ref()
            .expect("verification off refused what verification on accepted");
        assert_eq!(strict, lax, "verification changed the index");
    }
    let Ok(archive) = lax else { return };
    check_index(data, &archive);
    check_rewrite(data, &archive);
});

fn check_index(data: &[u8], archive: &Archive) {
    assert_eq!(
        archive.len,
        data.len() as u64,
        "scan did not account for every byte"
    );
    let mut offset = 0u64;
    for m in &archive.members {
        assert_eq!(m.header_offset, offset, "gap before member {:?}", m.name);
        assert!(
            cpio::check_name(&m.name).is_ok(),
            "bad name {:?} accepted",
            m.name
        );
        let start = m.data_offset() as usize;
        let bytes = &data[start..start + m.data_len() as usize];
        assert_eq!(
            m.data_sum,
            cpio::byte_sum(0, bytes),
            "byte sum of {:?}",
            m.name
        );
        let sha: [u8; 32] = Sha256::digest(bytes).into();
        assert_eq!(m.sha256, Some(sha), "sha256 of {:?}", m.name);
        offset = m.end_offset();
        assert_eq!(offset % 4, 0, "member {:?} ends unaligned", m.name);
    }
    assert_eq!(
        archive.trailer.header_offset, offset,
        "gap before the trailer"
    );
    assert_eq!(
        archive.trailer.end_offset() + archive.trailing.len() as u64,
        archive.len,
        "trailer and trailing bytes do not reach the end"
    );
    assert_eq!(
        &data[archive.trailer.end_offset() as usize..],
        &archive.trailing[..]
    );
}

fn check_rewrite(data: &[u8], archive: &Archive) {
    let mut w = Writer::new(Vec::with_capacity(data.len()));
    for m in &archive.members {
        let start = m.data_offset() as usize;
        let mut bytes = &data[start..start + m.data_len() as usize];
        w.copy_entry(m, &mut bytes).expect("rewriting a member");
    }
    let out = w
        .finish(
            archive.trailer.header.format,
            Some((&archive.trailer, &archive.trailer_data)),
            Some(&archive.trailing),
        )
        .expect("rewriting the trailer");
    assert!(out == data, "lossless rewrite changed the archive");
}
