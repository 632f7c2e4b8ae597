//! Running the user's signing command on a new sw-description.
//!
//! The command runs through `sh -c` with the file's path appended as its last argument, shell
//! quoted (the file sits in a private temp folder; the command runs in the caller's working
//! directory so that relative commands like `./sign.sh` work); it must exit 0 within the timeout and create a non-empty
//! `<path>.sig`. (DiffGenTool split the command on spaces, or passed paths unquoted to a shell,
//! and did not kill a command that timed out.) On timeout the command's whole process group is
//! killed.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

/// How much of the command's stderr an error message quotes.
const STDERR_TAIL: usize = 400;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("signing command failed (exit {code}): {stderr}")]
    Failed { code: String, stderr: String },
    #[error("signing command did not finish within {0} s (killed)")]
    Timeout(u64),
    #[error("signing command exited 0 but wrote no signature ({0} is missing or empty)")]
    NoSignature(String),
    #[error("cannot run the signing command: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Signs `content` (written as `sw-description` in a private folder) and returns the bytes of
/// the signature the command produced.
pub fn sign_bytes(command: &str, content: &[u8], timeout: Duration) -> Result<Vec<u8>, SignError> {
    let dir = cleanup::TempDir::new_in(&std::env::temp_dir(), "diffgen-sign-")
        .map_err(SignError::Spawn)?;
    let path = dir.path().join("sw-description");
    fs::write(&path, content).map_err(SignError::Spawn)?;
    run_signing_command(command, &path, timeout)?;
    let sig_path = dir.path().join("sw-description.sig");
    match fs::read(&sig_path) {
        Ok(sig) if !sig.is_empty() => Ok(sig),
        _ => Err(SignError::NoSignature(sig_path.display().to_string())),
    }
}

/// Runs `command <path>` through the shell; succeeds if it exits 0 in time.
pub fn run_signing_command(command: &str, path: &Path, timeout: Duration) -> Result<(), SignError> {
    let path_str = path
        .to_str()
        .ok_or_else(|| SignError::Spawn(std::io::Error::other("temp path is not UTF-8")))?;
    let script = format!("{command} {}", shell_quote(path_str));
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(SignError::Spawn)?;
    let mut stderr = child.stderr.take().expect("piped");
    let reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    // On timeout the whole group goes: the shell and anything it started.
    let status = cleanup::child::wait_or_kill(&mut child, timeout)
        .map_err(SignError::Spawn)?
        .ok_or(SignError::Timeout(timeout.as_secs()))?;
    let stderr = reader.join().unwrap_or_default();
    if !status.success() {
        let text = String::from_utf8_lossy(&stderr);
        let text = text.trim();
        let start = text.len().saturating_sub(STDERR_TAIL);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        let code = match status.code() {
            Some(c) => c.to_string(),
            None => "by signal".to_string(),
        };
        return Err(SignError::Failed {
            code,
            stderr: text[start..].replace('\n', " | "),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn quoting_survives_spaces_and_quotes() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn signature_is_read_back() {
        let sig = sign_bytes(
            "sh -c 'printf sig > \"$1.sig\"' sh",
            b"content",
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(sig, b"sig");
    }

    #[test]
    fn failures_are_reported() {
        let t = Duration::from_secs(10);
        let e = sign_bytes("echo boom >&2; exit 3; :", b"x", t).unwrap_err();
        assert!(
            e.to_string().contains("exit 3") && e.to_string().contains("boom"),
            "{e}"
        );
        let e = sign_bytes("true", b"x", t).unwrap_err();
        assert!(matches!(e, SignError::NoSignature(_)), "{e}");
        let start = Instant::now();
        let e = sign_bytes("sleep 30; :", b"x", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, SignError::Timeout(_)), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
