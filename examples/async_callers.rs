//! `par_auto` from async code: hand the job to the runtime's blocking threads with
//! `tokio::task::spawn_blocking`, so the runtime's worker threads keep serving other
//! tasks while it runs.
//!
//! Run with `cargo run --release --example async_callers`. Two request handlers run
//! the same CPU-bound job at once, with a 10 ms timer ticking beside them on a runtime
//! of two worker threads: first calling the job straight from the handler (amorsize
//! warns, once per process, and the ticks come late: both workers are blocked), then
//! through `spawn_blocking` (the ticks stay on time).

use std::time::{Duration, Instant};

use amorsize::prelude::*;

/// About `rounds` multiply-adds.
fn crunch(seed: u64, rounds: u64) -> u64 {
    let mut x = seed;
    for i in 0..rounds {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i ^ seed);
    }
    x
}

/// The job: 2,000 items of ~70 µs.
fn job() -> u64 {
    (0..2_000u64)
        .par_auto()
        .map(|s| crunch(s, 60_000) % 1_000)
        .sum()
}

/// A handler that runs the job on the worker thread it was called on (wrong).
async fn blocking_handler() -> u64 {
    job()
}

/// A handler that hands the job to the runtime's blocking threads (right).
async fn spawning_handler() -> u64 {
    tokio::task::spawn_blocking(job).await.unwrap_or(0)
}

/// Runs two handlers at once while a 10 ms timer ticks on the same runtime; returns
/// their results and the latest a tick fired.
async fn worst_tick_delay<F>(handler: fn() -> F) -> (u64, Duration)
where
    F: std::future::Future<Output = u64> + Send + 'static,
{
    let ticker = tokio::spawn(async {
        let mut worst = Duration::ZERO;
        for _ in 0..30 {
            let due = Instant::now() + Duration::from_millis(10);
            tokio::time::sleep(Duration::from_millis(10)).await;
            worst = worst.max(Instant::now().saturating_duration_since(due));
        }
        worst
    });
    let handlers = [tokio::spawn(handler()), tokio::spawn(handler())];
    let mut out = 0;
    for h in handlers {
        out += h.await.unwrap_or(0);
    }
    let worst = ticker.await.unwrap_or(Duration::MAX);
    (out, worst)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Wrong: each job blocks the worker thread its handler runs on.
    let (a, late_blocking) = worst_tick_delay(blocking_handler).await;
    // Right: the jobs run on blocking threads; the workers stay free.
    let (b, late_spawned) = worst_tick_delay(spawning_handler).await;
    assert_eq!(a, b);
    println!("jobs called from the handlers: worst timer delay {late_blocking:?}");
    println!("jobs inside spawn_blocking:    worst timer delay {late_spawned:?}");
}
