//! Full checks of re-created payloads, in the background.
//!
//! Planning takes a compressed payload as re-creatable once the first few MiB of its
//! re-creation match ([`Check::Prefix`](crate::content::Check)). Comparing all of it is a long
//! job (zlib level 9 over a whole image: about 20 s of CPU for 250 MiB), so it starts right
//! then on a thread of its own and runs beside planning and encoding. For zlib that thread
//! hands the work to the rayon pool in chunks ([`content::recreates`], codec::zlib_check),
//! which its threads take between planning and encoding jobs. The verification waits for it;
//! when it passed, the verifying apply reads the payload from the target instead of
//! compressing the content again (`delta::KnownResult`), while still making the content from
//! the delta and checking its hash. Together that is the whole chain the device runs, checked
//! with the compressors its applier uses.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use delta::Item;
use memmap2::Mmap;

use crate::content::{self, Recreate};
use crate::inputs::map_file;

/// A full comparison of one re-created payload, running or done.
pub(crate) struct Recheck {
    /// The target member.
    pub member: String,
    /// The payload, and where it sits in the target file.
    pub payload: Item,
    pub target: PathBuf,
    pub offset: u64,
    cancel: Arc<AtomicBool>,
    handle: Option<JoinHandle<bool>>,
}

impl Recheck {
    /// Starts comparing the compression of `content` (as `how` says) with the payload at
    /// `offset` of the file `target`.
    pub(crate) fn start(
        member: &str,
        how: Recreate,
        content: Arc<Mmap>,
        target: &Path,
        offset: u64,
        payload: Item,
    ) -> Recheck {
        let cancel = Arc::new(AtomicBool::new(false));
        let (flag, path) = (Arc::clone(&cancel), target.to_path_buf());
        let job = move || {
            let Ok(Some(map)) = map_file(&path) else {
                return false;
            };
            let Some(bytes) = map.get(offset as usize..(offset + payload.length()) as usize) else {
                return false;
            };
            content::recreates(&how, &content, bytes, &flag)
        };
        // A thread that cannot start leaves the check undone: the payload counts as unchecked.
        let handle = std::thread::Builder::new()
            .name("payload check".into())
            .spawn(job)
            .ok();
        Recheck {
            member: member.to_string(),
            payload,
            target: target.to_path_buf(),
            offset,
            cancel,
            handle,
        }
    }

    /// Waits for the comparison; whether every byte matched.
    pub(crate) fn passed(&mut self) -> bool {
        self.handle
            .take()
            .is_some_and(|h| h.join().unwrap_or(false))
    }
}

impl Drop for Recheck {
    /// A check no longer waited for (the run failed or planned again) stops at its next MiB
    /// of content (in each of its chunks, for zlib).
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}
