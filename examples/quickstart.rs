//! Three contrasting workloads through `par_auto()`: what amorsize decides for each, and
//! how that compares with plain serial code, measured here and now.
//!
//! Run with `cargo run --release --example quickstart` (add `AMORSIZE_LOG=full` to see
//! every decision in full).

use std::time::{Duration, Instant};

use amorsize::prelude::*;

/// A CPU-bound item: about `rounds` multiply-adds.
fn crunch(seed: u64, rounds: u64) -> u64 {
    let mut x = seed;
    for i in 0..rounds {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i ^ seed);
    }
    x
}

/// Runs `f` a few times and returns the median wall time.
fn median_time<R>(reps: usize, mut f: impl FnMut() -> R) -> (Duration, R) {
    let mut times = Vec::with_capacity(reps);
    let mut last = None;
    for _ in 0..reps {
        let t = Instant::now();
        last = Some(std::hint::black_box(f()));
        times.push(t.elapsed());
    }
    times.sort();
    match last {
        Some(r) => (times[reps / 2], r),
        None => unreachable!("reps is at least 1"),
    }
}

fn report<R: PartialEq + std::fmt::Debug>(
    name: &str,
    reps: usize,
    serial: impl FnMut() -> R,
    auto: impl FnMut() -> R,
    plan: &amorsize::Plan,
) {
    let (ts, rs) = median_time(reps, serial);
    let (ta, ra) = median_time(reps, auto);
    assert_eq!(rs, ra, "{name}: par_auto must give the serial result");
    println!("{name}");
    println!("  plan:    {plan}");
    println!(
        "  serial {:>10.3?}   par_auto {:>10.3?}   speedup {:.2}x",
        ts,
        ta,
        ts.as_secs_f64() / ta.as_secs_f64()
    );
    println!();
}

/// The plan a pipeline gets, seen through `on_plan` on a first (cold) call.
fn plan_of(f: impl FnOnce(&mut Option<amorsize::Plan>)) -> amorsize::Plan {
    let mut p = None;
    f(&mut p);
    match p {
        Some(p) => p,
        None => unreachable!("on_plan is always called"),
    }
}

fn main() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("amorsize quickstart on {cpus} CPUs\n");

    // 1. Tiny: 1,000 items of a few nanoseconds. Going parallel costs more than the
    //    whole job, so amorsize stays serial (and a warm call site reads no clock).
    let tiny = |p: &mut Option<amorsize::Plan>| {
        (0..std::hint::black_box(1_000u64))
            .par_auto()
            .on_plan(|x| *p = Some(x.clone()))
            .map(|x| (x ^ 0x9e37).wrapping_mul(0x2545f4914f6cdd1d) >> 7)
            .sum::<u64>()
    };
    let plan = plan_of(|p| {
        tiny(p);
    });
    report(
        "tiny: 1,000 x ~1 ns",
        301,
        || {
            (0..std::hint::black_box(1_000u64))
                .map(|x| (x ^ 0x9e37).wrapping_mul(0x2545f4914f6cdd1d) >> 7)
                .sum::<u64>()
        },
        || tiny(&mut None),
        &plan,
    );

    // 2. Heavy CPU: 2,000 items of ~100 us. Worth every core.
    let heavy = |p: &mut Option<amorsize::Plan>| {
        (0..2_000u64)
            .par_auto()
            .on_plan(|x| *p = Some(x.clone()))
            .map(|x| crunch(x, 60_000))
            .collect::<Vec<_>>()
    };
    let plan = plan_of(|p| {
        heavy(p);
    });
    report(
        "heavy: 2,000 x ~100 us of arithmetic",
        3,
        || (0..2_000u64).map(|x| crunch(x, 60_000)).collect::<Vec<_>>(),
        || heavy(&mut None),
        &plan,
    );

    // 3. I/O-like: 100 items that each wait 10 ms. Barely any CPU, so amorsize uses
    //    the blocking thread pool with far more threads than cores.
    let io = |p: &mut Option<amorsize::Plan>| {
        (0..100u64)
            .par_auto()
            .on_plan(|x| *p = Some(x.clone()))
            .map(|x| {
                std::thread::sleep(Duration::from_millis(10));
                x + 1
            })
            .sum::<u64>()
    };
    let plan = plan_of(|p| {
        io(p);
    });
    report(
        "I/O-like: 100 x 10 ms wait",
        1,
        || {
            (0..100u64)
                .map(|x| {
                    std::thread::sleep(Duration::from_millis(10));
                    x + 1
                })
                .sum::<u64>()
        },
        || io(&mut None),
        &plan,
    );

    // Plan first, then run: the sampled results are kept.
    let job = amorsize::optimize(0..2_000u64, |x| crunch(x, 60_000));
    println!("optimize(): {:#}", job.plan());
    let out: Vec<u64> = job.collect();
    println!("optimize() produced {} results", out.len());
}
