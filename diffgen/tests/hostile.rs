//! The hostile-input catalogue: named cases of damaged, crafted or impossible inputs and
//! environments. Every one must end in exactly one `Error:` line on stderr and exit code 1,
//! never a panic or a crash; leave no output file and no temp file; and leave its inputs
//! byte-identical.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use swu::cpio::{Archive, Format, Header, ReadOptions, Writer};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
}

/// One case: what to run, what must not appear, what the error must say.
struct Case {
    name: &'static str,
    /// Arguments; `{d}` is replaced by the case's folder.
    args: Vec<String>,
    /// Shell prefix (e.g. a ulimit) or empty.
    shell: &'static str,
    /// Paths (relative to the case folder) that must not exist afterwards.
    no_output: Vec<&'static str>,
    needle: &'static str,
}

fn case(
    name: &'static str,
    args: &[&str],
    no_output: &[&'static str],
    needle: &'static str,
) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        shell: "",
        no_output: no_output.to_vec(),
        needle,
    }
}

fn swu_bytes(members: &[(&str, &[u8])], format: Format) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    for (name, data) in members {
        w.write_bytes(&Header::regular_file(format, 0), name, data)
            .unwrap();
    }
    w.finish(format, None, None).unwrap()
}

fn desc_for(items: &[(&str, &[u8], &str)]) -> String {
    let mut s = String::from("software = { version = \"1.0\"; images = (");
    for (i, (name, data, extra)) in items.iter().enumerate() {
        s.push_str(&format!(
            "{}{{ filename = \"{name}\"; device = \"/dev/x\"; {extra} sha256 = \"{}\"; }}",
            if i > 0 { ", " } else { "" },
            swu::hex::encode(&Sha256::digest(data))
        ));
    }
    s.push_str("); };");
    s
}

/// Writes every input file of the catalogue into `d`.
fn prepare(d: &Path) {
    let good = fs::read(testdata("swu/sample-crc.swu")).unwrap();
    let a = Archive::scan(&good[..], ReadOptions::default()).unwrap();
    let rootfs = a.member("rootfs.ext4.gz").unwrap().clone();
    let w = |name: &str, bytes: &[u8]| fs::write(d.join(name), bytes).unwrap();
    w("good.swu", &good);
    fs::copy(testdata("swu/release-v1.swu"), d.join("v1.swu")).unwrap();
    fs::copy(testdata("swu/release-v2.swu"), d.join("v2.swu")).unwrap();
    for (pct, name) in [
        (10, "trunc10.swu"),
        (50, "trunc50.swu"),
        (90, "trunc90.swu"),
    ] {
        w(name, &good[..good.len() * pct / 100]);
    }
    w(
        "trunc-trailer.swu",
        &good[..a.trailer.header_offset as usize + 60],
    );
    w("no-trailer.swu", &good[..a.trailer.header_offset as usize]);
    let mut v = good.clone();
    let check_at = rootfs.header_offset as usize + 6 + 8 * 12;
    v[check_at..check_at + 8].copy_from_slice(b"DEADBEEF");
    w("bad-crc.swu", &v);
    let mut v = good.clone();
    v[rootfs.header_offset as usize] = b'9';
    w("bad-magic.swu", &v);
    let mut v = good.clone();
    v[rootfs.header_offset as usize + 6 + 8 * 3] = b'Q';
    w("non-hex.swu", &v);
    let mut v = good.clone();
    let size_at = rootfs.header_offset as usize + 6 + 8 * 6;
    v[size_at..size_at + 8].copy_from_slice(b"7FFFFFFF");
    w("size-beyond.swu", &v);
    let mut v = good.clone();
    let ns = rootfs.header_offset as usize + 6 + 8 * 11;
    v[ns..ns + 8].copy_from_slice(b"00100000");
    w("namesize-absurd.swu", &v);
    let desc = b"software = {};";
    for (file, name) in [
        ("dotdot.swu", "../../etc/passwd"),
        ("slash.swu", "dir/file"),
        ("absolute.swu", "/etc/passwd"),
    ] {
        w(
            file,
            &swu_bytes(&[("sw-description", desc), (name, b"x")], Format::Crc),
        );
    }
    let mut v = swu_bytes(&[("sw-description", desc), ("abcd", b"x")], Format::Newc);
    let at = v.windows(4).position(|x| x == b"abcd").unwrap();
    v[at + 1] = 0;
    w("nul-name.swu", &v);
    let long = "n".repeat(300);
    let mut v = swu_bytes(&[("sw-description", desc)], Format::Newc);
    // Splice a member with a 301-byte namesize in front of the trailer.
    let trailer = Archive::scan(&v[..], ReadOptions::default())
        .unwrap()
        .trailer
        .header_offset as usize;
    let mut h = Header::regular_file(Format::Newc, 0);
    h.namesize = long.len() as u32 + 1;
    let mut member = h.encode().to_vec();
    member.extend_from_slice(long.as_bytes());
    member.push(0);
    while (trailer + member.len()) % 4 != 0 {
        member.push(0);
    }
    v.splice(trailer..trailer, member);
    w("long-name.swu", &v);
    w(
        "not-first.swu",
        &swu_bytes(&[("img", b"x"), ("sw-description", desc)], Format::Crc),
    );
    let huge = format!(
        "software = {{ description = \"{}\"; }};",
        "x".repeat(17 << 20)
    );
    w(
        "huge-swdesc.swu",
        &swu_bytes(&[("sw-description", huge.as_bytes())], Format::Crc),
    );
    let deep = format!(
        "software = {{ a = {}1{}; }};",
        "(".repeat(500),
        ")".repeat(500)
    );
    w(
        "deep-swdesc.swu",
        &swu_bytes(&[("sw-description", deep.as_bytes())], Format::Crc),
    );
    let missing = desc_for(&[("gone.gz", b"x", "compressed = \"zlib\";")]);
    w(
        "missing-member.swu",
        &swu_bytes(&[("sw-description", missing.as_bytes())], Format::Crc),
    );
    let d2 = desc_for(&[("img", b"x", "")]);
    w(
        "duplicate.swu",
        &swu_bytes(
            &[
                ("sw-description", d2.as_bytes()),
                ("img", b"x"),
                ("img", b"x"),
            ],
            Format::Crc,
        ),
    );
    let mismatch = desc_for(&[("img.gz", b"original", "compressed = \"zlib\";")]);
    w(
        "sha-mismatch.swu",
        &swu_bytes(
            &[
                ("sw-description", mismatch.as_bytes()),
                ("img.gz", b"tampered"),
            ],
            Format::Crc,
        ),
    );
    let gz = codec::zlib::deflate_bytes(
        codec::zlib::DeflateParams::GZIP_PROFILE,
        &vec![7u8; 100_000],
    )
    .unwrap();
    let mut corrupt = gz.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    let cd = desc_for(&[("img.gz", &corrupt, "compressed = \"zlib\";")]);
    w(
        "corrupt-gzip.swu",
        &swu_bytes(
            &[("sw-description", cd.as_bytes()), ("img.gz", &corrupt)],
            Format::Crc,
        ),
    );
    let zd = desc_for(&[("img.gz", &gz, "compressed = \"zstd\";")]);
    w(
        "zstd-label.swu",
        &swu_bytes(
            &[("sw-description", zd.as_bytes()), ("img.gz", &gz)],
            Format::Crc,
        ),
    );
    let syntax = b"software = {\n  images = ( { filename = ; } );\n};";
    w(
        "syntax.swu",
        &swu_bytes(&[("sw-description", syntax)], Format::Crc),
    );
    w("empty.swu", b"");
    // Deltas: a good one between recompressed releases (so it needs its source), and damaged
    // copies.
    for v in ["v1", "v2"] {
        let o = Command::new(env!("CARGO_BIN_EXE_diffgen"))
            .args(["recompress", "--compression", "gzip", "--drop-signature"])
            .arg(d.join(format!("{v}.swu")))
            .arg(d.join(format!("{v}r.swu")))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_diffgen"))
        .args(["create", "--profile", "gzip", "--source"])
        .arg(d.join("v1r.swu"))
        .arg("--target")
        .arg(d.join("v2r.swu"))
        .arg("-o")
        .arg(d.join("good.diff"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The good delta is a gzip-profile one: ADU's own applier must rebuild it too.
    shared_fixtures::check_delta_with_adu(
        &d.join("v1r.swu"),
        &d.join("good.diff"),
        &fs::read(d.join("v2r.swu")).unwrap(),
        false,
    );
    let delta = fs::read(d.join("good.diff")).unwrap();
    w("trunc.diff", &delta[..delta.len() / 2]);
    w("trunc-header.diff", &delta[..20]);
    let mut v = delta.clone();
    v[5] ^= 0x40;
    w("bad-version.diff", &v);
    let mut v = delta.clone();
    let n = v.len();
    v[n - 10] ^= 0xff;
    w("flipped-blob.diff", &v);
    w("garbage.diff", &vec![0x5Au8; 4096]);
    w("empty.diff", b"");
    // ext images.
    w("not-ext.img", &vec![0u8; 4096]);
    let mut img = Vec::new();
    {
        use std::io::Read;
        let s = swu::Swu::open(&d.join("v2.swu")).unwrap();
        let e = s.archive.member("rootfs.ext4.gz").unwrap();
        let r = swu::cpio::member_reader(fs::File::open(d.join("v2.swu")).unwrap(), e).unwrap();
        codec::zlib::inflater(codec::zlib::Container::Gzip, r, true)
            .read_to_end(&mut img)
            .unwrap();
    }
    let mut bad = img.clone();
    // Inode table of group 0 pointing far past the end: corrupt the first group descriptor.
    let bs = 1024usize;
    let gd = 2 * bs;
    bad[gd + 8..gd + 12].copy_from_slice(&0x00FF_FFFFu32.to_le_bytes());
    w("corrupt.ext4", &bad);
    fs::create_dir_all(d.join("adir")).unwrap();
}

fn catalogue() -> Vec<Case> {
    let sign_cms = format!(
        "SIGN_CERT={} SIGN_KEY={} {}",
        testdata("keys/signer.crt").display(),
        testdata("keys/signer.key").display(),
        testdata("../scripts/sign-cms.sh").display()
    );
    let _ = sign_cms;
    let mut c = vec![
        case(
            "truncated at 10 %",
            &["inspect", "{d}/trunc10.swu"],
            &[],
            "archive ends inside",
        ),
        case(
            "truncated at 50 %",
            &["recompress", "{d}/trunc50.swu", "{d}/o.swu"],
            &["o.swu"],
            "archive ends inside",
        ),
        case(
            "truncated at 90 %",
            &[
                "create",
                "--source",
                "{d}/trunc90.swu",
                "--target",
                "{d}/good.swu",
                "-o",
                "{d}/o.diff",
            ],
            &["o.diff"],
            "archive ends inside",
        ),
        case(
            "truncated inside the trailer",
            &["inspect", "{d}/trunc-trailer.swu"],
            &[],
            "ends inside",
        ),
        case(
            "missing trailer",
            &["recompress", "{d}/no-trailer.swu", "{d}/o.swu"],
            &["o.swu"],
            "no TRAILER!!!",
        ),
        case(
            "wrong crc checksum",
            &["recompress", "{d}/bad-crc.swu", "{d}/o.swu"],
            &["o.swu"],
            "bad crc checksum",
        ),
        case(
            "wrong crc checksum as delta target",
            &[
                "create",
                "--source",
                "{d}/good.swu",
                "--target",
                "{d}/bad-crc.swu",
                "-o",
                "{d}/o.diff",
            ],
            &["o.diff"],
            "bad crc checksum",
        ),
        case(
            "bad cpio magic",
            &["inspect", "{d}/bad-magic.swu"],
            &[],
            "magic",
        ),
        case(
            "non-hex header digits",
            &["recompress", "{d}/non-hex.swu", "{d}/o.swu"],
            &["o.swu"],
            "not 8 hex digits",
        ),
        case(
            "declared size far beyond the file",
            &["inspect", "{d}/size-beyond.swu"],
            &[],
            "ends inside the data",
        ),
        case(
            "absurd namesize",
            &["inspect", "{d}/namesize-absurd.swu"],
            &[],
            "namesize",
        ),
        case(
            "member name with ..",
            &["recompress", "{d}/dotdot.swu", "{d}/o.swu"],
            &["o.swu"],
            "\"..\"",
        ),
        case(
            "member name with /",
            &["inspect", "{d}/slash.swu"],
            &[],
            "contains \"/\"",
        ),
        case(
            "absolute member name",
            &["inspect", "{d}/absolute.swu"],
            &[],
            "absolute path",
        ),
        case(
            "NUL inside a member name",
            &["inspect", "{d}/nul-name.swu"],
            &[],
            "NUL",
        ),
        case(
            "member name of 300 bytes",
            &["inspect", "{d}/long-name.swu"],
            &[],
            "namesize",
        ),
        case(
            "sw-description not first",
            &["recompress", "{d}/not-first.swu", "{d}/o.swu"],
            &["o.swu"],
            "first member",
        ),
        case(
            "sw-description of 17 MiB",
            &["inspect", "{d}/huge-swdesc.swu"],
            &[],
            "more than the",
        ),
        case(
            "sw-description nested 500 deep",
            &["inspect", "{d}/deep-swdesc.swu"],
            &[],
            "nesting deeper",
        ),
        case(
            "sw-description syntax error",
            &["recompress", "{d}/syntax.swu", "{d}/o.swu"],
            &["o.swu"],
            "line 2, column",
        ),
        case(
            "referenced member missing",
            &["recompress", "{d}/missing-member.swu", "{d}/o.swu"],
            &["o.swu"],
            "has no member",
        ),
        case(
            "duplicate members",
            &["recompress", "{d}/duplicate.swu", "{d}/o.swu"],
            &["o.swu"],
            "more than once",
        ),
        case(
            "sha256 mismatch",
            &["recompress", "{d}/sha-mismatch.swu", "{d}/o.swu"],
            &["o.swu"],
            "sha256 mismatch",
        ),
        case(
            "corrupt gzip payload",
            &["recompress", "{d}/corrupt-gzip.swu", "{d}/o.swu"],
            &["o.swu"],
            "cannot decompress",
        ),
        case(
            "zstd label on gzip data",
            &["recompress", "{d}/zstd-label.swu", "{d}/o.swu"],
            &["o.swu"],
            "does not start like a zstd frame",
        ),
        case(
            "empty file",
            &["inspect", "{d}/empty.swu"],
            &[],
            "no TRAILER!!!",
        ),
        case(
            "signing command fails",
            &[
                "recompress",
                "{d}/good.swu",
                "{d}/o.swu",
                "--sign",
                "exit 3; :",
            ],
            &["o.swu"],
            "signing command failed (exit 3)",
        ),
        case(
            "signing command hangs",
            &[
                "recompress",
                "{d}/good.swu",
                "{d}/o.swu",
                "--sign",
                "sleep 30; :",
                "--sign-timeout",
                "1",
            ],
            &["o.swu"],
            "did not finish",
        ),
        case(
            "signing command writes no signature",
            &["recompress", "{d}/good.swu", "{d}/o.swu", "--sign", "true"],
            &["o.swu"],
            "wrote no signature",
        ),
        case(
            "unwritable output folder",
            &["recompress", "{d}/good.swu", "/proc/diffgen-test/o.swu"],
            &[],
            "cannot",
        ),
        case(
            "output is a folder",
            &[
                "create",
                "--source",
                "{d}/v1.swu",
                "--target",
                "{d}/v2.swu",
                "-o",
                "{d}/adir",
                "--source",
                "{d}/v1.swu",
            ],
            &[],
            "same delta",
        ),
        case(
            "output is the input",
            &["recompress", "{d}/good.swu", "{d}/good.swu"],
            &[],
            "never overwritten",
        ),
        case(
            "delta applied to another source",
            &["apply", "{d}/good.swu", "{d}/good.diff", "{d}/o.swu"],
            &["o.swu"],
            "made for source",
        ),
        case(
            "truncated delta",
            &["apply", "{d}/v1r.swu", "{d}/trunc.diff", "{d}/o.swu"],
            &["o.swu"],
            "",
        ),
        case(
            "delta cut inside its header",
            &["apply", "{d}/v1r.swu", "{d}/trunc-header.diff", "{d}/o.swu"],
            &["o.swu"],
            "",
        ),
        case(
            "delta with an unknown version",
            &["apply", "{d}/v1r.swu", "{d}/bad-version.diff", "{d}/o.swu"],
            &["o.swu"],
            "",
        ),
        case(
            "delta with a damaged blob",
            &["apply", "{d}/v1r.swu", "{d}/flipped-blob.diff", "{d}/o.swu"],
            &["o.swu"],
            "",
        ),
        case(
            "garbage instead of a delta",
            &["apply", "{d}/v1r.swu", "{d}/garbage.diff", "{d}/o.swu"],
            &["o.swu"],
            "PAMZ",
        ),
        case(
            "empty delta file",
            &["apply", "{d}/v1r.swu", "{d}/empty.diff", "{d}/o.swu"],
            &["o.swu"],
            "",
        ),
        case(
            "delta is a folder",
            &["apply", "{d}/v1.swu", "{d}/adir", "{d}/o.swu"],
            &["o.swu"],
            "not a file",
        ),
        case(
            "not an ext image",
            &["inspect", "{d}/not-ext.img"],
            &[],
            "not a .swu",
        ),
        case(
            "ext image with a broken group descriptor",
            &["inspect", "{d}/corrupt.ext4"],
            &[],
            "",
        ),
        case(
            "member that is not an ext image",
            &["inspect", "{d}/good.swu", "--member", "update.sh"],
            &[],
            "member update.sh",
        ),
        case(
            "manifest with an invalid version",
            &[
                "manifest",
                "--target",
                "{d}/v2.swu",
                "--provider",
                "P",
                "--name",
                "N",
                "--version",
                "1",
                "--compat",
                "a=b",
                "-o",
                "{d}/m.json",
            ],
            &["m.json"],
            "updateId.version",
        ),
        case(
            "manifest pairing a delta with the wrong source",
            &[
                "manifest",
                "--target",
                "{d}/v2r.swu",
                "--delta",
                "{d}/good.diff",
                "--source",
                "{d}/good.swu",
                "--provider",
                "P",
                "--name",
                "N",
                "--version",
                "1.0",
                "--compat",
                "a=b",
                "-o",
                "{d}/m.json",
            ],
            &["m.json"],
            "another source",
        ),
        case(
            "cache path of a non-hash",
            &["cache-path", "--provider", "P", "--hash", "not-base64!"],
            &[],
            "Base64",
        ),
        case(
            "missing input",
            &["recompress", "{d}/nothing.swu", "{d}/o.swu"],
            &["o.swu"],
            "nothing.swu",
        ),
        case(
            "wrong argument count",
            &["a", "b", "c"],
            &[],
            "expected 4 to 7 arguments",
        ),
    ];
    // A file-size limit standing in for a full disk: writes fail with EFBIG.
    c.push(Case {
        name: "file-size limit (full disk) while recompressing",
        args: ["recompress", "{d}/v2.swu", "{d}/o.swu"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        shell: "ulimit -f 64;",
        no_output: vec!["o.swu"],
        needle: "",
    });
    c.push(Case {
        name: "file-size limit (full disk) while creating a delta",
        args: [
            "create",
            "--source",
            "{d}/v1.swu",
            "--target",
            "{d}/v2.swu",
            "-o",
            "{d}/o.diff",
            "--work",
            "{d}/w",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        shell: "ulimit -f 64;",
        no_output: vec!["o.diff"],
        needle: "",
    });
    c
}

fn snapshot(d: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let b = fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn hostile_input_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    prepare(d);
    let cases = catalogue();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let before = snapshot(d);
    let mut failures = Vec::new();
    for c in &cases {
        let args: Vec<String> = c
            .args
            .iter()
            .map(|a| a.replace("{d}", d.to_str().unwrap()))
            .collect();
        let out: Output = if c.shell.is_empty() {
            Command::new(env!("CARGO_BIN_EXE_diffgen"))
                .args(&args)
                .output()
                .unwrap()
        } else {
            let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "{} exec '{}' {}",
                    c.shell,
                    env!("CARGO_BIN_EXE_diffgen"),
                    quoted.join(" ")
                ))
                .output()
                .unwrap()
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("Error: "))
            .collect();
        let mut problems = Vec::new();
        if out.status.code() != Some(1) {
            problems.push(format!("exit {:?}", out.status.code()));
        }
        if stderr.contains("panicked") {
            problems.push("panic".to_string());
        }
        if errors.len() != 1 {
            problems.push(format!("{} Error: lines", errors.len()));
        } else if !errors[0].contains(c.needle) {
            problems.push(format!("message lacks {:?}", c.needle));
        }
        for p in &c.no_output {
            if d.join(p).exists() {
                problems.push(format!("{p} was written"));
                let _ = fs::remove_file(d.join(p));
            }
        }
        let stray: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".diffgen") || n.ends_with(".tmp"))
            .collect();
        if !stray.is_empty() {
            problems.push(format!("temp files left: {stray:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {} — stderr: {}",
                c.name,
                problems.join(", "),
                stderr.trim()
            ));
        }
    }
    let _ = fs::remove_dir_all(d.join("w"));
    assert!(snapshot(d) == before, "an input was modified");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Not hostile, but a classic of shared CI runners: a working folder holding another run's
/// files is reused safely.
#[test]
fn working_folder_with_another_runs_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = d.join("work");
    let bin = env!("CARGO_BIN_EXE_diffgen");
    let v1 = testdata("swu/release-v1.swu");
    let v2 = testdata("swu/release-v2.swu");
    let s = testdata("swu/sample-crc.swu");
    for (src, tgt, out) in [
        (&s, &v2, "a.diff"),
        (&v1, &v2, "b.diff"),
        (&v2, &v1, "c.diff"),
    ] {
        let o = Command::new(bin)
            .args(["create", "--source"])
            .arg(src)
            .arg("--target")
            .arg(tgt)
            .arg("-o")
            .arg(d.join(out))
            .arg("--work")
            .arg(&w)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{out}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    fs::write(
        w.join("diffgen").join("unrelated.bin"),
        b"someone else's file",
    )
    .unwrap();
    let o = Command::new(bin)
        .args(["create", "--source"])
        .arg(&v1)
        .arg("--target")
        .arg(&v2)
        .arg("-o")
        .arg(d.join("d.diff"))
        .arg("--work")
        .arg(&w)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        fs::read(d.join("d.diff")).unwrap(),
        fs::read(d.join("b.diff")).unwrap()
    );
}
