//! Nested calls never multiply threads and never deadlock: inside rayon's `par_iter`,
//! inside `pool.install`, inside amorsize's own Threads pool, three deep; every
//! combination of pinned backends three deep (with the plan each level got), an
//! automatic plan inside `pool.install` sized to that pool, and a pool of a single
//! thread. (Items that use rayon themselves: `nested_rayon_in_items.rs`.)

mod support;

use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use amorsize::prelude::*;
use amorsize::{Backend, NestedIn, Plan, Reason};
use rayon::prelude::*;

/// Runs `f` on its own thread and fails the test if it takes longer than `secs`.
fn watchdog<R: Send + 'static>(secs: u64, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(r) => r,
        Err(_) => panic!("deadlock: no answer within {secs} s"),
    }
}

fn inner_sum(n: u64, plans: &Mutex<Vec<Plan>>) -> u64 {
    (0..n)
        .par_auto()
        .on_plan(|p| plans.lock().unwrap().push(p.clone()))
        .map(|x| x * 2)
        .sum()
}

#[test]
fn inside_rayon_par_iter_uses_rayon_or_inline_never_more_threads() {
    let total = watchdog(30, || {
        let plans = Mutex::new(Vec::new());
        let total: u64 = (0..64u64)
            .into_par_iter()
            .map(|i| inner_sum(1000 + i, &plans))
            .sum();
        for p in plans.lock().unwrap().iter() {
            assert!(
                matches!(p.backend, Backend::Serial | Backend::Rayon),
                "nested in rayon must not start other pools: {p}"
            );
        }
        total
    });
    let want: u64 = (0..64u64)
        .map(|i| (0..1000 + i).map(|x| x * 2).sum::<u64>())
        .sum();
    assert_eq!(total, want);
}

#[test]
fn forced_threads_inside_rayon_is_refused_with_a_reason() {
    let plans = watchdog(30, || {
        let plans = Mutex::new(Vec::new());
        (0..8u32).into_par_iter().for_each(|_| {
            let v: Vec<u32> = (0..100u32)
                .par_auto()
                .backend(Backend::Threads)
                .on_plan(|p| plans.lock().unwrap().push(p.clone()))
                .map(|x| x + 1)
                .collect();
            assert_eq!(v, (1..101).collect::<Vec<_>>());
        });
        plans.into_inner().unwrap()
    });
    for p in plans {
        // Either run inline on this worker thread, or on the same rayon pool.
        assert!(
            matches!(p.backend, Backend::Serial | Backend::Rayon),
            "{p:#}"
        );
    }
}

#[test]
fn inside_pool_install_uses_that_pool() {
    let names = watchdog(30, || {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .thread_name(|i| format!("custom-pool-{i}"))
            .build()
            .unwrap();
        pool.install(|| {
            (0..2000u64)
                .par_auto()
                .backend(Backend::Rayon)
                .max_workers(2)
                .chunk_size(10)
                .map(|_| std::thread::current().name().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        })
    });
    assert_eq!(names.len(), 2000);
    assert!(
        names.iter().all(|n| n.starts_with("custom-pool-")),
        "{:?}",
        &names[..5]
    );
}

#[test]
fn inside_the_threads_pool_runs_inline() {
    let plans = watchdog(30, || {
        let plans = Mutex::new(Vec::new());
        let sums: Vec<u64> = (0..20u64)
            .par_auto()
            .backend(Backend::Threads)
            .max_workers(4)
            .chunk_size(1)
            .map(|i| inner_sum(100 + i, &plans))
            .collect();
        assert_eq!(sums[0], (0..100u64).map(|x| x * 2).sum::<u64>());
        plans.into_inner().unwrap()
    });
    assert_eq!(plans.len(), 20);
    for p in plans {
        assert_eq!(p.backend, Backend::Serial);
        assert_eq!(
            p.reasons[0],
            Reason::Nested {
                inside: NestedIn::ThreadsPool
            }
        );
    }
}

#[test]
fn three_deep_on_every_backend_finishes() {
    for b in [Backend::Rayon, Backend::Threads] {
        let total = watchdog(60, move || {
            (0..6u64)
                .par_auto()
                .backend(b)
                .max_workers(2)
                .chunk_size(1)
                .map(|i| {
                    (0..6u64)
                        .par_auto()
                        .map(|j| (0..50u64).par_auto().map(|k| i * j + k).sum::<u64>())
                        .sum::<u64>()
                })
                .sum::<u64>()
        });
        let want: u64 = (0..6u64)
            .map(|i| {
                (0..6u64)
                    .map(|j| (0..50u64).map(|k| i * j + k).sum::<u64>())
                    .sum::<u64>()
            })
            .sum();
        assert_eq!(total, want, "{b:?}");
    }
}

#[test]
fn many_threads_calling_at_once_share_pools_and_cache() {
    let results = watchdog(60, || {
        let handles: Vec<_> = (0..16u64)
            .map(|t| {
                std::thread::spawn(move || {
                    (0..2000u64)
                        .par_auto()
                        .backend(if t % 2 == 0 {
                            Backend::Threads
                        } else {
                            Backend::Rayon
                        })
                        .map(|x| x + t)
                        .sum::<u64>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    for (t, r) in results.into_iter().enumerate() {
        assert_eq!(r, (0..2000u64).map(|x| x + t as u64).sum::<u64>());
    }
}

/// An item that uses rayon itself while amorsize runs items on rayon: a pool thread
/// waiting inside the item's `join` may pick up amorsize's own queued work, which must
/// therefore never block (this deadlocked when chunk workers waited on a channel).
#[test]
fn items_that_use_rayon_themselves_do_not_deadlock_any_backend() {
    for b in [Backend::Rayon, Backend::Threads, Backend::Serial] {
        for _ in 0..5 {
            let total = watchdog(30, move || {
                (0..1000u64)
                    .par_auto()
                    .backend(b)
                    .max_workers(4)
                    .chunk_size(1)
                    .map(|i| (0..2000u64).into_par_iter().map(|k| k ^ i).sum::<u64>())
                    .sum::<u64>()
            });
            let want: u64 = (0..1000u64)
                .map(|i| (0..2000u64).map(|k| k ^ i).sum::<u64>())
                .sum();
            assert_eq!(total, want, "{b:?}");
        }
    }
}

// ---- every pinned combination, pools of the caller's ---------------------------------

const PINS: [Backend; 3] = [Backend::Serial, Backend::Rayon, Backend::Threads];

/// One level's plan, by depth.
type Seen = Mutex<Vec<(usize, Plan)>>;

fn level(depth: usize, levels: [Backend; 3], base: u64, seen: &Seen) -> u64 {
    let n = [5u64, 4, 40][depth];
    (0..n)
        .par_auto()
        .backend(levels[depth])
        .max_workers(2)
        .chunk_size(1)
        .on_plan(|p| seen.lock().unwrap().push((depth, p.clone())))
        .map(|x| {
            if depth == 2 {
                base * 1000 + x
            } else {
                level(depth + 1, levels, base * 10 + x, seen)
            }
        })
        .sum()
}

fn want(depth: usize, base: u64) -> u64 {
    let n = [5u64, 4, 40][depth];
    (0..n)
        .map(|x| {
            if depth == 2 {
                base * 1000 + x
            } else {
                want(depth + 1, base * 10 + x)
            }
        })
        .sum()
}

#[test]
fn every_pinned_combination_three_deep() {
    let mut tried = 0;
    for a in PINS {
        for b in PINS {
            for c in PINS {
                let levels = [a, b, c];
                tried += 1;
                let seen = support::watchdog(60, move || {
                    let seen = Mutex::new(Vec::new());
                    let total = level(0, levels, 0, &seen);
                    assert_eq!(total, want(0, 0), "{levels:?}");
                    seen.into_inner().unwrap()
                });
                // One plan per call: 1 + 5 + 5 * 4.
                assert_eq!(seen.len(), 26, "{levels:?}");
                // Where each level ran, from the levels above it.
                let inside = |depth: usize| -> Option<NestedIn> {
                    let mut ctx = None;
                    for &above in &levels[..depth] {
                        ctx = match (ctx, above) {
                            (Some(NestedIn::ThreadsPool), _) => Some(NestedIn::ThreadsPool),
                            (_, Backend::Threads) if ctx.is_none() => Some(NestedIn::ThreadsPool),
                            (None, Backend::Rayon) => Some(NestedIn::RayonWorker),
                            (c, _) => c,
                        };
                    }
                    ctx
                };
                for (depth, p) in &seen {
                    match inside(*depth) {
                        Some(NestedIn::ThreadsPool) => {
                            assert_eq!(p.backend, Backend::Serial, "{levels:?} {p:#}");
                            assert_eq!(
                                p.main_reason(),
                                Some(&Reason::Nested {
                                    inside: NestedIn::ThreadsPool
                                }),
                                "{levels:?}"
                            );
                        }
                        Some(_) => assert!(
                            matches!(p.backend, Backend::Serial | Backend::Rayon),
                            "{levels:?} depth {depth}: {p:#}"
                        ),
                        None => assert_eq!(p.backend, levels[*depth], "{levels:?} {p:#}"),
                    }
                }
            }
        }
    }
    assert_eq!(tried, 27);
}

#[test]
fn an_automatic_plan_inside_pool_install_fits_that_pool() {
    let (plans, names) = support::watchdog(60, || {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .thread_name(|i| format!("outer-pool-{i}"))
            .build()
            .unwrap();
        let plans = Mutex::new(Vec::new());
        let names = pool.install(|| {
            (0..4000u64)
                .par_auto()
                .on_plan(|p| plans.lock().unwrap().push(p.clone()))
                .map(|x| {
                    support::spin(2_000);
                    (x, std::thread::current().name().unwrap_or("").to_string())
                })
                .collect::<Vec<_>>()
        });
        (plans.into_inner().unwrap(), names)
    });
    assert_eq!(plans.len(), 1);
    let p = &plans[0];
    assert!(
        matches!(p.backend, Backend::Serial | Backend::Rayon),
        "{p:#}"
    );
    assert!(
        p.workers <= 3,
        "a 3-thread pool planned with {} workers",
        p.workers
    );
    assert_eq!(names.len(), 4000);
    for (i, (x, name)) in names.iter().enumerate() {
        assert_eq!(*x, i as u64);
        assert!(name.starts_with("outer-pool-"), "item {i} ran on {name:?}");
    }
}

#[test]
fn a_single_thread_pool_runs_a_pinned_rayon_job_without_deadlock() {
    let v = support::watchdog(60, || {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        pool.install(|| {
            (0..3000u64)
                .par_auto()
                .backend(Backend::Rayon)
                .max_workers(4)
                .chunk_size(3)
                .map(|x| x * 7)
                .collect::<Vec<_>>()
        })
    });
    assert_eq!(v, (0..3000u64).map(|x| x * 7).collect::<Vec<_>>());
}

#[test]
fn pinned_threads_inside_a_custom_pool_does_not_start_the_blocking_pool() {
    // Inside a rayon pool, Threads is excluded; the job runs on that pool or inline.
    let (plan, names) = support::watchdog(60, || {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .thread_name(|i| format!("custom-{i}"))
            .build()
            .unwrap();
        let mut plan = None;
        let names = pool.install(|| {
            (0..500u64)
                .par_auto()
                .backend(Backend::Threads)
                .max_workers(8)
                .chunk_size(4)
                .on_plan(|p| plan = Some(p.clone()))
                .map(|_| std::thread::current().name().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        });
        (plan.expect("on_plan is called"), names)
    });
    assert_ne!(plan.backend, Backend::Threads, "{plan:#}");
    assert!(
        names.iter().all(|n| n.starts_with("custom-")),
        "{:?}",
        &names[..3]
    );
}
