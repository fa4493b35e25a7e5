//! The pipelined executor's helpers wait for the caller to queue chunks instead of
//! ending at once: a caller that is slow to refill (it is inside a slow item), a job
//! that stops early while helpers wait, and a re-plan that takes helpers away lose and
//! repeat nothing, and nothing is left waiting.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use amorsize::Backend;
use amorsize::prelude::*;

/// Items `0..n` on a pinned two-worker plan with one-item chunks, on `backend`; each
/// item counts its runs, and an item the caller runs sleeps `caller_ms` every 25th
/// item, so the helper finds the queue empty for longer than it waits.
fn run(backend: Backend, n: usize, caller_ms: u64) -> (Vec<u64>, Vec<usize>) {
    let runs: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
    let caller = std::thread::current().id();
    let out: Vec<u64> = (0..n as u64)
        .par_auto()
        .backend(backend)
        .max_workers(2)
        .chunk_size(1)
        .map(|x| {
            runs[x as usize].fetch_add(1, Ordering::Relaxed);
            if std::thread::current().id() == caller && x % 25 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(caller_ms));
            }
            x * 3
        })
        .collect();
    (out, runs.into_iter().map(AtomicUsize::into_inner).collect())
}

#[test]
fn helpers_that_wait_for_a_slow_caller_lose_and_repeat_nothing() {
    for backend in [Backend::Rayon, Backend::Threads] {
        let (out, runs) = support::watchdog(60, move || run(backend, 600, 3));
        assert_eq!(
            out,
            (0..600u64).map(|x| x * 3).collect::<Vec<_>>(),
            "{backend:?}"
        );
        assert!(runs.iter().all(|&r| r == 1), "{backend:?}: {runs:?}");
    }
}

#[test]
fn a_job_that_stops_early_wakes_its_waiting_helpers() {
    for backend in [Backend::Rayon, Backend::Threads] {
        let found = support::watchdog(60, move || {
            let caller = std::thread::current().id();
            (0..1_000_000u64)
                .par_auto()
                .backend(backend)
                .max_workers(2)
                .chunk_size(4)
                .map(|x| {
                    if std::thread::current().id() == caller {
                        std::thread::sleep(std::time::Duration::from_micros(300));
                    }
                    x
                })
                .position(|x| x == 2_000)
        });
        assert_eq!(found, Some(2_000), "{backend:?}");
    }
}

#[test]
fn jobs_one_after_another_keep_every_item_once() {
    // A rayon job, then pipelined jobs on the same pool at once, as a program may
    // alternate them: each item once, in order, whatever the helpers found.
    use rayon::prelude::*;
    for round in 0..20u64 {
        let plain: u64 = (0..20_000u64).into_par_iter().map(|x| x ^ round).sum();
        let (out, runs) = run(Backend::Rayon, 2_000, 0);
        assert_eq!(out, (0..2_000u64).map(|x| x * 3).collect::<Vec<_>>());
        assert!(runs.iter().all(|&r| r == 1), "round {round}");
        assert_eq!(plain, (0..20_000u64).map(|x| x ^ round).sum::<u64>());
    }
}

#[test]
fn unrelated_rayon_work_does_not_hold_a_job() {
    // An item hands rayon a job that waits until this job has returned. A helper that
    // picked it up while waiting for chunks would carry it on its stack, and the job
    // could not return before it: a deadlock, here cut by the spawned job's own 30 s
    // limit and caught by the watchdog.
    for round in 0..20u64 {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = std::sync::Mutex::new(Some(rx));
        let out = support::watchdog(10, move || {
            (0..2_000u64)
                .collect::<Vec<_>>()
                .par_auto()
                .backend(Backend::Rayon)
                .max_workers(2)
                .chunk_size(16)
                .map(|x| {
                    if x == 100
                        && let Some(rx) = rx.lock().unwrap().take()
                    {
                        rayon::spawn(move || {
                            let _ = rx.recv_timeout(std::time::Duration::from_secs(30));
                        });
                    }
                    (0..200u64).fold(x, |a, i| a.wrapping_mul(31).wrapping_add(i))
                })
                .collect::<Vec<u64>>()
        });
        drop(tx);
        assert_eq!(out.len(), 2_000, "round {round}");
    }
}
