//! The auto choice on busy CPUs: CPU-bound work sampled while the CPUs are busy with
//! other threads is still planned as CPU-bound (never as I/O-bound), with no more
//! workers than CPUs.
//!
//! The sample measures thread CPU time over wall time (`cpu_ratio`); below 0.5 the
//! model treats work as I/O-bound and allows far more threads than CPUs. Time spent
//! waiting *for a CPU* (other runnable threads, other processes on a shared machine)
//! counts as wall time too, so without care busy CPUs make CPU-bound work look
//! I/O-bound and the plan adds threads to an already oversubscribed machine. First
//! seen in `exactly_once_many_callers.rs`: with 32 callers on 2 CPUs, `spin(50) ^ x`
//! was sampled at "cpu/wall 0.11" and planned as `threads x12 ... est. 3.44x serial` on
//! 2 CPUs. The sample now discounts the run-queue wait (Linux `schedstat`, see
//! `amorsize-runtime/src/sample/clock.rs`); blocking on I/O or sleep is not run-queue
//! wait, so I/O-bound work still reads low.
//!
//! The scenario runs in a child process (its spinning threads would disturb other
//! tests), and is scheduler-dependent by nature: it shows the problem reliably on a
//! machine whose CPUs are all busy, which is what it arranges.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use amorsize::prelude::*;
use amorsize::{Plan, Reason};
use support::{is_child, payload_text, run_child, spin};

#[test]
fn child_cpu_bound_work_on_busy_cpus() {
    if !is_child("child_cpu_bound_work_on_busy_cpus") {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Four runnable spinners per CPU: the caller gets about a fifth of a CPU.
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..4 * cpus)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::black_box(spin(10_000));
                }
            })
        })
        .collect();
    // About 10 s of CPU-bound work in total: the sample gets its longest budget (20 ms
    // of wall time). The plan is all we need: `on_plan` stops the job before it runs.
    let mut plan: Option<Plan> = None;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (0..100_000u64)
            .par_auto()
            .on_plan(|p| {
                plan = Some(p.clone());
                panic!("stop after planning");
            })
            .map(|x| spin(20_000) ^ x)
            .count()
    }));
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        s.join().expect("spinner");
    }
    let payload = r.expect_err("stopped after planning");
    assert_eq!(payload_text(payload.as_ref()), "stop after planning");
    let plan = plan.expect("on_plan is called");
    println!("\nplan: {plan:#}");
    assert!(
        !plan
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::IoBound { .. })),
        "CPU-bound work classified as I/O-bound: {plan:#}"
    );
    assert!(
        plan.workers <= cpus,
        "{} workers on {cpus} CPUs: {plan:#}",
        plan.workers
    );
    println!("child finished");
}

#[test]
fn cpu_bound_work_on_busy_cpus_is_not_mistaken_for_io() {
    let out = run_child("child_cpu_bound_work_on_busy_cpus", &[], 120);
    assert!(
        out.success && out.stdout.contains("child finished"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
}
