//! The blocking pool's threads end after its idle timeout, and a later job gets a new
//! pool. (Its own file: the timeout is process-wide.)
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use amorsize::Backend;
use amorsize::prelude::*;

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .filter(|name| name.starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

fn sleepy_job() -> u64 {
    (0..16u64)
        .par_auto()
        .backend(Backend::Threads)
        .max_workers(8)
        .chunk_size(1)
        .map(|x| {
            std::thread::sleep(Duration::from_millis(5));
            x
        })
        .sum()
}

#[test]
fn idle_pool_threads_end_and_come_back_when_needed() {
    amorsize::__private::set_threads_idle_timeout(Duration::from_millis(200));
    assert_eq!(sleepy_job(), (0..16).sum::<u64>());
    // Thread names are cut to 15 bytes: "amorsize-thread".
    // The caller is one of the 8 workers; the pool has up to 7 threads for the others.
    assert!(threads_named("amorsize-thread") >= 1, "the pool is up");
    assert!(
        wait_until(Duration::from_secs(10), || threads_named("amorsize-thread")
            == 0),
        "{} pool threads still alive after the idle timeout",
        threads_named("amorsize-thread")
    );
    // A new job starts a new pool.
    assert_eq!(sleepy_job(), (0..16).sum::<u64>());
    assert!(threads_named("amorsize-thread") >= 1);
    assert!(wait_until(Duration::from_secs(10), || threads_named(
        "amorsize-thread"
    ) == 0));
}
