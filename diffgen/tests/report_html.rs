//! `report.html` in a real browser: headless Chromium renders the page that `diffgen create`
//! writes for the sample release pair (recompressed, as devices and the update service hold
//! it) and the page of `diffgen inspect <delta> --html`, to a PNG and to its DOM. The render
//! must succeed, and the DOM must hold the file paths and totals of `report.json`: every part
//! with its delta bytes, and treemap tiles that add up to the delta's size.
//!
//! Chromium comes from `scripts/install-deps.sh` (Debian's `chromium`). Without it these tests
//! skip with one line, or fail where `DIFFGEN_REQUIRE_SHARED` is set (CI).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_diffgen")
}

fn diffgen(args: &[&str]) -> Output {
    let o = Command::new(bin())
        .args(args)
        .output()
        .expect("run diffgen");
    assert_eq!(
        o.status.code(),
        Some(0),
        "diffgen {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn testdata(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

/// Headless Chromium on `page`, with `mode` (`--screenshot=...` or `--dump-dom`), a fresh
/// profile and nothing that reaches the network.
fn chromium(chrome: &Path, page: &Path, mode: &str, profile: &Path) -> Output {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let o = Command::new("timeout")
        .arg("120")
        .arg(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(mode)
        .arg(&url)
        .output()
        .expect("run chromium");
    assert!(
        o.status.success(),
        "chromium {mode} {url}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Renders `page` to `png` and returns its DOM as Chromium has it.
fn render(chrome: &Path, page: &Path, png: &Path, dir: &Path) -> String {
    chromium(
        chrome,
        page,
        &format!("--screenshot={}", png.display()),
        &dir.join("profile-shot"),
    );
    let bytes = fs::read(png).expect("Chromium wrote the screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // IHDR: width and height, big-endian, at bytes 16..24.
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 1000));
    // A blank page compresses to a few KB; text, treemap and table do not.
    assert!(
        bytes.len() > 30_000,
        "{} bytes: nothing drawn?",
        bytes.len()
    );
    let dom = chromium(chrome, page, "--dump-dom", &dir.join("profile-dom"));
    String::from_utf8(dom.stdout).expect("the DOM is UTF-8")
}

/// The value of attribute `name` in `tag`.
fn attribute<T: std::str::FromStr>(tag: &str, name: &str) -> T {
    let key = format!(" {name}=\"");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    let end = tag[at..].find('"').unwrap();
    tag[at..at + end].parse().ok().expect("a number")
}

/// The treemap's tiles: (area, data-bytes).
fn tiles(dom: &str) -> Vec<(f64, u64)> {
    dom.split("<rect class=\"t ")
        .skip(1)
        .map(|tile| {
            let tag = &tile[..tile.find('>').unwrap()];
            let (w, h): (f64, f64) = (attribute(tag, "width"), attribute(tag, "height"));
            (w * h, attribute(tag, "data-bytes"))
        })
        .collect()
}

/// Sum of the `data-bytes` of the treemap's tiles.
fn tile_bytes(dom: &str) -> u64 {
    tiles(dom).iter().map(|t| t.1).sum()
}

/// `1234567` as the page writes it: `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The sample pair as devices and the update service hold it: recompressed, unsigned.
fn sample_pair(dir: &Path) -> (String, String) {
    let d = |p: &str| dir.join(p).to_string_lossy().into_owned();
    for (input, out) in [
        ("swu/release-v1.swu", "v1.swu"),
        ("swu/release-v2.swu", "v2.swu"),
    ] {
        diffgen(&["recompress", "--drop-signature", &testdata(input), &d(out)]);
    }
    (d("v1.swu"), d("v2.swu"))
}

#[test]
fn report_html_renders_in_chromium_with_the_numbers_of_report_json() {
    let Some(chrome) = shared_fixtures::program(
        &["chromium", "chromium-browser"],
        "report.html in a real browser",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_string_lossy().into_owned();
    let (v1, v2) = sample_pair(dir.path());
    let o = diffgen(&[
        "create",
        "--source",
        &v1,
        "--target",
        &v2,
        "-o",
        &d("d.diff"),
        "--logs",
        &d("logs"),
        "--work",
        &d("work"),
    ]);
    let page = dir.path().join("logs/report.html");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&format!("Report: {}", page.display())),
        "{stdout}"
    );
    let html = fs::read_to_string(&page).unwrap();
    assert!(html.len() < 100_000, "{} bytes", html.len());
    let report: Value =
        serde_json::from_str(&fs::read_to_string(d("logs/report.json")).unwrap()).unwrap();
    let delta = &report["deltas"][0];
    let delta_size = delta["delta_size"].as_u64().unwrap();

    let dom = render(&chrome, &page, &dir.path().join("page.png"), dir.path());
    // The header's totals.
    for field in ["delta_size", "source_size", "target_size"] {
        let n = delta[field].as_u64().unwrap();
        assert!(dom.contains(&format!("data-bytes=\"{n}\"")), "{field}");
        assert!(dom.contains(&grouped(n)), "{field}: {}", grouped(n));
    }
    assert!(dom.contains(delta["delta_sha256"].as_str().unwrap()));
    // Every part of report.json is a row: its path and its delta bytes.
    let costs = delta["costs"].as_array().unwrap();
    assert!(costs.len() > 5, "{costs:?}");
    assert_eq!(
        delta["most_expensive"].as_array().unwrap()[..],
        costs[..costs.len().min(20)]
    );
    for c in costs {
        let name = c["path"].as_str().unwrap_or("");
        let bytes = grouped(c["delta_bytes"].as_u64().unwrap());
        let row = format!("<td>{bytes}</td>");
        assert!(
            dom.lines()
                .any(|l| l.starts_with("<tr>") && l.contains(name) && l.contains(&row)),
            "no row for {c}"
        );
    }
    // The sample's new library is the most expensive part, and a tile.
    assert_eq!(costs[0]["path"], "/usr/lib/libplugin.so");
    assert!(dom.contains("<title>/usr/lib/libplugin.so\nencoding: new bytes, compressed\n"));
    // The tiles add up to the delta: the parts plus the delta's own structure.
    assert_eq!(tile_bytes(&dom), delta_size);
    // The largest tiles are the largest parts, in order.
    let listed: u64 = costs
        .iter()
        .map(|c| c["delta_bytes"].as_u64().unwrap())
        .sum();
    let mut parts: Vec<u64> = costs
        .iter()
        .map(|c| c["delta_bytes"].as_u64().unwrap())
        .chain([delta_size - listed])
        .collect();
    parts.sort_unstable_by(|a, b| b.cmp(a));
    let mut drawn = tiles(&dom);
    drawn.sort_by(|a, b| b.0.total_cmp(&a.0));
    let largest: Vec<u64> = drawn.iter().take(3).map(|t| t.1).collect();
    assert_eq!(largest, parts[..3]);
    assert!(dom.contains("% of this delta is"), "no text");

    // The same kind of page from the delta alone.
    let inspected = dir.path().join("inspect.html");
    diffgen(&[
        "inspect",
        &d("d.diff"),
        "--html",
        inspected.to_str().unwrap(),
    ]);
    let dom = render(
        &chrome,
        &inspected,
        &dir.path().join("inspect.png"),
        dir.path(),
    );
    assert!(dom.contains(&format!("data-bytes=\"{delta_size}\"")));
    assert_eq!(tile_bytes(&dom), delta_size);
    assert!(dom.contains("zstd frame"), "{dom}");
    assert!(dom.contains("cannot show file paths"));
}

/// `--html` is for deltas: on a .swu it is a clean error and writes nothing.
#[test]
fn inspect_html_refuses_what_is_not_a_delta() {
    let dir = tempfile::tempdir().unwrap();
    let page: PathBuf = dir.path().join("x.html");
    let o = Command::new(bin())
        .args(["inspect", &testdata("swu/sample.swu"), "--html"])
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--html is for deltas"), "{err}");
    assert!(!page.exists());
}
