//! The in-memory model of one delta file ("archive"): header items, cookbook, pantry blobs and
//! nested archives.
//!
//! Blobs are not loaded: a [`BlobRef`] says where the bytes lie in the file, so a reader can
//! hash and stream them while memory stays bounded whatever the delta's size.

use crate::item::Item;
use crate::recipe::Recipe;

/// The magic at offset 0.
pub const MAGIC: &[u8; 4] = b"PAMZ";
/// The only version this crate reads and writes (ADU DiffGen 3.0's "standard v2").
pub const VERSION: u64 = 2;

/// A blob stored inside the delta file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRef {
    /// Its declared (and, after reading, verified) identity.
    pub item: Item,
    /// Absolute offset of its first byte in the outermost delta file.
    pub offset: u64,
}

/// All recipes for one result item, in file order (the applier tries them in this order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeSet {
    pub result: Item,
    pub recipes: Vec<Recipe>,
}

/// A complete delta embedded in another one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedArchive {
    /// The item as declared in the parent (ADU does not verify it; neither does the applier).
    pub item: Item,
    pub archive: Archive,
}

/// One parsed delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// Absolute offset of this archive's magic in the outermost file (0 unless nested).
    pub offset: u64,
    pub target: Item,
    /// Informational; the applier finds the source by hashing the file it is given.
    pub source: Item,
    /// The recipe type name table as stored (the reader of ADU ignores it; ids are fixed).
    pub type_names: Vec<String>,
    pub recipe_sets: Vec<RecipeSet>,
    pub inline_assets: Option<BlobRef>,
    /// The raw-deflate compressed remainder blob.
    pub remainder: Option<BlobRef>,
    pub nested: Vec<NestedArchive>,
}

impl Archive {
    /// Every (result, recipe) pair of this archive only, in file order.
    pub fn recipes(&self) -> impl Iterator<Item = (&Item, &Recipe)> {
        self.recipe_sets
            .iter()
            .flat_map(|set| set.recipes.iter().map(move |r| (&set.result, r)))
    }

    /// This archive and its nested archives, depth first (the applier's lookup order).
    pub fn walk(&self) -> Vec<&Archive> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(a) = stack.pop() {
            out.push(a);
            // Reverse so the first nested archive is visited first.
            stack.extend(a.nested.iter().rev().map(|n| &n.archive));
        }
        out
    }

    /// Whether any recipe, here or nested, uses a diffgen extension (`zstd_compression`,
    /// `gnu_gzip_compression`, `bcj_x86_decode`, `exe_bspatch`), so that only diffgen's
    /// applier can apply the delta.
    pub fn needs_diffgen_applier(&self) -> bool {
        self.walk()
            .iter()
            .any(|a| a.recipes().any(|(_, r)| r.recipe_type().is_extension()))
    }

    /// The uncompressed remainder: the result of a `zlib_decompression` (raw) of the compressed
    /// remainder blob, if the archive has one.
    pub fn remainder_uncompressed(&self) -> Option<Item> {
        let compressed = self.remainder?.item;
        self.recipes().find_map(|(result, r)| match r {
            Recipe::ZlibDecompression {
                container: codec::zlib::Container::Raw,
                compressed: c,
            } if *c == compressed => Some(*result),
            _ => None,
        })
    }
}
