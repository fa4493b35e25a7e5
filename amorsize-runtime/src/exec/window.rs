//! The windowed executor, for calls made on a rayon worker thread: the caller must not
//! block that thread on a channel (the pool could deadlock), so it pulls a window of
//! chunks, runs them with rayon's own work-stealing `collect`, and emits them in order.

use rayon::iter::{IntoParallelIterator, ParallelIterator};

use super::{ChunkFold, pull_chunk};
use crate::iter::Stage;

/// An iterator over partial results of each chunk, in order, one window at a time.
pub(crate) struct Windowed<'a, S, K: ChunkFold<S::Out>, T, Src>
where
    S: Stage<T>,
{
    src: Src,
    stage: &'a S,
    fold: &'a K,
    chunk: usize,
    window: usize,
    ready: std::vec::IntoIter<K::Acc>,
    done: bool,
}

impl<'a, S, K, T, Src> Windowed<'a, S, K, T, Src>
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    T: Send,
    Src: Iterator<Item = (usize, T)>,
{
    pub(crate) fn new(stage: &'a S, fold: &'a K, src: Src, workers: usize, chunk: usize) -> Self {
        Windowed {
            src,
            stage,
            fold,
            chunk: chunk.max(1),
            window: 4 * workers.max(1),
            ready: Vec::new().into_iter(),
            done: false,
        }
    }
}

impl<S, K, T, Src> Iterator for Windowed<'_, S, K, T, Src>
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    T: Send,
    Src: Iterator<Item = (usize, T)>,
{
    type Item = K::Acc;

    fn next(&mut self) -> Option<K::Acc> {
        loop {
            if let Some(a) = self.ready.next() {
                return Some(a);
            }
            if self.done {
                return None;
            }
            let mut chunks = Vec::with_capacity(self.window);
            while chunks.len() < self.window {
                let c = pull_chunk(&mut self.src, self.chunk);
                if c.is_empty() {
                    self.done = true;
                    break;
                }
                chunks.push(c);
            }
            let (stage, fold) = (self.stage, self.fold);
            let accs: Vec<K::Acc> = chunks
                .into_par_iter()
                .map_init(
                    || stage.state(),
                    |st, items| fold.fold(stage.serial(st, items.into_iter())),
                )
                .collect();
            self.ready = accs.into_iter();
        }
    }
}
