//! Compression codecs shared by recompression, delta generation and the device applier,
//! wrapped behind small types with explicit parameters:
//!
//! - [`zlib`]: deflate with ADU's reproducible parameters (memLevel 9, fixed gzip header) and
//!   inflate of raw/zlib/gzip streams;
//! - [`bcj`]: the x86 branch filter (relative call targets made absolute) and its streaming
//!   inverse;
//! - [`zlib_check`]: whether zlib compresses a content into exactly a given payload, checked
//!   in parallel (restarted zlib streams at block ends where its state is known);
//! - [`gnu_gzip`]: deflate exactly as GNU gzip (levels 4 to 9) makes it, for files zlib cannot
//!   re-create;
//! - [`zstd`]: single-threaded zstd frames whose bytes are fixed by recorded parameters, and
//!   decoding with a raw-prefix basis;
//! - [`bsdiff`]: BSDIFF40 patches (bzip2 blocks): a bounded streaming decoder and a
//!   suffix-array encoder;
//! - [`exepatch`]: bsdiff-style patches of rebuilt executables, with references re-targeted
//!   before the diff bytes are added (`exe` finds them).
//!
//! Byte-exactness is the point: a device re-creates compressed bytes from their content, so
//! everything that influences the output is an explicit parameter here.

pub mod bcj;
pub mod bsdiff;
pub mod exepatch;
pub mod gnu_gzip;
pub mod test_inputs;
pub mod zlib;
pub mod zlib_check;
pub mod zstd;

/// The compression a stream announces in its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sniffed {
    /// gzip (`1f 8b 08`: deflate method).
    Gzip,
    /// A zstd frame (magic `28 b5 2f fd`).
    Zstd,
}

/// What the first bytes of `head` announce, if gzip or zstd.
pub fn sniff(head: &[u8]) -> Option<Sniffed> {
    if head.starts_with(&[0x1f, 0x8b, 8]) {
        Some(Sniffed::Gzip)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Sniffed::Zstd)
    } else {
        None
    }
}
