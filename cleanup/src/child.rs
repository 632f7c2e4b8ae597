//! Child processes a run waits for (the signing command, `--check-with`'s applier). Each runs
//! in a process group of its own (spawned with `process_group(0)`), so that a timeout can kill
//! the shell and everything it started; the group is also killed when the process is
//! interrupted ([`crate::install`]), since a terminal's Ctrl-C does not reach another group.

use std::collections::BTreeSet;
use std::io;
use std::process::{Child, ExitStatus};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

fn groups() -> MutexGuard<'static, BTreeSet<i32>> {
    static GROUPS: OnceLock<Mutex<BTreeSet<i32>>> = OnceLock::new();
    GROUPS
        .get_or_init(|| Mutex::new(BTreeSet::new()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn kill_group(group: i32) {
    // SAFETY: plain kill(2) on a process group; a group that is gone gives ESRCH, ignored.
    unsafe { libc::kill(-group, libc::SIGKILL) };
}

/// Waits for `child`, which leads its own process group; past `timeout` kills the group and
/// returns `None`. While it runs, an interruption of this process kills the group too.
pub fn wait_or_kill(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let group = child.id() as i32;
    groups().insert(group);
    let result = wait(child, timeout, group);
    groups().remove(&group);
    result
}

fn wait(child: &mut Child, timeout: Duration, group: i32) -> io::Result<Option<ExitStatus>> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if start.elapsed() >= timeout {
            kill_group(group);
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills every group being waited for (the signal thread, before it exits).
pub(crate) fn kill_all() {
    for &group in groups().iter() {
        kill_group(group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[test]
    fn a_child_past_its_timeout_is_killed_with_its_group() {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30"])
            .process_group(0)
            .spawn()
            .unwrap();
        let start = Instant::now();
        assert_eq!(
            wait_or_kill(&mut child, Duration::from_millis(200)).unwrap(),
            None
        );
        assert!(start.elapsed() < Duration::from_secs(10));
        assert!(groups().is_empty());
        let mut quick = Command::new("true").process_group(0).spawn().unwrap();
        let status = wait_or_kill(&mut quick, Duration::from_secs(10)).unwrap();
        assert!(status.is_some_and(|s| s.success()));
    }
}
