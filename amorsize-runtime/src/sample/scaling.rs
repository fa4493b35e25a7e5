//! The two-thread efficiency `e2`: does this work scale on threads?
//!
//! Runs `m` real items on the calling thread, then `2m` more on two threads at once,
//! and compares: `e2 = wall(one thread, m items) / wall(two threads, 2m items)`, near 1
//! for work that scales and near 0.5 for work serialised on a lock (or a
//! non-thread-safe library). The outputs are kept, in input order.

use std::panic::resume_unwind;
use std::sync::{Barrier, Mutex, PoisonError};
use std::time::Instant;

use crate::iter::Stage;

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
    let t = Instant::now();
    outputs.extend(serial_indexed(stage, st, items.by_ref().take(m)));
    let one = t.elapsed().as_secs_f64();

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
    let two = (a1.max(b1) - a0.min(b0)).as_secs_f64();
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
    use std::time::Duration;

    fn spin(d: Duration) {
        let t = Instant::now();
        while t.elapsed() < d {
            std::hint::spin_loop();
        }
    }

    fn stage_of<F: Fn(u32) -> u32 + Sync>(f: F) -> impl Stage<u32, Out = u32, State = ()> {
        AutoIter::new(0..0u32, std::panic::Location::caller())
            .map(f)
            .stage
    }

    #[test]
    fn lock_bound_work_does_not_scale_and_outputs_keep_order() {
        static LOCK: Mutex<()> = Mutex::new(());
        let stage = stage_of(|x| {
            let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
            spin(Duration::from_micros(300));
            x * 2
        });
        let items: Vec<(usize, u32)> = (0..24u32).map(|x| (x as usize, x)).collect();
        let (out, e2) = two_threads(&stage, &mut (), items, 8);
        assert_eq!(out, (0..24).map(|x| x * 2).collect::<Vec<_>>());
        let e2 = e2.expect("measured");
        // Ideally 0.5; other tests running beside this one add noise, and the model
        // calls anything below 0.8 "does not scale".
        assert!(e2 < 0.8, "a global lock halves throughput: e2 = {e2}");
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
