//! Processes and the environment: with `AMORSIZE_BACKEND=processes`, a job that
//! cannot run on processes (its function is a closure) runs on another backend, and
//! its one-line plan names the variable it overrode, rather than only saying that
//! the other backend was fastest (which leaves the user wondering why their setting
//! was ignored).
//!
//! The environment is read once per process, so the job runs in a child process of
//! this test binary with the variables set.
#![cfg(unix)]

mod support_processes;

use amorsize::prelude::*;
use support_processes::{child_scenario, run_child};

/// Burns about `rounds` multiply-adds of CPU.
fn spin(rounds: u64) -> u64 {
    let mut x = rounds;
    for i in 0..rounds {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    std::hint::black_box(x)
}

#[test]
fn child_closure_job() {
    if child_scenario().as_deref() != Some("env_pin") {
        return;
    }
    let mut plan = None;
    // CPU-bound work that scales on threads: enough of it for a parallel plan.
    let v: Vec<u64> = (0..3000u64)
        .par_auto()
        .on_plan(|p| plan = Some(p.clone()))
        .map(|x| spin(4_000) ^ spin(4_000) ^ x)
        .collect();
    assert_eq!(v, (0..3000u64).collect::<Vec<_>>());
    let plan = plan.expect("on_plan is called");
    println!("PLAN-LINE: {plan}");
    println!("PLAN-BACKEND: {}", plan.backend);
    println!("child finished");
}

#[test]
fn the_one_line_plan_names_the_overridden_amorsize_backend() {
    let exe = std::env::current_exe().expect("current_exe");
    let out = run_child(
        &exe,
        "child_closure_job",
        "env_pin",
        &[("AMORSIZE_BACKEND", "processes"), ("AMORSIZE_LOG", "plan")],
        120,
    );
    assert!(
        out.success() && out.stdout.contains("child finished"),
        "the child failed:\n{}",
        out.dump()
    );
    // libtest prints "test child_closure_job ... " just before the child's first line.
    let line = out
        .stdout
        .lines()
        .find_map(|l| l.split_once("PLAN-LINE: ").map(|(_, plan)| plan))
        .expect("the child prints its plan");
    let backend = out
        .stdout
        .lines()
        .find_map(|l| l.split_once("PLAN-BACKEND: ").map(|(_, b)| b))
        .unwrap_or("?");
    assert_ne!(
        backend, "processes",
        "a closure cannot run on processes: {line}"
    );
    assert!(
        line.contains("AMORSIZE_BACKEND"),
        "with AMORSIZE_BACKEND=processes, the job ran on {backend} and its one-line plan \
         does not name the variable it overrode:\n{line}"
    );
    // AMORSIZE_LOG=plan prints the same one line on stderr.
    let logged: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("amorsize: ") && !l.starts_with("amorsize: ignoring"))
        .collect();
    assert!(!logged.is_empty(), "nothing logged:\n{}", out.stderr);
    for l in &logged {
        assert!(
            l.contains("AMORSIZE_BACKEND"),
            "the logged plan does not name AMORSIZE_BACKEND:\n{l}"
        );
    }
}
