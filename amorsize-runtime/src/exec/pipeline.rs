//! The pipelined executor: long-lived worker tasks in a rayon scope, fed through a
//! channel by the caller's thread, results reassembled in order.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::{ChunkFold, Chunker, Job};
use crate::iter::Stage;
use crate::progress::Progress;

/// A chunk's position, its number of input items, and its result (or panic).
type Outcome<A> = (u64, usize, thread::Result<A>);

/// An iterator over the partial results of each chunk, in input order, while `workers`
/// tasks process chunks in a rayon scope.
///
/// Dropping it (the consumer stopped early, or is unwinding) stops the workers: queued
/// chunks are skipped, and the scope that spawned them waits for the running ones.
pub(crate) struct Pipeline<'a, T, A, Src> {
    src: Chunker<Src>,
    window: u64,
    next_send: u64,
    next_emit: u64,
    done: bool,
    pending: BTreeMap<u64, A>,
    jobs: Option<Sender<Job<T>>>,
    results: Receiver<Outcome<A>>,
    stop: &'a AtomicBool,
    progress: &'a Progress,
}

impl<'a, T, A, Src> Pipeline<'a, T, A, Src>
where
    T: Send + 'a,
    A: Send + 'a,
    Src: Iterator<Item = T>,
{
    /// Starts `workers` worker tasks in `scope`, each with its own stage state.
    pub(crate) fn start<S, K>(
        scope: &rayon::Scope<'a>,
        stop: &'a AtomicBool,
        stage: &'a S,
        fold: &'a K,
        src: Chunker<Src>,
        workers: usize,
        progress: &'a Progress,
    ) -> Self
    where
        S: Stage<T>,
        K: ChunkFold<S::Out, Acc = A>,
    {
        let (job_tx, job_rx) = unbounded::<Job<T>>();
        let (res_tx, res_rx) = unbounded::<Outcome<A>>();
        for _ in 0..workers.max(1) {
            let jobs = job_rx.clone();
            let results = res_tx.clone();
            scope.spawn(move |_| work(stage, fold, &jobs, &results, stop));
        }
        Pipeline {
            src,
            window: 2 * workers.max(1) as u64,
            next_send: 0,
            next_emit: 0,
            done: false,
            pending: BTreeMap::new(),
            jobs: Some(job_tx),
            results: res_rx,
            stop,
            progress,
        }
    }

    /// Sends chunks until the window is full or the source ends.
    fn fill(&mut self) {
        while !self.done && self.next_send - self.next_emit < self.window {
            let seq = self.next_send;
            let sent = self.src.next_chunk().is_some_and(|(first, items)| {
                self.jobs
                    .as_ref()
                    .is_some_and(|tx| tx.send(Job { seq, first, items }).is_ok())
            });
            if sent {
                self.next_send += 1;
            } else {
                self.done = true;
                self.jobs = None;
            }
        }
    }
}

/// A worker task: process chunks until the channel closes; skip them once stopped.
fn work<T, S, K>(
    stage: &S,
    fold: &K,
    jobs: &Receiver<Job<T>>,
    results: &Sender<Outcome<K::Acc>>,
    stop: &AtomicBool,
) where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
{
    let mut st = stage.state();
    while let Ok(job) = jobs.recv() {
        if stop.load(Ordering::Relaxed) {
            continue;
        }
        let n = job.items.len();
        let r = catch_unwind(AssertUnwindSafe(|| {
            fold.fold(stage.serial(&mut st, job.first, job.items.into_iter()))
        }));
        if r.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        if results.send((job.seq, n, r)).is_err() {
            break;
        }
    }
}

impl<'a, T, A, Src> Iterator for Pipeline<'a, T, A, Src>
where
    T: Send + 'a,
    A: Send + 'a,
    Src: Iterator<Item = T>,
{
    type Item = A;

    fn next(&mut self) -> Option<A> {
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
                // Every worker is gone with chunks outstanding: only possible if the
                // pool could not run them, which is a bug, not a user error.
                Err(_) => panic!("amorsize: worker tasks ended with chunks outstanding"),
            }
        }
    }
}

impl<T, A, Src> Drop for Pipeline<'_, T, A, Src> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.jobs = None;
    }
}
