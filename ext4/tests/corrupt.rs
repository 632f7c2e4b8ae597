//! Hostile images: targeted corruptions of a good image give the specific error (never a
//! panic), and random byte flips never panic or hang.

mod common;

use common::*;
use ext4::{Error, Filesystem};
use proptest::prelude::*;
use std::io::Read;
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

/// A small 1 KiB-block ext4 image with a depth-2 extent tree, an htree-free tree, and the source.
fn base_image() -> &'static Vec<u8> {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        basic_tree(&src, 20, 0);
        scattered_file(&src.join("scattered.bin"), 64 << 20, 1024, 50, 400);
        let img = mkfs(
            dir.path(),
            "base.img",
            "ext4",
            &["-b", "1024"],
            "8M",
            Some(&src),
        );
        std::fs::read(img).unwrap()
    })
}

struct Located {
    block_size: u64,
    blocks_count: u64,
}

fn locate(image: &[u8]) -> Located {
    let fs = Filesystem::open(image).unwrap();
    let sb = fs.superblock();
    Located {
        block_size: u64::from(sb.block_size),
        blocks_count: sb.blocks_count,
    }
}

/// Byte offset of inode `ino` in the image.
fn inode_offset(image: &[u8], ino: u32) -> usize {
    let fs = Filesystem::open(image).unwrap();
    let sb = fs.superblock();
    let group = ((ino - 1) / sb.inodes_per_group) as usize;
    let index = u64::from((ino - 1) % sb.inodes_per_group);
    let table = fs.groups()[group].inode_table.start;
    (table * u64::from(sb.block_size) + index * u64::from(sb.inode_size)) as usize
}

fn ino_of(image: &[u8], path: &str) -> u32 {
    let fs = Filesystem::open(image).unwrap();
    fs.scan().unwrap().by_path(path).unwrap().ino
}

fn put_u16(image: &mut [u8], at: usize, v: u16) {
    image[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(image: &mut [u8], at: usize, v: u32) {
    image[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Open + scan + block map.
fn map(image: &[u8]) -> Result<(), Error> {
    let fs = Filesystem::open(image)?;
    let scan = fs.scan()?;
    fs.block_map(&scan)?;
    Ok(())
}

const I_BLOCK: usize = 0x28;

#[test]
fn bad_magic_is_not_ext() {
    let mut image = base_image().clone();
    put_u16(&mut image, 1024 + 0x38, 0x1234);
    let err = map(&image).unwrap_err();
    assert!(matches!(err, Error::NotExt { .. }), "{err}");
    assert!(
        err.to_string().contains("0x1234") && err.to_string().contains("1080"),
        "{err}"
    );
}

#[test]
fn extent_header_magic() {
    let mut image = base_image().clone();
    let ino = ino_of(&image, "/medium.bin");
    let at = inode_offset(&image, ino) + I_BLOCK;
    put_u16(&mut image, at, 0xBEEF);
    let err = map(&image).unwrap_err();
    assert!(
        matches!(err, Error::BadExtentTree { ino: i, .. } if i == ino),
        "{err}"
    );
    assert!(err.to_string().contains("magic 0xbeef"), "{err}");
}

#[test]
fn extent_tree_too_deep() {
    let mut image = base_image().clone();
    let ino = ino_of(&image, "/scattered.bin");
    let at = inode_offset(&image, ino) + I_BLOCK + 6;
    put_u16(&mut image, at, 6);
    let err = map(&image).unwrap_err();
    assert!(
        err.to_string().contains("depth 6 exceeds the maximum 5"),
        "{err}"
    );
}

#[test]
fn extent_entries_exceed_max() {
    let mut image = base_image().clone();
    let ino = ino_of(&image, "/etc/passwd");
    let at = inode_offset(&image, ino) + I_BLOCK + 2;
    put_u16(&mut image, at, 9);
    let err = map(&image).unwrap_err();
    assert!(matches!(err, Error::BadExtentTree { .. }), "{err}");
}

#[test]
fn extent_past_the_end() {
    let mut image = base_image().clone();
    let loc = locate(&image);
    let ino = ino_of(&image, "/etc/passwd");
    // First leaf extent of a depth-0 tree: ee_start_lo at i_block + 12 + 8.
    let at = inode_offset(&image, ino) + I_BLOCK + 12 + 8;
    put_u32(&mut image, at, (loc.blocks_count + 100) as u32);
    let err = map(&image).unwrap_err();
    assert!(
        matches!(err, Error::BlockOutOfRange { ino: i, block, .. } if i == ino && block == loc.blocks_count + 100),
        "{err}"
    );
}

#[test]
fn extent_overlapping_the_inode_table() {
    let mut image = base_image().clone();
    let table = Filesystem::open(&image[..]).unwrap().groups()[0]
        .inode_table
        .start;
    let ino = ino_of(&image, "/etc/passwd");
    let at = inode_offset(&image, ino) + I_BLOCK + 12 + 8;
    put_u32(&mut image, at, table as u32);
    let err = map(&image).unwrap_err();
    assert!(
        matches!(err, Error::OverlappingOwners { block, .. } if block == table),
        "{err}"
    );
    assert!(err.to_string().contains("inode table"), "{err}");
}

#[test]
fn extent_tree_loop() {
    let mut image = base_image().clone();
    let loc = locate(&image);
    let ino = ino_of(&image, "/scattered.bin");
    let root = inode_offset(&image, ino) + I_BLOCK;
    assert!(
        u16::from_le_bytes([image[root + 6], image[root + 7]]) >= 2,
        "want a depth-2 tree"
    );
    // The first index of the root points at a depth-1 node; make that node's first index point
    // back at the node itself.
    let node = u32::from_le_bytes(image[root + 12 + 4..root + 12 + 8].try_into().unwrap());
    let node_at = (u64::from(node) * loc.block_size) as usize;
    put_u32(&mut image, node_at + 12 + 4, node);
    let err = map(&image).unwrap_err();
    assert!(matches!(err, Error::BadExtentTree { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("{node} is referenced twice")),
        "{err}"
    );
}

/// Offset of the entry named `name` in the first block of directory `dir`.
fn dirent_offset(image: &[u8], dir: &str, name: &str) -> usize {
    let fs = Filesystem::open(image).unwrap();
    let scan = fs.scan().unwrap();
    let d = scan.by_path(dir).unwrap();
    let bs = u64::from(fs.superblock().block_size);
    let start = (d.runs[0].physical * bs) as usize;
    let mut off = 0;
    while off < bs as usize {
        let rec_len = u16::from_le_bytes([image[start + off + 4], image[start + off + 5]]) as usize;
        let name_len = image[start + off + 6] as usize;
        if &image[start + off + 8..start + off + 8 + name_len] == name.as_bytes() {
            return start + off;
        }
        off += rec_len;
    }
    panic!("{name} not found in {dir}");
}

#[test]
fn directory_entry_with_absurd_inode() {
    let mut image = base_image().clone();
    let at = dirent_offset(&image, "/etc", "passwd");
    put_u32(&mut image, at, 0xFFFF_FFF0);
    let err = map(&image).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadEntryInode {
                ino: 0xFFFF_FFF0,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("/etc/passwd"), "{err}");
}

#[test]
fn directory_entry_with_free_inode() {
    let mut image = base_image().clone();
    let at = dirent_offset(&image, "/etc", "passwd");
    let fs = Filesystem::open(&image[..]).unwrap();
    let free = fs.superblock().inodes_count - 1;
    put_u32(&mut image, at, free);
    let err = map(&image).unwrap_err();
    assert!(matches!(err, Error::BadEntryInode { .. }), "{err}");
    assert!(err.to_string().contains("is not in use"), "{err}");
}

#[test]
fn directory_cycle() {
    let mut image = base_image().clone();
    let at = dirent_offset(&image, "/etc", "passwd");
    put_u32(&mut image, at, 2);
    let err = map(&image).unwrap_err();
    assert!(matches!(err, Error::DirectoryCycle { ino: 2, .. }), "{err}");
}

#[test]
fn directory_entry_bad_rec_len() {
    let mut image = base_image().clone();
    let at = dirent_offset(&image, "/etc", "passwd");
    put_u16(&mut image, at + 4, 7);
    let err = map(&image).unwrap_err();
    assert!(matches!(err, Error::BadDirEntry { .. }), "{err}");
}

#[test]
fn truncated_image() {
    let image = base_image();
    let err = map(&image[..image.len() / 2]).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
}

#[test]
fn group_descriptor_past_the_end() {
    let mut image = base_image().clone();
    // 1 KiB blocks: descriptors start at block 2; bg_inode_table_lo at offset 8.
    put_u32(&mut image, 2048 + 8, 0x00FF_FFFF);
    let err = map(&image).unwrap_err();
    assert!(matches!(err, Error::BadGroup { group: 0, .. }), "{err}");
}

#[test]
fn absurd_superblock_counts() {
    let mut image = base_image().clone();
    put_u16(&mut image, 1024 + 0x58, 3); // s_inode_size
    assert!(matches!(map(&image), Err(Error::BadSuperblock { .. })));
    let mut image = base_image().clone();
    put_u32(&mut image, 1024 + 0x4, u32::MAX); // s_blocks_count_lo
    assert!(matches!(map(&image), Err(Error::Truncated { .. })));
    let mut image = base_image().clone();
    put_u32(&mut image, 1024 + 0x18, 20); // s_log_block_size
    assert!(matches!(map(&image), Err(Error::BadSuperblock { .. })));
    let mut image = base_image().clone();
    put_u32(&mut image, 1024 + 0x60, 0x8000_0000 | 0x2); // unknown incompat bit
    assert!(matches!(map(&image), Err(Error::Unsupported { .. })));
}

/// Opens, maps and reads everything (each file capped at 4 MiB), as the fuzz target does.
fn exercise(image: &[u8]) {
    let Ok(fs) = Filesystem::open(image) else {
        return;
    };
    let Ok(scan) = fs.scan() else { return };
    let _ = fs.block_map(&scan);
    let mut sink = Vec::new();
    for file in &scan.files {
        sink.clear();
        let _ = fs.read_file(file).take(4 << 20).read_to_end(&mut sink);
    }
    if let Ok(report) = fs.report() {
        let _ = report.write_text(&mut std::io::sink());
    }
}

/// Runs `exercise` on another thread and fails if it takes longer than `limit`.
fn exercise_with_timeout(image: Vec<u8>, limit: Duration) {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        exercise(&image);
        let _ = tx.send(());
    });
    match rx.recv_timeout(limit) {
        Ok(()) => worker.join().expect("worker"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(worker.join().expect_err("worker panicked"))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("reader hung for more than {limit:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random flips, mostly in the metadata-dense first 200 KiB, never panic or hang.
    #[test]
    fn random_byte_flips_never_panic_or_hang(
        flips in prop::collection::vec((0usize..200 * 1024, any::<u8>(), any::<bool>()), 1..40),
        far in prop::collection::vec((0usize..8 << 20, any::<u8>()), 0..10),
    ) {
        let mut image = base_image().clone();
        for (offset, value, xor) in flips {
            if let Some(b) = image.get_mut(offset) {
                *b = if xor { *b ^ value.max(1) } else { value };
            }
        }
        for (offset, value) in far {
            if let Some(b) = image.get_mut(offset) {
                *b ^= value.max(1);
            }
        }
        exercise_with_timeout(image, Duration::from_secs(20));
    }
}

#[test]
fn flipping_every_byte_of_the_metadata_head_never_panics() {
    // Deterministic sweep: each byte of the superblock and group descriptors set to 0xFF.
    let base = base_image();
    for offset in 1024..3072 {
        let mut image = base.clone();
        image[offset] = 0xFF;
        exercise(&image);
    }
}

#[test]
fn bitmap_disagreements_are_reported_not_hidden() {
    let mut image = base_image().clone();
    let fs = Filesystem::open(&image[..]).unwrap();
    let scan = fs.scan().unwrap();
    let map = fs.block_map(&scan).unwrap();
    let sb = fs.superblock();
    let bitmap = (fs.groups()[0].block_bitmap * u64::from(sb.block_size)) as usize;
    let free = map
        .runs
        .iter()
        .find(|r| r.owner == ext4::Owner::Free)
        .unwrap()
        .start;
    let used = scan.by_path("/etc/passwd").unwrap().runs[0].physical;
    let first = u64::from(sb.first_data_block);
    assert!(free < u64::from(sb.blocks_per_group) && used < u64::from(sb.blocks_per_group));
    let (f, u) = ((free - first) as usize, (used - first) as usize);
    image[bitmap + f / 8] |= 1 << (f % 8);
    image[bitmap + u / 8] &= !(1 << (u % 8));
    let fs = Filesystem::open(&image[..]).unwrap();
    let map = fs.block_map(&fs.scan().unwrap()).unwrap();
    assert_eq!(map.owner(free), Some(ext4::Owner::Unaccounted));
    assert_eq!(map.owned_but_marked_free, 1);
    assert!(matches!(
        map.owner(used),
        Some(ext4::Owner::FileData { .. })
    ));
}
