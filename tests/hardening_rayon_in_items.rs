//! Items that use rayon themselves (DESIGN.md §6's "nested" row: the function uses
//! rayon), run by amorsize's pipelined executor on a rayon pool.
//!
//! Each scenario runs in a child process of this test binary with a deadline, so a
//! deadlock fails its test in bounded time and cannot poison the pools of other tests.
//!
//! BUG (all four scenarios deadlock, most runs): the pipelined executor
//! (`amorsize-runtime/src/exec/pipeline.rs`, `Pipeline::start` / `work`) runs its worker
//! loops as rayon `scope.spawn` jobs that block in `jobs.recv()`. An item that waits on
//! rayon work of its own (a `join` inside `par_iter`, or a nested `par_auto` on the
//! windowed executor) lets its thread steal other jobs meanwhile, and it may steal a
//! not-yet-started worker loop of the same job. That loop blocks in `recv()` on top of
//! the suspended item, whose chunk can then never finish: the caller waits for that
//! chunk in `Pipeline::next`, its window fills, no more chunks are sent, and nothing
//! moves again. It happens on the Threads backend too (its pool is a rayon pool).

mod hardening_support;

use amorsize::Backend;
use amorsize::prelude::*;
use hardening_support::{is_child, run_child, spin};
use rayon::prelude::*;

/// Deadline of one child run. A scenario takes about 3 s in a debug build and well
/// under a second in release when it finishes.
const CHILD_SECS: u64 = 30;
/// Jobs per scenario: enough for the race to be lost nearly every time.
const ROUNDS: usize = 50;

/// One unit of inner work.
fn cell(x: u64, y: u64) -> u64 {
    (spin(200) & 0xffff) ^ (x + y)
}

fn inner_par_iter(x: u64) -> u64 {
    (0..64u64).into_par_iter().map(|y| cell(x, y)).sum()
}

fn inner_par_auto(x: u64) -> u64 {
    (0..64u64)
        .par_auto()
        .backend(Backend::Rayon)
        .max_workers(2)
        .chunk_size(1)
        .map(|y| cell(x, y))
        .sum()
}

/// What every `inner` computes, serially.
fn want(n: u64) -> Vec<u64> {
    (0..n)
        .map(|x| (0..64u64).map(|y| cell(x, y)).sum())
        .collect()
}

/// [`ROUNDS`] jobs of 300 items on `backend` with `workers` pipeline workers, each item
/// calling `inner`, which waits on rayon work it has split.
fn jobs(backend: Backend, workers: usize, inner: fn(u64) -> u64) {
    let expected = want(300);
    for round in 0..ROUNDS {
        let v: Vec<u64> = (0..300u64)
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

#[test]
#[ignore = "BUG: deadlock — pipeline worker loops block inside rayon jobs; see the file docs"]
fn rayon_backend_with_par_iter_inside_items_finishes() {
    check("child_rayon_backend_items_use_par_iter");
}

#[test]
#[ignore = "BUG: deadlock — pipeline worker loops block inside rayon jobs; see the file docs"]
fn rayon_backend_with_par_auto_inside_items_finishes() {
    check("child_rayon_backend_items_use_par_auto");
}

#[test]
#[ignore = "BUG: deadlock — pipeline worker loops block inside rayon jobs; see the file docs"]
fn rayon_backend_one_worker_per_thread_with_par_iter_inside_items_finishes() {
    check("child_rayon_backend_one_worker_per_thread");
}

#[test]
#[ignore = "BUG: deadlock — pipeline worker loops block inside rayon jobs; see the file docs"]
fn threads_backend_with_par_iter_inside_items_finishes() {
    check("child_threads_backend_items_use_par_iter");
}
