//! The windowed executor, for calls made on a rayon worker thread: the caller must not
//! block that thread on a channel (the pool could deadlock), so it pulls a window of
//! chunks, runs them with rayon's own work-stealing `collect`, and emits them in order.

use rayon::iter::{IntoParallelIterator, ParallelIterator};

use crate::plumbing::{ChunkFold, Chunker, Stage};
use crate::progress::Progress;

/// An iterator over partial results of each chunk, in order, one window at a time.
pub(crate) struct Windowed<'a, S, K: ChunkFold<S::Out>, T, Src>
where
    S: Stage<T>,
{
    src: Chunker<Src>,
    stage: &'a S,
    fold: &'a K,
    window: usize,
    ready: std::vec::IntoIter<K::Acc>,
    done: bool,
    progress: &'a Progress,
}

impl<'a, S, K, T, Src> Windowed<'a, S, K, T, Src>
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    T: Send,
    Src: Iterator<Item = T>,
{
    pub(crate) fn new(
        stage: &'a S,
        fold: &'a K,
        src: Chunker<Src>,
        workers: usize,
        progress: &'a Progress,
    ) -> Self {
        Windowed {
            src,
            stage,
            fold,
            window: crate::limits::nested_window_chunks(workers),
            ready: Vec::new().into_iter(),
            done: false,
            progress,
        }
    }
}

impl<S, K, T, Src> Iterator for Windowed<'_, S, K, T, Src>
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    T: Send,
    Src: Iterator<Item = T>,
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
                match self.src.next_chunk() {
                    Some(c) => chunks.push(c),
                    None => {
                        self.done = true;
                        break;
                    }
                }
            }
            let items: usize = chunks.iter().map(|c| c.1.len()).sum();
            let (stage, fold) = (self.stage, self.fold);
            let accs: Vec<K::Acc> = chunks
                .into_par_iter()
                .map_init(
                    || stage.state(),
                    |st, (first, items)| fold.fold(stage.serial(st, first, items.into_iter())),
                )
                .collect();
            self.progress.add(items);
            self.ready = accs.into_iter();
        }
    }
}
