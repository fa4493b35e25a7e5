//! [`Feedback`]: what the chunks of a running job measured, and [`Steer`]: how the
//! executors ask the orchestration for a new course when it is far off the plan.
//!
//! Executors time every chunk (two clock reads per chunk, about 50 ns, against chunks
//! the model sized to amortise a hand-off of microseconds) into a few atomic counters.
//! The caller's side compares the time per item since the last change with the one
//! the plan assumed, and past [`DRIFT_FACTOR`] either way asks the [`Steer`] for a
//! course: the orchestration re-runs the model (the executors know nothing of it), and
//! the executor applies what it can without running any item twice: the chunk size,
//! the number of workers, serial or not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::plan::{Backend, Replan};

/// How far (as a factor, either way) the measured time per item may be from the
/// expected one before the rest of the job is re-planned.
pub(crate) const DRIFT_FACTOR: f64 = 2.0;
/// Most re-plans in one job: a cost that keeps drifting (growing with the index) is
/// followed a few times, then left to the last course.
pub(crate) const MAX_REPLANS: usize = 8;
/// Least work measured since the last change before it counts as evidence.
const MIN_EVIDENCE_SECS: f64 = 200e-6;
/// Least chunks finished since the last change before the first re-plan; each re-plan
/// doubles it, so a job whose chunks keep drifting (noise on a busy machine, a few
/// costly items among cheap ones) changes course less and less often.
const MIN_EVIDENCE_CHUNKS: u64 = 2;
/// Work left below which a job keeps its course: a new one could gain less than this.
const MIN_REMAINING_SECS: f64 = 2e-3;
/// Work that is evidence enough however few chunks it took (a watched serial run
/// measures batches of about a millisecond); doubles with each re-plan too.
const LONG_EVIDENCE_SECS: f64 = 2e-3;

/// Timings of a job's chunks, shared by every worker.
#[derive(Debug, Default)]
pub(crate) struct Feedback {
    chunks: AtomicU64,
    items: AtomicU64,
    nanos: AtomicU64,
    /// Seconds per item over the first chunks that took [`MIN_EVIDENCE_SECS`] in all,
    /// as `f64` bits (0: not that far yet).
    first: AtomicU64,
    /// Items and nanoseconds of the chunks recorded before `first` was set.
    early: Mutex<(u64, u64)>,
}

impl Feedback {
    /// Runs `f` over a chunk of `items` items and records its time.
    pub(crate) fn time<R>(&self, items: usize, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let r = f();
        self.record(items, start.elapsed().as_secs_f64());
        r
    }

    /// Records `items` items that took `secs` in all.
    pub(crate) fn record(&self, items: usize, secs: f64) {
        if items == 0 {
            return;
        }
        self.chunks.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(items as u64, Ordering::Relaxed);
        let nanos = (secs * 1e9) as u64;
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
        // The first chunks of a ramp hold one item, two, four…: each carries a clock
        // read and an allocation that a chunk of the planned size spreads over
        // thousands of items (measured: 0.3-1.1 us for one 18 ns item in a fresh
        // process). Only enough work together says what an item costs; it is added
        // up under a lock (items and time together) until then.
        if self.first.load(Ordering::Relaxed) == 0 {
            let mut early = self.early.lock().unwrap_or_else(PoisonError::into_inner);
            early.0 = early.0.saturating_add(items as u64);
            early.1 = early.1.saturating_add(nanos);
            if early.1 as f64 >= MIN_EVIDENCE_SECS * 1e9 {
                let per_item = (early.1 as f64 * 1e-9 / early.0 as f64).max(f64::MIN_POSITIVE);
                let _ = self.first.compare_exchange(
                    0,
                    per_item.to_bits(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
    }

    /// Items recorded and their seconds, in all.
    pub(crate) fn totals(&self) -> (u64, f64) {
        (
            self.items.load(Ordering::Relaxed),
            self.nanos.load(Ordering::Relaxed) as f64 * 1e-9,
        )
    }

    /// Chunks recorded.
    fn chunks(&self) -> u64 {
        self.chunks.load(Ordering::Relaxed)
    }

    /// Seconds per item over the first chunks that took [`MIN_EVIDENCE_SECS`] in all
    /// (over every chunk, for a job that took less).
    pub(crate) fn first_per_item(&self) -> Option<f64> {
        match self.first.load(Ordering::Relaxed) {
            0 => {
                let (items, secs) = self.totals();
                (items > 0).then(|| (secs / items as f64).max(f64::MIN_POSITIVE))
            }
            bits => Some(f64::from_bits(bits)),
        }
    }
}

/// A new course for the rest of a job, as the executor applies it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Course {
    /// `Serial` runs the rest on the caller alone.
    pub backend: Backend,
    pub workers: usize,
    pub chunk_size: usize,
}

/// What the executor tells the orchestration when the items drift off the plan.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Drift {
    /// Input index of the next item not yet handed out.
    pub at_item: usize,
    /// Seconds per item the current course assumed.
    pub expected_secs: f64,
    /// Seconds per item measured since the current course began.
    pub measured_secs: f64,
    /// Items left, if known.
    pub remaining: Option<usize>,
    /// Whether the executor can start workers (a serial run on the caller can only
    /// switch to rayon; a pipeline can change its width and chunk size).
    pub from: Backend,
}

impl Drift {
    /// The record of this drift answered with `course`.
    pub(crate) fn replan(&self, course: &Course) -> Replan {
        Replan {
            at_item: self.at_item,
            expected_secs: self.expected_secs,
            measured_secs: self.measured_secs,
            backend: course.backend,
            workers: course.workers,
            chunk_size: course.chunk_size,
        }
    }
}

/// Re-plans the rest of a job; owned by the orchestration, called by executors on the
/// caller's thread. Keeps the re-plans it made, for the plan and the log.
pub(crate) struct Steer<'a> {
    replan: &'a (dyn Fn(&Drift) -> Course + Sync),
    made: Mutex<Vec<Replan>>,
}

impl<'a> Steer<'a> {
    pub(crate) fn new(replan: &'a (dyn Fn(&Drift) -> Course + Sync)) -> Self {
        Steer {
            replan,
            made: Mutex::new(Vec::new()),
        }
    }

    /// The re-plans made so far.
    pub(crate) fn made(&self) -> Vec<Replan> {
        self.made
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn ask(&self, drift: &Drift) -> Course {
        let course = (self.replan)(drift);
        self.made
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(drift.replan(&course));
        course
    }
}

/// The caller's watch over one running job: compares what the chunks measure with
/// what the current course assumed.
pub(crate) struct Watch<'a> {
    steer: &'a Steer<'a>,
    feedback: &'a Feedback,
    expected_secs: f64,
    /// Chunks, items and seconds when the current course began.
    since: (u64, u64, f64),
    replans: usize,
}

impl<'a> Watch<'a> {
    /// Watches a job whose course assumed `expected_secs` per item.
    pub(crate) fn new(steer: &'a Steer<'a>, feedback: &'a Feedback, expected_secs: f64) -> Self {
        Watch {
            steer,
            feedback,
            expected_secs,
            since: mark(feedback),
            replans: 0,
        }
    }

    /// Seconds per item the current course assumes.
    pub(crate) fn expected_secs(&self) -> f64 {
        self.expected_secs
    }

    /// A new course if the items since the last change ran more than
    /// [`DRIFT_FACTOR`] off the expected time, with enough of them measured.
    pub(crate) fn check(
        &mut self,
        at_item: usize,
        remaining: Option<usize>,
        from: Backend,
    ) -> Option<Course> {
        if self.replans >= MAX_REPLANS || self.expected_secs.is_nan() || self.expected_secs <= 0.0 {
            return None;
        }
        let now = mark(self.feedback);
        let (chunks, n, s) = (
            now.0 - self.since.0,
            now.1 - self.since.1,
            now.2 - self.since.2,
        );
        let enough = chunks >= MIN_EVIDENCE_CHUNKS << self.replans
            || s >= LONG_EVIDENCE_SECS * f64::from(1u32 << self.replans);
        if n == 0 || s < MIN_EVIDENCE_SECS || !enough {
            return None;
        }
        let measured = s / n as f64;
        if remaining.is_some_and(|r| r as f64 * measured < MIN_REMAINING_SECS) {
            return None;
        }
        let ratio = measured / self.expected_secs;
        if (1.0 / DRIFT_FACTOR..=DRIFT_FACTOR).contains(&ratio) {
            return None;
        }
        let drift = Drift {
            at_item,
            expected_secs: self.expected_secs,
            measured_secs: measured,
            remaining,
            from,
        };
        self.replans += 1;
        self.expected_secs = measured;
        self.since = now;
        Some(self.steer.ask(&drift))
    }
}

/// Chunks, items and seconds recorded so far.
fn mark(feedback: &Feedback) -> (u64, u64, f64) {
    let (items, secs) = feedback.totals();
    (feedback.chunks(), items, secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_chunks_count_together_until_they_are_evidence() {
        let fb = Feedback::default();
        // A ramp's first chunks: one slow item (a fresh thread's first allocation),
        // then cheap ones.
        fb.record(1, 1e-6);
        let alone = fb.first_per_item().expect("recorded");
        assert!((alone - 1e-6).abs() < 1e-12, "{alone:e}");
        for n in [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192] {
            fb.record(n, n as f64 * 20e-9);
        }
        let first = fb.first_per_item().expect("recorded");
        assert!((20e-9..25e-9).contains(&first), "{first:e}");
        // Later chunks do not change it.
        fb.record(10, 1.0);
        assert_eq!(fb.first_per_item(), Some(first));
    }

    #[test]
    fn the_first_chunk_is_kept_and_totals_add_up() {
        let fb = Feedback::default();
        assert_eq!(fb.first_per_item(), None);
        fb.record(4, 0.008);
        fb.record(0, 1.0);
        fb.record(1, 0.001);
        assert_eq!(fb.first_per_item(), Some(0.002));
        let (n, s) = fb.totals();
        assert_eq!(n, 5);
        assert!((s - 0.009).abs() < 1e-6, "{s}");
    }

    fn course(d: &Drift) -> Course {
        Course {
            backend: d.from,
            workers: 2,
            chunk_size: (1e-3 / d.measured_secs) as usize,
        }
    }

    #[test]
    fn a_drift_past_the_factor_asks_for_a_new_course_once_per_change() {
        let replan: &(dyn Fn(&Drift) -> Course + Sync) = &course;
        let steer = Steer::new(replan);
        let fb = Feedback::default();
        let mut watch = Watch::new(&steer, &fb, 1e-6);
        // Within the factor: nothing.
        fb.record(1_000, 1.5e-3);
        fb.record(1_000, 1.5e-3);
        assert_eq!(watch.check(1_000, Some(9_000), Backend::Rayon), None);
        // Four times slower: a new course, from the measured time.
        fb.record(1_000, 4e-3);
        fb.record(1_000, 4e-3);
        let c = watch
            .check(2_000, Some(8_000), Backend::Rayon)
            .expect("re-planned");
        assert_eq!(c.backend, Backend::Rayon);
        let made = steer.made();
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].at_item, 2_000);
        assert!(made[0].measured_secs > 2e-6);
        // The new course is the baseline now: the same pace asks for nothing.
        for _ in 0..8 {
            fb.record(1_000, 3e-3);
        }
        assert_eq!(watch.check(3_000, Some(7_000), Backend::Rayon), None);
        // Evidence for the next change takes twice the chunks (or twice the work).
        let mut watch = Watch::new(&steer, &fb, 1e-6);
        fb.record(1_000, 0.3e-3);
        fb.record(1_000, 0.3e-3);
        assert!(watch.check(4_000, None, Backend::Rayon).is_some());
        fb.record(1_000, 1e-3);
        fb.record(1_000, 1e-3);
        assert_eq!(
            watch.check(5_000, None, Backend::Rayon),
            None,
            "two chunks are not enough now"
        );
        fb.record(1_000, 1e-3);
        fb.record(1_000, 1e-3);
        assert!(watch.check(6_000, None, Backend::Rayon).is_some());
    }

    #[test]
    fn a_cost_that_keeps_growing_is_followed_a_bounded_number_of_times() {
        let replan: &(dyn Fn(&Drift) -> Course + Sync) = &course;
        let steer = Steer::new(replan);
        let fb = Feedback::default();
        let mut watch = Watch::new(&steer, &fb, 1e-6);
        let mut per_item = 1e-6;
        for i in 0..100_000 {
            per_item *= 1.001;
            fb.record(1_000, per_item * 1_000.0);
            let _ = watch.check(i * 1_000, None, Backend::Rayon);
        }
        let made = steer.made().len();
        assert!((1..=MAX_REPLANS).contains(&made), "{made}");
    }

    #[test]
    fn too_little_work_is_no_evidence() {
        let replan: &(dyn Fn(&Drift) -> Course + Sync) = &course;
        let steer = Steer::new(replan);
        let fb = Feedback::default();
        let mut watch = Watch::new(&steer, &fb, 1e-3);
        fb.record(1, 10e-6);
        assert_eq!(watch.check(1, None, Backend::Rayon), None);
        assert!(steer.made().is_empty());
    }
}
