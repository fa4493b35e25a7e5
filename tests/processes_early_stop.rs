//! Processes: a consumer that stops early (here `collect` into a `Result` at the first
//! `Err`) drops the job with items in flight; the workers finish what they owe, go back
//! to the pool, and the next job uses them.
#![cfg(unix)]

mod processes_util;

use std::time::Duration;

use amorsize::Backend;
use amorsize::prelude::*;
use processes_util::within;

#[amorsize::task]
fn slow_fail_at_3(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(2));
    if x == 3 {
        panic!("three");
    }
    x
}

#[test]
fn stopping_early_returns_the_workers_to_the_pool() {
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
        let idle = amorsize::__private::idle_worker_pids();
        assert_eq!(idle.len(), 2, "both workers are back: {idle:?}");
        let v: Vec<u64> = (4..20u64)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(4)
            .map(slow_fail_at_3)
            .collect();
        assert_eq!(v, (4..20).collect::<Vec<_>>());
        let mut again = amorsize::__private::idle_worker_pids();
        let mut idle = idle;
        again.sort_unstable();
        idle.sort_unstable();
        assert_eq!(again, idle, "the same workers were reused");
    });
}
