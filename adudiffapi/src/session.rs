//! Sessions and their handles.
//!
//! A handle is an opaque token, never a pointer the library dereferences: live sessions sit in
//! a global registry keyed by the token, so a closed, never-created or foreign handle is found
//! missing instead of being followed into freed or random memory. Tokens come from a counter and
//! are never reused, so a stale handle cannot reach a newer session either.
//!
//! Each session is behind its own lock: two sessions apply in two threads at once, while the
//! registry's lock is held only to look a session up.

use std::collections::BTreeMap;
use std::ffi::{c_char, c_void, CString};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// One error of the last apply: ADU-style code and text.
#[derive(Debug)]
pub struct ApiError {
    pub code: i32,
    pub text: CString,
}

impl ApiError {
    /// An error with `text` (interior NUL bytes, which C cannot carry, become spaces).
    pub fn new(code: i32, text: &str) -> ApiError {
        let clean = text.replace('\0', " ");
        ApiError {
            code,
            text: CString::new(clean).unwrap_or_default(),
        }
    }
}

/// What a session holds between calls.
#[derive(Debug, Default)]
pub struct Session {
    /// Errors of the last apply (or of a failed `set_log_path`), listed until the next apply
    /// or close.
    pub errors: Vec<ApiError>,
    /// Log file or folder set with `adu_diff_apply_set_log_path`.
    pub log_path: Option<PathBuf>,
}

pub type Shared = Arc<Mutex<Session>>;

static SESSIONS: Mutex<BTreeMap<usize, Shared>> = Mutex::new(BTreeMap::new());
/// First token; tokens step by 16 so they look like (aligned) pointers to C code that logs them.
const FIRST_TOKEN: usize = 0x0AD0_0000;
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(FIRST_TOKEN);

/// Locks `m`, also after a panic elsewhere poisoned it (every caller leaves the data valid).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A new session and its handle.
pub fn create() -> *mut c_void {
    let token = NEXT_TOKEN.fetch_add(16, Ordering::Relaxed);
    lock(&SESSIONS).insert(token, Arc::new(Mutex::new(Session::default())));
    token as *mut c_void
}

/// The live session of `handle`, if any.
pub fn find(handle: *mut c_void) -> Option<Shared> {
    lock(&SESSIONS).get(&(handle as usize)).cloned()
}

/// Ends the session of `handle`; false if there is none. A thread still applying with it
/// keeps its own reference until it returns.
pub fn close(handle: *mut c_void) -> bool {
    lock(&SESSIONS).remove(&(handle as usize)).is_some()
}

/// The text of error `index` of `session`, or a pointer to a static empty string when there
/// is no such error. The pointer stays valid until the session's next apply or its close.
pub fn error_text(session: &Session, index: usize) -> *const c_char {
    match session.errors.get(index) {
        Some(e) => e.text.as_ptr(),
        None => EMPTY.as_ptr(),
    }
}

/// What `adu_diff_apply_get_error_text` returns when there is no such error or session.
pub static EMPTY: &std::ffi::CStr = c"";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_unique_tokens_and_closed_ones_are_unknown() {
        let a = create();
        let b = create();
        assert_ne!(a, b);
        assert!(find(a).is_some() && find(b).is_some());
        assert!(close(a));
        assert!(find(a).is_none());
        assert!(!close(a), "a second close finds nothing");
        let c = create();
        assert_ne!(c, a, "tokens are never reused");
        assert!(find(std::ptr::null_mut()).is_none());
        let mut local = 0u64;
        assert!(find(&mut local as *mut u64 as *mut c_void).is_none());
        assert!(close(b) && close(c));
    }

    #[test]
    fn error_texts_are_never_null() {
        let mut s = Session::default();
        assert_eq!(error_text(&s, 0), EMPTY.as_ptr());
        s.errors.push(ApiError::new(1, "bad\0byte"));
        // SAFETY: error_text returns a NUL-terminated string owned by `s` or static.
        let text = unsafe { std::ffi::CStr::from_ptr(error_text(&s, 0)) };
        assert_eq!(text.to_str().unwrap(), "bad byte");
        assert_eq!(error_text(&s, usize::MAX), EMPTY.as_ptr());
    }
}
