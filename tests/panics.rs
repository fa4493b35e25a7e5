//! Panics: propagated like rayon, or per-item errors under `catch_unwind()`; a panicking
//! source; odd options.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

use amorsize::prelude::*;
use amorsize::{Backend, ErrorKind, Reason};

const FORCED: [Backend; 3] = [Backend::Serial, Backend::Rayon, Backend::Threads];

fn quiet<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    catch_unwind(AssertUnwindSafe(f))
}

#[test]
fn a_panic_propagates_to_the_caller_with_its_payload() {
    for b in FORCED {
        let calls = AtomicUsize::new(0);
        let r = quiet(|| {
            (0..500u32)
                .par_auto()
                .backend(b)
                .max_workers(2)
                .chunk_size(4)
                .map(|x| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    if x == 123 {
                        panic!("boom at {x}");
                    }
                    x
                })
                .collect::<Vec<_>>()
        });
        let payload = r.expect_err("the panic must reach the caller");
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert_eq!(msg, "boom at 123", "{b:?}");
        // Nothing ran twice, and work stopped early (not every item ran).
        assert!(calls.into_inner() <= 500, "{b:?}");
    }
}

#[test]
fn catch_unwind_turns_each_panic_into_that_items_error() {
    for b in FORCED {
        let calls = AtomicUsize::new(0);
        let r: Vec<Result<u32, amorsize::Error>> = (0..1000u32)
            .par_auto()
            .backend(b)
            .max_workers(3)
            .chunk_size(16)
            .map(|x| {
                calls.fetch_add(1, Ordering::Relaxed);
                if x % 100 == 7 {
                    panic!("item {x} is bad");
                }
                x * 2
            })
            .catch_unwind()
            .collect();
        assert_eq!(calls.into_inner(), 1000, "{b:?}");
        assert_eq!(r.len(), 1000);
        for (i, item) in r.iter().enumerate() {
            if i % 100 == 7 {
                let e = item.as_ref().expect_err("failing item");
                assert_eq!(e.index(), i);
                assert_eq!(e.kind(), &ErrorKind::Panic);
                assert_eq!(e.message(), format!("item {i} is bad"));
                assert!(e.to_string().contains(&format!("item {i} panicked")));
            } else {
                assert_eq!(item.as_ref().ok(), Some(&(i as u32 * 2)), "{b:?} item {i}");
            }
        }
        // Collecting into Result stops at the first error, in input order.
        let first: Result<Vec<u32>, amorsize::Error> = (0..1000u32)
            .par_auto()
            .backend(b)
            .map(|x| {
                if x == 500 || x == 900 {
                    panic!("no {x}")
                } else {
                    x
                }
            })
            .catch_unwind()
            .collect();
        assert_eq!(first.expect_err("has errors").index(), 500);
    }
}

#[test]
fn catch_unwind_does_not_catch_panics_after_it() {
    let r = quiet(|| {
        (0..10u32)
            .par_auto()
            .map(|x| x)
            .catch_unwind()
            .map(|x| if x == Ok(3) { panic!("later") } else { x })
            .collect::<Vec<_>>()
    });
    assert!(r.is_err());
}

#[test]
fn a_panicking_source_propagates_and_runs_nothing_twice() {
    for b in FORCED {
        let calls = AtomicUsize::new(0);
        let src = (0..1000u32).inspect(|&x| {
            if x == 600 {
                panic!("source failed");
            }
        });
        let r = quiet(|| {
            src.par_auto()
                .backend(b)
                .max_workers(2)
                .chunk_size(8)
                .map(|x| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    x
                })
                .collect::<Vec<_>>()
        });
        assert!(r.is_err(), "{b:?}");
        assert!(calls.into_inner() <= 600, "{b:?}");
    }
}

#[test]
fn empty_and_single_inputs() {
    for b in FORCED {
        let v: Vec<u8> = Vec::<u8>::new().par_auto().backend(b).map(|x| x).collect();
        assert!(v.is_empty());
        let v: Vec<u8> = vec![9u8].par_auto().backend(b).map(|x| x + 1).collect();
        assert_eq!(v, [10]);
        assert_eq!(std::iter::empty::<u8>().par_auto().backend(b).max(), None);
    }
    let v: Vec<u8> = Vec::<u8>::new().par_auto().map(|x| x).collect();
    assert!(v.is_empty());
}

#[test]
fn absurd_options_are_clamped_with_a_reason_never_a_panic() {
    let mut plans = Vec::new();
    let v: Vec<u32> = (0..100u32)
        .par_auto()
        .backend(Backend::Threads)
        .max_workers(0)
        .chunk_size(0)
        .on_plan(|p| plans.push(p.clone()))
        .map(|x| x + 1)
        .collect();
    assert_eq!(v, (1..101).collect::<Vec<_>>());
    let p = &plans[0];
    assert_eq!((p.workers, p.chunk_size), (1, 1));
    let clamped: Vec<_> = p
        .reasons
        .iter()
        .filter_map(|r| match r {
            Reason::Clamped { option, .. } => Some(*option),
            _ => None,
        })
        .collect();
    assert_eq!(clamped, ["max_workers", "chunk_size"]);

    let mut plans = Vec::new();
    let s: u64 = (0..10_000u64)
        .par_auto()
        .min_speedup(f64::NAN)
        .on_plan(|p| plans.push(p.clone()))
        .map(|x| x * 2)
        .sum();
    assert_eq!(s, (0..10_000u64).map(|x| x * 2).sum::<u64>());
    assert!(plans[0].reasons.iter().all(|r| r.to_string().len() < 300));

    // More workers than items.
    let v: Vec<u32> = (0..3u32)
        .par_auto()
        .backend(Backend::Rayon)
        .max_workers(64)
        .chunk_size(1)
        .map(|x| x * 10)
        .collect();
    assert_eq!(v, [0, 10, 20]);
}
