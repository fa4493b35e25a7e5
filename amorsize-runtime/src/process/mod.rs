//! The process backend: worker processes of this same executable, each running
//! registered tasks on items it receives over a pipe.
//!
//! - [`registry`]: tasks marked `#[amorsize::task]`, collected at link time (`linkme`),
//!   found by the `TypeId` of the function in the parent and by name on the wire.
//! - [`codec`]: the one seam where values become bytes and back (bincode 2 over serde).
//! - [`frame`]: length-prefixed, size-limited frames of the worker protocol; a malformed
//!   or truncated frame is an error, never a crash or a hang.
//! - [`child`]: the worker's own side, entered from a load-time constructor before
//!   `main` (or from [`crate::init`]) when the environment carries the marker.
//! - [`handle`]: the parent's handle on one worker: starting it, the handshake, a
//!   reader and a writer thread, reaping.
//! - [`idle`]: the pool that keeps idle workers between jobs, and how a job gets its
//!   workers.
//! - [`costs`]: process start and per-chunk round trip, measured once when processes
//!   are first considered.
//! - [`task_call`]: a job's view of its task: encode inputs, turn replies into outputs.
//! - [`verify`]: a few items already run in the caller, run again on a worker and
//!   compared, before processes are trusted with a task (workers never run `main`).
//!
//! Linux is first-class and macOS best effort (both `unix`); elsewhere the backend is
//! excluded with a reason.

#[cfg(unix)]
pub(crate) mod child;
pub(crate) mod codec;
#[cfg(unix)]
pub(crate) mod costs;
pub(crate) mod frame;
#[cfg(unix)]
pub(crate) mod handle;
#[cfg(unix)]
pub(crate) mod idle;
pub(crate) mod registry;
pub(crate) mod task_call;
#[cfg(unix)]
pub(crate) mod verify;

pub use task_call::TaskCall;

use crate::context::is_worker_process;

/// Why this job cannot run on worker processes, if it cannot; `has_task` says whether
/// the stage is one registered task applied per item.
pub(crate) fn unavailable(has_task: bool, item_type: &str) -> Option<String> {
    if !cfg!(unix) {
        return Some(
            "worker processes are not supported on this platform in this version".to_string(),
        );
    }
    if is_worker_process() {
        return Some("this is already an amorsize worker process".to_string());
    }
    // A borrowed item cannot travel to another process, whatever the function: the hint
    // to mark it a task would not help.
    if !has_task && item_type.starts_with('&') {
        return Some(format!(
            "the items are borrowed (`{item_type}`), and a worker process needs owned, \
             serde-encodable items: iterate by value (`into_iter()`) and map a function \
             marked `#[amorsize::task]` to make processes possible"
        ));
    }
    if !has_task {
        return Some(
            "the function is a closure or is not marked #[amorsize::task]; to enable \
             processes, mark a named function `#[amorsize::task]` (serde input and output) \
             and pass it by name: `.map(my_task)`"
                .to_string(),
        );
    }
    None
}
