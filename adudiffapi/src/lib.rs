//! `libadudiffapi.so`: diffgen's applier behind the C API that Azure Device Update's agent loads
//! (its `microsoft/delta:1` download handler dlopens `libadudiffapi.so` and resolves these
//! functions with dlsym), so that a device whose rootfs carries this library instead of
//! Microsoft's applies zstd-profile deltas, checks the target's SHA-256 before the output
//! appears, and keeps memory bounded.
//!
//! ```c
//! typedef void *adu_apply_handle;
//! adu_apply_handle adu_diff_apply_create_session(void);
//! void             adu_diff_apply_close_session(adu_apply_handle);
//! int              adu_diff_apply_set_log_path(adu_apply_handle, const char *log_path);
//! int              adu_diff_apply(adu_apply_handle, const char *source_path, const char *diff_path, const char *target_path);
//! size_t           adu_diff_apply_get_error_count(adu_apply_handle);
//! const char      *adu_diff_apply_get_error_text(adu_apply_handle, size_t index);
//! int              adu_diff_apply_get_error_code(adu_apply_handle, size_t index);
//! ```
//!
//! - `adu_diff_apply` returns 0 on success, otherwise the number of errors, which the session
//!   lists (code and text, see [`codes`]) until its next apply or its close.
//! - Nothing aborts the host: every entry point catches panics; a null path, an unknown, closed
//!   or foreign handle, an index out of range give an error or a neutral value (count 0, code 0,
//!   text `""`, never a null pointer). An unknown handle makes `adu_diff_apply` return 1 with no
//!   error listed (there is no session to hold it).
//! - ADU 3.0's header declares the count, index and code as `uint32_t`, the agent calls them
//!   with `size_t`: the index is read as its low 32 bits, so a caller of either kind is served
//!   on 64-bit targets; on 32-bit ARM both types are 32 bits.
//! - Thread-safe: sessions are independent (see [`session`]); each apply runs wholly in the
//!   calling thread.
//! - Settings (known items, memory budget, log, temp folder): [`settings`]; where files go:
//!   [`run`]; the log: [`log`](mod@log).

pub mod codes;
pub mod log;
pub mod rootfs;
pub mod run;
pub mod session;
pub mod settings;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use session::{lock, ApiError};

/// ADU's `adu_apply_handle`.
pub type AduApplyHandle = *mut c_void;

/// Runs `f`, or returns `fallback` if it panics: no unwinding crosses into C.
fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// A new session; null only if the library itself is broken.
#[no_mangle]
pub extern "C" fn adu_diff_apply_create_session() -> AduApplyHandle {
    guard(std::ptr::null_mut(), session::create)
}

/// Ends a session; an unknown or already closed handle is ignored.
#[no_mangle]
pub extern "C" fn adu_diff_apply_close_session(handle: AduApplyHandle) {
    guard((), || {
        session::close(handle);
    })
}

/// Sets the log of the session's applies: a file (appended) or a folder (which gets
/// `diffgen-apply.log`). Null or `""` turns the session's log off (the `log` setting then
/// applies). Returns 0, or 1 for an unknown handle or a path whose folder does not exist (the
/// session then lists that error).
///
/// # Safety
/// `log_path` is null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn adu_diff_apply_set_log_path(
    handle: AduApplyHandle,
    log_path: *const c_char,
) -> c_int {
    guard(1, || {
        let Some(shared) = session::find(handle) else {
            return 1;
        };
        let mut s = lock(&shared);
        // SAFETY: the caller's contract above.
        let path = (!log_path.is_null()).then(|| unsafe { CStr::from_ptr(log_path) });
        let path = path
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p.to_bytes())));
        let usable = path.as_ref().is_none_or(|p| {
            p.is_dir()
                || p.parent()
                    .is_some_and(|d| d.as_os_str().is_empty() || d.is_dir())
        });
        if !usable {
            let text = format!(
                "log path {}: its folder does not exist",
                path.as_ref()
                    .map_or(String::new(), |p| p.display().to_string())
            );
            s.errors = vec![ApiError::new(codes::INVALID_ARGUMENT, &text)];
            return 1;
        }
        s.log_path = path;
        0
    })
}

/// Rebuilds `target_path` from `source_path` and the delta at `diff_path`. Returns 0 when the
/// target is in place and verified, otherwise the number of errors (no output file exists).
///
/// # Safety
/// The paths are null (an error) or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn adu_diff_apply(
    handle: AduApplyHandle,
    source_path: *const c_char,
    diff_path: *const c_char,
    target_path: *const c_char,
) -> c_int {
    guard(1, || {
        let Some(shared) = session::find(handle) else {
            return 1;
        };
        let mut s = lock(&shared);
        s.errors.clear();
        let log_path = s.log_path.clone();
        // SAFETY: the caller's contract above.
        let errors = catch_unwind(AssertUnwindSafe(|| unsafe {
            run::apply(source_path, diff_path, target_path, log_path.as_deref())
        }))
        .unwrap_or_else(|panic| {
            let text = format!("internal error: {}", run::panic_message(&*panic));
            vec![ApiError::new(codes::INTERNAL, &text)]
        });
        s.errors = errors;
        c_int::try_from(s.errors.len()).unwrap_or(c_int::MAX)
    })
}

/// Number of errors the session lists (0 for an unknown handle).
#[no_mangle]
pub extern "C" fn adu_diff_apply_get_error_count(handle: AduApplyHandle) -> usize {
    guard(0, || {
        session::find(handle).map_or(0, |s| lock(&s).errors.len())
    })
}

/// Text of error `index`: owned by the session (do not free), valid until its next apply or
/// close; `""` for an index out of range or an unknown handle.
#[no_mangle]
pub extern "C" fn adu_diff_apply_get_error_text(
    handle: AduApplyHandle,
    index: usize,
) -> *const c_char {
    guard(session::EMPTY.as_ptr(), || match session::find(handle) {
        Some(s) => session::error_text(&lock(&s), low32(index)),
        None => session::EMPTY.as_ptr(),
    })
}

/// Code of error `index` ([`codes`]); 0 for an index out of range or an unknown handle.
#[no_mangle]
pub extern "C" fn adu_diff_apply_get_error_code(handle: AduApplyHandle, index: usize) -> c_int {
    guard(0, || {
        session::find(handle)
            .and_then(|s| lock(&s).errors.get(low32(index)).map(|e| e.code))
            .unwrap_or(0)
    })
}

/// The index as a caller declaring it `uint32_t` meant it (the upper half of the register is
/// unspecified then); no session lists 2^32 errors.
fn low32(index: usize) -> usize {
    index as u32 as usize
}
