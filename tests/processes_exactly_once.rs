//! Processes: every item exactly once and in order; panics; a task that prints.
#![cfg(unix)]

mod processes_util;
mod quiet_panics;

use amorsize::prelude::*;
use amorsize::{Backend, ErrorKind};
use processes_util::{fresh_dir, mark, marked, within};

#[amorsize::task]
fn triple_marked(input: (String, u64)) -> (u64, u32) {
    let (dir, x) = input;
    mark(&dir, x);
    // A task that prints must not break the protocol: fd 1 is stderr in a worker.
    if x % 50 == 0 {
        println!("item {x} printing to stdout");
        // Bytes that read as a frame header (a length, then a tag) if they reached the
        // protocol; no NUL, so that logs of the test run stay text.
        print!("no newline and a frame-like prefix: \u{5}\u{1}\u{1}\u{1}\u{2}");
        std::io::Write::flush(&mut std::io::stdout()).ok();
    }
    (x * 3, std::process::id())
}

#[amorsize::task]
fn panics_on_13(x: u64) -> u64 {
    quiet_panics::quiet_panics(|m| m == "thirteen is unlucky");
    if x == 13 {
        panic!("thirteen is unlucky");
    }
    x + 1
}

#[test]
fn every_item_exactly_once_in_order_on_worker_processes() {
    within(60, || {
        let dir = fresh_dir("once");
        let d = dir.to_string_lossy().into_owned();
        let mut used = None;
        let out: Vec<(u64, u32)> = (0..200u64)
            .map(|x| (d.clone(), x))
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(7)
            .on_plan(|p| used = Some(p.backend))
            .map(triple_marked)
            .collect();
        assert_eq!(used, Some(Backend::Processes));
        let values: Vec<u64> = out.iter().map(|o| o.0).collect();
        assert_eq!(values, (0..200).map(|x| x * 3).collect::<Vec<_>>());
        let me = std::process::id();
        let mut pids: Vec<u32> = out.iter().map(|o| o.1).collect();
        pids.sort_unstable();
        pids.dedup();
        assert!(
            !pids.contains(&me),
            "items ran in workers, not in the test process"
        );
        assert!(pids.len() <= 2, "at most max_workers workers: {pids:?}");
        assert_eq!(marked(&dir), (0..200).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn a_panic_is_the_items_error_under_catch_unwind() {
    within(60, || {
        let r: Vec<Result<u64, amorsize::Error>> = (0..40u64)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(4)
            .map(panics_on_13)
            .catch_unwind()
            .collect();
        assert_eq!(r.len(), 40);
        for (i, x) in r.iter().enumerate() {
            if i == 13 {
                let e = x.as_ref().unwrap_err();
                assert_eq!(e.index(), 13);
                assert_eq!(e.kind(), &ErrorKind::Panic);
                assert_eq!(e.message(), "thirteen is unlucky");
            } else {
                assert_eq!(x, &Ok(i as u64 + 1));
            }
        }
    });
}

#[test]
fn a_panic_propagates_without_catch_unwind() {
    within(60, || {
        let r = std::panic::catch_unwind(|| {
            (0..40u64)
                .par_auto()
                .backend(Backend::Processes)
                .max_workers(2)
                .chunk_size(4)
                .map(panics_on_13)
                .collect::<Vec<u64>>()
        });
        let payload = r.expect_err("the panic reaches the caller");
        // `panic!("literal")` raises a `&'static str`, on a worker as on a thread.
        let msg = payload.downcast_ref::<&str>().copied().unwrap_or_default();
        assert_eq!(msg, "thirteen is unlucky");
        // The pool still works afterwards.
        let v: Vec<u64> = (0..10u64)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(3)
            .map(panics_on_13)
            .collect();
        assert_eq!(v, (1..11).collect::<Vec<_>>());
    });
}
