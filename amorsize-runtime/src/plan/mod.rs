//! What was decided and why: [`Plan`], [`Backend`], [`Reason`], [`Candidate`].

use std::fmt;

use crate::probe::Fallback;
use crate::stats::SampleStats;

mod reason;

pub use reason::Reason;

/// Where the items of a job run.
///
/// # Examples
///
/// ```
/// use amorsize::Backend;
/// assert_eq!(Backend::Threads.to_string(), "threads");
/// assert_eq!("rayon".parse::<Backend>(), Ok(Backend::Rayon));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Backend {
    /// On the caller's thread, one item after another.
    Serial,
    /// On the current rayon pool (the global one, or the one whose `install` we are in).
    Rayon,
    /// On amorsize's own blocking thread pool, which may hold more threads than the CPU
    /// budget (for I/O-bound work).
    Threads,
    /// On a pool of worker processes (the same executable), for work that does not
    /// scale on threads. Needs a function marked `#[amorsize::task]`.
    Processes,
    /// On worker processes of this same executable on other machines, through a NATS
    /// JetStream broker (cargo feature `cluster`, `AMORSIZE_CLUSTER`). Needs a function
    /// marked `#[amorsize::task]`.
    Cluster,
}

impl Backend {
    /// Every backend, in the order the model reports them.
    pub const ALL: [Backend; 5] = [
        Backend::Serial,
        Backend::Rayon,
        Backend::Threads,
        Backend::Processes,
        Backend::Cluster,
    ];

    /// The lowercase name used in attribute arguments and `AMORSIZE_BACKEND`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Serial => "serial",
            Backend::Rayon => "rayon",
            Backend::Threads => "threads",
            Backend::Processes => "processes",
            Backend::Cluster => "cluster",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The text of a backend name that is not one of `serial`, `rayon`, `threads`,
/// `processes`, `cluster`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseBackendError(pub String);

impl fmt::Display for ParseBackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown backend `{}`: expected one of serial, rayon, threads, processes, cluster",
            self.0
        )
    }
}

impl std::error::Error for ParseBackendError {}

impl std::str::FromStr for Backend {
    type Err = ParseBackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == lower)
            .ok_or_else(|| ParseBackendError(s.to_string()))
    }
}

/// Where a nested call found itself (see [`Reason::Nested`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NestedIn {
    /// On a worker thread of a rayon pool: only that pool (or inline) is used.
    RayonWorker,
    /// On a thread of amorsize's blocking pool: runs inline.
    ThreadsPool,
    /// Inside an amorsize worker process: runs inline.
    WorkerProcess,
}

impl fmt::Display for NestedIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NestedIn::RayonWorker => "a rayon worker thread",
            NestedIn::ThreadsPool => "amorsize's blocking thread pool",
            NestedIn::WorkerProcess => "an amorsize worker process",
        })
    }
}

/// Writes seconds with a readable unit (`12.0 us`, `3.40 ms`).
fn secs(f: &mut fmt::Formatter<'_>, s: f64) -> fmt::Result {
    if !s.is_finite() {
        write!(f, "{s}")
    } else if s >= 1.0 {
        write!(f, "{s:.2} s")
    } else if s >= 1e-3 {
        write!(f, "{:.2} ms", s * 1e3)
    } else if s >= 1e-6 {
        write!(f, "{:.1} us", s * 1e6)
    } else {
        write!(f, "{:.0} ns", s * 1e9)
    }
}

/// Formats seconds with a readable unit (`12.0 us`, `3.40 ms`).
pub(crate) struct Secs(pub f64);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        secs(f, self.0)
    }
}

/// A backend's best predicted configuration.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Estimate {
    /// Number of workers.
    pub workers: usize,
    /// Items per chunk handed to a worker.
    pub chunk_size: usize,
    /// Predicted wall time of the remaining items, in seconds.
    pub secs: f64,
    /// Predicted speedup over running the remaining items serially.
    pub speedup: f64,
}

/// What the model predicted for one backend, or why it was not considered.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Candidate {
    /// The backend.
    pub backend: Backend,
    /// Its best configuration, or the reason it was excluded.
    pub estimate: Result<Estimate, Reason>,
}

/// Where a plan came from, so a log line or a hook can tell a decision measured now
/// from one remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Origin {
    /// Made for this call: from a fresh sample, or without one (a switch, a full pin).
    #[default]
    Fresh,
    /// This process's plan cache: the same call site, types, size bucket and options.
    Cache,
    /// Re-made from what this call site measured earlier in this process, for another
    /// input size, without sampling again.
    CallSite,
    /// Re-made from what this call site measured in an earlier run of this executable,
    /// kept in the disk cache.
    Disk,
}

impl Origin {
    /// How the plan's log line names it.
    pub fn describe(self) -> &'static str {
        match self {
            Origin::Fresh => "fresh sample",
            Origin::Cache => "this process's plan cache",
            Origin::CallSite => "this call site's earlier sample",
            Origin::Disk => "the disk cache",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A decision: which backend, how many workers, what chunk size, and why.
///
/// `Display` prints one short line; the alternate form (`{:#}`) prints the full
/// breakdown: sample statistics, each candidate's prediction and every reason.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Plan {
    /// Where the remaining items run.
    pub backend: Backend,
    /// Number of workers (1 for serial).
    pub workers: usize,
    /// Items per chunk handed to a worker.
    pub chunk_size: usize,
    /// Predicted speedup of the remaining items over serial (1.0 for serial).
    pub estimated_speedup: f64,
    /// Predicted serial time of the remaining items, in seconds.
    pub estimated_serial_secs: f64,
    /// What the sample measured: this call's, or for a plan re-made from what the call
    /// site measured before (see [`origin`](Self::origin)), that earlier sample's.
    pub sample: SampleStats,
    /// Items left after the sample, if known or estimated.
    pub remaining_items: Option<usize>,
    /// Each backend's best prediction, or why it was excluded.
    pub candidates: Vec<Candidate>,
    /// Why this plan; the first one is the main reason.
    pub reasons: Vec<Reason>,
    /// Machine measurements that fell back to documented defaults.
    pub fallbacks: Vec<Fallback>,
    /// Which call site or function decided, when known (for logs).
    pub label: Option<String>,
    /// Where the plan came from: a fresh sample, a cache, or the disk.
    pub origin: Origin,
    /// Changes of course the last job at this call site made while it ran, when its
    /// items turned out far costlier or cheaper than the plan assumed (also printed
    /// by `AMORSIZE_LOG` as they happen). Filled on the plan the call site keeps for
    /// its next call, which is made from what that whole job measured.
    pub replans: Vec<Replan>,
    /// The cluster the model saw, when it considered one
    /// ([`Backend::Cluster`]): worker slots of this build that answered, and the
    /// measured costs of a chunk and of a byte through the broker.
    pub cluster: Option<crate::probe::ClusterProfile>,
}

/// A change of course made while a job ran: from which item, why, and the new choice.
///
/// ```
/// # use amorsize::Plan;
/// fn show(plan: &Plan) {
///     for r in &plan.replans {
///         println!("{r}"); // "at item 20: items took 52 ns, not 1.01 ms: rayon x2, chunk 8192"
///     }
/// }
/// # let _ = show;
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Replan {
    /// Input index of the first item the new course applied to.
    pub at_item: usize,
    /// Seconds per item the course before assumed.
    pub expected_secs: f64,
    /// Seconds per item measured since that course began.
    pub measured_secs: f64,
    /// The backend the rest ran on (`Serial`: the caller alone).
    pub backend: Backend,
    /// Workers for the rest.
    pub workers: usize,
    /// Items per chunk for the rest.
    pub chunk_size: usize,
}

impl fmt::Display for Replan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at item {}: items took ", self.at_item)?;
        secs(f, self.measured_secs)?;
        f.write_str(", not ")?;
        secs(f, self.expected_secs)?;
        match self.backend {
            Backend::Serial => f.write_str(": serial"),
            b => write!(f, ": {b} x{}, chunk {}", self.workers, self.chunk_size),
        }
    }
}

impl Plan {
    /// A serial plan with a single reason, for decisions made without the model.
    #[doc(hidden)]
    pub fn serial(reason: Reason) -> Plan {
        Plan {
            backend: Backend::Serial,
            workers: 1,
            chunk_size: 1,
            estimated_speedup: 1.0,
            estimated_serial_secs: 0.0,
            sample: SampleStats::default(),
            remaining_items: None,
            candidates: Vec::new(),
            reasons: vec![reason],
            fallbacks: Vec::new(),
            label: None,
            origin: Origin::Fresh,
            replans: Vec::new(),
            cluster: None,
        }
    }

    /// The main reason, if any.
    pub fn main_reason(&self) -> Option<&Reason> {
        self.reasons.first()
    }

    /// Whether the user capped the number of workers (`max_workers` in code, or
    /// `AMORSIZE_MAX_WORKERS`): the executors then never run more items at once than
    /// `workers`, not even on the caller.
    pub(crate) fn workers_capped(&self) -> bool {
        self.reasons.iter().any(|r| {
            matches!(
                r,
                Reason::Pinned {
                    option: "max_workers",
                    ..
                } | Reason::Environment {
                    variable: "AMORSIZE_MAX_WORKERS",
                    ..
                }
            )
        })
    }

    /// For a serial plan made because the input ended inside the sample: how many items
    /// the sample held.
    pub(crate) fn ended_in_sample(&self) -> Option<usize> {
        match self.main_reason() {
            Some(&Reason::InputEndedInSample { items }) if self.backend == Backend::Serial => {
                Some(items)
            }
            _ => None,
        }
    }

    /// "AMORSIZE_BACKEND=processes cannot be used (why); using rayon", when a pinned
    /// backend could not run: the one-line form names what was overridden and where
    /// the pin came from, whatever the main reason.
    fn unavailable_pin(&self) -> Option<String> {
        let (pinned, used) = self.reasons.iter().find_map(|r| match r {
            Reason::PinnedUnavailable { pinned, used } => Some((*pinned, *used)),
            _ => None,
        })?;
        let source = self
            .reasons
            .iter()
            .find_map(|r| match r {
                Reason::Environment { variable, value } if *variable == "AMORSIZE_BACKEND" => {
                    Some(format!("{variable}={value}"))
                }
                _ => None,
            })
            .unwrap_or_else(|| format!("pinned {pinned}"));
        let why = self.reasons.iter().find_map(|r| match r {
            Reason::Excluded { backend, why } if *backend == pinned => Some(why.as_str()),
            _ => None,
        });
        let why = self
            .candidates
            .iter()
            .find_map(|c| match (&c.estimate, c.backend == pinned) {
                (Err(Reason::Excluded { why, .. }), true) => Some(why.as_str()),
                _ => None,
            })
            .or(why);
        Some(match why {
            Some(why) => format!("{source} cannot be used ({why}); using {used}"),
            None => format!("{source} cannot be used; using {used}"),
        })
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(label) = &self.label {
            write!(f, "[{label}] ")?;
        }
        match self.backend {
            Backend::Serial => f.write_str("serial")?,
            b => write!(f, "{b} x{}, chunk {}", self.workers, self.chunk_size)?,
        }
        if self.sample.items > 0 {
            write!(f, ": est. {:.2}x serial (", self.estimated_speedup)?;
            match self.remaining_items {
                Some(n) => write!(f, "{n} items")?,
                None => f.write_str("? items")?,
            }
            write!(f, " x {})", Secs(self.sample.mean_item_secs))?;
        }
        match (self.main_reason(), self.unavailable_pin()) {
            (Some(Reason::PinnedUnavailable { .. }), Some(note)) => write!(f, "; {note}")?,
            (Some(r), Some(note)) => write!(f, "; {r}; {note}")?,
            (Some(r), None) => write!(f, "; {r}")?,
            (None, _) => {}
        }
        if self.origin != Origin::Fresh {
            write!(f, " (from {})", self.origin)?;
        }
        if let Some(last) = self.replans.last() {
            write!(
                f,
                "; the last run re-planned {} time(s), last {last}",
                self.replans.len()
            )?;
        }
        if f.alternate() {
            self.fmt_breakdown(f)?;
        }
        Ok(())
    }
}

impl Plan {
    fn fmt_breakdown(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.sample;
        writeln!(f)?;
        writeln!(
            f,
            "  sample: {} items in {}, mean {} (cv {:.2}), cpu/wall {:.2}, process/thread cpu {:.2}{}{}",
            s.items,
            Secs(s.sample_secs),
            Secs(s.mean_item_secs),
            s.cv,
            s.cpu_ratio,
            s.process_cpu_ratio,
            match (s.inner_speedup, s.cpu_ratio_range) {
                (Some(x), _) => format!(", inner speedup {x:.2}"),
                (None, Some((lo, hi))) => format!(" ({lo:.2}..{hi:.2} by span)"),
                (None, None) => String::new(),
            },
            match s.two_thread_efficiency {
                Some(e) => format!(", 2-thread efficiency {e:.2}"),
                None => String::new(),
            }
        )?;
        if s.in_bytes > 0.0 || s.out_bytes > 0.0 {
            writeln!(
                f,
                "  encoded: in {:.0} B (enc {}, dec {}), out {:.0} B (enc {}, dec {})",
                s.in_bytes,
                Secs(s.encode_in_secs),
                Secs(s.decode_in_secs),
                s.out_bytes,
                Secs(s.encode_out_secs),
                Secs(s.decode_out_secs)
            )?;
        }
        if let Some(c) = &self.cluster {
            writeln!(
                f,
                "  cluster: {} worker slot(s) of this build answered; a chunk through the broker {}, {:.2} ns per byte",
                c.workers,
                Secs(c.chunk_secs),
                c.byte_secs * 1e9
            )?;
        }
        writeln!(
            f,
            "  remaining: {} items, est. {} serially",
            self.remaining_items
                .map_or_else(|| "?".to_string(), |n| n.to_string()),
            Secs(self.estimated_serial_secs)
        )?;
        if !self.candidates.is_empty() {
            writeln!(f, "  candidates:")?;
            for c in &self.candidates {
                match &c.estimate {
                    Ok(e) => writeln!(
                        f,
                        "    {:<9} x{:<4} chunk {:<6} est. {} ({:.2}x)",
                        c.backend.name(),
                        e.workers,
                        e.chunk_size,
                        Secs(e.secs),
                        e.speedup
                    )?,
                    Err(r) => writeln!(f, "    {:<9} -     {r}", c.backend.name())?,
                }
            }
        }
        writeln!(f, "  origin: {}", self.origin)?;
        if !self.replans.is_empty() {
            writeln!(f, "  re-planned while the last run ran:")?;
            for r in &self.replans {
                writeln!(f, "    - {r}")?;
            }
        }
        writeln!(f, "  reasons:")?;
        for r in &self.reasons {
            writeln!(f, "    - {r}")?;
        }
        if !self.fallbacks.is_empty() {
            writeln!(f, "  fallbacks:")?;
            for fb in &self.fallbacks {
                writeln!(f, "    - {fb}")?;
            }
        }
        Ok(())
    }
}
