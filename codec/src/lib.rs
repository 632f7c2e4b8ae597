//! Compression codecs shared by recompression, delta generation and the device applier,
//! wrapped behind small types with explicit parameters:
//!
//! - [`zlib`]: deflate with ADU's reproducible parameters (memLevel 9, fixed gzip header) and
//!   inflate of raw/zlib/gzip streams;
//! - [`zstd`]: single-threaded zstd frames whose bytes are fixed by recorded parameters, and
//!   decoding with a raw-prefix basis;
//! - [`bsdiff`]: BSDIFF40 patches (bzip2 blocks): a bounded streaming decoder and a
//!   suffix-array encoder.
//!
//! Byte-exactness is the point: a device re-creates compressed bytes from their content, so
//! everything that influences the output is an explicit parameter here.

pub mod bsdiff;
pub mod zlib;
pub mod zstd;
