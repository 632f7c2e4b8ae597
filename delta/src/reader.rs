//! Parsing a delta file (PAMZ standard v2) into an [`Archive`], without trusting it.
//!
//! Every count and size is checked against the bytes that are left (and against
//! [`ReadLimits`]) before anything is allocated for it; blobs are hashed in place and compared
//! with their declared items, as ADU's reader does; recipes are checked as they are read. Each
//! error names the byte offset of the field it is about.

use std::io;
use std::path::Path;

use crate::archive::{Archive, BlobRef, NestedArchive, RecipeSet, MAGIC, VERSION};
use crate::io::{FileAt, ReadAt, IO_CHUNK};
use crate::item::{Item, ItemHash, ItemHasher, ALG_MD5, ALG_SHA256};
use crate::recipe::{Recipe, RecipeError};

/// Sanity limits on top of "must fit in the file". They bound the reader's (and so the
/// applier's) memory for the cookbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Recipe sets, recipes and item ingredients of all archives together. The applier reserves
    /// their memory (see `apply::COOKBOOK_BYTES_PER_SET`) from its budget; at the default limit
    /// a typical cookbook takes about 32 MiB of the default 48 MiB budget.
    pub max_entries: u64,
    /// Nesting depth of nested archives.
    pub max_nesting: u32,
    /// Entries in the recipe type name table (the reference writer emits 8).
    pub max_type_names: u32,
    /// Bytes per recipe type name.
    pub max_type_name_len: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_entries: 1 << 18,
            max_nesting: 8,
            max_type_names: 64,
            max_type_name_len: 256,
        }
    }
}

/// What is wrong with a delta file, and where.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot open the delta {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "delta is truncated: {what} at byte {offset} needs {needed} bytes, {available} are left"
    )]
    Truncated {
        offset: u64,
        what: &'static str,
        needed: u64,
        available: u64,
    },
    #[error("not a PAMZ delta: bytes at offset {offset} are {found:02x?}")]
    BadMagic { offset: u64, found: Vec<u8> },
    #[error("delta version {version} at byte {offset} is not supported; only PAMZ standard version 2 (ADU 3.0) is")]
    UnsupportedVersion { offset: u64, version: u64 },
    #[error(
        "unknown hash algorithm id {id:#x} at byte {offset} (known: 0x800c SHA-256, 0x8003 MD5)"
    )]
    UnknownHashAlgorithm { offset: u64, id: u32 },
    #[error("{what} at byte {offset} is {value}, over the limit of {limit}")]
    TooLarge {
        offset: u64,
        what: &'static str,
        value: u64,
        limit: u64,
    },
    #[error("recipe at byte {offset}: {source}")]
    Recipe {
        offset: u64,
        #[source]
        source: RecipeError,
    },
    #[error("{what} at byte {offset}: the stored bytes are {actual}, but the header declares {declared}")]
    BlobMismatch {
        offset: u64,
        what: &'static str,
        declared: Item,
        actual: Item,
    },
    #[error(
        "{what} at byte {offset} is declared with an MD5 hash; only SHA-256 blobs can be verified"
    )]
    UnverifiableBlob { offset: u64, what: &'static str },
    #[error("nested archive at byte {offset} is nested more than {limit} levels deep")]
    NestingTooDeep { offset: u64, limit: u32 },
    #[error("reading the delta at byte {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
}

impl ReadError {
    /// The byte offset the error is about, when there is one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            ReadError::Open { .. } => None,
            ReadError::Truncated { offset, .. }
            | ReadError::BadMagic { offset, .. }
            | ReadError::UnsupportedVersion { offset, .. }
            | ReadError::UnknownHashAlgorithm { offset, .. }
            | ReadError::TooLarge { offset, .. }
            | ReadError::Recipe { offset, .. }
            | ReadError::BlobMismatch { offset, .. }
            | ReadError::UnverifiableBlob { offset, .. }
            | ReadError::NestingTooDeep { offset, .. }
            | ReadError::Io { offset, .. } => Some(*offset),
        }
    }
}

/// Minimum encoded sizes, used to bound counts by the bytes left.
const MIN_ITEM: u64 = 8;
const MIN_RECIPE: u64 = 4 + 8 + 8;
const MIN_RECIPE_SET: u64 = 8 + MIN_ITEM;
const MIN_NAME: u64 = 8;
const MIN_NESTED: u64 = MIN_ITEM;

/// Reads the delta at `path` (a file or anything `File::open` opens).
pub fn read_path(path: &Path, limits: &ReadLimits) -> Result<(Archive, FileAt), ReadError> {
    let file = FileAt::open(path).map_err(|source| ReadError::Open {
        path: path.display().to_string(),
        source,
    })?;
    let archive = read_archive(&file, limits)?;
    Ok((archive, file))
}

/// Parses the delta held by `source` (the whole source is the delta).
pub fn read_archive(source: &dyn ReadAt, limits: &ReadLimits) -> Result<Archive, ReadError> {
    let mut budget = limits.max_entries;
    parse(source, 0, source.size(), limits, 0, &mut budget)
}

/// Parses the bytes `[start, end)` of `source` as one archive.
fn parse(
    source: &dyn ReadAt,
    start: u64,
    end: u64,
    limits: &ReadLimits,
    depth: u32,
    item_budget: &mut u64,
) -> Result<Archive, ReadError> {
    let mut c = Cursor::new(source, start, end);
    let magic = c.bytes::<4>("magic")?;
    if &magic != MAGIC {
        return Err(ReadError::BadMagic {
            offset: start,
            found: magic.to_vec(),
        });
    }
    let version_at = c.pos;
    let version = c.u64("version")?;
    if version != VERSION {
        return Err(ReadError::UnsupportedVersion {
            offset: version_at,
            version,
        });
    }
    let target = c.item("target item")?;
    let source_item = c.item("source item")?;

    let names_at = c.pos;
    let name_count = u64::from(c.u32("recipe type count")?);
    c.check_count(
        names_at,
        "recipe type count",
        name_count,
        MIN_NAME,
        u64::from(limits.max_type_names),
    )?;
    let mut type_names = Vec::new();
    for _ in 0..name_count {
        let len_at = c.pos;
        let len = c.u64("recipe type name length")?;
        if len > limits.max_type_name_len {
            return Err(ReadError::TooLarge {
                offset: len_at,
                what: "recipe type name length",
                value: len,
                limit: limits.max_type_name_len,
            });
        }
        let bytes = c.vec(len, "recipe type name")?;
        type_names.push(String::from_utf8_lossy(&bytes).into_owned());
    }

    let sets_at = c.pos;
    let set_count = c.u64("recipe set count")?;
    c.check_count(
        sets_at,
        "recipe set count",
        set_count,
        MIN_RECIPE_SET,
        u64::MAX,
    )?;
    // Charged up front so the vector is allocated once (no doubling), within the limit.
    charge(item_budget, set_count, sets_at, limits)?;
    let mut recipe_sets = Vec::with_capacity(set_count as usize);
    for _ in 0..set_count {
        let count_at = c.pos;
        let recipe_count = c.u64("recipe count")?;
        c.check_count(count_at, "recipe count", recipe_count, MIN_RECIPE, u64::MAX)?;
        let result = c.item("recipe result item")?;
        let mut recipes = Vec::with_capacity(recipe_count.min(*item_budget).min(64) as usize);
        for _ in 0..recipe_count {
            recipes.push(read_recipe(&mut c, &result, item_budget, limits)?);
        }
        recipe_sets.push(RecipeSet { result, recipes });
    }

    let inline_assets = c.blob("inline assets")?;
    let remainder = c.blob("compressed remainder")?;

    let nested_at = c.pos;
    let nested_count = u64::from(c.u32("nested archive count")?);
    c.check_count(
        nested_at,
        "nested archive count",
        nested_count,
        MIN_NESTED,
        u64::MAX,
    )?;
    let mut nested = Vec::new();
    for _ in 0..nested_count {
        let item_at = c.pos;
        let item = c.item("nested archive item")?;
        let blob_start = c.pos;
        c.skip(item.length(), "nested archive")?;
        if depth + 1 > limits.max_nesting {
            return Err(ReadError::NestingTooDeep {
                offset: item_at,
                limit: limits.max_nesting,
            });
        }
        let archive = parse(
            source,
            blob_start,
            blob_start + item.length(),
            limits,
            depth + 1,
            item_budget,
        )?;
        nested.push(NestedArchive { item, archive });
    }
    // Anything after the nested archives is ignored, as ADU does.
    Ok(Archive {
        offset: start,
        target,
        source: source_item,
        type_names,
        recipe_sets,
        inline_assets,
        remainder,
        nested,
    })
}

fn read_recipe(
    c: &mut Cursor,
    result: &Item,
    item_budget: &mut u64,
    limits: &ReadLimits,
) -> Result<Recipe, ReadError> {
    let recipe_at = c.pos;
    let type_id = c.u32("recipe type id")?;
    let numbers_at = c.pos;
    let number_count = c.u64("number ingredient count")?;
    c.check_count(
        numbers_at,
        "number ingredient count",
        number_count,
        8,
        u64::MAX,
    )?;
    let mut numbers = Vec::with_capacity(number_count.min(16) as usize);
    for _ in 0..number_count {
        numbers.push(c.u64("number ingredient")?);
    }
    let items_at = c.pos;
    let item_count = c.u64("item ingredient count")?;
    c.check_count(
        items_at,
        "item ingredient count",
        item_count,
        MIN_ITEM,
        u64::MAX,
    )?;
    charge(item_budget, item_count.saturating_add(1), items_at, limits)?;
    let mut items = Vec::with_capacity(item_count as usize);
    for _ in 0..item_count {
        items.push(c.item("item ingredient")?);
    }
    let recipe =
        Recipe::from_raw(type_id, &numbers, &items).map_err(|source| ReadError::Recipe {
            offset: recipe_at,
            source,
        })?;
    recipe
        .check_against(result)
        .map_err(|source| ReadError::Recipe {
            offset: recipe_at,
            source,
        })?;
    Ok(recipe)
}

/// Takes `n` entries from the budget of [`ReadLimits::max_entries`].
fn charge(budget: &mut u64, n: u64, at: u64, limits: &ReadLimits) -> Result<(), ReadError> {
    if n > *budget {
        return Err(ReadError::TooLarge {
            offset: at,
            what: "number of recipe sets, recipes and item ingredients",
            value: (limits.max_entries - *budget).saturating_add(n),
            limit: limits.max_entries,
        });
    }
    *budget -= n;
    Ok(())
}

/// Buffered big-endian reading of a byte range, tracking the absolute offset.
struct Cursor<'a> {
    source: &'a dyn ReadAt,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    /// Absolute offset of `buf[0]`.
    buf_at: u64,
}

impl<'a> Cursor<'a> {
    fn new(source: &'a dyn ReadAt, start: u64, end: u64) -> Self {
        Cursor {
            source,
            pos: start,
            end: end.min(source.size()),
            buf: Vec::new(),
            buf_at: start,
        }
    }

    fn left(&self) -> u64 {
        self.end.saturating_sub(self.pos)
    }

    fn need(&self, n: u64, what: &'static str) -> Result<(), ReadError> {
        if n > self.left() {
            Err(ReadError::Truncated {
                offset: self.pos,
                what,
                needed: n,
                available: self.left(),
            })
        } else {
            Ok(())
        }
    }

    /// Reads `out.len()` bytes (already known to be within range).
    fn fill(&mut self, out: &mut [u8]) -> Result<(), ReadError> {
        let n = out.len() as u64;
        let in_buf = self.pos >= self.buf_at && self.pos + n <= self.buf_at + self.buf.len() as u64;
        if !in_buf {
            let want = (IO_CHUNK as u64).max(n).min(self.end - self.pos) as usize;
            self.buf.resize(want, 0);
            self.buf_at = self.pos;
            self.source
                .read_exact_at(self.pos, &mut self.buf)
                .map_err(|source| ReadError::Io {
                    offset: self.pos,
                    source,
                })?;
        }
        let at = (self.pos - self.buf_at) as usize;
        out.copy_from_slice(&self.buf[at..at + out.len()]);
        self.pos += n;
        Ok(())
    }

    fn bytes<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ReadError> {
        self.need(N as u64, what)?;
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, ReadError> {
        Ok(u32::from_be_bytes(self.bytes::<4>(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, ReadError> {
        Ok(u64::from_be_bytes(self.bytes::<8>(what)?))
    }

    /// Reads `len` bytes into a new vector; `len` is checked against the bytes left first.
    fn vec(&mut self, len: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
        self.need(len, what)?;
        let mut v = vec![0u8; len as usize];
        self.fill(&mut v)?;
        Ok(v)
    }

    fn skip(&mut self, len: u64, what: &'static str) -> Result<(), ReadError> {
        self.need(len, what)?;
        self.pos += len;
        Ok(())
    }

    /// A count is plausible only if that many minimal elements fit in the bytes left.
    fn check_count(
        &self,
        at: u64,
        what: &'static str,
        count: u64,
        min_size: u64,
        limit: u64,
    ) -> Result<(), ReadError> {
        let fits = self.left() / min_size;
        if count > limit {
            return Err(ReadError::TooLarge {
                offset: at,
                what,
                value: count,
                limit,
            });
        }
        if count > fits {
            return Err(ReadError::Truncated {
                offset: at,
                what,
                needed: count.saturating_mul(min_size),
                available: self.left(),
            });
        }
        Ok(())
    }

    fn item(&mut self, what: &'static str) -> Result<Item, ReadError> {
        let length = self.u64(what)?;
        if length == 0 {
            return Ok(Item::EMPTY);
        }
        let alg_at = self.pos;
        let alg = self.u32(what)?;
        let hash = match alg {
            ALG_SHA256 => ItemHash::Sha256(self.bytes::<32>(what)?),
            ALG_MD5 => ItemHash::Md5(self.bytes::<16>(what)?),
            id => return Err(ReadError::UnknownHashAlgorithm { offset: alg_at, id }),
        };
        Ok(Item::with_hash(length, hash))
    }

    /// An ITEM followed by its bytes; the bytes are hashed and must match.
    fn blob(&mut self, what: &'static str) -> Result<Option<BlobRef>, ReadError> {
        let item_at = self.pos;
        let item = self.item(what)?;
        if item.is_empty() {
            return Ok(None);
        }
        let offset = self.pos;
        self.skip(item.length(), what)?;
        if item.sha256_bytes().is_none() {
            return Err(ReadError::UnverifiableBlob {
                offset: item_at,
                what,
            });
        }
        let actual = hash_range(self.source, offset, item.length())
            .map_err(|(at, source)| ReadError::Io { offset: at, source })?;
        if actual != item {
            return Err(ReadError::BlobMismatch {
                offset: item_at,
                what,
                declared: item,
                actual,
            });
        }
        Ok(Some(BlobRef { item, offset }))
    }
}

/// SHA-256 item of `len` bytes of `source` at `offset`; on error, the offset that failed.
pub fn hash_range(source: &dyn ReadAt, offset: u64, len: u64) -> Result<Item, (u64, io::Error)> {
    let mut hasher = ItemHasher::new();
    let mut buf = vec![0u8; IO_CHUNK];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(IO_CHUNK as u64) as usize;
        let at = offset + done;
        source
            .read_exact_at(at, &mut buf[..n])
            .map_err(|e| (at, e))?;
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    Ok(hasher.finish())
}
