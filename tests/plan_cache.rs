//! The in-process plan cache: a cached plan is sampled afresh now and then (so a plan
//! that went wrong is re-made), and another input size at a known call site is planned
//! from what the site measured, without sampling again.

use std::sync::atomic::{AtomicUsize, Ordering};

use amorsize::Origin;
use amorsize::prelude::*;

/// Runs one job over `n` items at one call site; returns its plan's origin and how
/// many items ran before the plan was made (the sample).
fn job(n: u64) -> (Origin, usize) {
    let calls = AtomicUsize::new(0);
    let mut seen = (Origin::Fresh, 0);
    let total: u64 = (0..n)
        .par_auto()
        .on_plan(|p| seen = (p.origin, calls.load(Ordering::Relaxed)))
        .map(|x| {
            calls.fetch_add(1, Ordering::Relaxed);
            (0..200u64).fold(x, |a, i| a.wrapping_mul(31).wrapping_add(i)) % 1_000_003
        })
        .sum();
    std::hint::black_box(total);
    seen
}

#[test]
fn cached_plans_are_sampled_again_now_and_then_and_other_sizes_are_replanned() {
    // The first call samples (or, on a later run of this binary, plans from the disk
    // cache); the next ones use the cached plan without sampling.
    let first = job(20_000);
    assert!(matches!(first.0, Origin::Fresh | Origin::Disk), "{first:?}");
    let mut fresh = 0;
    for _ in 0..150 {
        let (origin, sampled) = job(20_000);
        match origin {
            Origin::Cache => assert_eq!(sampled, 0),
            Origin::Fresh => {
                assert!(sampled > 0);
                fresh += 1;
            }
            other => panic!("unexpected origin {other:?}"),
        }
    }
    // The 64th and the 128th uses sample again.
    assert!(fresh >= 2, "{fresh} fresh samples in 150 warm calls");

    // Another size bucket at the same call site: re-planned from the site's sample.
    let (origin, sampled) = job(200_000);
    assert_eq!((origin, sampled), (Origin::CallSite, 0));
}

/// One tiny job at its own call site: its outputs, its plan's origin and main reason.
fn tiny_job(n: u64, nested_in_hook: bool) -> (Vec<u64>, Origin, Option<amorsize::Reason>) {
    let mut seen = None;
    let out: Vec<u64> = (0..n)
        .collect::<Vec<_>>()
        .par_auto()
        .on_plan(|p| {
            if nested_in_hook {
                // The hook may start a job of its own (another call site).
                let inner: u64 = (0..10u64).par_auto().map(|x| x + 1).sum();
                assert_eq!(inner, 55);
            }
            seen = Some((p.origin, p.main_reason().cloned()));
        })
        .map(|x| x * 3)
        .collect();
    let (origin, reason) = seen.expect("the hook is called on every call");
    (out, origin, reason)
}

#[test]
fn a_call_site_whose_input_ended_in_the_sample_stays_plain_serial_and_is_rechecked() {
    let want: Vec<u64> = (0..100).map(|x| x * 3).collect();
    let mut fresh = 0;
    let mut last = None;
    for call in 0..300 {
        let (out, origin, reason) = tiny_job(100, call % 7 == 0);
        assert_eq!(out, want, "call {call}");
        if origin == Origin::Fresh {
            fresh += 1;
        }
        last = reason;
    }
    // The first plan may come from the disk cache, written by an earlier run of this
    // binary whose sample a busy machine cut short; a fresh sample of 100 such items
    // always holds them all.
    assert!(
        matches!(last, Some(amorsize::Reason::InputEndedInSample { .. })),
        "{last:?}"
    );
    // The first call (unless the disk cache had it), then the 64th, 128th and 256th
    // uses sample again.
    assert!(
        (3..=4).contains(&fresh),
        "{fresh} fresh samples in 300 calls"
    );
}

/// Tiny job `site` of six call sites, each of its own (the `match` arms), with a pinned
/// job between: its output and whether its plan came from a fresh sample.
fn one_of_six(site: usize, n: u64) -> (u64, bool) {
    let mut fresh = false;
    let mut hook = |p: &amorsize::Plan| fresh |= p.origin == Origin::Fresh;
    let data: Vec<u64> = (0..n).collect();
    let sum = match site {
        0 => data.par_auto().on_plan(&mut hook).map(|x| x + 1).sum(),
        1 => data.par_auto().on_plan(&mut hook).map(|x| x + 2).sum(),
        2 => data.par_auto().on_plan(&mut hook).map(|x| x + 3).sum(),
        3 => data.par_auto().on_plan(&mut hook).map(|x| x + 4).sum(),
        4 => data.par_auto().on_plan(&mut hook).map(|x| x + 5).sum(),
        _ => data.par_auto().on_plan(&mut hook).map(|x| x + 6).sum(),
    };
    // A pinned job between two tiny ones, as a program (or a benchmark) may run.
    let pinned: u64 = (0..10u64)
        .par_auto()
        .backend(amorsize::Backend::Serial)
        .sum();
    assert_eq!(pinned, 45);
    (sum, fresh)
}

#[test]
fn tiny_jobs_that_alternate_keep_their_plans_and_their_recheck_schedule() {
    // More call sites than a thread remembers: each is found again in the cache, and
    // each re-checks on its own schedule (its uses are counted wherever it was
    // remembered).
    let mut fresh = [0usize; 6];
    for call in 0..1800 {
        let site = call % 6;
        let (sum, was_fresh) = one_of_six(site, 50);
        assert_eq!(sum, 1225 + 50 * (site as u64 + 1), "call {call}");
        fresh[site] += usize::from(was_fresh);
    }
    // 300 uses each: the first (unless the disk cache had it), then the 64th, 128th
    // and 256th sample again.
    for (site, n) in fresh.iter().enumerate() {
        assert!(
            (3..=4).contains(n),
            "site {site}: {n} fresh samples in 300 calls"
        );
    }
}
