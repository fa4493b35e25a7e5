//! After the sample, for a job that worker processes could run: what they cost on this
//! machine (measured once per process), and whether they can be trusted with the task
//! (a few items already run here, run again on a worker: see [`verify`]).

use crate::options::Options;
use crate::plan::Backend;
use crate::probe::{self, MachineProfile};
use crate::process::TaskCall;
use crate::process::verify::{self, Checked};
use crate::stats::SampleStats;

/// Measures the process costs into `machine` and checks the task on a worker. An
/// automatic choice that fails the check forbids processes in `options`; for a job
/// pinned to processes, returns why they cannot be trusted (its items then fail rather
/// than run elsewhere).
pub(crate) fn costs_and_trust<T, O>(
    stats: &SampleStats,
    machine: &mut MachineProfile,
    options: &mut Options,
    call: &TaskCall<T, O>,
    checks: &[Checked],
) -> Option<String> {
    let pinned = options.backend == Some(Backend::Processes);
    let measured = process_costs(stats, machine, options);
    // Checked wherever processes may run the task: when their costs were measured (they
    // can win) or when the job is pinned to them.
    if !(measured || pinned) || options.excluded(Backend::Processes).is_some() {
        return None;
    }
    let why = verify::verify(call.task(), checks, stats.mean_item_secs).err()?;
    if pinned {
        Some(why)
    } else {
        options.forbid(Backend::Processes, why);
        None
    }
}

/// Below this much predicted work, the process pool's costs are not measured (that
/// starts processes): the model plans with the defaults, which rule processes out.
const PROCESS_COSTS_MIN_WORK_SECS: f64 = 10e-3;

/// Puts the process pool's measured costs into `machine`, or excludes processes if no
/// worker can start. `false` when the job is too small to measure them.
fn process_costs(stats: &SampleStats, machine: &mut MachineProfile, options: &mut Options) -> bool {
    let work = stats
        .remaining_items
        .map_or(f64::INFINITY, |n| n as f64 * stats.mean_item_secs);
    if work < PROCESS_COSTS_MIN_WORK_SECS {
        return false;
    }
    match crate::process::costs::costs() {
        Ok(c) => {
            machine.overheads.process_start_secs = c.start_secs;
            machine.overheads.process_chunk_secs = c.chunk_secs;
            machine.fallbacks.extend(c.fallbacks.iter().cloned());
            // From now on the machine's profile reports them too.
            let measured = |name: &str, secs: f64| probe::overhead::Measured {
                secs,
                fallback: c.fallbacks.iter().find(|f| f.measurement == name).cloned(),
            };
            probe::overhead::process_overheads(|| {
                (
                    measured("process_start", c.start_secs),
                    measured("process_chunk", c.chunk_secs),
                )
            });
        }
        Err(e) => options.forbid(
            Backend::Processes,
            format!("worker processes could not start: {e}"),
        ),
    }
    true
}
