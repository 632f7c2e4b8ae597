//! Recompression end to end: outputs accepted by Debian's real SWUpdate, content preserved,
//! gzip bytes equal to the reference zlib's, deterministic, signatures handled, and every
//! failure leaves no output.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use codec::zlib::{self, Container};
use recompress::{recompress, Error, Options, Profile};
use sha2::{Digest, Sha256};
use swu::cpio::{self, Format, Header, Writer};
use swu::Swu;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn testdata(rel: &str) -> PathBuf {
    root().join("testdata").join(rel)
}

fn cms_command() -> String {
    format!(
        "SIGN_CERT={} SIGN_KEY={} {}",
        testdata("keys/signer.crt").display(),
        testdata("keys/signer.key").display(),
        root().join("scripts/sign-cms.sh").display()
    )
}

fn rsa_command() -> String {
    format!(
        "SIGN_KEY={} {}",
        testdata("keys/rsa.key").display(),
        root().join("scripts/sign-rsa.sh").display()
    )
}

fn options(profile: Profile, sign: Option<String>) -> Options {
    Options {
        profile,
        signing_command: sign,
        ..Options::default()
    }
}

/// Runs the project's SWUpdate checker; panics with its output unless it accepts.
fn assert_swupdate_accepts(file: &Path) {
    let out = Command::new(root().join("scripts/swu-check.sh"))
        .arg("-k")
        .arg(testdata("keys/ca.crt"))
        .arg(file)
        .output()
        .expect("run scripts/swu-check.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("SWU-CHECK: ACCEPT"),
        "SWUpdate did not accept {}: {stdout}{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn member_bytes(swu: &Swu, name: &str) -> Vec<u8> {
    let entry = swu
        .archive
        .member(name)
        .unwrap_or_else(|| panic!("no member {name}"));
    let mut v = Vec::new();
    cpio::member_reader(fs::File::open(&swu.path).unwrap(), entry)
        .unwrap()
        .read_to_end(&mut v)
        .unwrap();
    v
}

fn decompress(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        zlib::inflater(Container::Gzip, bytes, true)
            .read_to_end(&mut out)
            .unwrap();
    } else {
        codec::zstd::decoder(bytes, None, 31)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
    }
    out
}

/// Gzip of `data` by the system zlib (Python), with the gzip profile's parameters.
fn reference_gzip9(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys,zlib\nc=zlib.compressobj(9,zlib.DEFLATED,31,9)\nsys.stdout.buffer.write(c.compress(sys.stdin.buffer.read())+c.flush())",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is required: run scripts/install-deps.sh");
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let t = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    t.join().unwrap().unwrap();
    out.stdout
}

#[test]
fn zstd_profile_signed_with_cms_is_accepted_by_swupdate_and_keeps_content() {
    let dir = tempfile::tempdir().unwrap();
    let input = testdata("swu/sample.swu");
    let out = dir.path().join("out.swu");
    let report = recompress(
        &input,
        &out,
        &options(Profile::zstd(3), Some(cms_command())),
    )
    .unwrap();
    assert!(report.signed && report.resigned);
    assert_eq!(report.members.len(), 3);
    assert_swupdate_accepts(&out);

    let before = Swu::open(&input).unwrap();
    let after = Swu::open(&out).unwrap();
    assert!(after.is_signed());
    for m in &report.members {
        let old = decompress(&member_bytes(&before, &m.original_name));
        let new_bytes = member_bytes(&after, &m.name);
        assert!(
            new_bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
            "{}",
            m.name
        );
        // The frame records the content size.
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&new_bytes).unwrap(),
            Some(old.len() as u64)
        );
        let new = decompress(&new_bytes);
        assert!(old == new, "{} content changed", m.name);
        assert_eq!(m.content_sha256, <[u8; 32]>::from(Sha256::digest(&new)));
    }
    // .gz became .zst in both the member and sw-description.
    assert!(after.archive.member("rootfs.ext4.zst").is_some());
    assert!(after.archive.member("rootfs.ext4.gz").is_none());
    assert!(after
        .swdesc
        .text()
        .contains("filename = \"rootfs.ext4.zst\";"));
    // Uncompressed members are byte-identical, with the same header fields.
    assert_eq!(
        member_bytes(&before, "update.sh"),
        member_bytes(&after, "update.sh")
    );
    let (a, b) = (
        before.archive.member("update.sh").unwrap(),
        after.archive.member("update.sh").unwrap(),
    );
    assert_eq!(
        (a.header.mode, a.header.mtime, a.header.ino),
        (b.header.mode, b.header.mtime, b.header.ino)
    );
    // GNU cpio's padding to 512 is kept.
    assert_eq!(fs::metadata(&out).unwrap().len() % 512, 0);
}

#[test]
fn gzip_profile_equals_reference_zlib_and_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.swu");
    let report = recompress(
        &testdata("swu/sample.swu"),
        &out,
        &options(Profile::gzip(), Some(cms_command())),
    )
    .unwrap();
    assert_swupdate_accepts(&out);
    let after = Swu::open(&out).unwrap();
    for m in &report.members {
        let bytes = member_bytes(&after, &m.name);
        let content = decompress(&bytes);
        assert!(
            bytes == reference_gzip9(&content),
            "{}: gzip bytes differ from the reference zlib's",
            m.name
        );
    }
    // The zstd kernel became gzip, and its name followed; `compressed = true` stayed.
    assert!(after.archive.member("kernel.img.gz").is_some());
    assert!(after.swdesc.text().contains("compressed = true;"));
    let kernel = after
        .inventory
        .artifacts
        .iter()
        .find(|a| a.filename.as_deref() == Some("kernel.img.gz"))
        .unwrap();
    assert_eq!(kernel.compressed.label(), "zlib");
}

#[test]
fn output_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    for (input, sign) in [
        ("swu/sample-crc.swu", None),
        ("swu/sample-newc-repro.swu", Some(rsa_command())),
    ] {
        for profile in [Profile::zstd(3), Profile::gzip(), Profile::zstd(9)] {
            let a = dir.path().join("a.swu");
            let b = dir.path().join("b.swu");
            let o = options(profile, sign.clone());
            recompress(&testdata(input), &a, &o).unwrap();
            recompress(&testdata(input), &b, &o).unwrap();
            assert!(
                fs::read(&a).unwrap() == fs::read(&b).unwrap(),
                "{input} {profile:?}"
            );
        }
    }
}

#[test]
fn sw_description_edits_are_lossless() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.swu");
    let input = testdata("swu/sample-crc.swu");
    recompress(&input, &out, &Options::default()).unwrap();
    let before = Swu::open(&input).unwrap();
    let after = Swu::open(&out).unwrap();
    let old: Vec<&str> = before.swdesc.text().lines().collect();
    let new: Vec<&str> = after.swdesc.text().lines().collect();
    assert_eq!(old.len(), new.len(), "no lines added or removed");
    for (o, n) in old.iter().zip(&new) {
        if o != n {
            let key = o.trim_start().split([' ', '=']).next().unwrap();
            assert!(
                ["sha256", "compressed", "filename"].contains(&key),
                "unexpected change:\n- {o}\n+ {n}"
            );
        }
    }
    // Comments survived.
    assert!(after
        .swdesc
        .text()
        .contains("/* Images are written to raw partitions. */"));
    assert!(after
        .swdesc
        .text()
        .contains("// deprecated boolean form: means zlib"));
}

#[test]
fn collections_update_every_entry_of_a_shared_member() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.swu");
    recompress(&testdata("swu/collections.swu"), &out, &Options::default()).unwrap();
    let after = Swu::open(&out).unwrap();
    assert!(after.problems().is_empty());
    let rootfs: Vec<_> = after
        .inventory
        .artifacts
        .iter()
        .filter(|a| a.filename.as_deref() == Some("rootfs.ext4.zst"))
        .collect();
    assert_eq!(rootfs.len(), 2, "copy1 and copy2 both renamed");
    assert!(rootfs.iter().all(|a| a.compressed.label() == "zstd"));
    let json_out = dir.path().join("json.swu");
    recompress(&testdata("swu/json.swu"), &json_out, &Options::default()).unwrap();
    let j = Swu::open(&json_out).unwrap();
    assert!(j.swdesc.text().contains("\"compressed\": \"zstd\""));
    assert!(j.problems().is_empty());
}

#[test]
fn keep_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.swu");
    let o = Options {
        keep_names: true,
        ..Options::default()
    };
    recompress(&testdata("swu/sample-crc.swu"), &out, &o).unwrap();
    let after = Swu::open(&out).unwrap();
    assert!(after.archive.member("rootfs.ext4.gz").is_some());
    assert!(after.problems().is_empty());
}

#[test]
fn signature_rules() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.swu");
    // Signed input, changed sw-description, no signing command: refused, nothing written.
    let e = recompress(&testdata("swu/sample.swu"), &out, &Options::default()).unwrap_err();
    assert!(matches!(e, Error::StaleSignature(_)), "{e}");
    assert!(!out.exists());
    // --drop-signature: written unsigned.
    let o = Options {
        drop_signature: true,
        ..Options::default()
    };
    let r = recompress(&testdata("swu/sample.swu"), &out, &o).unwrap();
    assert!(!r.signed);
    assert!(!Swu::open(&out).unwrap().is_signed());
    // Unsigned input + signing command: the signature is inserted as member 2.
    let r = recompress(
        &testdata("swu/sample-crc.swu"),
        &out,
        &options(Profile::zstd(3), Some(cms_command())),
    )
    .unwrap();
    assert!(r.signed);
    let s = Swu::open(&out).unwrap();
    assert_eq!(s.archive.members[1].name, "sw-description.sig");
    assert_eq!(s.archive.members[1].header.format, Format::Crc);
    assert_swupdate_accepts(&out);
}

#[test]
fn unchanged_sw_description_keeps_its_signature() {
    // Nothing compressed: sw-description stays byte-identical, so the old signature is valid.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.swu");
    let desc = b"software = { version = \"1\"; hardware-compatibility = [\"1.0\"]; images = ( { filename = \"raw.img\"; device = \"/dev/x\"; } ); };";
    let mut w = Writer::new(Vec::new());
    let h = Header::regular_file(Format::Crc, 0);
    w.write_bytes(&h, "sw-description", desc).unwrap();
    w.write_bytes(&h, "sw-description.sig", b"old-signature")
        .unwrap();
    w.write_bytes(&h, "raw.img", b"data").unwrap();
    let bytes = w.finish(Format::Crc, None, None).unwrap();
    fs::write(&input, &bytes).unwrap();
    let out = dir.path().join("out.swu");
    let r = recompress(&input, &out, &Options::default()).unwrap();
    assert!(r.signed && !r.resigned && r.members.is_empty());
    assert_eq!(fs::read(&out).unwrap(), bytes, "identical copy");
}

#[test]
fn bad_signing_commands_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.swu");
    let input = testdata("swu/sample-crc.swu");
    for (cmd, needle) in [
        ("echo no key >&2; exit 4; :", "exit 4"),
        ("true", "wrote no signature"),
        ("/nonexistent/signer", "exit 127"),
    ] {
        let e = recompress(&input, &out, &options(Profile::zstd(3), Some(cmd.into()))).unwrap_err();
        assert!(e.to_string().contains(needle), "{cmd}: {e}");
        assert!(!out.exists(), "{cmd}: output written");
    }
    let o = Options {
        signing_command: Some("sleep 20; :".into()),
        signing_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    let e = recompress(&input, &out, &o).unwrap_err();
    assert!(e.to_string().contains("did not finish"), "{e}");
    assert!(!out.exists());
    // No temp files left behind in the output folder.
    let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Builds a crc SWU whose single image has the given bytes and sw-description attributes.
fn one_image_swu(path: &Path, image: &[u8], attrs: &str, sha: Option<&[u8]>) {
    let sha = swu::hex::encode(&Sha256::digest(sha.unwrap_or(image)));
    let desc = format!(
        "software = {{ images = ( {{ filename = \"img.gz\"; device = \"/dev/x\"; {attrs} sha256 = \"{sha}\"; }} ); }};"
    );
    let mut w = Writer::new(Vec::new());
    let h = Header::regular_file(Format::Crc, 0);
    w.write_bytes(&h, "sw-description", desc.as_bytes())
        .unwrap();
    w.write_bytes(&h, "img.gz", image).unwrap();
    fs::write(path, w.finish(Format::Crc, None, None).unwrap()).unwrap();
}

#[test]
fn bad_inputs_name_the_artifact_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.swu");
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let gz = zlib::deflate_bytes(zlib::DeflateParams::GZIP_PROFILE, &content).unwrap();
    let mut corrupt = gz.clone();
    corrupt[gz.len() / 2] ^= 0xFF;
    // (label, member bytes, sw-description attributes, bytes the sha256 is computed over,
    // expected message)
    type Case<'a> = (&'a str, Vec<u8>, &'a str, Option<&'a [u8]>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "corrupt-gzip",
            corrupt,
            "compressed = \"zlib\";",
            None,
            "cannot decompress",
        ),
        (
            "truncated-gzip",
            gz[..gz.len() - 100].to_vec(),
            "compressed = \"zlib\";",
            None,
            "cannot decompress",
        ),
        (
            "zstd-label-on-gzip",
            gz.clone(),
            "compressed = \"zstd\";",
            None,
            "does not start like a zstd frame",
        ),
        (
            "sha-mismatch",
            gz.clone(),
            "compressed = \"zlib\";",
            Some(b"other"),
            "sha256 mismatch",
        ),
    ];
    for (label, image, attrs, sha, needle) in cases {
        let input = dir.path().join(format!("{label}.swu"));
        one_image_swu(&input, &image, attrs, sha);
        let before = fs::read(&input).unwrap();
        let e = recompress(&input, &out, &Options::default()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(needle), "{label}: {msg}");
        if label != "sha-mismatch" {
            assert!(msg.contains("img.gz"), "{label}: artifact not named: {msg}");
        }
        assert!(!out.exists(), "{label}");
        assert_eq!(fs::read(&input).unwrap(), before, "{label}: input modified");
    }
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| !n.to_string_lossy().ends_with(".swu"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn multi_member_gzip_and_encrypted_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.swu");
    let p = zlib::DeflateParams::GZIP_PROFILE;
    let mut two = zlib::deflate_bytes(p, b"first member, ").unwrap();
    two.extend(zlib::deflate_bytes(p, b"second member").unwrap());
    let input = dir.path().join("multi.swu");
    one_image_swu(&input, &two, "compressed = \"zlib\";", None);
    let r = recompress(&input, &out, &Options::default()).unwrap();
    assert_eq!(r.members[0].content_len, 27);
    let s = Swu::open(&out).unwrap();
    assert_eq!(
        decompress(&member_bytes(&s, "img.zst")),
        b"first member, second member"
    );

    let input = dir.path().join("enc.swu");
    one_image_swu(
        &input,
        b"\x1f\x8bciphertext",
        "compressed = \"zlib\"; encrypted = true;",
        None,
    );
    let r = recompress(&input, &out, &Options::default()).unwrap();
    assert!(r.members.is_empty());
    assert!(
        r.warnings.iter().any(|w| w.contains("encrypted")),
        "{:?}",
        r.warnings
    );
    assert_eq!(
        member_bytes(&Swu::open(&out).unwrap(), "img.gz"),
        b"\x1f\x8bciphertext"
    );
}

#[test]
fn large_image_streams_through() {
    // 48 MiB of content: hints from the gzip trailer size the zstd frame; nothing is held in
    // memory (RSS is measured by scripts/bench-recompress.sh, not here).
    let dir = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..48u32 << 20)
        .map(|i| ((i >> 10) ^ (i % 7)) as u8)
        .collect();
    let gz = zlib::deflate_bytes(
        zlib::DeflateParams {
            container: Container::Gzip,
            level: 1,
        },
        &content,
    )
    .unwrap();
    drop(content);
    let input = dir.path().join("big.swu");
    one_image_swu(&input, &gz, "compressed = \"zlib\";", None);
    let out = dir.path().join("out.swu");
    let r = recompress(&input, &out, &Options::default()).unwrap();
    assert_eq!(r.members[0].content_len, 48 << 20);
}
