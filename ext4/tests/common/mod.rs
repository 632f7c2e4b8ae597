//! Shared helpers for the ext4 integration tests: building images with real e2fsprogs from
//! generated trees, and checking the reader against debugfs, dumpe2fs and the source tree.

#![allow(dead_code)]

use ext4::{BlockMap, FileKind, Filesystem, Owner, Role, Scan, Storage};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Panics with a clear message when e2fsprogs is missing (tests must not skip silently).
pub fn require_e2fsprogs() {
    for tool in ["mke2fs", "debugfs", "dumpe2fs", "e2fsck"] {
        let found = Command::new(tool).arg("-V").output().is_ok();
        assert!(
            found,
            "{tool} (e2fsprogs) is not installed: run scripts/install-deps.sh"
        );
    }
}

/// Runs a command and returns its stdout; panics with stderr on failure.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds an image with `mke2fs -t <fs_type> <args> [-d src] <img> <size>`.
pub fn mkfs(
    dir: &Path,
    name: &str,
    fs_type: &str,
    args: &[&str],
    size: &str,
    src: Option<&Path>,
) -> PathBuf {
    require_e2fsprogs();
    let img = dir.join(name);
    let mut cmd = Command::new("mke2fs");
    cmd.env("MKE2FS_CONFIG", "/etc/mke2fs.conf").args([
        "-F",
        "-q",
        "-t",
        fs_type,
        "-E",
        "lazy_itable_init=1",
    ]);
    cmd.args(args);
    if let Some(src) = src {
        cmd.arg("-d").arg(src);
    }
    cmd.arg(&img).arg(size);
    run(&mut cmd);
    img
}

/// `e2fsck -fyD`: rebuilds large directories as htrees. Exit codes 0..=2 mean success.
pub fn e2fsck_optimize_dirs(img: &Path) {
    let out = Command::new("e2fsck")
        .args(["-fyD"])
        .arg(img)
        .output()
        .expect("run e2fsck");
    assert!(
        out.status.code().is_some_and(|c| c <= 2),
        "e2fsck -fyD failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `e2fsck -fn`: asserts the image is consistent.
pub fn e2fsck_clean(img: &Path) {
    let out = Command::new("e2fsck")
        .args(["-fn"])
        .arg(img)
        .output()
        .expect("run e2fsck");
    assert_eq!(
        out.status.code(),
        Some(0),
        "image not clean: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs debugfs commands in one batch; returns each command's output.
pub fn debugfs(img: &Path, commands: &[String], write: bool) -> Vec<String> {
    let script = img.with_extension("debugfs-cmds");
    fs::write(&script, commands.join("\n") + "\n").expect("write debugfs script");
    let mut cmd = Command::new("debugfs");
    if write {
        cmd.arg("-w");
    }
    let out = run(cmd.arg("-f").arg(&script).arg(img));
    let mut outputs: Vec<String> = Vec::new();
    for line in out.lines() {
        if line.starts_with("debugfs: ") {
            outputs.push(String::new());
        } else if let Some(last) = outputs.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    assert_eq!(
        outputs.len(),
        commands.len(),
        "debugfs output does not split per command:\n{out}"
    );
    outputs
}

/// Sorted, merged half-open block ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges(pub Vec<(u64, u64)>);

impl Ranges {
    pub fn from_iter(items: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut v: Vec<(u64, u64)> = items.into_iter().filter(|(s, e)| e > s).collect();
        v.sort();
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (s, e) in v {
            match out.last_mut() {
                Some(last) if last.1 >= s => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        Self(out)
    }
}

/// Parses `A` or `A-B` (inclusive) into a half-open range.
fn parse_range(text: &str) -> (u64, u64) {
    let text = text.trim().trim_end_matches(',');
    match text.split_once('-') {
        Some((a, b)) => (
            a.parse().expect("range start"),
            b.parse::<u64>().expect("range end") + 1,
        ),
        None => {
            let a: u64 = text
                .parse()
                .unwrap_or_else(|_| panic!("bad block number {text:?}"));
            (a, a + 1)
        }
    }
}

/// Metadata locations and free blocks according to dumpe2fs.
#[derive(Debug, Default)]
pub struct DumpLayout {
    pub superblocks: Ranges,
    pub descriptors: Ranges,
    pub reserved_gdt: Ranges,
    pub block_bitmaps: Ranges,
    pub inode_bitmaps: Ranges,
    pub inode_tables: Ranges,
    pub free: Ranges,
}

pub fn dumpe2fs(img: &Path) -> DumpLayout {
    let out = run(Command::new("dumpe2fs").arg(img));
    let mut sb = Vec::new();
    let mut gd = Vec::new();
    let mut rg = Vec::new();
    let mut bb = Vec::new();
    let mut ib = Vec::new();
    let mut it = Vec::new();
    let mut free = Vec::new();
    // Only the indented per-group lines: the header also has a "Free blocks:" count.
    for line in out.lines().filter(|l| l.starts_with("  ")).map(str::trim) {
        for part in line.split(", ") {
            let part = part.trim();
            let after = |prefix: &str| {
                part.strip_prefix(prefix)
                    .map(|r| r.split_whitespace().next().unwrap_or(""))
            };
            if let Some(r) =
                after("Primary superblock at ").or_else(|| after("Backup superblock at "))
            {
                sb.push(parse_range(r));
            } else if let Some(r) =
                after("Group descriptors at ").or_else(|| after("Group descriptor at "))
            {
                gd.push(parse_range(r));
            } else if let Some(r) = after("Reserved GDT blocks at ") {
                rg.push(parse_range(r));
            } else if let Some(r) = after("Block bitmap at ") {
                bb.push(parse_range(r));
            } else if let Some(r) = after("Inode bitmap at ") {
                ib.push(parse_range(r));
            } else if let Some(r) = after("Inode table at ") {
                it.push(parse_range(r));
            }
        }
        if let Some(list) = line.strip_prefix("Free blocks: ") {
            free.extend(
                list.split(", ")
                    .filter(|s| !s.trim().is_empty())
                    .map(parse_range),
            );
        }
    }
    DumpLayout {
        superblocks: Ranges::from_iter(sb),
        descriptors: Ranges::from_iter(gd),
        reserved_gdt: Ranges::from_iter(rg),
        block_bitmaps: Ranges::from_iter(bb),
        inode_bitmaps: Ranges::from_iter(ib),
        inode_tables: Ranges::from_iter(it),
        free: Ranges::from_iter(free),
    }
}

/// The block ranges of `map` whose owner satisfies `pick`.
pub fn owned(map: &BlockMap, pick: impl Fn(&Owner) -> bool) -> Ranges {
    Ranges::from_iter(
        map.runs
            .iter()
            .filter(|r| pick(&r.owner))
            .map(|r| (r.start, r.end())),
    )
}

/// Checks the structural invariants of a block map: sorted, adjacent, covering, consistent.
pub fn check_map_invariants(map: &BlockMap) {
    let mut pos = 0;
    for run in &map.runs {
        assert_eq!(
            run.start, pos,
            "block map has a gap or overlap at block {pos}"
        );
        assert!(run.len > 0);
        pos = run.end();
    }
    assert_eq!(
        pos, map.blocks_count,
        "block map does not cover the filesystem"
    );
    let unaccounted = owned(map, |o| *o == Owner::Unaccounted);
    assert!(
        unaccounted.0.is_empty(),
        "blocks marked used but unowned: {unaccounted:?}"
    );
    assert_eq!(map.owned_but_marked_free, 0, "owned blocks marked free");
}

/// Checks metadata locations and free blocks against dumpe2fs.
pub fn check_against_dumpe2fs(img: &Path, map: &BlockMap) {
    let d = dumpe2fs(img);
    let sb = owned(map, |o| {
        matches!(o, Owner::Superblock | Owner::BackupSuperblock)
    });
    assert_eq!(sb, d.superblocks, "superblock locations");
    let gd = owned(map, |o| {
        matches!(o, Owner::GroupDescriptors | Owner::BackupGroupDescriptors)
    });
    assert_eq!(gd, d.descriptors, "group descriptor locations");
    assert_eq!(
        owned(map, |o| *o == Owner::ReservedGdt),
        d.reserved_gdt,
        "reserved GDT locations"
    );
    assert_eq!(
        owned(map, |o| *o == Owner::BlockBitmap),
        d.block_bitmaps,
        "block bitmaps"
    );
    assert_eq!(
        owned(map, |o| *o == Owner::InodeBitmap),
        d.inode_bitmaps,
        "inode bitmaps"
    );
    assert_eq!(
        owned(map, |o| *o == Owner::InodeTable),
        d.inode_tables,
        "inode tables"
    );
    assert_eq!(owned(map, |o| *o == Owner::Free), d.free, "free blocks");
}

/// Checks every block-mapped inode's data blocks against `debugfs blocks` and its mapping blocks
/// against the (IND)/(DIND)/(TIND)/(ETBn) entries of `debugfs stat`.
pub fn check_against_debugfs_blocks(img: &Path, scan: &Scan) {
    let files: Vec<_> = scan
        .files
        .iter()
        .filter(|f| f.storage == Storage::Blocks)
        .collect();
    let mut commands = Vec::new();
    for f in &files {
        commands.push(format!("blocks <{}>", f.ino));
        commands.push(format!("stat <{}>", f.ino));
    }
    let outputs = debugfs(img, &commands, false);
    for (f, pair) in files.iter().zip(outputs.chunks(2)) {
        let mut mapping = Vec::new();
        for token in pair[1].split_whitespace() {
            for label in ["(IND):", "(DIND):", "(TIND):"] {
                if let Some(r) = token.strip_prefix(label) {
                    mapping.push(parse_range(r));
                }
            }
            if let Some(rest) = token.strip_prefix("(ETB") {
                if let Some((_, r)) = rest.split_once("):") {
                    mapping.push(parse_range(r));
                }
            }
        }
        let mine = Ranges::from_iter(f.mapping_blocks.iter().map(|m| (m.start, m.end())));
        let mapping = Ranges::from_iter(mapping);
        assert_eq!(
            mine, mapping,
            "mapping blocks of inode {} ({:?})",
            f.ino, f.paths
        );
        // `debugfs blocks` lists mapping blocks too, interleaved in walk order; the data blocks
        // are the rest, in logical order.
        let is_mapping = |b: u64| mapping.0.iter().any(|&(s, e)| (s..e).contains(&b));
        let expected: Vec<u64> = pair[0]
            .split_whitespace()
            .map(|b| b.parse().expect("block number"))
            .filter(|&b| !is_mapping(b))
            .collect();
        let data: Vec<u64> = f
            .runs
            .iter()
            .flat_map(|r| r.physical..r.physical + r.len)
            .collect();
        assert_eq!(
            data, expected,
            "data blocks of inode {} ({:?})",
            f.ino, f.paths
        );
        let uninit_in_stat = pair[1].contains("[u]");
        let uninit_mine = f.runs.iter().any(|r| !r.initialized);
        assert_eq!(
            uninit_mine, uninit_in_stat,
            "uninitialised extents of inode {}",
            f.ino
        );
    }
}

/// Reads a file completely through the reader.
pub fn read_all<R: ext4::ReadAt>(fs: &Filesystem<R>, file: &ext4::FileEntry) -> Vec<u8> {
    let mut out = Vec::new();
    fs.read_file(file).read_to_end(&mut out).expect("read file");
    out
}

/// Path of `p` relative to `root` as the reader spells it (`/a/b`, escaped like the reader).
fn image_path(root: &Path, p: &Path) -> String {
    let rel = p.strip_prefix(root).expect("under root");
    let mut out = String::new();
    for c in rel.components() {
        out.push('/');
        let bytes = c.as_os_str().as_bytes();
        match std::str::from_utf8(bytes) {
            Ok(s) => out.push_str(s),
            Err(_) => {
                for chunk in bytes.utf8_chunks() {
                    out.push_str(chunk.valid());
                    for b in chunk.invalid() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        out.push(p.clone());
        if fs::symlink_metadata(&p).expect("stat").is_dir() {
            walk(&p, out);
        }
    }
}

/// Compares streamed content chunk by chunk (files may be hundreds of MiB, mostly holes).
fn same_content<R: ext4::ReadAt>(fs: &Filesystem<R>, file: &ext4::FileEntry, src: &Path) -> bool {
    let mut a = fs.read_file(file);
    let mut b = fs::File::open(src).expect("open source");
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    loop {
        let n = read_full(&mut a, &mut ba);
        let m = read_full(&mut b, &mut bb);
        if n != m || ba[..n] != bb[..m] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut done = 0;
    while done < buf.len() {
        let n = r.read(&mut buf[done..]).expect("read");
        if n == 0 {
            break;
        }
        done += n;
    }
    done
}

/// Checks names, kinds, attributes, hard links and contents of every file against the tree
/// the image was built from. `modified` lists paths changed after mkfs (content not compared).
pub fn check_against_source<R: ext4::ReadAt>(
    fs: &Filesystem<R>,
    scan: &Scan,
    src: &Path,
    modified: &[&str],
) {
    let mut source = Vec::new();
    walk(src, &mut source);
    let mut expected_paths: BTreeSet<String> = source.iter().map(|p| image_path(src, p)).collect();
    expected_paths.insert("/".to_string());
    expected_paths.insert("/lost+found".to_string());
    let mine: BTreeSet<String> = scan
        .files
        .iter()
        .filter(|f| f.role == Role::Normal)
        .flat_map(|f| f.paths.iter().cloned())
        .collect();
    assert_eq!(mine, expected_paths, "path sets differ");

    let mut inode_of_source: HashMap<(u64, u64), u32> = HashMap::new();
    for p in &source {
        let path = image_path(src, p);
        let meta = fs::symlink_metadata(p).expect("stat");
        let file = scan
            .by_path(&path)
            .unwrap_or_else(|| panic!("{path} missing"));
        let prev = inode_of_source.insert((meta.dev(), meta.ino()), file.ino);
        assert!(
            prev.is_none_or(|i| i == file.ino),
            "hard links of {path} map to different inodes"
        );
        assert_eq!(
            u32::from(file.mode) & 0o7777,
            meta.permissions().mode() & 0o7777,
            "mode of {path}"
        );
        assert_eq!(file.uid, meta.uid(), "uid of {path}");
        assert_eq!(file.gid, meta.gid(), "gid of {path}");
        assert_eq!(
            file.escaped_name,
            path.contains("\\x"),
            "escape flag of {path}"
        );
        let ft = meta.file_type();
        if ft.is_dir() {
            assert_eq!(file.kind, FileKind::Directory, "{path}");
        } else if ft.is_symlink() {
            assert_eq!(file.kind, FileKind::Symlink, "{path}");
            let target = fs::read_link(p).expect("readlink");
            assert_eq!(
                read_all(fs, file),
                target.as_os_str().as_bytes(),
                "symlink target of {path}"
            );
        } else if ft.is_file() {
            assert_eq!(file.kind, FileKind::Regular, "{path}");
            assert_eq!(u64::from(file.links), meta.nlink(), "links of {path}");
            if !modified.contains(&path.as_str()) {
                assert_eq!(file.size, meta.len(), "size of {path}");
                assert!(same_content(fs, file, p), "content of {path} differs");
            }
        }
    }
}

/// Compares the content of `paths` with `debugfs dump`.
pub fn check_against_debugfs_dump<R: ext4::ReadAt>(
    fs: &Filesystem<R>,
    scan: &Scan,
    img: &Path,
    paths: &[&str],
) {
    let out_dir = img.with_extension("dump");
    fs::create_dir_all(&out_dir).expect("mkdir");
    let commands: Vec<String> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| format!("dump \"{p}\" {}", out_dir.join(i.to_string()).display()))
        .collect();
    debugfs(img, &commands, false);
    for (i, p) in paths.iter().enumerate() {
        let mut expected = fs::read(out_dir.join(i.to_string())).expect("dumped file");
        let file = scan.by_path(p).unwrap_or_else(|| panic!("{p} missing"));
        if file.storage == Storage::Inline && expected.len() as u64 > file.size {
            // debugfs 1.47.0 dumps the whole inline area (>= 60 bytes), not i_size bytes.
            let size = file.size as usize;
            assert!(
                expected[size..].iter().all(|&b| b == 0),
                "{p}: inline bytes past i_size"
            );
            expected.truncate(size);
        }
        assert_eq!(
            read_all(fs, file),
            expected,
            "content of {p} vs debugfs dump"
        );
    }
}

/// Opens the image and runs every check. Returns the scan and map for extra assertions.
pub fn verify(img: &Path, src: &Path, modified: &[&str]) -> (Scan, BlockMap) {
    let fs = Filesystem::open(fs::File::open(img).expect("open image")).expect("open filesystem");
    let scan = fs.scan().expect("scan");
    let map = fs.block_map(&scan).expect("block map");
    check_map_invariants(&map);
    check_against_dumpe2fs(img, &map);
    check_against_debugfs_blocks(img, &scan);
    check_against_source(&fs, &scan, src, modified);
    check_report(&fs);
    (scan, map)
}

/// The report serialises and renders.
pub fn check_report<R: ext4::ReadAt>(fs: &Filesystem<R>) {
    let report = fs.report().expect("report");
    let json = serde_json::to_value(&report).expect("json");
    assert!(json["summary"]["block_size"].as_u64().is_some());
    let mut text = Vec::new();
    report.write_text(&mut text).expect("text");
    let text = String::from_utf8(text).expect("utf8 text");
    assert!(text.contains("lost+found"));
}

// ---- source trees -------------------------------------------------------------------------

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn write(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(path, data).expect("write");
}

/// A tree with many small files, empty files, a medium file, a sparse file, fast and slow
/// symlinks, hard links, a deep directory chain, a large directory, and a non-UTF-8 name.
pub fn basic_tree(root: &Path, small_files: usize, large_dir_entries: usize) {
    write(&root.join("etc/passwd"), b"root:x:0:0:root:/root:/bin/sh\n");
    write(&root.join("etc/hostname"), b"device\n");
    fs::hard_link(root.join("etc/passwd"), root.join("etc/passwd-hardlink")).expect("link");
    for i in 0..small_files {
        let len = (i * 37) % 3000;
        write(
            &root.join(format!("many/sub{}/f{i:04}", i % 7)),
            &bytes(i as u64, len),
        );
    }
    write(&root.join("empty"), b"");
    write(&root.join("many/empty2"), b"");
    write(&root.join("medium.bin"), &bytes(99, 1_500_000 + 123));
    fs::hard_link(root.join("medium.bin"), root.join("many/medium-link")).expect("link");
    // Sparse: data at 0, 20 KiB and 1 MiB, holes between, size 3 MiB.
    let mut f = fs::File::create(root.join("sparse.img")).expect("create");
    for (offset, seed) in [(0u64, 1u64), (20 * 1024, 2), (1 << 20, 3)] {
        std::os::unix::fs::FileExt::write_all_at(&f, &bytes(seed, 5000), offset).expect("write");
    }
    f.set_len(3 << 20).expect("truncate");
    f.flush().expect("flush");
    std::os::unix::fs::symlink("etc/passwd", root.join("link-fast")).expect("symlink");
    let long_target = format!("{}/target", "a-long-directory-name".repeat(5));
    std::os::unix::fs::symlink(&long_target, root.join("link-slow")).expect("symlink");
    let mut deep = root.join("deep");
    for level in 0..40 {
        deep = deep.join(format!("level{level}"));
    }
    write(&deep.join("leaf.txt"), b"deep leaf\n");
    for i in 0..large_dir_entries {
        write(
            &root.join(format!("large-dir/entry-with-a-fairly-long-name-{i:05}")),
            &[i as u8],
        );
    }
    write(
        &root.join(std::ffi::OsStr::from_bytes(b"bad\xffname")),
        b"latin1 name\n",
    );
    fs::set_permissions(root.join("etc/hostname"), fs::Permissions::from_mode(0o600))
        .expect("chmod");
}

/// A sparse file of `size` bytes whose every `stride`-th block of `block_size` bytes, `count`
/// times, holds data: one extent per data block, so the extent tree gets deep.
pub fn scattered_file(path: &Path, size: u64, block_size: u64, stride: u64, count: u64) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    let f = fs::File::create(path).expect("create");
    for i in 0..count {
        let offset = i * stride * block_size;
        assert!(offset + block_size <= size);
        std::os::unix::fs::FileExt::write_all_at(&f, &bytes(i + 1000, block_size as usize), offset)
            .expect("write");
    }
    f.set_len(size).expect("truncate");
}

/// Extent-tree depth of inode `ino` according to `debugfs ex` (the `N` in its `level/ N` column).
pub fn extent_depth(img: &Path, ino: u32) -> u32 {
    let out = debugfs(img, &[format!("ex <{ino}>")], false).remove(0);
    out.lines()
        .filter_map(|l| l.trim_start().split_once('/').map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .max()
        .unwrap_or_else(|| panic!("no extent levels in debugfs ex output: {out}"))
}
