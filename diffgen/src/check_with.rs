//! `--check-with CMD` (`DIFFGEN_CHECK_WITH` for the DiffGenTool form): after diffgen's own
//! verification, the applier the devices run (e.g. ADU's `applydiff`) rebuilds the target from
//! the source and the delta, which is still at its temp path; the delta is moved into place
//! only if the result equals the target byte for byte. Release engineers can so check every
//! delta with the exact code their devices run, not only with diffgen's applier.
//!
//! CMD is a shell command line, run as `sh -c '<CMD> "$@"' diffgen-check <source> <delta>
//! <out>`: the three paths reach the applier as separate arguments and are never pasted into
//! the command text, so paths with spaces or quotes are safe, while CMD itself may use quoting,
//! variables and options (`LD_LIBRARY_PATH=/opt/adu/lib applydiff`). It runs in diffgen's
//! working directory with no stdin, in its own process group (killed as a whole on timeout).
//! Its stdout and stderr go to `<logs>/check-with.log`; without a log folder they are shown on
//! stderr only when the check fails.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::failure::Failure;

/// Environment variable that gives the check command when `--check-with` is not used (the
/// only way for the DiffGenTool positional form).
pub const COMMAND_ENV: &str = "DIFFGEN_CHECK_WITH";
/// Environment variable for the timeout in seconds when `--check-timeout` is not used.
pub const TIMEOUT_ENV: &str = "DIFFGEN_CHECK_TIMEOUT";
/// Default time the check command may take.
pub const DEFAULT_TIMEOUT_SECS: u64 = 3600;

/// The device applier to check each delta with.
#[derive(Debug, Clone)]
pub struct CheckWith {
    pub command: String,
    pub timeout: Duration,
}

impl CheckWith {
    /// From the option values, falling back to the environment variables; `None` when no
    /// command is given anywhere (an empty one counts as none).
    pub fn from_args(command: Option<&str>, timeout: Option<u64>) -> Result<Option<Self>, Failure> {
        let command = match command {
            Some(c) => c.to_string(),
            None => std::env::var(COMMAND_ENV).unwrap_or_default(),
        };
        if command.trim().is_empty() {
            return Ok(None);
        }
        let secs = match (timeout, std::env::var(TIMEOUT_ENV)) {
            (Some(s), _) => s,
            (None, Ok(v)) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
                Failure::new(format!(
                    "{TIMEOUT_ENV} must be a number of seconds, not {v:?}"
                ))
            })?,
            _ => DEFAULT_TIMEOUT_SECS,
        };
        Ok(Some(CheckWith {
            command,
            timeout: Duration::from_secs(secs.max(1)),
        }))
    }

    /// Runs the command on `delta` and compares what it rebuilt with `target`. `work` holds
    /// the rebuilt file (removed afterwards); `log` receives the command's output.
    pub fn check(
        &self,
        source: &Path,
        delta: &Path,
        target: &Path,
        work: &Path,
        log: Option<&Path>,
    ) -> Result<(), Failure> {
        let dir = cleanup::TempDir::new_in(work, ".check-with-").map_err(|e| {
            Failure::new(format!(
                "cannot create a folder for --check-with: {e} ({})",
                work.display()
            ))
        })?;
        let out = dir.path().join("rebuilt.swu");
        let captured = dir.path().join("output.txt");
        let log_path = log.map_or_else(|| captured.clone(), Path::to_path_buf);
        let outcome = self.run(source, delta, &out, &log_path);
        let verdict = outcome.and_then(|()| compare(&out, target));
        verdict.map_err(|why| {
            if log.is_none() {
                echo_output(&captured);
            }
            let output = log.map_or_else(
                || "its output is above".to_string(),
                |l| format!("its output is in {}", l.display()),
            );
            Failure::new(format!(
                "--check-with {:?} {why} for the delta from {}; no delta written ({output})",
                self.command,
                source.display()
            ))
        })
    }

    /// Runs `sh -c '<CMD> "$@"' diffgen-check <source> <delta> <out>` with its output appended
    /// to `log`; `Err` says why it failed.
    fn run(&self, source: &Path, delta: &Path, out: &Path, log: &Path) -> Result<(), String> {
        let mut log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open its log {}: {e}", log.display()))?;
        let _ = writeln!(
            log_file,
            "== sh -c '{} \"$@\"' diffgen-check {source:?} {delta:?} {out:?}",
            self.command
        );
        let stderr = log_file
            .try_clone()
            .map_err(|e| format!("cannot open its log {}: {e}", log.display()))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("{} \"$@\"", self.command))
            .arg("diffgen-check")
            .args([source, delta, out])
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot be started: {e}"))?;
        let status = cleanup::child::wait_or_kill(&mut child, self.timeout)
            .map_err(|e| format!("cannot be waited for: {e}"))?
            .ok_or_else(|| {
                format!(
                    "did not finish within {} s (killed)",
                    self.timeout.as_secs()
                )
            })?;
        if !status.success() {
            return Err(match status.code() {
                Some(code) => format!("exited with status {code}"),
                None => "was killed by a signal".to_string(),
            });
        }
        Ok(())
    }
}

/// `Ok` if the files at `made` and `target` hold the same bytes; `Err` says where they differ.
fn compare(made: &Path, target: &Path) -> Result<(), String> {
    let open = |p: &Path| File::open(p).map(|f| io::BufReader::with_capacity(1 << 20, f));
    let mut a = open(made).map_err(|e| format!("exited 0 but left no output file ({e})"))?;
    let mut b =
        open(target).map_err(|e| format!("cannot be compared: {e} ({})", target.display()))?;
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut a, &mut x).map_err(|e| format!("output unreadable: {e}"))?;
        let m = read_full(&mut b, &mut y).map_err(|e| format!("target unreadable: {e}"))?;
        if let Some(i) = x[..n.min(m)]
            .iter()
            .zip(&y[..m.min(n)])
            .position(|(p, q)| p != q)
        {
            return Err(format!(
                "rebuilt a file that differs from the target at byte {}",
                offset + i as u64
            ));
        }
        if n != m {
            let (made_len, target_len) = (file_len(made), file_len(target));
            return Err(format!(
                "rebuilt {made_len} bytes where the target has {target_len}"
            ));
        }
        if n == 0 {
            return Ok(());
        }
        offset += n as u64;
    }
}

/// Reads until `buf` is full or the input ends.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).map_or(0, |m| m.len())
}

/// Shows the captured output of a failed check on stderr (last 4 KiB).
fn echo_output(captured: &Path) {
    let text = fs::read(captured).unwrap_or_default();
    let tail = &text[text.len().saturating_sub(4096)..];
    eprint!("{}", String::from_utf8_lossy(tail));
}

/// Where a delta is written until it passes the check: a registered temp folder next to the
/// output (same file system, so publishing is a rename), removed on error or interruption.
pub struct Staged {
    dir: Option<cleanup::TempDir>,
    path: PathBuf,
    output: PathBuf,
}

impl Staged {
    /// With `checked`, a temp path next to `output`; otherwise `output` itself (the generator
    /// writes it atomically already).
    pub fn new(output: &Path, checked: bool) -> Result<Self, Failure> {
        if !checked {
            return Ok(Staged {
                dir: None,
                path: output.to_path_buf(),
                output: output.to_path_buf(),
            });
        }
        let parent = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = cleanup::TempDir::new_in(parent, ".diffgen-check-").map_err(|e| {
            Failure::new(format!(
                "cannot create a temp folder next to the delta: {e} ({})",
                parent.display()
            ))
        })?;
        let name = output.file_name().unwrap_or("delta.diff".as_ref());
        Ok(Staged {
            path: dir.path().join(name),
            dir: Some(dir),
            output: output.to_path_buf(),
        })
    }

    /// Where the generator writes the delta.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the checked delta into place.
    pub fn publish(self) -> Result<(), Failure> {
        if self.dir.is_some() {
            fs::rename(&self.path, &self.output).map_err(|e| {
                Failure::new(format!(
                    "cannot move the checked delta into place: {e} ({})",
                    self.output.display()
                ))
            })?;
        }
        Ok(())
    }
}
