//! Three contrasting workloads (tiny, heavy CPU, I/O-like), each through both front
//! doors, `#[auto_parallel]` and `.par_auto()`: what amorsize decides, and how that
//! compares with plain serial code, measured here and now.
//!
//! Run with `cargo run --release --example quickstart` (add `AMORSIZE_LOG=full` to see
//! every decision in full).

use std::time::{Duration, Instant};

use amorsize::Plan;
use amorsize::prelude::*;

/// A CPU-bound item: about `rounds` multiply-adds.
pub(crate) fn crunch(seed: u64, rounds: u64) -> u64 {
    let mut x = seed;
    for i in 0..rounds {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i ^ seed);
    }
    x
}

/// A tiny item: a few nanoseconds. Small enough that a sum of millions cannot
/// overflow.
fn mix(x: u64) -> u64 {
    (x ^ 0x9e37).wrapping_mul(0x2545f4914f6cdd1d) >> 24
}

/// An I/O-like item: waits 10 ms, like a network call.
fn fetch(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(10));
    x + 1
}

// ---- the plain serial versions --------------------------------------------------

fn tiny_serial(n: u64) -> u64 {
    (0..n).map(mix).sum()
}

fn heavy_serial(seeds: &[u64]) -> Vec<u64> {
    seeds.iter().map(|&s| crunch(s, 60_000)).collect()
}

fn io_serial(n: u64) -> u64 {
    (0..n).map(fetch).sum()
}

// ---- #[auto_parallel]: the same bodies, annotated ----------------------------------

#[auto_parallel]
fn tiny_annotated(n: u64) -> u64 {
    (0..n).map(mix).sum()
}

#[auto_parallel]
fn heavy_annotated(seeds: &[u64]) -> Vec<u64> {
    seeds.iter().map(|&s| crunch(s, 60_000)).collect()
}

#[auto_parallel]
fn io_annotated(n: u64) -> u64 {
    (0..n).map(fetch).sum()
}

// ---- par_auto(): the same pipelines, with the plan handed back -----------------------
// (`pub(crate)`: `tests/quickstart_plans.rs` runs them in this order and checks the
// plans.)

pub(crate) fn tiny_par_auto(n: u64, plan: &mut Option<Plan>) -> u64 {
    (0..n)
        .par_auto()
        .on_plan(|p| *plan = Some(p.clone()))
        .map(mix)
        .sum()
}

pub(crate) fn heavy_par_auto(seeds: &[u64], plan: &mut Option<Plan>) -> Vec<u64> {
    seeds
        .iter()
        .par_auto()
        .on_plan(|p| *plan = Some(p.clone()))
        .map(|&s| crunch(s, 60_000))
        .collect()
}

pub(crate) fn io_par_auto(n: u64, plan: &mut Option<Plan>) -> u64 {
    (0..n)
        .par_auto()
        .on_plan(|p| *plan = Some(p.clone()))
        .map(fetch)
        .sum()
}

/// Median wall time of `reps` runs, and the last result.
fn median_time<R>(reps: usize, mut f: impl FnMut() -> R) -> (Duration, R) {
    let mut times = Vec::with_capacity(reps);
    let mut last = None;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        last = Some(std::hint::black_box(f()));
        times.push(t.elapsed());
    }
    times.sort();
    match last {
        Some(r) => (times[times.len() / 2], r),
        None => unreachable!("at least one repetition ran"),
    }
}

/// Runs one workload three ways, side by side, and prints the plan and the speedups.
fn compare<R: PartialEq + std::fmt::Debug>(
    name: &str,
    reps: usize,
    mut serial: impl FnMut() -> R,
    mut annotated: impl FnMut() -> R,
    mut par_auto: impl FnMut(&mut Option<Plan>) -> R,
) {
    // The first call at each call site is cold: it samples and plans. Later calls reuse
    // the plan (warm), which is what the timings below measure.
    let mut plan = None;
    let first = par_auto(&mut plan);
    assert_eq!(
        first,
        annotated(),
        "{name}: #[auto_parallel] must give the same result"
    );
    let (ts, rs) = median_time(reps, &mut serial);
    let (tm, rm) = median_time(reps, &mut annotated);
    let (tp, rp) = median_time(reps, || par_auto(&mut None));
    assert_eq!(
        rs, rm,
        "{name}: #[auto_parallel] must give the serial result"
    );
    assert_eq!(rs, rp, "{name}: par_auto must give the serial result");
    let x = |t: Duration| ts.as_secs_f64() / t.as_secs_f64();
    println!("{name}");
    if let Some(p) = plan {
        println!("  plan: {p}");
    }
    println!("  serial           {ts:>10.3?}");
    println!("  #[auto_parallel] {tm:>10.3?}  ({:.2}x serial)", x(tm));
    println!("  .par_auto()      {tp:>10.3?}  ({:.2}x serial)", x(tp));
    println!();
}

fn main() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("amorsize quickstart on {cpus} CPUs\n");

    // 1. Tiny: 1,000 items of a few nanoseconds. Going parallel costs more than the
    //    whole job, so amorsize stays serial (and a warm call site reads no clock).
    let n = std::hint::black_box(1_000u64);
    compare(
        "tiny: 1,000 x ~2 ns",
        301,
        || tiny_serial(n),
        || tiny_annotated(n),
        |p| tiny_par_auto(n, p),
    );

    // 2. Heavy CPU: 2,000 items of ~70 us. Worth every core.
    let seeds: Vec<u64> = (0..2_000).collect();
    compare(
        "heavy: 2,000 x ~70 us of arithmetic",
        3,
        || heavy_serial(&seeds),
        || heavy_annotated(&seeds),
        |p| heavy_par_auto(&seeds, p),
    );

    // 3. I/O-like: 100 items that each wait 10 ms. Barely any CPU, so amorsize uses
    //    its blocking thread pool with far more threads than cores.
    compare(
        "I/O-like: 100 x 10 ms wait",
        1,
        || io_serial(100),
        || io_annotated(100),
        |p| io_par_auto(100, p),
    );

    // Plan first, then run: the sampled results are kept, nothing runs twice.
    let job = amorsize::optimize(0..2_000u64, |x| crunch(x, 60_000));
    println!("optimize() planned: {:#}", job.plan());
    let out: Vec<u64> = job.collect();
    println!("optimize() produced {} results", out.len());
}
