//! Plans that learn while they run: a job whose items turn out far costlier (or
//! cheaper) than its sample changes course for the rest, without running any item
//! twice, out of order or beyond the in-flight window; and the call site's next plan is
//! made from what the whole job measured.
//!
//! Each test runs in a fresh process without the disk cache: what an earlier run of
//! this binary learnt would change what the first call sees.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use amorsize::prelude::*;
use amorsize::{Backend, Plan, Reason};

mod support;
use support::{is_child, run_child};

/// True in the fresh process that runs the test `name`; in the test's own process,
/// runs that one (without a disk cache) and checks that it passed. One child at a
/// time: the tests measure, and would otherwise share the CPUs.
fn in_fresh_process(name: &str) -> bool {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    if is_child(name) {
        return true;
    }
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let out = run_child(name, &[("AMORSIZE_CACHE", "off")], 120);
    // The child ran this one test, and it passed.
    assert!(
        out.success && out.stdout.contains("1 passed"),
        "{name} failed:\n--- stdout\n{}\n--- stderr\n{}",
        out.stdout,
        out.stderr
    );
    false
}

/// A fixed amount of CPU work.
fn spin(rounds: u64) -> u64 {
    let mut x = rounds;
    for i in 0..rounds {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    x
}

/// Waits (up to 10 s) until this process has measured its fixed costs, which it does
/// on a background thread on first use when there is no disk cache.
fn measured_overheads() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while amorsize::probe::profile()
        .fallbacks
        .iter()
        .any(|f| f.why.contains("not measured yet"))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// What one run of a drifting job saw.
struct Seen {
    plan: Plan,
    out: Vec<u64>,
    /// How often each item ran.
    runs: Vec<u8>,
    /// Most items pulled from the source and not yet started.
    max_ahead: usize,
}

/// Runs `n` items whose cost is `cost(i)` rounds, on `backend` if pinned (only the
/// backend: workers and chunk size stay free to change), asking parallel plans for
/// `min_speedup`. The call site is the caller's (`track_caller`), so each test has its
/// own.
#[track_caller]
fn drifting(
    n: usize,
    (backend, min_speedup): (Option<Backend>, f64),
    cost: impl Fn(usize) -> u64 + Sync,
) -> Seen {
    let runs: Vec<AtomicU8> = (0..n).map(|_| AtomicU8::new(0)).collect();
    let pulled = AtomicUsize::new(0);
    let started = AtomicUsize::new(0);
    let max_ahead = AtomicUsize::new(0);
    let src = (0..n).inspect(|_| {
        let p = pulled.fetch_add(1, Ordering::SeqCst) + 1;
        max_ahead.fetch_max(
            p.saturating_sub(started.load(Ordering::SeqCst)),
            Ordering::SeqCst,
        );
    });
    let mut it = src.par_auto().min_speedup(min_speedup);
    if let Some(b) = backend {
        it = it.backend(b);
    }
    let plan = Mutex::new(None);
    let out: Vec<u64> = it
        .on_plan(|p| *plan.lock().unwrap() = Some(p.clone()))
        .map(|i| {
            started.fetch_add(1, Ordering::SeqCst);
            runs[i].fetch_add(1, Ordering::SeqCst);
            spin(cost(i)) % 1_000 + 1_000 * i as u64
        })
        .collect();
    Seen {
        plan: plan.into_inner().unwrap().expect("on_plan is called"),
        out,
        runs: runs.into_iter().map(AtomicU8::into_inner).collect(),
        max_ahead: max_ahead.into_inner(),
    }
}

/// Two runs of the same job from the caller's call site: the second sees what the first
/// one learnt.
#[track_caller]
fn twice(
    n: usize,
    backend: Option<Backend>,
    cost: impl Fn(usize) -> u64 + Sync + Copy,
) -> (Seen, Seen) {
    twice_asking(n, (backend, amorsize::DEFAULT_MIN_SPEEDUP), cost)
}

/// As [`twice`], with a `min_speedup` of its own.
#[track_caller]
fn twice_asking(
    n: usize,
    ask: (Option<Backend>, f64),
    cost: impl Fn(usize) -> u64 + Sync + Copy,
) -> (Seen, Seen) {
    let first = drifting(n, ask, cost);
    let second = drifting(n, ask, cost);
    (first, second)
}

/// Every item ran once, and the outputs are in input order.
fn check_once_in_order(seen: &Seen, n: usize, what: &str) {
    assert_eq!(seen.out.len(), n, "{what}");
    for (i, o) in seen.out.iter().enumerate() {
        assert_eq!(o / 1_000, i as u64, "{what}: output {i} out of order");
    }
    let wrong: Vec<(usize, u8)> = seen
        .runs
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, r)| r != 1)
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "{what}: items run other than once: {wrong:?}"
    );
}

/// The largest chunk any course of the job used, from the plan the call site keeps
/// (the next call's) and the re-plans it lists.
fn largest_chunk(first: &Plan, next: &Plan) -> usize {
    next.replans
        .iter()
        .map(|r| r.chunk_size)
        .chain([first.chunk_size, next.chunk_size])
        .max()
        .unwrap_or(1)
}

fn learned(p: &Plan) -> bool {
    !p.replans.is_empty()
        || p.reasons
            .iter()
            .any(|r| matches!(r, Reason::LearnedFromLastRun { .. }))
}

/// Cheap items, then items a few hundred times costlier.
fn rises(i: usize) -> u64 {
    if i < 3_000 { 1 } else { 3_000 }
}

#[test]
fn a_job_that_turns_costly_changes_course_and_keeps_every_guarantee() {
    if !in_fresh_process("a_job_that_turns_costly_changes_course_and_keeps_every_guarantee") {
        return;
    }
    for backend in [None, Some(Backend::Rayon), Some(Backend::Threads)] {
        let what = format!("{backend:?}");
        let n = 6_000;
        let (first, second) = twice(n, backend, rises);
        check_once_in_order(&first, n, &what);
        check_once_in_order(&second, n, &what);
        // The second call's plan comes from the first job as it really ran: its items
        // cost far more on average than the cheap head the first call sampled.
        assert!(
            learned(&second.plan),
            "{what}: the next plan learnt nothing: {:#}",
            second.plan
        );
        assert!(
            second.plan.sample.mean_item_secs > 3.0 * first.plan.sample.mean_item_secs,
            "{what}: {} then {}",
            first.plan,
            second.plan
        );
        // The source never ran further ahead than the window of the widest course:
        // at most two chunks per worker queued or running, plus the one being cut.
        let workers = second
            .plan
            .replans
            .iter()
            .map(|r| r.workers)
            .chain([first.plan.workers, second.plan.workers, 2])
            .max()
            .unwrap_or(2);
        let bound = (2 * workers + 1) * largest_chunk(&first.plan, &second.plan) + 1;
        for (run, seen) in [(1, &first), (2, &second)] {
            assert!(
                seen.max_ahead <= bound.max(seen.plan.sample.items + 1),
                "{what}, run {run}: the source ran {} items ahead, bound {bound}\n{:#}\n{:#}",
                seen.max_ahead,
                first.plan,
                second.plan
            );
        }
    }
}

#[test]
fn a_serial_plan_whose_items_turn_costly_goes_parallel() {
    if !in_fresh_process("a_serial_plan_whose_items_turn_costly_goes_parallel") {
        return;
    }
    // The sample of ~50 ns items must not be timed while the background calibration
    // (no disk cache here) competes for the CPUs: it read them at 15 us once.
    measured_overheads();
    // Asked for nearly two times serial, the cheap head plans serial (what rayon would
    // gain on the cheap items left after the sample is less); the costly rest is worth
    // it. The rise comes far past any sample (a few hundred cheap items), so the job
    // itself must notice it.
    let n = 5_000;
    let rises = |i: usize| if i < 3_000 { 1 } else { 3_000 };
    let (first, second) = twice_asking(n, (None, 1.9), rises);
    check_once_in_order(&first, n, "first");
    check_once_in_order(&second, n, "second");
    // The premise: ~100 ns items left after the sample are not worth rayon at 1.9x.
    // When this machine timed them slower (a cold build or a busy moment gave several
    // hundred ns), the head already plans rayon, and there is no serial run to switch:
    // then the job ran on rayon from the start, which is what the rest needed.
    if first.plan.backend != Backend::Serial {
        assert_eq!(first.plan.backend, Backend::Rayon, "{:#}", first.plan);
        return;
    }
    // The job found the rest costlier and went on in parallel (rayon, the one backend
    // a serial run can start), on a machine with CPUs to spare. (`second.plan.replans`
    // are the first run's.) When the machine is slow at that moment, the evidence
    // comes so late that too little is left to be worth rayon at the asked speedup:
    // the run then re-plans serial, and the next call starts on rayon instead.
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        let noticed: Vec<_> = second
            .plan
            .replans
            .iter()
            .filter(|r| r.at_item >= 3_000)
            .collect();
        // On a VM whose CPUs are slow or shared at that moment, rayon's estimate on
        // two CPUs can fall under the asked 1.9x: staying serial is then the right
        // answer, and the plan says so.
        let below_asked = second
            .plan
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::BelowMinSpeedup { .. }));
        assert!(
            noticed.iter().any(|r| r.backend == Backend::Rayon)
                || (!noticed.is_empty() && (second.plan.backend == Backend::Rayon || below_asked)),
            "no switch to rayon recorded: {:#}",
            second.plan
        );
    }
}

#[test]
fn a_job_that_turns_cheap_is_re_planned_with_bigger_chunks() {
    if !in_fresh_process("a_job_that_turns_cheap_is_re_planned_with_bigger_chunks") {
        return;
    }
    let n = 200_000;
    // A few costly items at the head, then cheap ones: sampled on the head, the plan
    // expects costly items throughout and cuts small chunks.
    let falls = |i: usize| if i < 20 { 20_000 } else { 1 };
    let (first, second) = twice(n, Some(Backend::Rayon), falls);
    check_once_in_order(&first, n, "first");
    check_once_in_order(&second, n, "second");
    assert!(learned(&second.plan), "{:#}", second.plan);
    assert!(
        second.plan.sample.mean_item_secs < first.plan.sample.mean_item_secs / 4.0,
        "{} then {}",
        first.plan,
        second.plan
    );
}

#[test]
fn a_cost_that_grows_on_every_chunk_is_re_planned_a_bounded_number_of_times() {
    if !in_fresh_process("a_cost_that_grows_on_every_chunk_is_re_planned_a_bounded_number_of_times")
    {
        return;
    }
    let n = 4_000;
    let grows = |i: usize| 1 + i as u64;
    let (_, next) = twice(n, Some(Backend::Rayon), grows);
    check_once_in_order(&next, n, "growing");
    assert!(next.plan.replans.len() <= 8, "{:#}", next.plan);
}

#[test]
fn a_nested_call_on_a_rayon_worker_is_re_planned_too() {
    if !in_fresh_process("a_nested_call_on_a_rayon_worker_is_re_planned_too") {
        return;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a pool");
    let n = 6_000;
    let (first, second) = pool.install(|| twice(n, None, rises));
    check_once_in_order(&first, n, "nested first");
    check_once_in_order(&second, n, "nested second");
    assert!(
        learned(&second.plan),
        "the nested call's next plan learnt nothing: {:#}",
        second.plan
    );
}

#[test]
fn items_whose_own_rayon_calls_do_not_pay_are_run_in_parallel() {
    if !in_fresh_process("items_whose_own_rayon_calls_do_not_pay_are_run_in_parallel") {
        return;
    }
    // Each item splits a tiny loop over rayon: the process keeps both CPUs busy (it
    // reads as internally parallel), but confined to one thread the item is no slower.
    let item = |x: u64| {
        use rayon::prelude::*;
        (0..64u64)
            .into_par_iter()
            .map(|j| (spin(30) ^ j ^ x) & 0xff)
            .sum::<u64>()
    };
    let mut plan = None;
    let out: Vec<u64> = (0..4_000u64)
        .par_auto()
        .on_plan(|p| plan = Some(p.clone()))
        .map(item)
        .collect();
    assert_eq!(out, (0..4_000u64).map(item).collect::<Vec<_>>());
    let plan = plan.expect("planned");
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return;
    }
    // Measured, not assumed: the confined run happened and the plan says so.
    let Some(x) = plan.sample.inner_speedup else {
        panic!("the inner speedup was not measured: {plan:#}");
    };
    assert!(x >= 1.0, "{plan:#}");
    assert!(
        plan.reasons
            .iter()
            .any(|r| matches!(r, Reason::InnerParallelismMeasured { .. })),
        "{plan:#}"
    );
}
