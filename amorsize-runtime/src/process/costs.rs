//! The fixed costs of the process backend, measured once per process when processes
//! are first considered: starting a worker (spawn to handshake) and one chunk's round
//! trip (a one-item chunk of the built-in echo task, framed, through the pipes and the
//! reader and writer threads, and back).
//!
//! Quality checks as for the other overheads: repetitions, the median, and a fallback
//! to the documented default (recorded as a [`Fallback`]) when the repetitions disagree
//! more than the median or the median is absurd. The workers started to measure are
//! kept in the pool for the job that follows.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::frame::{self, FromWorker};
use super::handle::{Event, Worker};
use super::idle;
use super::registry::ECHO;
use crate::probe::{Fallback, Overheads, overhead};

/// Workers started (one after another) to time the start.
const STARTS: usize = 3;
/// Untimed, then timed chunk round trips.
const WARMUP: usize = 3;
const REPS: usize = 15;
/// A reply slower than this ends the measurement.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// The measured costs of the process backend.
#[derive(Clone, Debug)]
pub(crate) struct Costs {
    /// Start one worker and wait for its handshake, in seconds.
    pub start_secs: f64,
    /// One chunk to a worker and its reply back, in seconds.
    pub chunk_secs: f64,
    /// Measurements that fell back to defaults.
    pub fallbacks: Vec<Fallback>,
}

/// The costs, measured on the first call; `Err` if no worker could be started (then
/// processes cannot be used in this process at all).
pub(crate) fn costs() -> Result<&'static Costs, String> {
    static COSTS: OnceLock<Result<Costs, String>> = OnceLock::new();
    COSTS.get_or_init(measure).as_ref().map_err(Clone::clone)
}

fn measure() -> Result<Costs, String> {
    let defaults = Overheads::default();
    let mut fallbacks = Vec::new();
    let mut workers = Vec::with_capacity(STARTS);
    let mut starts = Vec::with_capacity(STARTS);
    let mut first_err = None;
    for _ in 0..STARTS {
        match idle::start_timed() {
            Ok((w, d)) => {
                workers.push(w);
                starts.push(d.as_secs_f64());
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let Some(first) = workers.first_mut() else {
        return Err(first_err.map_or_else(|| "no worker started".to_string(), |e| e.0));
    };
    let start_secs = judge(
        "process_start",
        &mut starts,
        defaults.process_start_secs,
        &mut fallbacks,
    );
    let mut trips = Vec::with_capacity(REPS);
    let mut failed = None;
    for i in 0..WARMUP + REPS {
        match round_trip(first, i as u64) {
            Ok(d) if i >= WARMUP => trips.push(d.as_secs_f64()),
            Ok(_) => {}
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let chunk_secs = match failed {
        None => judge(
            "process_chunk",
            &mut trips,
            defaults.process_chunk_secs,
            &mut fallbacks,
        ),
        Some(why) => {
            fallbacks.push(Fallback {
                measurement: "process_chunk",
                default: defaults.process_chunk_secs,
                why,
            });
            defaults.process_chunk_secs
        }
    };
    for w in workers {
        idle::check_in(w);
    }
    Ok(Costs {
        start_secs,
        chunk_secs,
        fallbacks,
    })
}

/// Sends a one-item chunk of the echo task and waits for its reply.
pub(crate) fn round_trip(w: &mut Worker, x: u64) -> Result<Duration, String> {
    let t = Instant::now();
    let mut out = Vec::new();
    w.bind(&ECHO, &mut out);
    let mut payload = Vec::new();
    ECHO.encode_input(&x, &mut payload).map_err(|e| e.0)?;
    frame::item(&mut out, x, &payload).map_err(|e| e.to_string())?;
    if !w.send(out) {
        return Err("worker pipe closed".to_string());
    }
    match w.events().recv_timeout(REPLY_TIMEOUT) {
        Ok(Event::Frame(FromWorker::Output { index, payload })) if index == x => {
            let y: u64 = ECHO.decode_output(&payload).map_err(|e| e.0)?;
            if y == x {
                Ok(t.elapsed())
            } else {
                Err(format!("echo returned {y} for {x}"))
            }
        }
        Ok(other) => Err(format!("unexpected reply {other:?}")),
        Err(_) => Err(format!("no reply within {REPLY_TIMEOUT:?}")),
    }
}

/// The median of `samples` (the probe's rules: [`overhead::judge`]), or `default` with
/// a fallback recorded when they cannot be trusted.
fn judge(
    name: &'static str,
    samples: &mut [f64],
    default: f64,
    fallbacks: &mut Vec<Fallback>,
) -> f64 {
    match overhead::judge(samples, 1, overhead::clock_tick(), default) {
        Ok(secs) => secs,
        Err(why) => {
            fallbacks.push(Fallback {
                measurement: name,
                default,
                why,
            });
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_takes_the_median_or_falls_back() {
        let mut f = Vec::new();
        assert_eq!(judge("x", &mut [3.0, 1.0, 2.0], 5.0, &mut f), 2.0);
        assert!(f.is_empty());
        assert_eq!(judge("x", &mut [1.0, 1.0, 900.0], 1.0, &mut f), 1.0);
        assert_eq!(judge("x", &mut [1000.0; 3], 1.0, &mut f), 1.0);
        assert_eq!(
            judge("x", &mut [0.01, 0.02, 1.0, 3.0, 4.0], 1.0, &mut f),
            1.0
        );
        assert_eq!(judge("x", &mut [], 1.0, &mut f), 1.0);
        assert_eq!(f.len(), 3);
        assert!(f.iter().all(|fb| fb.measurement == "x"));
    }
}
