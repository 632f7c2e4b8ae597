//! The recipe types (ADU's eight, diffgen's `gnu_gzip_compression`, `bcj_x86_decode` and
//! `exe_bspatch`),
//! their number and item ingredients, and the rules every recipe must satisfy before it can be written or applied.
//!
//! On disk a recipe is (type id, numbers, items). Here it is a typed [`Recipe`], so a recipe that
//! parses is well-formed: the ingredient counts and number values were checked on the way in
//! ([`Recipe::from_raw`]) and are produced exactly on the way out ([`Recipe::numbers`],
//! [`Recipe::items`]).

use std::fmt;

use codec::zlib::Container;
use codec::zstd::ZstdParams;

use crate::item::Item;

/// Recipe type ids. They are fixed: ADU's reader indexes its built-in table with the id and
/// ignores the name table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecipeType {
    AllZeros = 0,
    Chain = 1,
    Slice = 2,
    BspatchDecompression = 3,
    ZlibCompression = 4,
    ZlibDecompression = 5,
    /// diffgen's extension: ADU's applier rejects it (error 31702).
    ZstdCompression = 6,
    ZstdDecompression = 7,
    /// diffgen's extension: a gzip member as GNU gzip writes it. ADU's reader does not know the
    /// id (it fails to load the delta).
    GnuGzipCompression = 8,
    /// diffgen's extension: the x86 branch filter undone (see `codec::bcj`).
    BcjX86Decode = 9,
    /// diffgen's extension: an executable patch (`codec::exepatch`) applied to `old`.
    ExeBspatch = 10,
}

impl RecipeType {
    /// Number of recipe types.
    pub const COUNT: usize = 11;

    /// All types in id order (the writer's name table goes up to the highest id a delta uses,
    /// at least ADU's eight).
    pub const ALL: [RecipeType; RecipeType::COUNT] = [
        RecipeType::AllZeros,
        RecipeType::Chain,
        RecipeType::Slice,
        RecipeType::BspatchDecompression,
        RecipeType::ZlibCompression,
        RecipeType::ZlibDecompression,
        RecipeType::ZstdCompression,
        RecipeType::ZstdDecompression,
        RecipeType::GnuGzipCompression,
        RecipeType::BcjX86Decode,
        RecipeType::ExeBspatch,
    ];

    /// Whether ADU 3.0's stock applier loads and applies this type: ids 0–5 and 7 (an
    /// allow-list, so a new type is an extension until shown otherwise). Checked with ADU's
    /// `applydiff`: id 6 fails to load (error 31702), ids 8 and 9 crash its reader.
    pub fn is_adu_stock(self) -> bool {
        matches!(
            self,
            RecipeType::AllZeros
                | RecipeType::Chain
                | RecipeType::Slice
                | RecipeType::BspatchDecompression
                | RecipeType::ZlibCompression
                | RecipeType::ZlibDecompression
                | RecipeType::ZstdDecompression
        )
    }

    /// Whether ADU's stock applier lacks this type (the delta needs diffgen's applier).
    pub fn is_extension(self) -> bool {
        !self.is_adu_stock()
    }

    pub fn id(self) -> u32 {
        self as u32
    }

    pub fn from_id(id: u32) -> Option<RecipeType> {
        RecipeType::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// The name in ADU's table (also the first key of the reference writer's recipe ordering).
    pub fn name(self) -> &'static str {
        match self {
            RecipeType::AllZeros => "all_zeros",
            RecipeType::Chain => "chain",
            RecipeType::Slice => "slice",
            RecipeType::BspatchDecompression => "bspatch_decompression",
            RecipeType::ZlibCompression => "zlib_compression",
            RecipeType::ZlibDecompression => "zlib_decompression",
            RecipeType::ZstdCompression => "zstd_compression",
            RecipeType::ZstdDecompression => "zstd_decompression",
            RecipeType::GnuGzipCompression => "gnu_gzip_compression",
            RecipeType::BcjX86Decode => "bcj_x86_decode",
            RecipeType::ExeBspatch => "exe_bspatch",
        }
    }
}

impl fmt::Display for RecipeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (id {})", self.name(), self.id())
    }
}

/// A zlib level as the `zlib_compression` recipe stores it: 0..=9, or `0xFFFFFFFF` for zlib's
/// default (-1).
pub const ZLIB_DEFAULT_LEVEL_NUMBER: u64 = 0xFFFF_FFFF;

/// One way to produce a result item. The result itself is the enclosing set's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipe {
    /// `result.length` zero bytes.
    AllZeros,
    /// The parts, concatenated; their lengths add up to the result's.
    Chain(Vec<Item>),
    /// Bytes `[offset, offset + result.length)` of `whole`.
    Slice { offset: u64, whole: Item },
    /// A BSDIFF40 `patch` applied to `old` (ingredient order: patch first).
    BspatchDecompression { patch: Item, old: Item },
    /// Deflate of `uncompressed` with memLevel 9; `level` is -1 or 0..=9.
    ZlibCompression {
        container: Container,
        level: i32,
        uncompressed: Item,
    },
    /// Inflate of `compressed` (the first gzip member only).
    ZlibDecompression {
        container: Container,
        compressed: Item,
    },
    /// diffgen's extension: one zstd frame of `uncompressed`, made with `params` and the
    /// content size recorded. Numbers: `[level, checksum (0/1), zstd version number]`.
    ZstdCompression {
        params: ZstdParams,
        uncompressed: Item,
    },
    /// zstd decoding of `compressed`, with `basis` as raw prefix when given (delta first).
    ZstdDecompression {
        compressed: Item,
        basis: Option<Item>,
    },
    /// diffgen's extension: `uncompressed` as one gzip member exactly as `gzip -n -<level>`
    /// (GNU gzip) writes it, which zlib cannot re-create. Numbers: `[level]`, 4..=9.
    GnuGzipCompression { level: u32, uncompressed: Item },
    /// diffgen's extension: `filtered` with the x86 branch filter undone (`codec::bcj`); the
    /// result has the same length. No numbers.
    BcjX86Decode { filtered: Item },
    /// diffgen's extension: an executable patch (`DGEXEP02`, uncompressed) applied to `old`
    /// (ingredient order: patch first, as `bspatch_decompression`). No numbers.
    ExeBspatch { patch: Item, old: Item },
}

/// Why a raw recipe is not acceptable. The reader adds the byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipeError {
    #[error("{recipe} keeps the length, but its ingredient has {ingredient} bytes and its result {result}")]
    LengthChange {
        recipe: RecipeType,
        ingredient: u64,
        result: u64,
    },
    #[error("unknown recipe type id {0} (known ids are 0..=10)")]
    UnknownType(u32),
    #[error("{recipe} needs {expected} number ingredient(s), found {found}")]
    NumberCount {
        recipe: RecipeType,
        expected: &'static str,
        found: usize,
    },
    #[error("{recipe} needs {expected} item ingredient(s), found {found}")]
    ItemCount {
        recipe: RecipeType,
        expected: &'static str,
        found: usize,
    },
    #[error("{recipe}: number ingredient {name} = {value} is invalid ({why})")]
    BadNumber {
        recipe: RecipeType,
        name: &'static str,
        value: u64,
        why: &'static str,
    },
    #[error("{recipe} lists its own result {result} as an ingredient (ADU error 33001)")]
    SelfReferential { recipe: RecipeType, result: Item },
    #[error("{recipe} has a zero-length ingredient; empty items can never be resolved")]
    EmptyIngredient { recipe: RecipeType },
    #[error("{recipe} produces an empty result; empty items can never be resolved")]
    EmptyResult { recipe: RecipeType },
    #[error("slice [{offset}, +{length}) lies outside its {whole_length}-byte ingredient")]
    SliceOutOfRange {
        offset: u64,
        length: u64,
        whole_length: u64,
    },
    #[error("chain parts add up to {sum} bytes, the result has {result} (ADU error 31701)")]
    ChainLength { sum: u128, result: u64 },
}

impl Recipe {
    pub fn recipe_type(&self) -> RecipeType {
        match self {
            Recipe::AllZeros => RecipeType::AllZeros,
            Recipe::Chain(_) => RecipeType::Chain,
            Recipe::Slice { .. } => RecipeType::Slice,
            Recipe::BspatchDecompression { .. } => RecipeType::BspatchDecompression,
            Recipe::ZlibCompression { .. } => RecipeType::ZlibCompression,
            Recipe::ZlibDecompression { .. } => RecipeType::ZlibDecompression,
            Recipe::ZstdCompression { .. } => RecipeType::ZstdCompression,
            Recipe::ZstdDecompression { .. } => RecipeType::ZstdDecompression,
            Recipe::GnuGzipCompression { .. } => RecipeType::GnuGzipCompression,
            Recipe::BcjX86Decode { .. } => RecipeType::BcjX86Decode,
            Recipe::ExeBspatch { .. } => RecipeType::ExeBspatch,
        }
    }

    /// The number ingredients as written.
    pub fn numbers(&self) -> Vec<u64> {
        match self {
            Recipe::AllZeros
            | Recipe::Chain(_)
            | Recipe::BspatchDecompression { .. }
            | Recipe::ZstdDecompression { .. }
            | Recipe::BcjX86Decode { .. }
            | Recipe::ExeBspatch { .. } => Vec::new(),
            Recipe::Slice { offset, .. } => vec![*offset],
            Recipe::ZlibCompression {
                container, level, ..
            } => {
                let level = if *level < 0 {
                    ZLIB_DEFAULT_LEVEL_NUMBER
                } else {
                    *level as u64
                };
                vec![u64::from(container.init_type()), level]
            }
            Recipe::ZlibDecompression { container, .. } => vec![u64::from(container.init_type())],
            Recipe::ZstdCompression { params, .. } => vec![
                params.level as u64,
                u64::from(params.checksum),
                u64::from(params.version),
            ],
            Recipe::GnuGzipCompression { level, .. } => vec![u64::from(*level)],
        }
    }

    /// The item ingredients as written, in order.
    pub fn items(&self) -> Vec<Item> {
        match self {
            Recipe::AllZeros => Vec::new(),
            Recipe::Chain(parts) => parts.clone(),
            Recipe::Slice { whole, .. } => vec![*whole],
            Recipe::BspatchDecompression { patch, old } | Recipe::ExeBspatch { patch, old } => {
                vec![*patch, *old]
            }
            Recipe::ZlibCompression { uncompressed, .. }
            | Recipe::ZstdCompression { uncompressed, .. }
            | Recipe::GnuGzipCompression { uncompressed, .. } => vec![*uncompressed],
            Recipe::ZlibDecompression { compressed, .. } => vec![*compressed],
            Recipe::BcjX86Decode { filtered } => vec![*filtered],
            Recipe::ZstdDecompression { compressed, basis } => {
                let mut v = vec![*compressed];
                v.extend(basis);
                v
            }
        }
    }

    /// Visits the item ingredients without allocating.
    pub fn for_each_item(&self, mut f: impl FnMut(&Item)) {
        match self {
            Recipe::AllZeros => {}
            Recipe::Chain(parts) => parts.iter().for_each(f),
            Recipe::Slice { whole, .. } => f(whole),
            Recipe::BspatchDecompression { patch, old } | Recipe::ExeBspatch { patch, old } => {
                f(patch);
                f(old);
            }
            Recipe::ZlibCompression { uncompressed, .. }
            | Recipe::ZstdCompression { uncompressed, .. }
            | Recipe::GnuGzipCompression { uncompressed, .. } => f(uncompressed),
            Recipe::ZlibDecompression { compressed, .. } => f(compressed),
            Recipe::BcjX86Decode { filtered } => f(filtered),
            Recipe::ZstdDecompression { compressed, basis } => {
                f(compressed);
                if let Some(b) = basis {
                    f(b);
                }
            }
        }
    }

    /// Builds a typed recipe from its on-disk form, checking the counts and number values the
    /// reference applier checks at load time (and a few it only trips over later). Extra numbers
    /// beyond those a type uses are ignored, as ADU does.
    pub fn from_raw(type_id: u32, numbers: &[u64], items: &[Item]) -> Result<Recipe, RecipeError> {
        let t = RecipeType::from_id(type_id).ok_or(RecipeError::UnknownType(type_id))?;
        let need_numbers = |n: usize, expected: &'static str| {
            if numbers.len() < n {
                Err(RecipeError::NumberCount {
                    recipe: t,
                    expected,
                    found: numbers.len(),
                })
            } else {
                Ok(())
            }
        };
        let need_items = |ok: bool, expected: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(RecipeError::ItemCount {
                    recipe: t,
                    expected,
                    found: items.len(),
                })
            }
        };
        let container = |value: u64| {
            Container::from_init_type(value).ok_or(RecipeError::BadNumber {
                recipe: t,
                name: "init_type",
                value,
                why: "must be 0 (raw), 1 (gzip) or 2 (zlib)",
            })
        };
        Ok(match t {
            RecipeType::AllZeros => Recipe::AllZeros,
            RecipeType::Chain => Recipe::Chain(items.to_vec()),
            RecipeType::Slice => {
                need_numbers(1, "exactly 1 (offset)")?;
                need_items(items.len() == 1, "exactly 1 (whole)")?;
                Recipe::Slice {
                    offset: numbers[0],
                    whole: items[0],
                }
            }
            RecipeType::BspatchDecompression => {
                need_items(items.len() == 2, "exactly 2 (patch, old)")?;
                Recipe::BspatchDecompression {
                    patch: items[0],
                    old: items[1],
                }
            }
            RecipeType::ZlibCompression => {
                need_numbers(2, "exactly 2 (init_type, level)")?;
                need_items(items.len() == 1, "exactly 1 (uncompressed)")?;
                let level = match numbers[1] {
                    ZLIB_DEFAULT_LEVEL_NUMBER => -1,
                    n @ 0..=9 => n as i32,
                    other => {
                        return Err(RecipeError::BadNumber {
                            recipe: t,
                            name: "level",
                            value: other,
                            why: "must be 0..=9 or 0xFFFFFFFF (ADU error 33000)",
                        })
                    }
                };
                Recipe::ZlibCompression {
                    container: container(numbers[0])?,
                    level,
                    uncompressed: items[0],
                }
            }
            RecipeType::ZlibDecompression => {
                need_numbers(1, "exactly 1 (init_type)")?;
                need_items(items.len() == 1, "exactly 1 (compressed)")?;
                Recipe::ZlibDecompression {
                    container: container(numbers[0])?,
                    compressed: items[0],
                }
            }
            RecipeType::ZstdCompression => {
                need_numbers(3, "exactly 3 (level, checksum, zstd version number)")?;
                need_items(items.len() == 1, "exactly 1 (uncompressed)")?;
                let level = match numbers[0] {
                    n @ 1..=22 => n as i32,
                    other => {
                        return Err(RecipeError::BadNumber {
                            recipe: t,
                            name: "level",
                            value: other,
                            why: "must be 1..=22",
                        })
                    }
                };
                let checksum = match numbers[1] {
                    0 => false,
                    1 => true,
                    other => {
                        return Err(RecipeError::BadNumber {
                            recipe: t,
                            name: "checksum",
                            value: other,
                            why: "must be 0 or 1",
                        })
                    }
                };
                let version = u32::try_from(numbers[2])
                    .ok()
                    .filter(|v| (10000..1_000_000).contains(v))
                    .ok_or(RecipeError::BadNumber {
                        recipe: t,
                        name: "zstd version",
                        value: numbers[2],
                        why: "must be a zstd version number such as 10507 for 1.5.7",
                    })?;
                Recipe::ZstdCompression {
                    params: ZstdParams {
                        level,
                        checksum,
                        version,
                    },
                    uncompressed: items[0],
                }
            }
            RecipeType::ZstdDecompression => {
                need_items(
                    items.len() == 1 || items.len() == 2,
                    "1 (compressed) or 2 (compressed, basis)",
                )?;
                Recipe::ZstdDecompression {
                    compressed: items[0],
                    basis: items.get(1).copied(),
                }
            }
            RecipeType::GnuGzipCompression => {
                need_numbers(1, "exactly 1 (level)")?;
                need_items(items.len() == 1, "exactly 1 (uncompressed)")?;
                let level = u32::try_from(numbers[0])
                    .ok()
                    .filter(|&l| codec::gnu_gzip::supports_level(l))
                    .ok_or(RecipeError::BadNumber {
                        recipe: t,
                        name: "level",
                        value: numbers[0],
                        why: "must be 4..=9 (GNU gzip's lazy-matching levels)",
                    })?;
                Recipe::GnuGzipCompression {
                    level,
                    uncompressed: items[0],
                }
            }
            RecipeType::BcjX86Decode => {
                need_items(items.len() == 1, "exactly 1 (filtered)")?;
                Recipe::BcjX86Decode { filtered: items[0] }
            }
            RecipeType::ExeBspatch => {
                need_items(items.len() == 2, "exactly 2 (patch, old)")?;
                Recipe::ExeBspatch {
                    patch: items[0],
                    old: items[1],
                }
            }
        })
    }

    /// Checks the rules that involve the result: no self reference (ADU 33001), no empty
    /// ingredients or result, slices inside their ingredient, chains that add up.
    pub fn check_against(&self, result: &Item) -> Result<(), RecipeError> {
        let t = self.recipe_type();
        if result.is_empty() {
            return Err(RecipeError::EmptyResult { recipe: t });
        }
        let mut problem = None;
        self.for_each_item(|item| {
            if problem.is_some() {
                return;
            }
            if item == result {
                problem = Some(RecipeError::SelfReferential {
                    recipe: t,
                    result: *result,
                });
            } else if item.is_empty() {
                problem = Some(RecipeError::EmptyIngredient { recipe: t });
            }
        });
        if let Some(p) = problem {
            return Err(p);
        }
        match self {
            Recipe::Slice { offset, whole }
                if offset
                    .checked_add(result.length())
                    .is_none_or(|end| end > whole.length()) =>
            {
                Err(RecipeError::SliceOutOfRange {
                    offset: *offset,
                    length: result.length(),
                    whole_length: whole.length(),
                })
            }
            Recipe::BcjX86Decode { filtered } if filtered.length() != result.length() => {
                Err(RecipeError::LengthChange {
                    recipe: t,
                    ingredient: filtered.length(),
                    result: result.length(),
                })
            }
            Recipe::Chain(parts) => {
                let sum: u128 = parts.iter().map(|p| u128::from(p.length())).sum();
                if sum == u128::from(result.length()) {
                    Ok(())
                } else {
                    Err(RecipeError::ChainLength {
                        sum,
                        result: result.length(),
                    })
                }
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u8) -> Item {
        Item::of_bytes(&vec![n; usize::from(n) + 1])
    }

    #[test]
    fn adu_stock_types_are_ids_0_to_5_and_7() {
        let stock: Vec<u32> = RecipeType::ALL
            .iter()
            .filter(|t| t.is_adu_stock())
            .map(|t| t.id())
            .collect();
        assert_eq!(stock, [0, 1, 2, 3, 4, 5, 7]);
    }

    #[test]
    fn raw_form_round_trips_for_every_type() {
        let recipes = [
            Recipe::AllZeros,
            Recipe::Chain(vec![item(1), item(2)]),
            Recipe::Slice {
                offset: 7,
                whole: item(3),
            },
            Recipe::BspatchDecompression {
                patch: item(1),
                old: item(2),
            },
            Recipe::ZlibCompression {
                container: Container::Gzip,
                level: 9,
                uncompressed: item(4),
            },
            Recipe::ZlibCompression {
                container: Container::Raw,
                level: -1,
                uncompressed: item(4),
            },
            Recipe::ZlibDecompression {
                container: Container::Zlib,
                compressed: item(5),
            },
            Recipe::ZstdCompression {
                params: ZstdParams {
                    level: 19,
                    checksum: true,
                    version: 10507,
                },
                uncompressed: item(6),
            },
            Recipe::ZstdDecompression {
                compressed: item(7),
                basis: Some(item(8)),
            },
            Recipe::ZstdDecompression {
                compressed: item(7),
                basis: None,
            },
            Recipe::GnuGzipCompression {
                level: 9,
                uncompressed: item(9),
            },
            Recipe::BcjX86Decode { filtered: item(10) },
            Recipe::ExeBspatch {
                patch: item(11),
                old: item(12),
            },
        ];
        for r in recipes {
            let back = Recipe::from_raw(r.recipe_type().id(), &r.numbers(), &r.items());
            assert_eq!(back, Ok(r));
        }
    }

    #[test]
    fn counts_and_numbers_are_checked() {
        let i = item(1);
        assert_eq!(
            Recipe::from_raw(11, &[], &[]),
            Err(RecipeError::UnknownType(11))
        );
        for level in [0, 3, 10, 1 << 32] {
            assert!(matches!(
                Recipe::from_raw(8, &[level], &[i]),
                Err(RecipeError::BadNumber { name: "level", .. })
            ));
        }
        assert!(matches!(
            Recipe::from_raw(2, &[], &[i]),
            Err(RecipeError::NumberCount { .. })
        ));
        assert!(matches!(
            Recipe::from_raw(3, &[], &[i]),
            Err(RecipeError::ItemCount { .. })
        ));
        assert!(matches!(
            Recipe::from_raw(4, &[1, 10], &[i]),
            Err(RecipeError::BadNumber { name: "level", .. })
        ));
        assert!(matches!(
            Recipe::from_raw(5, &[3], &[i]),
            Err(RecipeError::BadNumber { .. })
        ));
        // ADU's id-6 recipe (no numbers) is refused with a reason.
        assert!(matches!(
            Recipe::from_raw(6, &[], &[i]),
            Err(RecipeError::NumberCount { .. })
        ));
        assert!(matches!(
            Recipe::from_raw(7, &[], &[i, i, i]),
            Err(RecipeError::ItemCount { .. })
        ));
        // Extra numbers are ignored, as ADU does.
        assert_eq!(
            Recipe::from_raw(5, &[1, 99], &[i]),
            Ok(Recipe::ZlibDecompression {
                container: Container::Gzip,
                compressed: i
            })
        );
    }

    #[test]
    fn result_rules() {
        let whole = item(9); // 10 bytes
        let slice = |offset| Recipe::Slice { offset, whole };
        let five = Item::of_bytes(b"12345");
        assert!(slice(5).check_against(&five).is_ok());
        assert!(slice(6).check_against(&five).is_err());
        assert!(slice(u64::MAX).check_against(&five).is_err());
        assert!(matches!(
            slice(0).check_against(&whole),
            Err(RecipeError::SelfReferential { .. })
        ));
        assert!(matches!(
            Recipe::Chain(vec![five, Item::EMPTY]).check_against(&whole),
            Err(RecipeError::EmptyIngredient { .. })
        ));
        assert!(matches!(
            Recipe::Chain(vec![five, five]).check_against(&whole),
            Ok(())
        ));
        assert!(Recipe::AllZeros.check_against(&Item::EMPTY).is_err());
    }
}
