//! cpio container: byte-exact round trips of archives made by GNU cpio and by hand, and a
//! clear, located error for every kind of damage.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use swu::cpio::{self, Archive, Error, Format, Header, ReadOptions, Writer};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// Reads an archive and writes it back from the index alone plus each member's data.
fn rewrite(bytes: &[u8]) -> Vec<u8> {
    let archive = Archive::scan(bytes, ReadOptions::default()).expect("scan");
    assert_eq!(archive.len, bytes.len() as u64);
    let mut w = Writer::new(Vec::new());
    for m in &archive.members {
        let mut data = &bytes[m.data_offset() as usize..][..m.data_len() as usize];
        w.copy_entry(m, &mut data).expect("copy");
    }
    w.finish(
        archive.trailer.header.format,
        Some((&archive.trailer, &archive.trailer_data)),
        Some(&archive.trailing),
    )
    .expect("finish")
}

#[test]
fn every_fixture_round_trips_byte_for_byte() {
    let dir = testdata().join("swu");
    let mut n = 0;
    for entry in fs::read_dir(&dir).expect("testdata/swu exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "swu") {
            let bytes = fs::read(&path).unwrap();
            assert!(rewrite(&bytes) == bytes, "{} changed", path.display());
            n += 1;
        }
    }
    assert!(n >= 6, "expected the sample SWUs in {}", dir.display());
}

/// Runs GNU cpio in `dir` on `names`; panics with advice if cpio is not installed.
fn gnu_cpio(dir: &Path, names: &[String], format: &str, reproducible: bool) -> Vec<u8> {
    let mut cmd = Command::new("cpio");
    cmd.current_dir(dir).args(["-o", "-H", format, "--quiet"]);
    if reproducible {
        cmd.arg("--reproducible");
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("GNU cpio is required for this test: run scripts/install-deps.sh");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        for n in names {
            writeln!(stdin, "{n}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "cpio failed");
    out.stdout
}

#[test]
fn gnu_cpio_archives_round_trip_in_all_four_modes() {
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    // Every name length modulo 4 and every data length modulo 4, plus an empty file and a
    // larger one with all byte values (so the crc sum wraps past 8 bits many times).
    for i in 0..12usize {
        let name = format!("{}{}", "f".repeat(1 + i % 5), i);
        let data: Vec<u8> = (0..(i * 7 + i % 4)).map(|k| (k * 31 + i) as u8).collect();
        fs::write(dir.path().join(&name), data).unwrap();
        names.push(name);
    }
    let big: Vec<u8> = (0..300_001u32)
        .map(|k| (k.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fs::write(dir.path().join("big.bin"), &big).unwrap();
    names.push("big.bin".into());
    for format in ["newc", "crc"] {
        for reproducible in [false, true] {
            let bytes = gnu_cpio(dir.path(), &names, format, reproducible);
            assert_eq!(bytes.len() % 512, 0);
            let archive = Archive::scan(&bytes[..], ReadOptions::default()).unwrap();
            assert_eq!(archive.members.len(), names.len());
            let big_entry = archive.member("big.bin").unwrap();
            let start = big_entry.data_offset() as usize;
            assert_eq!(&bytes[start..start + big.len()], &big[..]);
            if format == "crc" {
                assert_eq!(big_entry.header.check, cpio::byte_sum(0, &big));
            }
            if reproducible {
                // --reproducible = --ignore-devno --renumber-inodes.
                assert!(archive
                    .members
                    .iter()
                    .all(|m| m.header.devmajor == 0 && m.header.devminor == 0));
                let inos: Vec<u32> = archive.members.iter().map(|m| m.header.ino).collect();
                assert!(inos.windows(2).all(|w| w[1] == w[0] + 1), "{inos:?}");
            }
            assert!(
                rewrite(&bytes) == bytes,
                "{format} reproducible={reproducible} changed"
            );
        }
    }
}

/// A header with chosen digits, as a hand-written tool might emit it.
fn hand_header(magic: &str, fields: [u32; 13], lower: bool) -> Vec<u8> {
    let mut h = magic.as_bytes().to_vec();
    for f in fields {
        let s = if lower {
            format!("{f:08x}")
        } else {
            format!("{f:08X}")
        };
        h.extend_from_slice(s.as_bytes());
    }
    h
}

fn pad_to4(v: &mut Vec<u8>, fill: u8) {
    while v.len() % 4 != 0 {
        v.push(fill);
    }
}

/// Lower-case hex, mixed formats, odd header values, non-zero padding bytes, no padding to
/// 512 after the trailer: all kept exactly.
#[test]
fn hand_made_archive_round_trips() {
    let mut v = Vec::new();
    let data = b"abcde";
    v.extend(hand_header(
        "070702",
        [
            7,
            0o100600,
            1000,
            1000,
            2,
            0x5f5e0ff,
            5,
            3,
            1,
            0,
            0,
            3,
            cpio::byte_sum(0, data),
        ],
        true,
    ));
    v.extend_from_slice(b"ab\0"); // 110 + 3: three padding bytes
    pad_to4(&mut v, 0xAA);
    v.extend_from_slice(data);
    pad_to4(&mut v, 0x55);
    v.extend(hand_header(
        "070701",
        [9, 0o100644, 0, 0, 1, 1, 0, 0, 0, 0, 0, 4, 0xdead],
        false,
    ));
    v.extend_from_slice(b"xyz\0");
    pad_to4(&mut v, 0);
    v.extend(hand_header(
        "070701",
        [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0],
        false,
    ));
    v.extend_from_slice(b"TRAILER!!!\0");
    pad_to4(&mut v, 0);
    v.extend_from_slice(&[0u8; 7]);
    let archive = Archive::scan(&v[..], ReadOptions::default()).unwrap();
    assert_eq!(archive.members[0].name_padding, vec![0xAA; 3]);
    assert_eq!(archive.members[0].data_padding, vec![0x55; 3]);
    assert_eq!(archive.members[1].header.format, Format::Newc);
    assert_eq!(archive.trailing.len(), 7);
    assert!(rewrite(&v) == v);
}

#[test]
fn streams_members_without_holding_them() {
    // 64 MiB of data streamed through a reader that never materialises it.
    let len: u32 = 64 << 20;
    let mut header = Header::regular_file(Format::Crc, len);
    header.check = (len as u64 * b'z' as u64) as u32;
    let mut w = Writer::new(io::sink());
    w.write_member(&header, "big", None, &mut io::repeat(b'z').take(len as u64))
        .unwrap();
    // Reading: a generated stream of header + data + trailer.
    let head = header_bytes(&header, "big");
    let tail = {
        let mut t = Vec::new();
        let w = Writer::new(&mut t);
        w.finish(Format::Crc, None, Some(&[])).unwrap();
        t
    };
    let stream = io::Cursor::new(head)
        .chain(io::repeat(b'z').take(len as u64))
        .chain(io::Cursor::new(tail));
    let archive = Archive::scan(stream, ReadOptions::default()).unwrap();
    assert_eq!(archive.members[0].data_len(), len as u64);
}

fn header_bytes(h: &Header, name: &str) -> Vec<u8> {
    let mut h = h.clone();
    h.namesize = name.len() as u32 + 1;
    let mut v = h.encode().to_vec();
    v.extend_from_slice(name.as_bytes());
    v.push(0);
    pad_to4(&mut v, 0);
    v
}

fn sample_archive() -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    let h = Header::regular_file(Format::Crc, 0);
    w.write_bytes(&h, "sw-description", b"software = { version = \"1\"; };\n")
        .unwrap();
    w.write_bytes(&h, "payload.bin", &[1, 2, 3, 4, 5, 6, 7])
        .unwrap();
    w.finish(Format::Crc, None, None).unwrap()
}

fn scan_err(bytes: &[u8]) -> Error {
    Archive::scan(bytes, ReadOptions::default()).expect_err("must fail")
}

#[test]
fn bad_magic_is_located() {
    let mut v = sample_archive();
    let second = Archive::scan(&v[..], ReadOptions::default())
        .unwrap()
        .members[1]
        .header_offset;
    v[second as usize + 5] = b'7';
    match scan_err(&v) {
        Error::BadMagic { offset, found } => {
            assert_eq!(offset, second);
            assert_eq!(found, "070707");
        }
        e => panic!("{e}"),
    }
    let msg = scan_err(b"not a cpio archive at all, longer than one header ....................................................................").to_string();
    assert!(msg.contains("magic") && msg.contains("at byte 0"), "{msg}");
}

#[test]
fn non_hex_digits_are_located() {
    let mut v = sample_archive();
    v[6 + 8 * 6 + 3] = b'g'; // filesize field of the first member
    match scan_err(&v) {
        Error::BadHexField { offset, field, .. } => {
            assert_eq!(field, "filesize");
            assert_eq!(offset, 6 + 8 * 6);
        }
        e => panic!("{e}"),
    }
}

#[test]
fn truncation_at_every_length_is_an_error_never_a_panic() {
    let v = sample_archive();
    let archive = Archive::scan(&v[..], ReadOptions::default()).unwrap();
    let end_of_trailer = archive.trailer.end_offset() as usize;
    for len in 0..end_of_trailer {
        let e = scan_err(&v[..len]);
        assert!(
            matches!(e, Error::Truncated { .. } | Error::MissingTrailer { .. }),
            "length {len}: {e}"
        );
    }
    // Inside the data of the second member: the message names it.
    let m = &archive.members[1];
    let msg = scan_err(&v[..m.data_offset() as usize + 2]).to_string();
    assert!(msg.contains("payload.bin") && msg.contains("data"), "{msg}");
}

#[test]
fn namesize_zero_and_absurd_are_rejected() {
    for namesize in [0u32, 1, 256, 0xFFFF_FFFF] {
        let mut h = Header::regular_file(Format::Newc, 0);
        h.namesize = namesize;
        let mut v = h.encode().to_vec();
        v.extend_from_slice(&[0u8; 600]);
        match scan_err(&v) {
            Error::BadNameSize {
                namesize: n,
                offset,
            } => {
                assert_eq!(n, namesize);
                assert_eq!(offset, 6 + 8 * 11);
            }
            e => panic!("{namesize}: {e}"),
        }
    }
}

#[test]
fn missing_trailer_is_rejected() {
    let v = sample_archive();
    let archive = Archive::scan(&v[..], ReadOptions::default()).unwrap();
    let cut = archive.trailer.header_offset as usize;
    assert!(matches!(scan_err(&v[..cut]), Error::MissingTrailer { .. }));
    // Zero padding where the trailer should be is not a trailer either.
    let mut padded = v[..cut].to_vec();
    padded.extend_from_slice(&[0u8; 64]);
    assert!(matches!(scan_err(&padded), Error::MissingTrailer { .. }));
}

#[test]
fn bad_crc_checksum_is_an_error_or_recorded() {
    let mut v = sample_archive();
    let archive = Archive::scan(&v[..], ReadOptions::default()).unwrap();
    let m = &archive.members[1];
    v[m.data_offset() as usize] ^= 0x01;
    match scan_err(&v) {
        Error::Checksum {
            member,
            expected,
            computed,
            ..
        } => {
            assert_eq!(member, "payload.bin");
            assert_eq!(expected, 28); // 1 + 2 + ... + 7
            assert_eq!(computed, 27); // first byte 1 -> 0
        }
        e => panic!("{e}"),
    }
    let lenient = ReadOptions {
        verify_checksums: false,
        hash_members: true,
    };
    let a = Archive::scan(&v[..], lenient).unwrap();
    assert!(!a.members[1].checksum_ok());
    assert!(a.members[0].checksum_ok());
    assert!(a.members[1].sha256.is_some());
}

#[test]
fn escaping_names_are_rejected_with_the_name_and_offset() {
    for name in [
        "../etc/passwd",
        "/abs",
        "dir/file",
        "a/../b",
        "..",
        "nul\0inside",
    ] {
        let mut v = Vec::new();
        let mut h = Header::regular_file(Format::Newc, 0);
        h.namesize = name.len() as u32 + 1;
        v.extend_from_slice(&h.encode());
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        pad_to4(&mut v, 0);
        v.extend_from_slice(&[0u8; 512]);
        match scan_err(&v) {
            Error::BadName { offset, .. } => assert_eq!(offset, 110, "{name:?}"),
            e => panic!("{name:?}: {e}"),
        }
    }
}

#[test]
fn too_much_after_the_trailer_is_rejected() {
    let mut v = sample_archive();
    v.extend(std::iter::repeat_n(
        0u8,
        (cpio::MAX_TRAILING_BYTES + 1) as usize,
    ));
    assert!(matches!(scan_err(&v), Error::TooMuchAfterTrailer { .. }));
}

#[test]
fn writer_refuses_wrong_data_length() {
    let h = Header::regular_file(Format::Newc, 10);
    let mut w = Writer::new(Vec::new());
    let e = w
        .write_member(&h, "x", None, &mut &b"short"[..])
        .unwrap_err();
    assert!(matches!(
        e,
        Error::SizeMismatch {
            got: 5,
            expected: 10,
            ..
        }
    ));
}

#[test]
fn member_reader_gives_exactly_the_data() {
    let v = sample_archive();
    let a = Archive::scan(&v[..], ReadOptions::default()).unwrap();
    let mut out = Vec::new();
    cpio::member_reader(io::Cursor::new(&v), &a.members[1])
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, [1, 2, 3, 4, 5, 6, 7]);
}

proptest! {
    /// Any list of members written by the writer reads back as the same names and data, and
    /// rewrites to the same bytes.
    #[test]
    fn writer_reader_round_trip(
        members in prop::collection::vec(("[a-zA-Z0-9._-]{1,40}", prop::collection::vec(any::<u8>(), 0..300), any::<bool>(), any::<u32>()), 0..8),
        trailing in prop::collection::vec(Just(0u8), 0..600),
    ) {
        let members: Vec<_> = members.into_iter().filter(|(n, ..)| n != "." && n != ".." && n != "TRAILER!!!").collect();
        let mut w = Writer::new(Vec::new());
        for (name, data, crc, mtime) in &members {
            let mut h = Header::regular_file(if *crc { Format::Crc } else { Format::Newc }, 0);
            h.mtime = *mtime;
            w.write_bytes(&h, name, data).unwrap();
        }
        let bytes = w.finish(Format::Newc, None, Some(&trailing)).unwrap();
        let a = Archive::scan(&bytes[..], ReadOptions::default()).unwrap();
        prop_assert_eq!(a.members.len(), members.len());
        for (m, (name, data, _, mtime)) in a.members.iter().zip(&members) {
            prop_assert_eq!(&m.name, name);
            prop_assert_eq!(m.header.mtime, *mtime);
            prop_assert_eq!(&bytes[m.data_offset() as usize..][..data.len()], &data[..]);
        }
        prop_assert_eq!(rewrite(&bytes), bytes);
    }

    /// Arbitrary bytes never panic the reader.
    #[test]
    fn arbitrary_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = Archive::scan(&bytes[..], ReadOptions::default());
    }

    /// Valid archives with random corruption never panic either.
    #[test]
    fn corrupted_archive_never_panics(pos in 0usize..4096, byte in any::<u8>()) {
        let mut v = sample_archive();
        let pos = pos % v.len();
        v[pos] = byte;
        let _ = Archive::scan(&v[..], ReadOptions::default());
    }
}

/// Fuzz finding 1 (docs/robustness.md): a trailer that declares data. SWUpdate never reads the
/// trailer's data, so the archive is accepted; the data is kept and written back exactly.
#[test]
fn trailer_with_data_is_kept_and_rewritten() {
    let bytes = include_bytes!("../fuzz/regressions/cpio_scan/trailer-with-data.cpio");
    let archive = Archive::scan(&bytes[..], ReadOptions::default()).expect("scan");
    assert_eq!(archive.trailer_data, b"DATA");
    assert_eq!(rewrite(bytes), bytes);
}

#[test]
fn trailer_declaring_more_data_than_kept_is_refused() {
    let mut w = Writer::new(Vec::new());
    w.write_bytes(&Header::regular_file(Format::Newc, 0), "a", b"x")
        .unwrap();
    let mut bytes = w.finish(Format::Newc, None, None).unwrap();
    // The trailer's filesize field is the 7th of 13 8-digit fields after the 6-byte magic.
    let trailer_at = Archive::scan(&bytes[..], ReadOptions::default())
        .unwrap()
        .trailer
        .header_offset as usize;
    let field = trailer_at + 6 + 6 * 8;
    bytes[field..field + 8].copy_from_slice(b"7FFFFFFF");
    match scan_err(&bytes) {
        Error::TrailerDataTooLarge { offset, len } => {
            assert_eq!(offset, trailer_at as u64);
            assert_eq!(len, 0x7FFF_FFFF);
        }
        e => panic!("unexpected {e:?}"),
    }
}
