//! Chaos runs: long jobs on every backend where a seeded random subset of items panics.
//!
//! - Under `catch_unwind()`, exactly the failing items are `Err` (with their index and
//!   message), every other item is `Ok` with the right value, in order, and every item
//!   ran exactly once — also when the panic is in a `filter` or half-way through a
//!   `flat_map_iter` item, and on the windowed executor used inside a rayon pool.
//! - Without it, the caller gets one of the failing items' panics, nothing ran twice,
//!   in-flight work stopped within the window after the first failure, and nothing
//!   keeps running after the call has returned.
//!
//! Thread counts after failing calls are checked in `no_leaks_threads.rs` (a process
//! of its own, so other tests' threads do not blur the count).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use amorsize::prelude::*;
use amorsize::{AutoIter, Backend, ErrorKind, Plan};
use support::{chaos_message, failing_set, payload_text, quiet_chaos_panics, spin, watchdog};

/// Items per chaos job: long enough for many chunks on every backend.
const N: usize = 12_000;
/// About one item in this many panics.
const ONE_IN: u64 = 41;

/// How a chaos job is run.
#[derive(Clone, Copy, Debug)]
struct Mode {
    /// `None`: amorsize chooses.
    backend: Option<Backend>,
    /// Fully pinned `(max_workers, chunk_size)`: no sampling at all.
    sizes: Option<(usize, usize)>,
    /// Run the job inside `pool.install` of a 2-thread rayon pool (the windowed
    /// executor, for calls made on a rayon worker thread).
    in_pool: bool,
}

const fn mode(backend: Option<Backend>, sizes: Option<(usize, usize)>, in_pool: bool) -> Mode {
    Mode {
        backend,
        sizes,
        in_pool,
    }
}

const MODES: [Mode; 9] = [
    mode(None, None, false),
    mode(Some(Backend::Serial), None, false),
    mode(Some(Backend::Rayon), None, false),
    mode(Some(Backend::Threads), None, false),
    mode(Some(Backend::Rayon), Some((3, 1)), false),
    mode(Some(Backend::Rayon), Some((2, 97)), false),
    mode(Some(Backend::Threads), Some((4, 13)), false),
    mode(Some(Backend::Rayon), Some((2, 31)), true),
    mode(None, None, true),
];

/// The value a successful item `x` maps to; a little uneven work so chunks finish out
/// of order.
fn value(x: usize) -> u64 {
    (spin((x % 7) as u64 * 40) & 0xff) ^ (x as u64).wrapping_mul(2_654_435_761)
}

/// Per-item run counters.
fn counters(n: usize) -> Arc<Vec<AtomicU8>> {
    Arc::new((0..n).map(|_| AtomicU8::new(0)).collect())
}

/// `par_auto()` over `0..n` with the mode's options applied.
#[track_caller]
fn source(n: usize, m: Mode) -> AutoIter<std::ops::Range<usize>, amorsize::iter::Identity<usize>> {
    let mut it = (0..n).par_auto();
    if let Some(b) = m.backend {
        it = it.backend(b);
    }
    if let Some((w, c)) = m.sizes {
        it = it.max_workers(w).chunk_size(c);
    }
    it
}

/// Runs `f` as the mode says: on this thread, or inside a 2-thread rayon pool.
fn in_mode<R: Send>(m: Mode, f: impl FnOnce() -> R + Send) -> R {
    if m.in_pool {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("build a rayon pool");
        pool.install(f)
    } else {
        f()
    }
}

fn assert_each_ran_once(counts: &[AtomicU8], ctx: &str) {
    for (i, c) in counts.iter().enumerate() {
        let c = c.load(Ordering::Relaxed);
        assert_eq!(c, 1, "{ctx}: item {i} ran {c} times");
    }
}

#[test]
fn catch_unwind_fails_exactly_the_panicking_items_on_every_backend() {
    quiet_chaos_panics();
    for (k, m) in MODES.into_iter().enumerate() {
        watchdog(120, move || {
            let ctx = format!("{m:?}");
            let fail = Arc::new(failing_set(N, 1000 + k as u64, ONE_IN));
            let counts = counters(N);
            let (f, c) = (Arc::clone(&fail), Arc::clone(&counts));
            let mut plan: Option<Plan> = None;
            let got: Vec<Result<u64, amorsize::Error>> = in_mode(m, || {
                source(N, m)
                    .on_plan(|p| plan = Some(p.clone()))
                    .map(move |x| {
                        c[x].fetch_add(1, Ordering::Relaxed);
                        if f[x] {
                            panic!("{}", chaos_message(x));
                        }
                        value(x)
                    })
                    .catch_unwind()
                    .collect()
            });
            let plan = plan.expect("on_plan is called");
            if m.in_pool {
                assert!(
                    matches!(plan.backend, Backend::Serial | Backend::Rayon),
                    "{ctx}: {plan}"
                );
            }
            assert_eq!(got.len(), N, "{ctx}");
            assert!(fail.iter().filter(|&&f| f).count() > N / 100, "{ctx}");
            for (i, r) in got.iter().enumerate() {
                if fail[i] {
                    let e = r.as_ref().expect_err("a failing item is Err");
                    assert_eq!(e.index(), i, "{ctx}");
                    assert_eq!(e.kind(), &ErrorKind::Panic, "{ctx}");
                    assert_eq!(e.message(), chaos_message(i), "{ctx}");
                } else {
                    assert_eq!(r.as_ref().ok(), Some(&value(i)), "{ctx}: item {i}");
                }
            }
            assert_each_ran_once(&counts, &ctx);
        });
    }
}

#[test]
fn catch_unwind_then_more_adapters_and_consumers() {
    quiet_chaos_panics();
    for (k, m) in MODES.into_iter().enumerate() {
        watchdog(120, move || {
            let ctx = format!("{m:?}");
            let fail = Arc::new(failing_set(N, 2000 + k as u64, ONE_IN));
            let failing: Vec<usize> = (0..N).filter(|&i| fail[i]).collect();

            // The errors alone, through adapters after catch_unwind.
            let f = Arc::clone(&fail);
            let errors: Vec<usize> = in_mode(m, || {
                source(N, m)
                    .map(move |x| {
                        if f[x] {
                            panic!("{}", chaos_message(x))
                        } else {
                            x
                        }
                    })
                    .catch_unwind()
                    .filter_map(|r| r.err())
                    .map(|e| e.index())
                    .collect()
            });
            assert_eq!(errors, failing, "{ctx}");

            // The successes alone, summed.
            let f = Arc::clone(&fail);
            let sum: u64 = in_mode(m, || {
                source(N, m)
                    .map(move |x| {
                        if f[x] {
                            panic!("{}", chaos_message(x))
                        } else {
                            value(x)
                        }
                    })
                    .catch_unwind()
                    .filter_map(Result::ok)
                    .sum()
            });
            let want: u64 = (0..N).filter(|&i| !fail[i]).map(value).sum();
            assert_eq!(sum, want, "{ctx}");

            // Collecting into Result: the first failure in input order.
            let f = Arc::clone(&fail);
            let first: Result<Vec<usize>, amorsize::Error> = in_mode(m, || {
                source(N, m)
                    .map(move |x| {
                        if f[x] {
                            panic!("{}", chaos_message(x))
                        } else {
                            x
                        }
                    })
                    .catch_unwind()
                    .collect()
            });
            assert_eq!(
                first.expect_err("has failures").index(),
                failing[0],
                "{ctx}"
            );
        });
    }
}

#[test]
fn catch_unwind_covers_filter_and_discards_half_finished_flat_map_items() {
    quiet_chaos_panics();
    for (k, m) in MODES.into_iter().enumerate() {
        watchdog(120, move || {
            let ctx = format!("{m:?}");
            let fail = Arc::new(failing_set(N, 3000 + k as u64, ONE_IN));
            let counts = counters(N);
            let (f, c) = (Arc::clone(&fail), Arc::clone(&counts));
            let f2 = Arc::clone(&fail);
            // A panicking predicate, then an item that panics after emitting two of
            // its three outputs: those two must not appear.
            let got: Vec<Result<(usize, u8), amorsize::Error>> = in_mode(m, || {
                source(N, m)
                    .filter(move |&x| {
                        c[x].fetch_add(1, Ordering::Relaxed);
                        if f[x] && x % 2 == 0 {
                            panic!("{}", chaos_message(x));
                        }
                        x % 5 != 0 || f[x]
                    })
                    .flat_map_iter(move |x| {
                        let f = Arc::clone(&f2);
                        (0..3u8).map(move |j| {
                            if j == 2 && f[x] {
                                panic!("{}", chaos_message(x));
                            }
                            (x, j)
                        })
                    })
                    .catch_unwind()
                    .collect()
            });
            let mut want: Vec<Result<(usize, u8), usize>> = Vec::new();
            for x in 0..N {
                if fail[x] {
                    want.push(Err(x));
                } else if x % 5 != 0 {
                    want.extend((0..3u8).map(|j| Ok((x, j))));
                }
            }
            let got: Vec<Result<(usize, u8), usize>> = got
                .into_iter()
                .map(|r| {
                    r.map_err(|e| {
                        assert_eq!(e.message(), chaos_message(e.index()), "{ctx}");
                        e.index()
                    })
                })
                .collect();
            assert_eq!(got.len(), want.len(), "{ctx}");
            assert!(got == want, "{ctx}: outputs differ");
            assert_each_ran_once(&counts, &ctx);
        });
    }
}

#[test]
fn without_catch_unwind_the_caller_gets_the_panic_and_work_stops() {
    quiet_chaos_panics();
    for (k, m) in MODES.into_iter().enumerate() {
        watchdog(120, move || {
            let ctx = format!("{m:?}");
            // Failures only past the first quarter, so some parallel work is under way.
            let mut fail = failing_set(N, 4000 + k as u64, ONE_IN * 4);
            fail[..N / 4].iter_mut().for_each(|f| *f = false);
            let first = fail.iter().position(|&f| f).expect("some item fails");
            let fail = Arc::new(fail);
            let counts = counters(N);
            let calls = Arc::new(AtomicUsize::new(0));
            let (f, c, n) = (Arc::clone(&fail), Arc::clone(&counts), Arc::clone(&calls));
            let mut plan: Option<Plan> = None;
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                in_mode(m, || {
                    source(N, m)
                        .on_plan(|p| plan = Some(p.clone()))
                        .map(move |x| {
                            c[x].fetch_add(1, Ordering::Relaxed);
                            n.fetch_add(1, Ordering::Relaxed);
                            if f[x] {
                                panic!("{}", chaos_message(x));
                            }
                            value(x)
                        })
                        .collect::<Vec<u64>>()
                })
            }));
            let at_return = calls.load(Ordering::SeqCst);
            let payload = r.expect_err("the panic reaches the caller");
            let plan = plan.expect("on_plan is called");
            let msg = payload_text(payload.as_ref());
            let failed: usize = msg
                .strip_prefix("chaos: item ")
                .and_then(|s| s.strip_suffix(" failed"))
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{ctx}: unexpected payload {msg:?}"));
            assert!(fail[failed], "{ctx}: item {failed} did not fail");

            // Nothing ran twice; nothing runs after the call returned.
            for (i, c) in counts.iter().enumerate() {
                assert!(c.load(Ordering::Relaxed) <= 1, "{ctx}: item {i} ran twice");
            }
            // A moment for any straggler to show itself (none may).
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert_eq!(
                calls.load(Ordering::SeqCst),
                at_return,
                "{ctx}: work went on"
            );

            // Work stopped: serially at the first failure exactly; in parallel within
            // the in-flight window (at most 4 x workers chunks ahead, plus one).
            let last_run = (0..N)
                .rev()
                .find(|&i| counts[i].load(Ordering::Relaxed) > 0)
                .unwrap_or(0);
            if plan.backend == Backend::Serial {
                assert_eq!(failed, first, "{ctx}: {plan}");
                assert_eq!(at_return, first + 1, "{ctx}: {plan}");
            } else {
                let window = (4 * plan.workers + 2) * plan.chunk_size;
                assert!(
                    last_run <= first + window,
                    "{ctx}: ran up to item {last_run}, first failure {first}, {plan}"
                );
                assert!(failed <= first + window, "{ctx}: {plan}");
            }
        });
    }
}
