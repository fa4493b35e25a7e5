//! A job started on an async runtime's worker thread (recognised by the runtime's
//! default thread name, here tokio's, without depending on tokio) is warned about once
//! per process, with what to do; elsewhere nothing is said.

mod support;
use support::{is_child, run_child};

use amorsize::prelude::*;

const NAME: &str = "child_two_jobs_on_a_runtime_worker";

#[test]
fn child_two_jobs_on_a_runtime_worker() {
    if !is_child(NAME) {
        return;
    }
    let plain: u64 = (0..1_000u64).par_auto().map(|x| x * 2).sum();
    assert_eq!(plain, 999_000);
    let on_worker = std::thread::Builder::new()
        .name("tokio-runtime-worker".into())
        .spawn(|| {
            let a: u64 = (0..1_000u64).par_auto().map(|x| x * 2).sum();
            let b: u64 = (0..1_000u64).par_auto().map(|x| x + 1).sum();
            a + b
        })
        .expect("a thread")
        .join()
        .expect("no panic");
    assert_eq!(on_worker, 999_000 + 500_500);
    println!("child finished");
}

#[test]
fn a_job_on_an_async_worker_thread_is_warned_about_once() {
    let out = run_child(NAME, &[], 60);
    assert!(
        out.success && out.stdout.contains("child finished"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("async runtime's worker thread"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(
        warnings[0].contains("tokio-runtime-worker"),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("spawn_blocking"), "{}", warnings[0]);
}
