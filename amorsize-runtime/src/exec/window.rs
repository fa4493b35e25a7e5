//! The windowed executor, for calls made on a rayon worker thread (the caller must not
//! block that thread on a channel: the pool could deadlock), and for items that call
//! rayon themselves (their calls then share the pool with the chunks instead of
//! waiting behind them): it pulls a window of chunks, runs them with rayon's own
//! work-stealing `collect`, and emits them in order.
//! Between windows it checks its [`Watch`] and takes a new course (chunk size, width)
//! when the items drift far off the plan.

use rayon::iter::{IntoParallelIterator, ParallelIterator};

use crate::plan::Backend;
use crate::plumbing::{ChunkFold, Chunker, Feedback, Stage, Watch};
use crate::progress::Progress;

/// Chunks per window for `workers` workers: several each, so that every worker stays
/// busy until the window's last chunk, unless the user capped the workers (`capped`):
/// rayon may run a whole window at once, so then one chunk each.
fn window_chunks(workers: usize, capped: bool) -> usize {
    if capped {
        workers.max(1)
    } else {
        crate::limits::nested_window_chunks(workers)
    }
}

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
    feedback: &'a Feedback,
    watch: Option<Watch<'a>>,
    /// Input index past the last item, when the length is known.
    end: Option<usize>,
    /// The user capped the workers: a window holds no more chunks than that, since
    /// rayon may run all of a window's chunks at once.
    capped: bool,
}

impl<'a, S, K, T, Src> Windowed<'a, S, K, T, Src>
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    T: Send,
    Src: Iterator<Item = T>,
{
    pub(crate) fn new(
        (stage, fold, feedback): (&'a S, &'a K, &'a Feedback),
        src: Chunker<Src>,
        (workers, capped): (usize, bool),
        progress: &'a Progress,
        (watch, end): (Option<Watch<'a>>, Option<usize>),
    ) -> Self {
        Windowed {
            src,
            stage,
            fold,
            window: window_chunks(workers, capped),
            ready: Vec::new().into_iter(),
            done: false,
            progress,
            feedback,
            watch,
            end,
            capped,
        }
    }

    /// A new chunk size and width if the items drifted far off the plan.
    fn steer(&mut self) {
        let Some(watch) = self.watch.as_mut() else {
            return;
        };
        let at = self.src.next_index();
        let remaining = self.end.map(|e| e.saturating_sub(at));
        if let Some(course) = watch.check(at, remaining, Backend::Rayon) {
            let workers = match course.backend {
                Backend::Serial => 1,
                _ => course.workers,
            };
            self.src.replanned(course.chunk_size, workers);
            self.window = window_chunks(workers, self.capped);
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
            self.steer();
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
            let (stage, fold, feedback, progress) =
                (self.stage, self.fold, self.feedback, self.progress);
            let accs: Vec<K::Acc> = chunks
                .into_par_iter()
                .map_init(
                    || stage.state(),
                    |st, (first, items)| {
                        let n = items.len();
                        feedback.time(n, || {
                            if progress.enabled() {
                                let counted = items.into_iter().inspect(|_| progress.add(1));
                                fold.fold(stage.serial(st, first, counted))
                            } else {
                                fold.fold(stage.serial(st, first, items.into_iter()))
                            }
                        })
                    },
                )
                .collect();
            self.ready = accs.into_iter();
        }
    }
}
