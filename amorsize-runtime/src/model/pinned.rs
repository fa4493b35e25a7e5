//! The fully pinned plan: backend, workers and chunk size all given, so nothing is
//! sampled or searched. The one home of its rules, for the job that skips its sample
//! ([`fully_pinned`]) and for the model's own fully pinned candidate ([`workers`]).

use super::input::Controls;
use crate::limits::{MAX_CHUNK, MAX_THREADS, max_processes};
use crate::options::Options;
use crate::plan::{Backend, Plan, Reason};

/// The most workers `backend` may be pinned to with `cpus` CPUs.
fn cap(backend: Backend, cpus: usize) -> usize {
    match backend {
        Backend::Processes => max_processes(cpus),
        _ => MAX_THREADS,
    }
}

/// The workers a plan pinned to `given` gets: at least 1, no more than the items (when
/// the length is known) or than the backend's cap.
pub(super) fn workers(backend: Backend, given: usize, len: Option<usize>, cpus: usize) -> usize {
    let cap = cap(backend, cpus);
    let most = len.map_or(cap, |n| n.clamp(1, cap));
    given.clamp(1, most)
}

/// The plan of a fully pinned job: what the user wrote, clamped to what can run (at
/// least one worker and one item per chunk, no more workers than items or than the
/// backend's cap, chunks no bigger than the executors cut), each clamp recorded, and
/// each value's source named.
pub(crate) fn fully_pinned(options: &Options, len: Option<usize>, cpus: usize) -> Plan {
    let ctl = Controls::new(options);
    let backend = ctl.backend.unwrap_or(Backend::Serial);
    let mut plan = Plan::serial(options.pin_reason("backend", backend.to_string()));
    plan.backend = backend;
    plan.remaining_items = len;
    plan.reasons.extend(ctl.clamped.iter().cloned());
    let given_workers = ctl.max_workers.unwrap_or(1);
    let given_chunk = ctl.chunk_size.unwrap_or(1);
    let used_workers = workers(backend, given_workers, len, cpus);
    let used_chunk = given_chunk.clamp(1, MAX_CHUNK);
    for (option, given, used) in [
        ("max_workers", given_workers, used_workers),
        ("chunk_size", given_chunk, used_chunk),
    ] {
        if given != used {
            plan.reasons.push(Reason::Clamped {
                option,
                given: given.to_string(),
                used: used.to_string(),
            });
        }
    }
    // Named whatever its source: it caps how many items run at once
    // (`Plan::workers_capped`).
    if ctl.max_workers.is_some() {
        plan.reasons
            .push(options.pin_reason("max_workers", given_workers.to_string()));
    }
    plan.workers = if backend == Backend::Serial {
        1
    } else {
        used_workers
    };
    plan.chunk_size = used_chunk;
    plan
}
