//! Absurd options through the public API: `max_workers(0)`, `max_workers(usize::MAX)`,
//! `chunk_size(0)`, `chunk_size(usize::MAX)`, `min_speedup` NaN, negative or infinite,
//! alone and combined, on every backend and the automatic choice. Each gives the
//! documented clamp (a `Reason::Clamped` in the plan) or a plain pin, never a panic, and
//! the right results.

mod support;

use amorsize::prelude::*;
use amorsize::{AutoIter, Backend, Plan, Reason};
use support::{payload_text, watchdog};

const N: u64 = 3_000;

/// `None`: amorsize chooses.
const MODES: [Option<Backend>; 4] = [
    None,
    Some(Backend::Serial),
    Some(Backend::Rayon),
    Some(Backend::Threads),
];

type Source = AutoIter<std::ops::Range<u64>, amorsize::iter::Identity<u64>>;

/// Runs `0..N` with `mode` and `opts` applied, checks the results, returns the plan.
fn run(mode: Option<Backend>, opts: impl FnOnce(Source) -> Source) -> Plan {
    let mut it = (0..N).par_auto();
    if let Some(b) = mode {
        it = it.backend(b);
    }
    let mut plan = None;
    let v: Vec<u64> = opts(it)
        .on_plan(|p| plan = Some(p.clone()))
        .map(|x| {
            support::spin(300);
            x * 2 + 1
        })
        .collect();
    assert_eq!(v, (0..N).map(|x| x * 2 + 1).collect::<Vec<_>>(), "{mode:?}");
    let plan = plan.expect("on_plan is called");
    // Whatever was asked, the plan is usable and finite.
    assert!(plan.workers >= 1 && plan.chunk_size >= 1, "{plan:#}");
    assert!(plan.estimated_speedup.is_finite(), "{plan:#}");
    if let Some(b) = mode {
        assert_eq!(plan.backend, b, "a pin is honoured: {plan:#}");
    }
    plan
}

/// The `(given, used)` texts of the plan's `Clamped` reason for `option`, if any.
fn clamped<'p>(p: &'p Plan, option: &str) -> Option<(&'p str, &'p str)> {
    p.reasons.iter().find_map(|r| match r {
        Reason::Clamped {
            option: o,
            given,
            used,
        } if *o == option => Some((given.as_str(), used.as_str())),
        _ => None,
    })
}

/// The workers a plan may have for `0..N`: at most the items and the rayon pool (Rayon),
/// or the blocking pool's cap of 512 (Threads).
fn sane_workers(p: &Plan) -> bool {
    let cap = match p.backend {
        Backend::Rayon => rayon::current_num_threads(),
        Backend::Threads => 512,
        _ => 1,
    };
    p.workers <= cap.min(N as usize)
}

#[test]
fn zero_workers_and_zero_chunks_are_clamped_to_one() {
    for mode in MODES {
        let p = run(mode, |it| it.max_workers(0));
        assert_eq!(clamped(&p, "max_workers"), Some(("0", "1")), "{p:#}");
        if p.backend != Backend::Serial {
            assert_eq!(p.workers, 1, "{p:#}");
        }
        let p = run(mode, |it| it.chunk_size(0));
        assert_eq!(clamped(&p, "chunk_size"), Some(("0", "1")), "{p:#}");
        if p.backend != Backend::Serial {
            assert_eq!(p.chunk_size, 1, "{p:#}");
        }
    }
}

#[test]
fn huge_max_workers_alone_is_only_a_cap() {
    for mode in MODES {
        let p = run(mode, |it| it.max_workers(usize::MAX));
        assert!(sane_workers(&p), "{p:#}");
        assert_eq!(clamped(&p, "max_workers"), None, "{p:#}");
    }
}

#[test]
fn huge_chunk_size_is_a_pin_and_the_results_are_right() {
    for mode in MODES {
        let p = run(mode, |it| it.chunk_size(usize::MAX));
        assert!(sane_workers(&p), "{p:#}");
    }
    // Fully pinned: chunks are capped at what the executors cut (a whole input this
    // small in one chunk), and the plan says so.
    for b in [Backend::Rayon, Backend::Threads] {
        let p = run(Some(b), |it| it.max_workers(2).chunk_size(usize::MAX));
        assert_eq!(p.workers, 2, "{p:#}");
        assert!(
            p.chunk_size >= 1 << 16 && p.chunk_size < usize::MAX,
            "{p:#}"
        );
        assert!(clamped(&p, "chunk_size").is_some(), "{p:#}");
    }
}

#[test]
fn nan_negative_and_infinite_min_speedup_are_clamped() {
    let cases: [(f64, &str); 5] = [
        (f64::NAN, "1.2"),
        (-1.0, "0"),
        (-0.5, "0"),
        (f64::NEG_INFINITY, "0"),
        (f64::INFINITY, "1000000"),
    ];
    for mode in MODES {
        for (given, used) in cases {
            let p = run(mode, |it| it.min_speedup(given));
            // A job short enough to end inside the sample makes no model decision; this
            // one is long enough that the model always runs.
            assert_eq!(
                clamped(&p, "min_speedup").map(|(_, u)| u),
                Some(used),
                "min_speedup({given}), {mode:?}: {p:#}"
            );
            if mode.is_none() && given == f64::INFINITY {
                // Nothing reaches an infinite bar: serial, saying why.
                assert_eq!(p.backend, Backend::Serial, "{p:#}");
                assert!(
                    matches!(p.main_reason(), Some(Reason::BelowMinSpeedup { .. })),
                    "{p:#}"
                );
            }
            // One clear message: every reason prints as one short line.
            for r in &p.reasons {
                let text = r.to_string();
                assert!(text.len() < 200 && !text.contains('\n'), "{text:?}");
            }
        }
    }
}

#[test]
fn every_absurd_option_at_once() {
    for mode in MODES {
        let p = run(mode, |it| {
            it.max_workers(0).chunk_size(0).min_speedup(f64::NAN)
        });
        if mode.is_some() {
            // Fully pinned: exactly one worker, chunks of one.
            if p.backend != Backend::Serial {
                assert_eq!((p.workers, p.chunk_size), (1, 1), "{p:#}");
            }
        }
        assert!(clamped(&p, "max_workers").is_some(), "{p:#}");
        assert!(clamped(&p, "chunk_size").is_some(), "{p:#}");
    }
}

/// Runs a fully pinned job over `0..n` whose `max_workers` is `workers`, but only if
/// its plan is sane: `on_plan` stops the job (with a panic caught here) before it runs
/// when the plan would start more than `n` workers, so a failing check never starts
/// millions of worker tasks. Returns the plan's workers and whether the job ran.
fn guarded_pinned_job(backend: Backend, workers: usize, n: u64) -> (usize, bool) {
    let mut planned = 0;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (0..n)
            .par_auto()
            .backend(backend)
            .max_workers(workers)
            .chunk_size(1)
            .on_plan(|p| {
                planned = p.workers;
                if p.workers as u64 > n.max(1) {
                    panic!("guard: plan has {} workers for {n} items", p.workers);
                }
            })
            .map(|x| x + 1)
            .collect::<Vec<u64>>()
    }));
    match r {
        Ok(v) => {
            assert_eq!(v, (1..=n).collect::<Vec<_>>(), "{backend:?}");
            (planned, true)
        }
        Err(payload) => {
            let msg = payload_text(payload.as_ref());
            assert!(msg.starts_with("guard: "), "{backend:?}: {msg}");
            (planned, false)
        }
    }
}

/// The model promises that a fully pinned plan has "workers at most max(N, 1)"
/// (`amorsize::model` docs), and `max_workers` is documented as a cap. The runtime's
/// own fully-pinned path does not apply it.
///
/// BUG: `amorsize-runtime/src/run/`, `pinned_plan`: `workers` is
/// `options.max_workers.unwrap_or(1).max(1)`, never clamped to the input length (known
/// here) nor to any upper bound. With `max_workers(usize::MAX)` the executor then loops
/// `for _ in 0..workers` spawning worker tasks (`exec/pipeline.rs`, `Pipeline::start`)
/// until memory runs out, and `2 * workers as u64` overflows; with `max_workers(5000)`
/// on Threads it starts a 1024-thread pool for 100 items. Fix: in `pinned_plan`, clamp
/// to `len.map_or(w, |n| w.min(n.max(1)))` and to the backend's cap (the rayon pool's
/// threads for Rayon, `MAX_THREADS` for Threads), recording a `Reason::Clamped`.
#[test]
fn fully_pinned_huge_max_workers_is_clamped_to_the_input() {
    for backend in [Backend::Rayon, Backend::Threads] {
        for workers in [usize::MAX, 5000] {
            let (planned, ran) = watchdog(60, move || guarded_pinned_job(backend, workers, 100));
            assert!(
                ran && planned <= 100,
                "{backend:?}, max_workers({workers}): the plan has {planned} workers for \
                 100 items"
            );
        }
    }
}

#[test]
fn fully_pinned_max_workers_up_to_the_input_length_are_kept() {
    for backend in [Backend::Rayon, Backend::Threads] {
        let (planned, ran) = watchdog(60, move || guarded_pinned_job(backend, 100, 100));
        assert!(ran, "{backend:?}");
        assert_eq!(planned, 100, "{backend:?}");
    }
}
