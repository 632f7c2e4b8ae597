//! What `diffgen inspect <delta>` shows: header, source and target identity, recipe counts and
//! bytes by type, pantry blobs, nested archives and the recipe graph (like ADU's `dumpdiff`).
//!
//! [`inspect`] builds an [`Inspection`] from a parsed [`Archive`]; [`render_text`] formats it
//! for people; with the `serde` feature it serializes to JSON for scripts.

use std::fmt::Write as _;

use crate::archive::{Archive, VERSION};
use crate::item::Item;
use crate::recipe::{Recipe, RecipeType};

/// An item as shown: length and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ItemInfo {
    pub length: u64,
    /// `sha256` or `md5`; absent for the empty item.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub algorithm: Option<String>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub hash: Option<String>,
}

impl From<&Item> for ItemInfo {
    fn from(item: &Item) -> Self {
        ItemInfo {
            length: item.length(),
            algorithm: item.hash().map(|h| h.algorithm_name().to_string()),
            hash: item.hash().map(|h| h.hex()),
        }
    }
}

/// Count and produced bytes of one recipe type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TypeCount {
    pub id: u32,
    pub name: String,
    pub recipes: u64,
    /// Sum of the result lengths of these recipes.
    pub result_bytes: u64,
}

/// One recipe of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RecipeInfo {
    pub result: ItemInfo,
    #[cfg_attr(feature = "serde", serde(rename = "type"))]
    pub recipe_type: String,
    pub type_id: u32,
    pub numbers: Vec<u64>,
    pub ingredients: Vec<ItemInfo>,
}

/// What applying the delta will take (planned for the source the delta declares).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ApplyNeeds {
    /// Temp disk space: items spilled to temp files and their total size.
    pub spilled_items: u64,
    pub spill_bytes: u64,
    /// Largest zstd basis, held in memory while decoding.
    pub largest_zstd_basis: u64,
    /// Recipes the applier will use (of all in the cookbook).
    pub recipes_used: u64,
    pub plan_depth: usize,
}

/// Everything about one archive (nested archives inside).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Inspection {
    pub format: String,
    pub version: u64,
    /// Offset of this archive in the file (0 unless nested).
    pub offset: u64,
    pub target: ItemInfo,
    pub source: ItemInfo,
    /// The stored recipe type name table (ignored by appliers; ids are fixed).
    pub recipe_type_names: Vec<String>,
    pub recipe_sets: u64,
    pub recipes: u64,
    pub by_type: Vec<TypeCount>,
    /// Whether only diffgen's applier can apply it (uses `zstd_compression`, here or nested).
    pub needs_diffgen_applier: bool,
    /// For the outermost archive: what an apply needs, or why the target cannot be made from
    /// the declared source.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub apply_needs: Option<ApplyNeeds>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub unresolvable: Option<String>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub inline_assets: Option<ItemInfo>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub remainder_compressed: Option<ItemInfo>,
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub remainder_uncompressed: Option<ItemInfo>,
    pub nested: Vec<Inspection>,
    pub recipe_graph: Vec<RecipeInfo>,
}

/// Describes `archive`, including what applying it needs.
pub fn inspect(archive: &Archive) -> Inspection {
    let mut i = describe(archive);
    match crate::apply::requirements(archive) {
        Ok(r) => {
            i.apply_needs = Some(ApplyNeeds {
                spilled_items: r.spilled_items,
                spill_bytes: r.spill_bytes,
                largest_zstd_basis: r.largest_zstd_basis,
                recipes_used: r.recipes_used.iter().sum(),
                plan_depth: r.plan_depth,
            })
        }
        Err(e) => i.unresolvable = Some(e.to_string()),
    }
    i
}

/// Describes one archive and, recursively, its nested archives.
fn describe(archive: &Archive) -> Inspection {
    let mut by_type: Vec<TypeCount> = RecipeType::ALL
        .iter()
        .map(|t| TypeCount {
            id: t.id(),
            name: t.name().to_string(),
            recipes: 0,
            result_bytes: 0,
        })
        .collect();
    let mut graph = Vec::new();
    for (result, recipe) in archive.recipes() {
        let t = recipe.recipe_type();
        if let Some(c) = by_type.get_mut(t.id() as usize) {
            c.recipes += 1;
            c.result_bytes = c.result_bytes.saturating_add(result.length());
        }
        graph.push(recipe_info(result, recipe));
    }
    let remainder_uncompressed = archive.remainder_uncompressed();
    Inspection {
        format: "PAMZ standard".to_string(),
        version: VERSION,
        offset: archive.offset,
        target: (&archive.target).into(),
        source: (&archive.source).into(),
        recipe_type_names: archive.type_names.clone(),
        recipe_sets: archive.recipe_sets.len() as u64,
        recipes: graph.len() as u64,
        by_type,
        needs_diffgen_applier: archive.needs_diffgen_applier(),
        apply_needs: None,
        unresolvable: None,
        inline_assets: archive.inline_assets.map(|b| (&b.item).into()),
        remainder_compressed: archive.remainder.map(|b| (&b.item).into()),
        remainder_uncompressed: remainder_uncompressed.as_ref().map(ItemInfo::from),
        nested: archive
            .nested
            .iter()
            .map(|n| describe(&n.archive))
            .collect(),
        recipe_graph: graph,
    }
}

fn recipe_info(result: &Item, recipe: &Recipe) -> RecipeInfo {
    let t = recipe.recipe_type();
    RecipeInfo {
        result: result.into(),
        recipe_type: t.name().to_string(),
        type_id: t.id(),
        numbers: recipe.numbers(),
        ingredients: recipe.items().iter().map(ItemInfo::from).collect(),
    }
}

fn short(info: &ItemInfo) -> String {
    match &info.hash {
        None => "(empty)".to_string(),
        Some(h) => format!("{}:{}", info.length, h.get(..12).unwrap_or(h)),
    }
}

fn full(info: &ItemInfo) -> String {
    match (&info.algorithm, &info.hash) {
        (Some(a), Some(h)) => format!("{} bytes, {a} {h}", info.length),
        _ => "empty".to_string(),
    }
}

/// Human-readable rendering; `graph` adds one line per recipe.
pub fn render_text(inspection: &Inspection, graph: bool) -> String {
    let mut out = String::new();
    render_into(&mut out, inspection, graph, "");
    out
}

fn render_into(out: &mut String, i: &Inspection, graph: bool, indent: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{indent}format:    {} v{} (at byte {})",
        i.format, i.version, i.offset
    );
    let _ = writeln!(out, "{indent}target:    {}", full(&i.target));
    let _ = writeln!(out, "{indent}source:    {}", full(&i.source));
    let extensions: Vec<&str> = i
        .by_type
        .iter()
        .filter(|t| t.recipes > 0)
        .filter_map(|t| RecipeType::from_id(t.id))
        .filter(|t| t.is_extension())
        .map(|t| t.name())
        .collect();
    let applier = if i.needs_diffgen_applier {
        let what = if extensions.is_empty() {
            "an extension in a nested archive".to_string()
        } else {
            extensions.join(", ")
        };
        format!("diffgen applier only (uses {what})")
    } else {
        "ADU 3.0 applier or diffgen applier".to_string()
    };
    let _ = writeln!(out, "{indent}applies with: {applier}");
    let _ = writeln!(
        out,
        "{indent}inline assets: {}",
        i.inline_assets.as_ref().map_or("none".to_string(), full)
    );
    let remainder = match (&i.remainder_compressed, &i.remainder_uncompressed) {
        (None, _) => "none".to_string(),
        (Some(c), Some(u)) => format!(
            "{} bytes compressed, {} bytes uncompressed",
            c.length, u.length
        ),
        (Some(c), None) => format!("{} bytes compressed (no recipe inflates it)", c.length),
    };
    let _ = writeln!(out, "{indent}remainder: {remainder}");
    let _ = writeln!(
        out,
        "{indent}recipes:   {} in {} sets",
        i.recipes, i.recipe_sets
    );
    for t in i.by_type.iter().filter(|t| t.recipes > 0) {
        let _ = writeln!(
            out,
            "{indent}  {:<22} {:>6} recipes {:>14} bytes",
            t.name, t.recipes, t.result_bytes
        );
    }
    if let Some(n) = &i.apply_needs {
        let _ = writeln!(
            out,
            "{indent}apply needs: {} of the recipes, temp disk {} bytes ({} spilled items), largest zstd basis {} bytes, graph depth {}",
            n.recipes_used, n.spill_bytes, n.spilled_items, n.largest_zstd_basis, n.plan_depth
        );
    }
    if let Some(why) = &i.unresolvable {
        let _ = writeln!(out, "{indent}apply: {why}");
    }
    if graph {
        let _ = writeln!(out, "{indent}recipe graph:");
        for r in &i.recipe_graph {
            let ingredients: Vec<String> = r.ingredients.iter().map(short).collect();
            let _ = writeln!(
                out,
                "{indent}  {} <- {}{:?} [{}]",
                short(&r.result),
                r.recipe_type,
                r.numbers,
                ingredients.join(", ")
            );
        }
    }
    for (n, nested) in i.nested.iter().enumerate() {
        let _ = writeln!(out, "{indent}nested archive {n}:");
        render_into(out, nested, graph, &format!("{indent}    "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::{DeltaBuilder, Profile};

    #[test]
    fn counts_and_renders() {
        let zeros = Item::of_bytes(&[0u8; 10]);
        let target = Item::of_bytes(&[0u8; 20]);
        let mut b = DeltaBuilder::new(target, Item::EMPTY, Profile::Gzip);
        b.add_recipe(zeros, Recipe::AllZeros).unwrap();
        b.add_recipe(target, Recipe::Chain(vec![zeros, zeros]))
            .unwrap();
        let bytes = b.to_bytes().unwrap();
        let archive = crate::read_archive(&bytes, &Default::default()).unwrap();
        let i = inspect(&archive);
        assert_eq!(i.recipes, 2);
        assert_eq!(i.by_type[0].recipes, 1);
        assert_eq!(i.by_type[1].result_bytes, 20);
        assert!(!i.needs_diffgen_applier);
        let text = render_text(&i, true);
        assert!(text.contains("all_zeros"), "{text}");
        assert!(text.contains("chain[]"), "{text}");
    }
}
