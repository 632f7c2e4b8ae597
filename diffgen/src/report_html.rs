//! `report.html`: why a delta is as big as it is, for people. `diffgen create` writes it
//! beside `report.json` in the log folder, from the same [`RunSummary`] (one source of
//! truth); `diffgen inspect <delta> --html FILE` writes the same kind of page for any diffgen
//! delta afterwards, from what the delta alone holds.
//!
//! One self-contained file (inline CSS and SVG, a few lines of inline script to sort tables;
//! nothing fetched, so it opens from file:// and can be attached to a CI job): per delta a
//! header, sentences on what its bytes are, a treemap of the delta's bytes by where they go
//! (image, directory, file; metadata, payloads, cpio framing, the delta's own structure)
//! coloured by encoding, and a sortable table of the parts.
//!
//! [`page`] is the neutral model, made by [`summary_page`] or [`delta_page`]; [`treemap`]
//! lays tiles out, [`svg`] draws them, [`render`] writes the document.

mod delta_page;
mod page;
mod render;
mod summary_page;
mod svg;
mod treemap;

use std::path::Path;

use crate::create::RunSummary;
use crate::failure::Failure;

/// Its file name in the log folder.
pub const FILE_NAME: &str = "report.html";

/// The page of a `diffgen create` run.
pub fn run_page(run: &RunSummary) -> String {
    let pages: Vec<page::Page> = run.deltas.iter().map(summary_page::page).collect();
    let heading = match run.deltas.as_slice() {
        [one] => format!(
            "diffgen: why the delta {} is this big",
            file_name(&one.output)
        ),
        _ => format!("diffgen: why the {} deltas are this big", run.deltas.len()),
    };
    render::document(
        &heading,
        &pages,
        &format!(
            "Made by diffgen {} from the data of report.json.",
            env!("CARGO_PKG_VERSION")
        ),
    )
}

/// The page of the delta at `path` (already read as `archive`).
pub fn delta_page(archive: &delta::archive::Archive, path: &Path, len: u64) -> String {
    let name = path.display().to_string();
    let page = delta_page::page(archive, &name, len);
    render::document(
        &format!("diffgen: the bytes of the delta {}", file_name(&name)),
        &[page],
        &format!(
            "Made by diffgen {} inspect from the delta file alone.",
            env!("CARGO_PKG_VERSION")
        ),
    )
}

/// Writes `html` to `path`.
pub fn write(path: &Path, html: &str) -> Result<(), Failure> {
    crate::manifest_cmd::write_atomically(path, html.as_bytes())
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::create::{CostsLeftOut, ExpensiveItem, Summary};

    fn cost(
        kind: &'static str,
        path: Option<&str>,
        how: &'static str,
        delta: u64,
    ) -> ExpensiveItem {
        ExpensiveItem {
            member: "rootfs.ext4.zst".into(),
            path: path.map(str::to_string),
            kind,
            how,
            changed_bytes: delta * 10,
            delta_bytes: delta,
        }
    }

    fn summary() -> Summary {
        use generate::plan::{HOW_BSDIFF, HOW_GZIP, HOW_NEW, HOW_ZSTD_BASIS};
        let costs = vec![
            cost("file", Some("/usr/bin/<odd> & \"name\""), HOW_BSDIFF, 4000),
            cost("file", Some("/usr/lib/libx.so.1"), HOW_ZSTD_BASIS, 2500),
            cost("metadata", None, HOW_ZSTD_BASIS, 1200),
            cost("file", Some("/usr/share/doc/x/changelog.gz"), HOW_GZIP, 800),
            cost("framing", None, HOW_NEW, 60),
        ];
        Summary {
            source: "/tmp/v1.swu".into(),
            target: "/tmp/v2.swu".into(),
            output: "/tmp/v1-to-v2.diff".into(),
            profile: "zstd (diffgen applier)",
            source_size: 1_000_000,
            target_size: 1_100_000,
            delta_size: 10_000,
            delta_sha256: "ab".repeat(32),
            ratio: 10_000.0 / 1_100_000.0,
            verified: true,
            checked_with: None,
            reused_bytes: 1_000_000,
            zero_bytes: 0,
            new_bytes: 100_000,
            recipes: 42,
            inner_gzip_files: 3,
            inner_gzip_bytes: 3000,
            inner_gzip_gnu_files: 1,
            bcj_filtered_bytes: 0,
            patched_files: 1,
            patch_bytes: 4000,
            exe_patched_files: 0,
            patch_saved_bytes: 1000,
            most_expensive: Vec::new(),
            costs,
            costs_left_out: CostsLeftOut {
                parts: 0,
                changed_bytes: 0,
                delta_bytes: 0,
            },
            identical_payloads: Vec::new(),
            recreated_payloads: Vec::new(),
            notes: Vec::new(),
            executables: Vec::new(),
            stage_seconds: vec![("plan", 1.5)],
            total_seconds: 2.25,
        }
    }

    /// The page names every part with its numbers, escapes what it shows, fetches nothing,
    /// and says what the data says.
    #[test]
    fn the_run_page_shows_every_part() {
        let run = RunSummary {
            deltas: vec![summary()],
            manifest: None,
        };
        let html = run_page(&run);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("/usr/bin/&lt;odd&gt; &amp; &quot;name&quot;"));
        assert!(!html.contains("<odd>"));
        for needle in [
            "/usr/lib/libx.so.1",
            "4,000",
            "2,500",
            "data-bytes=\"10000\"",
        ] {
            assert!(html.contains(needle), "{needle}");
        }
        // Self-contained: no URL, no external resource.
        for banned in ["http:", "https:", "src=", "<link", "@import", "url("] {
            assert!(!html.contains(banned), "{banned}");
        }
        // The structure tile is what the parts leave: 10,000 - 8,560.
        assert!(html.contains("data-bytes=\"1440\""), "structure tile");
        assert!(html.contains("40 % of this delta is 1 changed executable patched with bsdiff"));
        assert!(html.contains("Largest directories: /usr/bin 40 % (1 file)"));
        // One tile per part and the structure (none is too small to draw here).
        assert_eq!(html.matches("<rect class=\"t ").count(), 6);
    }
}
