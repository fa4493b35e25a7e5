//! A cap on the workers (`max_workers`) is a cap on how many items run at once: the
//! pipelined executors' spare helper (which keeps the backend's threads busy while the
//! caller is inside a slow item) is not added then. Uncapped, the job keeps every item
//! exactly once and in order with the spare helper.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use amorsize::Backend;
use amorsize::prelude::*;

/// Runs 300 items that each wait 100 us, counting how many run at once; returns the
/// outputs and the most seen at once.
fn counted(backend: Backend, cap: Option<usize>) -> (Vec<u64>, usize) {
    let (now, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let job = (0..300u64).collect::<Vec<_>>().par_auto().backend(backend);
    let job = match cap {
        Some(n) => job.max_workers(n),
        None => job,
    };
    let out = job
        .map(|x| {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(Duration::from_micros(100));
            now.fetch_sub(1, Ordering::SeqCst);
            x * 2
        })
        .collect();
    (out, peak.into_inner())
}

#[test]
fn capped_workers_never_run_more_items_at_once() {
    let want: Vec<u64> = (0..300).map(|x| x * 2).collect();
    for backend in [Backend::Rayon, Backend::Threads] {
        for cap in [1, 2, 3] {
            let (out, peak) = counted(backend, Some(cap));
            assert_eq!(out, want, "{backend} capped at {cap}");
            assert!(
                peak <= cap,
                "{backend} capped at {cap}: {peak} items at once"
            );
        }
    }
}

#[test]
fn capped_workers_hold_inside_a_rayon_pool_too() {
    // On a rayon worker the job runs windows of chunks on rayon's own work stealing,
    // which may run a whole window at once: with a cap, a window holds no more
    // chunks than the cap (items that call rayon themselves take the same path).
    let want: Vec<u64> = (0..300).map(|x| x * 2).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .expect("a pool of 4 threads");
    for cap in [1, 2, 3] {
        let (out, peak) = pool.install(|| counted(Backend::Rayon, Some(cap)));
        assert_eq!(out, want, "capped at {cap}");
        assert!(peak <= cap, "capped at {cap}: {peak} items at once");
    }
}

#[test]
fn uncapped_jobs_keep_every_item_once_and_in_order() {
    let want: Vec<u64> = (0..300).map(|x| x * 2).collect();
    for backend in [Backend::Rayon, Backend::Threads] {
        let (out, peak) = counted(backend, None);
        assert_eq!(out, want, "{backend}");
        assert!(peak >= 1);
    }
}
