//! Planning the target archive member by member: cpio framing goes to the plain new-bytes
//! stream; a payload identical to a source payload is that source item; a compressed payload
//! that the device can re-create from its content ([`content::reproduce`]) is planned as its
//! content, against the paired source content (files first, then blocks); any other payload
//! by block matching.

use delta::{Item, Profile, Recipe};
use memmap2::Mmap;

use std::sync::Arc;

use super::{push_part, Part, Planner, Recheck};
use crate::content::{self, Check, Recreate};
use crate::inputs::{map_file, Inputs};
use crate::reference::ReferenceFinder;
use crate::source::member_content;
use crate::{inner_gz, inner_patch, Error, PartKind};

/// A chain to finish once the streams have their items: the result and its parts.
pub(crate) type Pending = (Item, Vec<Part>);

/// Plans every member and the archive's tail; returns the chains to finish, the whole
/// target's last.
pub(super) fn plan_members(
    planner: &mut Planner,
    inputs: &Inputs,
    target: &std::path::Path,
    check: Check,
) -> Result<Vec<Pending>, Error> {
    let target_map = &inputs.target_map[..];
    let mut pending = Vec::new();
    let mut top: Vec<Part> = Vec::new();
    let mut cursor = 0u64;
    for m in &inputs.target_swu.archive.members {
        let progress = &planner.options.progress;
        progress.report("planning", m.header_offset, inputs.target_item.length());
        let framing = &target_map[cursor as usize..m.data_offset() as usize];
        planner.member = m.name.clone();
        let part = planner.push_new_noted(framing, PartKind::Framing)?;
        push_part(&mut top, part);
        cursor = m.data_offset() + m.data_len();
        if m.data_len() == 0 {
            continue;
        }
        let payload = &target_map[m.data_offset() as usize..cursor as usize];
        plan_payload(planner, target, m, payload, check, &mut top, &mut pending)?;
    }
    let tail = &target_map[cursor as usize..];
    planner.member = swu::cpio::TRAILER_NAME.to_string();
    let part = planner.push_new_noted(tail, PartKind::Framing)?;
    push_part(&mut top, part);
    pending.push((inputs.target_item, top));
    Ok(pending)
}

/// Decompresses the compressed payloads of the target that planning will open (those no
/// source payload equals) into the working folder, where [`member_content`] finds them
/// again; run beside the source's decompression. A payload that fails here is left for
/// planning, which meets the same failure and reports it.
pub(crate) fn prefetch_contents(
    inputs: &Inputs,
    target: &std::path::Path,
    options: &crate::Options,
) {
    let source_payloads: std::collections::HashSet<(u64, [u8; 32])> = inputs
        .source_swu
        .archive
        .members
        .iter()
        .filter_map(|m| Some((m.data_len(), m.sha256?)))
        .collect();
    for m in &inputs.target_swu.archive.members {
        let Some(sha) = m.sha256 else { continue };
        if m.data_len() == 0 || source_payloads.contains(&(m.data_len(), sha)) {
            continue;
        }
        let payload = &inputs.target_map[m.data_offset() as usize..][..m.data_len() as usize];
        let _ = member_content(target, m, payload, "target", options);
    }
}

/// Plans one payload into the archive's chain `top`.
fn plan_payload(
    planner: &mut Planner,
    target: &std::path::Path,
    m: &swu::cpio::Entry,
    payload: &[u8],
    check: Check,
    top: &mut Vec<Part>,
    pending: &mut Vec<Pending>,
) -> Result<(), Error> {
    let sha = m.sha256.expect("Swu::open hashes members");
    let payload_item = Item::sha256(m.data_len(), sha);
    if let Some(&i) = planner.sources.by_item.get(&payload_item) {
        planner.stats.identical_payloads.push(m.name.clone());
        planner.stats.reused_bytes += m.data_len();
        push_part(top, Part::Item(planner.use_source(i)?));
        return Ok(());
    }
    let Some((how, content_item, map)) = recreatable(target, m, payload, planner.options, check)?
    else {
        let sources = planner.sources;
        return planner.plan_bytes(payload, 0, &sources.index, None, top);
    };
    if let Check::Prefix(_) = check {
        let recheck = Recheck::start(
            &m.name,
            how,
            Arc::clone(&map),
            target,
            m.data_offset(),
            payload_item,
        );
        planner.rechecks.push(recheck);
    }
    match planner.sources.by_item.get(&content_item) {
        Some(&i) => {
            planner.stats.reused_bytes += content_item.length();
            planner.use_source(i)?;
        }
        None => plan_content(planner, m, &map, content_item, pending)?,
    }
    let recipe = match how {
        Recreate::Zlib(p) => Recipe::ZlibCompression {
            container: p.container,
            level: p.level,
            uncompressed: content_item,
        },
        Recreate::Zstd(p) => Recipe::ZstdCompression {
            params: p,
            uncompressed: content_item,
        },
    };
    planner.builder.add_recipe(payload_item, recipe)?;
    planner
        .stats
        .recreated
        .push((m.name.clone(), describe(&how)));
    push_part(top, Part::Item(payload_item));
    Ok(())
}

/// Plans the content `map` of a re-created payload (member `m`): against the paired source
/// content, file by file where both are filesystems, then by blocks.
fn plan_content(
    planner: &mut Planner,
    m: &swu::cpio::Entry,
    map: &[u8],
    content_item: Item,
    pending: &mut Vec<Pending>,
) -> Result<(), Error> {
    let paired = planner.sources.paired_content(&m.name);
    let finder = paired.map(|(i, bytes)| {
        let (finder, note) = ReferenceFinder::new(map, bytes);
        if let Some(why) = note {
            planner.stats.notes.push(format!(
                "{}: content not opened as a filesystem ({why}); changed bytes are compressed against the same offsets of the old content",
                m.name
            ));
        }
        (finder, i)
    });
    let (claimed, gz_pending) = match &finder {
        Some((f, i)) if f.is_file_aware() => plan_files(planner, &m.name, map, f, *i)?,
        _ => Default::default(),
    };
    pending.extend(gz_pending);
    planner
        .options
        .progress
        .report("planning: matching blocks", 0, 0);
    let mut parts = Vec::new();
    let sources = planner.sources;
    planner.plan_around(
        map,
        &claimed,
        &sources.index,
        finder.as_ref().map(|(f, i)| (f, *i)),
        &mut parts,
    )?;
    pending.push((content_item, parts));
    Ok(())
}

/// Plans the changed gzip files and executables of a filesystem content (`map`, member
/// `member`) against its paired source content `source`; returns the target ranges they
/// claim (sorted) and the gzip contents still to be made from the streams.
#[allow(clippy::type_complexity)]
fn plan_files(
    planner: &mut Planner,
    member: &str,
    map: &[u8],
    finder: &ReferenceFinder,
    source: usize,
) -> Result<(Vec<(u64, u64, Item)>, Vec<Pending>), Error> {
    let options = planner.options;
    let old = planner.source_bytes(source);
    options
        .progress
        .report("planning: changed gzip files", 0, 0);
    // GNU gzip's deflate needs diffgen's applier.
    let gnu_gzip = options.profile != Profile::Gzip;
    let files = inner_gz::find(map, old, finder, gnu_gzip);
    let (mut claimed, pending) = planner.plan_inner_gz(source, files)?;
    let ranges: Vec<(u64, u64)> = claimed.iter().map(|c| (c.0, c.1)).collect();
    // Executable patches (`exe_bspatch`) need diffgen's applier.
    let executables = options.profile != Profile::Gzip;
    let (patches, choices) = inner_patch::find(
        map,
        old,
        finder,
        inner_patch::Encodings {
            zstd_level: options.new_data_level,
            executables,
        },
        &ranges,
        options.memory_limit,
        &options.progress,
    );
    planner
        .stats
        .executables
        .extend(choices.iter().map(|c| format!("{member}: {c}")));
    claimed.extend(planner.plan_inner_patches(source, patches)?);
    claimed.sort_unstable_by_key(|c| c.0);
    Ok((claimed, pending))
}

/// If `payload` is compressed and can be re-created from its content on the device (in this
/// profile, as far as `check` compares), the parameters, the content's item and the mapped
/// content.
fn recreatable(
    target: &std::path::Path,
    m: &swu::cpio::Entry,
    payload: &[u8],
    options: &crate::Options,
    check: Check,
) -> Result<Option<(Recreate, Item, Arc<Mmap>)>, Error> {
    let Some((kind, c)) = member_content(target, m, payload, "target", options)? else {
        return Ok(None);
    };
    let map = map_file(&c.path)?.expect("contents are never empty");
    Ok(content::reproduce(kind, &map, payload, check)
        .map(|how| (how, Item::sha256(c.len, c.sha256), Arc::new(map))))
}

/// How a payload is re-created, for the log.
fn describe(how: &Recreate) -> String {
    match how {
        Recreate::Zlib(p) => format!("zlib level {}", p.level),
        Recreate::Zstd(p) => format!(
            "zstd level {} (zstd {})",
            p.level,
            codec::zstd::version_string(p.version)
        ),
    }
}
