//! ADU's binary delta format (PAMZ standard v2, as written by DiffGen 3.0) and diffgen's applier.
//!
//! - [`item`]: item definitions, the (length, SHA-256) identity of every piece of data;
//! - [`recipe`]: the eight recipe types and their rules;
//! - [`archive`]: the parsed model of a delta;
//! - [`reader`]: parsing a delta without trusting it;
//! - [`writer`]: building and serializing a delta, refusing what an applier rejects;
//! - [`apply`](mod@apply): rebuilding a target within a fixed memory bound, verified before it is put in
//!   place;
//! - [`inspect`]: the report `diffgen inspect` shows for a delta;
//! - [`io`]: random-access sources (files, block devices, ranges, chains, zeros).
//!
//! The byte layout and the semantics are documented in `docs/format.md`.

pub mod apply;
pub mod archive;
pub mod inspect;
pub mod io;
pub mod item;
pub mod reader;
pub mod recipe;
pub mod size;
pub mod writer;
mod zstd_frame;

pub use apply::{
    apply, ApplyError, ApplyOptions, KnownItem, KnownItemOutcome, KnownItemReport, KnownResult,
    Report, Unresolved,
};
pub use archive::{Archive, BlobRef, NestedArchive, RecipeSet};
pub use item::{Item, ItemHash};
pub use reader::{read_archive, read_path, ReadError, ReadLimits};
pub use recipe::{Recipe, RecipeError, RecipeType};
pub use writer::{BlobSource, DeltaBuilder, Profile, WriteError};
