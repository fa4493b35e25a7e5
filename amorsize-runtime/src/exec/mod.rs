//! Executors: run the items left after the sample on the planned backend and hand their
//! results back in input order.
//!
//! Every executor works in chunks: the caller's thread pulls items from the source
//! (which need not be `Send`), groups them into chunks of the planned size, and hands
//! them to workers; each worker folds a chunk into one partial result (a `Vec` of
//! outputs for most consumers) and the partial results are reassembled in chunk order.
//! At most `2 × workers` chunks are in flight, so a lazy source is never drained beyond
//! that window.

mod context;
mod pipeline;
mod pool;
#[cfg(unix)]
mod processes;
mod window;

pub(crate) use context::{Context, context, enter_worker_process};
pub(crate) use pipeline::Pipeline;
pub(crate) use pool::threads_pool;
#[cfg(unix)]
pub(crate) use processes::Processes;
pub(crate) use window::Windowed;

/// How a worker turns the outputs of one chunk into one partial result.
pub(crate) trait ChunkFold<T>: Sync {
    /// The partial result of one chunk.
    type Acc: Send;
    /// Folds one chunk's outputs, in order.
    fn fold<I: Iterator<Item = T>>(&self, items: I) -> Self::Acc;
}

/// Keeps a chunk's outputs as they are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keep;

impl<T: Send> ChunkFold<T> for Keep {
    type Acc = Vec<T>;

    fn fold<I: Iterator<Item = T>>(&self, items: I) -> Vec<T> {
        items.collect()
    }
}

/// One chunk of `(index, item)` pairs with its position in the job.
pub(crate) struct Job<T> {
    pub seq: u64,
    pub items: Vec<(usize, T)>,
}

/// Pulls up to `n` items from `src` into a chunk.
pub(crate) fn pull_chunk<T>(
    src: &mut impl Iterator<Item = (usize, T)>,
    n: usize,
) -> Vec<(usize, T)> {
    let mut v = Vec::with_capacity(n.min(1 << 16));
    v.extend(src.by_ref().take(n));
    v
}
