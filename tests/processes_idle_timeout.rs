//! Processes: idle workers exit by themselves after the idle timeout and are reaped
//! (no zombies); the next job starts new ones.
#![cfg(target_os = "linux")]

mod processes_util;

use std::time::{Duration, Instant};

use amorsize::Backend;
use amorsize::prelude::*;
use processes_util::within;

#[amorsize::task]
fn square(x: u64) -> u64 {
    x * x
}

/// Whether `/proc/<pid>` is gone: exited *and* reaped.
fn reaped(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn run() -> Vec<u64> {
    (0..20u64)
        .par_auto()
        .backend(Backend::Processes)
        .max_workers(2)
        .chunk_size(3)
        .map(square)
        .collect()
}

#[test]
fn idle_workers_exit_and_are_reaped() {
    within(30, || {
        amorsize::__private::set_worker_idle_timeout(Duration::from_millis(300));
        assert_eq!(run(), (0..20).map(|x| x * x).collect::<Vec<_>>());
        let pids = amorsize::__private::idle_worker_pids();
        assert_eq!(pids.len(), 2, "both workers wait in the pool");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pids.iter().all(|&p| reaped(p)) {
            assert!(
                Instant::now() < deadline,
                "idle workers {pids:?} still there"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The pool notices they left and starts new ones.
        assert_eq!(run(), (0..20).map(|x| x * x).collect::<Vec<_>>());
        let again = amorsize::__private::idle_worker_pids();
        assert_eq!(again.len(), 2);
        assert!(
            again.iter().all(|p| !pids.contains(p)),
            "{again:?} vs {pids:?}"
        );
        amorsize::__private::shutdown_idle_workers();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !again.iter().all(|&p| reaped(p)) {
            assert!(
                Instant::now() < deadline,
                "shut-down workers {again:?} still there"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}
