//! The two-thread efficiency `e2`: does this work scale on threads?
//!
//! Runs `m` real items on the calling thread, then `m` more on each of two threads at
//! once, twice ([`PAIRS`]; the higher reading counts). Where the threads' CPU clocks can be read, `e2` is the share of their time the
//! two threads spent computing, each from its start to its end, over the share one
//! thread alone spent (items that wait part of their time are compared with
//! themselves): near 1 for work that scales, near 0.5 (or below) for work serialised on
//! a lock or a non-thread-safe library, whose waiters do not compute. Contention that
//! burns CPU (a spin lock, a saturated memory bus) reads as scaling: worker processes
//! would share the memory bus too, and spin locks in user code are rare. Items that differ in cost do not change it:
//! the span of the two threads (the measure where no CPU clock can be read: `e2 =
//! wall(one thread, m items) / wall(two threads, 2m items)`) doubles when one costly
//! item lands in one half, and skewed work (a log-normal spread with a few 100x items)
//! read 0.46-0.66 with it and was sent to worker processes.
//!
//! Times are plain wall times. On a machine busy with other programs two threads get
//! less than two CPUs, so work that scales can read as if it did not; subtracting the
//! time spent waiting for a CPU would fix that, but it would also hide a lock: a woken
//! waiter is queued on its waker's CPU and waits there, runnable, while the lock's
//! holder computes (measured: a 2 ms wait for the lock counted as 2 ms of run delay).
//! So the time is not corrected; but when the one-thread phase already spent more than
//! [`BUSY_SHARE`] of its time runnable without a CPU, the machine is busy and the
//! measurement says more about it than about the work, so none is made: a low reading
//! then could turn CPU-bound work serial (cheap items, for which processes do not pay
//! either). Only the one-thread phase is judged.

use std::panic::resume_unwind;
use std::sync::{Barrier, Mutex, PoisonError};
use std::time::Instant;

use crate::plumbing::Stage;

/// A one-thread phase shorter than this gives no measurement.
const MIN_PHASE_SECS: f64 = 0.2e-3;
/// Share of the one-thread phase the thread may spend waiting for a CPU before the
/// measurement is dropped (see the module's notes).
const BUSY_SHARE: f64 = 0.5;

/// Two-thread phases run: a reading can be low because other work took a CPU for a
/// moment (the process's own background measurements, another program); a lock reads
/// low every time. The higher reading counts.
pub(crate) const PAIRS: usize = 2;

/// Runs `items` (`(1 + 2 * PAIRS) * m` of them, with their indices) and measures `e2`.
/// Returns the outputs in order and the efficiency, if the measurement could be made.
pub(crate) fn two_threads<T, S>(
    stage: &S,
    st: &mut S::State,
    items: Vec<(usize, T)>,
    m: usize,
) -> (Vec<S::Out>, Option<f64>)
where
    S: Stage<T>,
    T: Send,
{
    let mut outputs = Vec::with_capacity(items.len());
    if m == 0 || items.len() != (1 + 2 * PAIRS) * m {
        outputs.extend(serial_indexed(stage, st, items));
        return (outputs, None);
    }
    let mut items = items.into_iter();
    let d0 = super::clock::thread_run_delay_secs();
    let t = Instant::now();
    let cpu_one = OnCpu::now();
    outputs.extend(serial_indexed(stage, st, items.by_ref().take(m)));
    // The CPU share of one thread alone: items that wait part of their time (on I/O,
    // on other threads) are compared with themselves, not with a thread that computes.
    let share_one = cpu_one.and_then(|c| c.share_since(t));
    let one = t.elapsed().as_secs_f64();
    let one_waited = match (d0, super::clock::thread_run_delay_secs()) {
        (Some(a), Some(b)) => (b - a).max(0.0),
        _ => 0.0,
    };
    let mut best: Option<f64> = None;
    for _ in 0..PAIRS {
        let a: Vec<(usize, T)> = items.by_ref().take(m).collect();
        let b: Vec<(usize, T)> = items.by_ref().take(m).collect();
        let (out, pair) = pair(stage, a, b);
        outputs.extend(out);
        // No second thread, or other threads took the CPUs: no reading from this pair.
        let Some(pair) = pair else {
            continue;
        };
        let e2 = match (share_one, pair.shares) {
            (Some((cpu_1, wall_1)), Some([(cpu_a, wall_a), (cpu_b, wall_b)]))
                if wall_a + wall_b > 0.0 && cpu_1 > 0.0 && wall_1 > 0.0 =>
            {
                ((cpu_a + cpu_b) / (wall_a + wall_b)) / (cpu_1 / wall_1)
            }
            // The span of both: if the machine did not let them overlap, this reads
            // as not scaling, the cheap mistake (see above).
            _ if pair.span > 0.0 => one / pair.span,
            _ => continue,
        };
        best = Some(best.map_or(e2, |b: f64| b.max(e2)));
    }
    // Too short a phase measures the second thread's wake-up, not the work.
    if one_waited > BUSY_SHARE * one || one < MIN_PHASE_SECS {
        return (outputs, None);
    }
    (outputs, best.map(|e2| e2.clamp(0.0, 1.0)))
}

/// What one two-thread phase measured.
struct Pair {
    /// Wall time from the first thread's start to the last one's end.
    span: f64,
    /// Each thread's CPU time and wall time, where the CPU clocks can be read.
    shares: Option<[(f64, f64); 2]>,
}

/// Runs `a` on a new thread and `b` on this one, at once; the outputs in order, and
/// the measurement (`None` when no thread could be started, both ran here, or when
/// other threads of the process computed meanwhile).
fn pair<T, S>(stage: &S, a: Vec<(usize, T)>, b: Vec<(usize, T)>) -> (Vec<S::Out>, Option<Pair>)
where
    S: Stage<T>,
    T: Send,
{
    let start = Barrier::new(2);
    let run = |part: Vec<(usize, T)>| {
        let mut st = stage.state();
        start.wait();
        let t0 = Instant::now();
        let on_cpu0 = OnCpu::now();
        let out: Vec<S::Out> = serial_indexed(stage, &mut st, part);
        let share = on_cpu0.and_then(|c| c.share_since(t0));
        (out, t0, Instant::now(), share)
    };
    // Held in a slot so that, should the thread not start, the items are still here.
    let slot = Mutex::new(Some(a));
    let take = || slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    let process0 = super::clock::process_cpu_secs();
    let (ra, rb) = std::thread::scope(|s| {
        let ha = std::thread::Builder::new().spawn_scoped(s, || run(take().unwrap_or_default()));
        match ha {
            Ok(ha) => {
                // The second half runs on this thread, alongside the first.
                let rb = run(b);
                (ha.join(), Ok(rb))
            }
            Err(_) => {
                // No thread: run both halves here (no measurement).
                let mut st2 = stage.state();
                let a = take().unwrap_or_default();
                let mut out: Vec<S::Out> = serial_indexed(stage, &mut st2, a);
                out.extend(serial_indexed(stage, &mut st2, b));
                let now = Instant::now();
                (Ok((out, now, now, None)), Err(()))
            }
        }
    });
    let (mut out, a0, a1, share_a) = match ra {
        Ok(r) => r,
        Err(payload) => resume_unwind(payload),
    };
    let Ok((out_b, b0, b1, share_b)) = rb else {
        return (out, None);
    };
    out.extend(out_b);
    let span = (a1.max(b1) - a0.min(b0)).as_secs_f64();
    let shares = share_a.zip(share_b).map(|(a, b)| [a, b]);
    // Other threads of this process that computed meanwhile (a rayon pool winding down
    // after a job, a background measurement) took the CPUs the pair needed: the
    // reading is about them, not about the work.
    if let (Some(p0), Some(p1), Some([(cpu_a, _), (cpu_b, _)])) =
        (process0, super::clock::process_cpu_secs(), shares)
        && p1 - p0 - cpu_a - cpu_b > OTHERS_SHARE * span
    {
        return (out, None);
    }
    (out, Some(Pair { span, shares }))
}

/// CPU time other threads of the process may take during a two-thread phase, as a
/// share of the phase, before its reading is dropped.
const OTHERS_SHARE: f64 = 0.2;

/// A thread's CPU clock.
#[derive(Clone, Copy)]
struct OnCpu(f64);

impl OnCpu {
    /// The calling thread's, if its CPU clock can be read.
    fn now() -> Option<OnCpu> {
        super::clock::thread_cpu_secs().map(OnCpu)
    }

    /// The calling thread's CPU time since `self` and its wall time since `t0` (read
    /// with `self`).
    fn share_since(self, t0: Instant) -> Option<(f64, f64)> {
        let now = OnCpu::now()?;
        Some(((now.0 - self.0).max(0.0), t0.elapsed().as_secs_f64()))
    }
}

/// Runs consecutive `(index, item)` pairs through the stage's serial form.
pub(super) fn serial_indexed<T, S: Stage<T>>(
    stage: &S,
    st: &mut S::State,
    items: impl IntoIterator<Item = (usize, T)>,
) -> Vec<S::Out> {
    let mut items = items.into_iter().peekable();
    let first = items.peek().map_or(0, |p| p.0);
    stage.serial(st, first, items.map(|(_, x)| x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::{AutoIter, Identity};

    /// A fixed amount of CPU work (not a wall-clock wait: a thread that is preempted
    /// while spinning for a duration would do less work, and look faster).
    fn spin(rounds: u64) -> u64 {
        let mut x = rounds;
        for i in 0..rounds {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
        x
    }

    fn stage_of<F: Fn(u32) -> u32 + Sync>(f: F) -> impl Stage<u32, Out = u32, State = ()> {
        AutoIter::new(0..0u32, std::panic::Location::caller())
            .map(f)
            .stage
    }

    #[test]
    fn lock_bound_work_is_measured_and_outputs_keep_order() {
        static LOCK: Mutex<()> = Mutex::new(());
        let stage = stage_of(|x| {
            let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
            spin(300_000);
            x * 2
        });
        let items: Vec<(usize, u32)> = (0..40u32).map(|x| (x as usize, x)).collect();
        let (out, e2) = two_threads(&stage, &mut (), items, 8);
        assert_eq!(out, (0..40).map(|x| x * 2).collect::<Vec<_>>());
        // A ratio when measured. Whether it is measured, and reads low, depends on a
        // free second CPU, which other tests of this binary take (on a busy machine
        // no measurement is made): the detection itself is checked in its own process
        // by `tests/processes_lock_bound.rs`.
        if let Some(e2) = e2 {
            assert!(e2 > 0.0 && e2 <= 1.0, "e2 = {e2}");
        }
        let _ = Identity::<u32>::new();
    }

    #[test]
    fn odd_counts_run_serially_without_a_measurement() {
        let stage = stage_of(|x| x + 1);
        let items: Vec<(usize, u32)> = (0..5u32).map(|x| (x as usize, x)).collect();
        let (out, e2) = two_threads(&stage, &mut (), items, 2);
        assert_eq!(out, vec![1, 2, 3, 4, 5]);
        assert_eq!(e2, None);
    }
}
