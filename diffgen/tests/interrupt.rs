//! SIGINT/SIGTERM at any point of a run: exit 130/143, temp files removed, no output, and a
//! later run in the same folder succeeds.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use codec::zlib::{deflate_bytes, Container, DeflateParams};
use sha2::{Digest, Sha256};
use swu::cpio::{Format, Header, Writer};

/// A SWU with a 40 MiB gzip image: long enough to interrupt at different stages.
fn big_swu(path: &Path) {
    let content: Vec<u8> = (0..40u32 << 20)
        .map(|i| ((i >> 9) ^ (i.wrapping_mul(2654435761) >> 27)) as u8)
        .collect();
    let gz = deflate_bytes(
        DeflateParams {
            container: Container::Gzip,
            level: 1,
        },
        &content,
    )
    .unwrap();
    let desc = format!(
        "software = {{ images = ( {{ filename = \"img.gz\"; device = \"/dev/x\"; compressed = \"zlib\"; sha256 = \"{}\"; }} ); }};",
        swu::hex::encode(&Sha256::digest(&gz))
    );
    let mut w = Writer::new(Vec::new());
    let h = Header::regular_file(Format::Crc, 0);
    w.write_bytes(&h, "sw-description", desc.as_bytes())
        .unwrap();
    w.write_bytes(&h, "img.gz", &gz).unwrap();
    fs::write(path, w.finish(Format::Crc, None, None).unwrap()).unwrap();
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "in.swu")
        .collect()
}

#[test]
fn interrupted_recompression_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.swu");
    big_swu(&input);
    let out = dir.path().join("out.swu");

    // How long a full run takes, to spread the kills over it.
    let start = Instant::now();
    let ok = Command::new(env!("CARGO_BIN_EXE_diffgen"))
        .args(["recompress".as_ref(), input.as_os_str(), out.as_os_str()])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let full = start.elapsed();
    let reference = fs::read(&out).unwrap();
    fs::remove_file(&out).unwrap();

    let mut interrupted = 0;
    for (i, (signal, code)) in [("TERM", 143), ("INT", 130)]
        .iter()
        .cycle()
        .take(8)
        .enumerate()
    {
        let delay = full.mul_f64(0.05 + 0.11 * i as f64);
        let mut child = Command::new(env!("CARGO_BIN_EXE_diffgen"))
            .args(["recompress".as_ref(), input.as_os_str(), out.as_os_str()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        use std::io::Read;
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        if status.success() {
            // Finished before the signal arrived: a complete, valid output.
            assert!(out.exists());
            fs::remove_file(&out).unwrap();
        } else {
            assert_eq!(
                status.code(),
                Some(*code),
                "SIG{signal} after {delay:?}: {stderr}"
            );
            assert!(stderr.contains("interrupted by SIG"), "{stderr}");
            // A signal that lands after the rename, just before exit, leaves the finished,
            // complete output; anything else leaves none.
            if out.exists() {
                assert!(
                    fs::read(&out).unwrap() == reference,
                    "partial output after SIG{signal}"
                );
                fs::remove_file(&out).unwrap();
            }
            interrupted += 1;
        }
        assert_eq!(
            leftovers(dir.path()),
            Vec::<String>::new(),
            "after SIG{signal} at {delay:?}"
        );
    }
    assert!(interrupted >= 4, "only {interrupted} runs were interrupted");

    // The same folder works afterwards.
    let again = Command::new(env!("CARGO_BIN_EXE_diffgen"))
        .args(["recompress".as_ref(), input.as_os_str(), out.as_os_str()])
        .output()
        .unwrap();
    assert!(again.status.success());
}

/// Delta generation killed at different points: same guarantees (nothing left next to the
/// output, in the temp working folder or in a given working folder's temp files).
#[test]
fn interrupted_delta_generation_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("in.swu");
    big_swu(&source);
    // A target that differs a little: rewrite a copy's sw-description version only is not
    // enough (payload equal); build a second archive with shuffled content instead.
    let target = dir.path().join("target.swu");
    {
        let bytes = fs::read(&source).unwrap();
        let a = swu::cpio::Archive::scan(&bytes[..], Default::default()).unwrap();
        let e = a.member("img.gz").unwrap();
        let gz = &bytes[e.data_offset() as usize..(e.data_offset() + e.data_len()) as usize];
        let mut content = Vec::new();
        use std::io::Read;
        codec::zlib::inflater(Container::Gzip, gz, true)
            .read_to_end(&mut content)
            .unwrap();
        content[1_000_000..1_000_100].fill(7);
        let gz = deflate_bytes(
            DeflateParams {
                container: Container::Gzip,
                level: 9,
            },
            &content,
        )
        .unwrap();
        let desc = format!(
            "software = {{ images = ( {{ filename = \"img.gz\"; device = \"/dev/x\"; compressed = \"zlib\"; sha256 = \"{}\"; }} ); }};",
            swu::hex::encode(&Sha256::digest(&gz))
        );
        let mut w = Writer::new(Vec::new());
        let h = Header::regular_file(Format::Crc, 0);
        w.write_bytes(&h, "sw-description", desc.as_bytes())
            .unwrap();
        w.write_bytes(&h, "img.gz", &gz).unwrap();
        fs::write(&target, w.finish(Format::Crc, None, None).unwrap()).unwrap();
    }
    let out = dir.path().join("d.diff");
    let run = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_diffgen"));
        c.args(["create", "--profile", "gzip", "--source"])
            .arg(&source)
            .arg("--target")
            .arg(&target)
            .arg("-o")
            .arg(&out);
        c
    };
    let start = Instant::now();
    let ok = run().output().unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let full = start.elapsed();
    let reference = fs::read(&out).unwrap();
    fs::remove_file(&out).unwrap();
    let keep = |n: &str| n == "in.swu" || n == "target.swu";
    let mut interrupted = 0;
    for i in 0..6 {
        let delay = full.mul_f64(0.08 + 0.15 * i as f64);
        let mut child = run()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        if !status.success() {
            assert_eq!(status.code(), Some(143), "after {delay:?}");
            interrupted += 1;
        }
        if out.exists() {
            assert!(
                fs::read(&out).unwrap() == reference,
                "partial delta after {delay:?}"
            );
            fs::remove_file(&out).unwrap();
        }
        let left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !keep(n))
            .collect();
        assert!(left.is_empty(), "after {delay:?}: {left:?}");
    }
    assert!(interrupted >= 3, "only {interrupted} runs were interrupted");
}
