//! Error codes the library reports through `adu_diff_apply_get_error_code`.
//!
//! ADU's agent turns the code into the update's extended result code
//! (`MAKE_DELTA_PROCESSOR_EXTENDEDRESULTCODE`, 20 bits), which operators see in the portal. So
//! where ADU's own delta processor (Azure/iot-hub-device-update-delta 3.0,
//! `src/native/errors/error_codes.h`) has a code for the same failure, that code is used; the
//! failures ADU has no code for get diffgen's codes, 50001 and up (ADU's go up to 40004).
//! The table is in docs/device.md.

use delta::apply::ApplyError;
use delta::recipe::RecipeType;
use delta::{ReadError, RecipeError};

// ADU's codes (error_codes.h of ADU 3.0).
pub const IO_READER_READ_FAILURE: i32 = 20000;
pub const IO_ZLIB_INFLATE_FAILED: i32 = 20104;
pub const IO_ZLIB_DEFLATE_FAILED: i32 = 20110;
pub const IO_ZSTD_DECOMPRESS_FAILED: i32 = 20201;
pub const IO_ZSTD_COMPRESS_FAILED: i32 = 20205;
pub const IO_FILE_READER_FAILED_OPEN: i32 = 20300;
pub const IO_TEMP_FILE_FAILED_OPEN: i32 = 20301;
pub const IO_FILE_WRITER_FAILED_OPEN: i32 = 20302;
pub const DIFF_MAGIC_HEADER_WRONG: i32 = 30000;
pub const DIFF_VERSION_WRONG: i32 = 30001;
pub const DIFF_READ_SIZE_MISMATCH: i32 = 30002;
pub const DIFF_BAD_HASH_TYPE: i32 = 30003;
pub const DIFF_VERIFY_HASH_FAILURE: i32 = 30009;
pub const DIFF_INVALID_RECIPE_TYPE: i32 = 30010;
pub const DIFF_RECIPE_INVALID_PARAMETER_COUNT: i32 = 30104;
pub const DIFF_RECIPE_PARAMETER_OUT_OF_BOUNDS: i32 = 30107;
pub const DIFF_REGION_OFFSET_TOO_LARGE: i32 = 30300;
pub const DIFF_BSPATCH_FAILURE: i32 = 30900;
pub const RECIPE_CHAIN_LENGTH_MISMATCH: i32 = 31701;
/// `recipe_zstd_compression_not_supported`: ADU's answer to its own (legacy) form of recipe 6.
pub const RECIPE_ZSTD_COMPRESSION_NOT_SUPPORTED: i32 = 31702;
pub const RECIPE_SELF_REFERENTIAL: i32 = 33001;

// diffgen's codes.
/// The source given is not the one the delta was made for.
pub const SOURCE_MISMATCH: i32 = 50001;
/// The delta cannot make its target from what it carries and the source (a broken delta).
pub const UNRESOLVABLE: i32 = 50002;
/// The delta needs more decoder memory than the budget allows.
pub const MEMORY_BUDGET: i32 = 50003;
/// The target does not fit: larger than the free space of the output's filesystem.
pub const NO_SPACE: i32 = 50004;
/// The delta is structurally invalid in a way ADU has no code for (limits, empty items,
/// nesting or graph depth).
pub const INVALID_DELTA: i32 = 50005;
/// A known item could not be read.
pub const KNOWN_ITEM: i32 = 50006;
/// A bad argument: a null path, an unknown or closed session handle.
pub const INVALID_ARGUMENT: i32 = 50007;
/// The library's settings (environment or config file) are invalid.
pub const BAD_SETTINGS: i32 = 50008;
/// A bug in diffgen (a caught panic); nothing was written.
pub const INTERNAL: i32 = 50009;
/// A diffgen-only decoder (gnu_gzip_compression, bcj_x86_decode, exe_bspatch) failed.
pub const DIFFGEN_DECODER: i32 = 50010;

/// The code for an apply failure.
pub fn of(error: &ApplyError) -> i32 {
    match error {
        ApplyError::Delta(e) => of_read(e),
        ApplyError::Source { source, .. } => of_io(source),
        ApplyError::KnownItem { .. } => KNOWN_ITEM,
        ApplyError::EmptyTarget | ApplyError::TooDeep { .. } => INVALID_DELTA,
        ApplyError::TargetTooLarge { .. } | ApplyError::NoSpace { .. } => NO_SPACE,
        ApplyError::Unresolvable(u) if u.delta_source != u.given_source => SOURCE_MISMATCH,
        ApplyError::Unresolvable(_) => UNRESOLVABLE,
        ApplyError::MemoryLimit { .. } => MEMORY_BUDGET,
        ApplyError::Produce { recipe, .. } => recipe.map_or(IO_READER_READ_FAILURE, of_decoder),
        ApplyError::ItemMismatch { .. } | ApplyError::TargetMismatch { .. } => {
            DIFF_VERIFY_HASH_FAILURE
        }
        ApplyError::TempFile { .. } => IO_TEMP_FILE_FAILED_OPEN,
        ApplyError::Output { .. } => IO_FILE_WRITER_FAILED_OPEN,
        ApplyError::Internal(_) => INTERNAL,
    }
}

fn of_io(e: &std::io::Error) -> i32 {
    use std::io::ErrorKind::{NotFound, PermissionDenied};
    match e.kind() {
        NotFound | PermissionDenied => IO_FILE_READER_FAILED_OPEN,
        _ => IO_READER_READ_FAILURE,
    }
}

fn of_read(e: &ReadError) -> i32 {
    match e {
        ReadError::Open { source, .. } => of_io(source),
        ReadError::Truncated { .. } => DIFF_READ_SIZE_MISMATCH,
        ReadError::BadMagic { .. } => DIFF_MAGIC_HEADER_WRONG,
        ReadError::UnsupportedVersion { .. } => DIFF_VERSION_WRONG,
        ReadError::UnknownHashAlgorithm { .. } | ReadError::UnverifiableBlob { .. } => {
            DIFF_BAD_HASH_TYPE
        }
        ReadError::TooLarge { .. } | ReadError::NestingTooDeep { .. } => INVALID_DELTA,
        ReadError::Recipe { source, .. } => of_recipe(source),
        ReadError::BlobMismatch { .. } => DIFF_VERIFY_HASH_FAILURE,
        ReadError::Io { .. } => IO_READER_READ_FAILURE,
    }
}

fn of_recipe(e: &RecipeError) -> i32 {
    match e {
        RecipeError::UnknownType(_) => DIFF_INVALID_RECIPE_TYPE,
        // ADU's own recipe 6 (no numbers) is what ADU 3.0 answers 31702 to.
        RecipeError::NumberCount {
            recipe: RecipeType::ZstdCompression,
            ..
        } => RECIPE_ZSTD_COMPRESSION_NOT_SUPPORTED,
        RecipeError::NumberCount { .. } | RecipeError::ItemCount { .. } => {
            DIFF_RECIPE_INVALID_PARAMETER_COUNT
        }
        RecipeError::BadNumber { .. } => DIFF_RECIPE_PARAMETER_OUT_OF_BOUNDS,
        RecipeError::SliceOutOfRange { .. } => DIFF_REGION_OFFSET_TOO_LARGE,
        RecipeError::ChainLength { .. } => RECIPE_CHAIN_LENGTH_MISMATCH,
        RecipeError::SelfReferential { .. } => RECIPE_SELF_REFERENTIAL,
        RecipeError::LengthChange { .. }
        | RecipeError::EmptyIngredient { .. }
        | RecipeError::EmptyResult { .. } => INVALID_DELTA,
    }
}

fn of_decoder(recipe: RecipeType) -> i32 {
    match recipe {
        RecipeType::AllZeros | RecipeType::Chain | RecipeType::Slice => IO_READER_READ_FAILURE,
        RecipeType::BspatchDecompression => DIFF_BSPATCH_FAILURE,
        RecipeType::ZlibCompression => IO_ZLIB_DEFLATE_FAILED,
        RecipeType::ZlibDecompression => IO_ZLIB_INFLATE_FAILED,
        RecipeType::ZstdCompression => IO_ZSTD_COMPRESS_FAILED,
        RecipeType::ZstdDecompression => IO_ZSTD_DECOMPRESS_FAILED,
        RecipeType::GnuGzipCompression | RecipeType::BcjX86Decode | RecipeType::ExeBspatch => {
            DIFFGEN_DECODER
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_fit_adus_extended_result_code_and_are_distinct() {
        let ours = [
            SOURCE_MISMATCH,
            UNRESOLVABLE,
            MEMORY_BUDGET,
            NO_SPACE,
            INVALID_DELTA,
            KNOWN_ITEM,
            INVALID_ARGUMENT,
            BAD_SETTINGS,
            INTERNAL,
            DIFFGEN_DECODER,
        ];
        let mut sorted = ours.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ours.len());
        // ADU's error_code is a uint16_t and the extended result code keeps 20 bits.
        assert!(ours.iter().all(|&c| c > 40004 && c <= 0xFFFF));
    }

    #[test]
    fn adus_unsupported_recipe_6_keeps_adus_code() {
        let e = ApplyError::Delta(Box::new(ReadError::Recipe {
            offset: 336,
            source: RecipeError::NumberCount {
                recipe: RecipeType::ZstdCompression,
                expected: "3",
                found: 0,
            },
        }));
        assert_eq!(of(&e), 31702);
        let e = ApplyError::Delta(Box::new(ReadError::BadMagic {
            offset: 0,
            found: vec![0; 4],
        }));
        assert_eq!(of(&e), 30000);
    }
}
