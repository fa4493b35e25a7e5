//! Exactly-once and order, for every backend (forced) and the auto choice, on cheap,
//! heavy and uneven workloads, for every consumer, including inputs shorter than the
//! sample.

use std::sync::atomic::{AtomicUsize, Ordering};

use amorsize::prelude::*;
use amorsize::{AutoIter, Backend, Plan};

/// How a test run is set up: `None` lets amorsize choose.
const MODES: [Option<Backend>; 4] = [
    None,
    Some(Backend::Serial),
    Some(Backend::Rayon),
    Some(Backend::Threads),
];

const SIZES: [usize; 6] = [0, 1, 2, 7, 1000, 20_000];

/// Item cost profiles: cheap, heavy (spins), uneven (every 97th item is heavy).
#[derive(Clone, Copy, Debug)]
enum Work {
    Cheap,
    Heavy,
    Uneven,
}

fn spin(n: u64) -> u64 {
    let mut x = n;
    for i in 0..n {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
    }
    std::hint::black_box(x)
}

fn work(kind: Work, x: u64) -> u64 {
    match kind {
        Work::Cheap => x.wrapping_mul(3).wrapping_add(1),
        Work::Heavy => {
            spin(2_000);
            x * 3 + 1
        }
        Work::Uneven => {
            if x.is_multiple_of(97) {
                spin(50_000);
            }
            x * 3 + 1
        }
    }
}

/// A `par_auto()` pipeline over `0..n` with the mode applied.
#[track_caller]
fn source(
    n: usize,
    mode: Option<Backend>,
) -> AutoIter<std::ops::Range<u64>, amorsize::iter::Identity<u64>> {
    let it = (0..n as u64).par_auto();
    match mode {
        Some(b) => it.backend(b).max_workers(3).chunk_size(5),
        None => it,
    }
}

fn sizes_for(kind: Work) -> &'static [usize] {
    match kind {
        Work::Heavy => &SIZES[..5],
        _ => &SIZES,
    }
}

#[test]
fn map_collect_runs_each_item_once_in_order() {
    for kind in [Work::Cheap, Work::Heavy, Work::Uneven] {
        for &n in sizes_for(kind) {
            for mode in MODES {
                let calls = AtomicUsize::new(0);
                let got: Vec<u64> = source(n, mode)
                    .map(|x| {
                        calls.fetch_add(1, Ordering::Relaxed);
                        work(kind, x)
                    })
                    .collect();
                let want: Vec<u64> = (0..n as u64).map(|x| work(kind, x)).collect();
                assert_eq!(got, want, "{kind:?} n={n} mode={mode:?}");
                assert_eq!(calls.into_inner(), n, "{kind:?} n={n} mode={mode:?}");
            }
        }
    }
}

#[test]
fn every_consumer_matches_std() {
    for &n in &SIZES {
        for mode in MODES {
            let ctx = format!("n={n} mode={mode:?}");
            let std_iter = || (0..n as u64).map(|x| x * 3 % 11);
            let f = |x: u64| x * 3 % 11;

            let calls = AtomicUsize::new(0);
            source(n, mode).for_each(|_| {
                calls.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(calls.into_inner(), n, "for_each {ctx}");

            assert_eq!(
                source(n, mode).map(f).sum::<u64>(),
                std_iter().sum::<u64>(),
                "sum {ctx}"
            );
            assert_eq!(
                source(n.min(30), mode).map(|x| x % 3 + 1).product::<u64>(),
                (0..n.min(30) as u64).map(|x| x % 3 + 1).product::<u64>(),
                "product {ctx}"
            );
            assert_eq!(
                source(n, mode).filter(|x| x % 2 == 0).count(),
                std_iter().count().div_ceil(2),
                "count {ctx}"
            );
            assert_eq!(source(n, mode).map(f).min(), std_iter().min(), "min {ctx}");
            assert_eq!(source(n, mode).map(f).max(), std_iter().max(), "max {ctx}");

            // Equal keys: std's min_by_key keeps the first, max_by_key the last.
            let pairs = |x: u64| (x % 5, x);
            assert_eq!(
                source(n, mode).map(pairs).min_by_key(|p| p.0),
                (0..n as u64).map(pairs).min_by_key(|p| p.0),
                "min_by_key {ctx}"
            );
            assert_eq!(
                source(n, mode).map(pairs).max_by_key(|p| p.0),
                (0..n as u64).map(pairs).max_by_key(|p| p.0),
                "max_by_key {ctx}"
            );
            // reduce keeps std's left-to-right order: a non-associative op shows it.
            assert_eq!(
                source(n, mode)
                    .map(f)
                    .reduce(|a, b| a.wrapping_mul(31).wrapping_add(b)),
                std_iter().reduce(|a, b| a.wrapping_mul(31).wrapping_add(b)),
                "reduce {ctx}"
            );
            let concat = source(n, mode).map(f).fold_reduce(
                Vec::new,
                |mut v, x| {
                    v.push(x);
                    v
                },
                |mut a, mut b| {
                    a.append(&mut b);
                    a
                },
            );
            assert_eq!(concat, std_iter().collect::<Vec<_>>(), "fold_reduce {ctx}");
            assert_eq!(source(n, mode).any(|x| x == 5), n > 5, "any {ctx}");
            assert_eq!(source(n, mode).all(|x| x < 5), n <= 5, "all {ctx}");
            assert_eq!(
                source(n, mode).find_map(|x| (x > 3 && x % 4 == 2).then_some(x * 10)),
                (0..n as u64).find_map(|x| (x > 3 && x % 4 == 2).then_some(x * 10)),
                "find_map {ctx}"
            );
            assert_eq!(
                source(n, mode).map(f).position(|x| x == 10),
                std_iter().position(|x| x == 10),
                "position {ctx}"
            );
        }
    }
}

#[test]
fn adapters_compose_like_std() {
    for &n in &SIZES {
        for mode in MODES {
            let calls = AtomicUsize::new(0);
            let inspected = AtomicUsize::new(0);
            let got: Vec<String> = source(n, mode)
                .inspect(|_| {
                    calls.fetch_add(1, Ordering::Relaxed);
                })
                .filter(|x| x % 3 != 0)
                .filter_map(|x| (x % 5 != 0).then_some(x))
                .flat_map_iter(|x| [x, x + 1000])
                .map_init(String::new, |buf, x| {
                    buf.clear();
                    buf.push_str(&x.to_string());
                    buf.clone()
                })
                .inspect(|_| {
                    inspected.fetch_add(1, Ordering::Relaxed);
                })
                .collect();
            let want: Vec<String> = (0..n as u64)
                .filter(|x| x % 3 != 0)
                .filter(|x| x % 5 != 0)
                .flat_map(|x| [x, x + 1000])
                .map(|x| x.to_string())
                .collect();
            assert_eq!(got, want, "n={n} mode={mode:?}");
            assert_eq!(calls.into_inner(), n);
            assert_eq!(inspected.into_inner(), want.len());
        }
    }
}

#[test]
fn borrowed_items_and_collections() {
    let words: Vec<String> = (0..5000).map(|i| format!("w{i}")).collect();
    for mode in MODES {
        let mut it = words.iter().par_auto();
        if let Some(b) = mode {
            it = it.backend(b).max_workers(2).chunk_size(7);
        }
        let lens: Vec<usize> = it.map(|w| w.len()).collect();
        assert_eq!(
            lens,
            words.iter().map(|w| w.len()).collect::<Vec<_>>(),
            "{mode:?}"
        );
        let set: std::collections::BTreeSet<&str> =
            words.iter().par_auto().map(|w| w.as_str()).collect();
        assert_eq!(set.len(), 5000);
        // A `Vec` of borrowed outputs is assembled chunk by chunk; a `String` (any
        // other collection) item by item: both in input order.
        let pinned = |it: AutoIter<_, _>| match mode {
            Some(b) => it.backend(b).max_workers(2).chunk_size(7),
            None => it,
        };
        let strs: Vec<&str> = pinned(words.iter().par_auto())
            .map(|w| w.as_str())
            .collect();
        assert_eq!(
            strs,
            words.iter().map(|w| w.as_str()).collect::<Vec<_>>(),
            "{mode:?}"
        );
        let text: String = pinned(words.iter().par_auto())
            .map(|w| w.chars().last().unwrap_or(' '))
            .collect();
        let want: String = words
            .iter()
            .map(|w| w.chars().last().unwrap_or(' '))
            .collect();
        assert_eq!(text, want, "{mode:?}");
    }
}

#[test]
fn on_plan_is_called_once_on_the_caller_thread() {
    let caller = std::thread::current().id();
    let mut seen: Vec<(Plan, std::thread::ThreadId)> = Vec::new();
    let v: Vec<u64> = (0..100u64)
        .par_auto()
        .on_plan(|p| seen.push((p.clone(), std::thread::current().id())))
        .map(|x| x + 1)
        .collect();
    assert_eq!(v.len(), 100);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, caller);
}

/// A progress bar changes nothing about the results, on every backend, with a known or
/// an unknown length (the bar itself draws only on a terminal).
#[cfg(feature = "progress")]
#[test]
fn progress_bars_leave_results_alone() {
    for mode in MODES {
        for n in [0usize, 1, 5000] {
            let calls = AtomicUsize::new(0);
            let mut it = (0..n as u64).par_auto().progress();
            if let Some(b) = mode {
                it = it.backend(b).max_workers(2).chunk_size(64);
            }
            let got: Vec<u64> = it
                .map(|x| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    x * 3
                })
                .collect();
            assert_eq!(got, (0..n as u64).map(|x| x * 3).collect::<Vec<_>>());
            assert_eq!(calls.into_inner(), n);
        }
        let unknown: u64 = (0..3000u64)
            .filter(|x| x % 2 == 0)
            .par_auto()
            .progress()
            .map(|x| x + 1)
            .sum();
        assert_eq!(
            unknown,
            (0..3000u64).filter(|x| x % 2 == 0).map(|x| x + 1).sum()
        );
    }
}
