//! The `serial` cargo feature: annotated functions run their original bodies, on the
//! caller's thread, starting no thread at all, with the same results.
//!
//! Run with `cargo test --features serial --test serial_feature`. Without the feature
//! this file compiles to nothing. One test only, so that no other test's thread
//! changes the process's thread count while it is measured.
#![cfg(feature = "serial")]

use std::sync::atomic::{AtomicUsize, Ordering};

use amorsize::prelude::*;

/// The number of threads of this process, from `/proc/self/status`.
#[cfg(target_os = "linux")]
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[cfg(not(target_os = "linux"))]
fn threads() -> usize {
    0
}

fn work(x: u64) -> u64 {
    (0..50).fold(x, |a, i| a.wrapping_mul(31).wrapping_add(i) % 1_000_003)
}

/// Pinned to the threads backend: without the feature this starts a pool.
#[auto_parallel(backend = "threads", max_workers = 2, chunk_size = 4)]
fn pinned(v: &[u64], max_threads: &AtomicUsize, off_caller: &AtomicUsize) -> Vec<u64> {
    let caller = std::thread::current().id();
    v.iter()
        .map(|&x| {
            max_threads.fetch_max(threads(), Ordering::Relaxed);
            if std::thread::current().id() != caller {
                off_caller.fetch_add(1, Ordering::Relaxed);
            }
            work(x)
        })
        .collect()
}

#[auto_parallel]
fn measured(v: &[u64], max_threads: &AtomicUsize) -> u64 {
    v.iter()
        .filter(|x| *x % 3 != 0)
        .map(|&x| {
            max_threads.fetch_max(threads(), Ordering::Relaxed);
            work(x)
        })
        .sum()
}

#[test]
fn serial_feature_starts_no_thread() {
    const { assert!(amorsize::__private::SERIAL_BUILD) };
    let v: Vec<u64> = (0..20_000).collect();
    let before = threads();
    let (max_threads, off_caller) = (AtomicUsize::new(0), AtomicUsize::new(0));

    let out = pinned(&v, &max_threads, &off_caller);
    assert_eq!(out, v.iter().map(|&x| work(x)).collect::<Vec<_>>());
    let sum = measured(&v, &max_threads);
    assert_eq!(
        sum,
        v.iter()
            .filter(|x| *x % 3 != 0)
            .map(|&x| work(x))
            .sum::<u64>()
    );

    assert_eq!(off_caller.into_inner(), 0, "every item ran on the caller");
    assert_eq!(max_threads.into_inner(), before, "no thread was started");
    assert_eq!(threads(), before);
}
