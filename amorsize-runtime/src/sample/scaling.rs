//! The two-thread efficiency `e2`: does this work scale on threads?
//!
//! Runs `m` real items on the calling thread, then `m` more on each of two threads at
//! once, and compares: `e2 = wall(one thread, m items) / wall(two threads, 2m items)`
//! (the two threads' span, from the first start to the last end), near 1 for work
//! that scales and near 0.5 for work serialised on a lock (or a non-thread-safe
//! library). The outputs are kept, in input order.
//!
//! Times are plain wall times. On a machine busy with other programs two threads get
//! less than two CPUs, so work that scales can read as if it did not; subtracting the
//! time spent waiting for a CPU would fix that, but it would also hide a lock (a thread
//! waiting for the lock's holder, who waits for a CPU, is itself counted as waiting for
//! a CPU). So the time is not corrected; but when the one-thread phase already spent
//! more than [`BUSY_SHARE`] of its time runnable without a CPU, the machine is busy and
//! the measurement says more about it than about the work, so none is made: a low
//! reading then could turn CPU-bound work serial (cheap items, for which processes do
//! not pay either). Only the one-thread phase is judged: in the two-thread phase a lock
//! itself makes threads queue for a CPU (each hand-over wakes the waiter), and that is
//! what the measurement is for.

use std::panic::resume_unwind;
use std::sync::{Barrier, Mutex, PoisonError};
use std::time::Instant;

use crate::plumbing::Stage;

/// A one-thread phase shorter than this gives no measurement.
const MIN_PHASE_SECS: f64 = 0.2e-3;
/// Share of the one-thread phase the thread may spend waiting for a CPU before the
/// measurement is dropped (see the module's notes).
const BUSY_SHARE: f64 = 0.5;

/// Runs `items` (`3m` of them, with their indices) and measures `e2`. Returns the
/// outputs in order and the efficiency, if the measurement could be made.
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
    if m == 0 || items.len() != 3 * m {
        outputs.extend(serial_indexed(stage, st, items));
        return (outputs, None);
    }
    let mut items = items.into_iter();
    let d0 = super::clock::thread_run_delay_secs();
    let t = Instant::now();
    outputs.extend(serial_indexed(stage, st, items.by_ref().take(m)));
    let one = t.elapsed().as_secs_f64();
    let one_waited = match (d0, super::clock::thread_run_delay_secs()) {
        (Some(a), Some(b)) => (b - a).max(0.0),
        _ => 0.0,
    };

    let a: Vec<(usize, T)> = items.by_ref().take(m).collect();
    let b: Vec<(usize, T)> = items.collect();
    let start = Barrier::new(2);
    let run = |part: Vec<(usize, T)>| {
        let mut st = stage.state();
        start.wait();
        let t0 = Instant::now();
        let out: Vec<S::Out> = serial_indexed(stage, &mut st, part);
        (out, t0, Instant::now())
    };
    // Held in a slot so that, should the thread not start, the items are still here.
    let slot = Mutex::new(Some(a));
    let take = || slot.lock().unwrap_or_else(PoisonError::into_inner).take();
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
                (Ok((out, now, now)), Err(()))
            }
        }
    });
    let (out_a, a0, a1) = match ra {
        Ok(r) => r,
        Err(payload) => resume_unwind(payload),
    };
    outputs.extend(out_a);
    let Ok((out_b, b0, b1)) = rb else {
        return (outputs, None);
    };
    outputs.extend(out_b);
    if one_waited > BUSY_SHARE * one {
        return (outputs, None);
    }
    // The span of both: if the machine did not let them overlap, this reads as not
    // scaling, the cheap mistake (see above).
    let two = (a1.max(b1) - a0.min(b0)).as_secs_f64();
    // Too short a phase measures the second thread's wake-up, not the work.
    let e2 = (one >= MIN_PHASE_SECS && two > 0.0).then(|| (one / two).clamp(0.0, 1.0));
    (outputs, e2)
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
        let items: Vec<(usize, u32)> = (0..24u32).map(|x| (x as usize, x)).collect();
        let (out, e2) = two_threads(&stage, &mut (), items, 8);
        assert_eq!(out, (0..24).map(|x| x * 2).collect::<Vec<_>>());
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
