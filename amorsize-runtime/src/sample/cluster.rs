//! After the sample, for a job the cluster could run: who listens and what a chunk
//! through the broker costs (see [`crate::cluster`]), into the machine's profile, or
//! the reason the cluster cannot run it.

use crate::options::Options;
use crate::plan::Backend;
use crate::probe::MachineProfile;
use crate::process::TaskCall;
use crate::process::verify::Checked;
use crate::stats::SampleStats;

/// Below this much predicted work the broker is not asked: a chunk's round trip
/// through it alone costs about a millisecond.
const CLUSTER_MIN_WORK_SECS: f64 = 20e-3;

/// Puts the cluster's workers and costs into `machine` and checks the task on a worker
/// with the sampled items in `checks`, or forbids the cluster in `options` with the
/// reason (the job then runs here).
pub(crate) fn measure<T, O>(
    stats: &SampleStats,
    machine: &mut MachineProfile,
    options: &mut Options,
    call: &TaskCall<T, O>,
    checks: &[Checked],
) {
    let work = stats
        .remaining_items
        .map_or(f64::INFINITY, |n| n as f64 * stats.mean_item_secs);
    if work < CLUSTER_MIN_WORK_SECS && options.backend != Some(Backend::Cluster) {
        options.forbid(
            Backend::Cluster,
            format!(
                "the rest of the job ({:.1} ms predicted) is too short to send through a broker",
                work * 1e3
            ),
        );
        return;
    }
    let trusted = crate::cluster::measure().and_then(|profile| {
        crate::cluster::verify(call.task(), checks, stats.mean_item_secs).map(|()| profile)
    });
    match trusted {
        Ok(profile) => machine.cluster = Some(profile),
        Err(why) => options.forbid(Backend::Cluster, why),
    }
}
