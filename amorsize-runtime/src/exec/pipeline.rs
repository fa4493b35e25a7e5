//! The pipelined executor: the caller's thread pulls chunks and spawns one task per
//! chunk into a rayon scope; results come back through a channel and are reassembled
//! in order.
//!
//! Tasks never block: a task that waited for the caller (a long-lived worker loop
//! reading a channel) could be stolen by a pool thread that is itself waiting inside a
//! user's nested rayon call, and the two would wait for each other. A chunk task only
//! runs its chunk and sends the result.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::plumbing::{ChunkFold, Chunker, Stage};
use crate::progress::Progress;

/// A chunk's position, its number of input items, and its result (or panic).
type Outcome<A> = (u64, usize, thread::Result<A>);

/// An iterator over the partial results of each chunk, in input order, while chunk
/// tasks run in a rayon scope; at most `window` chunks are in flight.
///
/// Dropping it (the consumer stopped early, or is unwinding) stops the job: chunks not
/// yet started are skipped, and the scope that spawned them waits for the running ones.
pub(crate) struct Pipeline<'s, 'a, S, K, T, Src>
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
{
    scope: &'s rayon::Scope<'a>,
    stage: &'a S,
    fold: &'a K,
    src: Chunker<Src>,
    window: u64,
    next_send: u64,
    next_emit: u64,
    done: bool,
    pending: BTreeMap<u64, K::Acc>,
    sender: Sender<Outcome<K::Acc>>,
    results: Receiver<Outcome<K::Acc>>,
    stop: &'a AtomicBool,
    progress: &'a Progress,
}

impl<'s, 'a, S, K, T, Src> Pipeline<'s, 'a, S, K, T, Src>
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    T: Send + 'a,
    K::Acc: 'a,
    Src: Iterator<Item = T>,
{
    /// A pipeline over `src` with at most `window` chunks in flight in `scope`.
    pub(crate) fn start(
        scope: &'s rayon::Scope<'a>,
        stop: &'a AtomicBool,
        stage: &'a S,
        fold: &'a K,
        src: Chunker<Src>,
        window: usize,
        progress: &'a Progress,
    ) -> Self {
        let (sender, results) = unbounded();
        Pipeline {
            scope,
            stage,
            fold,
            src,
            window: window.max(1) as u64,
            next_send: 0,
            next_emit: 0,
            done: false,
            pending: BTreeMap::new(),
            sender,
            results,
            stop,
            progress,
        }
    }

    /// Spawns chunk tasks until the window is full or the source ends.
    fn fill(&mut self) {
        while !self.done && self.next_send - self.next_emit < self.window {
            let Some((first, items)) = self.src.next_chunk() else {
                self.done = true;
                break;
            };
            let seq = self.next_send;
            self.next_send += 1;
            let (stage, fold, stop) = (self.stage, self.fold, self.stop);
            let sender = self.sender.clone();
            self.scope
                .spawn(move |_| run_chunk(stage, fold, stop, &sender, seq, first, items));
        }
    }
}

/// One chunk task: runs the chunk with a fresh stage state (skipped once the job has
/// stopped) and sends the result, or the panic, back.
fn run_chunk<T, S, K>(
    stage: &S,
    fold: &K,
    stop: &AtomicBool,
    sender: &Sender<Outcome<K::Acc>>,
    seq: u64,
    first: usize,
    items: Vec<T>,
) where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
{
    // Only a dropped pipeline or a panic sets `stop`; in both cases nobody waits for
    // the skipped chunk (the panic's own result is on its way).
    if stop.load(Ordering::Relaxed) {
        return;
    }
    let n = items.len();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut st = stage.state();
        fold.fold(stage.serial(&mut st, first, items.into_iter()))
    }));
    if r.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    // The receiver is gone only when the consumer stopped early.
    let _ = sender.send((seq, n, r));
}

impl<'a, S, K, T, Src> Iterator for Pipeline<'_, 'a, S, K, T, Src>
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    T: Send + 'a,
    K::Acc: 'a,
    Src: Iterator<Item = T>,
{
    type Item = K::Acc;

    fn next(&mut self) -> Option<K::Acc> {
        loop {
            if let Some(a) = self.pending.remove(&self.next_emit) {
                self.next_emit += 1;
                return Some(a);
            }
            self.fill();
            if self.done && self.next_emit == self.next_send {
                return None;
            }
            match self.results.recv() {
                Ok((seq, n, Ok(a))) => {
                    self.progress.add(n);
                    self.pending.insert(seq, a);
                }
                Ok((_, _, Err(payload))) => {
                    // Stop the other workers; the scope waits for the running chunks
                    // before this panic reaches the caller, as in rayon.
                    self.stop.store(true, Ordering::Relaxed);
                    resume_unwind(payload)
                }
                // The pipeline holds a sender itself, so the channel never closes.
                Err(_) => unreachable!("amorsize: the result channel closed"),
            }
        }
    }
}

impl<S, K, T, Src> Drop for Pipeline<'_, '_, S, K, T, Src>
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
{
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
