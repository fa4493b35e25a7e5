//! What the machine is: CPU budget, memory, and the measured fixed costs of each backend.
//!
//! [`MachineProfile::detect`] reads the CPU budget and memory and measures the
//! overheads once per process (cached); [`profile`] is the cached copy the runtime uses.

use std::fmt;

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
}

impl Default for Overheads {
    /// The documented defaults, from DESIGN.md §8 (a 2-vCPU Linux VM).
    fn default() -> Self {
        Overheads {
            thread_start_secs: 55e-6,
            rayon_start_secs: 15e-6,
            chunk_handoff_secs: 2e-6,
            process_start_secs: 1e-3,
            process_chunk_secs: 30e-6,
        }
    }
}

/// What this machine is, as the cost model needs it.
///
/// ```
/// use amorsize_runtime::MachineProfile;
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
        }
    }
}

impl MachineProfile {
    /// Detects this machine: CPU budget and memory read now, overheads measured once per
    /// process and cached.
    pub fn detect() -> MachineProfile {
        profile().clone()
    }
}

/// The cached profile of this machine, measured on first use.
pub fn profile() -> &'static MachineProfile {
    static PROFILE: std::sync::OnceLock<MachineProfile> = std::sync::OnceLock::new();
    PROFILE.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        MachineProfile {
            cpu_budget: cpus,
            logical_cores: num_cpus::get(),
            physical_cores: num_cpus::get_physical(),
            rayon_threads: rayon::current_num_threads(),
            ..MachineProfile::default()
        }
    })
}
