//! References: for bytes of a target content that exist nowhere in the source, the source
//! bytes they most likely evolved from, used as the basis when they are compressed.
//!
//! When both contents are ext2/3/4 images, the target blocks are mapped to the files that own
//! them and those files' old versions (same path in the source image) are the references: a
//! changed library is compressed against the old library wherever either sits. Bytes that no
//! file owns (metadata: inode tables, directories, bitmaps) and contents that are not
//! filesystems are referenced at the same offset of the paired source content.

use std::collections::HashMap;

/// Byte ranges `(offset, len)` in the paired source content.
pub type Ranges = Vec<(u64, u64)>;

/// One stretch of a file, in file order: bytes of the content, or zeros that no block of the
/// image holds (a hole, an unwritten extent, or the end of a file past its last block). Holes
/// are common in executables: aarch64 ones are linked with 64 KiB segment alignment, and
/// `mkfs.ext4 -d` stores the zero padding between segments as holes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stretch {
    Data { offset: u64, len: u64 },
    Zeros(u64),
}

impl Stretch {
    /// Its length in bytes.
    pub fn size(&self) -> u64 {
        match *self {
            Stretch::Data { len, .. } | Stretch::Zeros(len) => len,
        }
    }
}

/// A whole file as stretches of its image, in file order; the lengths add up to its size.
pub type Layout = Vec<Stretch>;

/// The file's data as ranges of its image, in file order (zeros left out).
pub fn data_ranges(layout: &Layout) -> Ranges {
    layout
        .iter()
        .filter_map(|s| match *s {
            Stretch::Data { offset, len } => Some((offset, len)),
            Stretch::Zeros(_) => None,
        })
        .collect()
}

/// The file's bytes (zeros included) from `data`, its image.
pub fn gather_file(data: &[u8], layout: &Layout) -> Vec<u8> {
    let mut out = Vec::with_capacity(layout.iter().map(|s| s.size() as usize).sum());
    for s in layout {
        match *s {
            Stretch::Data { offset, len } => {
                out.extend_from_slice(&data[offset as usize..(offset + len) as usize])
            }
            Stretch::Zeros(len) => out.resize(out.len() + len as usize, 0),
        }
    }
    out
}

/// The offset in `data` of a file's first byte when that byte is data (not a hole).
pub fn first_data(layout: &Layout) -> Option<u64> {
    match layout.first()? {
        Stretch::Data { offset, .. } => Some(*offset),
        Stretch::Zeros(_) => None,
    }
}

/// File-level knowledge of a pair of ext images.
struct ExtPair {
    block_size: u64,
    /// Target data runs `(first block, blocks, file, first logical block)`, sorted by first
    /// block.
    target_runs: Vec<(u64, u64, usize, u64)>,
    /// Each target file's old version, if one was found, as stretches of the source content.
    old_versions: Vec<Option<Layout>>,
    /// Each target file as stretches of the target content, and its size.
    target_files: Vec<(Layout, u64)>,
    /// Each target file's first path (empty when unreachable).
    target_paths: Vec<String>,
}

/// A regular file or directory of the target filesystem and its old version.
pub struct FilePair<'a> {
    /// The file's first path in the target filesystem.
    pub path: &'a str,
    /// The file as stretches of the target content (holes are zeros), in file order.
    pub target: &'a Layout,
    /// Size of the file.
    pub size: u64,
    /// The old version as stretches of the source content (same path, else same path with
    /// version numbers blanked, else a unique file name, else similar content), if any.
    pub old: Option<&'a Layout>,
}

/// Finds references in one source content for one target content.
pub struct ReferenceFinder {
    source_len: u64,
    ext: Option<ExtPair>,
}

impl ReferenceFinder {
    /// `target` and `source` are the two contents. If both are ext images, files are matched
    /// by path; otherwise references are aligned by offset.
    pub fn new(target: &[u8], source: &[u8]) -> (ReferenceFinder, Option<String>) {
        let (ext, note) = match ext_pair(target, source) {
            Ok(pair) => (Some(pair), None),
            Err(why) => (None, Some(why)),
        };
        (
            ReferenceFinder {
                source_len: source.len() as u64,
                ext,
            },
            note,
        )
    }

    pub fn is_file_aware(&self) -> bool {
        self.ext.is_some()
    }

    /// The regular files and directories of the target filesystem with their old versions
    /// (none when the contents are not both filesystems).
    pub fn files(&self) -> impl Iterator<Item = FilePair<'_>> {
        self.ext.iter().flat_map(|ext| {
            ext.target_files
                .iter()
                .zip(&ext.old_versions)
                .zip(&ext.target_paths)
                .map(|(((target, size), old), path)| FilePair {
                    path,
                    target,
                    size: *size,
                    old: old.as_ref(),
                })
        })
    }

    /// The parts of `[start, start + len)` of the target content that are data of files
    /// without an old version, each at least `min` bytes, as `(offset from start, length)`
    /// in order. Such bytes have nothing to be compressed against, so the planner puts them
    /// in the plain new-bytes stream with the other new files.
    pub fn new_file_spans(&self, start: u64, len: u64, min: u64) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        let Some(ext) = &self.ext else {
            return out;
        };
        let bs = ext.block_size;
        let end = start + len;
        let from = ext
            .target_runs
            .partition_point(|r| r.0 <= start / bs)
            .saturating_sub(1);
        for &(run_start, run_len, file, _) in &ext.target_runs[from..] {
            let (a, b) = (
                (run_start * bs).max(start),
                ((run_start + run_len) * bs).min(end),
            );
            if run_start * bs >= end {
                break;
            }
            if a >= b || ext.old_versions[file].is_some() {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.0 + last.1 == a - start => last.1 += b - a,
                _ => out.push((a - start, b - a)),
            }
        }
        out.retain(|&(_, l)| l >= min);
        out
    }

    /// The bytes `[start, start + len)` of the target content split by owner: each piece's
    /// length and the path of the file whose data it is (`None`: metadata, free space, or not
    /// a filesystem).
    pub fn owners(&self, start: u64, len: u64) -> Vec<(Option<&str>, u64)> {
        fn push<'p>(out: &mut Vec<(Option<&'p str>, u64)>, owner: Option<&'p str>, n: u64) {
            match out.last_mut() {
                Some(last) if last.0 == owner => last.1 += n,
                _ if n > 0 => out.push((owner, n)),
                _ => {}
            }
        }
        let mut out: Vec<(Option<&str>, u64)> = Vec::new();
        let Some(ext) = &self.ext else {
            push(&mut out, None, len);
            return out;
        };
        let bs = ext.block_size;
        let end = start + len;
        let mut pos = start;
        let mut at = ext
            .target_runs
            .partition_point(|r| r.0 <= pos / bs)
            .saturating_sub(1);
        while pos < end {
            // The next run that ends after `pos`.
            while at < ext.target_runs.len()
                && (ext.target_runs[at].0 + ext.target_runs[at].1) * bs <= pos
            {
                at += 1;
            }
            match ext.target_runs.get(at) {
                Some(&(run_start, run_len, file, _)) if run_start * bs <= pos => {
                    let stop = ((run_start + run_len) * bs).min(end);
                    push(&mut out, Some(ext.target_paths[file].as_str()), stop - pos);
                    pos = stop;
                }
                Some(&(run_start, _, _, _)) => {
                    let stop = (run_start * bs).min(end);
                    push(&mut out, None, stop - pos);
                    pos = stop;
                }
                None => {
                    push(&mut out, None, end - pos);
                    pos = end;
                }
            }
        }
        out
    }

    /// References for the target bytes `[start, start + len)`: the old versions (or a window
    /// of them) of the files owning them, none for bytes past a file's end in its last block
    /// (a changed executable's patch claims the file's bytes, and those few hundred bytes left
    /// over once drew the whole old file into a segment's basis: on the arm64 upgrade pair
    /// 8 MB of basis for 15 KB of such bytes, and level 19's match finder goes over all of
    /// it); for bytes no file owns, the same place in the old content.
    pub fn find(&self, start: u64, len: u64) -> Ranges {
        if let Some(ext) = &self.ext {
            let first = start / ext.block_size;
            let last = (start + len - 1) / ext.block_size;
            // Runs are sorted by start; scan from the last run starting at or before `first`.
            let from = ext
                .target_runs
                .partition_point(|r| r.0 <= first)
                .saturating_sub(1);
            // The files owning these bytes, with the byte offset in each file where they start.
            let mut files: Vec<(usize, u64)> = Vec::new();
            for &(run_start, run_len, file, logical) in &ext.target_runs[from..] {
                if run_start > last {
                    break;
                }
                if run_start + run_len > first && !files.iter().any(|f| f.0 == file) {
                    let block = first.max(run_start);
                    let in_file = (logical + block - run_start) * ext.block_size
                        + if block == first {
                            start % ext.block_size
                        } else {
                            0
                        };
                    files.push((file, in_file));
                }
            }
            let mut out = Ranges::new();
            let mut any_file = false;
            for (f, in_file) in files {
                any_file = true;
                // Bytes past the file's end (the rest of its last block) are no part of it:
                // its old version says nothing about them.
                let size = ext.target_files[f].1;
                if let (Some(layout), true) = (&ext.old_versions[f], in_file < size) {
                    out.extend(old_window(layout, in_file, len, size));
                }
            }
            if any_file {
                return out;
            }
        }
        // Not file data (or not a filesystem): the same place in the old content, widened a
        // little (inode tables and directories shift when files come and go).
        let from = start.saturating_sub(METADATA_MARGIN);
        if from >= self.source_len {
            return Ranges::new();
        }
        let to = (start + len + METADATA_MARGIN).min(self.source_len);
        vec![(from, to - from)]
    }
}

/// How far around the same offset the basis of metadata reaches.
const METADATA_MARGIN: u64 = 64 * 1024;

/// How far around the same place of a large old version the basis reaches, at most: inserted
/// or removed bytes shift the rest of a file, by less than this in a point release.
const OLD_WINDOW_MARGIN: u64 = 2 << 20;
/// ... and at least, beyond the file's change in size (a file that kept its size has shifted
/// by little; a smaller basis makes zstd's high levels several times faster).
const OLD_WINDOW_MIN_MARGIN: u64 = 256 << 10;

/// The part of an old version (`layout`, in file order) that serves as basis for `len` bytes
/// at offset `at` of the new version, `new_size` bytes long: the whole old file when it is
/// small, else the same place widened on both sides by the file's change in size plus
/// [`OLD_WINDOW_MIN_MARGIN`], at most [`OLD_WINDOW_MARGIN`]. A segment must hold its basis
/// within the device's zstd memory, which a whole large file would not fit. Only data is
/// returned (zeros cost nothing to compress without a basis); offsets in the file count the
/// holes, as `at` does.
fn old_window(layout: &Layout, at: u64, len: u64, new_size: u64) -> Ranges {
    let total: u64 = layout.iter().map(Stretch::size).sum();
    if total <= 2 * OLD_WINDOW_MARGIN {
        return data_ranges(layout);
    }
    let margin = (total.abs_diff(new_size) + OLD_WINDOW_MIN_MARGIN).min(OLD_WINDOW_MARGIN);
    let from = at.saturating_sub(margin).min(total);
    let to = (at + len + margin).min(total);
    let mut out = Ranges::new();
    let mut pos = 0u64;
    for s in layout {
        let n = s.size();
        let (a, b) = (pos.max(from), (pos + n).min(to));
        if let (true, Stretch::Data { offset, .. }) = (a < b, s) {
            out.push((offset + (a - pos), b - a));
        }
        pos += n;
    }
    out
}

/// Reads both images; Err says why file matching is not possible.
fn ext_pair(target: &[u8], source: &[u8]) -> Result<ExtPair, String> {
    let t = ext4::Filesystem::open(target).map_err(|e| format!("target content: {e}"))?;
    let s = ext4::Filesystem::open(source).map_err(|e| format!("source content: {e}"))?;
    let t_scan = t.scan().map_err(|e| format!("target content: {e}"))?;
    let s_scan = s.scan().map_err(|e| format!("source content: {e}"))?;
    let block_size = u64::from(t.superblock().block_size);
    let s_block = u64::from(s.superblock().block_size);
    // Old versions by path; then by the path's shape with version numbers blanked
    // (`/lib/modules/6.1.0-17/...` is `/lib/modules/6.1.0-18/...` of the next release); then by
    // file name (a file moved to another folder). Shapes and names that several source files
    // share are ambiguous and not used. Last, larger files by content ([`match_by_content`]).
    // Directories are matched too (to old directories): their blocks move when the tree
    // changes, so the same offset of the old image is no basis for them. Keys carry the kind.
    let mapped =
        |f: &ext4::FileEntry| matches!(f.kind, ext4::FileKind::Regular | ext4::FileKind::Directory);
    let is_dir = |f: &ext4::FileEntry| f.kind == ext4::FileKind::Directory;
    let mut by_path: HashMap<(bool, &str), &ext4::FileEntry> = HashMap::new();
    let mut by_shape: HashMap<(bool, String), Option<&ext4::FileEntry>> = HashMap::new();
    let mut by_name: HashMap<(bool, &str), Option<&ext4::FileEntry>> = HashMap::new();
    for f in s_scan.files.iter().filter(|f| mapped(f)) {
        for p in &f.paths {
            by_path.insert((is_dir(f), p.as_str()), f);
            unique_insert(&mut by_shape, (is_dir(f), version_shape(p)), f);
            unique_insert(&mut by_name, (is_dir(f), file_name(p)), f);
        }
    }
    let mut target_runs = Vec::new();
    let mut old_versions = Vec::new();
    let mut target_files = Vec::new();
    let mut target_paths = Vec::new();
    for f in t_scan.files.iter().filter(|f| mapped(f)) {
        let dir = is_dir(f);
        let idx = old_versions.len();
        for r in &f.runs {
            if r.initialized {
                target_runs.push((r.physical, r.len, idx, r.logical));
            }
        }
        target_files.push((entry_layout(f, block_size), f.size));
        target_paths.push(f.paths.first().cloned().unwrap_or_default());
        let old = f
            .paths
            .iter()
            .find_map(|p| by_path.get(&(dir, p.as_str())).copied())
            .or_else(|| {
                f.paths
                    .iter()
                    .find_map(|p| by_shape.get(&(dir, version_shape(p))).copied().flatten())
            })
            .or_else(|| {
                f.paths
                    .iter()
                    .find_map(|p| by_name.get(&(dir, file_name(p))).copied().flatten())
            })
            .map(|old| entry_layout(old, s_block));
        old_versions.push(old);
    }
    match_by_content(
        &t_scan.files,
        &s_scan.files,
        target,
        source,
        block_size,
        s_block,
        &mut old_versions,
    );
    target_runs.sort_unstable();
    Ok(ExtPair {
        block_size,
        target_runs,
        old_versions,
        target_files,
        target_paths,
    })
}

/// Files smaller than this are not matched by content (their recipes would cost more than
/// the basis saves).
const SIMILAR_MIN: u64 = 64 * 1024;
/// A content anchor falls on average every 2^`ANCHOR_BITS` bytes.
const ANCHOR_BITS: u32 = 10;

/// Gear table of the content-defined anchors (fixed pseudo-random values, splitmix64).
const GEAR: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut i = 0;
    while i < 256 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        t[i] = z ^ (z >> 31);
        i += 1;
    }
    t
};

/// Content-defined fingerprints of `ranges` of `data`: the rolling gear hash (over the last 64
/// bytes) wherever its top [`ANCHOR_BITS`] bits are zero. The same bytes give the same
/// fingerprints wherever they sit, so two versions of a file share most of them.
fn fingerprints(data: &[u8], ranges: &Ranges, out: &mut Vec<u64>) {
    let mut h = 0u64;
    for &(off, len) in ranges {
        for &b in &data[off as usize..(off + len) as usize] {
            h = (h << 1).wrapping_add(GEAR[usize::from(b)]);
            if h >> (64 - ANCHOR_BITS) == 0 {
                out.push(h);
            }
        }
    }
}

/// Old versions of renamed files: a target file of at least [`SIMILAR_MIN`] bytes that no path,
/// version-blanked path or file name matched gets the source file that shares the most content
/// fingerprints with it, when that is at least a quarter of its fingerprints (and 8).
fn match_by_content(
    t_files: &[ext4::FileEntry],
    s_files: &[ext4::FileEntry],
    target: &[u8],
    source: &[u8],
    t_block: u64,
    s_block: u64,
    old_versions: &mut [Option<Layout>],
) {
    let regular = |f: &&ext4::FileEntry| {
        matches!(f.kind, ext4::FileKind::Regular | ext4::FileKind::Directory)
    };
    let wanted: Vec<(usize, &ext4::FileEntry)> = t_files
        .iter()
        .filter(regular)
        .enumerate()
        .filter(|(i, f)| {
            old_versions[*i].is_none() && f.kind == ext4::FileKind::Regular && f.size >= SIMILAR_MIN
        })
        .collect();
    if wanted.is_empty() {
        return;
    }
    // Every source file's fingerprints; a fingerprint that several files share points to none.
    let candidates: Vec<&ext4::FileEntry> = s_files
        .iter()
        .filter(|f| f.kind == ext4::FileKind::Regular && f.size >= SIMILAR_MIN)
        .collect();
    let mut owner: HashMap<u64, Option<u32>> = HashMap::new();
    let mut prints = Vec::new();
    for (k, f) in candidates.iter().enumerate() {
        prints.clear();
        let layout = entry_layout(f, s_block);
        fingerprints(source, &data_ranges(&layout), &mut prints);
        for &p in &prints {
            owner
                .entry(p)
                .and_modify(|o| {
                    if *o != Some(k as u32) {
                        *o = None;
                    }
                })
                .or_insert(Some(k as u32));
        }
    }
    for (i, f) in wanted {
        prints.clear();
        let layout = entry_layout(f, t_block);
        fingerprints(target, &data_ranges(&layout), &mut prints);
        prints.sort_unstable();
        prints.dedup();
        let mut hits: HashMap<u32, usize> = HashMap::new();
        for p in &prints {
            if let Some(Some(k)) = owner.get(p) {
                *hits.entry(*k).or_default() += 1;
            }
        }
        // The most hits; ties to the lower index, so the choice is deterministic.
        let best = hits
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
        if let Some((k, n)) = best {
            if n >= 8 && n * 4 >= prints.len() {
                let old = candidates[k as usize];
                old_versions[i] = Some(entry_layout(old, s_block));
            }
        }
    }
}

/// Inserts `value` under `key`, or marks the key ambiguous (`None`) when another file holds it.
fn unique_insert<'f, K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Option<&'f ext4::FileEntry>>,
    key: K,
    value: &'f ext4::FileEntry,
) {
    map.entry(key)
        .and_modify(|v| {
            if v.is_some_and(|old| old.ino != value.ino) {
                *v = None;
            }
        })
        .or_insert(Some(value));
}

/// A path with every run of digits replaced by `#`: paths that differ only in version numbers
/// have the same shape.
fn version_shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_digits = false;
    for c in path.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

/// The last component of a path.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A file's layout ([`file_layout`]); empty when its content is not in data blocks (inline
/// data), so that it does not add up to the file's size.
fn entry_layout(f: &ext4::FileEntry, block: u64) -> Layout {
    match f.storage {
        ext4::Storage::Blocks => file_layout(&f.runs, block, f.size),
        _ => Layout::new(),
    }
}

/// A file as stretches of its image, in file order: its initialized runs as data (the last
/// block cut at the file's size), and zeros for everything else up to its size (holes,
/// unwritten extents, the end past the last block).
fn file_layout(runs: &[ext4::Run], block: u64, size: u64) -> Layout {
    let mut layout = Layout::new();
    let mut pos = 0u64; // bytes of the file laid out so far
    let zeros = |layout: &mut Layout, n: u64| match layout.last_mut() {
        Some(Stretch::Zeros(z)) => *z += n,
        _ if n > 0 => layout.push(Stretch::Zeros(n)),
        _ => {}
    };
    let mut sorted: Vec<&ext4::Run> = runs.iter().filter(|r| r.initialized).collect();
    sorted.sort_by_key(|r| r.logical);
    for r in sorted {
        let start = (r.logical * block).min(size);
        let end = ((r.logical + r.len) * block).min(size);
        if end <= pos.max(start) {
            continue; // past the size, or overlapping what is laid out (corrupt maps)
        }
        zeros(&mut layout, start.saturating_sub(pos));
        let skip = pos.saturating_sub(start);
        let (offset, len) = (r.physical * block + skip, end - start - skip);
        match layout.last_mut() {
            // Runs that continue each other on disk are one stretch.
            Some(Stretch::Data { offset: o, len: l }) if *o + *l == offset => *l += len,
            _ => layout.push(Stretch::Data { offset, len }),
        }
        pos = end;
    }
    zeros(&mut layout, size - pos);
    layout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_old_versions_give_a_window_around_the_same_place() {
        let data = |ranges: &Ranges| -> Layout {
            ranges
                .iter()
                .map(|&(offset, len)| Stretch::Data { offset, len })
                .collect()
        };
        let small: Ranges = vec![(0, 1000), (5000, 1000)];
        assert_eq!(old_window(&data(&small), 500, 10, 2000), small);
        let m = OLD_WINDOW_MARGIN;
        // A 10 MiB old file in two pieces; new bytes at 6 MiB of a new version that grew by
        // 3 MiB: the widest window.
        let big = data(&vec![(0, 5 << 20), (100 << 20, 5 << 20)]);
        let w = old_window(&big, 6 << 20, 4096, 13 << 20);
        assert_eq!(
            w,
            vec![
                ((6 << 20) - m, (5 << 20) - ((6 << 20) - m)),
                (100 << 20, (1 << 20) + 4096 + m)
            ]
        );
        let total: u64 = w.iter().map(|r| r.1).sum();
        assert_eq!(total, 2 * m + 4096);
        // Near the end: clipped.
        assert_eq!(
            old_window(&big, 10 << 20, 4096, 13 << 20),
            vec![((105 << 20) - m, m)]
        );
        // The same size: the narrowest window; 1,000 bytes longer: that much wider.
        let n = OLD_WINDOW_MIN_MARGIN;
        assert_eq!(
            old_window(&big, 6 << 20, 4096, 10 << 20),
            vec![((100 << 20) + (1 << 20) - n, 2 * n + 4096)]
        );
        assert_eq!(
            old_window(&big, 6 << 20, 4096, (10 << 20) + 1000),
            vec![((100 << 20) + (1 << 20) - n - 1000, 2 * (n + 1000) + 4096)]
        );
    }

    #[test]
    fn old_windows_count_holes_as_file_bytes() {
        // 3 MiB of data, a 2 MiB hole, 3 MiB of data: a window at 6 MiB lies in the second
        // data run, 1 MiB into it (not at 6 MiB of the data alone).
        let m = 1u64 << 20;
        let layout = vec![
            Stretch::Data {
                offset: 0,
                len: 3 * m,
            },
            Stretch::Zeros(2 * m),
            Stretch::Data {
                offset: 10 * m,
                len: 3 * m,
            },
        ];
        let n = OLD_WINDOW_MIN_MARGIN;
        assert_eq!(
            old_window(&layout, 6 * m, 4096, 8 * m),
            vec![(11 * m - n, 2 * n + 4096)]
        );
        // A window over the hole keeps only the data around it.
        assert_eq!(
            old_window(&layout, 4 * m, 4096, 8 * m),
            Vec::<(u64, u64)>::new()
        );
    }

    fn run(logical: u64, physical: u64, len: u64) -> ext4::Run {
        ext4::Run {
            logical,
            physical,
            len,
            initialized: true,
        }
    }

    #[test]
    fn file_layouts_have_holes_as_zeros() {
        // Blocks 0-1 at 100, a hole at 2-3, block 4 at 200; the file ends 10 bytes into a
        // sixth block that no run holds.
        let runs = [run(4, 200, 1), run(0, 100, 2)];
        let layout = file_layout(&runs, 4096, 5 * 4096 + 10);
        assert_eq!(
            layout,
            vec![
                Stretch::Data {
                    offset: 100 * 4096,
                    len: 8192
                },
                Stretch::Zeros(8192),
                Stretch::Data {
                    offset: 200 * 4096,
                    len: 4096
                },
                Stretch::Zeros(10),
            ]
        );
        let image: Vec<u8> = (0..256 * 4096u32).map(|i| (i % 251) as u8 | 1).collect();
        let bytes = gather_file(&image, &layout);
        assert_eq!(bytes.len(), 5 * 4096 + 10);
        assert!(bytes[8192..16384].iter().all(|&b| b == 0));
        assert_eq!(bytes[16384], image[200 * 4096]);
        assert_eq!(first_data(&layout), Some(100 * 4096));
        // Unwritten extents read as zeros; a last block is cut at the size.
        let mut unwritten = run(0, 100, 1);
        unwritten.initialized = false;
        assert_eq!(
            file_layout(&[unwritten, run(1, 300, 1)], 4096, 4096 + 100),
            vec![
                Stretch::Zeros(4096),
                Stretch::Data {
                    offset: 300 * 4096,
                    len: 100
                }
            ]
        );
        assert_eq!(first_data(&file_layout(&[], 4096, 50)), None);
    }

    #[test]
    fn shapes_and_names() {
        assert_eq!(
            version_shape("/lib/modules/6.1.0-17-amd64/kernel/fs/ext4.ko"),
            version_shape("/lib/modules/6.1.0-18-amd64/kernel/fs/ext4.ko")
        );
        assert_eq!(
            version_shape("/usr/lib/libfoo.so.1.2.3"),
            "/usr/lib/libfoo.so.#.#.#"
        );
        assert_ne!(
            version_shape("/usr/lib/a.so"),
            version_shape("/usr/lib/b.so")
        );
        assert_eq!(file_name("/usr/share/doc/x/README"), "README");
        assert_eq!(file_name("name"), "name");
    }
}
