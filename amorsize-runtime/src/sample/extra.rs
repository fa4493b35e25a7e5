//! Measurements after the timed sample, on a few more real items whose outputs are
//! kept and emitted in order with the sample's: the two-thread efficiency (see
//! [`scaling`]) and, when worker processes are a candidate, what
//! moving items through a pipe costs: encoded sizes and encode/decode times of inputs
//! and outputs, split into the parent's side (encode inputs, decode outputs: serial)
//! and the worker's side (decode inputs, encode outputs: parallel).

use crate::context::Context;
use crate::options::Options;
use crate::plan::Backend;
use crate::plumbing::Stage;
use crate::probe::MachineProfile;
use crate::process::TaskCall;
use crate::stats::SampleStats;

use super::{inner, scaling};

/// Work each of the two threads does for the efficiency measurement, in seconds.
pub(crate) const SCALING_TARGET_SECS: f64 = 2e-3;
/// Most items per thread for it.
pub(crate) const SCALING_MAX_ITEMS: usize = 1 << 16;
/// Only measured when the predicted rest of the job is at least this long.
pub(crate) const SCALING_MIN_WORK_SECS: f64 = 20e-3;
/// The inner speedup is measured only when the predicted rest of the job is at least
/// this long.
pub(crate) const INNER_MIN_WORK_SECS: f64 = 20e-3;
/// Most items whose encoding is measured.
pub(crate) const WIRE_ITEMS: usize = 8;
/// Items are pulled for the encoding measurement only while their predicted work
/// stays under this (at least one is).
pub(crate) const WIRE_WORK_SECS: f64 = 2e-3;

/// Which extra measurements a job needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Wanted {
    /// The two-thread efficiency.
    pub scaling: bool,
    /// The encoding costs and the process pool's, for worker processes.
    pub processes: bool,
    /// The encoding costs and the cluster's, for the cluster.
    pub cluster: bool,
    /// The inner speedup of items that seem to use several CPUs (see [`inner`]).
    pub inner: bool,
}

/// Whether the sampled items mostly waited (on I/O, or on other threads): such work
/// never gets the two-thread check, nor worker processes.
fn mostly_waits(stats: &SampleStats) -> bool {
    stats.cpu_ratio * stats.process_cpu_ratio < 0.5
}

/// Whether a job of computing items is long enough (its remaining items, if known,
/// at its per-item time) for the two-thread efficiency to be measured.
pub(crate) fn scaling_matters(stats: &SampleStats) -> bool {
    let work = stats
        .remaining_items
        .map_or(f64::INFINITY, |n| n as f64 * stats.mean_item_secs);
    !mostly_waits(stats) && work >= SCALING_MIN_WORK_SECS
}

/// Which extra measurements pay for this job, after its sample; forbids processes for
/// work that mostly waits. `has_task`: the stage is a registered task.
pub(crate) fn wanted(
    stats: &SampleStats,
    machine: &MachineProfile,
    options: &mut Options,
    context: Context,
    has_task: bool,
) -> Wanted {
    // Work that mostly waits (on I/O, or on other threads) keeps few CPUs busy: many
    // threads serve it, and a handful of processes cannot beat them.
    if mostly_waits(stats) && options.backend.is_none() {
        options.forbid(
            Backend::Processes,
            "the work mostly waits: more threads serve it better than a few processes",
        );
    }
    let candidate = |b: Backend| {
        has_task
            && context == Context::Free
            && options.excluded(b).is_none()
            && options.backend.is_none_or(|p| p == b)
    };
    let processes = candidate(Backend::Processes);
    // Two-thread efficiency matters only when processes could take over from threads;
    // measured on a busy machine it can read low for work that scales, so it is not
    // risked where it could only turn a parallel plan serial. It runs two items at
    // once: not where the user allowed one worker.
    let scaling = processes
        && options.backend.is_none()
        && machine.cpu_budget >= 2
        && options.max_workers.is_none_or(|w| w >= 2);
    // Other threads' CPU time reads as the item's own parallelism: check it before it
    // keeps outer parallelism away. Inside a rayon worker only rayon is a candidate,
    // and the item's rayon calls already share its pool.
    let inner = stats.process_cpu_ratio >= crate::model::INTERNALLY_PARALLEL_RATIO
        && options.backend.is_none()
        && machine.cpu_budget >= 2
        && context == Context::Free;
    Wanted {
        scaling,
        processes,
        cluster: candidate(Backend::Cluster),
        inner,
    }
}

/// What the extra measurements ran: outputs in order, how many items were pulled, and
/// (when processes are a candidate) the encodings of a few of them to check a worker
/// against.
#[derive(Debug)]
pub(crate) struct Extra<O> {
    pub outputs: Vec<O>,
    pub items: usize,
    pub exhausted: bool,
    #[cfg(unix)]
    pub checks: Vec<crate::process::verify::Checked>,
}

/// Pulls a few more items from `src` (indices from `first_index`), measures with them
/// what `stats` lacks, and runs them: what `wanted` asks for, the encoding of inputs
/// and outputs through `call`.
pub(crate) fn measure<T, S, I>(
    src: &mut I,
    stage: &S,
    st: &mut S::State,
    first_index: usize,
    stats: &mut SampleStats,
    wanted: Wanted,
    call: Option<&TaskCall<T, S::Out>>,
) -> Extra<S::Out>
where
    S: Stage<T>,
    I: Iterator<Item = T>,
    T: Send,
{
    let t = stats.mean_item_secs;
    let work = stats
        .remaining_items
        .map_or(f64::INFINITY, |n| n as f64 * t);
    let mut k = 0;
    if wanted.inner && t > 0.0 && work >= INNER_MIN_WORK_SECS {
        k = ((inner::TARGET_SECS / t).ceil() as usize).clamp(1, inner::MAX_ITEMS);
        if let Some(n) = stats.remaining_items {
            k = k.min(n / 8);
        }
    }
    let mut m = 0;
    if wanted.scaling && t > 0.0 && work >= SCALING_MIN_WORK_SECS {
        m = ((SCALING_TARGET_SECS / t).ceil() as usize).clamp(1, SCALING_MAX_ITEMS);
        if let Some(n) = stats.remaining_items {
            // Never more than a quarter of what is left.
            m = m.min(n / (4 * (1 + 2 * scaling::PAIRS)));
        }
    }
    let wire = match call {
        Some(_) if t > 0.0 => ((WIRE_WORK_SECS / t) as usize).clamp(1, WIRE_ITEMS),
        Some(_) => WIRE_ITEMS,
        None => 0,
    };
    let want = (2 * k + (1 + 2 * scaling::PAIRS) * m).max(wire);
    let mut items: Vec<(usize, T)> = (first_index..).zip(src.by_ref().take(want)).collect();
    let pulled = items.len();
    let exhausted = pulled < want;
    // Inputs are consumed by the run: encode the ones to check a worker with first.
    #[cfg(unix)]
    let mut checks: Vec<crate::process::verify::Checked> = match call {
        Some(r) => items
            .iter()
            .take(wire.min(crate::process::verify::CHECK_ITEMS))
            .filter_map(|(index, x)| {
                let mut input = Vec::new();
                r.encode(x, &mut input).ok()?;
                Some(crate::process::verify::Checked {
                    index: *index,
                    input,
                    output: Vec::new(),
                })
            })
            .collect(),
        None => Vec::new(),
    };
    if let Some(c) = call.and_then(|r| r.input_cost(items.iter().take(wire).map(|(_, x)| x))) {
        stats.in_bytes = c.bytes;
        stats.encode_in_secs = c.encode_secs;
        stats.decode_in_secs = c.decode_secs;
    }
    let after_inner = items.split_off((2 * k).min(items.len()));
    let (mut outputs, speedup) = inner::confined(stage, st, items, k);
    if speedup.is_some() {
        stats.inner_speedup = speedup;
    }
    let (more, e2) = scaling::two_threads(stage, st, after_inner, m);
    outputs.extend(more);
    if e2.is_some() {
        stats.two_thread_efficiency = e2;
    }
    if let Some(c) = call.and_then(|r| r.output_cost(&outputs[..outputs.len().min(wire)])) {
        stats.out_bytes = c.bytes;
        stats.encode_out_secs = c.encode_secs;
        stats.decode_out_secs = c.decode_secs;
    }
    #[cfg(unix)]
    if let Some(r) = call {
        // Checked items are the first pulled, so their outputs are the first ones; an
        // item whose output has no encoding (it failed, under `catch_unwind()`) is not
        // checked.
        let first = first_index;
        checks.retain_mut(|c| {
            match outputs
                .get(c.index - first)
                .and_then(|o| r.encode_output(o))
            {
                Some(bytes) => {
                    c.output = bytes;
                    true
                }
                None => false,
            }
        });
    }
    Extra {
        outputs,
        items: pulled,
        exhausted,
        #[cfg(unix)]
        checks,
    }
}
