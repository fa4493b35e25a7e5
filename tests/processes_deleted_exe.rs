//! Processes: when no worker process can start (here the executable was deleted, as a
//! package upgrade does to a running program), the caller is still protected:
//!
//! - a job pinned to processes never runs its task in the caller instead: under
//!   `catch_unwind()` every item is an `Err` saying the workers could not start, and
//!   without it the job panics with that cause, which the caller can catch;
//! - left to choose, amorsize runs the job elsewhere, with right results, and the plan
//!   says why processes were not used;
//! - a worker that dies when no replacement can start fails its own item; under
//!   `catch_unwind()` nothing panics, and every error names its own item.
//!
//! Each scenario runs in a child process started from a copy of this test binary in a
//! fresh directory, so that the child can delete its own executable.
#![cfg(target_os = "linux")]

mod support_processes;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use amorsize::prelude::*;
use amorsize::{Backend, ErrorKind};
use support_processes::{
    child_scenario, copy_of_this_test_binary, describe_status, payload_text, run_child,
};

/// The directory the child's executable was copied to: the child deletes its own
/// executable only if it is in there.
const EXE_DIR: &str = "PROCESSES_TEST_EXE_DIR";

const CHILD_SECS: u64 = 120;

// ---- tasks -------------------------------------------------------------------------

/// Aborts the process on every item: run in the caller, it takes the caller down.
#[amorsize::task]
fn abort_always(_x: u64) -> u64 {
    std::process::abort()
}

/// Doubles `x`; aborts on item 3 when `die` is set.
#[amorsize::task]
fn double_or_abort_at_3(input: (u64, bool)) -> u64 {
    let (x, die) = input;
    if die && x == 3 {
        std::process::abort();
    }
    x * 2
}

static LIBRARY: Mutex<()> = Mutex::new(());

/// Lock-bound work that the automatic choice would send to processes if it could.
#[amorsize::task]
fn locked_plus_one(x: u64) -> u64 {
    let _g = LIBRARY.lock().unwrap_or_else(|e| e.into_inner());
    let t = Instant::now();
    while t.elapsed() < Duration::from_micros(200) {
        std::hint::spin_loop();
    }
    x + 1
}

// ---- in the child ------------------------------------------------------------------

/// Deletes this process's own executable, which must be the copy the parent made.
fn delete_own_exe() {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = std::env::var(EXE_DIR).expect("the parent names the copy's directory");
    assert!(
        exe.starts_with(&dir),
        "refusing to delete {exe:?}: not the copy under {dir}"
    );
    std::fs::remove_file(&exe).expect("delete this process's executable");
}

/// Whether an error's text says that no worker process could be started.
fn says_workers_could_not_start(text: &str) -> bool {
    text.contains("start")
}

fn pinned_job_without_workers() {
    delete_own_exe();
    // Fully pinned: nothing is sampled on this thread; the task must run on workers
    // or not at all.
    let r: Vec<Result<u64, amorsize::Error>> = (0..40u64)
        .par_auto()
        .backend(Backend::Processes)
        .max_workers(2)
        .chunk_size(4)
        .map(abort_always)
        .catch_unwind()
        .collect();
    assert_eq!(r.len(), 40);
    for (i, x) in r.iter().enumerate() {
        let e = x
            .as_ref()
            .expect_err("the task aborts on every item: no item can succeed");
        assert_eq!(
            e.index(),
            i,
            "the error of item {i} names item {}",
            e.index()
        );
        let text = e.to_string();
        assert!(
            says_workers_could_not_start(&text),
            "item {i}: the error does not say workers could not start: {text}"
        );
    }
    // Without catch_unwind(): a panic that names the cause, and the process lives on.
    let caught = std::panic::catch_unwind(|| {
        (0..40u64)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(4)
            .map(abort_always)
            .collect::<Vec<u64>>()
    });
    let payload = caught.expect_err("a job whose workers cannot start cannot succeed");
    let text = payload_text(&*payload);
    assert!(
        says_workers_could_not_start(&text),
        "the panic does not name the cause: {text}"
    );
    println!("pinned job without workers: {text}");
}

fn automatic_job_without_workers() {
    delete_own_exe();
    let mut plan = None;
    let out: Vec<u64> = (0..1200u64)
        .par_auto()
        .on_plan(|p| plan = Some(p.clone()))
        .map(locked_plus_one)
        .collect();
    assert_eq!(out, (1..=1200u64).collect::<Vec<_>>(), "wrong results");
    let plan = plan.expect("on_plan is called");
    assert_ne!(plan.backend, Backend::Processes, "{plan:#}");
    let text = format!("{plan:#}");
    let says = text
        .lines()
        .any(|l| l.contains("processes") && says_workers_could_not_start(l));
    assert!(
        says,
        "the plan does not say that worker processes could not start:\n{text}"
    );
    println!("automatic job without workers: {plan}");
}

fn worker_dies_and_none_can_replace_it() {
    // A first job leaves two idle workers in the pool, started before the deletion.
    let v: Vec<u64> = (0..16u64)
        .map(|x| (x, false))
        .par_auto()
        .backend(Backend::Processes)
        .max_workers(2)
        .chunk_size(4)
        .map(double_or_abort_at_3)
        .collect();
    assert_eq!(v, (0..16u64).map(|x| x * 2).collect::<Vec<_>>());
    let idle = amorsize::__private::idle_worker_pids();
    assert!(!idle.is_empty(), "the first job left no idle worker");
    delete_own_exe();
    // Each run kills the worker it gets on item 3; the idle ones run out, and no new
    // one can start.
    let mut deaths = 0;
    for run in 0..3 {
        let caught = std::panic::catch_unwind(|| {
            (0..24u64)
                .map(|x| (x, true))
                .par_auto()
                .backend(Backend::Processes)
                .max_workers(1)
                .chunk_size(4)
                .map(double_or_abort_at_3)
                .catch_unwind()
                .collect::<Vec<Result<u64, amorsize::Error>>>()
        });
        let r = caught.unwrap_or_else(|p| {
            panic!(
                "run {run}: catch_unwind() did not protect the caller, the job panicked: {}",
                payload_text(&*p)
            )
        });
        assert_eq!(r.len(), 24, "run {run}");
        for (i, x) in r.iter().enumerate() {
            let Err(e) = x else {
                assert_eq!(x, &Ok(i as u64 * 2), "run {run}: item {i}");
                assert_ne!(i, 3, "run {run}: item 3 aborts, it cannot succeed");
                continue;
            };
            let text = e.to_string();
            assert_eq!(
                e.index(),
                i,
                "run {run}: the error of item {i} names item {}: {text}",
                e.index()
            );
            assert!(
                text.contains(&format!("item {i}")),
                "run {run}: the error of item {i} names another item: {text}"
            );
            let died = e.kind()
                == &ErrorKind::WorkerDied {
                    code: None,
                    signal: Some(libc::SIGABRT),
                };
            if i == 3 && died {
                deaths += 1;
            } else {
                assert!(
                    says_workers_could_not_start(&text),
                    "run {run}: item {i} failed without its worker dying on it, and the \
                     error does not say no worker could start: {text}"
                );
            }
        }
    }
    assert!(deaths >= 1, "no run saw item 3 kill its worker");
    println!("worker died and none could replace it: {deaths} deaths");
}

#[test]
fn child_deleted_exe() {
    let Some(scenario) = child_scenario() else {
        return;
    };
    match scenario.as_str() {
        "pinned" => pinned_job_without_workers(),
        "automatic" => automatic_job_without_workers(),
        "dies" => worker_dies_and_none_can_replace_it(),
        other => panic!("unknown scenario {other}"),
    }
    println!("child finished");
}

// ---- in the parent -----------------------------------------------------------------

/// Runs `scenario` in a child started from a fresh copy of this test binary, and
/// fails with the child's output unless it finished and exited successfully.
fn check(scenario: &str, promise: &str) {
    use std::os::unix::process::ExitStatusExt;
    let (dir, copy) = copy_of_this_test_binary("deleted-exe");
    let dir_text = dir.to_string_lossy().into_owned();
    let out = run_child(
        &copy,
        "child_deleted_exe",
        scenario,
        &[(EXE_DIR, dir_text.as_str())],
        CHILD_SECS,
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.success() && out.stdout.contains("child finished"),
        "{promise}: the child {}\n{}",
        if out.success() {
            "did not finish".to_string()
        } else if out.status.signal() == Some(libc::SIGABRT) {
            "was killed by SIGABRT: an aborting task ran in the caller's own process".to_string()
        } else {
            format!("failed ({})", describe_status(&out.status))
        },
        out.dump()
    );
}

#[test]
fn a_pinned_job_that_cannot_start_workers_fails_its_items_not_the_caller() {
    check(
        "pinned",
        "a job pinned to processes whose workers cannot start must fail its items \
         (or panic, without catch_unwind), never run its task in the caller",
    );
}

#[test]
fn an_automatic_job_that_cannot_start_workers_runs_elsewhere_and_says_why() {
    check(
        "automatic",
        "left to choose, a job whose workers cannot start runs elsewhere, right, and \
         its plan says why",
    );
}

#[test]
fn a_worker_dying_when_none_can_replace_it_fails_only_its_item() {
    check(
        "dies",
        "under catch_unwind(), a worker that dies when no replacement can start fails \
         its item; nothing panics, and every error names its own item",
    );
}
