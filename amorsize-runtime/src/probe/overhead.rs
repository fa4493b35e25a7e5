//! The measured fixed costs of going parallel, each measured once per process on first
//! need and cached in its own `OnceLock`.
//!
//! Every measurement goes through [`measure`]: a warm-up, then [`REPS`] timed repetitions,
//! then [`judge`], which keeps the median only if it stands clear of the noise. A rejected
//! measurement becomes the documented default from [`Overheads::default`] plus a
//! [`Fallback`] saying why, so the model always gets a number and the plan can say which
//! numbers were not measured.
//!
//! Separate caches (rather than one for the whole profile) let an executor ask for the
//! one cost it needs without paying for the others, and let the process pool supply its
//! own numbers later through [`process_overheads`].

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{Fallback, Overheads};

/// Untimed repetitions before the timed ones: the first spawn maps stacks, the first
/// rayon job builds the pool, the first channel send allocates.
const WARMUP: usize = 2;
/// Timed repetitions: enough for a median and quartiles that one stall cannot move, few
/// enough that all three measurements together cost a few milliseconds.
pub(crate) const REPS: usize = 11;
/// A timed interval must span this many clock ticks, so that the clock's granularity and
/// the cost of reading it are at most about a tenth of what is measured.
const MIN_TICKS: f64 = 10.0;
/// A median this many times the documented default is a broken measurement (a stalled
/// machine, a suspended VM), not a fact about this machine.
const ABSURD_FACTOR: f64 = 100.0;
/// How long to wait for the rayon measurement (normally well under a millisecond)
/// before deciding that the pool is busy, possibly with workers blocked on this very
/// probe, and using the default.
const RAYON_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the chunk hand-off measurement leaves the worker without work before each
/// round trip: long enough that it stops spinning and parks (crossbeam's receiver parks
/// after a few microseconds), as a worker waiting for its next chunk does.
const HANDOFF_IDLE: Duration = Duration::from_micros(50);

/// One measured cost, or the default it fell back to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Measured {
    /// Seconds: the median of the measurement, or the documented default.
    pub(crate) secs: f64,
    /// Set when `secs` is the default, with the reason.
    pub(crate) fallback: Option<Fallback>,
}

impl Measured {
    /// The documented `default` for `measurement`, because of `why`.
    pub(crate) fn fallback(measurement: &'static str, default: f64, why: String) -> Measured {
        Measured {
            secs: default,
            fallback: Some(Fallback {
                measurement,
                default,
                why,
            }),
        }
    }
}

/// Spawn and join one `std::thread`: what each new worker of the blocking pool costs.
pub(crate) fn thread_start() -> &'static Measured {
    static CELL: OnceLock<Measured> = OnceLock::new();
    CELL.get_or_init(|| {
        measure(
            "thread_start",
            Overheads::default().thread_start_secs,
            1,
            || {
                let start = Instant::now();
                std::thread::Builder::new()
                    .spawn(|| {})
                    .map_err(|e| format!("cannot spawn a thread: {e}"))?
                    .join()
                    .map_err(|_| "the empty thread panicked".to_string())?;
                Ok(start.elapsed().as_secs_f64())
            },
        )
    })
}

/// The fixed cost of one small parallel job on the warm rayon pool, called from outside
/// the pool.
///
/// One repetition is a `rayon::scope` that spawns two empty tasks, called from a thread
/// that is not a rayon worker: the job is injected into the pool, a worker wakes and
/// runs it (the tasks go to its deque and wake another worker), and the caller, blocked
/// on a latch, is woken when both are done. That is what `par_iter().collect()` from
/// ordinary code pays on top of the work (a `collect` of 1,000 trivial items costs
/// tens of microseconds, against well under one serially).
///
/// The measurement runs on a helper thread, which is never a rayon worker whoever calls
/// this, and the caller waits for it with a timeout: a probe that waited without one
/// while every worker of the pool waits for the probe (each calling
/// [`super::profile`] while this thread initialises it, or a pool of one thread whose
/// only worker is the caller) would deadlock. On timeout the helper is left to finish
/// on its own; it holds no lock.
pub(crate) fn rayon_start() -> &'static Measured {
    static CELL: OnceLock<Measured> = OnceLock::new();
    CELL.get_or_init(|| {
        let default = Overheads::default().rayon_start_secs;
        let (send, result) = crossbeam_channel::bounded::<Measured>(1);
        let helper = std::thread::Builder::new()
            .name("amorsize-probe".into())
            .spawn(move || {
                // The receiver is gone only if the caller timed out: nothing to tell it.
                let _ = send.send(measure_rayon_start(default));
            });
        if let Err(e) = helper {
            let why = format!("cannot spawn a helper thread: {e}");
            return Measured::fallback("rayon_start", default, why);
        }
        result.recv_timeout(RAYON_TIMEOUT).unwrap_or_else(|e| {
            let why = match e {
                crossbeam_channel::RecvTimeoutError::Timeout => format!(
                    "the rayon pool did not finish a trivial job within {RAYON_TIMEOUT:?} \
                     (its workers are busy or blocked)"
                ),
                crossbeam_channel::RecvTimeoutError::Disconnected => {
                    "the measuring thread panicked".to_string()
                }
            };
            Measured::fallback("rayon_start", default, why)
        })
    })
}

fn measure_rayon_start(default: f64) -> Measured {
    measure("rayon_start", default, 1, || {
        let start = Instant::now();
        rayon::scope(|s| {
            s.spawn(|_| ());
            s.spawn(|_| ());
        });
        Ok(start.elapsed().as_secs_f64())
    })
}

/// Hand one chunk to an already-running, idle worker thread over a crossbeam channel
/// and receive its (empty) result back: what an executor pays per chunk on top of the
/// work when the worker is waiting for it.
///
/// Before each timed round trip the worker is left idle for [`HANDOFF_IDLE`], so that it
/// has parked, as a worker waiting for its next chunk has. Back-to-back round trips
/// instead catch both threads still spinning and measure a fraction of a microsecond
/// or several microseconds, from one run to the next. The parked round trip is the
/// larger and safer figure for the model (it errs towards larger chunks). It still
/// depends on where the scheduler put the worker, which stays put for the whole run:
/// sharing the caller's CPU is several times cheaper than being woken on another, idle
/// one.
pub(crate) fn chunk_handoff() -> &'static Measured {
    static CELL: OnceLock<Measured> = OnceLock::new();
    CELL.get_or_init(|| {
        let default = Overheads::default().chunk_handoff_secs;
        std::thread::scope(|s| {
            let (to_worker, jobs) = crossbeam_channel::bounded::<usize>(1);
            let (to_caller, results) = crossbeam_channel::bounded::<usize>(1);
            let worker = std::thread::Builder::new().spawn_scoped(s, move || {
                for job in jobs {
                    if to_caller.send(job).is_err() {
                        break;
                    }
                }
            });
            if let Err(e) = worker {
                let why = format!("cannot spawn a worker thread: {e}");
                return Measured::fallback("chunk_handoff", default, why);
            }
            let stopped = || "the worker thread stopped".to_string();
            let measured = measure("chunk_handoff", default, 1, || {
                spin_for(HANDOFF_IDLE);
                let start = Instant::now();
                to_worker.send(0).map_err(|_| stopped())?;
                results.recv().map_err(|_| stopped())?;
                Ok(start.elapsed().as_secs_f64())
            });
            // Closing the channel ends the worker; the scope joins it.
            drop(to_worker);
            measured
        })
    })
}

/// Waits `d` without sleeping: a sleep overshoots by the timer slack (50 us on Linux),
/// longer than the wait itself.
fn spin_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// The process pool's costs: `(process_start, process_chunk)`.
type ProcessCosts = (Measured, Measured);

fn process_cell() -> &'static OnceLock<ProcessCosts> {
    static CELL: OnceLock<ProcessCosts> = OnceLock::new();
    &CELL
}

/// The process pool's start and per-chunk costs, measured by `measure` the first time
/// this is called (later calls return the cached pair and drop their closure).
///
/// The probe does not start processes itself: only the process pool knows how, and it
/// should pay for that only when processes are considered. So the pool calls this when
/// it first starts workers, with a closure that times them (use [`measure`] for the
/// quality checks, and the names `process_start` and `process_chunk`). Until then the
/// model plans with the defaults; once set, [`super::profile`] returns a profile that
/// includes them.
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn process_overheads(measure: impl FnOnce() -> ProcessCosts) -> &'static ProcessCosts {
    process_cell().get_or_init(measure)
}

/// The process pool's costs if [`process_overheads`] has measured them, without measuring.
pub(crate) fn measured_process_overheads() -> Option<&'static ProcessCosts> {
    process_cell().get()
}

/// Warms up, times [`REPS`] repetitions of `once` and [`judge`]s them.
///
/// `once` runs `batch` operations and returns the seconds they took (it does its own
/// timing, so set-up stays out of the interval), or why it could not. The result is per
/// operation. Any error or a rejected median gives `default` and a [`Fallback`] named
/// `name`.
pub(crate) fn measure(
    name: &'static str,
    default: f64,
    batch: usize,
    mut once: impl FnMut() -> Result<f64, String>,
) -> Measured {
    let mut run = || -> Result<f64, String> {
        for _ in 0..WARMUP {
            once()?;
        }
        let mut samples = Vec::with_capacity(REPS);
        for _ in 0..REPS {
            samples.push(once()?);
        }
        judge(&mut samples, batch, clock_tick(), default)
    };
    match run() {
        Ok(secs) => Measured {
            secs,
            fallback: None,
        },
        Err(why) => Measured::fallback(name, default, why),
    }
}

/// The median per-operation time of `samples` (each timing `batch` operations), or why
/// it is not to be trusted:
/// - no samples, or a sample that is not a finite, non-negative time;
/// - a median interval shorter than [`MIN_TICKS`] ticks of the clock (`tick`): the
///   signal is below the clock's own noise;
/// - a per-operation median above [`ABSURD_FACTOR`] times `default`;
/// - an interquartile range wider than the median: the repetitions disagree too much
///   for the median to mean anything.
pub(crate) fn judge(
    samples: &mut [f64],
    batch: usize,
    tick: f64,
    default: f64,
) -> Result<f64, String> {
    if samples.is_empty() {
        return Err("no samples".to_string());
    }
    if samples.iter().any(|s| !s.is_finite() || *s < 0.0) {
        return Err("a repetition's time was not a finite, non-negative number".to_string());
    }
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    };
    let iqr = samples[(3 * (n - 1)) / 4] - samples[(n - 1) / 4];
    if median < MIN_TICKS * tick {
        return Err(format!(
            "signal below the clock's noise: median interval {median:.3e} s is under \
             {MIN_TICKS} ticks of {tick:.3e} s"
        ));
    }
    let per_op = median / batch.max(1) as f64;
    let absurd = ABSURD_FACTOR * default;
    if absurd.is_nan() || per_op > absurd {
        return Err(format!(
            "absurd: median {per_op:.3e} s is over {ABSURD_FACTOR} times the default"
        ));
    }
    if iqr > median {
        return Err(format!(
            "too noisy: interquartile range {iqr:.3e} s exceeds the median {median:.3e} s"
        ));
    }
    Ok(per_op)
}

/// The clock's effective tick: the median time from one `Instant::now()` until the
/// clock reads a later value. On a fine clock this is the cost of reading it (about
/// 25 ns here); on a coarse one, its granularity. Either way nothing shorter can be
/// timed. Measured once per process (about a microsecond).
pub(crate) fn clock_tick() -> f64 {
    static CELL: OnceLock<f64> = OnceLock::new();
    *CELL.get_or_init(|| {
        // A clock that never advances within this many reads is treated as having a
        // 1 ms tick, which then rejects every microsecond measurement (honestly).
        const SPIN: usize = 1_000_000;
        let mut ticks: Vec<f64> = (0..21)
            .map(|_| {
                let start = Instant::now();
                (0..SPIN)
                    .map(|_| Instant::now())
                    .find(|t| *t > start)
                    .map_or(1e-3, |t| (t - start).as_secs_f64())
            })
            .collect();
        ticks.sort_by(f64::total_cmp);
        ticks[ticks.len() / 2].max(1e-9)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: f64 = 25e-9;

    fn ok(mut v: Vec<f64>, batch: usize, default: f64) -> Result<f64, String> {
        judge(&mut v, batch, TICK, default)
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(ok(vec![3.0, 1.0, 2.0], 1, 1.0), Ok(2.0));
        assert_eq!(ok(vec![4.0, 1.0, 2.0, 3.0], 1, 1.0), Ok(2.5));
    }

    #[test]
    fn batch_divides() {
        let r = ok(vec![8e-6; 5], 8, 1e-6);
        assert_eq!(r, Ok(1e-6));
    }

    #[test]
    fn one_outlier_does_not_move_the_median() {
        let mut v = vec![50e-6; 10];
        v.push(10.0);
        assert_eq!(ok(v, 1, 55e-6), Ok(50e-6));
    }

    #[test]
    fn rejects_below_clock_noise() {
        let e = ok(vec![100e-9; 11], 1, 1e-6);
        assert!(e.is_err_and(|w| w.contains("clock")));
    }

    #[test]
    fn rejects_absurd() {
        let e = ok(vec![1.0; 11], 1, 55e-6);
        assert!(e.is_err_and(|w| w.contains("absurd")));
    }

    #[test]
    fn rejects_noise() {
        let v = vec![
            1e-6, 1e-6, 1e-6, 5e-5, 5e-5, 5e-5, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4,
        ];
        let e = ok(v, 1, 1e-4);
        assert!(e.is_err_and(|w| w.contains("noisy")));
    }

    #[test]
    fn rejects_non_finite_and_empty() {
        assert!(ok(vec![], 1, 1e-6).is_err());
        assert!(ok(vec![1e-5, f64::NAN, 1e-5], 1, 1e-6).is_err());
        assert!(ok(vec![1e-5, f64::INFINITY, 1e-5], 1, 1e-6).is_err());
        assert!(ok(vec![1e-5, -1e-5, 1e-5], 1, 1e-6).is_err());
        // A NaN default makes every measurement absurd rather than accepted.
        assert!(ok(vec![1e-5; 3], 1, f64::NAN).is_err());
    }

    #[test]
    fn measure_falls_back_with_reason() {
        let m = measure("thing", 3e-6, 1, || Err("broken".into()));
        assert_eq!(m.secs, 3e-6);
        let f = m.fallback.unwrap_or_else(|| panic!("no fallback"));
        assert_eq!(
            (f.measurement, f.default, f.why.as_str()),
            ("thing", 3e-6, "broken")
        );
    }

    #[test]
    fn measure_accepts_steady_samples() {
        let m = measure("thing", 3e-6, 1, || Ok(5e-6));
        assert_eq!(
            m,
            Measured {
                secs: 5e-6,
                fallback: None
            }
        );
    }

    #[test]
    fn clock_tick_is_small_and_positive() {
        let t = clock_tick();
        assert!(t > 0.0 && t < 1e-3, "tick {t}");
    }
}
