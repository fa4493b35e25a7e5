//! Hand-computed plans and invariants over random (and hostile) inputs.

use super::{SampleStats, plan};
use crate::options::{DEFAULT_MIN_SPEEDUP, Options};
use crate::plan::{Backend, Estimate, Plan, Reason};
use crate::probe::{ClusterProfile, MachineProfile, Memory, Overheads};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// `cpus` CPUs, a rayon pool of as many threads, default overheads
/// ([`Overheads::default`](crate::probe::Overheads)).
fn machine(cpus: usize) -> MachineProfile {
    MachineProfile {
        cpu_budget: cpus,
        logical_cores: cpus,
        physical_cores: cpus,
        rayon_threads: cpus,
        ..MachineProfile::default()
    }
}

/// `n` more items of `t` seconds each, CPU-bound and uniform, after a sample of 16.
fn stats(n: usize, t: f64) -> SampleStats {
    SampleStats {
        items: 16,
        sample_secs: 16.0 * t,
        mean_item_secs: t,
        remaining_items: Some(n),
        ..SampleStats::default()
    }
}

/// What the runtime passes for a closure: Processes forbidden.
fn no_processes() -> Options {
    let mut o = Options::default();
    o.forbid(
        Backend::Processes,
        "the function is not an #[amorsize::task]",
    );
    o
}

fn estimate(p: &Plan, b: Backend) -> &Estimate {
    match p
        .candidates
        .iter()
        .find(|c| c.backend == b)
        .map(|c| &c.estimate)
    {
        Some(Ok(e)) => e,
        other => panic!("{b} has no estimate: {other:?}\n{p:#}"),
    }
}

fn has(p: &Plan, pred: impl Fn(&Reason) -> bool) -> bool {
    p.reasons.iter().any(pred)
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs()
}

#[test]
fn tiny_workload_stays_serial() {
    // 1000 x 20 ns = 20 us of work. Cheapest start: rayon 15 us + one 2 us hand-off
    // = 17 us < 20 us, so the candidates are built. Best rayon: 2 workers, chunks of
    // 500 (the hand-off rule wants 5000, one chunk per worker is the most):
    // 15 us + max(10 us + 2 * 2 us / 2, 2 * 2 us) = 27 us, i.e. 0.74x.
    let p = plan(&stats(1000, 20e-9), &machine(2), &no_processes());
    assert_eq!(p.backend, Backend::Serial, "{p:#}");
    assert_eq!((p.workers, p.chunk_size), (1, 1));
    assert_eq!(p.estimated_speedup, 1.0);
    assert!(matches!(
        p.main_reason(),
        Some(Reason::BelowMinSpeedup {
            best: Backend::Rayon,
            ..
        })
    ));
    let rayon = estimate(&p, Backend::Rayon);
    assert_eq!((rayon.workers, rayon.chunk_size), (2, 500));
    assert!(close(rayon.secs, 27e-6, 1e-9), "{}", rayon.secs);
    assert!(close(p.estimated_serial_secs, 20e-6, 1e-9));
}

#[test]
fn too_little_work_skips_candidates() {
    // 10 x 100 ns = 1 us, below rayon's 15 us + 2 us.
    let p = plan(&stats(10, 100e-9), &machine(2), &no_processes());
    assert_eq!(p.backend, Backend::Serial);
    match p.main_reason() {
        Some(Reason::TooLittleWork {
            serial_secs,
            threshold_secs,
        }) => {
            assert!(close(*serial_secs, 1e-6, 1e-9));
            assert!(close(*threshold_secs, 17e-6, 1e-9));
        }
        other => panic!("{other:?}"),
    }
    let backends: Vec<_> = p.candidates.iter().map(|c| c.backend).collect();
    assert_eq!(backends, Backend::ALL);
    assert!(p.candidates[0].estimate.is_ok());
    assert!(matches!(
        p.candidates[3].estimate,
        Err(Reason::Excluded {
            backend: Backend::Processes,
            ..
        })
    ));
}

#[test]
fn nothing_left_is_serial() {
    let p = plan(&stats(0, 1e-3), &machine(8), &Options::default());
    assert_eq!(p.backend, Backend::Serial);
    assert_eq!(p.remaining_items, Some(0));
    assert_eq!(p.estimated_serial_secs, 0.0);
    assert!(matches!(
        p.main_reason(),
        Some(Reason::TooLittleWork { .. })
    ));
}

#[test]
fn heavy_uniform_uses_both_cpus() {
    // 10k x 100 us on 2 CPUs: chunks of 10000 / (2 * 4) = 1250 (4 per worker, hand-off
    // 2 us per 125 ms of work); T = 15 us + 0.5 s + 8 * 2 us / 2 = 0.500023 s.
    let p = plan(&stats(10_000, 100e-6), &machine(2), &no_processes());
    assert_eq!(p.backend, Backend::Rayon, "{p:#}");
    assert_eq!(p.workers, 2);
    let handoff = Overheads::default().chunk_handoff_secs;
    assert!(handoff / (p.chunk_size as f64 * 100e-6) < 0.03, "{p:#}");
    assert_eq!(p.chunk_size, 1250);
    assert!(close(estimate(&p, Backend::Rayon).secs, 0.500_023, 1e-9));
    assert!(p.estimated_speedup > 1.9 && p.estimated_speedup <= 2.0);
    assert!(matches!(
        p.main_reason(),
        Some(Reason::Fastest {
            backend: Backend::Rayon,
            ..
        })
    ));
    // Serial and Threads lost, each with a Slower reason.
    for loser in [Backend::Serial, Backend::Threads] {
        let lost = |r: &Reason| match r {
            Reason::Slower {
                backend, winner, ..
            } => *backend == loser && *winner == Backend::Rayon,
            _ => false,
        };
        assert!(has(&p, lost), "{p:#}");
    }
}

#[test]
fn io_bound_gets_many_threads() {
    // 1000 x 10 ms at 2% CPU on 2 CPUs: 2 / 0.02 = 100 threads keep both CPUs busy.
    // Chunks of 2: T = 15 us + 100 * 2 us + 10 s / 100 + 500 * 2 us / 2 = 100.715 ms.
    let mut s = stats(1000, 10e-3);
    s.cpu_ratio = 0.02;
    let p = plan(&s, &machine(2), &no_processes());
    assert_eq!(p.backend, Backend::Threads, "{p:#}");
    assert_eq!(p.workers, 100);
    assert_eq!(p.chunk_size, 2);
    assert!(close(estimate(&p, Backend::Threads).secs, 0.100_715, 1e-9));
    assert!(p.estimated_speedup > 90.0);
    assert!(has(&p, |r| matches!(r, Reason::IoBound { .. })));
    // Rayon has only its 2 threads.
    assert_eq!(estimate(&p, Backend::Rayon).workers, 2);
}

#[test]
fn a_coarse_cpu_share_does_not_cost_a_second_wave() {
    // 100 x 10 ms at 2.04% CPU (what two sampled sleeps read): 2 / 0.0204 = 98 items
    // can progress at once, but 98 threads would leave 2 items for a second 10 ms
    // wave; one thread each costs a little oversubscription instead.
    let mut s = stats(100, 10e-3);
    s.cpu_ratio = 0.0204;
    let p = plan(&s, &machine(2), &no_processes());
    assert_eq!(
        (p.backend, p.workers, p.chunk_size),
        (Backend::Threads, 100, 1),
        "{p:#}"
    );
    assert!(p.estimated_speedup > 80.0, "{p:#}");
}

#[test]
fn sleeps_get_one_thread_each() {
    // 100 x 10 ms sleeps: 100 threads, one item each, about 10.3 ms.
    let mut s = stats(100, 10e-3);
    s.cpu_ratio = 0.01;
    let p = plan(&s, &machine(2), &no_processes());
    assert_eq!(
        (p.backend, p.workers, p.chunk_size),
        (Backend::Threads, 100, 1)
    );
    assert!(p.estimated_speedup > 90.0 && p.estimated_speedup < 100.0);
}

#[test]
fn lock_bound_does_not_scale_on_threads() {
    // 2000 x 100 us behind one lock: two threads run at 0.5 efficiency each.
    let mut s = stats(2000, 100e-6);
    s.two_thread_efficiency = Some(0.5);
    let p = plan(&s, &machine(2), &no_processes());
    assert_eq!(p.backend, Backend::Serial, "{p:#}");
    assert!(estimate(&p, Backend::Rayon).speedup <= 1.0);
    assert!(estimate(&p, Backend::Threads).speedup <= 1.0);
    assert!(matches!(
        p.main_reason(),
        Some(Reason::BelowMinSpeedup { .. })
    ));
    assert!(has(&p, |r| matches!(r, Reason::ThreadsDoNotScale { .. })));

    // Processes do not share the lock.
    let p = plan(&s, &machine(2), &Options::default());
    assert_eq!(p.backend, Backend::Processes, "{p:#}");
    assert_eq!(p.workers, 2);
    assert!(p.estimated_speedup > 1.8 && p.estimated_speedup <= 2.0);
    // Chunks carry milliseconds of work: 30 us hand-off at most 2% of each.
    assert!(p.chunk_size as f64 * 100e-6 >= 1.5e-3, "{p:#}");
}

#[test]
fn huge_items_are_held_back_by_memory() {
    // 1 GiB items, two in flight per worker: 3 GiB fits one worker.
    let mut s = stats(100, 100e-3);
    s.item_bytes = GIB;
    let mut m = machine(4);
    m.memory.usable_bytes = 3 * (1 << 30);
    let p = plan(&s, &m, &no_processes());
    assert!(
        has(&p, |r| matches!(r, Reason::MemoryCap { workers: 1, .. })),
        "{p:#}"
    );
    assert_eq!(p.backend, Backend::Serial);
    assert_eq!(estimate(&p, Backend::Rayon).workers, 1);

    // 5 GiB fits two of the four.
    m.memory.usable_bytes = 5 * (1 << 30);
    let p = plan(&s, &m, &no_processes());
    assert_eq!(
        (p.backend, p.workers, p.chunk_size),
        (Backend::Rayon, 2, 1),
        "{p:#}"
    );
    assert!(has(&p, |r| matches!(
        r,
        Reason::MemoryCap { workers: 2, .. }
    )));
}

#[test]
fn uneven_work_gets_smaller_chunks() {
    let uniform = stats(100_000, 10e-6);
    let mut skewed = uniform.clone();
    skewed.cv = 2.0;
    let a = plan(&uniform, &machine(2), &no_processes());
    let b = plan(&skewed, &machine(2), &no_processes());
    assert_eq!((a.backend, b.backend), (Backend::Rayon, Backend::Rayon));
    assert!(b.chunk_size < a.chunk_size, "{a:#}\n{b:#}");
    // Uniform: 4 chunks per worker; skewed: about sqrt(N h / (w t cv (1 - 1/w))) = 100.
    assert_eq!(a.chunk_size, 12_500);
    assert!((50..=200).contains(&b.chunk_size), "{b:#}");
}

#[test]
fn two_workers_can_beat_the_whole_budget() {
    // 8 CPUs, but each worker process costs 1 ms to start and there are 5 ms of work:
    // w = 2 gives 2 + 2.5 ms, w = 8 gives 8 + 0.6 ms.
    let mut o = Options::default();
    o.forbid(Backend::Rayon, "test");
    o.forbid(Backend::Threads, "test");
    o.min_speedup = 1.0;
    let p = plan(&stats(50, 100e-6), &machine(8), &o);
    assert_eq!((p.backend, p.workers), (Backend::Processes, 2), "{p:#}");
    assert!(p.estimated_speedup > 1.0);
}

#[test]
fn internally_parallel_items_get_fewer_workers() {
    let mut s = stats(10_000, 1e-3);
    s.process_cpu_ratio = 2.0;
    let p = plan(&s, &machine(4), &no_processes());
    assert_eq!((p.backend, p.workers), (Backend::Rayon, 2), "{p:#}");
    assert!(has(&p, |r| matches!(r, Reason::InternallyParallel { .. })));
}

#[test]
fn a_measured_inner_speedup_replaces_the_process_cpu_ratio() {
    // The process kept 8 CPUs busy per CPU of the sampled thread, which mostly waited
    // for them (r = 0.25): taken as it reads, no outer parallelism pays.
    let mut s = stats(10_000, 1e-3);
    s.cpu_ratio = 0.25;
    s.process_cpu_ratio = 8.0;
    let assumed = plan(&s, &machine(2), &no_processes());
    assert_eq!(assumed.backend, Backend::Serial, "{assumed:#}");
    // Confined to one thread the item is no slower: it is single-threaded CPU work.
    s.inner_speedup = Some(1.0);
    let measured = plan(&s, &machine(2), &no_processes());
    assert_eq!(
        (measured.backend, measured.workers),
        (Backend::Rayon, 2),
        "{measured:#}"
    );
    assert!(has(&measured, |r| matches!(
        r,
        Reason::InnerParallelismMeasured { .. }
    )));
    assert!(!has(&measured, |r| matches!(r, Reason::IoBound { .. })));
    // An inner parallelism that pays (twice as fast with its own rayon calls) keeps
    // the item's two CPUs: with two in all, no outer parallelism.
    s.inner_speedup = Some(2.0);
    let pays = plan(&s, &machine(2), &no_processes());
    assert_eq!(pays.backend, Backend::Serial, "{pays:#}");
}

#[test]
fn a_mixture_of_waiting_and_computing_items_gets_a_pool_for_both() {
    // Half the sampled time computing, half waiting: the CPUs bound the job at 4x, and
    // P / r = 4 threads would leave a CPU idle whenever three of them wait: the pool
    // has more, and the estimate stays within the bound.
    let mut s = stats(100, 1e-3);
    s.cpu_ratio = 0.5;
    s.cpu_ratio_range = Some((0.01, 0.99));
    let p = plan(&s, &machine(2), &no_processes());
    assert_eq!(p.backend, Backend::Threads, "{p:#}");
    assert!((6..=16).contains(&p.workers), "{p:#}");
    assert!(p.estimated_speedup <= 4.0, "{p:#}");
    assert!(has(&p, |r| matches!(r, Reason::Mixture { .. })), "{p:#}");
}

#[test]
fn waiting_work_says_when_nothing_capped_it() {
    let mut s = stats(200, 10e-3);
    s.cpu_ratio = 0.01;
    let p = plan(&s, &machine(2), &no_processes());
    assert_eq!(p.backend, Backend::Threads, "{p:#}");
    assert!(p.workers > 8, "{p:#}");
    assert!(
        has(&p, |r| matches!(r, Reason::WaitingUncapped { .. })),
        "{p:#}"
    );
    let mut capped = no_processes();
    capped.max_workers = Some(16);
    let p = plan(&s, &machine(2), &capped);
    assert!(p.workers <= 16, "{p:#}");
    assert!(
        !has(&p, |r| matches!(r, Reason::WaitingUncapped { .. })),
        "{p:#}"
    );
}

#[test]
fn absurd_options_are_clamped() {
    let mut o = no_processes();
    o.max_workers = Some(0);
    o.chunk_size = Some(0);
    o.min_speedup = f64::NAN;
    let p = plan(&stats(10_000, 100e-6), &machine(2), &o);
    let clamped: Vec<_> = p
        .reasons
        .iter()
        .filter_map(|r| match r {
            Reason::Clamped { option, used, .. } => Some((*option, used.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        clamped,
        [
            ("max_workers", "1"),
            ("chunk_size", "1"),
            ("min_speedup", "1.2")
        ]
    );
    // One worker cannot beat serial.
    assert_eq!(p.backend, Backend::Serial);

    o.min_speedup = -3.0;
    o.max_workers = None;
    o.chunk_size = None;
    let p = plan(&stats(10_000, 100e-6), &machine(2), &o);
    assert!(has(
        &p,
        |r| matches!(r, Reason::Clamped { option: "min_speedup", used, .. } if used == "0")
    ));
    assert_eq!(p.backend, Backend::Rayon);
}

#[test]
fn pinned_backend_is_honoured_even_when_slower() {
    let mut o = no_processes();
    o.backend = Some(Backend::Threads);
    let p = plan(&stats(1000, 20e-9), &machine(2), &o);
    assert_eq!(p.backend, Backend::Threads, "{p:#}");
    assert!(p.estimated_speedup < 1.0);
    let pinned = Reason::Pinned {
        option: "backend",
        value: "threads".to_string(),
    };
    assert_eq!(p.main_reason(), Some(&pinned));

    // Fully pinned: exactly those numbers.
    o.max_workers = Some(7);
    o.chunk_size = Some(3);
    let p = plan(&stats(10_000, 1e-6), &machine(2), &o);
    assert_eq!(
        (p.backend, p.workers, p.chunk_size),
        (Backend::Threads, 7, 3)
    );
    assert!(p.estimated_speedup.is_finite());

    // Serial can be pinned too.
    let o = Options {
        backend: Some(Backend::Serial),
        ..Options::default()
    };
    let p = plan(&stats(10_000, 100e-6), &machine(2), &o);
    assert_eq!(p.backend, Backend::Serial);
    assert!(matches!(p.main_reason(), Some(Reason::Pinned { .. })));
}

#[test]
fn pinned_but_excluded_falls_back() {
    let mut o = no_processes();
    o.backend = Some(Backend::Processes);
    let p = plan(&stats(10_000, 100e-6), &machine(2), &o);
    assert_eq!(p.backend, Backend::Rayon, "{p:#}");
    assert!(has(&p, |r| *r
        == Reason::PinnedUnavailable {
            pinned: Backend::Processes,
            used: Backend::Rayon
        }));
    assert!(matches!(p.main_reason(), Some(Reason::Fastest { .. })));
}

#[test]
fn unknown_length_is_estimated() {
    let mut s = stats(0, 100e-6);
    s.remaining_items = None;
    s.items = 40;
    let p = plan(&s, &machine(2), &no_processes());
    assert_eq!(p.remaining_items, Some(40));
    assert!(has(&p, |r| *r == Reason::LengthEstimated { remaining: 40 }));
    assert!(close(p.estimated_serial_secs, 40.0 * 100e-6, 1e-9));
}

#[test]
fn hostile_numbers_give_a_finite_plan() {
    let mut s = stats(1000, f64::NAN);
    s.cv = f64::INFINITY;
    s.cpu_ratio = f64::NAN;
    s.two_thread_efficiency = Some(f64::NAN);
    s.item_bytes = -1.0;
    let mut m = machine(0);
    m.overheads.rayon_start_secs = f64::NAN;
    m.memory.usable_bytes = 0;
    let p = plan(&s, &m, &Options::default());
    assert_eq!(p.backend, Backend::Serial);
    assert!(all_finite(&p), "{p:#}");
    assert_eq!(p.sample.two_thread_efficiency, None);
    assert_eq!(p.sample.cpu_ratio, 1.0);
}

/// Prints the plans shown in the model's report (`cargo test -- --nocapture`).
#[test]
fn example_plans_display() {
    let mut sleep = stats(100, 10e-3);
    sleep.cpu_ratio = 0.01;
    let mut lock = stats(2000, 100e-6);
    lock.two_thread_efficiency = Some(0.5);
    for (name, s, o) in [
        ("tiny", stats(1000, 20e-9), no_processes()),
        ("heavy", stats(10_000, 100e-6), no_processes()),
        ("sleep", sleep, no_processes()),
        ("lock-bound", lock.clone(), no_processes()),
        ("lock-bound, task", lock, Options::default()),
    ] {
        let p = plan(&s, &machine(2), &o);
        let text = format!("{p:#}");
        assert!(text.lines().count() > 3);
        println!("== {name}\n{text}");
    }
}

/// Every `f64` in the plan is finite.
fn all_finite(p: &Plan) -> bool {
    let s = &p.sample;
    let mut xs = vec![
        p.estimated_speedup,
        p.estimated_serial_secs,
        s.sample_secs,
        s.mean_item_secs,
        s.cv,
        s.cpu_ratio,
        s.process_cpu_ratio,
        s.two_thread_efficiency.unwrap_or(0.0),
        s.in_bytes,
        s.out_bytes,
        s.encode_in_secs,
        s.decode_in_secs,
        s.encode_out_secs,
        s.decode_out_secs,
        s.item_bytes,
    ];
    let reasons = p.reasons.iter().chain(
        p.candidates
            .iter()
            .filter_map(|c| c.estimate.as_ref().err()),
    );
    for r in reasons {
        match r {
            Reason::Fastest { speedup, .. } => xs.push(*speedup),
            Reason::BelowMinSpeedup {
                speedup,
                min_speedup,
                ..
            } => xs.extend([*speedup, *min_speedup]),
            Reason::TooLittleWork {
                serial_secs,
                threshold_secs,
            } => xs.extend([*serial_secs, *threshold_secs]),
            Reason::Slower {
                secs, winner_secs, ..
            } => xs.extend([*secs, *winner_secs]),
            Reason::IoBound { cpu_ratio } => xs.push(*cpu_ratio),
            Reason::ThreadsDoNotScale { efficiency } => xs.push(*efficiency),
            Reason::InternallyParallel { ratio } => xs.push(*ratio),
            _ => {}
        }
    }
    for c in &p.candidates {
        if let Ok(e) = &c.estimate {
            xs.extend([e.secs, e.speedup]);
        }
    }
    xs.iter().all(|x| x.is_finite())
}

mod invariants {
    use super::*;
    use proptest::prelude::*;

    /// Times from the sane to the hostile.
    fn secs() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => 1e-9..10.0f64,
            1 => Just(0.0),
            1 => Just(f64::MIN_POSITIVE / 4.0),
            1 => Just(f64::MAX),
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(-1.0),
            1 => any::<f64>(),
        ]
    }

    fn ratio() -> impl Strategy<Value = f64> {
        prop_oneof![3 => 0.0..=1.0f64, 1 => 1.0..64.0f64, 1 => secs()]
    }

    fn count() -> impl Strategy<Value = usize> {
        prop_oneof![
            1 => Just(0usize),
            4 => 1usize..100_000,
            1 => any::<usize>(),
        ]
    }

    fn cpus() -> impl Strategy<Value = usize> {
        prop_oneof![1 => Just(0usize), 4 => 1usize..=64, 1 => any::<usize>()]
    }

    prop_compose! {
        fn sample()(
            items in count(),
            t in secs(),
            cv in secs(),
            r in ratio(),
            q in ratio(),
            e2 in proptest::option::of(ratio()),
            inner in proptest::option::of(ratio()),
            remaining in proptest::option::of(count()),
            io in proptest::array::uniform4(secs()),
            bytes in secs(),
        ) -> SampleStats {
            SampleStats {
                items,
                sample_secs: t * 16.0,
                mean_item_secs: t,
                cv,
                cpu_ratio: r,
                process_cpu_ratio: q,
                two_thread_efficiency: e2,
                inner_speedup: inner,
                cpu_ratio_range: None,
                remaining_items: remaining,
                encode_in_secs: io[0],
                decode_in_secs: io[1],
                encode_out_secs: io[2],
                decode_out_secs: io[3],
                in_bytes: bytes,
                out_bytes: bytes,
                item_bytes: bytes * 1e6,
            }
        }
    }

    prop_compose! {
        fn a_machine()(
            cpus in cpus(),
            rayon in cpus(),
            usable in prop_oneof![Just(0u64), any::<u64>(), Just(u64::MAX)],
            o in proptest::array::uniform6(secs()),
        ) -> MachineProfile {
            MachineProfile {
                cpu_budget: cpus,
                rayon_threads: rayon,
                memory: Memory { usable_bytes: usable, ..Memory::default() },
                overheads: Overheads {
                    thread_start_secs: o[0],
                    rayon_start_secs: o[1],
                    chunk_handoff_secs: o[2],
                    process_start_secs: o[3],
                    process_chunk_secs: o[4],
                    process_item_secs: o[5],
                },
                ..MachineProfile::default()
            }
        }
    }

    fn backend() -> impl Strategy<Value = Backend> {
        proptest::sample::select(Backend::ALL.to_vec())
    }

    prop_compose! {
        fn options()(
            pin in proptest::option::weighted(0.3, backend()),
            max_workers in proptest::option::weighted(0.3, count()),
            chunk in proptest::option::weighted(0.3, count()),
            min_speedup in prop_oneof![4 => Just(DEFAULT_MIN_SPEEDUP), 1 => secs()],
            exclude in proptest::collection::vec(backend(), 0..3),
        ) -> Options {
            let mut o = Options {
                backend: pin,
                max_workers,
                chunk_size: chunk,
                min_speedup,
                ..Options::default()
            };
            for b in exclude {
                o.forbid(b, "test");
            }
            o
        }
    }

    /// `min_speedup` as the model applies it.
    fn used_min_speedup(o: &Options) -> f64 {
        if o.min_speedup.is_nan() {
            DEFAULT_MIN_SPEEDUP
        } else {
            o.min_speedup.clamp(0.0, 1e6)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        // Boxed strategies: their value trees live on the heap (five unboxed ones
        // overflow a test thread's stack in a debug build).
        fn plans_are_sane(
            s in sample().boxed(),
            m in a_machine().boxed(),
            o in options().boxed(),
            cluster in proptest::option::weighted(0.3, (0usize..10_000, secs(), secs())).boxed(),
        ) {
            let mut m = m;
            m.cluster = cluster.map(|(w, chunk, byte)| ClusterProfile::new(w, chunk, byte));
            let p = plan(&s, &m, &o);
            let n = p.remaining_items.expect("the model always sets remaining_items");
            prop_assert!(p.workers >= 1);
            prop_assert!(p.chunk_size >= 1);
            prop_assert!(p.workers <= n.max(1), "{p:#}");
            prop_assert!(all_finite(&p), "{p:#}");
            let text = format!("{p:#}");
            prop_assert!(!text.is_empty());
            let backends: Vec<_> = p.candidates.iter().map(|c| c.backend).collect();
            prop_assert_eq!(backends, Backend::ALL.to_vec());
            let main_ok = matches!(
                p.main_reason(),
                Some(Reason::Fastest { .. } | Reason::BelowMinSpeedup { .. }
                    | Reason::TooLittleWork { .. } | Reason::Pinned { .. })
            );
            prop_assert!(main_ok, "{}", text);
            if p.backend == Backend::Serial {
                prop_assert_eq!((p.workers, p.chunk_size), (1, 1));
                prop_assert_eq!(p.estimated_speedup, 1.0);
            }
            for c in &p.candidates {
                if let Ok(e) = &c.estimate {
                    prop_assert!(e.workers >= 1 && e.chunk_size >= 1);
                    prop_assert!(e.workers <= n.max(1));
                }
            }

            // The cluster needs workers that answered (a profile with slots), unless
            // everything is pinned.
            let fully = o.max_workers.is_some() && o.chunk_size.is_some();
            let has_cluster = m.cluster.as_ref().is_some_and(|c| c.workers > 0) || fully;
            let usable = |b: Backend| {
                b == Backend::Serial
                    || (o.excluded(b).is_none() && (b != Backend::Cluster || has_cluster))
            };
            let pinned = o.backend.filter(|&b| usable(b));
            match pinned {
                Some(b) => prop_assert_eq!(p.backend, b),
                None => {
                    prop_assert!(usable(p.backend));
                    let best = p
                        .candidates
                        .iter()
                        .filter(|c| c.backend != Backend::Serial)
                        .filter_map(|c| c.estimate.as_ref().ok())
                        .map(|e| e.speedup)
                        .fold(f64::NEG_INFINITY, f64::max);
                    if best < used_min_speedup(&o) {
                        prop_assert_eq!(p.backend, Backend::Serial, "{:#}", p);
                    }
                    if p.backend != Backend::Serial {
                        prop_assert!(p.estimated_speedup >= used_min_speedup(&o));
                    }
                }
            }
        }

        #[test]
        fn cpu_bound_speedup_is_at_most_workers(
            mut s in sample(),
            m in a_machine(),
            o in options(),
        ) {
            s.cpu_ratio = 1.0;
            s.process_cpu_ratio = 1.0;
            let p = plan(&s, &m, &o);
            prop_assert!(p.estimated_speedup <= p.workers as f64 * (1.0 + 1e-9), "{p:#}");
            for c in &p.candidates {
                if let Ok(e) = &c.estimate {
                    prop_assert!(e.speedup <= e.workers as f64 * (1.0 + 1e-9), "{p:#}");
                }
            }
        }

        /// The pruned search finds what trying every `w` with every candidate chunk
        /// size finds.
        #[test]
        fn pruned_search_is_exhaustive(
            s in sample(),
            m in a_machine(),
            cap in 1usize..300,
            b in proptest::sample::select(vec![Backend::Rayon, Backend::Threads, Backend::Processes]),
        ) {
            use super::super::chunk;
            use super::super::cost::Cost;
            use super::super::input::{clean_sample, Machine, Workload};
            use super::super::search::{self, Limits};

            let sample = clean_sample(&s);
            let work = Workload::new(&sample, s.remaining_items.unwrap_or(0).min(1 << 40));
            let machine = Machine::new(&m);
            let cost = Cost::new(b, &work, &machine);
            let limits = Limits {
                workers: cap,
                chunk: None,
                exact_workers: None,
                usable_bytes: machine.usable_bytes,
            };
            let found = search::best(&cost, limits);

            let cap = cap.min(search::memory_workers(&cost, 1, machine.usable_bytes));
            let mut naive = (usize::MAX, usize::MAX, f64::INFINITY);
            for w in 1..=cap {
                let a = cost.at(w);
                let limit = search::memory_chunk(&cost, w, machine.usable_bytes);
                for &c in chunk::candidates(&cost, &a, limit).as_slice() {
                    let secs = cost.time(&a, c);
                    if secs < naive.2 || (secs == naive.2 && (w, c) < (naive.0, naive.1)) {
                        naive = (w, c, secs);
                    }
                }
            }
            prop_assert_eq!((found.workers, found.chunk, found.secs), naive);
        }

        #[test]
        fn fully_pinned_is_exact(
            s in sample(),
            b in backend(),
            w in 1usize..64,
            c in 1usize..1000,
        ) {
            let o = Options {
                backend: Some(b),
                max_workers: Some(w),
                chunk_size: Some(c),
                ..Options::default()
            };
            let p = plan(&s, &machine(2), &o);
            let n = p.remaining_items.unwrap_or(0);
            prop_assert_eq!(p.backend, b);
            // Exact, but never more workers than items or than the backend's cap (a
            // job gets at most four worker processes per CPU).
            let cap = if b == Backend::Processes {
                crate::limits::max_processes(2)
            } else {
                crate::limits::MAX_THREADS
            };
            if b != Backend::Serial {
                prop_assert_eq!((p.workers, p.chunk_size), (w.min(n.max(1)).min(cap), c));
            }
        }
    }
}
