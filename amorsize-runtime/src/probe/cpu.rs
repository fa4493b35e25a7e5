//! The CPU budget and, for information, the machine's logical and physical cores.

use super::Fallback;

/// What the probe knows about CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Cpu {
    /// Threads that may run at once.
    pub(super) budget: usize,
    /// Online logical CPUs of the machine (at least `budget`).
    pub(super) logical: usize,
    /// Physical cores of the machine (between 1 and `logical`).
    pub(super) physical: usize,
}

/// Reads the CPU budget and core counts, with a [`Fallback`] when the budget is unknown.
///
/// The budget is `std::thread::available_parallelism()`, which on Linux honours the
/// affinity mask and the cgroup CPU quota (v1 and v2): a container given 2 of 64 CPUs gets
/// 2. The core counts describe the machine, not this process, so they can exceed the
/// budget; they are clamped so that `1 <= physical <= logical` and `budget <= logical`
/// always hold, whatever odd values the platform reports.
pub(super) fn detect() -> (Cpu, Option<Fallback>) {
    let (budget, fallback) = match std::thread::available_parallelism() {
        Ok(n) => (n.get(), None),
        Err(e) => (
            1,
            Some(Fallback {
                measurement: "cpu_budget",
                default: 1.0,
                why: format!("available_parallelism failed: {e}"),
            }),
        ),
    };
    let logical = machine_logical_cpus().max(budget);
    let physical = num_cpus::get_physical().clamp(1, logical);
    let cpu = Cpu {
        budget,
        logical,
        physical,
    };
    (cpu, fallback)
}

/// Online CPUs of the whole machine. `num_cpus::get()` would give this process's share
/// (affinity, quota), which is what `budget` already says.
#[cfg(unix)]
fn machine_logical_cpus() -> usize {
    // SAFETY: `sysconf` takes a plain integer name, touches no memory of ours and is
    // thread-safe; an unknown name returns -1, which is handled below.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online)
        .ok()
        .filter(|&n| n >= 1)
        .unwrap_or_else(num_cpus::get)
}

#[cfg(not(unix))]
fn machine_logical_cpus() -> usize {
    num_cpus::get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invariants_hold() {
        let (cpu, _) = detect();
        assert!(cpu.budget >= 1);
        assert!(cpu.budget <= cpu.logical);
        assert!(1 <= cpu.physical && cpu.physical <= cpu.logical);
    }
}
