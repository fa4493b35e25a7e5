//! [`Reason`]: why a plan is what it is, one reason at a time.

use std::fmt;

use super::{Backend, NestedIn, Secs, secs};

/// One reason behind a [`Plan`](super::Plan): why a backend won, lost or was excluded, or which
/// control or clamp shaped the plan.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Reason {
    /// The chosen backend had the shortest predicted time.
    Fastest {
        /// The winner.
        backend: Backend,
        /// Its predicted speedup over serial.
        speedup: f64,
    },
    /// The best parallel plan was predicted below `min_speedup`, so the job stays serial.
    BelowMinSpeedup {
        /// The best parallel backend.
        best: Backend,
        /// Its predicted speedup.
        speedup: f64,
        /// The threshold it had to reach.
        min_speedup: f64,
    },
    /// The whole remaining job is predicted to take less than starting any parallel work.
    TooLittleWork {
        /// Predicted serial time of the rest of the job.
        serial_secs: f64,
        /// Cheapest fixed cost of going parallel.
        threshold_secs: f64,
    },
    /// The input ended while it was being sampled: it was all processed serially.
    InputEndedInSample {
        /// How many items there were.
        items: usize,
    },
    /// A backend lost to a faster one.
    Slower {
        /// The loser.
        backend: Backend,
        /// Its best predicted time.
        secs: f64,
        /// The winner.
        winner: Backend,
        /// The winner's predicted time.
        winner_secs: f64,
    },
    /// The user pinned a choice in code (`.backend()`, `.max_workers()`,
    /// `.chunk_size()` or an attribute argument).
    Pinned {
        /// Which option: `backend`, `max_workers` or `chunk_size`.
        option: &'static str,
        /// The pinned value, as text.
        value: String,
    },
    /// An environment variable decided or capped the plan.
    Environment {
        /// The variable, e.g. `AMORSIZE_BACKEND`.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// The `serial` cargo feature turns amorsize off for the whole build.
    SerialFeature,
    /// A nested call: it never multiplies threads.
    Nested {
        /// Where the call was made.
        inside: NestedIn,
    },
    /// A backend cannot run this job at all.
    Excluded {
        /// The excluded backend.
        backend: Backend,
        /// Why, in plain words, including how to enable it where that is possible.
        why: String,
    },
    /// A pinned backend could not be used, so the best other one was taken.
    PinnedUnavailable {
        /// What the user pinned.
        pinned: Backend,
        /// What ran instead.
        used: Backend,
    },
    /// An option had an absurd value and was clamped.
    Clamped {
        /// Which option.
        option: &'static str,
        /// What was given, as text.
        given: String,
        /// What is used instead, as text.
        used: String,
    },
    /// Work that mostly waits (low thread-CPU/wall ratio) may use more threads than cores.
    IoBound {
        /// Thread CPU time over wall time in the sample.
        cpu_ratio: f64,
    },
    /// The sample saw both items that wait and items that compute: the pool has as many
    /// threads as keep the CPUs busy with the computing ones while the others wait.
    Mixture {
        /// The least CPU share of a sampled span (thread CPU over wall).
        waiting: f64,
        /// The greatest.
        computing: f64,
    },
    /// Many more items wait at once than there are CPUs, and nothing capped it: right
    /// for sleeps and local files, too many at once for a server that limits
    /// connections. Cap it with `max_workers` or `AMORSIZE_MAX_WORKERS`.
    WaitingUncapped {
        /// Items that wait at once.
        workers: usize,
    },
    /// Work that does not scale on threads (measured two-thread efficiency).
    ThreadsDoNotScale {
        /// Throughput of two threads over twice that of one, in `0..=1`.
        efficiency: f64,
    },
    /// Work that already uses several cores per item gets fewer workers.
    InternallyParallel {
        /// How many CPUs one item keeps usefully busy: its measured inner speedup, or
        /// process CPU time over thread CPU time when that was not measured.
        ratio: f64,
    },
    /// The process kept several CPUs busy per sampled item, but the items ran only
    /// this much faster than with their inner rayon confined to one thread: they are
    /// planned as using that many CPUs.
    InnerParallelismMeasured {
        /// Process CPU time over thread CPU time in the sample.
        process_cpu_ratio: f64,
        /// Confined time over free time per item.
        speedup: f64,
    },
    /// Memory limits the number of workers.
    MemoryCap {
        /// The most workers that fit.
        workers: usize,
        /// Usable memory in bytes.
        usable_bytes: u64,
    },
    /// The input length is unknown; the rest of the job was estimated.
    LengthEstimated {
        /// The estimate of the remaining items.
        remaining: usize,
    },
    /// Fewer worker processes than planned could be had (none, when `started` is 0:
    /// then a job pinned to processes fails its items as not run, and an automatic
    /// choice runs elsewhere).
    WorkersUnavailable {
        /// Workers the plan asked for.
        planned: usize,
        /// Workers that started.
        started: usize,
        /// Why the others could not start.
        why: String,
    },
    /// [`item_timeout`](crate::AutoIter::item_timeout) was set, but only worker
    /// processes can be stopped in the middle of an item.
    ItemTimeoutNotApplied {
        /// The backend the job runs on.
        backend: Backend,
    },
    /// The disk cache could not be used as it should (a damaged or stale entry, a
    /// directory that cannot be written); the job went on without it.
    DiskCache {
        /// What went wrong, naming the file or directory.
        problem: String,
    },
    /// The plan came from what the call site measured before, and the first chunk
    /// took a per-item time this far off: the plan was re-made for the next calls.
    RecheckedOnFirstChunk {
        /// Per-item time the plan was made with, in seconds.
        expected_secs: f64,
        /// Per-item time of the first chunk, in seconds.
        measured_secs: f64,
    },
    /// The last job at this call site ran its items this far off the time its plan
    /// assumed (over the whole job, not only the sample): this plan is made from what
    /// it measured.
    LearnedFromLastRun {
        /// Per-item time the last plan assumed, in seconds.
        expected_secs: f64,
        /// Per-item time over the whole last job, in seconds.
        measured_secs: f64,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The estimate is already on the plan's line and in its candidates.
            Reason::Fastest { backend, .. } => write!(f, "{backend} is the fastest candidate"),
            Reason::BelowMinSpeedup {
                best,
                speedup,
                min_speedup,
            } => write!(
                f,
                "best parallel plan ({best}, est. {speedup:.2}x) is below min_speedup {min_speedup}"
            ),
            Reason::TooLittleWork {
                serial_secs,
                threshold_secs,
            } => write!(
                f,
                "too little work: {} left serially, parallel start costs {}",
                Secs(*serial_secs),
                Secs(*threshold_secs)
            ),
            Reason::InputEndedInSample { items } => {
                write!(f, "input ended while sampling ({items} items)")
            }
            Reason::Slower {
                backend,
                secs,
                winner,
                winner_secs,
            } => write!(
                f,
                "{backend} slower: est. {} vs {} for {winner}",
                Secs(*secs),
                Secs(*winner_secs)
            ),
            Reason::Pinned { option, value } => write!(f, "{option} pinned to {value} in code"),
            Reason::Environment { variable, value } => write!(f, "{variable}={value}"),
            Reason::SerialFeature => f.write_str("the `serial` cargo feature is on"),
            Reason::Nested { inside } => {
                write!(f, "nested call inside {inside}: no extra threads")
            }
            Reason::Excluded { backend, why } => write!(f, "{backend} excluded: {why}"),
            Reason::PinnedUnavailable { pinned, used } => {
                write!(f, "pinned {pinned} is unavailable here; using {used}")
            }
            Reason::Clamped {
                option,
                given,
                used,
            } => write!(f, "{option}({given}) is out of range; using {used}"),
            Reason::IoBound { cpu_ratio } => write!(
                f,
                "I/O-bound (CPU/wall {cpu_ratio:.2}): more threads than cores allowed"
            ),
            Reason::Mixture { waiting, computing } => write!(
                f,
                "a mixture: some items wait (CPU share {waiting:.2}), some compute \
                 ({computing:.2}); the pool serves both"
            ),
            Reason::WaitingUncapped { workers } => write!(
                f,
                "{workers} items wait at once, uncapped: if each holds a connection or \
                 another scarce resource, cap it with .max_workers(n) or \
                 AMORSIZE_MAX_WORKERS=n"
            ),
            Reason::ThreadsDoNotScale { efficiency } => write!(
                f,
                "threads do not scale (two-thread efficiency {efficiency:.2})"
            ),
            Reason::InternallyParallel { ratio } => {
                write!(f, "each item already uses {ratio:.1} cores: fewer workers")
            }
            Reason::InnerParallelismMeasured {
                process_cpu_ratio,
                speedup,
            } => write!(
                f,
                "the process kept {process_cpu_ratio:.1} CPUs busy per item, but an item \
                 runs only {speedup:.2}x faster than with its rayon calls on one thread"
            ),
            Reason::MemoryCap {
                workers,
                usable_bytes,
            } => write!(
                f,
                "memory caps workers at {workers} ({} MiB usable)",
                usable_bytes / (1 << 20)
            ),
            Reason::LengthEstimated { remaining } => {
                write!(f, "input length unknown; estimated {remaining} more items")
            }
            Reason::WorkersUnavailable {
                planned,
                started: 0,
                why,
            } => write!(f, "none of {planned} worker processes could start: {why}"),
            Reason::WorkersUnavailable {
                planned,
                started,
                why,
            } => write!(
                f,
                "only {started} of {planned} worker processes could start: {why}"
            ),
            Reason::ItemTimeoutNotApplied { backend } => write!(
                f,
                "item_timeout does not apply on {backend}: only worker processes can be \
                 stopped in the middle of an item"
            ),
            Reason::DiskCache { problem } => write!(f, "disk cache: {problem}"),
            Reason::RecheckedOnFirstChunk {
                expected_secs,
                measured_secs,
            } => {
                f.write_str("re-made: the first chunk took ")?;
                secs(f, *measured_secs)?;
                f.write_str(" an item, the remembered plan expected ")?;
                secs(f, *expected_secs)
            }
            Reason::LearnedFromLastRun {
                expected_secs,
                measured_secs,
            } => {
                f.write_str("learned from the last run: its items took ")?;
                secs(f, *measured_secs)?;
                f.write_str(", its plan assumed ")?;
                secs(f, *expected_secs)
            }
        }
    }
}
