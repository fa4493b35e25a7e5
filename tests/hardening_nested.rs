//! Nested calls beyond tests/nested.rs: every combination of pinned backends three
//! deep (with the plan each level got), an automatic plan inside `pool.install` sized to
//! that pool, and a pool of a single thread.

mod hardening_support;

use std::sync::Mutex;

use amorsize::prelude::*;
use amorsize::{Backend, NestedIn, Plan, Reason};
use hardening_support::watchdog;

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
                let seen = watchdog(60, move || {
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
    let (plans, names) = watchdog(60, || {
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
                    hardening_support::spin(2_000);
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
    let v = watchdog(60, || {
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
    let (plan, names) = watchdog(60, || {
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
