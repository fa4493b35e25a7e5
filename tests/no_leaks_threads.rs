//! No thread is left behind by failing calls: after 50 rounds of failing jobs on every
//! backend (panics propagated, and caught per item), the process has no more threads
//! than after the first round. The blocking pool's idle threads stay (they are reused,
//! and the pool is bounded); nothing else may accumulate.
//!
//! The only test of its file, so no other test's threads blur the count.
#![cfg(target_os = "linux")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use amorsize::Backend;
use amorsize::prelude::*;
use support::{
    chaos_message, failing_set, quiet_chaos_panics, settle, spin, thread_count, watchdog,
};

const N: usize = 3_000;
const ROUNDS: usize = 50;

/// The ways a job is run in this test.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Auto,
    Serial,
    Rayon,
    ThreadsAuto,
    ThreadsPinned,
    /// Pinned to rayon inside one long-lived 2-thread pool (the windowed executor).
    InPool,
}

const MODES: [Mode; 6] = [
    Mode::Auto,
    Mode::Serial,
    Mode::Rayon,
    Mode::ThreadsAuto,
    Mode::ThreadsPinned,
    Mode::InPool,
];

/// One failing job: about one item in 50 panics. With `catch`, failures are values;
/// without, the panic is caught here. Returns how many items ran.
fn failing_job(m: Mode, pool: &rayon::ThreadPool, seed: u64, catch: bool) -> usize {
    let fail = failing_set(N, seed, 50);
    let calls = AtomicUsize::new(0);
    let job = || {
        let it = (0..N).par_auto();
        // The automatic modes are capped at the warm-up's 4 workers: on a busy machine
        // the sample can mistake CPU-bound items for I/O-bound ones
        // (auto_choice_busy_cpus.rs) and a bigger plan would legitimately grow the pool.
        let it = match m {
            Mode::Auto => it.max_workers(4),
            Mode::Serial => it.backend(Backend::Serial),
            Mode::Rayon | Mode::InPool => it.backend(Backend::Rayon),
            Mode::ThreadsAuto => it.backend(Backend::Threads).max_workers(4),
            Mode::ThreadsPinned => it.backend(Backend::Threads).max_workers(4).chunk_size(16),
        };
        let it = it.map(|x| {
            calls.fetch_add(1, Ordering::Relaxed);
            if fail[x] {
                panic!("{}", chaos_message(x));
            }
            spin(100) ^ x as u64
        });
        if catch {
            let errors = it.catch_unwind().filter(|r| r.is_err()).count();
            assert_eq!(errors, fail.iter().filter(|&&f| f).count(), "{m:?}");
        } else {
            let r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| it.collect::<Vec<u64>>()));
            assert!(r.is_err(), "{m:?}: the panic must reach the caller");
        }
    };
    match m {
        Mode::InPool => pool.install(job),
        _ => job(),
    }
    calls.into_inner()
}

#[test]
fn fifty_rounds_of_failing_calls_leave_no_thread_behind() {
    quiet_chaos_panics();
    watchdog(300, || {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("build a rayon pool");
        let before_any = thread_count();
        // Warm up: the probe, rayon's global pool, the blocking pool (4 threads, the
        // most any plan here asks for) and the custom pool all exist after this.
        for (k, m) in MODES.into_iter().enumerate() {
            failing_job(m, &pool, k as u64, true);
            failing_job(m, &pool, k as u64, false);
        }
        // Threads that end (e.g. a blocking pool replaced by a bigger one) may take a
        // moment to exit: wait for the count to stop falling.
        let mut baseline = thread_count();
        settle(2, || {
            let now = thread_count();
            let stable = now == baseline;
            baseline = now;
            stable
        });
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        eprintln!("threads: {before_any} at start, {baseline} after warm-up ({cpus} CPUs)");
        // Global rayon pool + blocking pool (at most 4) + the 2-thread custom pool.
        assert!(
            baseline <= before_any + cpus + 4 + 2,
            "warm-up left {baseline} threads (from {before_any})"
        );

        let mut peak = baseline;
        for round in 0..ROUNDS {
            for (k, m) in MODES.into_iter().enumerate() {
                let seed = (round * MODES.len() + k) as u64;
                let ran = failing_job(m, &pool, seed, round % 2 == 0);
                assert!(ran <= N, "{m:?}: {ran} calls for {N} items");
                let settled = settle(5, || thread_count() <= baseline);
                let now = thread_count();
                peak = peak.max(now);
                assert!(
                    settled,
                    "round {round}, {m:?}: {now} threads, {baseline} after warm-up"
                );
            }
        }
        eprintln!("threads: peak {peak} after a call, baseline {baseline}");
    });
}
