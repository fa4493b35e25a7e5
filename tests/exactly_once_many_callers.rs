//! Exactly once with many callers at once: 32 threads x 20 calls each, mixing every
//! backend, pinned and automatic plans, per-item failures and nested calls, all sharing
//! the plan cache, the rayon pool and the blocking pool. Every result is checked, a
//! watchdog fails the test rather than letting a deadlock hang it, and a sampler checks
//! the process never holds more threads than the pools plus the callers.
//!
//! The only test of its file, so no other test's threads blur the count.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use amorsize::prelude::*;
use amorsize::{Backend, Plan};
use support::{chaos_message, quiet_chaos_panics, spin, watchdog};

const CALLERS: usize = 32;
const CALLS_EACH: usize = 20;
/// The largest blocking pool any plan here may ask for (pinned, or the cap of the
/// automatic plans), reached in warm-up, so that no pool is replaced mid-storm.
const MAX_THREADS_WORKERS: usize = 6;

/// Threads of this process now (Linux), or 0 where it cannot be read.
fn threads_now() -> usize {
    #[cfg(target_os = "linux")]
    {
        support::thread_count()
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// Notes the largest blocking-pool size a plan asked for, and shows the first plan that
/// took CPU-bound work for I/O-bound (the sample, taken while 32 callers share the
/// CPUs, can mistake waiting for a CPU for waiting on I/O: auto_choice_busy_cpus.rs).
fn note(p: &Plan, most: &AtomicUsize) {
    if p.backend == Backend::Threads {
        most.fetch_max(p.workers, Ordering::Relaxed);
    }
    let io_bound = p
        .reasons
        .iter()
        .any(|r| matches!(r, amorsize::Reason::IoBound { .. }));
    static SHOWN: std::sync::Once = std::sync::Once::new();
    if io_bound {
        SHOWN.call_once(|| eprintln!("CPU-bound work planned as I/O-bound: {p}"));
    }
}

/// One call of kind `kind` by caller `t`; returns nothing, checks its own result.
fn call(t: usize, i: usize, most: &AtomicUsize) {
    let n = 600 + 37 * ((t + i) % 13);
    let kind = (t * 7 + i) % 7;
    let want_sum = |f: &dyn Fn(u64) -> u64| (0..n as u64).map(f).sum::<u64>();
    match kind {
        // Automatic, a little work per item.
        0 => {
            let v: Vec<u64> = (0..n as u64)
                .par_auto()
                .max_workers(MAX_THREADS_WORKERS)
                .on_plan(|p| note(p, most))
                .map(|x| spin(50) ^ x)
                .collect();
            let want: Vec<u64> = (0..n as u64).map(|x| spin(50) ^ x).collect();
            assert_eq!(v, want, "kind 0, caller {t}");
        }
        // Serial, pinned.
        1 => {
            let s: u64 = (0..n as u64)
                .par_auto()
                .backend(Backend::Serial)
                .map(|x| x * 3)
                .sum();
            assert_eq!(s, want_sum(&|x| x * 3), "kind 1, caller {t}");
        }
        // Rayon, with a serial call nested in every item. (A nested call that waits on
        // rayon work inside a Rayon-backend item once deadlocked; that is checked by
        // nested_rayon_in_items.rs, and the storm keeps clear of it.)
        2 => {
            let s: u64 = (0..n as u64 / 10)
                .par_auto()
                .backend(Backend::Rayon)
                .map(|x| {
                    (0..50u64)
                        .par_auto()
                        .backend(Backend::Serial)
                        .map(|y| x * y)
                        .sum::<u64>()
                })
                .sum();
            let want: u64 = (0..n as u64 / 10)
                .map(|x| (0..50u64).map(|y| x * y).sum::<u64>())
                .sum();
            assert_eq!(s, want, "kind 2, caller {t}");
        }
        // The blocking pool, fully pinned, 1 to 6 workers.
        3 => {
            let w = 1 + (t + i) % MAX_THREADS_WORKERS;
            let v: Vec<u64> = (0..n as u64)
                .par_auto()
                .backend(Backend::Threads)
                .max_workers(w)
                .chunk_size(8)
                .on_plan(|p| note(p, most))
                .map(|x| x + 1)
                .collect();
            assert_eq!(v, (1..=n as u64).collect::<Vec<_>>(), "kind 3, caller {t}");
        }
        // Automatic, with failures as values.
        4 => {
            let r: Vec<Result<u64, amorsize::Error>> = (0..n as u64)
                .par_auto()
                .max_workers(MAX_THREADS_WORKERS)
                .on_plan(|p| note(p, most))
                .map(|x| {
                    if x % 97 == 13 {
                        panic!("{}", chaos_message(x as usize));
                    }
                    x
                })
                .catch_unwind()
                .collect();
            for (x, r) in r.iter().enumerate() {
                match r {
                    Ok(v) => assert_eq!(*v, x as u64, "kind 4, caller {t}"),
                    Err(e) => assert_eq!((e.index(), x % 97), (x, 13), "kind 4, caller {t}"),
                }
            }
        }
        // The blocking pool fully pinned, with a rayon-pinned call nested in every item:
        // the nested call must run inline all the same.
        5 => {
            let inner_backends = std::sync::Mutex::new(Vec::new());
            let s: u64 = (0..n as u64 / 20)
                .par_auto()
                .backend(Backend::Threads)
                .max_workers(2)
                .chunk_size(1)
                .map(|x| {
                    (0..40u64)
                        .par_auto()
                        .backend(Backend::Rayon)
                        .max_workers(2)
                        .chunk_size(1)
                        .on_plan(|p| inner_backends.lock().unwrap().push(p.backend))
                        .map(|y| x + y)
                        .sum::<u64>()
                })
                .sum();
            let want: u64 = (0..n as u64 / 20)
                .map(|x| (0..40u64).map(|y| x + y).sum::<u64>())
                .sum();
            assert_eq!(s, want, "kind 5, caller {t}");
            let inner = inner_backends.into_inner().unwrap();
            assert_eq!(inner.len(), n / 20, "kind 5, caller {t}");
            assert!(
                inner.iter().all(|&b| b == Backend::Serial),
                "kind 5, caller {t}: nested in the blocking pool must run inline: {inner:?}"
            );
        }
        // The blocking pool, with an automatic call nested in every item (inline).
        _ => {
            let s: u64 = (0..n as u64 / 10)
                .par_auto()
                .backend(Backend::Threads)
                .max_workers(MAX_THREADS_WORKERS)
                .on_plan(|p| note(p, most))
                .map(|x| (0..30u64).par_auto().map(|y| x ^ y).sum::<u64>())
                .sum();
            let want: u64 = (0..n as u64 / 10)
                .map(|x| (0..30u64).map(|y| x ^ y).sum::<u64>())
                .sum();
            assert_eq!(s, want, "kind 6, caller {t}");
        }
    }
}

#[test]
fn thirty_two_callers_mixing_every_backend() {
    quiet_chaos_panics();
    let (peak, most, before) = watchdog(300, || {
        let most = Arc::new(AtomicUsize::new(0));
        // Warm-up: the blocking pool at its largest size for this test, so that no
        // pool is replaced (and briefly doubled) during the storm.
        let v: Vec<u32> = (0..100u32)
            .par_auto()
            .backend(Backend::Threads)
            .max_workers(MAX_THREADS_WORKERS)
            .chunk_size(1)
            .map(|x| x + 1)
            .collect();
        assert_eq!(v.len(), 100);
        let before = threads_now();

        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicUsize::new(0));
        let sampler = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(threads_now(), Ordering::Relaxed);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
        };
        let callers: Vec<_> = (0..CALLERS)
            .map(|t| {
                let most = Arc::clone(&most);
                std::thread::spawn(move || {
                    for i in 0..CALLS_EACH {
                        call(t, i, &most);
                    }
                })
            })
            .collect();
        let mut failures = Vec::new();
        for (t, h) in callers.into_iter().enumerate() {
            if let Err(p) = h.join() {
                failures.push((t, support::payload_text(p.as_ref())));
            }
        }
        stop.store(true, Ordering::Relaxed);
        sampler.join().expect("sampler");
        assert!(failures.is_empty(), "callers failed: {failures:?}");
        (
            peak.load(Ordering::Relaxed),
            most.load(Ordering::Relaxed),
            before,
        )
    });
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "threads: {before} before, peak {peak}; largest blocking pool asked for: {most}; {cpus} CPUs"
    );
    assert!(
        most <= MAX_THREADS_WORKERS,
        "a plan asked for {most} threads"
    );
    if cfg!(target_os = "linux") {
        // Rayon's pool (with slack: cpus * 4), the blocking pool, the callers, the
        // sampler, the watchdog, the harness.
        let bound = cpus * 4 + MAX_THREADS_WORKERS + CALLERS + 4;
        assert!(peak <= bound, "{peak} threads at once, bound {bound}");
    }
}
