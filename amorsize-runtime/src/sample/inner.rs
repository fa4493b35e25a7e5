//! Does an item's own parallelism pay? Measured, not assumed.
//!
//! The sample reads "the process used `q` CPUs per CPU of the sampled thread", which is
//! the item's own parallelism (its rayon calls) *or* other threads of the process busy
//! at the same time (a pool winding down, unrelated work). Either way outer parallelism
//! looks pointless. This runs `k` real items on the calling thread, then `k` more with
//! their inner rayon calls confined to a one-thread pool, and compares: the inner
//! speedup `t(confined) / t(free)` is near 1 when the inner parallelism does not pay
//! (or did not exist), and near `q` when it does. The model then counts an item as
//! using that many CPUs, not `q`.
//!
//! Only rayon is confined: an item that starts threads of its own still reads as
//! internally parallel through `q`, but it also reads an inner speedup near 1 here and
//! is planned as if single-threaded. That is the price of measuring the common case
//! (rayon inside rayon) without reading every thread's clock.

use std::sync::OnceLock;
use std::time::Instant;

use super::scaling::serial_indexed;
use crate::plumbing::Stage;

/// Work each phase does, in seconds.
pub(crate) const TARGET_SECS: f64 = 1e-3;
/// Most items per phase.
pub(crate) const MAX_ITEMS: usize = 1 << 12;
/// A phase shorter than this gives no measurement.
const MIN_PHASE_SECS: f64 = 0.1e-3;

/// The one-thread pool items are confined to, built on first use and kept (its thread
/// sleeps between measurements). `None` when no thread could be started.
fn confined_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "amorsize-confined".into())
            .build()
            .ok()
    })
    .as_ref()
}

/// Runs `items` (`2k` of them, with their indices) and measures the inner speedup.
/// Returns the outputs in order and the speedup, if it could be measured.
pub(crate) fn confined<T, S>(
    stage: &S,
    st: &mut S::State,
    items: Vec<(usize, T)>,
    k: usize,
) -> (Vec<S::Out>, Option<f64>)
where
    S: Stage<T>,
    T: Send,
{
    let mut outputs = Vec::with_capacity(items.len());
    let pool = confined_pool();
    let Some(pool) = pool.filter(|_| k > 0 && items.len() == 2 * k) else {
        outputs.extend(serial_indexed(stage, st, items));
        return (outputs, None);
    };
    let mut items = items.into_iter();
    let t = Instant::now();
    outputs.extend(serial_indexed(stage, st, items.by_ref().take(k)));
    let free = t.elapsed().as_secs_f64();
    let rest: Vec<(usize, T)> = items.collect();
    // The items run on the pool's thread, with a state of their own there (a state is
    // created on the thread that uses it).
    let (out, confined) = pool.install(|| {
        let mut st = stage.state();
        let t = Instant::now();
        let out = serial_indexed(stage, &mut st, rest);
        (out, t.elapsed().as_secs_f64())
    });
    outputs.extend(out);
    let speedup = (free >= MIN_PHASE_SECS).then(|| (confined / free).max(1.0));
    (outputs, speedup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::AutoIter;
    use rayon::prelude::*;

    fn spin(rounds: u64) -> u64 {
        let mut x = rounds;
        for i in 0..rounds {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
        x
    }

    #[test]
    fn outputs_keep_order_and_the_speedup_is_at_least_one() {
        let stage = AutoIter::new(0..0u64, std::panic::Location::caller())
            .map(|x: u64| {
                (0..8u64)
                    .into_par_iter()
                    .map(|j| (spin(2_000) ^ j ^ x) & 0xffff)
                    .sum::<u64>()
            })
            .stage;
        let items: Vec<(usize, u64)> = (0..40u64).map(|x| (x as usize, x)).collect();
        let expected: Vec<u64> = (0..40u64)
            .map(|x| {
                (0..8u64)
                    .map(|j| (spin(2_000) ^ j ^ x) & 0xffff)
                    .sum::<u64>()
            })
            .collect();
        let (out, speedup) = confined(&stage, &mut (), items, 20);
        assert_eq!(out, expected);
        if let Some(s) = speedup {
            assert!(s >= 1.0, "{s}");
        }
    }

    #[test]
    fn inner_rayon_runs_on_the_confined_thread() {
        let stage = AutoIter::new(0..0u32, std::panic::Location::caller())
            .map(|_: u32| rayon::current_num_threads())
            .stage;
        let items: Vec<(usize, u32)> = (0..4u32).map(|x| (x as usize, x)).collect();
        let (out, _) = confined(&stage, &mut (), items, 2);
        assert_eq!(out[2..], [1, 1], "the confined items saw a one-thread pool");
    }

    #[test]
    fn a_wrong_count_runs_everything_without_a_measurement() {
        let stage = AutoIter::new(0..0u32, std::panic::Location::caller())
            .map(|x: u32| x + 1)
            .stage;
        let items: Vec<(usize, u32)> = (0..5u32).map(|x| (x as usize, x)).collect();
        let (out, s) = confined(&stage, &mut (), items, 2);
        assert_eq!(out, vec![1, 2, 3, 4, 5]);
        assert_eq!(s, None);
    }
}
