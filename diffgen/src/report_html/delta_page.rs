//! The section of the page `diffgen inspect <delta> --html FILE` writes for any diffgen delta,
//! from the delta alone. A delta holds items (lengths and hashes) and recipes, not paths: its
//! bytes are grouped by the blob they are in and the recipe that consumes each piece (zstd
//! frames with an old-bytes basis, frames without one, bsdiff patches, the deflated
//! remainder), and a stream's bytes that feed `zlib_compression` or `gnu_gzip_compression`
//! (gzip files re-created from their text) are split out in proportion to their length.
//! What this cannot show is listed on the page (the `caveats`).

use std::collections::{BTreeSet, HashMap};

use delta::archive::Archive;
use delta::{Item, Recipe, RecipeType};

use super::page::{count, grouped, human, percent, Encoding, Fact, Leaf, Page};

/// A frame whose basis is at most this long is new data: diffgen gives the gzip profile's
/// new-data stream a token basis of this size.
const TOKEN_BASIS: u64 = generate::encode::TOKEN_BASIS as u64;

/// Group names of the treemap.
const FRAMES_OLD: &str = "zstd frames against old bytes";
const NEW_DATA: &str = "new data";
const PATCHES: &str = "patches of old versions";
const OTHER: &str = "other blobs";

/// The recipes that take each item as an ingredient: (their result, the recipe).
type Users<'a> = HashMap<Item, Vec<(Item, &'a Recipe)>>;

/// What consumes a piece of a blob.
enum Use {
    /// Decompressed by zstd into `out` (after the x86 filter is undone when `x86`).
    Frame {
        out: Item,
        basis: Option<Item>,
        x86: bool,
    },
    /// A patch making `makes` from `old`: BSDIFF40, or (`exe`) the zstd frame of an
    /// executable patch.
    Patch {
        makes: Item,
        old: Item,
        exe: bool,
    },
    Other(Option<RecipeType>),
}

pub fn page(archive: &Archive, file: &str, file_len: u64) -> Page {
    let mut users: Users = HashMap::new();
    for (result, recipe) in archive.recipes() {
        for ingredient in recipe.items() {
            users.entry(ingredient).or_default().push((*result, recipe));
        }
    }
    let mut leaves = Vec::new();
    let mut blob_bytes = 0;
    if let Some(blob) = archive.inline_assets {
        blob_bytes += blob.item.length();
        asset_leaves(blob.item, &users, &mut leaves);
    }
    if let Some(blob) = archive.remainder {
        blob_bytes += blob.item.length();
        remainder_leaves(archive, blob.item, &users, &mut leaves);
    }
    for (i, n) in archive.nested.iter().enumerate() {
        blob_bytes += n.item.length();
        leaves.push(Leaf {
            group: vec!["nested archives".into()],
            place: "nested archive".into(),
            name: format!("nested archive {} (not broken down)", i + 1),
            encoding: Encoding::Other,
            how: format!("{} recipes", n.archive.recipes().count()),
            changed: Some(n.archive.target.length()),
            delta: n.item.length(),
        });
    }
    let structure = file_len.saturating_sub(blob_bytes);
    let recipes = archive.recipes().count() as u64;
    leaves.push(Leaf {
        group: Vec::new(),
        place: "delta file".into(),
        name: "recipes, item hashes and headers".into(),
        encoding: Encoding::Structure,
        how: format!("{} recipes", grouped(recipes)),
        changed: None,
        delta: structure,
    });
    leaves.sort_by_key(|l| std::cmp::Reverse(l.delta));
    Page {
        title: file.to_string(),
        facts: facts(archive, file, file_len),
        insights: insights(archive, &leaves, file_len),
        total: file_len,
        leaves,
        changed_heading: "bytes it makes",
        caveats: caveats(),
    }
}

/// The pieces of the inline assets (slices of it, in offset order), each as its consumer
/// uses it.
fn asset_leaves(blob: Item, users: &Users, leaves: &mut Vec<Leaf>) {
    let mut pieces: BTreeSet<(u64, Item)> = BTreeSet::new();
    for (result, recipe) in users.get(&blob).into_iter().flatten() {
        match recipe {
            Recipe::Slice { offset, .. } => pieces.insert((*offset, *result)),
            _ => pieces.insert((0, blob)), // the whole blob is one piece
        };
    }
    let mut covered = 0;
    for (offset, piece) in pieces {
        covered += piece.length();
        let at = format!("at byte {} of the inline assets", grouped(offset));
        piece_leaves(piece, &at, "inline assets", users, leaves);
    }
    if covered < blob.length() {
        leaves.push(Leaf {
            group: vec![OTHER.into()],
            place: "inline assets".into(),
            name: "inline asset bytes no recipe slices".into(),
            encoding: Encoding::Other,
            how: "unused".into(),
            changed: None,
            delta: blob.length() - covered,
        });
    }
}

/// The deflated remainder: new data, split by what its uncompressed bytes feed.
fn remainder_leaves(archive: &Archive, blob: Item, users: &Users, leaves: &mut Vec<Leaf>) {
    let Some(out) = archive.remainder_uncompressed() else {
        leaves.push(other_leaf(blob, "remainder", "remainder", None));
        return;
    };
    let how = "deflated remainder (zlib_decompression)";
    stream_leaves(
        blob.length(),
        out,
        Encoding::New,
        (NEW_DATA, "remainder", "the remainder", how),
        users,
        leaves,
    );
}

/// The leaves of one piece of the inline assets, described as `at`.
fn piece_leaves(piece: Item, at: &str, place: &str, users: &Users, leaves: &mut Vec<Leaf>) {
    match use_of(piece, users) {
        Use::Frame { out, basis, x86 } => {
            let basis_len = basis.map_or(0, |b| b.length());
            let (encoding, group) = if x86 {
                (Encoding::X86, NEW_DATA)
            } else if basis_len > TOKEN_BASIS {
                (Encoding::ZstdOld, FRAMES_OLD)
            } else {
                (Encoding::New, NEW_DATA)
            };
            let how = match (basis_len, x86) {
                (0, false) => "zstd frame without basis".to_string(),
                (0, true) => "zstd frame, then bcj_x86_decode".to_string(),
                (n, _) => format!("zstd frame with a basis of {}", human(n)),
            };
            let name = format!("zstd frame {at}");
            stream_leaves(
                piece.length(),
                out,
                encoding,
                (group, place, &name, &how),
                users,
                leaves,
            );
        }
        Use::Patch { makes, old, exe } => leaves.push(Leaf {
            group: vec![PATCHES.into()],
            place: place.into(),
            name: format!(
                "{} {at}",
                if exe {
                    "executable patch"
                } else {
                    "bsdiff patch"
                }
            ),
            encoding: Encoding::Bsdiff,
            how: format!(
                "{} of an old item of {}",
                if exe {
                    "zstd frame, then exe_bspatch"
                } else {
                    "bspatch_decompression"
                },
                human(old.length())
            ),
            changed: Some(makes.length()),
            delta: piece.length(),
        }),
        Use::Other(kind) => leaves.push(other_leaf(piece, place, at, kind)),
    }
}

fn other_leaf(piece: Item, place: &str, at: &str, kind: Option<RecipeType>) -> Leaf {
    Leaf {
        group: vec![OTHER.into()],
        place: place.into(),
        name: format!("blob {at}"),
        encoding: Encoding::Other,
        how: kind.map_or_else(|| "not used by any recipe".into(), |k| k.name().to_string()),
        changed: None,
        delta: piece.length(),
    }
}

/// How the first recipe that takes `piece` uses it.
fn use_of(piece: Item, users: &Users) -> Use {
    let Some((result, recipe)) = users.get(&piece).and_then(|u| u.first()) else {
        return Use::Other(None);
    };
    if let (Recipe::ZstdDecompression { .. }, Some((makes, old))) =
        (&**recipe, exe_patch(*result, users))
    {
        return Use::Patch {
            makes,
            old,
            exe: true,
        };
    }
    match **recipe {
        Recipe::ZstdDecompression { basis, .. } => {
            let filtered = users
                .get(result)
                .into_iter()
                .flatten()
                .find_map(|(r, u)| matches!(u, Recipe::BcjX86Decode { .. }).then_some(*r));
            Use::Frame {
                out: filtered.unwrap_or(*result),
                basis,
                x86: filtered.is_some(),
            }
        }
        Recipe::BspatchDecompression { old, .. } => Use::Patch {
            makes: *result,
            old,
            exe: false,
        },
        ref other => Use::Other(Some(other.recipe_type())),
    }
}

/// If `patch` is the patch of an `exe_bspatch`, the item it makes and the old item.
fn exe_patch(patch: Item, users: &Users) -> Option<(Item, Item)> {
    users.get(&patch)?.iter().find_map(|(r, u)| match **u {
        Recipe::ExeBspatch { old, .. } => Some((*r, old)),
        _ => None,
    })
}

/// A stream of `compressed` delta bytes that decodes to `out`: its bytes that become gzip
/// files (slices of it, or all of it, compressed again by `zlib_compression` or
/// `gnu_gzip_compression`) as one leaf, the rest as another. `(group, place, name, how)`
/// describe it.
fn stream_leaves(
    compressed: u64,
    out: Item,
    encoding: Encoding,
    (group, place, name, how): (&str, &str, &str, &str),
    users: &Users,
    leaves: &mut Vec<Leaf>,
) {
    let (gzip_bytes, gzip_files) = gzip_texts(out, users);
    let len = out.length().max(1);
    let gzip_delta = (u128::from(compressed) * u128::from(gzip_bytes) / u128::from(len)) as u64;
    let mut leaf = |encoding, name: String, how: String, changed, delta| {
        leaves.push(Leaf {
            group: vec![group.to_string()],
            place: place.to_string(),
            name,
            encoding,
            how,
            changed: Some(changed),
            delta,
        });
    };
    if gzip_files > 0 {
        leaf(
            Encoding::Gzip,
            format!("{} gzip texts of the {name}", grouped(gzip_files)),
            format!("{how}; then zlib_compression or gnu_gzip_compression"),
            gzip_bytes,
            gzip_delta,
        );
    }
    if out.length() > gzip_bytes || gzip_files == 0 {
        leaf(
            encoding,
            name.to_string(),
            how.to_string(),
            out.length() - gzip_bytes,
            compressed - gzip_delta,
        );
    }
}

/// Bytes of `stream` that become gzip files again, and how many texts they are.
fn gzip_texts(stream: Item, users: &Users) -> (u64, u64) {
    let recompressed = |item: &Item| {
        users.get(item).into_iter().flatten().any(|(_, r)| {
            matches!(
                r,
                Recipe::ZlibCompression { .. } | Recipe::GnuGzipCompression { .. }
            )
        })
    };
    if recompressed(&stream) {
        return (stream.length(), 1);
    }
    let texts: BTreeSet<Item> = users
        .get(&stream)
        .into_iter()
        .flatten()
        .filter(|(result, r)| matches!(r, Recipe::Slice { .. }) && recompressed(result))
        .map(|(result, _)| *result)
        .collect();
    (texts.iter().map(Item::length).sum(), texts.len() as u64)
}

fn facts(archive: &Archive, file: &str, file_len: u64) -> Vec<Fact> {
    let profile = if archive.needs_diffgen_applier() {
        "zstd profile: uses diffgen's extensions, needs diffgen's applier"
    } else {
        "only recipes ADU's stock applier accepts (gzip profile)"
    };
    let item = |i: &Item| match i.hash() {
        Some(h) => format!(
            "{} bytes, {} {}",
            grouped(i.length()),
            h.algorithm_name(),
            h.hex()
        ),
        None => "empty".to_string(),
    };
    let mut by_type: HashMap<RecipeType, u64> = HashMap::new();
    for (_, r) in archive.recipes() {
        *by_type.entry(r.recipe_type()).or_default() += 1;
    }
    let types: Vec<String> = RecipeType::ALL
        .iter()
        .filter_map(|t| {
            by_type
                .get(t)
                .map(|n| format!("{} {}", grouped(*n), t.name()))
        })
        .collect();
    vec![
        Fact::bytes("source", archive.source.length(), item(&archive.source)),
        Fact::bytes("target", archive.target.length(), item(&archive.target)),
        Fact::bytes(
            "delta",
            file_len,
            format!(
                "{file} ({} bytes, {} of the target)",
                grouped(file_len),
                percent(file_len, archive.target.length())
            ),
        ),
        Fact::text("profile", profile),
        Fact::text(
            "verified",
            "not checked by inspect (diffgen apply checks the result against the target's hash)",
        ),
        Fact::text("generation time", "not recorded in a delta"),
        Fact::text("recipes", types.join(", ")),
    ]
}

/// Sentences on the groups' shares, largest first, and on the gzip files.
fn insights(archive: &Archive, leaves: &[Leaf], total: u64) -> Vec<String> {
    let mut shares: HashMap<&str, (u64, u64, u64)> = HashMap::new();
    for l in leaves {
        let key = l.group.first().map_or("structure", String::as_str);
        let s = shares.entry(key).or_default();
        s.0 += l.delta;
        s.1 += l.changed.unwrap_or(0);
        s.2 += 1;
    }
    let mut out: Vec<(u64, String)> = shares
        .into_iter()
        .map(|(group, (delta, made, n))| {
            let of = percent(delta, total);
            let text = match group {
                PATCHES => format!("{of} of this delta is {}, which rebuild items of {} in all from their old versions.", count(n, "patch", "patches"), human(made)),
                FRAMES_OLD => format!("{of} of this delta is zstd frames compressed against old bytes of the source; they make {} of the target's bytes.", human(made)),
                NEW_DATA => format!("{of} of this delta is new data compressed on its own (frames without an old-bytes basis, the remainder); it makes {}.", human(made)),
                "structure" => format!("{of} of this delta is its own structure: {} recipes with their item hashes.", grouped(archive.recipes().count() as u64)),
                _ => format!("{of} of this delta is in {group}."),
            };
            (delta, text)
        })
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut out: Vec<String> = out.into_iter().map(|(_, t)| t).collect();
    let recreated: Vec<u64> = archive
        .recipes()
        .filter(|(_, r)| {
            matches!(
                r,
                Recipe::ZlibCompression { .. } | Recipe::GnuGzipCompression { .. }
            )
        })
        .map(|(result, _)| result.length())
        .collect();
    if !recreated.is_empty() {
        out.push(format!(
            "{} ({}) re-created on the device by zlib_compression or gnu_gzip_compression from their uncompressed bytes: gzip files inside images and compressed payloads.",
            count(recreated.len() as u64, "item is", "items are"),
            human(recreated.iter().sum())
        ));
    }
    out
}

fn caveats() -> Vec<String> {
    [
        "Made from the delta alone. A delta holds items (lengths and hashes) and recipes, not names: this page cannot show file paths, directories or target member names, nor tell file data from filesystem metadata, cpio framing or sw-description. The report.html that diffgen create writes in its log folder shows them (and the generation time and verification, which a delta does not record).",
        "Parts are the pieces of the delta's blobs, grouped by the recipe that consumes each: zstd frames with a basis of old bytes, zstd frames without one (new data; a frame whose basis is at most 4 KiB counts as new data: diffgen gives the gzip profile's new-data stream such a token basis), bsdiff patches, and the deflated remainder. A frame followed by bcj_x86_decode is new data after the x86 filter.",
        "A stream's bytes that are re-compressed into gzip files are split out in proportion to their uncompressed length (as report.json shares out a stream); bytes of re-created payloads reached only through chains are not.",
        "Nested archives are shown whole. The grey tile is everything outside the blobs: recipes, item hashes and headers.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
