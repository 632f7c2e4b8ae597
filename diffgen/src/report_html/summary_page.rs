//! The section of `report.html` for a delta `diffgen create` made, built from its
//! [`Summary`]: the very data `report.json` holds, so the page and the JSON cannot disagree.
//! The parts are `costs` (files by image and directory, metadata, payloads, cpio framing),
//! plus the parts past the list's limit and the delta's own structure, which together make
//! the delta's size.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::page::{count, grouped, human, percent, Encoding, Fact, Leaf, Page};
use crate::create::{ExpensiveItem, Summary};

/// Treemap group of the archive's cpio headers and trailer.
const FRAMING: &str = "archive framing";
/// Directory levels a file's group keeps (`/usr/lib/x86_64-linux-gnu`, `/usr/share/doc`).
const DIR_LEVELS: usize = 3;

pub fn page(s: &Summary) -> Page {
    let mut leaves: Vec<Leaf> = s.costs.iter().map(leaf).collect();
    let left = &s.costs_left_out;
    if left.parts > 0 {
        leaves.push(Leaf {
            group: Vec::new(),
            place: String::new(),
            name: format!(
                "{} cheaper parts past the list's limit",
                grouped(left.parts)
            ),
            encoding: Encoding::Other,
            how: "several".into(),
            changed: Some(left.changed_bytes),
            delta: left.delta_bytes,
        });
    }
    let listed: u64 = s.costs.iter().map(|c| c.delta_bytes).sum::<u64>() + left.delta_bytes;
    let structure = s.delta_size.saturating_sub(listed);
    leaves.push(Leaf {
        group: Vec::new(),
        place: "delta file".into(),
        name: "recipes, item hashes and headers".into(),
        encoding: Encoding::Structure,
        how: format!(
            "{} recipes, among them those that take {} of the target from the source",
            grouped(s.recipes as u64),
            human(s.reused_bytes)
        ),
        changed: None,
        delta: structure,
    });
    leaves.sort_by_key(|l| std::cmp::Reverse(l.delta));
    let mut insights = part_insights(s, structure);
    insights.extend(place_insights(s));
    Page {
        title: format!("{} → {}", file_name(&s.source), file_name(&s.target)),
        facts: facts(s),
        insights,
        total: s.delta_size,
        leaves,
        changed_heading: "changed bytes",
        caveats: vec![
            "Delta bytes of parts compressed together in one stream are the stream's compressed size shared out in proportion to their bytes; a bsdiff patch's are exact. The grey tile is what the parts do not add up to: the delta's recipes (among them those naming the reused source data), item hashes and headers.".into(),
        ],
    }
}

/// A cost as a tile: files in their image and directory, metadata and payloads in their
/// member, cpio headers and trailer together.
fn leaf(c: &ExpensiveItem) -> Leaf {
    let (group, name) = match (c.kind, &c.path) {
        ("file", Some(p)) => (vec![c.member.clone(), directory(p)], p.clone()),
        ("metadata", _) => (vec![c.member.clone()], "filesystem metadata".to_string()),
        ("framing", _) if c.member == swu::cpio::TRAILER_NAME => {
            (vec![FRAMING.to_string()], "cpio trailer".to_string())
        }
        ("framing", _) => (
            vec![FRAMING.to_string()],
            format!("cpio header of {}", c.member),
        ),
        _ => (vec![c.member.clone()], "payload bytes".to_string()),
    };
    Leaf {
        group,
        place: c.member.clone(),
        name,
        encoding: Encoding::from_how(c.how),
        how: c.how.to_string(),
        changed: Some(c.changed_bytes),
        delta: c.delta_bytes,
    }
}

/// The directory a file is grouped under: its parent, at most [`DIR_LEVELS`] deep.
pub fn directory(path: &str) -> String {
    let parent = path.rsplit_once('/').map_or("", |(d, _)| d);
    let parts: Vec<&str> = parent.split('/').filter(|p| !p.is_empty()).collect();
    format!("/{}", parts[..parts.len().min(DIR_LEVELS)].join("/"))
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

fn facts(s: &Summary) -> Vec<Fact> {
    let mut verified = if s.verified {
        "yes: applied to the source by diffgen's applier, the target rebuilt byte for byte"
            .to_string()
    } else {
        "no (--no-verify)".to_string()
    };
    if let Some(command) = &s.checked_with {
        verified.push_str(&format!("; also rebuilt exactly by {command:?}"));
    }
    let stages: Vec<String> = s
        .stage_seconds
        .iter()
        .map(|(n, d)| format!("{n} {d:.1} s"))
        .collect();
    vec![
        Fact::bytes(
            "source",
            s.source_size,
            format!("{} ({} bytes)", s.source, grouped(s.source_size)),
        ),
        Fact::bytes(
            "target",
            s.target_size,
            format!("{} ({} bytes)", s.target, grouped(s.target_size)),
        ),
        Fact::bytes(
            "delta",
            s.delta_size,
            format!(
                "{} ({} bytes, {} of the target)",
                s.output,
                grouped(s.delta_size),
                percent(s.delta_size, s.target_size)
            ),
        ),
        Fact::text("profile", s.profile),
        Fact::text("verified", verified),
        Fact::text(
            "generation time",
            format!("{:.1} s ({})", s.total_seconds, stages.join(", ")),
        ),
        Fact::text(
            "target bytes",
            format!(
                "{} reused from the source, {} zero runs, {} new or changed (in payloads and decompressed contents)",
                human(s.reused_bytes),
                human(s.zero_bytes),
                human(s.new_bytes)
            ),
        ),
        Fact::text("delta sha256", s.delta_sha256.clone()),
    ]
}

/// Delta bytes, changed bytes and the files (member, path) of one kind of part.
#[derive(Default)]
struct Share<'s> {
    delta: u64,
    changed: u64,
    files: BTreeSet<(&'s str, &'s str)>,
    members: BTreeSet<&'s str>,
}

/// Sentences on what the delta's bytes are, largest share first.
fn part_insights(s: &Summary, structure: u64) -> Vec<String> {
    let mut files: BTreeMap<Encoding, Share> = BTreeMap::new();
    let mut kinds: BTreeMap<&str, Share> = BTreeMap::new();
    for c in &s.costs {
        let share = match (c.kind, &c.path) {
            ("file", Some(_)) => files.entry(Encoding::from_how(c.how)).or_default(),
            _ => kinds.entry(c.kind).or_default(),
        };
        share.delta += c.delta_bytes;
        share.changed += c.changed_bytes;
        share.members.insert(&c.member);
        if let Some(p) = &c.path {
            share.files.insert((&c.member, p));
        }
    }
    let of = |n: u64| percent(n, s.delta_size);
    let mut out: Vec<(u64, String)> = Vec::new();
    for (encoding, share) in &files {
        let n = share.files.len() as u64;
        let text = match encoding {
            Encoding::Bsdiff => format!(
                "{} of this delta is {} patched with bsdiff ({} of patches, {} smaller than zstd against their old versions).",
                of(share.delta), count(n, "changed executable", "changed executables"), human(s.patch_bytes), human(s.patch_saved_bytes)
            ),
            Encoding::Gzip => format!(
                "{} of this delta is the text of {}, re-created on the device from their text; in all {} ({}) are re-created so, {} of them with GNU gzip's deflate.",
                of(share.delta), count(n, "gzip file", "gzip files"), count(s.inner_gzip_files as u64, "gzip file", "gzip files"), human(s.inner_gzip_bytes), grouped(s.inner_gzip_gnu_files as u64)
            ),
            Encoding::ZstdOld => format!(
                "{} of this delta is {} of changed bytes in {}, compressed with zstd against their old versions.",
                of(share.delta), human(share.changed), count(n, "file", "files")
            ),
            Encoding::New | Encoding::X86 => format!(
                "{} of this delta is {} of {} without an old version to compare with (new files, or old versions not found), compressed on their own{}.",
                of(share.delta), human(share.changed), count(n, "file", "files"),
                if *encoding == Encoding::X86 { " after the x86 filter (branch targets made absolute)" } else { "" }
            ),
            Encoding::Structure | Encoding::Other => continue,
        };
        out.push((share.delta, text));
    }
    for (kind, share) in &kinds {
        let members: Vec<&str> = share.members.iter().copied().collect();
        let text = match *kind {
            "metadata" => format!(
                "{} of this delta is filesystem metadata of {} (inode tables, directories, bitmaps, journal: {} of changed bytes no file owns).",
                of(share.delta), members.join(", "), human(share.changed)
            ),
            "payload" => format!(
                "{} of this delta is payloads not read as filesystems: {}.",
                of(share.delta), members.join(", ")
            ),
            _ => format!("{} of this delta is cpio headers and the trailer.", of(share.delta)),
        };
        out.push((share.delta, text));
    }
    out.push((
        structure,
        format!(
            "{} of this delta is its own structure: {} recipes with their item hashes, which is all that the {} taken from the source (payloads and decompressed contents) cost.",
            of(structure), grouped(s.recipes as u64), human(s.reused_bytes)
        ),
    ));
    out.sort_by_key(|o| std::cmp::Reverse(o.0));
    out.into_iter().map(|(_, t)| t).collect()
}

/// Sentences on where the bytes go: the largest directories and files.
fn place_insights(s: &Summary) -> Vec<String> {
    let files: Vec<&ExpensiveItem> = s
        .costs
        .iter()
        .filter(|c| c.kind == "file" && c.path.is_some())
        .collect();
    if files.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut dirs: BTreeMap<(&str, String), (u64, BTreeSet<&str>)> = BTreeMap::new();
    for c in &files {
        let path = c.path.as_deref().unwrap_or_default();
        let d = dirs.entry((&c.member, directory(path))).or_default();
        d.0 += c.delta_bytes;
        d.1.insert(path);
    }
    let mut dirs: Vec<_> = dirs.into_iter().collect();
    dirs.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    let list: Vec<String> = dirs
        .iter()
        .take(5)
        .map(|((_, d), (bytes, names))| {
            format!(
                "{d} {} ({})",
                percent(*bytes, s.delta_size),
                count(names.len() as u64, "file", "files")
            )
        })
        .collect();
    out.push(format!("Largest directories: {}.", list.join(", ")));
    let top = files[0];
    out.push(format!(
        "Most expensive file: {} ({}, {} of this delta, {}).",
        top.path.as_deref().unwrap_or_default(),
        human(top.delta_bytes),
        percent(top.delta_bytes, s.delta_size),
        top.how
    ));
    if files.len() > 20 {
        let ten: u64 = files.iter().take(10).map(|c| c.delta_bytes).sum();
        out.push(format!(
            "The 10 most expensive files make {} of this delta; {} have a cost in all.",
            percent(ten, s.delta_size),
            count(files.len() as u64, "file", "files")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_keep_three_levels() {
        assert_eq!(
            directory("/usr/lib/x86_64-linux-gnu/libc.so.6"),
            "/usr/lib/x86_64-linux-gnu"
        );
        assert_eq!(
            directory("/usr/share/doc/apt/changelog.gz"),
            "/usr/share/doc"
        );
        assert_eq!(directory("/etc/passwd"), "/etc");
        assert_eq!(directory("/vmlinuz"), "/");
    }
}
