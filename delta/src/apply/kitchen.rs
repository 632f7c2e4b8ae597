//! Executing a plan: turning each needed item into a random-access source or a stream.
//!
//! Pantry entries, zeros, slices and chains of random-access items are random-access and read in
//! place. Decompressions, compressions and patches are streams. Where a stream has to be read
//! out of order (a slice of it, the old file of a patch, a patch itself, a zstd basis), it is
//! spilled once to a temp file (its length checked; its hash only if the target comes out wrong)
//! and from then on read in place. Memory-hungry coders reserve their share of the budget first.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::rc::Rc;

use codec::bsdiff::BspatchReader;
use codec::zlib::DeflateParams;
use codec::zstd::{WINDOW_LOG_MAX_PLAIN, WINDOW_LOG_MAX_WITH_BASIS};

use super::budget::Budget;
use super::plan::{Plan, Step};
use super::streams::{DeflateReader, ExactLen, PrefixDecoder};
use super::temp::TempFiles;
use super::ApplyError;
use crate::io::{ChainAt, FileAt, RangeAt, SeqReader, SharedAt, ZerosAt, IO_CHUNK};
use crate::item::{Item, ItemHasher};
use crate::recipe::{Recipe, RecipeType};
use crate::zstd_frame;

/// Memory reserved for a bspatch: three bzip2 decoders with 900k blocks (~3.7 MB each in
/// libbzip2's fast mode) and buffers.
pub const BSPATCH_MEMORY: u64 = 12 << 20;
/// Memory reserved for a deflate compressor (zlib with memLevel 9: window, hash chains and
/// symbol buffer, about 400 KiB; GNU gzip's, about 330 KiB) and its buffers. Streams nest (a
/// compressor reading from a compressor), so every open one counts.
pub const DEFLATE_MEMORY: u64 = 512 << 10;
/// Memory reserved for an inflater (32 KiB window, tables, buffers).
pub const INFLATE_MEMORY: u64 = 64 << 10;
/// Memory reserved for the x86 filter's decoder (its 64 KiB buffer).
pub const BCJ_MEMORY: u64 = 80 << 10;
/// Memory reserved for a zstd decoder besides its window and basis (context, input buffer,
/// two blocks of slack).
const ZSTD_DECODER_OVERHEAD: u64 = 512 << 10;

/// Counters for the report.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Recipes started, by type id.
    pub recipes_run: [u64; RecipeType::COUNT],
    /// Bytes written to spill files.
    pub spilled_bytes: u64,
    /// Items spilled.
    pub spilled_items: u64,
}

pub struct Kitchen<'a> {
    plan: &'a Plan<'a>,
    pantry: &'a [SharedAt],
    /// Results whose recipe is not run (see [`super::KnownResult`]).
    known_results: &'a HashMap<Item, SharedAt>,
    /// By item id.
    random_capable: Vec<bool>,
    /// Items opened for random access (by a slice, bspatch or zstd basis), kept for reuse:
    /// spilled items must not be spilled twice, and shared wholes are opened once.
    random_cache: RefCell<HashMap<Item, SharedAt>>,
    /// Spilled items in the order they were made, for [`Kitchen::first_wrong_spill`].
    spills: RefCell<Vec<(Item, SharedAt)>>,
    temp: &'a TempFiles,
    budget: Rc<Budget>,
    stats: RefCell<Stats>,
}

/// Carries an [`ApplyError`] through `io::Read` and back.
pub fn to_io(e: ApplyError) -> io::Error {
    io::Error::other(e)
}

/// Recovers an [`ApplyError`] carried through `io::Error`, or wraps the I/O error with what
/// was being made.
pub fn from_io(e: io::Error, making: Item, recipe: Option<RecipeType>) -> ApplyError {
    match e.downcast::<ApplyError>() {
        Ok(inner) => inner,
        Err(e) => ApplyError::Produce {
            item: making,
            recipe,
            source: e,
        },
    }
}

/// Turns errors of `inner` into [`ApplyError::Produce`] for the item it makes, unless they
/// already are apply errors (the innermost failing recipe is the one reported).
struct Labelled<R> {
    inner: R,
    item: Item,
    recipe: RecipeType,
}

impl<R: Read> Read for Labelled<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .read(buf)
            .map_err(|e| to_io(from_io(e, self.item, Some(self.recipe))))
    }
}

/// Reads the parts of a chain one after the other, opening each when it is reached.
struct ChainReader<'k, 'a> {
    kitchen: &'k Kitchen<'a>,
    parts: &'a [Item],
    next: usize,
    current: Option<Box<dyn Read + 'k>>,
}

impl Read for ChainReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(r) = self.current.as_mut() {
                let n = r.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.current = None;
            }
            let Some(part) = self.parts.get(self.next) else {
                return Ok(0);
            };
            self.next += 1;
            let stream = self.kitchen.stream(part).map_err(to_io)?;
            self.current = Some(Box::new(ExactLen::new(stream, part.length())));
        }
    }
}

/// Which needed items can be read in place at any offset (by item id): pantry entries, zeros,
/// slices (of anything: a sequential whole is spilled first) and chains of such items.
pub fn random_capability(plan: &Plan) -> Vec<bool> {
    // Ingredients come before results in `order`, so one pass decides every item.
    let mut capable = vec![false; plan.ids.len()];
    for &id in &plan.order {
        let yes = match plan.step_of(id) {
            Some(Step::Pantry(_)) => true,
            Some(Step::Recipe(Recipe::AllZeros)) | Some(Step::Recipe(Recipe::Slice { .. })) => true,
            Some(Step::Recipe(Recipe::Chain(parts))) => parts.iter().all(|p| {
                plan.ids
                    .get(p)
                    .is_some_and(|i| capable.get(i as usize).copied().unwrap_or(false))
            }),
            _ => false,
        };
        if let Some(slot) = capable.get_mut(id as usize) {
            *slot = yes;
        }
    }
    capable
}

fn is_capable(plan: &Plan, capable: &[bool], item: &Item) -> bool {
    plan.ids
        .get(item)
        .is_some_and(|i| capable.get(i as usize).copied().unwrap_or(false))
}

/// The items an apply will spill to temp files: sequential items that must be read at random
/// (wholes of slices, bspatch inputs, zstd bases).
pub fn spilled_items(plan: &Plan) -> Vec<Item> {
    let capable = random_capability(plan);
    let mut needs_random: Vec<Item> = Vec::new();
    for (_, step) in plan.needed() {
        match step {
            Step::Recipe(Recipe::Slice { whole, .. }) => needs_random.push(*whole),
            Step::Recipe(Recipe::BspatchDecompression { patch, old })
            | Step::Recipe(Recipe::ExeBspatch { patch, old }) => {
                needs_random.push(*patch);
                needs_random.push(*old);
            }
            Step::Recipe(Recipe::ZstdDecompression {
                basis: Some(basis), ..
            }) => needs_random.push(*basis),
            _ => {}
        }
    }
    let mut spilled: Vec<Item> = needs_random
        .into_iter()
        .filter(|i| !is_capable(plan, &capable, i))
        .collect();
    spilled.sort();
    spilled.dedup();
    spilled
}

impl<'a> Kitchen<'a> {
    pub fn new(
        plan: &'a Plan<'a>,
        pantry: &'a [SharedAt],
        known_results: &'a HashMap<Item, SharedAt>,
        temp: &'a TempFiles,
        budget: Rc<Budget>,
    ) -> Kitchen<'a> {
        let random_capable = random_capability(plan);
        Kitchen {
            plan,
            pantry,
            known_results,
            random_capable,
            random_cache: RefCell::new(HashMap::new()),
            spills: RefCell::new(Vec::new()),
            temp,
            budget,
            stats: RefCell::new(Stats::default()),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats.borrow().clone()
    }

    fn step(&self, item: &Item) -> Result<Step<'a>, ApplyError> {
        self.plan
            .step(item)
            .ok_or_else(|| ApplyError::Internal(format!("no plan step for {item}")))
    }

    fn capable(&self, item: &Item) -> bool {
        is_capable(self.plan, &self.random_capable, item)
    }

    fn count(&self, recipe: &Recipe) {
        self.count_type(recipe.recipe_type());
    }

    fn count_type(&self, t: RecipeType) {
        let id = t.id() as usize;
        if let Some(c) = self.stats.borrow_mut().recipes_run.get_mut(id) {
            *c += 1;
        }
    }

    /// `item` as a random-access source (spilling it first if it is a stream), kept for reuse.
    pub fn random(&self, item: &Item) -> Result<SharedAt, ApplyError> {
        if let Some(r) = self.random_cache.borrow().get(item) {
            return Ok(Rc::clone(r));
        }
        let source = if self.capable(item) {
            self.build_random(item)?
        } else if let Some(known) = self.known_results.get(item) {
            // Already random-access: checked, not spilled.
            if let Step::Recipe(recipe) = self.step(item)? {
                self.check_ingredients(recipe)?;
            }
            Rc::clone(known)
        } else {
            self.spill(item)?
        };
        self.random_cache
            .borrow_mut()
            .insert(*item, Rc::clone(&source));
        Ok(source)
    }

    /// Builds the random-access view of a random-capable item: pantry entries as they are,
    /// zeros, slices of their (cached) whole, chains of their parts.
    fn build_random(&self, item: &Item) -> Result<SharedAt, ApplyError> {
        Ok(match self.step(item)? {
            Step::Pantry(n) => self
                .pantry
                .get(n)
                .cloned()
                .ok_or_else(|| ApplyError::Internal(format!("pantry entry {n} missing")))?,
            Step::Recipe(recipe) => {
                self.count(recipe);
                match recipe {
                    Recipe::AllZeros => Rc::new(ZerosAt { len: item.length() }),
                    Recipe::Slice { offset, whole } => {
                        let whole = self.random(whole)?;
                        Rc::new(RangeAt::new(whole, *offset, item.length()).map_err(|e| {
                            ApplyError::Produce {
                                item: *item,
                                recipe: Some(RecipeType::Slice),
                                source: e,
                            }
                        })?)
                    }
                    Recipe::Chain(parts) => {
                        // Nested chains go through the cache, so a shared sub-chain is built
                        // once (no blow-up on graphs that reuse items); leaves are cheap views
                        // and are not cached, so a chain of many pieces costs one view each.
                        let parts = parts
                            .iter()
                            .map(|p| match self.step(p)? {
                                Step::Recipe(Recipe::Chain(_)) => self.random(p),
                                _ => self.build_random(p),
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        Rc::new(ChainAt::new(parts))
                    }
                    other => {
                        return Err(ApplyError::Internal(format!(
                            "{} was taken for random access",
                            other.recipe_type()
                        )))
                    }
                }
            }
        })
    }

    /// Makes every ingredient of `recipe` and checks it against its hash (for a known result,
    /// whose recipe is not run).
    fn check_ingredients(&self, recipe: &Recipe) -> Result<(), ApplyError> {
        let mut ingredients = Vec::new();
        recipe.for_each_item(|i| ingredients.push(*i));
        for expected in ingredients {
            let unwritable = |e| from_io(e, expected, None);
            let actual = self.make_into(&expected, &mut io::sink(), &unwritable)?;
            if actual != expected {
                return Err(ApplyError::ItemMismatch { expected, actual });
            }
        }
        Ok(())
    }

    /// Streams `item` into `out`, hashing it on the way; returns the item of what was made.
    /// `write_err` names a failure to write.
    pub fn make_into(
        &self,
        item: &Item,
        out: &mut dyn Write,
        write_err: &dyn Fn(io::Error) -> ApplyError,
    ) -> Result<Item, ApplyError> {
        let mut hasher = ItemHasher::new();
        self.copy_into(item, out, write_err, Some(&mut hasher))?;
        Ok(hasher.finish())
    }

    /// Streams `item` into `out` (and `hasher`); returns the bytes written.
    fn copy_into(
        &self,
        item: &Item,
        out: &mut dyn Write,
        write_err: &dyn Fn(io::Error) -> ApplyError,
        mut hasher: Option<&mut ItemHasher>,
    ) -> Result<u64, ApplyError> {
        let mut input = ExactLen::new(self.stream(item)?, item.length());
        let mut buf = vec![0u8; IO_CHUNK];
        let mut written = 0u64;
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => return Ok(written),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(from_io(e, *item, None)),
            };
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&buf[..n]);
            }
            out.write_all(&buf[..n]).map_err(write_err)?;
            written += n as u64;
        }
    }

    /// `item` as a stream of exactly its length (checked by the consumer with `ExactLen`).
    pub fn stream<'k>(&'k self, item: &Item) -> Result<Box<dyn Read + 'k>, ApplyError> {
        if let Some(r) = self.random_cache.borrow().get(item) {
            return Ok(Box::new(SeqReader::new(Rc::clone(r))));
        }
        let step = self.step(item)?;
        // Streams of random-capable items are built on the fly and not cached, so a long
        // chain of small pieces costs memory for the current piece only. (Their wholes are
        // cached by `random`.)
        let chain_parts = match step {
            Step::Recipe(Recipe::Chain(parts)) => Some(parts),
            _ => None,
        };
        if self.capable(item) && chain_parts.is_none() {
            return Ok(Box::new(SeqReader::new(self.build_random(item)?)));
        }
        let Step::Recipe(recipe) = step else {
            return Err(ApplyError::Internal(format!(
                "pantry item {item} is not random-access"
            )));
        };
        if let Some(known) = self.known_results.get(item) {
            self.check_ingredients(recipe)?;
            return Ok(Box::new(SeqReader::new(Rc::clone(known))));
        }
        let len = item.length();
        let label = |inner: Box<dyn Read + 'k>| -> Box<dyn Read + 'k> {
            Box::new(Labelled {
                inner,
                item: *item,
                recipe: recipe.recipe_type(),
            })
        };
        let reader: Box<dyn Read + 'k> = match recipe {
            Recipe::Chain(parts) => {
                self.count(recipe);
                Box::new(ChainReader {
                    kitchen: self,
                    parts,
                    next: 0,
                    current: None,
                })
            }
            Recipe::BspatchDecompression { patch, old } => {
                let patch_at = self.random(patch)?;
                let old_at = self.random(old)?;
                let memory = self
                    .budget
                    .reserve(BSPATCH_MEMORY, &format!("bspatch making {item}"))?;
                self.count(recipe);
                let reader = BspatchReader::new(patch_at, old_at, Some(len)).map_err(|e| {
                    ApplyError::Produce {
                        item: *item,
                        recipe: Some(RecipeType::BspatchDecompression),
                        source: e.into(),
                    }
                })?;
                label(Box::new(WithReservation {
                    inner: ExactLen::new(reader, len),
                    _memory: memory,
                }))
            }
            Recipe::ExeBspatch { patch, old } => label(self.exe_bspatch(item, patch, old)?),
            Recipe::ZlibDecompression {
                container,
                compressed,
            } => {
                let memory = self
                    .budget
                    .reserve(INFLATE_MEMORY, &format!("zlib_decompression making {item}"))?;
                let input = ExactLen::new(self.stream(compressed)?, compressed.length());
                self.count(recipe);
                label(Box::new(WithReservation {
                    inner: ExactLen::new(codec::zlib::inflater(*container, input, false), len),
                    _memory: memory,
                }))
            }
            Recipe::ZlibCompression {
                container,
                level,
                uncompressed,
            } => {
                let memory = self
                    .budget
                    .reserve(DEFLATE_MEMORY, &format!("zlib_compression making {item}"))?;
                let input = ExactLen::new(self.stream(uncompressed)?, uncompressed.length());
                let params = DeflateParams {
                    container: *container,
                    level: *level,
                };
                let deflate =
                    DeflateReader::new(params, input).map_err(|e| ApplyError::Produce {
                        item: *item,
                        recipe: Some(RecipeType::ZlibCompression),
                        source: e,
                    })?;
                self.count(recipe);
                label(Box::new(WithReservation {
                    inner: ExactLen::new(deflate, len),
                    _memory: memory,
                }))
            }
            Recipe::GnuGzipCompression {
                level,
                uncompressed,
            } => {
                let memory = self.budget.reserve(
                    DEFLATE_MEMORY,
                    &format!("gnu_gzip_compression making {item}"),
                )?;
                let input = ExactLen::new(self.stream(uncompressed)?, uncompressed.length());
                let gzip =
                    DeflateReader::gnu_gzip(*level, input).map_err(|e| ApplyError::Produce {
                        item: *item,
                        recipe: Some(RecipeType::GnuGzipCompression),
                        source: e,
                    })?;
                self.count(recipe);
                label(Box::new(WithReservation {
                    inner: ExactLen::new(gzip, len),
                    _memory: memory,
                }))
            }
            Recipe::BcjX86Decode { filtered } => {
                let memory = self
                    .budget
                    .reserve(BCJ_MEMORY, &format!("bcj_x86_decode making {item}"))?;
                let input = ExactLen::new(self.stream(filtered)?, filtered.length());
                self.count(recipe);
                label(Box::new(WithReservation {
                    inner: ExactLen::new(codec::bcj::Decoder::new(input), len),
                    _memory: memory,
                }))
            }
            Recipe::ZstdDecompression { compressed, basis } => {
                label(self.zstd_decompression(item, recipe, compressed, basis.as_ref())?)
            }
            Recipe::ZstdCompression {
                params,
                uncompressed,
            } => {
                let memory = self.budget.reserve(
                    zstd_compression_memory(params.level, uncompressed.length()),
                    &format!("zstd_compression level {} making {item}", params.level),
                )?;
                let input = ExactLen::new(self.stream(uncompressed)?, uncompressed.length());
                let frame = codec::zstd::compressing_reader(*params, uncompressed.length(), input)
                    .map_err(|e| ApplyError::Produce {
                        item: *item,
                        recipe: Some(RecipeType::ZstdCompression),
                        source: e,
                    })?;
                self.count(recipe);
                // A compressor's output beyond the item's length is dropped, as ADU's applier
                // serves only `result.length` bytes of it.
                label(Box::new(WithReservation {
                    inner: ExactLen::new(frame, len),
                    _memory: memory,
                }))
            }
            Recipe::AllZeros | Recipe::Slice { .. } => {
                return Err(ApplyError::Internal(format!(
                    "{} of {item} is random-access but was not treated so",
                    recipe.recipe_type()
                )))
            }
        };
        Ok(reader)
    }

    /// An executable patch applied to `old`: its control triples are held in memory, so their
    /// count is reserved from the budget before they are read.
    fn exe_bspatch<'k>(
        &'k self,
        item: &Item,
        patch: &Item,
        old: &Item,
    ) -> Result<Box<dyn Read + 'k>, ApplyError> {
        use codec::exepatch::{ExePatchReader, Header};
        let produce = |e: codec::exepatch::ExePatchError| ApplyError::Produce {
            item: *item,
            recipe: Some(RecipeType::ExeBspatch),
            source: e.into(),
        };
        let patch_at = self.random(patch)?;
        let old_at = self.random(old)?;
        let controls = Header::control_count(&patch_at).map_err(produce)?;
        let memory = self.budget.reserve(
            ExePatchReader::<SharedAt, SharedAt>::memory(controls),
            &format!("exe_bspatch making {item} ({controls} control triples)"),
        )?;
        self.count_type(RecipeType::ExeBspatch);
        let reader =
            ExePatchReader::new(patch_at, old_at, item.length(), controls).map_err(produce)?;
        Ok(Box::new(WithReservation {
            inner: ExactLen::new(reader, item.length()),
            _memory: memory,
        }))
    }

    fn zstd_decompression<'k>(
        &'k self,
        item: &Item,
        recipe: &Recipe,
        compressed: &Item,
        basis: Option<&Item>,
    ) -> Result<Box<dyn Read + 'k>, ApplyError> {
        let mut input = ExactLen::new(self.stream(compressed)?, compressed.length());
        // Read the frame header first: the window decides the decoder's memory.
        let mut head = vec![0u8; zstd_frame::MAX_HEADER_LEN.min(compressed.length() as usize)];
        input
            .read_exact(&mut head)
            .map_err(|e| from_io(e, *compressed, None))?;
        let frame = zstd_frame::parse(&head).map_err(|e| ApplyError::Produce {
            item: *item,
            recipe: Some(RecipeType::ZstdDecompression),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })?;
        let window_log_max = if basis.is_some() {
            WINDOW_LOG_MAX_WITH_BASIS
        } else {
            WINDOW_LOG_MAX_PLAIN
        };
        // zstd's streaming decoder buffers min(window, content) bytes plus a block or two.
        let window = frame
            .content_size
            .map_or(frame.window_size, |c| c.min(frame.window_size));
        let basis_len = basis.map_or(0, |b| b.length());
        let needed = window
            .saturating_add(basis_len)
            .saturating_add(ZSTD_DECODER_OVERHEAD);
        let memory = self.budget.reserve(
            needed,
            &format!(
                "zstd_decompression making {item} (window {window} bytes, basis {basis_len} bytes)"
            ),
        )?;
        let basis_bytes = match basis {
            None => None,
            Some(b) => {
                let source = self.random(b)?;
                let mut bytes = vec![0u8; b.length() as usize];
                source
                    .read_exact_at(0, &mut bytes)
                    .map_err(|e| from_io(e, *b, None))?;
                Some(bytes)
            }
        };
        self.count(recipe);
        let input = io::Cursor::new(head).chain(input);
        // The reservation covers the first frame. A later frame may not need a larger window:
        // zstd would size its buffers to that frame's header, past the budget.
        let mut frames = 0u64;
        let gate = move |head: &[u8]| -> io::Result<u32> {
            frames += 1;
            if frames == 1 {
                return Ok(window_log_max);
            }
            let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidData, msg);
            match zstd_frame::parse(head) {
                // Skippable frames carry no data to decode.
                Err(zstd_frame::FrameError::Skippable) => Ok(window_log_max),
                Err(e) => Err(invalid(format!("zstd frame {frames}: {e}"))),
                Ok(next) => {
                    let needs = next
                        .content_size
                        .map_or(next.window_size, |c| c.min(next.window_size));
                    if needs > window {
                        Err(invalid(format!(
                            "zstd frame {frames} needs a {needs}-byte window, more than the \
                             {window} bytes reserved for the first frame"
                        )))
                    } else {
                        Ok(window_log_max)
                    }
                }
            }
        };
        let decoder = PrefixDecoder::new(input, basis_bytes, gate, memory).map_err(|e| {
            ApplyError::Produce {
                item: *item,
                recipe: Some(RecipeType::ZstdDecompression),
                source: e,
            }
        })?;
        Ok(Box::new(ExactLen::new(decoder, item.length())))
    }

    /// Writes `item` to a spill file and returns it as a random-access source. The spill is
    /// not hashed: the target's hash check at the end covers every intermediate, and only when
    /// that check or a recipe fails are the spills checked ([`Kitchen::first_wrong_spill`]) to
    /// name the culprit.
    fn spill(&self, item: &Item) -> Result<SharedAt, ApplyError> {
        let spill = self.temp.spill().map_err(|source| ApplyError::TempFile {
            dir: self.temp.dir().display().to_string(),
            source,
        })?;
        let write_err = |source| ApplyError::TempFile {
            dir: self.temp.dir().display().to_string(),
            source,
        };
        // Not hashed on the way: the target's hash covers every spill (see the module doc).
        let written = self.copy_into(item, &mut &spill.file, &write_err, None)?;
        {
            let mut stats = self.stats.borrow_mut();
            stats.spilled_bytes += written;
            stats.spilled_items += 1;
        }
        let file = spill.file.try_clone().map_err(write_err)?;
        let at = FileAt::from_file(file).map_err(write_err)?;
        // Keep the SpillFile alive as long as the source (it removes the file on non-Unix).
        let source: SharedAt = Rc::new(SpillSource { at, _spill: spill });
        self.spills.borrow_mut().push((*item, Rc::clone(&source)));
        Ok(source)
    }

    /// After a wrong result: the first spilled intermediate (in the order they were made) whose
    /// content is not its item, with what it holds instead. Hashing every spill on the way would
    /// cost a pass over each (the decompressed source image is the largest); the final hash
    /// check finds every error, and this names where it came from.
    pub fn first_wrong_spill(&self) -> Option<(Item, Item)> {
        self.spills.borrow().iter().find_map(|(item, at)| {
            let actual = crate::reader::hash_range(&**at, 0, at.size()).ok()?;
            (actual != *item).then_some((*item, actual))
        })
    }
}

/// A spilled item: the file read in place, and its owner.
struct SpillSource {
    at: FileAt,
    _spill: super::temp::SpillFile,
}

impl codec::bsdiff::ReadAt for SpillSource {
    fn size(&self) -> u64 {
        self.at.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.at.read_at(offset, buf)
    }
}

/// A reader that holds a memory reservation for as long as it lives.
struct WithReservation<R> {
    inner: R,
    _memory: super::budget::Reservation,
}

impl<R: Read> Read for WithReservation<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Conservative estimate of zstd's compression memory at `level` for `content` bytes: the
/// window, hash and chain tables of zstd's default parameters for large inputs, shrunk for small
/// inputs as zstd shrinks them.
pub fn zstd_compression_memory(level: i32, content: u64) -> u64 {
    // (window log, table bytes) for levels 1..=22 on inputs > 256 KiB, rounded up.
    let (window_log, tables): (u32, u64) = match level {
        ..=2 => (20, 3 << 20),
        3..=4 => (21, 6 << 20),
        5..=9 => (22, 24 << 20),
        10..=15 => (23, 48 << 20),
        16..=19 => (23, 96 << 20),
        _ => (27, 160 << 20),
    };
    let window = (1u64 << window_log).min(content.max(1 << 10));
    let tables = tables.min(content.saturating_mul(16).max(1 << 20));
    window + tables + (1 << 20)
}
