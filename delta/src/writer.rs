//! Building and serializing a delta (PAMZ standard v2), refusing anything the applier would
//! reject.
//!
//! The profile is a guard, not a hint: a gzip-profile delta never carries a recipe that ADU
//! 3.0's stock applier rejects (`zstd_compression`, id 6: error 31702) or does not know (ids 8
//! and 9, on which it crashes), neither in its own cookbook nor in a nested archive (which
//! ADU's reader loads like the outer one). [`Profile::allows`] is the one list; recipes are
//! checked when added, nested archives when embedded, and everything again when written.
//!
//! The output is canonical in the reference writer's sense (recipe sets by result item, recipes by
//! type name, numbers and items, duplicates collapsed, nested archives by item), so the same
//! content always gives the same bytes, identical to ADU's writer.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::sync::Arc;

use codec::zlib::{Container, DeflateParams, Deflater};
use codec::zstd::{WINDOW_LOG_MAX_PLAIN, WINDOW_LOG_MAX_WITH_BASIS};

use crate::archive::{Archive, MAGIC, VERSION};
use crate::io::{ReadAt, IO_CHUNK};
use crate::item::{Item, ItemHasher};
use crate::reader::hash_range;
use crate::recipe::{Recipe, RecipeError, RecipeType};
use crate::zstd_frame;

/// Which applier the delta is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// ADU-stock compatible ("gzip profile"): only what ADU 3.0's applier accepts, the recipe
    /// ids 0–5 and 7 ([`RecipeType::is_adu_stock`]).
    #[default]
    Gzip,
    /// diffgen's applier: also the extensions `zstd_compression`, `gnu_gzip_compression`,
    /// `bcj_x86_decode` and `exe_bspatch`.
    Extended,
}

impl Profile {
    /// Whether a delta of this profile may contain recipes of type `t`.
    pub fn allows(self, t: RecipeType) -> bool {
        match self {
            Profile::Gzip => t.is_adu_stock(),
            Profile::Extended => true,
        }
    }
}

/// Bytes of a blob to be written: anything random-access (a `Vec<u8>`, a file range).
pub type BlobSource = Arc<dyn ReadAt + Send + Sync>;

/// Why a delta cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("recipe for {result}: {source}")]
    Recipe {
        result: Item,
        #[source]
        source: RecipeError,
    },
    #[error("recipe for {result}: {recipe} is a diffgen extension that ADU's applier rejects; the gzip profile cannot use it")]
    ProfileForbids { result: Item, recipe: RecipeType },
    #[error("a nested archive uses {recipe}, a diffgen extension that ADU's applier rejects; the gzip profile cannot nest it")]
    NestedProfileForbids { recipe: RecipeType },
    #[error(
        "recipe for {result}: zlib level 0 (stored blocks) is not reproducible; use 1..=9 or -1"
    )]
    ZlibLevelZero { result: Item },
    #[error("the target is empty; an empty item can never be resolved, so no delta can make it")]
    EmptyTarget,
    #[error("recipe for {result}: {reason}")]
    ZstdFrame { result: Item, reason: String },
    #[error("nested archive {index}: {reason}")]
    Nested { index: usize, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// A delta under construction.
pub struct DeltaBuilder {
    profile: Profile,
    target: Item,
    source: Item,
    /// Recipe sets in canonical order; each set's recipes in canonical order, deduplicated.
    recipes: BTreeMap<Item, BTreeSet<CanonicalRecipe>>,
    inline_assets: Option<(Item, BlobSource)>,
    remainder: Option<(Item, BlobSource)>,
    /// Serialized nested archives, with the recipe types each uses (its own nested ones too).
    nested: BTreeMap<Item, (Vec<u8>, BTreeSet<RecipeType>)>,
}

/// A recipe ordered as the reference writer orders them: name, number count, numbers, item
/// count, items.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CanonicalRecipe(Recipe);

impl CanonicalRecipe {
    fn key(&self) -> (&'static str, usize, Vec<u64>, usize, Vec<Item>) {
        let numbers = self.0.numbers();
        let items = self.0.items();
        (
            self.0.recipe_type().name(),
            numbers.len(),
            numbers,
            items.len(),
            items,
        )
    }
}

impl Ord for CanonicalRecipe {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for CanonicalRecipe {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl DeltaBuilder {
    /// A delta that makes `target`; `source` is informational (use [`Item::EMPTY`] for none).
    pub fn new(target: Item, source: Item, profile: Profile) -> Self {
        DeltaBuilder {
            profile,
            target,
            source,
            recipes: BTreeMap::new(),
            inline_assets: None,
            remainder: None,
            nested: BTreeMap::new(),
        }
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Adds one recipe for `result`, after checking it.
    pub fn add_recipe(&mut self, result: Item, recipe: Recipe) -> Result<(), WriteError> {
        recipe
            .check_against(&result)
            .map_err(|source| WriteError::Recipe { result, source })?;
        match &recipe {
            r if !self.profile.allows(r.recipe_type()) => {
                return Err(WriteError::ProfileForbids {
                    result,
                    recipe: r.recipe_type(),
                })
            }
            Recipe::ZlibCompression { level: 0, .. } => {
                return Err(WriteError::ZlibLevelZero { result })
            }
            _ => {}
        }
        self.recipes
            .entry(result)
            .or_default()
            .insert(CanonicalRecipe(recipe));
        Ok(())
    }

    /// Sets the inline-assets blob (all delta payloads concatenated); returns its item. Payloads
    /// inside it are referenced by `slice` recipes of that item.
    pub fn set_inline_assets(&mut self, data: BlobSource) -> Result<Item, WriteError> {
        let item = hash_blob(&*data, "inline assets")?;
        self.inline_assets = (!item.is_empty()).then_some((item, data));
        Ok(item)
    }

    /// Deflates `uncompressed` (raw, level 9, memLevel 9, as ADU's writer) into the remainder
    /// blob and adds the `zlib_decompression` recipe that turns it back. Returns the
    /// uncompressed remainder item, whose slices are the target pieces.
    pub fn set_remainder(&mut self, uncompressed: &mut dyn Read) -> Result<Item, WriteError> {
        let params = DeflateParams {
            container: Container::Raw,
            level: 9,
        };
        let io_err = |source| WriteError::Io {
            what: "compressing the remainder",
            source,
        };
        let mut deflater = Deflater::new(params, Vec::new()).map_err(io_err)?;
        let mut hasher = ItemHasher::new();
        let mut buf = vec![0u8; IO_CHUNK];
        loop {
            let n = match uncompressed.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(e)),
            };
            hasher.update(&buf[..n]);
            deflater.write_all(&buf[..n]).map_err(io_err)?;
        }
        let compressed = deflater.finish().map_err(io_err)?;
        let uncompressed_item = hasher.finish();
        if uncompressed_item.is_empty() {
            self.remainder = None;
            return Ok(Item::EMPTY);
        }
        self.set_remainder_compressed(Arc::new(compressed), uncompressed_item)?;
        Ok(uncompressed_item)
    }

    /// Sets an already raw-deflated remainder whose inflated content is `uncompressed`, and adds
    /// its `zlib_decompression` recipe.
    pub fn set_remainder_compressed(
        &mut self,
        compressed: BlobSource,
        uncompressed: Item,
    ) -> Result<Item, WriteError> {
        let item = hash_blob(&*compressed, "compressed remainder")?;
        if item.is_empty() {
            self.remainder = None;
            return Ok(item);
        }
        self.add_recipe(
            uncompressed,
            Recipe::ZlibDecompression {
                container: Container::Raw,
                compressed: item,
            },
        )?;
        self.remainder = Some((item, compressed));
        Ok(item)
    }

    /// Embeds another delta; its pantry and cookbook join this one's when applied. Refused if
    /// it uses a recipe type this builder's profile does not allow.
    pub fn add_nested(&mut self, nested: &DeltaBuilder) -> Result<Item, WriteError> {
        let types = nested.recipe_types();
        if let Some(&recipe) = types.iter().find(|&&t| !self.profile.allows(t)) {
            return Err(WriteError::NestedProfileForbids { recipe });
        }
        let bytes = nested.to_bytes()?;
        let item = Item::of_bytes(&bytes);
        self.nested.insert(item, (bytes, types));
        Ok(item)
    }

    /// Every recipe type this delta uses, nested archives included.
    pub fn recipe_types(&self) -> BTreeSet<RecipeType> {
        let own = self
            .recipes
            .values()
            .flat_map(|set| set.iter().map(|r| r.0.recipe_type()));
        let nested = self
            .nested
            .values()
            .flat_map(|(_, types)| types.iter().copied());
        own.chain(nested).collect()
    }

    /// The profile guard at the point of writing: nothing the profile does not allow.
    fn check_profile(&self) -> Result<(), WriteError> {
        for (result, set) in &self.recipes {
            if let Some(r) = set.iter().find(|r| !self.profile.allows(r.0.recipe_type())) {
                return Err(WriteError::ProfileForbids {
                    result: *result,
                    recipe: r.0.recipe_type(),
                });
            }
        }
        let nested = self.nested.values().flat_map(|(_, types)| types.iter());
        match nested.copied().find(|&t| !self.profile.allows(t)) {
            Some(recipe) => Err(WriteError::NestedProfileForbids { recipe }),
            None => Ok(()),
        }
    }

    /// Serializes to a vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WriteError> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Serializes the delta; returns the number of bytes written.
    pub fn write_to(&self, out: &mut dyn Write) -> Result<u64, WriteError> {
        if self.target.is_empty() {
            return Err(WriteError::EmptyTarget);
        }
        self.check_profile()?;
        self.check_zstd_frames()?;
        let mut w = CountingWriter { out, count: 0 };
        let io_err = |source| WriteError::Io {
            what: "writing the delta",
            source,
        };
        w.put(MAGIC).map_err(io_err)?;
        w.put(&VERSION.to_be_bytes()).map_err(io_err)?;
        w.item(&self.target).map_err(io_err)?;
        w.item(&self.source).map_err(io_err)?;
        // ADU's eight names, and diffgen's up to the highest id a recipe uses (the reader
        // ignores the table; the stock one then fails on the id, as it should).
        let highest = self
            .recipes
            .values()
            .flat_map(|rs| rs.iter().map(|r| r.0.recipe_type().id() as usize))
            .max()
            .unwrap_or(0);
        let names = &RecipeType::ALL[..(highest + 1).max(8)];
        w.put(&(names.len() as u32).to_be_bytes()).map_err(io_err)?;
        for &t in names {
            w.put(&(t.name().len() as u64).to_be_bytes())
                .map_err(io_err)?;
            w.put(t.name().as_bytes()).map_err(io_err)?;
        }
        w.put(&(self.recipes.len() as u64).to_be_bytes())
            .map_err(io_err)?;
        for (result, recipes) in &self.recipes {
            w.put(&(recipes.len() as u64).to_be_bytes())
                .map_err(io_err)?;
            w.item(result).map_err(io_err)?;
            for CanonicalRecipe(recipe) in recipes {
                w.recipe(recipe).map_err(io_err)?;
            }
        }
        for (what, blob) in [
            ("writing the inline assets", &self.inline_assets),
            ("writing the remainder", &self.remainder),
        ] {
            match blob {
                None => w.item(&Item::EMPTY).map_err(io_err)?,
                Some((item, data)) => {
                    w.item(item).map_err(io_err)?;
                    w.copy_blob(&**data, item.length())
                        .map_err(|source| WriteError::Io { what, source })?;
                }
            }
        }
        w.put(&(self.nested.len() as u32).to_be_bytes())
            .map_err(io_err)?;
        for (item, (bytes, _)) in &self.nested {
            w.item(item).map_err(io_err)?;
            w.put(bytes).map_err(io_err)?;
        }
        Ok(w.count)
    }

    /// Refuses `zstd_decompression` frames whose window the device decoder rejects, where the
    /// frame can be found: the whole inline-assets blob or a direct slice of it.
    fn check_zstd_frames(&self) -> Result<(), WriteError> {
        let Some((assets_item, assets)) = &self.inline_assets else {
            return Ok(());
        };
        for (result, set) in &self.recipes {
            for CanonicalRecipe(recipe) in set {
                let Recipe::ZstdDecompression { compressed, basis } = recipe else {
                    continue;
                };
                let frame_offset = if compressed == assets_item {
                    Some(0)
                } else {
                    self.recipes.get(compressed).and_then(|producers| {
                        producers.iter().find_map(|CanonicalRecipe(p)| match p {
                            Recipe::Slice { offset, whole } if whole == assets_item => {
                                Some(*offset)
                            }
                            _ => None,
                        })
                    })
                };
                let Some(offset) = frame_offset else { continue };
                let mut head = [0u8; zstd_frame::MAX_HEADER_LEN];
                let n = (compressed.length().min(head.len() as u64)) as usize;
                assets
                    .read_exact_at(offset, &mut head[..n])
                    .map_err(|source| WriteError::Io {
                        what: "reading a zstd frame header from the inline assets",
                        source,
                    })?;
                let header = zstd_frame::parse(&head[..n]).map_err(|e| WriteError::ZstdFrame {
                    result: *result,
                    reason: e.to_string(),
                })?;
                let log_max = if basis.is_some() {
                    WINDOW_LOG_MAX_WITH_BASIS
                } else {
                    WINDOW_LOG_MAX_PLAIN
                };
                if header.window_size > 1u64 << log_max {
                    return Err(WriteError::ZstdFrame {
                        result: *result,
                        reason: format!(
                            "the frame's window is {} bytes; a device decoder accepts at most 2^{log_max}",
                            header.window_size
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// A builder holding everything `archive` holds, with blobs read from `file` (the delta the
    /// archive was read from). Writing it back gives the canonical form of that delta.
    pub fn from_archive(
        archive: &Archive,
        file: BlobSource,
        profile: Profile,
    ) -> Result<Self, WriteError> {
        let mut b = DeltaBuilder::new(archive.target, archive.source, profile);
        for (result, recipe) in archive.recipes() {
            b.add_recipe(*result, recipe.clone())?;
        }
        for (blob, slot) in [
            (archive.inline_assets, &mut b.inline_assets),
            (archive.remainder, &mut b.remainder),
        ] {
            if let Some(blob) = blob {
                let range = crate::io::RangeAt::new(file.clone(), blob.offset, blob.item.length())
                    .map_err(|source| WriteError::Io {
                        what: "blob outside the delta file",
                        source,
                    })?;
                *slot = Some((blob.item, Arc::new(range)));
            }
        }
        for (index, nested) in archive.nested.iter().enumerate() {
            let inner = DeltaBuilder::from_archive(&nested.archive, file.clone(), profile)
                .map_err(|e| WriteError::Nested {
                    index,
                    reason: e.to_string(),
                })?;
            b.add_nested(&inner)?;
        }
        Ok(b)
    }
}

fn hash_blob(data: &dyn ReadAt, what: &'static str) -> Result<Item, WriteError> {
    hash_range(data, 0, data.size()).map_err(|(_, source)| WriteError::Io { what, source })
}

struct CountingWriter<'a> {
    out: &'a mut dyn Write,
    count: u64,
}

impl CountingWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.count += bytes.len() as u64;
        Ok(())
    }

    fn item(&mut self, item: &Item) -> io::Result<()> {
        self.put(&item.length().to_be_bytes())?;
        if let Some(hash) = item.hash() {
            self.put(&hash.algorithm_id().to_be_bytes())?;
            self.put(hash.bytes())?;
        }
        Ok(())
    }

    fn recipe(&mut self, recipe: &Recipe) -> io::Result<()> {
        self.put(&recipe.recipe_type().id().to_be_bytes())?;
        let numbers = recipe.numbers();
        self.put(&(numbers.len() as u64).to_be_bytes())?;
        for n in numbers {
            self.put(&n.to_be_bytes())?;
        }
        let items = recipe.items();
        self.put(&(items.len() as u64).to_be_bytes())?;
        for item in &items {
            self.item(item)?;
        }
        Ok(())
    }

    fn copy_blob(&mut self, data: &dyn ReadAt, len: u64) -> io::Result<()> {
        let mut buf = vec![0u8; IO_CHUNK];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(IO_CHUNK as u64) as usize;
            data.read_exact_at(done, &mut buf[..n])?;
            self.put(&buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }
}
