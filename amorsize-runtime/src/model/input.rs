//! Sanitising the model's inputs.
//!
//! Whatever the caller passes (NaN, negative, infinite or subnormal timings, zero CPUs,
//! zero memory, absurd options), the cost formula only ever reads finite, non-negative
//! numbers in the documented ranges below, so no plan holds a NaN or an infinity and
//! nothing panics.

use super::SampleStats;
use crate::options::{DEFAULT_MIN_SPEEDUP, Options};
use crate::plan::{Backend, Reason};
use crate::probe::{MachineProfile, Overheads};

/// Times below this (a picosecond) count as zero: nothing measurable is that fast, and
/// it keeps subnormal numbers out of divisions.
pub(super) const MIN_SECS: f64 = 1e-12;
/// Longest time one item or one fixed cost may take in the formula (about 31 years);
/// `+inf` becomes this.
pub(super) const MAX_SECS: f64 = 1e9;
/// Largest coefficient of variation the formula uses.
pub(super) const MAX_CV: f64 = 1e3;
/// Smallest thread-CPU/wall ratio the formula uses: work that waits 1000 times longer
/// than it computes is treated as that (the Threads cap binds long before).
pub(super) const MIN_CPU_RATIO: f64 = 1e-3;
/// Largest process/thread CPU ratio the formula uses.
pub(super) const MAX_PROCESS_CPU_RATIO: f64 = 1e6;
/// Largest item size, in bytes, the formula uses; `+inf` becomes this.
pub(super) const MAX_BYTES: f64 = 1e18;
/// Largest CPU budget (and rayon pool) the search walks through.
pub(super) const MAX_CPUS: usize = 1024;
/// Largest `min_speedup` kept as given; above it (or `+inf`) it is clamped to this,
/// which no plan reaches anyway.
pub(super) const MAX_MIN_SPEEDUP: f64 = 1e6;

/// A time from the sample, made finite: NaN and negatives become 0, `+inf` becomes
/// [`MAX_SECS`]. Finite values are kept as given (they are shown in the plan).
fn clean_secs(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        0.0
    } else if x.is_infinite() {
        MAX_SECS
    } else {
        x
    }
}

/// A byte count from the sample, made finite: NaN and negatives become 0, `+inf`
/// becomes [`MAX_BYTES`].
fn clean_bytes(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        0.0
    } else if x.is_infinite() {
        MAX_BYTES
    } else {
        x
    }
}

/// The sample with every non-finite or negative number replaced by the value the model
/// used instead; finite, in-range values are kept exactly, so for sane input this is a
/// plain clone.
pub(super) fn clean_sample(stats: &SampleStats) -> SampleStats {
    let secs = clean_secs;
    let mut s = stats.clone();
    s.sample_secs = secs(s.sample_secs);
    s.mean_item_secs = secs(s.mean_item_secs);
    s.cv = if s.cv.is_nan() || s.cv < 0.0 {
        0.0
    } else if s.cv.is_infinite() {
        MAX_CV
    } else {
        s.cv
    };
    s.cpu_ratio = if s.cpu_ratio.is_finite() && s.cpu_ratio >= 0.0 {
        s.cpu_ratio
    } else {
        // Unknown: assume CPU-bound, the choice that never starts extra threads.
        1.0
    };
    s.process_cpu_ratio = if s.process_cpu_ratio.is_finite() && s.process_cpu_ratio >= 0.0 {
        s.process_cpu_ratio
    } else if s.process_cpu_ratio == f64::INFINITY {
        MAX_PROCESS_CPU_RATIO
    } else {
        1.0
    };
    s.cpu_ratio_range = s
        .cpu_ratio_range
        .filter(|(lo, hi)| lo.is_finite() && hi.is_finite())
        .map(|(lo, hi)| (lo.clamp(0.0, 1.0), hi.clamp(0.0, 1.0)));
    s.inner_speedup = s
        .inner_speedup
        .filter(|x| !x.is_nan())
        .map(|x| x.clamp(1.0, MAX_PROCESS_CPU_RATIO));
    s.two_thread_efficiency = match s.two_thread_efficiency {
        Some(e) if e.is_nan() => None,
        Some(e) if e.is_infinite() => Some(if e > 0.0 { 1.0 } else { 0.0 }),
        Some(e) => Some(e.max(0.0)),
        None => None,
    };
    s.in_bytes = clean_bytes(s.in_bytes);
    s.out_bytes = clean_bytes(s.out_bytes);
    s.item_bytes = clean_bytes(s.item_bytes);
    s.encode_in_secs = secs(s.encode_in_secs);
    s.decode_in_secs = secs(s.decode_in_secs);
    s.encode_out_secs = secs(s.encode_out_secs);
    s.decode_out_secs = secs(s.decode_out_secs);
    s
}

/// A time as the formula uses it: finite, in `0..=MAX_SECS`, and 0 below [`MIN_SECS`].
fn formula_secs(x: f64) -> f64 {
    if x.is_nan() || x < MIN_SECS {
        0.0
    } else {
        x.min(MAX_SECS)
    }
}

/// The workload as the formula reads it (from a [`clean_sample`]).
#[derive(Clone, Debug)]
pub(super) struct Workload {
    /// Remaining items `N`.
    pub n: usize,
    /// Mean seconds per item `t`.
    pub t: f64,
    /// Coefficient of variation `cv`, in `0..=MAX_CV`.
    pub cv: f64,
    /// Thread-CPU/wall ratio `r`, in `MIN_CPU_RATIO..=1`.
    pub r: f64,
    /// Process/thread CPU ratio `q`, in `1..=MAX_PROCESS_CPU_RATIO`.
    pub q: f64,
    /// Amdahl serial fraction `s` of threads, from `e2`, in `0..=1`.
    pub serial_fraction: f64,
    /// Parent-side codec seconds per item (encode input, decode output).
    pub parent_io: f64,
    /// Worker-side codec seconds per item (decode input, encode output).
    pub worker_io: f64,
    /// In-memory bytes of one item in flight.
    pub item_bytes: f64,
    /// Encoded bytes of one input and its output (what crosses a pipe or a broker).
    pub wire_bytes: f64,
    /// The sample saw both items that wait and items that compute.
    pub mixture: bool,
}

impl Workload {
    pub fn new(s: &SampleStats, n: usize) -> Workload {
        let (r, q) = cpu_use(s);
        let serial_fraction = match s.two_thread_efficiency {
            // A measurement this close to 1 is noise, not a serial part.
            Some(e) if e >= E2_SCALES => 0.0,
            // e2 = speedup(2) / 2 and speedup(2) = 1 / (s + (1 - s) / 2) give s = 1/e2 - 1.
            Some(e) if e > 0.0 => (1.0 / e - 1.0).clamp(0.0, 1.0),
            Some(_) => 1.0,
            None => 0.0,
        };
        Workload {
            n,
            t: formula_secs(s.mean_item_secs),
            cv: s.cv.clamp(0.0, MAX_CV),
            r,
            q,
            serial_fraction,
            parent_io: formula_secs(s.encode_in_secs) + formula_secs(s.decode_out_secs),
            worker_io: formula_secs(s.decode_in_secs) + formula_secs(s.encode_out_secs),
            item_bytes: s.item_bytes.min(MAX_BYTES),
            wire_bytes: (clean_bytes(s.in_bytes) + clean_bytes(s.out_bytes)).min(MAX_BYTES),
            mixture: s
                .cpu_ratio_range
                .is_some_and(|(lo, hi)| lo <= MIXTURE_WAITING && hi >= MIXTURE_COMPUTING),
        }
    }

    /// Serial time of the remaining items, `N * t`.
    pub fn serial_secs(&self) -> f64 {
        self.n as f64 * self.t
    }
}

/// The item's CPU use as the formula reads it: `(r, q)`, thread CPU over wall and the
/// CPUs one item keeps usefully busy. When the inner speedup `x` was measured, `q` is
/// `x` (never more than the process-wide ratio, which bounds what an item can use),
/// and `r` is the share of a CPU the item keeps busy when confined to one thread: the
/// process's CPU over wall, divided by `x`, at most 1. An item that waits on its own
/// rayon calls reads a low thread `r`, but it is CPU work.
pub(super) fn cpu_use(s: &SampleStats) -> (f64, f64) {
    let r = s.cpu_ratio.clamp(MIN_CPU_RATIO, 1.0);
    let q = s.process_cpu_ratio.clamp(1.0, MAX_PROCESS_CPU_RATIO);
    match s.inner_speedup {
        Some(x) if x.is_finite() => {
            let x = x.clamp(1.0, q);
            ((r * q / x).clamp(MIN_CPU_RATIO, 1.0), x)
        }
        _ => (r, q),
    }
}

/// A sampled span with at most this CPU share waited; one with at least
/// [`MIXTURE_COMPUTING`] computed. A sample with both is a mixture.
pub(super) const MIXTURE_WAITING: f64 = 0.25;
/// See [`MIXTURE_WAITING`].
pub(super) const MIXTURE_COMPUTING: f64 = 0.75;

/// A measured two-thread efficiency at or above this counts as perfect scaling: the
/// measurement runs a handful of items on a possibly busy machine, and a few percent
/// off 1 must not hand CPU-bound work to worker processes.
pub(super) const E2_SCALES: f64 = 0.85;

/// The machine as the formula reads it.
#[derive(Clone, Debug)]
pub(super) struct Machine {
    /// CPU budget `P`, in `1..=MAX_CPUS`.
    pub cpus: usize,
    /// Threads of the rayon pool, in `1..=MAX_CPUS` (0 means "same as `cpus`").
    pub rayon_threads: usize,
    /// Usable memory in bytes (0 still allows one worker).
    pub usable_bytes: f64,
    /// The raw figure, for [`Reason::MemoryCap`].
    pub usable_raw: u64,
    /// Fixed costs, each finite and non-negative.
    pub overheads: Overheads,
    /// The cluster's worker slots and costs (finite, non-negative), if it has workers.
    pub cluster: Option<ClusterCosts>,
}

/// [`crate::probe::ClusterProfile`] as the formula uses it.
#[derive(Clone, Copy, Debug)]
pub(super) struct ClusterCosts {
    /// Worker slots, in `1..=MAX_CLUSTER_WORKERS`.
    pub workers: usize,
    /// One chunk's round trip through the broker.
    pub chunk_secs: f64,
    /// Per byte through the broker.
    pub byte_secs: f64,
}

/// Most cluster worker slots the model plans for.
pub(super) const MAX_CLUSTER_WORKERS: usize = 4096;

impl Machine {
    pub fn new(m: &MachineProfile) -> Machine {
        let cpus = m.cpu_budget.clamp(1, MAX_CPUS);
        let rayon_threads = if m.rayon_threads == 0 {
            cpus
        } else {
            m.rayon_threads.min(MAX_CPUS)
        };
        let d = Overheads::default();
        let o = &m.overheads;
        // A measurement that is NaN or negative is not a measurement: use the default.
        let fix = |x: f64, default: f64| {
            if x.is_nan() || x < 0.0 {
                default
            } else {
                formula_secs(x)
            }
        };
        let mut overheads = d.clone();
        overheads.thread_start_secs = fix(o.thread_start_secs, d.thread_start_secs);
        overheads.rayon_start_secs = fix(o.rayon_start_secs, d.rayon_start_secs);
        overheads.chunk_handoff_secs = fix(o.chunk_handoff_secs, d.chunk_handoff_secs);
        overheads.process_start_secs = fix(o.process_start_secs, d.process_start_secs);
        overheads.process_chunk_secs = fix(o.process_chunk_secs, d.process_chunk_secs);
        overheads.process_item_secs = fix(o.process_item_secs, d.process_item_secs);
        Machine {
            cpus,
            rayon_threads,
            usable_bytes: m.memory.usable_bytes as f64,
            usable_raw: m.memory.usable_bytes,
            overheads,
            cluster: m
                .cluster
                .as_ref()
                .filter(|c| c.workers > 0)
                .map(|c| ClusterCosts {
                    workers: c.workers.min(MAX_CLUSTER_WORKERS),
                    chunk_secs: fix(c.chunk_secs, 1e-3),
                    byte_secs: fix(c.byte_secs, 1e-8),
                }),
        }
    }
}

/// The options as the model applies them, with a [`Reason::Clamped`] for each absurd
/// value.
#[derive(Clone, Debug)]
pub(super) struct Controls {
    pub backend: Option<Backend>,
    pub max_workers: Option<usize>,
    pub chunk_size: Option<usize>,
    pub min_speedup: f64,
    pub clamped: Vec<Reason>,
}

impl Controls {
    pub fn new(o: &Options) -> Controls {
        let mut clamped = Vec::new();
        let mut at_least_one = |option: &'static str, v: Option<usize>| match v {
            Some(0) => {
                clamped.push(Reason::Clamped {
                    option,
                    given: "0".to_string(),
                    used: "1".to_string(),
                });
                Some(1)
            }
            v => v,
        };
        let max_workers = at_least_one("max_workers", o.max_workers);
        let chunk_size = at_least_one("chunk_size", o.chunk_size);
        let given = o.min_speedup;
        let min_speedup = if given.is_nan() {
            DEFAULT_MIN_SPEEDUP
        } else {
            given.clamp(0.0, MAX_MIN_SPEEDUP)
        };
        if min_speedup != given {
            clamped.push(Reason::Clamped {
                option: "min_speedup",
                given: given.to_string(),
                used: min_speedup.to_string(),
            });
        }
        Controls {
            backend: o.backend,
            max_workers,
            chunk_size,
            min_speedup,
            clamped,
        }
    }
}
