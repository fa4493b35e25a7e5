//! Laziness: the source is pulled on demand, never more than a bounded window ahead of
//! what has been finished, so endless inputs run in bounded memory.

use std::sync::atomic::{AtomicUsize, Ordering};

use amorsize::Backend;
use amorsize::prelude::*;

#[test]
fn an_endless_source_is_never_far_ahead_of_the_work() {
    for b in [Backend::Rayon, Backend::Threads] {
        let (workers, chunk) = (3usize, 8usize);
        let pulled = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let max_gap = AtomicUsize::new(0);
        let src = (0u64..).inspect(|_| {
            let p = pulled.fetch_add(1, Ordering::SeqCst) + 1;
            let gap = p.saturating_sub(done.load(Ordering::SeqCst));
            max_gap.fetch_max(gap, Ordering::SeqCst);
        });
        let found = src
            .par_auto()
            .backend(b)
            .max_workers(workers)
            .chunk_size(chunk)
            .map(|x| {
                done.fetch_add(1, Ordering::SeqCst);
                x
            })
            .position(|x| x == 20_000);
        assert_eq!(found, Some(20_000), "{b:?}");
        // At most 2 × workers chunks in flight, plus the chunk being pulled.
        let bound = (2 * workers + 1) * chunk;
        let gap = max_gap.into_inner();
        assert!(
            gap <= bound,
            "{b:?}: source ran {gap} items ahead, bound {bound}"
        );
    }
}

#[test]
fn for_each_over_an_endless_source_stops_with_a_short_circuit() {
    let seen = AtomicUsize::new(0);
    let any = (0u64..)
        .par_auto()
        .backend(Backend::Threads)
        .max_workers(2)
        .chunk_size(64)
        .any(|x| {
            seen.fetch_add(1, Ordering::Relaxed);
            x == 50_000
        });
    assert!(any);
    // Items past the hit may have started, but not many: the pipelined executor keeps
    // at most 2 chunks per worker queued or running, and at most twice that ahead of
    // what it has emitted (finished chunks wait for the one before them): 8 chunks of
    // 64 with 2 workers, plus the one the hit is in.
    let seen = seen.into_inner();
    assert!(seen < 50_000 + 9 * 64, "{seen} items started");
}

#[test]
fn auto_choice_on_an_unknown_length_source_stays_lazy() {
    let pulled = AtomicUsize::new(0);
    let hit = (0u64..)
        .inspect(|_| {
            pulled.fetch_add(1, Ordering::Relaxed);
        })
        .par_auto()
        .map(|x| x.wrapping_mul(2654435761) % 1_000_003)
        .position(|x| x == 0);
    assert_eq!(hit, Some(0));
    // The sample stops at the budget; nothing close to an endless drain happened.
    assert!(pulled.into_inner() < 1 << 20);
}

#[test]
fn an_input_of_unknown_length_is_planned_from_an_estimate_and_fully_processed() {
    // `lines()` has no length: the plan estimates the rest, and chunks grow if the
    // input turns out longer than estimated.
    let text: String = (0..200_000).map(|i| format!("{i}\n")).collect();
    let calls = AtomicUsize::new(0);
    let mut plan = None;
    let got: Vec<u64> = text
        .lines()
        .par_auto()
        .on_plan(|p| plan = Some(p.clone()))
        .map(|l| {
            calls.fetch_add(1, Ordering::Relaxed);
            let n: u64 = l.parse().unwrap_or(0);
            (0..200u64).fold(n, |a, k| a.wrapping_mul(31).wrapping_add(k))
        })
        .collect();
    let want: Vec<u64> = text
        .lines()
        .map(|l| {
            let n: u64 = l.parse().unwrap_or(0);
            (0..200u64).fold(n, |a, k| a.wrapping_mul(31).wrapping_add(k))
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(calls.into_inner(), 200_000);
    let plan = plan.expect("on_plan is called");
    let estimated = plan
        .reasons
        .iter()
        .any(|r| matches!(r, amorsize::Reason::LengthEstimated { .. }));
    let ended = plan
        .reasons
        .iter()
        .any(|r| matches!(r, amorsize::Reason::InputEndedInSample { .. }));
    assert!(estimated || ended, "{plan:#}");
}
