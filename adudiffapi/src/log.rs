//! The apply log (`adu_diff_apply_set_log_path`, or the `log` setting): one readable block per
//! apply, appended, so an operator can see on the device that diffgen's library did the work
//! and what it cost: inputs, settings, what was rebuilt (recipes run), each known item used or
//! why not, temp disk (bytes spilled), peak decoder memory, wall time, errors.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::session::ApiError;
use crate::settings::Settings;

/// File name used when the log path is a folder.
pub const LOG_NAME: &str = "diffgen-apply.log";

/// Everything one apply leaves in the log.
pub struct Record<'a> {
    pub started: SystemTime,
    pub source: &'a Path,
    pub delta: &'a Path,
    pub target: &'a Path,
    pub settings: Option<&'a Settings>,
    /// Known items that could not even be opened, with the reason.
    pub skipped: &'a [String],
    pub report: Option<&'a delta::Report>,
    pub errors: &'a [ApiError],
    pub wall: Duration,
}

/// Appends `record` to the log at `path` (a file, or a folder that gets [`LOG_NAME`]).
pub fn append(path: &Path, record: &Record) -> std::io::Result<()> {
    let file = log_file(path);
    let text = render(record);
    // One write of the whole block: sessions in other threads append whole blocks too.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?
        .write_all(text.as_bytes())
}

/// The file a log path stands for.
pub fn log_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(LOG_NAME)
    } else {
        path.to_path_buf()
    }
}

/// The block of text for one apply.
pub fn render(r: &Record) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "== {} libadudiffapi (diffgen {}), process {}",
        utc(r.started),
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
    let delta_size = std::fs::metadata(r.delta).map(|m| format!(" ({} bytes)", m.len()));
    let _ = writeln!(t, "source:   {}", r.source.display());
    let _ = writeln!(
        t,
        "delta:    {}{}",
        r.delta.display(),
        delta_size.unwrap_or_default()
    );
    let _ = writeln!(t, "output:   {}", r.target.display());
    if let Some(s) = r.settings {
        let _ = writeln!(t, "settings: {}", settings_line(s));
    }
    for s in r.skipped {
        let _ = writeln!(t, "known item {s}");
    }
    match r.report {
        Some(report) => {
            let _ = writeln!(t, "result:   rebuilt, SHA-256 verified, moved into place");
            t.push_str(&report.to_string());
        }
        None => {
            let n = r.errors.len();
            let plural = if n == 1 { "" } else { "s" };
            let _ = writeln!(t, "result:   FAILED ({n} error{plural}); no output written");
        }
    }
    for e in r.errors {
        let _ = writeln!(t, "error {}: {}", e.code, e.text.to_string_lossy());
    }
    let _ = writeln!(
        t,
        "wall time: {:.3} s; peak RSS of the process so far: {}\n",
        r.wall.as_secs_f64(),
        peak_rss().unwrap_or_else(|| "unknown".into())
    );
    t
}

fn settings_line(s: &Settings) -> String {
    let known: Vec<String> = s
        .known_items
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    format!(
        "memory budget {} bytes; temp dir {}; known items: {}; from {}",
        s.memory_budget,
        s.temp_dir
            .as_ref()
            .map_or("(the output's folder)".into(), |p| p.display().to_string()),
        if known.is_empty() {
            "none".into()
        } else {
            known.join(", ")
        },
        if s.origin.is_empty() {
            "defaults".into()
        } else {
            s.origin.join(", ")
        }
    )
}

/// VmHWM of this process (the host's, which includes the apply).
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.trim_start_matches("VmHWM:").trim().to_string())
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let u = utc::Utc::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        u.year, u.month, u.day, u.hour, u.minute, u.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(utc(t), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn a_failed_apply_is_logged_with_its_errors() {
        let errors = [ApiError::new(50001, "the delta was made for source X")];
        let r = Record {
            started: UNIX_EPOCH,
            source: Path::new("/s.swu"),
            delta: Path::new("/nonexistent.diff"),
            target: Path::new("/t.swu"),
            settings: Some(&Settings::default()),
            skipped: &["/dev/nope: not used: cannot open it: denied".to_string()],
            report: None,
            errors: &errors,
            wall: Duration::from_millis(1500),
        };
        let text = render(&r);
        for needle in [
            "== 1970-01-01 00:00:00 UTC libadudiffapi",
            "source:   /s.swu",
            "delta:    /nonexistent.diff\n",
            "settings: memory budget 50331648 bytes; temp dir (the output's folder); known items: none; from defaults",
            "known item /dev/nope: not used",
            "result:   FAILED (1 error); no output written",
            "error 50001: the delta was made for source X",
            "wall time: 1.500 s",
        ] {
            assert!(text.contains(needle), "{needle:?} not in\n{text}");
        }
    }
}
