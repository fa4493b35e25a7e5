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

/// Cuts a source into chunks of consecutive items, counting input indices.
pub(crate) struct Chunker<Src> {
    src: Src,
    next_index: usize,
    size: usize,
}

impl<T, Src: Iterator<Item = T>> Chunker<Src> {
    /// Chunks of `size` items; the first item of `src` has input index `first`.
    pub(crate) fn new(src: Src, first: usize, size: usize) -> Self {
        Chunker {
            src,
            next_index: first,
            size: size.max(1),
        }
    }

    /// The next chunk and the index of its first item, or `None` at the end.
    pub(crate) fn next_chunk(&mut self) -> Option<(usize, Vec<T>)> {
        let mut v = Vec::with_capacity(self.size.min(1 << 16));
        v.extend(self.src.by_ref().take(self.size));
        if v.is_empty() {
            return None;
        }
        let first = self.next_index;
        self.next_index += v.len();
        Some((first, v))
    }
}
