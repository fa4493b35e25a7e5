//! Processes: worker processes never run `main`, so state that only `main` sets (here:
//! a `static` set at the start of the test, as `main` would) is missing there. A task
//! that reads such state must never hand back a silently wrong result:
//!
//! - left to choose, amorsize does not pick worker processes for it: every result is
//!   what the caller computes, and the plan says the workers' results differ;
//! - pinned to processes, every item is either its right value or an `Err`, never a
//!   wrong value.
#![cfg(unix)]

mod support_processes;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amorsize::prelude::*;
use amorsize::{Backend, Plan};
use support_processes::within;

/// Set by `set_up_like_main` in the caller; a worker process never runs that, so it
/// reads 0 there.
static OFFSET: AtomicU64 = AtomicU64::new(0);
const SET_IN_MAIN: u64 = 1_000_000;

/// What `main` does first in a real program.
fn set_up_like_main() {
    OFFSET.store(SET_IN_MAIN, Ordering::SeqCst);
}

/// The tests of this file run one at a time: one spinning both cores next to the
/// other changes what the other measures.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serialised() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn spin_for(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// A non-thread-safe library's lock: threads queue on it, processes have one each.
static LIBRARY: Mutex<()> = Mutex::new(());

/// Lock-bound work (as in `processes_lock_bound.rs`) whose result depends on the state
/// set in main.
#[amorsize::task]
fn locked_plus_main_state(x: u64) -> u64 {
    let _g = LIBRARY.lock().unwrap_or_else(|e| e.into_inner());
    spin_for(Duration::from_micros(200));
    x + OFFSET.load(Ordering::SeqCst)
}

#[amorsize::task]
fn plus_main_state(x: u64) -> u64 {
    spin_for(Duration::from_micros(50));
    x + OFFSET.load(Ordering::SeqCst)
}

fn right(x: u64) -> u64 {
    x + SET_IN_MAIN
}

/// The items whose result is not `right(item)`, described.
fn wrong_values<'a>(results: impl Iterator<Item = (usize, Option<&'a u64>)>) -> Vec<String> {
    results
        .filter_map(|(i, r)| match r {
            Some(&v) if v != right(i as u64) => {
                Some(format!("item {i}: {v}, want {}", right(i as u64)))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn left_to_choose_a_task_that_needs_main_does_not_get_processes() {
    let _one = serialised();
    set_up_like_main();
    const ITEMS: u64 = 1200;
    let (out, plan): (Vec<u64>, Option<Plan>) =
        within(120, "an automatic job on lock-bound work", || {
            let mut plan = None;
            let out = (0..ITEMS)
                .par_auto()
                .on_plan(|p| plan = Some(p.clone()))
                .map(locked_plus_main_state)
                .collect();
            (out, plan)
        });
    let plan = plan.expect("on_plan is called");
    assert_eq!(out.len() as u64, ITEMS);
    let wrong = wrong_values(out.iter().enumerate().map(|(i, v)| (i, Some(v))));
    assert!(
        wrong.is_empty(),
        "{} of {ITEMS} results silently differ from what the caller computes (worker \
         processes never ran main, so the state it set is missing there); first: \
         {:#?}\nplan: {plan:#}",
        wrong.len(),
        &wrong[..wrong.len().min(4)]
    );
    assert_ne!(
        plan.backend,
        Backend::Processes,
        "the plan trusts worker processes with a task whose results differ there: {plan:#}"
    );
    let text = format!("{plan:#}");
    assert!(
        text.contains("differ"),
        "the plan does not say that the workers' results differ from the caller's:\n{text}"
    );
}

#[test]
fn pinned_to_processes_a_task_that_needs_main_never_returns_a_wrong_value() {
    let _one = serialised();
    set_up_like_main();
    const ITEMS: u64 = 400;
    let (out, plan) = within(120, "a job pinned to processes", || {
        let mut plan = None;
        let out: Vec<Result<u64, amorsize::Error>> = (0..ITEMS)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .on_plan(|p| plan = Some(p.clone()))
            .map(plus_main_state)
            .catch_unwind()
            .collect();
        (out, plan)
    });
    let plan = plan.expect("on_plan is called");
    assert_eq!(out.len() as u64, ITEMS);
    let wrong = wrong_values(out.iter().enumerate().map(|(i, r)| (i, r.as_ref().ok())));
    assert!(
        wrong.is_empty(),
        "{} of {ITEMS} items are Ok with a wrong value (worker processes never ran \
         main); each must be its right value or an Err; first: {:#?}\nplan: {plan:#}",
        wrong.len(),
        &wrong[..wrong.len().min(4)]
    );
    for (i, r) in out.iter().enumerate() {
        if let Err(e) = r {
            assert_eq!(e.index(), i, "an error names another item: {e}");
        }
    }
    let errors: Vec<String> = out
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    let plan_text = format!("{plan:#}");
    assert!(
        plan_text.contains("differ") || errors.iter().any(|e| e.contains("differ")),
        "neither the plan nor any error says that the workers' results differ:\n\
         plan: {plan_text}\nerrors: {:#?}",
        &errors[..errors.len().min(4)]
    );
}
