//! SWUpdate archives (`.swu`): the cpio container and the sw-description inside it.
//!
//! - [`cpio`]: lossless streaming reader/writer for cpio newc and crc, with an index of member
//!   offsets for random access.
//! - [`swdesc`]: sw-description in libconfig or JSON syntax: the artifacts it lists and
//!   in-place edits that keep every other byte.
//! - [`Swu`]: an opened archive, its sw-description and checks of artifacts against members.
//!
//! This crate has no generator-only dependencies, so the device-side applier can use it.

pub mod cpio;
pub mod hex;
pub mod swdesc;
mod swu;

pub use swu::{ArtifactCheck, Error, MemberStatus, Swu, SIG_NAME, SWDESC_NAME};
