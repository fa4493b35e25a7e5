//! What the machine is: CPU budget, memory, and the measured fixed costs of each backend.
//!
//! [`profile`] is the profile the runtime plans with: the first call reads the CPU
//! budget and memory; the overheads come from the disk cache, or are measured once on
//! a background thread (a few milliseconds) while jobs plan with the defaults. [`MachineProfile::detect`] returns an
//! owned copy, e.g. to change fields for a what-if question to [`crate::model::plan`].
//!
//! ```
//! use amorsize::probe::{self, MachineProfile};
//!
//! let m: &MachineProfile = probe::profile();
//! assert!(m.cpu_budget >= 1 && m.cpu_budget <= m.logical_cores);
//! assert!(m.overheads.thread_start_secs > 0.0);
//! for f in &m.fallbacks {
//!     eprintln!("not measured: {f}"); // e.g. "memory: used default 4.294967296e9 (...)"
//! }
//! // Measured once per machine: later calls, and later runs, reuse the measurement.
//! assert_eq!(m.cpu_budget, probe::profile().cpu_budget);
//! ```
//!
//! Every overhead is measured with quality checks (warm-up, repetitions, median; a
//! median below the clock's noise, absurdly far from the default, or with a spread wider
//! than itself is rejected). A rejected or impossible measurement uses the documented
//! default from [`Overheads::default`] and is listed in [`MachineProfile::fallbacks`],
//! so a plan can say which of its inputs were not measured.
//!
//! Memory is read on Linux from the cgroup (v1 or v2) that `/proc/self/cgroup` names,
//! found through `/proc/self/mountinfo`, taking the tightest limit of the group and its
//! ancestors, and from `MemAvailable` in `/proc/meminfo`. Elsewhere, or when none of
//! that is readable, the model plans with 4 GiB and records a fallback.

mod calibration;
mod cgroup;
mod cpu;
mod memory;
pub(crate) mod overhead;

use std::fmt;
use std::sync::OnceLock;

use overhead::Measured;

/// One machine measurement that could not be trusted and fell back to a documented
/// default.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Fallback {
    /// Which measurement, e.g. `thread_start`.
    pub measurement: &'static str,
    /// The default used instead, in seconds (or bytes for memory).
    pub default: f64,
    /// Why the measurement was rejected.
    pub why: String,
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: used default {:e} ({})",
            self.measurement, self.default, self.why
        )
    }
}

/// Memory the job may use.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Memory {
    /// The tightest cgroup limit over this process's group and its ancestors, if any.
    pub limit_bytes: Option<u64>,
    /// Usage of the group that has that limit.
    pub usage_bytes: Option<u64>,
    /// `MemAvailable` from `/proc/meminfo` (or the platform's equivalent).
    pub available_bytes: Option<u64>,
    /// What the model may plan with: min(limit - usage, available).
    pub usable_bytes: u64,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            limit_bytes: None,
            usage_bytes: None,
            available_bytes: None,
            usable_bytes: u64::MAX,
        }
    }
}

/// Measured fixed costs of going parallel, in seconds.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Overheads {
    /// Spawn and join one `std::thread` (the cost of one new Threads-pool worker).
    pub thread_start_secs: f64,
    /// Start a job on a warm rayon pool and wait for it (fixed cost per call).
    pub rayon_start_secs: f64,
    /// Hand one chunk to a worker thread and get its result back.
    pub chunk_handoff_secs: f64,
    /// Start a worker process of this executable and wait for its handshake.
    pub process_start_secs: f64,
    /// Send one chunk to a worker process and get its result back (framing, pipes).
    pub process_chunk_secs: f64,
    /// Per item sent to a worker process, beyond encoding and decoding it: the parent's
    /// share of framing one request and one reply (each reply is its own frame, so a
    /// worker that dies loses only the item it was running).
    pub process_item_secs: f64,
}

impl Default for Overheads {
    /// The documented defaults: typical figures on a small Linux VM, used when a
    /// measurement cannot be trusted.
    fn default() -> Self {
        Overheads {
            thread_start_secs: 55e-6,
            rayon_start_secs: 15e-6,
            chunk_handoff_secs: 2e-6,
            process_start_secs: 1e-3,
            process_chunk_secs: 30e-6,
            process_item_secs: 0.7e-6,
        }
    }
}

/// What this machine is, as the cost model needs it.
///
/// ```
/// use amorsize::MachineProfile;
/// let m = MachineProfile::detect();
/// assert!(m.cpu_budget >= 1);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct MachineProfile {
    /// Threads that may run at once: `available_parallelism()` (affinity, cgroup quota).
    pub cpu_budget: usize,
    /// Logical CPUs of the machine, for information.
    pub logical_cores: usize,
    /// Physical cores of the machine, for information.
    pub physical_cores: usize,
    /// Threads of the rayon pool a call would use (the current pool).
    pub rayon_threads: usize,
    /// Memory.
    pub memory: Memory,
    /// Measured fixed costs.
    pub overheads: Overheads,
    /// Measurements that fell back to defaults.
    pub fallbacks: Vec<Fallback>,
    /// The cluster as measured through its broker, when a job found one with workers of
    /// this build ([`Backend::Cluster`](crate::Backend::Cluster)); `None` keeps the
    /// cluster out of the plan.
    pub cluster: Option<ClusterProfile>,
}

/// What the cluster backend measured through its NATS JetStream broker: the workers of
/// this build that answered, and what moving a chunk through the broker costs.
///
/// # Examples
///
/// ```
/// use amorsize::{ClusterProfile, MachineProfile};
/// let mut m = MachineProfile::default();
/// m.cluster = Some(ClusterProfile::new(8, 1e-3, 2e-9));
/// assert_eq!(m.cluster.as_ref().map(|c| c.workers), Some(8));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ClusterProfile {
    /// Items that can run at once on the workers of this build that answered.
    pub workers: usize,
    /// One small chunk through the broker to a worker and its result back.
    pub chunk_secs: f64,
    /// Each further byte of a chunk or its result through the broker.
    pub byte_secs: f64,
}

impl ClusterProfile {
    /// A cluster of `workers` slots, `chunk_secs` per chunk round trip and `byte_secs`
    /// per byte moved.
    pub fn new(workers: usize, chunk_secs: f64, byte_secs: f64) -> ClusterProfile {
        ClusterProfile {
            workers,
            chunk_secs,
            byte_secs,
        }
    }
}

impl Default for MachineProfile {
    /// One CPU, no memory limit, default overheads: a base for what-if questions.
    fn default() -> Self {
        MachineProfile {
            cpu_budget: 1,
            logical_cores: 1,
            physical_cores: 1,
            rayon_threads: 1,
            memory: Memory::default(),
            overheads: Overheads::default(),
            fallbacks: Vec::new(),
            cluster: None,
        }
    }
}

impl MachineProfile {
    /// An owned copy of this machine's profile ([`profile`]), for what-if questions.
    ///
    /// Everything comes from the cached profile (measured once per process), except
    /// [`rayon_threads`](Self::rayon_threads), which is read again because it depends
    /// on the calling thread: inside `pool.install(..)` it is that pool's size.
    ///
    /// # Examples
    ///
    /// ```
    /// use amorsize::MachineProfile;
    ///
    /// let mut m = MachineProfile::detect();
    /// assert!(m.cpu_budget >= 1);
    /// // What if this machine had 64 CPUs?
    /// m.cpu_budget = 64;
    /// assert_eq!(amorsize::probe::profile().cpu_budget, MachineProfile::detect().cpu_budget);
    /// ```
    pub fn detect() -> MachineProfile {
        let mut m = profile().clone();
        m.rayon_threads = rayon::current_num_threads();
        m
    }
}

/// The profile of this machine the runtime plans with.
///
/// The CPU budget and memory are read on the first call (from any thread). The fixed
/// costs ([`Overheads`]) come from the disk cache when an earlier run on this machine
/// measured them; otherwise they are measured once, on a thread of their own, and
/// until that is done this returns the documented defaults, each listed in
/// [`MachineProfile::fallbacks`] as "not measured yet". So no job ever waits for a
/// measurement; the measured costs are kept on disk for later runs.
///
/// Each call is a few atomic loads and returns a `&'static` that stays the same once
/// the costs are measured (or read from disk).
///
/// The process pool's costs ([`Overheads::process_start_secs`],
/// [`Overheads::process_chunk_secs`]) are not measured here: the probe does not start
/// processes. They are the defaults (or the disk cache's) until the process pool has
/// measured them (when it first starts workers).
///
/// [`MachineProfile::rayon_threads`] here is the size of the pool the *first* caller was
/// in (usually the global pool); [`MachineProfile::detect`] reads it for the caller.
///
/// # Examples
///
/// ```
/// let m = amorsize::probe::profile();
/// assert!(m.overheads.rayon_start_secs.is_finite());
/// assert_eq!(m.cpu_budget, amorsize::probe::profile().cpu_budget);
/// ```
pub fn profile() -> &'static MachineProfile {
    static WITH_PROCESS: OnceLock<MachineProfile> = OnceLock::new();
    let base = match measured().get() {
        Some(m) => m,
        None => provisional(),
    };
    match overhead::measured_process_overheads() {
        Some(costs) if measured().get().is_some() => {
            WITH_PROCESS.get_or_init(|| with_process_costs(base.clone(), costs))
        }
        _ => base,
    }
}

/// The profile with measured (or remembered) overheads, once there is one.
fn measured() -> &'static OnceLock<MachineProfile> {
    static MEASURED: OnceLock<MachineProfile> = OnceLock::new();
    &MEASURED
}

/// The profile to plan with before the overheads are known: read from the disk cache
/// if an earlier run measured them (then it is the measured profile), else the
/// defaults while a background thread measures them.
fn provisional() -> &'static MachineProfile {
    static PROVISIONAL: OnceLock<MachineProfile> = OnceLock::new();
    PROVISIONAL.get_or_init(|| {
        let quick = quick_profile();
        if let Some(c) = calibration::remembered() {
            let m = measured().get_or_init(|| c.apply(quick.clone()));
            return m.clone();
        }
        start_measuring(quick.clone());
        let mut m = quick;
        for name in ["thread_start", "chunk_handoff", "rayon_start"] {
            m.fallbacks.push(Fallback {
                measurement: name,
                default: default_secs(name),
                why: "not measured yet: measuring in the background".into(),
            });
        }
        m
    })
}

/// The documented default of one overhead.
fn default_secs(name: &str) -> f64 {
    let d = Overheads::default();
    match name {
        "thread_start" => d.thread_start_secs,
        "chunk_handoff" => d.chunk_handoff_secs,
        _ => d.rayon_start_secs,
    }
}

/// What can be read at once: CPU budget, memory, the rayon pool's size; default
/// overheads.
fn quick_profile() -> MachineProfile {
    let mut fallbacks = Vec::new();
    let (cpu, cpu_fallback) = cpu::detect();
    fallbacks.extend(cpu_fallback);
    let (memory, memory_fallback) = memory::detect();
    fallbacks.extend(memory_fallback);
    MachineProfile {
        cpu_budget: cpu.budget,
        logical_cores: cpu.logical,
        physical_cores: cpu.physical,
        rayon_threads: rayon::current_num_threads(),
        memory,
        overheads: Overheads::default(),
        fallbacks,
        cluster: None,
    }
}

/// Measures the overheads on a thread of their own (no job waits for it), then
/// publishes the profile and keeps the measurements on disk. If the thread cannot
/// start, the defaults stay.
fn start_measuring(quick: MachineProfile) {
    let _ = std::thread::Builder::new()
        .name("amorsize-probe".into())
        .spawn(move || {
            let read_fallbacks = quick.fallbacks.len();
            let m = measure_overheads(quick);
            if m.fallbacks.len() == read_fallbacks {
                calibration::remember(&m.overheads, false);
            }
            let _ = measured().set(m);
        });
}

/// Measures the fixed costs on top of `quick`.
fn measure_overheads(quick: MachineProfile) -> MachineProfile {
    let mut m = quick;
    // Threads first, rayon last: measuring rayon leaves its workers spinning for a
    // moment, which would compete for the CPUs with the other measurements.
    m.overheads.thread_start_secs =
        secs_noting_fallback(overhead::thread_start(), &mut m.fallbacks);
    m.overheads.chunk_handoff_secs =
        secs_noting_fallback(overhead::chunk_handoff(), &mut m.fallbacks);
    m.overheads.rayon_start_secs = secs_noting_fallback(overhead::rayon_start(), &mut m.fallbacks);
    m
}

/// Waits until the overheads are measured or read from disk (for tests that compare
/// profiles before and after).
#[cfg(test)]
pub(crate) fn wait_measured() -> &'static MachineProfile {
    provisional();
    loop {
        if let Some(m) = measured().get() {
            return m;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The profile with the process pool's measured costs (and their fallbacks) in place.
fn with_process_costs(
    mut m: MachineProfile,
    (start, chunk): &(Measured, Measured),
) -> MachineProfile {
    m.overheads.process_start_secs = secs_noting_fallback(start, &mut m.fallbacks);
    m.overheads.process_chunk_secs = secs_noting_fallback(chunk, &mut m.fallbacks);
    if start.fallback.is_none() && chunk.fallback.is_none() {
        calibration::remember(&m.overheads, true);
    }
    m
}

/// The seconds of a measurement, recording its fallback if it has one.
fn secs_noting_fallback(m: &Measured, fallbacks: &mut Vec<Fallback>) -> f64 {
    fallbacks.extend(m.fallback.clone());
    m.secs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only unit test that sets the process slot (it is global to the test binary).
    #[test]
    fn process_costs_join_the_profile_once_measured() {
        let before = wait_measured();
        let mut calls = 0;
        let first = overhead::process_overheads(|| {
            calls += 1;
            (
                Measured {
                    secs: 2e-3,
                    fallback: None,
                },
                Measured::fallback("process_chunk", 30e-6, "test".into()),
            )
        });
        let second = overhead::process_overheads(|| unreachable!("measured twice"));
        assert_eq!(calls, 1);
        assert!(std::ptr::eq(first, second));

        let after = profile();
        assert_eq!(after.overheads.process_start_secs, 2e-3);
        assert_eq!(after.overheads.process_chunk_secs, 30e-6);
        assert_eq!(
            after.fallbacks.last().map(|f| f.measurement),
            Some("process_chunk")
        );
        // Everything else is the same measurement, not a new one.
        assert_eq!(
            after.overheads.thread_start_secs,
            before.overheads.thread_start_secs
        );
        assert_eq!(after.cpu_budget, before.cpu_budget);
        assert!(std::ptr::eq(after, profile()));
    }
}
