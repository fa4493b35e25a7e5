//! The auto choice on this machine: these check the *choice*, never a time.

use std::sync::Mutex;
use std::time::Duration;

use amorsize::prelude::*;
use amorsize::{Backend, Plan, Reason};

/// The tests of this file run one at a time: a test spinning both cores next to
/// another would change what the other measures (as any busy program would).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serialised() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn spin(rounds: u64) -> u64 {
    let mut x = rounds;
    for i in 0..rounds {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
    }
    std::hint::black_box(x)
}

#[test]
fn a_tiny_workload_stays_serial() {
    let _one = serialised();
    let mut plan: Option<Plan> = None;
    let s: u64 = (0..1000u64)
        .par_auto()
        .on_plan(|p| plan = Some(p.clone()))
        .map(|x| x.wrapping_mul(31) ^ 7)
        .sum();
    assert_eq!(s, (0..1000u64).map(|x| x.wrapping_mul(31) ^ 7).sum::<u64>());
    let plan = plan.expect("on_plan is called");
    assert_eq!(plan.backend, Backend::Serial, "{plan:#}");
}

#[test]
fn a_heavy_cpu_workload_runs_in_parallel() {
    let _one = serialised();
    if cpus() < 2 {
        return;
    }
    let mut plan: Option<Plan> = None;
    // About 100 us per item, 3000 items: ~0.3 s serially.
    let v: Vec<u64> = (0..3000u64)
        .par_auto()
        .on_plan(|p| plan = Some(p.clone()))
        .map(|x| spin(40_000) ^ x)
        .collect();
    assert_eq!(v.len(), 3000);
    let plan = plan.expect("on_plan is called");
    assert!(
        matches!(plan.backend, Backend::Rayon | Backend::Threads),
        "{plan:#}"
    );
    assert!(plan.workers >= 2, "{plan:#}");
    assert!(plan.estimated_speedup > 1.2, "{plan:#}");
}

#[test]
fn a_sleeping_workload_gets_more_threads_than_cores() {
    let _one = serialised();
    let mut plan: Option<Plan> = None;
    let v: Vec<u64> = (0..100u64)
        .par_auto()
        .on_plan(|p| plan = Some(p.clone()))
        .map(|x| {
            std::thread::sleep(Duration::from_millis(10));
            x
        })
        .collect();
    assert_eq!(v, (0..100).collect::<Vec<_>>());
    let plan = plan.expect("on_plan is called");
    assert_eq!(plan.backend, Backend::Threads, "{plan:#}");
    assert!(plan.workers > cpus(), "{plan:#}");
    assert!(
        plan.reasons
            .iter()
            .any(|r| matches!(r, Reason::IoBound { .. })),
        "{plan:#}"
    );
}

#[test]
fn a_pinned_backend_that_cannot_run_falls_back_with_a_reason() {
    let _one = serialised();
    let mut plan: Option<Plan> = None;
    let v: Vec<u64> = (0..200u64)
        .par_auto()
        .backend(Backend::Processes)
        .on_plan(|p| plan = Some(p.clone()))
        .map(|x| {
            spin(2000);
            x + 1
        })
        .collect();
    assert_eq!(v, (1..201).collect::<Vec<_>>());
    let plan = plan.expect("on_plan is called");
    assert_ne!(plan.backend, Backend::Processes);
    assert!(
        plan.reasons.iter().any(|r| matches!(
            r,
            Reason::PinnedUnavailable {
                pinned: Backend::Processes,
                ..
            }
        )),
        "{plan:#}"
    );
    let text = format!("{plan:#}");
    assert!(text.contains("#[amorsize::task]"), "{text}");
}

#[test]
fn the_fold_of_fold_reduce_counts_as_work() {
    let _one = serialised();
    if cpus() < 2 {
        return;
    }
    // All the work is in the fold step (~100 us per item); the stage itself is free.
    let mut plan: Option<Plan> = None;
    let total = (0..3000u64)
        .par_auto()
        .on_plan(|p| plan = Some(p.clone()))
        .fold_reduce(
            || 0u64,
            |acc, x| acc.wrapping_add(spin(40_000) ^ x),
            |a, b| a.wrapping_add(b),
        );
    let want = (0..3000u64).fold(0u64, |acc, x| acc.wrapping_add(spin(40_000) ^ x));
    assert_eq!(total, want);
    let plan = plan.expect("on_plan is called");
    // The sample timed the fold: ~100 us per item, not the nanoseconds of the stage,
    // and it stopped at its budget instead of folding thousands of items serially.
    assert!(plan.sample.mean_item_secs > 10e-6, "{plan:#}");
    assert!(plan.sample.items < 1000, "{plan:#}");
    assert!(plan.estimated_serial_secs > 0.1, "{plan:#}");
}
