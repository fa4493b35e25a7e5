//! `optimize`: the sample runs when the plan is made, its results are kept, and the rest
//! runs once — nothing is re-run, whatever the size, and dropping the job runs nothing
//! more.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use amorsize::Backend;
use support::spin;

fn counted(n: usize) -> Arc<Vec<AtomicU8>> {
    Arc::new((0..n).map(|_| AtomicU8::new(0)).collect())
}

fn runs(counts: &[AtomicU8]) -> usize {
    counts
        .iter()
        .map(|c| c.load(Ordering::Relaxed) as usize)
        .sum()
}

#[test]
fn sampled_results_are_kept_and_the_rest_runs_once() {
    for (n, work) in [
        (0usize, 0u64),
        (1, 0),
        (7, 0),
        (1_000, 0),
        (20_000, 0),
        (3_000, 3_000),
    ] {
        let counts = counted(n);
        let c = Arc::clone(&counts);
        let job = amorsize::optimize(0..n, move |x| {
            c[x].fetch_add(1, Ordering::Relaxed);
            spin(work) ^ x as u64
        });
        // Only the sample has run so far, and the plan says how many items that was;
        // a plan re-made from this call site's earlier sample (another size) ran none.
        let sampled = runs(&counts);
        let plan = job.plan();
        let expected = match plan.origin {
            amorsize::Origin::Fresh => plan.sample.items,
            _ => 0,
        };
        assert!(sampled <= n);
        assert_eq!(expected, sampled, "n={n}: {plan}");
        assert!(
            counts[..sampled]
                .iter()
                .all(|c| c.load(Ordering::Relaxed) == 1)
        );
        let out: Vec<u64> = job.collect();
        assert_eq!(
            out,
            (0..n).map(|x| spin(work) ^ x as u64).collect::<Vec<_>>(),
            "n={n}"
        );
        for (i, c) in counts.iter().enumerate() {
            assert_eq!(c.load(Ordering::Relaxed), 1, "n={n}: item {i}");
        }
    }
}

#[test]
fn for_each_gets_every_result_in_order_on_the_caller() {
    let caller = std::thread::current().id();
    let job = amorsize::optimize(0..5_000u64, |x| {
        spin(500);
        x * 3
    });
    let mut next = 0u64;
    job.for_each(|v| {
        assert_eq!(std::thread::current().id(), caller);
        assert_eq!(v, next * 3);
        next += 1;
    });
    assert_eq!(next, 5_000);
}

#[test]
fn a_job_dropped_after_its_plan_runs_nothing_more() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    // An endless source: the sample must stop on its own.
    let job = amorsize::optimize(0u64.., move |x| {
        c.fetch_add(1, Ordering::Relaxed);
        x
    });
    // A plan remembered from an earlier run (the disk cache) samples nothing.
    let plan = job.plan();
    let sampled = match plan.origin {
        amorsize::Origin::Fresh => plan.sample.items,
        _ => 0,
    };
    assert!(sampled < 1 << 20, "{plan}");
    drop(job);
    assert_eq!(calls.load(Ordering::Relaxed), sampled);
}

#[test]
fn a_panic_in_the_sample_reaches_the_caller_of_optimize() {
    support::quiet_chaos_panics();
    let r = std::panic::catch_unwind(|| {
        amorsize::optimize(0..100u32, |x| {
            if x == 0 {
                panic!("chaos: first item");
            }
            x
        })
        .collect::<Vec<_>>()
    });
    let payload = r.expect_err("the panic reaches the caller");
    assert_eq!(support::payload_text(payload.as_ref()), "chaos: first item");
}

#[test]
fn a_plan_from_optimize_is_a_real_decision() {
    let job = amorsize::optimize(0..200u64, |x| x + 1);
    let p = job.plan().clone();
    assert!(Backend::ALL.contains(&p.backend));
    assert!(p.workers >= 1 && p.chunk_size >= 1);
    assert!(!p.to_string().is_empty());
    assert_eq!(job.collect::<Vec<_>>(), (1..=200).collect::<Vec<_>>());
}
