//! Chaos on worker processes: 10,000 items, a seeded subset panics and a few abort their
//! worker. Under `catch_unwind()` exactly those items fail (a panic with its message, an
//! abort with the signal), every other item is right, and each item ran exactly once,
//! counted outside the workers (a marker file per item, created exclusively).
#![cfg(unix)]

mod processes_util;
mod quiet_panics;

use amorsize::prelude::*;
use amorsize::{Backend, ErrorKind};
use processes_util::{fresh_dir, mark, marked, within};

const N: u64 = 10_000;

/// The seeded fate of item `x`: 0 fine, 1 panics, 2 aborts its worker.
fn fate(x: u64) -> u8 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    match z % 1000 {
        0..=19 => 1,
        20 if x.is_multiple_of(7) => 2,
        _ => 0,
    }
}

#[amorsize::task]
fn chaotic(input: (String, u64)) -> u64 {
    quiet_panics::quiet_panics(|m| m.ends_with(" panicked on purpose"));
    let (dir, x) = input;
    mark(&dir, x);
    match fate(x) {
        1 => panic!("item {x} panicked on purpose"),
        2 => std::process::abort(),
        _ => x * 3 + 1,
    }
}

#[test]
fn exactly_the_failing_items_fail_and_every_item_runs_once() {
    let dir = fresh_dir("chaos");
    let d = dir.to_string_lossy().into_owned();
    let results = within(120, move || {
        (0..N)
            .map(|x| (d.clone(), x))
            .collect::<Vec<_>>()
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(50)
            .map(chaotic)
            .catch_unwind()
            .collect::<Vec<_>>()
    });
    assert_eq!(results.len(), N as usize);
    let (mut panics, mut aborts) = (0, 0);
    for (x, r) in (0..N).zip(&results) {
        match (fate(x), r) {
            (0, Ok(v)) => assert_eq!(*v, x * 3 + 1),
            (1, Err(e)) => {
                assert_eq!((e.index(), e.kind()), (x as usize, &ErrorKind::Panic));
                assert_eq!(e.message(), format!("item {x} panicked on purpose"));
                panics += 1;
            }
            (2, Err(e)) => {
                assert_eq!(e.index(), x as usize);
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::WorkerDied {
                            signal: Some(6),
                            ..
                        }
                    ),
                    "{e}"
                );
                aborts += 1;
            }
            (f, r) => panic!("item {x} (fate {f}) got {r:?}"),
        }
    }
    assert!(
        panics > 100 && aborts > 0,
        "{panics} panics, {aborts} aborts"
    );
    // Each marker file is created exclusively: a second run of any item would have
    // failed inside the task. All are there.
    assert_eq!(marked(&dir), (0..N).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
}
