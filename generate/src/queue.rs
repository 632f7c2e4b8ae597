//! Running a list of jobs of very different sizes on the rayon pool, largest first.
//!
//! `par_iter` over a sorted list does not do that: rayon splits the list in halves, and a
//! thread works through its half in order while an idle one steals the *other* half, so the
//! second-largest job can wait behind the largest on one thread while the other thread runs
//! small ones (measured on the x86-64 upgrade pair: `perl` then `libapt-pkg` on one thread,
//! one core idle for a second). Here every thread of the pool takes the next job of one
//! shared queue as soon as it is free (longest-processing-time-first scheduling: the largest
//! job starts first, and the small ones fill the gaps at the end).
//!
//! Results come back in the jobs' order, so nothing downstream depends on threads or timing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs `work` on every job of `jobs` in the order of `order` (indices into `jobs`, largest
/// first), on as many threads of the current rayon pool as it has; returns the results in the
/// order of `jobs`. `order` must name every job once.
pub(crate) fn run_in_order<T, R, F>(jobs: &[T], order: &[usize], work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    assert_eq!(order.len(), jobs.len(), "the order names every job");
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    let threads = rayon::current_num_threads().clamp(1, jobs.len().max(1));
    rayon::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|_| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&j) = order.get(k) else { break };
                let r = work(&jobs[j]);
                results.lock().unwrap_or_else(|e| e.into_inner())[j] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every job ran once"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn results_come_in_job_order_whatever_the_run_order() {
        let jobs: Vec<u64> = (0..50).collect();
        let order: Vec<usize> = (0..50).rev().collect();
        let out = run_in_order(&jobs, &order, |&j| j * 2);
        assert_eq!(out, (0..50).map(|j| j * 2).collect::<Vec<_>>());
        assert!(run_in_order(&[] as &[u64], &[], |&j| j).is_empty());
    }

    #[test]
    fn the_second_job_starts_while_the_first_runs() {
        // Two threads: job 0 runs until it sees job 1 started (at most 20 s). Were job 1
        // queued behind job 0 on the same thread, job 0 would never see it; were it stolen
        // last (as `par_iter` does), small jobs would start before it.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a pool");
        let started = std::sync::atomic::AtomicBool::new(false);
        let rank = AtomicUsize::new(0);
        let jobs: Vec<usize> = (0..12).collect();
        let order = jobs.clone();
        let out = pool.install(|| {
            run_in_order(&jobs, &order, |&j| {
                let my_rank = rank.fetch_add(1, Ordering::SeqCst);
                let seen = match j {
                    0 => {
                        let until = Instant::now() + Duration::from_secs(20);
                        while !started.load(Ordering::SeqCst) && Instant::now() < until {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        started.load(Ordering::SeqCst)
                    }
                    1 => {
                        started.store(true, Ordering::SeqCst);
                        true
                    }
                    _ => true,
                };
                (my_rank, seen)
            })
        });
        // Job 1 was the second to start, not after the small ones.
        assert!(out[1].0 <= 1, "job 1 started as number {}", out[1].0);
        assert!(out[0].1, "job 1 waited behind job 0");
    }
}
