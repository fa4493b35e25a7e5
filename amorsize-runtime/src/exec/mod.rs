//! Executors: run the items left after the sample on the planned backend and hand their
//! results back in input order.
//!
//! Every executor works in chunks: the caller's thread pulls items from the source
//! (which need not be `Send`), groups them into chunks of the planned size, and hands
//! them to workers; each worker folds a chunk into one partial result (a `Vec` of
//! outputs for most consumers) and the partial results are reassembled in chunk order.
//! At most `2 × workers` chunks are in flight, so a lazy source is never drained beyond
//! that window.

mod blocking;
mod execute;
mod pipeline;
#[cfg(unix)]
mod processes;
mod window;

pub(crate) use blocking::set_idle_timeout as set_threads_idle_timeout;
#[cfg(unix)]
pub(crate) use execute::ProcessWorkers;
pub(crate) use execute::{Rest, Run, execute};
pub(crate) use pipeline::Pipeline;
#[cfg(unix)]
pub(crate) use processes::Processes;
pub(crate) use window::Windowed;
