//! Nested calls never deadlock when the items use rayon themselves (`par_iter`, a
//! `join`, a nested `par_auto`) while amorsize runs them on a rayon pool or its
//! blocking pool: amorsize's own tasks never block inside a pool, so a pool thread
//! waiting inside an item can safely pick them up.
//!
//! Each scenario runs in a child process of this test binary with a deadline, so a
//! deadlock fails its test in bounded time and cannot poison the pools of other tests.
//! The serial control shows that a scenario finishes in about a second when nothing
//! deadlocks.
//!
//! The deadlock these scenarios once hit (in every run, debug and release; README,
//! "Found by the benchmark"): the first pipelined executor ran its worker loops as rayon
//! `scope.spawn` jobs that blocked in `jobs.recv()`. An item that waits on rayon work of
//! its own lets its thread steal other jobs meanwhile, and it could steal a
//! not-yet-started worker loop of the same job, which then blocked on top of the
//! suspended item, whose chunk could never finish. It happened on the Threads backend
//! too (its pool is a rayon pool), and with as many pipeline workers as pool threads.
//! The executor (`amorsize-runtime/src/exec/pipeline.rs`) now spawns one non-blocking
//! task per chunk.

mod support;

use amorsize::Backend;
use amorsize::prelude::*;
use rayon::prelude::*;
use support::{is_child, run_child, spin};

/// Deadline of one child run. A scenario that finishes takes about a second, in debug
/// and release builds alike (the inner work waits rather than computes).
const CHILD_SECS: u64 = 20;
/// Jobs per scenario: enough for the race to be lost nearly every time.
const ROUNDS: usize = 5;
/// Items per job, and inner items per item.
const OUTER: u64 = 200;
const INNER: u64 = 16;

/// One unit of inner work: a short wait, so that the item's `join` waits too (and its
/// thread looks for other work meanwhile) whatever the build profile.
fn cell(x: u64, y: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_micros(50));
    (spin(50) & 0xffff) ^ (x + y)
}

fn inner_par_iter(x: u64) -> u64 {
    (0..INNER).into_par_iter().map(|y| cell(x, y)).sum()
}

fn inner_par_auto(x: u64) -> u64 {
    (0..INNER)
        .par_auto()
        .backend(Backend::Rayon)
        .max_workers(2)
        .chunk_size(1)
        .map(|y| cell(x, y))
        .sum()
}

/// What every `inner` computes.
fn want(n: u64) -> Vec<u64> {
    (0..n)
        .map(|x| (0..INNER).map(|y| (spin(50) & 0xffff) ^ (x + y)).sum())
        .collect()
}

/// [`ROUNDS`] jobs of [`OUTER`] items on `backend` with `workers` pipeline workers, each item
/// calling `inner`, which waits on rayon work it has split.
fn jobs(backend: Backend, workers: usize, inner: fn(u64) -> u64) {
    let expected = want(OUTER);
    for round in 0..ROUNDS {
        let v: Vec<u64> = (0..OUTER)
            .par_auto()
            .backend(backend)
            .max_workers(workers)
            .chunk_size(1)
            .map(inner)
            .collect();
        assert_eq!(v, expected, "round {round}");
    }
    println!("child finished");
}

fn check(name: &str) {
    let out = run_child(name, &[], CHILD_SECS);
    assert!(
        out.success && out.stdout.contains("child finished"),
        "{name} failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn child_serial_backend_control() {
    if is_child("child_serial_backend_control") {
        jobs(Backend::Serial, 1, inner_par_iter);
    }
}

#[test]
fn child_rayon_backend_items_use_par_iter() {
    if is_child("child_rayon_backend_items_use_par_iter") {
        // More pipeline workers than the global pool has threads: the extra worker
        // tasks wait in rayon's queue, where a thread blocked in an item's join can
        // steal them.
        jobs(Backend::Rayon, 8, inner_par_iter);
    }
}

#[test]
fn child_rayon_backend_items_use_par_auto() {
    if is_child("child_rayon_backend_items_use_par_auto") {
        jobs(Backend::Rayon, 8, inner_par_auto);
    }
}

#[test]
fn child_rayon_backend_one_worker_per_thread() {
    if is_child("child_rayon_backend_one_worker_per_thread") {
        let threads = rayon::current_num_threads();
        jobs(Backend::Rayon, threads, inner_par_iter);
    }
}

#[test]
fn child_threads_backend_items_use_par_iter() {
    if is_child("child_threads_backend_items_use_par_iter") {
        jobs(Backend::Threads, 4, inner_par_iter);
    }
}

/// The same work with the outer job serial: it finishes well within the deadline, so
/// the scenarios below fail by deadlock, not by being slow.
#[test]
fn serial_backend_control_finishes() {
    check("child_serial_backend_control");
}

#[test]
fn rayon_backend_with_par_iter_inside_items_finishes() {
    check("child_rayon_backend_items_use_par_iter");
}

#[test]
fn rayon_backend_with_par_auto_inside_items_finishes() {
    check("child_rayon_backend_items_use_par_auto");
}

#[test]
fn rayon_backend_one_worker_per_thread_with_par_iter_inside_items_finishes() {
    check("child_rayon_backend_one_worker_per_thread");
}

#[test]
fn threads_backend_with_par_iter_inside_items_finishes() {
    check("child_threads_backend_items_use_par_iter");
}
