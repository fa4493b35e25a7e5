//! Processes: a worker that dies fails only the item it was running; the items it had
//! finished are kept, those it had not started run elsewhere, exactly once; the pool
//! replaces it and keeps working.
#![cfg(unix)]

mod processes_util;

use amorsize::prelude::*;
use amorsize::{Backend, ErrorKind};
use processes_util::{fresh_dir, mark, marked, within};

/// Aborts the worker on items `x % 41 == 5` when `die` is set.
#[amorsize::task]
fn double_or_abort(input: (String, u64, bool)) -> u64 {
    let (dir, x, die) = input;
    if !dir.is_empty() {
        mark(&dir, x);
    }
    if die && x % 41 == 5 {
        std::process::abort();
    }
    x * 2
}

fn inputs(dir: &str, n: u64, die: bool) -> Vec<(String, u64, bool)> {
    (0..n).map(|x| (dir.to_string(), x, die)).collect()
}

#[test]
fn a_dead_worker_fails_its_item_only_and_is_replaced() {
    within(60, || {
        let dir = fresh_dir("death");
        let d = dir.to_string_lossy().into_owned();
        let r: Vec<Result<u64, amorsize::Error>> = inputs(&d, 120, true)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(8)
            .map(double_or_abort)
            .catch_unwind()
            .collect();
        assert_eq!(r.len(), 120);
        for (i, x) in r.iter().enumerate() {
            if i % 41 == 5 {
                let e = x.as_ref().expect_err("the aborting item fails");
                assert_eq!(e.index(), i);
                assert_eq!(
                    e.kind(),
                    &ErrorKind::WorkerDied {
                        code: None,
                        signal: Some(libc::SIGABRT)
                    },
                    "{e}"
                );
                let text = e.to_string();
                assert!(text.contains(&format!("item {i}")), "{text}");
                assert!(text.contains("signal 6"), "{text}");
                assert!(text.contains("worker process died"), "{text}");
            } else {
                assert_eq!(x, &Ok(i as u64 * 2), "item {i}");
            }
        }
        // Every item started exactly once (a second start would have panicked in
        // `mark`, and that would show as an error above).
        assert_eq!(marked(&dir), (0..120).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(&dir);

        // The next call on the same pool works.
        let v: Vec<u64> = inputs("", 30, false)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(4)
            .map(double_or_abort)
            .collect();
        assert_eq!(v, (0..30).map(|x| x * 2).collect::<Vec<_>>());
    });
}

#[test]
fn a_dead_worker_propagates_without_catch_unwind() {
    within(60, || {
        let r = std::panic::catch_unwind(|| {
            inputs("", 60, true)
                .par_auto()
                .backend(Backend::Processes)
                .max_workers(2)
                .chunk_size(8)
                .map(double_or_abort)
                .collect::<Vec<u64>>()
        });
        let payload = r.expect_err("the death reaches the caller as a panic");
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(msg.contains("item 5") || msg.contains("item 46"), "{msg}");
        assert!(msg.contains("died"), "{msg}");

        let v: Vec<u64> = inputs("", 12, false)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(2)
            .map(double_or_abort)
            .collect();
        assert_eq!(v, (0..12).map(|x| x * 2).collect::<Vec<_>>());
    });
}
