//! Processes: the number of worker processes stays proportionate to the machine,
//! whatever is asked. `.max_workers(usize::MAX)` on a source of unknown length gets
//! at most 4 workers per CPU (and the plan says the request was capped), not a
//! thousand processes; and many concurrent jobs do not leave more idle workers behind
//! than about two per CPU.
#![cfg(target_os = "linux")]

mod support_processes;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use amorsize::prelude::*;
use amorsize::{Backend, Plan};
use support_processes::{cpus, within};

/// The tests of this file run one at a time: each counts worker processes of the one
/// process-wide pool.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serialised() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The process that ran the item.
#[amorsize::task]
fn worker_pid(_x: u64) -> u32 {
    std::process::id()
}

/// The process that ran the item, after 20 ms (so concurrent jobs overlap).
#[amorsize::task]
fn slow_worker_pid(_x: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(20));
    std::process::id()
}

/// The most worker processes one job may get on this machine.
fn cap() -> usize {
    4 * cpus()
}

/// Runs `job` (which reports its plan through the hook it is given) and returns the
/// plan and the distinct worker pids the items saw. A plan asking for more than
/// [`cap`] workers fails the test before any of them is started.
fn run_capped(
    what: &'static str,
    job: impl FnOnce(&mut dyn FnMut(&Plan)) -> Vec<u32> + Send + 'static,
) -> (Plan, BTreeSet<u32>) {
    within(120, what, move || {
        let mut plan = None;
        let pids = job(&mut |p: &Plan| {
            // Checked here, before the job starts its workers: a plan for a thousand
            // processes is not run on a shared machine.
            assert!(
                p.workers <= cap(),
                "{what}: the plan asks for {} worker processes on {} CPUs (at most {} \
                 expected); not started\n{p:#}",
                p.workers,
                cpus(),
                cap()
            );
            plan = Some(p.clone());
        });
        assert_eq!(pids.len(), 2000, "{what}: every item gives its pid");
        let me = std::process::id();
        let workers: BTreeSet<u32> = pids.into_iter().filter(|&p| p != me).collect();
        (plan.expect("on_plan is called"), workers)
    })
}

#[test]
fn fully_pinned_max_workers_max_on_an_unknown_length_is_capped() {
    let _one = serialised();
    let (plan, workers) = run_capped("a fully pinned job of unknown length", |hook| {
        (0..2000u64)
            .filter(|_| true)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(usize::MAX)
            .chunk_size(8)
            .on_plan(|p| hook(p))
            .map(worker_pid)
            .collect()
    });
    assert_eq!(plan.backend, Backend::Processes, "{plan:#}");
    assert!(
        workers.len() <= cap(),
        "{} distinct worker processes ran items, at most {} expected: {workers:?}",
        workers.len(),
        cap()
    );
    let text = format!("{plan:#}");
    assert!(
        text.contains("out of range") || text.contains("capped"),
        "the plan does not say that max_workers(usize::MAX) was capped:\n{text}"
    );
}

#[test]
fn pinned_backend_max_workers_max_on_an_unknown_length_is_capped() {
    let _one = serialised();
    let (plan, workers) = run_capped("a job of unknown length pinned to processes", |hook| {
        (0..2000u64)
            .filter(|_| true)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(usize::MAX)
            .on_plan(|p| hook(p))
            .map(worker_pid)
            .collect()
    });
    assert!(
        workers.len() <= cap(),
        "{} distinct worker processes ran items, at most {} expected: {workers:?}\n{plan:#}",
        workers.len(),
        cap()
    );
}

#[test]
fn many_concurrent_jobs_leave_a_bounded_idle_pool() {
    let _one = serialised();
    const CALLERS: usize = 32;
    amorsize::__private::shutdown_idle_workers();
    within(180, "32 concurrent jobs on processes", || {
        let start = Arc::new(Barrier::new(CALLERS));
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let start = Arc::clone(&start);
                std::thread::spawn(move || {
                    start.wait();
                    let pids: Vec<u32> = (0..8u64)
                        .par_auto()
                        .backend(Backend::Processes)
                        .max_workers(2)
                        .chunk_size(2)
                        .map(slow_worker_pid)
                        .collect();
                    assert_eq!(pids.len(), 8);
                    assert!(
                        !pids.contains(&std::process::id()),
                        "an item ran in the caller"
                    );
                })
            })
            .collect();
        for c in callers {
            if let Err(p) = c.join() {
                std::panic::resume_unwind(p);
            }
        }
    });
    let idle = amorsize::__private::idle_worker_pids();
    let most = 2 * cpus().max(2);
    amorsize::__private::shutdown_idle_workers();
    assert!(
        idle.len() <= most,
        "after {CALLERS} concurrent jobs, {} idle worker processes wait in the pool \
         (at most {most} expected on {} CPUs)",
        idle.len(),
        cpus()
    );
}
