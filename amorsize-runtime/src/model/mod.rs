//! The cost model: pure functions from [`SampleStats`], [`MachineProfile`] and
//! [`Options`] to a [`Plan`]. No I/O, no clock, no environment, no randomness.
//!
//! ```
//! use amorsize::model::{plan, SampleStats};
//! use amorsize::{Backend, MachineProfile, Options};
//!
//! // 10,000 items of 100 us of CPU work each, on 2 CPUs.
//! let mut stats = SampleStats::default();
//! stats.items = 20;
//! stats.mean_item_secs = 100e-6;
//! stats.remaining_items = Some(10_000);
//! let mut machine = MachineProfile::default();
//! machine.cpu_budget = 2;
//! machine.rayon_threads = 2;
//!
//! let p = plan(&stats, &machine, &Options::default());
//! assert_eq!(p.backend, Backend::Rayon);
//! assert_eq!(p.workers, 2);
//! assert!(p.estimated_speedup > 1.9 && p.estimated_speedup <= 2.0);
//! ```
//!
//! # The formula
//!
//! Inputs: `N` items left, mean item time `t`, its coefficient of variation `cv`,
//! thread-CPU/wall ratio `r`, process/thread CPU ratio `q`, two-thread efficiency `e2`,
//! per-item codec times (Processes), in-flight bytes per item; CPU budget `P`, usable
//! memory `M` and the measured fixed costs of the machine.
//!
//! For backend `b`, `w` workers and chunk size `c` (`k = ceil(N / c)` chunks):
//!
//! ```text
//! s          = clamp(1/e2 - 1, 0, 1)          Amdahl serial fraction (e2 unknown: s = 0)
//! capacity   = max(1, P / (r * q))            items that can progress at once
//! par_b(w)   = 1 / (s + (1 - s) / x),  x = max(1, min(w, capacity))   Rayon, Threads
//!            = max(1, min(w, capacity))                               Processes
//! compute    = N*t / par_b(w) + (N*worker_io + k*h_b) / min(w, P)
//! dispatch   = k*h_b + N*serial_io
//! tail       = t_w * (excess + c*cv*(1 - 1/w)),   t_w = t * w / par_b(w)
//! T_b(w, c)  = start_b(w) + max(compute, dispatch) + tail
//! speedup    = N*t / T_b(w, c)
//! ```
//!
//! - `worker_io = dec_in + enc_out` and `serial_io = enc_in + dec_out + process_item`
//!   per item, for Processes only (0 otherwise): the parent encodes, decodes and frames
//!   serially, the workers decode and encode in parallel.
//! - Each chunk hand-off `h_b` is paid twice: once by the single dispatcher
//!   (`dispatch`) and once by the worker that takes it (the `k*h_b / min(w, P)` part of
//!   `compute`), so chunks too small to pay for their hand-off lose even when the
//!   dispatcher keeps up.
//! - `excess` is quantisation: the busiest worker runs `ceil(k / w)` chunks (one of
//!   them maybe the short last chunk) where the average is `N / w` items. Uniform work
//!   whose chunks divide evenly among the workers has no tail; otherwise the last
//!   chunk's spread, `c * cv * (1 - 1/w)` items, is what the others wait for. One
//!   worker never has a tail.
//! - `start_b(w)`: Rayon `rayon_start`; Threads `rayon_start + w * wake` with
//!   `wake = min(chunk_handoff, thread_start / 4)` (the blocking pool is a rayon pool
//!   of its own that is *assumed warm*, reused across jobs: each parked worker costs a
//!   wake-up, which the probe's hand-off to a parked worker includes; `thread_start`
//!   is paid only when the pool must grow, once per process, and is not in the
//!   formula); Processes
//!   `w * process_start` (*assumed cold*: every worker process is started for this
//!   job, an upper bound once the pool is warm).
//! - `h_b`: `chunk_handoff` for Rayon and Threads, `process_chunk` for Processes.
//!
//! # The search
//!
//! Caps on `w` (all at least 1, at most `N` and `max_workers`):
//!
//! - Rayon: the rayon pool's threads, and at most `ceil(P / (r * q))`;
//! - Threads: `ceil(P / (r * q))` (I/O-bound work may use far more threads than
//!   CPUs; CPU-bound work gets `P`) and 512;
//! - Processes: `ceil(P / q)`;
//! - memory: `w * (2 * c * item_bytes + base_b) <= M`, with `base_b` = 8 MiB per
//!   worker process (a guess at an idle process's resident memory) and 0 per thread.
//!
//! Every `w` from 1 to the cap is considered, each with a few chunk sizes, and the
//! fastest `(w, c)` is the backend's candidate (on ties, fewer workers, then smaller
//! chunks). The chunk sizes come from two rules of thumb: a chunk's hand-off should
//! cost at most 2% of its work (`c >= h_b / (0.02 t)`), and each worker should get
//! about `4 * (1 + cv)` chunks (`c <= N / (4 w (1 + cv))`); the search tries both, a
//! geometric ladder between them, the size that best trades hand-offs against the
//! tail when `cv > 0`, the smallest size with which the dispatcher keeps up, and 1 for
//! items slower than 1 ms; never more than `ceil(N / w)` or what memory allows. The
//! likely best `w` are tried first, so that a lower bound of `T_b(w, c)` rules out
//! most others without trying their chunk sizes: the result is the same as trying
//! them all.
//!
//! # The decision
//!
//! - `N = 0`, or `N * t` no more than the cheapest `start_b(1) + h_b` of the allowed
//!   backends: serial, [`Reason::TooLittleWork`], without building candidates.
//! - A pinned backend that can run is used even if predicted slower than serial
//!   ([`Reason::Pinned`]); one that cannot is reported ([`Reason::PinnedUnavailable`])
//!   and the model chooses among the rest. Backend, `max_workers` and `chunk_size`
//!   all pinned: exactly those numbers (workers at most `max(N, 1)`).
//! - Otherwise the fastest parallel candidate wins if its speedup is at least
//!   `min_speedup` ([`Reason::Fastest`]), else serial ([`Reason::BelowMinSpeedup`]).
//!
//! # Sanitised inputs
//!
//! A two-thread efficiency of 0.85 or more counts as 1 (measurement noise). NaN or
//! negative times count as 0, `+inf` as 10^9 s, times under a picosecond as 0;
//! an unknown `cpu_ratio` is 1 (CPU-bound), an unknown `process_cpu_ratio` 1; a NaN
//! `two_thread_efficiency` is "not measured"; zero CPUs count as one; a measured
//! overhead that is NaN or negative is replaced by its default; with too little memory
//! one worker still runs. Absurd options are clamped with a [`Reason::Clamped`]
//! (`max_workers(0)` and `chunk_size(0)` to 1, a NaN `min_speedup` to the default, a
//! negative one to 0, one above 10^6 to 10^6). [`Plan::sample`] holds the statistics
//! as the model used them: the input, with only non-finite or negative numbers
//! replaced. With no measured work (`t = 0`), speedups are reported as 1.

mod chunk;
mod cost;
mod input;
mod pinned;
mod search;
#[cfg(test)]
mod tests;

pub use crate::stats::SampleStats;

use crate::limits::MAX_THREADS;
use crate::options::{Options, Source};
use crate::plan::{Backend, Candidate, Estimate, Plan, Reason};
use crate::probe::MachineProfile;
use cost::Cost;
use input::{Controls, Machine, Workload};
pub(crate) use pinned::fully_pinned;

/// `cpu_ratio` below this marks the work I/O-bound ([`Reason::IoBound`]).
const IO_BOUND_RATIO: f64 = 0.5;
/// Two-thread efficiency below this marks work that does not scale on threads.
const THREADS_SCALE_EFFICIENCY: f64 = 0.8;
/// How many times `P / r` threads a mixture may get.
const MIXTURE_SLACK: f64 = 4.0;
/// Threads per CPU above which a plan of waiting work says that nothing capped it.
const UNCAPPED_WAITING_PER_CPU: usize = 4;
/// `process_cpu_ratio` at or above this marks internally parallel items.
pub(crate) const INTERNALLY_PARALLEL_RATIO: f64 = 1.1;

/// The parallel backends, in [`Backend::ALL`] order.
const PARALLEL: [Backend; 4] = [
    Backend::Rayon,
    Backend::Threads,
    Backend::Processes,
    Backend::Cluster,
];

/// Chooses backend, workers and chunk size for the remaining items.
///
/// Pure and fast (a few microseconds; tens at most, for an I/O-bound job searching
/// hundreds of threads). The formula and the rules are in the [module docs](self).
///
/// # Examples
///
/// Work that mostly sleeps gets many more threads than CPUs:
///
/// ```
/// use amorsize::model::{plan, SampleStats};
/// use amorsize::{Backend, MachineProfile, Options, Reason};
///
/// let mut stats = SampleStats::default();
/// stats.items = 4;
/// stats.mean_item_secs = 10e-3; // 10 ms per item...
/// stats.cpu_ratio = 0.01; // ...spent almost all waiting
/// stats.remaining_items = Some(100);
/// let mut machine = MachineProfile::default();
/// machine.cpu_budget = 2;
/// machine.rayon_threads = 2;
///
/// let p = plan(&stats, &machine, &Options::default());
/// assert_eq!(p.backend, Backend::Threads);
/// assert!(p.workers >= 50, "{p:#}");
/// assert!(p.estimated_speedup > 50.0);
/// assert!(p.reasons.iter().any(|r| matches!(r, Reason::IoBound { .. })));
///
/// // A tiny job stays serial.
/// stats.mean_item_secs = 20e-9;
/// stats.cpu_ratio = 1.0;
/// stats.remaining_items = Some(1_000);
/// assert_eq!(plan(&stats, &machine, &Options::default()).backend, Backend::Serial);
/// ```
pub fn plan(stats: &SampleStats, machine: &MachineProfile, options: &Options) -> Plan {
    let sample = input::clean_sample(stats);
    let (n, length_estimated) = match stats.remaining_items {
        Some(n) => (n, false),
        // Unknown length: as many again as we have seen.
        None => (stats.items.max(1), true),
    };
    let work = Workload::new(&sample, n);
    let machine_in = Machine::new(machine);
    let ctl = Controls::new(options);
    let serial_secs = work.serial_secs();

    let no_cluster = Reason::Excluded {
        backend: Backend::Cluster,
        why: "no cluster workers of this build were found (set AMORSIZE_CLUSTER, with the \
              `cluster` feature)"
            .to_string(),
    };
    // A fully pinned cluster plan takes the numbers as given, without a profile.
    let fully_pinned_cluster = ctl.backend == Some(Backend::Cluster)
        && ctl.max_workers.is_some()
        && ctl.chunk_size.is_some();
    let excluded = |b: Backend| -> Option<&Reason> {
        // Serial can always run: it is what every other plan falls back to.
        if b == Backend::Serial {
            None
        } else if let Some(why) = options.excluded(b) {
            Some(why)
        } else if b == Backend::Cluster && machine_in.cluster.is_none() && !fully_pinned_cluster {
            Some(&no_cluster)
        } else {
            None
        }
    };
    let pin = ctl.backend.filter(|&b| excluded(b).is_none());
    let pin_unavailable = ctl.backend.filter(|_| pin.is_none());

    let mut plan = Plan {
        backend: Backend::Serial,
        workers: 1,
        chunk_size: 1,
        estimated_speedup: 1.0,
        estimated_serial_secs: serial_secs,
        sample,
        remaining_items: Some(n),
        candidates: Vec::new(),
        reasons: Vec::new(),
        fallbacks: machine.fallbacks.clone(),
        label: None,
        origin: crate::plan::Origin::Fresh,
        replans: Vec::new(),
        cluster: machine.cluster.clone(),
    };

    let costs = PARALLEL.map(|b| Cost::new(b, &work, &machine_in));

    // Early out: too little work for any parallel backend to pay its fixed costs.
    if pin.is_none() {
        let threshold = costs
            .iter()
            .filter(|c| excluded(c.backend).is_none())
            .map(|c| c.start(1) + c.handoff)
            .fold(f64::INFINITY, f64::min);
        if n == 0 || serial_secs <= threshold {
            let too_little = Reason::TooLittleWork {
                serial_secs,
                threshold_secs: if threshold.is_finite() {
                    threshold
                } else {
                    0.0
                },
            };
            plan.candidates = Backend::ALL
                .iter()
                .map(|&backend| Candidate {
                    backend,
                    estimate: match backend {
                        Backend::Serial => Ok(serial_estimate(serial_secs)),
                        b => Err(excluded(b).cloned().unwrap_or_else(|| too_little.clone())),
                    },
                })
                .collect();
            plan.reasons.push(too_little);
            if let Some(pinned) = pin_unavailable {
                plan.reasons.push(Reason::PinnedUnavailable {
                    pinned,
                    used: Backend::Serial,
                });
                push_unavailable_source(&mut plan.reasons, pinned, options);
            }
            push_pinned_sizes(&mut plan.reasons, &ctl, options);
            plan.reasons.extend(ctl.clamped.iter().cloned());
            if length_estimated {
                plan.reasons.push(Reason::LengthEstimated { remaining: n });
            }
            return plan;
        }
    }

    // Candidates: every allowed backend's best (w, c).
    let n_cap = n.max(1);
    let user_cap = ctl.max_workers.unwrap_or(usize::MAX);
    let cpus = machine_in.cpus as f64;
    let cap_of = |b: Backend| -> usize {
        let backend_cap = match b {
            // The pool's size, and like Threads no more than the CPUs can keep busy:
            // time-slicing CPU-bound items is not free.
            Backend::Rayon => machine_in
                .rayon_threads
                .min(ceil_count(cpus / (work.r * work.q))),
            // Waiting work measured at a CPU share just above the one that would let
            // every item run at once (a sample of two items reads it coarsely) must
            // not cost a second wave of items: a quarter of slack, which `par_b`
            // prices (it stops growing at `capacity`).
            Backend::Threads if work.r < IO_BOUND_RATIO => {
                MAX_THREADS.min(ceil_count(1.25 * cpus / (work.r * work.q)))
            }
            // A mixture needs more threads than `P / r` to keep the CPUs busy while
            // some wait (`par_b` prices each one).
            Backend::Threads if work.mixture => {
                MAX_THREADS.min(ceil_count(MIXTURE_SLACK * cpus / (work.r * work.q)))
            }
            Backend::Threads => MAX_THREADS.min(ceil_count(cpus / (work.r * work.q))),
            Backend::Cluster => machine_in.cluster.map_or(1, |c| c.workers),
            _ => ceil_count(cpus / work.q),
        };
        backend_cap.min(n_cap).min(user_cap).max(1)
    };
    let mut memory_caps: [Option<usize>; 4] = [None; 4];
    let mut estimates: [Option<Estimate>; 4] = [None, None, None, None];
    let mut candidates = Vec::with_capacity(Backend::ALL.len());
    candidates.push(Candidate {
        backend: Backend::Serial,
        estimate: Ok(serial_estimate(serial_secs)),
    });
    for (i, cost) in costs.iter().enumerate() {
        let b = cost.backend;
        let estimate = match excluded(b) {
            Some(why) => Err(why.clone()),
            None => {
                // Fully pinned: exactly the pinned numbers, for the pinned backend.
                let exact = match (pin, ctl.max_workers, ctl.chunk_size) {
                    (Some(p), Some(w), Some(_)) if p == b => {
                        Some(pinned::workers(b, w, Some(n), machine_in.cpus))
                    }
                    _ => None,
                };
                let found = search::best(
                    cost,
                    search::Limits {
                        workers: cap_of(b),
                        chunk: ctl.chunk_size,
                        exact_workers: exact,
                        usable_bytes: machine_in.usable_bytes,
                    },
                );
                memory_caps[i] = found.memory_cap;
                let e = Estimate {
                    workers: found.workers,
                    chunk_size: found.chunk,
                    secs: found.secs,
                    speedup: speedup(serial_secs, found.secs),
                };
                estimates[i] = Some(e.clone());
                Ok(e)
            }
        };
        candidates.push(Candidate {
            backend: b,
            estimate,
        });
    }

    // The fastest parallel candidate (first one on ties, in Backend::ALL order).
    let best = (0..PARALLEL.len())
        .filter_map(|i| estimates[i].as_ref().map(|e| (i, e)))
        .fold(None::<(usize, &Estimate)>, |acc, (i, e)| match acc {
            Some((_, a)) if a.secs <= e.secs => acc,
            _ => Some((i, e)),
        });

    let (chosen, main) = match (pin, best) {
        (Some(b), _) => (b, options.pin_reason("backend", b.name().to_string())),
        (None, Some((i, e))) if e.speedup >= ctl.min_speedup && serial_secs > 0.0 => (
            PARALLEL[i],
            Reason::Fastest {
                backend: PARALLEL[i],
                speedup: e.speedup,
            },
        ),
        (None, Some((i, e))) => (
            Backend::Serial,
            Reason::BelowMinSpeedup {
                best: PARALLEL[i],
                speedup: e.speedup,
                min_speedup: ctl.min_speedup,
            },
        ),
        (None, None) => (
            Backend::Serial,
            Reason::Fastest {
                backend: Backend::Serial,
                speedup: 1.0,
            },
        ),
    };
    let chosen_index = PARALLEL.iter().position(|&b| b == chosen);
    let (workers, chunk_size, chosen_secs, chosen_speedup) =
        match chosen_index.and_then(|i| estimates[i].as_ref()) {
            Some(e) => (e.workers, e.chunk_size, e.secs, e.speedup),
            None => (1, 1, serial_secs, 1.0),
        };
    plan.backend = chosen;
    plan.workers = workers;
    plan.chunk_size = chunk_size;
    plan.estimated_speedup = chosen_speedup;

    // Reasons: the main one, then what shaped the plan, then who lost.
    plan.reasons.push(main);
    if let Some(pinned) = pin_unavailable {
        plan.reasons.push(Reason::PinnedUnavailable {
            pinned,
            used: chosen,
        });
        push_unavailable_source(&mut plan.reasons, pinned, options);
    }
    push_pinned_sizes(&mut plan.reasons, &ctl, options);
    if work.r < IO_BOUND_RATIO && excluded(Backend::Threads).is_none() {
        plan.reasons.push(Reason::IoBound {
            cpu_ratio: plan.sample.cpu_ratio,
        });
    }
    if let Some((waiting, computing)) = plan.sample.cpu_ratio_range
        && work.mixture
        && plan.backend == Backend::Threads
    {
        plan.reasons.push(Reason::Mixture { waiting, computing });
    }
    if plan.backend == Backend::Threads
        && plan.workers > UNCAPPED_WAITING_PER_CPU * machine_in.cpus
        && options.max_workers.is_none()
    {
        plan.reasons.push(Reason::WaitingUncapped {
            workers: plan.workers,
        });
    }
    if let Some(e) = plan.sample.two_thread_efficiency
        && e < THREADS_SCALE_EFFICIENCY
    {
        plan.reasons
            .push(Reason::ThreadsDoNotScale { efficiency: e });
    }
    if let Some(speedup) = plan.sample.inner_speedup
        && plan.sample.process_cpu_ratio >= INTERNALLY_PARALLEL_RATIO
    {
        plan.reasons.push(Reason::InnerParallelismMeasured {
            process_cpu_ratio: plan.sample.process_cpu_ratio,
            speedup,
        });
    }
    if work.q >= INTERNALLY_PARALLEL_RATIO {
        plan.reasons
            .push(Reason::InternallyParallel { ratio: work.q });
    }
    let memory_cap = chosen_index
        .and_then(|i| memory_caps[i])
        .or_else(|| memory_caps.iter().flatten().next().copied());
    if let Some(workers) = memory_cap {
        plan.reasons.push(Reason::MemoryCap {
            workers,
            usable_bytes: machine_in.usable_raw,
        });
    }
    plan.reasons.extend(ctl.clamped.iter().cloned());
    if length_estimated {
        plan.reasons.push(Reason::LengthEstimated { remaining: n });
    }
    // Serial without a pin while a parallel candidate exists: BelowMinSpeedup, which
    // names that best candidate; the others lost to it or to serial.
    let below_min_best = match (pin, best) {
        (None, Some((i, e))) if chosen == Backend::Serial => Some((PARALLEL[i], e.secs)),
        _ => None,
    };
    push_slower(
        &mut plan.reasons,
        &candidates,
        (chosen, chosen_secs),
        below_min_best,
    );
    plan.candidates = candidates;
    plan
}

/// A [`Reason::Slower`] for each candidate that lost to `chosen` or, when serial was
/// chosen for want of speedup, to the best parallel candidate (named by the main
/// reason, so it gets none itself).
fn push_slower(
    reasons: &mut Vec<Reason>,
    candidates: &[Candidate],
    (chosen, chosen_secs): (Backend, f64),
    below_min_best: Option<(Backend, f64)>,
) {
    for c in candidates {
        let Ok(e) = &c.estimate else { continue };
        if c.backend == chosen || below_min_best.is_some_and(|(b, _)| b == c.backend) {
            continue;
        }
        let winner = if e.secs >= chosen_secs {
            Some((chosen, chosen_secs))
        } else {
            below_min_best.filter(|&(_, secs)| e.secs >= secs)
        };
        if let Some((winner, winner_secs)) = winner {
            reasons.push(Reason::Slower {
                backend: c.backend,
                secs: e.secs,
                winner,
                winner_secs,
            });
        }
    }
}

/// Serial's own candidate.
fn serial_estimate(serial_secs: f64) -> Estimate {
    Estimate {
        workers: 1,
        chunk_size: 1,
        secs: serial_secs,
        speedup: 1.0,
    }
}

/// `N*t / T`, or 1 when there is no work to compare.
fn speedup(serial_secs: f64, secs: f64) -> f64 {
    if serial_secs > 0.0 && secs > 0.0 {
        serial_secs / secs
    } else {
        1.0
    }
}

/// `ceil(x)` as a worker count of at least 1 (`x` is finite and positive here).
fn ceil_count(x: f64) -> usize {
    if x.is_nan() || x <= 1.0 {
        1
    } else if x >= usize::MAX as f64 {
        usize::MAX
    } else {
        x.ceil() as usize
    }
}

/// A reason for each of `max_workers` and `chunk_size` that was set: pinned in code, or
/// by the environment.
fn push_pinned_sizes(reasons: &mut Vec<Reason>, ctl: &Controls, options: &Options) {
    if let Some(w) = ctl.max_workers {
        reasons.push(options.pin_reason("max_workers", w.to_string()));
    }
    if let Some(c) = ctl.chunk_size {
        reasons.push(options.pin_reason("chunk_size", c.to_string()));
    }
}

/// After a [`Reason::PinnedUnavailable`]: the environment variable that pinned the
/// backend, if one did, so the plan names what could not be honoured.
fn push_unavailable_source(reasons: &mut Vec<Reason>, pinned: Backend, options: &Options) {
    if let Source::Environment(variable) = options.source("backend") {
        reasons.push(Reason::Environment {
            variable,
            value: pinned.to_string(),
        });
    }
}
