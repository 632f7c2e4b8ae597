//! The reader against real e2fsprogs images: every layout and feature combination the brief
//! lists, each checked against dumpe2fs, debugfs and the source tree (see `common::verify`).

mod common;

use common::*;
use ext4::{FileKind, Filesystem, Owner, Role, Storage};
use std::fs;
use std::path::Path;

fn tree(dir: &Path, small_files: usize, large_dir_entries: usize) -> std::path::PathBuf {
    let src = dir.join("src");
    basic_tree(&src, small_files, large_dir_entries);
    src
}

#[test]
fn ext4_default_4k_with_htree_directory() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 300, 400);
    let img = mkfs(
        dir.path(),
        "a.img",
        "ext4",
        &["-b", "4096"],
        "24M",
        Some(&src),
    );
    e2fsck_optimize_dirs(&img);
    let htree = debugfs(&img, &["htree /large-dir".to_string()], false).remove(0);
    assert!(
        htree.contains("Root node dump"),
        "large-dir is not an htree: {htree}"
    );
    let (scan, map) = verify(&img, &src, &[]);
    let journal = scan
        .files
        .iter()
        .find(|f| f.role == Role::Journal)
        .expect("journal");
    assert_eq!(journal.ino, 8);
    assert!(map
        .runs
        .iter()
        .any(|r| matches!(r.owner, Owner::Journal { ino: 8, .. })));
    let fast = scan.by_path("/link-fast").unwrap();
    assert_eq!(fast.storage, Storage::FastSymlink);
    assert_eq!(scan.by_path("/link-slow").unwrap().storage, Storage::Blocks);
    let passwd = scan.by_path("/etc/passwd").unwrap();
    assert_eq!(passwd.paths, ["/etc/passwd", "/etc/passwd-hardlink"]);
    assert!(scan.by_path("/bad\\xffname").unwrap().escaped_name);
    // The sparse file's holes are not mapped.
    let sparse = scan.by_path("/sparse.img").unwrap();
    assert!(sparse.data_blocks() < 10, "{:?}", sparse.runs);
}

#[test]
fn ext4_1k_blocks_deep_extent_tree_over_128mib() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 50, 0);
    // > 4 * 84 extents of one 1 KiB block each: a depth-2 tree; 200 MiB logical size.
    scattered_file(&src.join("huge/scattered.bin"), 200 << 20, 1024, 400, 500);
    let img = mkfs(
        dir.path(),
        "b.img",
        "ext4",
        &["-b", "1024"],
        "16M",
        Some(&src),
    );
    let (scan, _) = verify(&img, &src, &[]);
    let file = scan.by_path("/huge/scattered.bin").unwrap();
    assert_eq!(file.runs.len(), 500);
    assert!(
        extent_depth(&img, file.ino) >= 2,
        "expected a depth >= 2 extent tree"
    );
}

#[test]
fn ext4_4k_depth_two_extent_tree() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    // > 4 * 340 extents with 4 KiB blocks.
    scattered_file(&src.join("scattered.bin"), 160 << 20, 4096, 2, 1400);
    let img = mkfs(
        dir.path(),
        "c.img",
        "ext4",
        &["-b", "4096"],
        "16M",
        Some(&src),
    );
    let (scan, _) = verify(&img, &src, &[]);
    let file = scan.by_path("/scattered.bin").unwrap();
    assert_eq!(file.runs.len(), 1400);
    assert!(extent_depth(&img, file.ino) >= 2);
}

#[test]
fn ext3_indirect_blocks_up_to_triple_indirect() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 100, 250);
    // With 1 KiB blocks the triple-indirect tree starts at logical block 12 + 256 + 65536.
    scattered_file(&src.join("huge/scattered.bin"), 200 << 20, 1024, 997, 200);
    let img = mkfs(
        dir.path(),
        "d.img",
        "ext3",
        &["-b", "1024"],
        "24M",
        Some(&src),
    );
    e2fsck_optimize_dirs(&img);
    let (scan, _) = verify(&img, &src, &[]);
    let file = scan.by_path("/huge/scattered.bin").unwrap();
    assert!(
        file.runs.iter().any(|r| r.logical > 12 + 256 + 65536),
        "no triple-indirect blocks"
    );
    assert!(file.mapping_blocks.len() > 3);
}

#[test]
fn ext2_2k_blocks_no_journal() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 200, 300);
    let img = mkfs(
        dir.path(),
        "e.img",
        "ext2",
        &["-b", "2048"],
        "24M",
        Some(&src),
    );
    let (scan, _) = verify(&img, &src, &[]);
    assert!(scan.files.iter().all(|f| f.role != Role::Journal));
    assert!(fs_features(&img).contains(&"resize_inode".to_string()));
}

#[test]
fn ext4_without_extents_uses_indirect_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 100, 0);
    let img = mkfs(
        dir.path(),
        "f.img",
        "ext4",
        &["-O", "^extent,^64bit", "-b", "4096"],
        "16M",
        Some(&src),
    );
    let (scan, _) = verify(&img, &src, &[]);
    let medium = scan.by_path("/medium.bin").unwrap();
    assert!(
        !medium.mapping_blocks.is_empty(),
        "a 1.5 MB file needs an indirect block"
    );
}

#[test]
fn ext4_inline_data() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 100, 0);
    fs::write(src.join("inline-120"), bytes(5, 120)).unwrap();
    let img = mkfs(
        dir.path(),
        "g.img",
        "ext4",
        &["-O", "inline_data", "-I", "256"],
        "16M",
        Some(&src),
    );
    // mke2fs 1.47.0 -d with inline_data drops the trailing hole of sparse files (i_size ends at
    // the last data block), so that file is compared with debugfs instead of the source.
    let (scan, _) = verify(&img, &src, &["/sparse.img"]);
    let fs = Filesystem::open(fs::File::open(&img).unwrap()).unwrap();
    check_against_debugfs_dump(
        &fs,
        &scan,
        &img,
        &["/sparse.img", "/inline-120", "/etc/passwd", "/link-slow"],
    );
    let inline = scan.by_path("/inline-120").unwrap();
    assert_eq!(
        inline.storage,
        Storage::Inline,
        "a 120-byte file spills into system.data"
    );
    let small_dir = scan.by_path("/etc").unwrap();
    assert_eq!(
        small_dir.storage,
        Storage::Inline,
        "small directories are inline"
    );
    assert!(
        scan.files
            .iter()
            .filter(|f| f.storage == Storage::Inline)
            .count()
            > 10
    );
}

#[test]
fn ext4_64bit_meta_bg_many_groups() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 300, 0);
    let img = mkfs(
        dir.path(),
        "h.img",
        "ext4",
        &[
            "-O",
            "64bit,meta_bg,^resize_inode",
            "-b",
            "1024",
            "-g",
            "1024",
        ],
        "40M",
        Some(&src),
    );
    let (_, map) = verify(&img, &src, &[]);
    let fs = Filesystem::open(fs::File::open(&img).unwrap()).unwrap();
    assert!(fs.groups().len() > 32, "want several meta groups");
    assert_eq!(fs.superblock().desc_size, 64);
    assert!(map
        .runs
        .iter()
        .any(|r| r.owner == Owner::BackupGroupDescriptors));
}

#[test]
fn ext4_32bit_descriptors_no_flex_bg_no_journal_uninit_bg() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 150, 0);
    let img = mkfs(
        dir.path(),
        "i.img",
        "ext4",
        &[
            "-O",
            "^64bit,^flex_bg,^has_journal,^metadata_csum,uninit_bg",
            "-b",
            "1024",
            "-g",
            "2048",
        ],
        "32M",
        Some(&src),
    );
    let (_, _) = verify(&img, &src, &[]);
    let fs = Filesystem::open(fs::File::open(&img).unwrap()).unwrap();
    assert_eq!(fs.superblock().desc_size, 32);
    assert!(
        fs.groups().iter().any(|g| g.block_uninit()),
        "expected BLOCK_UNINIT groups"
    );
    let backups = fs.backup_superblocks();
    assert_eq!(
        backups[..4],
        [2049, 6145, 10241, 14337],
        "sparse_super: groups 1, 3, 5, 7"
    );
}

#[test]
fn ext4_sparse_super2_and_flex_bg() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 50, 0);
    let img = mkfs(
        dir.path(),
        "j.img",
        "ext4",
        &["-O", "sparse_super2", "-b", "1024", "-g", "1024", "-G", "4"],
        "24M",
        Some(&src),
    );
    verify(&img, &src, &[]);
    let fs = Filesystem::open(fs::File::open(&img).unwrap()).unwrap();
    assert!(fs.backup_superblocks().len() <= 2);
}

#[test]
fn ext4_64k_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 30, 0);
    let img = mkfs(
        dir.path(),
        "k.img",
        "ext4",
        &["-b", "65536", "-O", "^has_journal"],
        "32M",
        Some(&src),
    );
    verify(&img, &src, &[]);
}

#[test]
fn uninitialised_extents_and_external_xattr_block() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 20, 0);
    let img = mkfs(
        dir.path(),
        "l.img",
        "ext4",
        &["-b", "1024"],
        "8M",
        Some(&src),
    );
    let value = dir.path().join("xattr-value");
    fs::write(&value, bytes(7, 700)).unwrap();
    debugfs(
        &img,
        &[
            "fallocate /etc/hostname 4 9".to_string(),
            format!("ea_set -f {} /etc/passwd user.big", value.display()),
            format!("ea_set -f {} /medium.bin user.big", value.display()),
        ],
        true,
    );
    e2fsck_clean(&img);
    let (scan, map) = verify(&img, &src, &[]);
    let hostname = scan.by_path("/etc/hostname").unwrap();
    assert!(
        hostname.runs.iter().any(|r| !r.initialized),
        "{:?}",
        hostname.runs
    );
    let passwd = scan.by_path("/etc/passwd").unwrap();
    let xattr = passwd.xattr_block.expect("external xattr block");
    assert_eq!(map.owner(xattr), Some(Owner::Xattr));
    check_against_debugfs_dump(
        &Filesystem::open(fs::File::open(&img).unwrap()).unwrap(),
        &scan,
        &img,
        &["/etc/hostname", "/etc/passwd", "/medium.bin"],
    );
}

#[test]
fn image_inside_a_larger_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 20, 0);
    let img = mkfs(
        dir.path(),
        "m.img",
        "ext4",
        &["-b", "1024"],
        "4M",
        Some(&src),
    );
    let image = fs::read(&img).unwrap();
    let mut container = vec![0xAAu8; 4096];
    container.extend_from_slice(&image);
    container.extend_from_slice(&[0x55; 1000]);
    let inner = Filesystem::open_at(&container[..], 4096, image.len() as u64).unwrap();
    let whole = Filesystem::open(&image[..]).unwrap();
    let (a, b) = (inner.scan().unwrap(), whole.scan().unwrap());
    assert_eq!(a.files.len(), b.files.len());
    let medium = a.by_path("/medium.bin").unwrap();
    assert_eq!(
        read_all(&inner, medium),
        fs::read(src.join("medium.bin")).unwrap()
    );
    assert_eq!(
        inner.block_map(&a).unwrap().runs,
        whole.block_map(&b).unwrap().runs
    );
    assert!(Filesystem::open_at(&container[..], 4096, image.len() as u64 + 2000).is_err());
}

#[test]
fn not_an_ext_filesystem() {
    let zeros = vec![0u8; 64 * 1024];
    assert!(matches!(
        Filesystem::open(&zeros[..]),
        Err(ext4::Error::NotExt { .. })
    ));
    let tiny = [0u8; 100];
    assert!(matches!(
        Filesystem::open(&tiny[..]),
        Err(ext4::Error::NotExt { .. })
    ));
}

#[test]
fn files_listed_with_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 5, 0);
    let img = mkfs(
        dir.path(),
        "n.img",
        "ext4",
        &["-b", "4096"],
        "8M",
        Some(&src),
    );
    let fs = Filesystem::open(fs::File::open(&img).unwrap()).unwrap();
    let scan = fs.scan().unwrap();
    assert_eq!(scan.file(2).unwrap().paths, ["/"]);
    assert_eq!(scan.by_path("/deep").unwrap().kind, FileKind::Directory);
    let report = fs.report().unwrap();
    assert_eq!(report.summary.block_size, 4096);
    assert!(report
        .summary
        .features
        .contains(&"metadata_csum".to_string()));
}

fn fs_features(img: &Path) -> Vec<String> {
    let fs = Filesystem::open(fs::File::open(img).unwrap()).unwrap();
    fs.superblock().features.names()
}

#[test]
fn quota_and_orphan_file_system_inodes() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 20, 0);
    let img = mkfs(
        dir.path(),
        "o.img",
        "ext4",
        &["-b", "4096", "-O", "quota,project,orphan_file"],
        "16M",
        Some(&src),
    );
    let (scan, map) = verify(&img, &src, &[]);
    let quota: Vec<u32> = scan
        .files
        .iter()
        .filter(|f| f.role == Role::Quota)
        .map(|f| f.ino)
        .collect();
    assert_eq!(
        quota.len(),
        3,
        "user, group and project quota inodes: {quota:?}"
    );
    let orphan = scan
        .files
        .iter()
        .find(|f| f.role == Role::OrphanFile)
        .expect("orphan file");
    assert!(orphan.paths.is_empty());
    let owner = map.owner(orphan.runs[0].physical).unwrap();
    assert_eq!(
        owner,
        Owner::SystemFile {
            ino: orphan.ino,
            logical: 0
        }
    );
}

/// mke2fs never continues an inline directory in `system.data` (it converts to blocks instead;
/// the kernel does continue it), so this grows `/etc`'s empty `system.data` value by hand into
/// one more entry, `zz`, for `/etc/passwd`'s inode.
#[test]
fn inline_directory_continued_in_system_data() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree(dir.path(), 0, 0);
    let img = mkfs(
        dir.path(),
        "p.img",
        "ext4",
        &["-O", "inline_data", "-I", "256", "-b", "1024"],
        "4M",
        Some(&src),
    );
    let mut image = fs::read(&img).unwrap();
    let (etc, passwd, at) = {
        let fs = Filesystem::open(&image[..]).unwrap();
        let scan = fs.scan().unwrap();
        let etc = scan.by_path("/etc").unwrap();
        assert_eq!(etc.storage, Storage::Inline);
        assert_eq!(etc.size, 60);
        let sb = fs.superblock();
        let index = u64::from((etc.ino - 1) % sb.inodes_per_group);
        let group = ((etc.ino - 1) / sb.inodes_per_group) as usize;
        let table = fs.groups()[group].inode_table.start * u64::from(sb.block_size);
        let at = (table + index * u64::from(sb.inode_size)) as usize;
        (etc.ino, scan.by_path("/etc/passwd").unwrap().ino, at)
    };
    let inode = &mut image[at..at + 256];
    let ibody = 128 + usize::from(u16::from_le_bytes([inode[0x80], inode[0x81]]));
    assert_eq!(
        inode[ibody..ibody + 4],
        0xEA02_0000u32.to_le_bytes(),
        "in-inode xattrs"
    );
    let entry = ibody + 4;
    assert_eq!(
        (inode[entry], inode[entry + 1]),
        (4, 7),
        "system.data first"
    );
    assert_eq!(&inode[entry + 16..entry + 20], b"data");
    // Value: one 12-byte entry at the end of the inode.
    let value_offs = 256 - 12 - entry;
    inode[entry + 2..entry + 4].copy_from_slice(&(value_offs as u16).to_le_bytes());
    inode[entry + 8..entry + 12].copy_from_slice(&12u32.to_le_bytes());
    let dirent = &mut inode[256 - 12..];
    dirent[0..4].copy_from_slice(&passwd.to_le_bytes());
    dirent[4..6].copy_from_slice(&12u16.to_le_bytes());
    dirent[6] = 2;
    dirent[7] = 1;
    dirent[8..10].copy_from_slice(b"zz");
    inode[4..8].copy_from_slice(&72u32.to_le_bytes()); // i_size = 60 + 12

    let fs = Filesystem::open(&image[..]).unwrap();
    let scan = fs.scan().unwrap();
    assert_eq!(scan.file(etc).unwrap().size, 72);
    let paths = &scan.file(passwd).unwrap().paths;
    assert_eq!(paths, &["/etc/passwd", "/etc/passwd-hardlink", "/etc/zz"]);
    fs.block_map(&scan).unwrap();
}
