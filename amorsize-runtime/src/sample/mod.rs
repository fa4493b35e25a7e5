//! Sampling: run the first items serially under timers and keep their results.
//!
//! Items run in doubling batches (1, 1, 2, 4, …) with one wall-clock read per batch
//! boundary (about 25 ns each), so the cost of asking is a few timer reads however
//! cheap the items are. The CPU clocks (about 250 ns a read) are read only once the
//! sample has run [`CPU_CLOCK_AFTER_SECS`] of work. The sample stops when its time
//! reaches a budget that is small against the predicted total, so a slow first item
//! (a 10 ms wait) ends it after two items, and a tiny input is finished inside it.

pub(crate) mod clock;
#[cfg(all(unix, feature = "cluster"))]
pub(crate) mod cluster;
pub(crate) mod extra;
pub(crate) mod inner;
#[cfg(unix)]
pub(crate) mod processes;
pub(crate) mod scaling;

use std::time::Instant;

use crate::plumbing::{ChunkFold, Stage};
use crate::stats::SampleStats;

/// Read the CPU clocks only after this much sampled work, so cheap inputs never pay.
pub(crate) const CPU_CLOCK_AFTER_SECS: f64 = 20e-6;
/// The sample always runs at least this long (unless the input ends first).
pub(crate) const MIN_BUDGET_SECS: f64 = 50e-6;
/// Share of the predicted serial total the sample may take.
pub(crate) const BUDGET_SHARE: f64 = 0.01;
/// The sample never runs longer than this.
pub(crate) const MAX_BUDGET_SECS: f64 = 20e-3;
/// Budget when the input length is unknown: long enough that the model's estimate of
/// the rest ("as many again as seen") is worth planning for, short enough to matter
/// little against an input that takes longer.
pub(crate) const UNKNOWN_LENGTH_BUDGET_SECS: f64 = 10e-3;
/// CPUs that other threads of the process may use beside a busy sampled thread before
/// they count as the item's own parallelism.
const OTHERS_NOISE_CPUS: f64 = 0.25;
/// Most items a sample keeps (their outputs are buffered until the plan is made).
pub(crate) const MAX_ITEMS: usize = 1 << 16;

/// What a sample produced: the kept outputs and the statistics.
#[derive(Debug)]
pub(crate) struct Sampled<A> {
    /// Outputs of the sampled items, folded in order; they are emitted first.
    pub head: A,
    /// Input items consumed.
    pub items: usize,
    /// The source ended inside the sample.
    pub exhausted: bool,
    /// Measured statistics (`remaining_items` left for the caller to fill).
    pub stats: SampleStats,
}

struct CpuMark {
    wall: Instant,
    thread: f64,
    process: Option<f64>,
    run_delay: Option<f64>,
}

/// Samples `src` with `stage`, consuming items until the budget is spent, `max_items`
/// have run, or the source ends. `total_hint` is the number of items the source is
/// expected to yield (exact or estimated), if known.
pub(crate) fn sample<T, S, K, I>(
    src: &mut I,
    stage: &S,
    st: &mut S::State,
    fold: &K,
    total_hint: Option<usize>,
    max_items: usize,
) -> Sampled<K::Acc>
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    I: Iterator<Item = T>,
{
    let max_items = max_items.clamp(1, MAX_ITEMS);
    let mut head = fold.empty(total_hint.unwrap_or(16).clamp(1, 1024));
    let start = Instant::now();
    let mut last = start;
    let mut items = 0usize;
    let mut exhausted = false;
    let mut batch = 1usize;
    // (items, seconds) of each batch after the first.
    let mut batches: Vec<(usize, f64)> = Vec::new();
    let mut cpu_mark: Option<CpuMark> = None;
    // The thread's CPU clock from the first item on (one read, ~250 ns), then at every
    // batch boundary once the sample needs it: (wall, CPU) seconds of each span, so the
    // CPU share covers every sampled item (a job of slow items samples only a few) and
    // its spread shows a mixture of computing and waiting items.
    let mut last_cpu = clock::thread_cpu_secs().map(|c| (c, start));
    let mut spans: Vec<(f64, f64)> = Vec::new();
    // Time spent reading the CPU clocks and the run delay (a file read, tens of
    // microseconds where the system is slow to open it): not the items'.
    let mut overhead = 0.0;
    let mut elapsed;

    loop {
        let mut done = 0;
        while done < batch {
            match src.next() {
                Some(x) => {
                    stage.apply(st, items, x, &mut |o| fold.push(&mut head, o));
                    items += 1;
                    done += 1;
                }
                None => {
                    exhausted = true;
                    break;
                }
            }
        }
        let now = Instant::now();
        let secs = (now - last).as_secs_f64();
        last = now;
        elapsed = (now - start).as_secs_f64() - overhead;
        if done > 0 && items > done {
            batches.push((done, secs));
        }
        if elapsed >= CPU_CLOCK_AFTER_SECS
            && let Some((c0, t0)) = last_cpu
            && let Some(c1) = clock::thread_cpu_secs()
        {
            spans.push(((now - t0).as_secs_f64(), c1 - c0));
            last_cpu = Some((c1, now));
        }
        if exhausted || items >= max_items {
            break;
        }
        if cpu_mark.is_none() && elapsed >= CPU_CLOCK_AFTER_SECS {
            cpu_mark = clock::thread_cpu_secs().map(|thread| CpuMark {
                wall: Instant::now(),
                thread,
                process: clock::process_cpu_secs(),
                run_delay: clock::thread_run_delay_secs(),
            });
            // Its cost would otherwise be the next batch's: a sample of 1 ns items,
            // preempted once, read 30 us an item and stopped after two.
            let after = Instant::now();
            overhead += (after - now).as_secs_f64();
            last = after;
        }
        let mean = elapsed / items as f64;
        let budget = match total_hint {
            Some(n) => (BUDGET_SHARE * n as f64 * mean).clamp(MIN_BUDGET_SECS, MAX_BUDGET_SECS),
            None => UNKNOWN_LENGTH_BUDGET_SECS,
        };
        if elapsed >= budget && !batches.is_empty() {
            break;
        }
        // Double, but do not run far past the budget.
        let fits = ((budget - elapsed) / mean.max(1e-9)).ceil() as usize;
        batch = (batch * 2).min(fits.max(1)).min(max_items - items);
    }

    let mut stats = SampleStats {
        items,
        sample_secs: elapsed,
        mean_item_secs: if items > 0 {
            elapsed / items as f64
        } else {
            0.0
        },
        cv: cv(&batches),
        item_bytes: (std::mem::size_of::<T>() + std::mem::size_of::<S::Out>()) as f64,
        ..SampleStats::default()
    };
    // Time spent waiting for a CPU (a busy machine) is neither work nor I/O; measured
    // from the mark on.
    let mut run_delay = 0.0;
    if let Some(mark) = &cpu_mark {
        let mut wall = mark.wall.elapsed().as_secs_f64();
        if let (Some(d0), Some(d1)) = (mark.run_delay, clock::thread_run_delay_secs()) {
            run_delay = (d1 - d0).clamp(0.0, wall);
            wall -= run_delay;
        }
        if let Some(thread) = clock::thread_cpu_secs() {
            let thread_d = thread - mark.thread;
            if wall > 0.0 {
                stats.cpu_ratio = (thread_d / wall).clamp(0.0, 1.0);
            }
            if let (Some(p0), Some(p1)) = (mark.process, clock::process_cpu_secs()) {
                // Below this the thread's CPU time is mostly clock granularity. An item
                // that waits for work it handed to other threads (its own rayon calls)
                // shows here: little CPU on this thread, a lot on the others. When the
                // whole process kept less than half a CPU busy, the others' share is
                // noise (idle pools winding down), not the item's: the work waits.
                // Likewise, a quarter of a CPU beside a sampled thread that was busy
                // itself is another thread's (a background measurement, a pool
                // winding down): an item's own helpers would do a share of its work.
                let process_busy = if wall > 0.0 { (p1 - p0) / wall } else { 0.0 };
                let others = if wall > 0.0 {
                    (p1 - p0 - thread_d) / wall
                } else {
                    0.0
                };
                let beside_busy_thread = stats.cpu_ratio >= 0.9 && others < OTHERS_NOISE_CPUS;
                if thread_d > 10e-6 && process_busy >= 0.5 && !beside_busy_thread {
                    stats.process_cpu_ratio = ((p1 - p0) / thread_d).max(1.0);
                }
            }
        }
    }
    // Over every span, the first items included (a job of few slow items, some of them
    // waiting and some computing, is read right only so). The time spent waiting for a
    // CPU is known from the mark on only; where the spans read a lower share than the
    // mark's window, that unknown wait is the likelier cause, and the mark's share
    // stands.
    let (wall, cpu) = spans
        .iter()
        .fold((0.0, 0.0), |(w, c), &(sw, sc)| (w + sw, c + sc));
    if wall - run_delay > 0.0 {
        let over_spans = (cpu / (wall - run_delay)).clamp(0.0, 1.0);
        stats.cpu_ratio = if cpu_mark.is_some() {
            stats.cpu_ratio.max(over_spans)
        } else {
            over_spans
        };
    }
    stats.cpu_ratio_range = cpu_ratio_range(&spans);
    Sampled {
        head,
        items,
        exhausted,
        stats,
    }
}

/// The least and greatest CPU share of the sample's spans long enough to time (at least
/// two of them): a job of computing and waiting items reads near 0 and near 1.
fn cpu_ratio_range(spans: &[(f64, f64)]) -> Option<(f64, f64)> {
    let ratios: Vec<f64> = spans
        .iter()
        .filter(|&&(w, _)| w >= CV_MIN_BATCH_SECS)
        .map(|&(w, c)| (c / w).clamp(0.0, 1.0))
        .collect();
    if ratios.len() < 2 {
        return None;
    }
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lo, hi))
}

/// Batches shorter than this are left out of the variation: timer granularity and a
/// single interrupt would read as a skewed workload.
const CV_MIN_BATCH_SECS: f64 = 20e-6;

/// Coefficient of variation of per-item time, estimated from batch means: a batch of
/// `b` items has a mean whose variance is σ²/b, so σ² ≈ Σ b·(mᵢ − μ)² / (batches − 1).
/// The first batch (cold caches, lazy initialisation) and batches too short to time
/// well are left out.
fn cv(batches: &[(usize, f64)]) -> f64 {
    let batches: Vec<(usize, f64)> = batches
        .iter()
        .copied()
        .filter(|b| b.1 >= CV_MIN_BATCH_SECS)
        .collect();
    let n: usize = batches.iter().map(|b| b.0).sum();
    let total: f64 = batches.iter().map(|b| b.1).sum();
    if batches.len() < 2 || n == 0 || total <= 0.0 {
        return 0.0;
    }
    let mu = total / n as f64;
    let var = batches
        .iter()
        .map(|&(b, s)| {
            let m = s / b as f64;
            b as f64 * (m - mu) * (m - mu)
        })
        .sum::<f64>()
        / (batches.len() - 1) as f64;
    let cv = var.sqrt() / mu;
    if cv.is_finite() { cv.min(100.0) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::Identity;
    use crate::plumbing::KeepOutputs;

    #[test]
    fn a_short_input_ends_inside_the_sample() {
        let mut src = 0..100u32;
        let stage = Identity::new();
        let s = sample(
            &mut src,
            &stage,
            &mut (),
            &KeepOutputs,
            Some(100),
            MAX_ITEMS,
        );
        assert!(s.exhausted);
        assert_eq!(s.items, 100);
        assert_eq!(s.head, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn a_slow_first_item_ends_the_sample_after_two_items() {
        let mut src =
            (0..100u32).inspect(|_| std::thread::sleep(std::time::Duration::from_millis(10)));
        let stage = Identity::new();
        let s = sample(
            &mut src,
            &stage,
            &mut (),
            &KeepOutputs,
            Some(100),
            MAX_ITEMS,
        );
        assert!(!s.exhausted);
        assert_eq!(s.items, 2);
        assert!(s.stats.mean_item_secs >= 0.009);
        assert!(
            s.stats.cpu_ratio < 0.5,
            "sleeping is not CPU work: {}",
            s.stats.cpu_ratio
        );
    }

    #[test]
    fn computing_and_waiting_items_read_as_a_mixture() {
        // Item 0 computes for ~2 ms, item 1 sleeps 2 ms, and so on: the CPU share
        // covers the first item too, and the spans range from waiting to computing.
        let spin_for = |d: std::time::Duration| {
            let t = Instant::now();
            let mut x = 0u64;
            while t.elapsed() < d {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            x
        };
        let mut src = (0..8u32).inspect(|i| {
            let d = std::time::Duration::from_millis(2);
            if i % 2 == 0 {
                spin_for(d);
            } else {
                std::thread::sleep(d);
            }
        });
        let stage = Identity::new();
        let s = sample(&mut src, &stage, &mut (), &KeepOutputs, Some(8), MAX_ITEMS);
        assert!(s.items >= 2, "{}", s.items);
        let (lo, hi) = s.stats.cpu_ratio_range.expect("two spans at least");
        assert!(lo < 0.5 && hi > 0.5, "{lo} .. {hi}");
        assert!(s.stats.cpu_ratio > 0.15, "{}", s.stats.cpu_ratio);
        assert_eq!(
            cpu_ratio_range(&[(1e-3, 1e-3)]),
            None,
            "one span is no spread"
        );
    }

    #[test]
    fn cv_of_uniform_batches_is_zero() {
        let b = [(1, 1.0), (2, 2.0), (4, 4.0)];
        assert_eq!(cv(&b), 0.0);
        let skew = [(1, 1.0), (2, 8.0), (4, 4.0)];
        assert!(cv(&skew) > 0.5);
        // Batches too short to time are not evidence of skew.
        let noisy = [(1, 1e-7), (2, 9e-6), (4, 1e-3), (8, 2e-3)];
        assert_eq!(cv(&noisy), 0.0);
    }
}
