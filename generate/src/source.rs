//! Stage 2, source data: every payload of the source archive and the decompressed content of
//! every compressed payload the device can decompress in this profile, each an item with the
//! recipe that makes it from the source file ([`Derivation`]), and the block index over all of
//! them that the planner matches target bytes against.

use std::collections::HashMap;
use std::path::Path;

use delta::{Item, Profile};
use memmap2::Mmap;

use crate::blocks::{BlockIndex, Region};
use crate::content::{self, Kind};
use crate::inputs::{map_file, Inputs};
use crate::{Error, Options};

/// How a source item is made from the source file.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Derivation {
    /// Bytes `[offset, offset + len)` of the source file.
    Slice { offset: u64 },
    /// Decompression of another source item.
    Decompress { kind: Kind, from: usize },
}

/// Where a source item's bytes are.
enum Where {
    InSource { start: usize, len: usize },
    Content(usize),
}

/// The source items with their decompressed contents, which this owns (mapped files in the
/// working folder); [`SourceContents::sources`] lends them out.
pub(crate) struct SourceContents {
    found: Vec<(String, Item, Derivation, Where)>,
    maps: Vec<Mmap>,
}

/// Decompresses the source's payloads into the working folder (a cache keyed by payload
/// hash), in archive order: each payload, then its content.
pub(crate) fn decompress(
    inputs: &Inputs,
    source: &Path,
    options: &Options,
) -> Result<SourceContents, Error> {
    let mut found = Vec::new();
    let mut maps = Vec::new();
    for m in &inputs.source_swu.archive.members {
        if m.data_len() == 0 {
            continue;
        }
        let payload = found.len();
        let sha = m.sha256.expect("Swu::open hashes members");
        found.push((
            m.name.clone(),
            Item::sha256(m.data_len(), sha),
            Derivation::Slice {
                offset: m.data_offset(),
            },
            Where::InSource {
                start: m.data_offset() as usize,
                len: m.data_len() as usize,
            },
        ));
        let payload_bytes = &inputs.source_map[m.data_offset() as usize..][..m.data_len() as usize];
        if let Some((kind, c)) = member_content(source, m, payload_bytes, "source", options)? {
            maps.push(map_file(&c.path)?.expect("contents are never empty"));
            found.push((
                m.name.clone(),
                Item::sha256(c.len, c.sha256),
                Derivation::Decompress {
                    kind,
                    from: payload,
                },
                Where::Content(maps.len() - 1),
            ));
        }
    }
    Ok(SourceContents { found, maps })
}

/// One source item: a payload or a decompressed content.
pub(crate) struct SourceData<'a> {
    /// The source member it belongs to.
    pub member: String,
    pub item: Item,
    pub how: Derivation,
    /// The bytes: a range of the mapped source file, or a mapped content file.
    pub bytes: &'a [u8],
}

/// All source items, indexed for the planner.
pub(crate) struct Sources<'a> {
    pub data: Vec<SourceData<'a>>,
    /// Blocks of every item, by hash.
    pub index: BlockIndex<'a>,
    /// Each item's number (the first, when two hold the same bytes).
    pub by_item: HashMap<Item, usize>,
}

impl SourceContents {
    /// The items with their bytes (`source_map` is the mapped source file), indexed.
    pub(crate) fn sources<'a>(&'a self, source_map: &'a [u8]) -> Sources<'a> {
        let data: Vec<SourceData> = self
            .found
            .iter()
            .map(|(member, item, how, at)| SourceData {
                member: member.clone(),
                item: *item,
                how: *how,
                bytes: match *at {
                    Where::InSource { start, len } => &source_map[start..start + len],
                    Where::Content(k) => &self.maps[k],
                },
            })
            .collect();
        let index = BlockIndex::new(
            data.iter()
                .enumerate()
                .map(|(id, s)| Region { id, bytes: s.bytes })
                .collect(),
        );
        let by_item = data
            .iter()
            .enumerate()
            .map(|(i, s)| (s.item, i))
            .rev()
            .collect();
        Sources {
            data,
            index,
            by_item,
        }
    }
}

impl<'a> Sources<'a> {
    pub(crate) fn bytes(&self, i: usize) -> &'a [u8] {
        self.data[i].bytes
    }

    /// The source content a target member's content most likely evolved from: the content
    /// of the source member with the same name apart from a `.gz`/`.zst` suffix, else the
    /// largest one.
    pub(crate) fn paired_content(&self, name: &str) -> Option<(usize, &'a [u8])> {
        let stem = |n: &str| -> String {
            n.strip_suffix(".gz")
                .or_else(|| n.strip_suffix(".zst"))
                .or_else(|| n.strip_suffix(".zstd"))
                .unwrap_or(n)
                .to_string()
        };
        let contents = self
            .data
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.how, Derivation::Decompress { .. }));
        let by_name = contents
            .clone()
            .find(|(_, s)| stem(&s.member) == stem(name));
        let chosen =
            by_name.or_else(|| contents.max_by_key(|(i, s)| (s.item.length(), usize::MAX - i)));
        chosen.map(|(i, _)| (i, self.bytes(i)))
    }
}

/// The content of member `m` of the SWU at `archive` (its bytes `payload`), decompressed into
/// the working folder, when it is compressed in a way the device can decompress in this
/// profile (gzip always, zstd in the zstd profile). `side` names the archive in errors.
pub(crate) fn member_content(
    archive: &Path,
    m: &swu::cpio::Entry,
    payload: &[u8],
    side: &'static str,
    options: &Options,
) -> Result<Option<(Kind, content::Content)>, Error> {
    let kind = match content::sniff(payload) {
        Some(Kind::Zstd) if options.profile == Profile::Gzip => return Ok(None),
        Some(k) => k,
        None => return Ok(None),
    };
    let sha = m.sha256.expect("Swu::open hashes members");
    let content = content::materialize(
        archive,
        m.data_offset(),
        m.data_len(),
        &sha,
        kind,
        &options.work_dir,
        content::ContentLimit::for_work_dir(&options.work_dir, options.max_content),
    )
    .map_err(|e| Error::Decompress {
        member: m.name.clone(),
        side,
        work: options.work_dir.clone(),
        source: e,
    })?;
    Ok(content.map(|c| (kind, c)))
}
