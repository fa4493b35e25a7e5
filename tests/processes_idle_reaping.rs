//! Processes: after many concurrent jobs the idle pool keeps at most its cap of
//! workers, and once the idle ones time out, none of their threads or pipes remains
//! (before the next job, not only at it).
//!
//! The only test of its file: it counts the process's threads and descriptors.
#![cfg(target_os = "linux")]

mod processes_util;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use amorsize::Backend;
use amorsize::prelude::*;
use processes_util::within;

/// Concurrent jobs, two workers each.
const JOBS: usize = 16;
const IDLE: Duration = Duration::from_millis(800);

#[amorsize::task]
fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(5));
    x * x
}

/// The cap of the idle pool, checked to be small: at most two per CPU (at least 2).
fn cap() -> usize {
    let cap = amorsize::__private::max_idle_workers();
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    assert!(
        cap <= (2 * cpus).max(2),
        "the idle cap {cap} is over two per CPU"
    );
    cap
}

/// Names of this process's threads that belong to worker processes' pipes.
fn worker_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim_end().to_string())
        .filter(|c| c.starts_with("amorsize-w"))
        .collect()
}

/// Open descriptors of this process whose link starts with `kind` (`pipe:`, ...).
fn fds(kind: &str) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with(kind))
        })
        .count()
}

fn job() -> Vec<u64> {
    (0..24u64)
        .par_auto()
        .backend(Backend::Processes)
        .max_workers(2)
        .chunk_size(2)
        .map(slow_square)
        .collect()
}

#[test]
fn idle_workers_are_capped_and_leave_no_thread_or_pipe_behind() {
    within(60, || {
        amorsize::__private::set_worker_idle_timeout(IDLE);
        let pipes_before = fds("pipe:");
        assert_eq!(worker_threads(), Vec::<String>::new());

        let start = Arc::new(Barrier::new(JOBS));
        let jobs: Vec<_> = (0..JOBS)
            .map(|_| {
                let start = Arc::clone(&start);
                std::thread::spawn(move || {
                    start.wait();
                    job()
                })
            })
            .collect();
        for j in jobs {
            let v = j.join().expect("job");
            assert_eq!(v, (0..24).map(|x| x * x).collect::<Vec<_>>());
        }
        let idle = amorsize::__private::idle_worker_pids();
        eprintln!("{} idle workers after {JOBS} concurrent jobs", idle.len());
        assert!(
            idle.len() <= cap(),
            "{} idle workers kept, more than the cap {}",
            idle.len(),
            cap()
        );

        // The idle ones time out by themselves; then nothing of theirs may remain.
        let deadline = Instant::now() + IDLE + Duration::from_secs(5);
        loop {
            let (threads, pipes, pidfds) =
                (worker_threads(), fds("pipe:"), fds("anon_inode:[pidfd]"));
            let pool = amorsize::__private::idle_worker_pids();
            if threads.is_empty() && pipes <= pipes_before && pidfds == 0 && pool.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{IDLE:?} after the jobs: threads {threads:?}, {pipes} pipe descriptors \
                 (before: {pipes_before}), {pidfds} pidfds, idle pool {pool:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}
