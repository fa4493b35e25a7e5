//! The quickstart's workloads, in the quickstart's order, plan what the quickstart says
//! they plan: the CPU-bound ones parallel on a machine with two or more CPUs, also
//! right after the I/O-like job (whose threads wind down meanwhile), and the I/O-like
//! one parallel. (The tiny one is serial in the release build the quickstart runs in;
//! a debug build makes its items several times costlier, so it is not checked here.)
//! Run in a fresh process without the disk cache, as a first run would.

#[allow(dead_code)]
#[path = "../examples/quickstart.rs"]
mod quickstart;

mod support;
use support::{is_child, run_child};

use amorsize::{Backend, Plan};

const NAME: &str = "the_quickstart_plans_cpu_work_parallel";

#[test]
fn the_quickstart_plans_cpu_work_parallel() {
    if !is_child(NAME) {
        let out = run_child(NAME, &[("AMORSIZE_CACHE", "off")], 300);
        assert!(
            out.success && out.stdout.contains("1 passed"),
            "{}\n{}",
            out.stdout,
            out.stderr
        );
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let plan_of = |run: &mut dyn FnMut(&mut Option<Plan>)| {
        let mut plan = None;
        run(&mut plan);
        plan.expect("on_plan is called")
    };
    // Run for its place in the order (it warms nothing the others use).
    let _tiny = plan_of(&mut |p| {
        quickstart::tiny_par_auto(1_000, p);
    });
    let seeds: Vec<u64> = (0..2_000).collect();
    let heavy = plan_of(&mut |p| {
        quickstart::heavy_par_auto(&seeds, p);
    });
    let io = plan_of(&mut |p| {
        quickstart::io_par_auto(100, p);
    });
    // Right after the I/O-like job, as in the quickstart.
    let job = amorsize::optimize(0..2_000u64, |x| quickstart::crunch(x, 60_000));
    let after_io = job.plan().clone();
    let out: Vec<u64> = job.collect();
    assert_eq!(out.len(), 2_000);

    assert_ne!(io.backend, Backend::Serial, "I/O-like: {io:#}");
    if cpus >= 2 {
        assert_ne!(heavy.backend, Backend::Serial, "heavy: {heavy:#}");
        assert_ne!(
            after_io.backend,
            Backend::Serial,
            "optimize() right after the I/O-like job: {after_io:#}"
        );
    }
}
