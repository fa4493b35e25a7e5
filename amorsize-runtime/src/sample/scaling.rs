//! The two-thread efficiency `e2`: does this work scale on threads?
//!
//! Runs `m` real items on the calling thread, then `m` more on each of two threads at
//! once, and compares the time per item: `e2 = one-thread time / two-thread time`,
//! near 1 for work that scales and near 0.5 for work serialised on a lock (or a
//! non-thread-safe library). The outputs are kept, in input order.
//!
//! Times are wall times less the time each thread spent runnable but waiting for a CPU
//! (Linux `schedstat`): on a machine busy with other programs, two threads get less
//! than two CPUs, and that must not read as "this work does not scale".

use std::panic::resume_unwind;
use std::sync::{Barrier, Mutex, PoisonError};
use std::time::Instant;

use super::clock;
use crate::iter::Stage;

/// Wall time on the current thread, less its run-queue wait where the platform tells.
struct Stopwatch {
    wall: Instant,
    delay: Option<f64>,
}

impl Stopwatch {
    fn start() -> Stopwatch {
        Stopwatch {
            delay: clock::thread_run_delay_secs(),
            wall: Instant::now(),
        }
    }

    /// Seconds since `start` that the thread was running or blocked (not queued).
    fn effective(&self) -> f64 {
        let wall = self.wall.elapsed().as_secs_f64();
        let queued = match (self.delay, clock::thread_run_delay_secs()) {
            (Some(d0), Some(d1)) => (d1 - d0).clamp(0.0, wall),
            _ => 0.0,
        };
        wall - queued
    }
}

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
    let t = Stopwatch::start();
    outputs.extend(serial_indexed(stage, st, items.by_ref().take(m)));
    let one = t.effective();

    let a: Vec<(usize, T)> = items.by_ref().take(m).collect();
    let b: Vec<(usize, T)> = items.collect();
    let start = Barrier::new(2);
    let run = |part: Vec<(usize, T)>| {
        let mut st = stage.state();
        start.wait();
        let t = Stopwatch::start();
        let out: Vec<S::Out> = serial_indexed(stage, &mut st, part);
        (out, t.effective())
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
                (Ok((out, 0.0)), Err(()))
            }
        }
    });
    let (out_a, secs_a) = match ra {
        Ok(r) => r,
        Err(payload) => resume_unwind(payload),
    };
    outputs.extend(out_a);
    let Ok((out_b, secs_b)) = rb else {
        return (outputs, None);
    };
    outputs.extend(out_b);
    // Each thread ran `m` items, as the single thread did: with perfect scaling each
    // took as long as it; on a lock each took about twice as long.
    let two = (secs_a + secs_b) / 2.0;
    let e2 = (one > 0.0 && two > 0.0).then(|| (one / two).clamp(0.0, 1.0));
    (outputs, e2)
}

/// Runs consecutive `(index, item)` pairs through the stage's serial form.
fn serial_indexed<T, S: Stage<T>>(
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
        // Measured, and a ratio. Whether it reads low depends on a free second CPU,
        // which other tests of this binary take: the detection itself is checked in
        // its own process by `tests/processes_lock_bound.rs`.
        let e2 = e2.expect("measured");
        assert!(e2 > 0.0 && e2 <= 1.0, "e2 = {e2}");
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
