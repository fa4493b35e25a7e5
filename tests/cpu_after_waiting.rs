//! A CPU-bound job sampled right after a job of waiting items is planned parallel: the
//! waiting job's threads are not counted as the CPU job's own parallelism. Run in a
//! fresh process without the disk cache, so the first CPU job is sampled.

use std::time::Duration;

use amorsize::prelude::*;
use amorsize::{Backend, Plan};

mod support;
use support::{is_child, run_child};

fn spin(rounds: u64) -> u64 {
    let mut x = rounds;
    for i in 0..rounds {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    x
}

#[test]
fn a_cpu_job_after_a_waiting_job_is_planned_parallel() {
    const NAME: &str = "a_cpu_job_after_a_waiting_job_is_planned_parallel";
    if !is_child(NAME) {
        let out = run_child(NAME, &[("AMORSIZE_CACHE", "off")], 120);
        assert!(
            out.success && out.stdout.contains("1 passed"),
            "{}\n{}",
            out.stdout,
            out.stderr
        );
        return;
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return;
    }
    for round in 0..3 {
        let waited: Vec<u64> = (0..200u64)
            .par_auto()
            .map(|x| {
                std::thread::sleep(Duration::from_millis(5));
                x
            })
            .collect();
        assert_eq!(waited.len(), 200);
        let mut plan: Option<Plan> = None;
        let out: Vec<u64> = (0..2_000u64)
            .par_auto()
            .on_plan(|p| plan = Some(p.clone()))
            .map(|x| spin(3_000) ^ x)
            .collect();
        assert_eq!(out.len(), 2_000);
        let plan = plan.expect("planned");
        assert_ne!(
            plan.backend,
            Backend::Serial,
            "round {round}: a CPU job after a waiting job was planned serial: {plan:#}"
        );
    }
}
