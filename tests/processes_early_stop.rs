//! Processes: a consumer that stops early (here `collect` into a `Result` at the first
//! `Err`) drops the job with items in flight. Those items are no longer wanted, so their
//! workers are killed rather than waited for (an item may hang); the next job starts
//! fresh workers and runs every item.
#![cfg(unix)]

mod processes_util;
mod quiet_panics;

use std::time::Duration;

use amorsize::Backend;
use amorsize::prelude::*;
use processes_util::within;

#[amorsize::task]
fn slow_fail_at_3(x: u64) -> u64 {
    quiet_panics::quiet_panics(|m| m == "three");
    std::thread::sleep(Duration::from_millis(2));
    if x == 3 {
        panic!("three");
    }
    x
}

#[test]
fn stopping_early_kills_the_busy_workers_and_the_next_job_still_runs() {
    within(60, || {
        let r: Result<Vec<u64>, amorsize::Error> = (0..400u64)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(4)
            .map(slow_fail_at_3)
            .catch_unwind()
            .collect();
        let e = r.expect_err("item 3 fails");
        assert_eq!(e.index(), 3);
        // The worker that failed item 3 still owed the chunk sent after it (two chunks
        // per worker are in flight): killed, not pooled.
        let idle = amorsize::__private::idle_worker_pids();
        assert!(idle.len() <= 1, "a busy worker was killed: {idle:?}");
        let v: Vec<u64> = (4..20u64)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(4)
            .map(slow_fail_at_3)
            .collect();
        assert_eq!(v, (4..20).collect::<Vec<_>>());
        let again = amorsize::__private::idle_worker_pids();
        assert_eq!(
            again.len(),
            2,
            "fresh workers are back in the pool: {again:?}"
        );
    });
}
