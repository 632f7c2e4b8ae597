//! Link settings of `libadudiffapi.so`.
//!
//! - soname `libadudiffapi.so`: the name ADU's agent dlopens, so the library can be installed
//!   under exactly that name with no versioned symlinks;
//! - `-z nodelete`: ADU's agent unloads the library (dlclose, when its `SharedLib` goes out of
//!   scope) before it calls `adu_diff_apply_close_session`; a library marked NODELETE stays
//!   mapped, so that late call still lands in valid code, and the session registry survives.
//!
//! Only the seven `adu_diff_apply*` functions are exported: rustc gives a cdylib a version script
//! that makes every other symbol (Rust's std, zstd, zlib, bzip2) local.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libadudiffapi.so");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
