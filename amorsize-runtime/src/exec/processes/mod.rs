//! The process executor: the caller's thread pulls chunks, encodes their items and
//! hands them to worker processes; replies come back one frame per item and are
//! decoded and reassembled in input order on the caller's thread.
//!
//! Conventions of the [pipelined executor](super::pipeline): at most `2 × workers`
//! chunks in flight (so a lazy source is never drained beyond that), results in chunk
//! order. A failure that propagates stops dispatching and reaches the caller; dropping
//! the iterator (a consumer that stopped early) stops too. Either way the items in
//! flight are no longer wanted: their workers are killed rather than waited for (an
//! item may hang), and idle workers go back to the pool.
//!
//! Each piece of a chunk sent to a worker starts with a `Ping` that the worker answers
//! when it reaches the piece, before its first item. A worker that dies fails the item
//! it was running (the first unanswered item of its oldest piece, if it had reached
//! that piece: it answers items in order, one frame each, before starting the next),
//! keeps the items it had answered, and its unstarted items go to the other workers or
//! to its replacement. So every item runs at most once, and gets an output or an
//! error. A worker whose current item runs past the job's item timeout is killed, and
//! that item fails as timed out. When no worker can be started (the executable was
//! deleted or replaced, say), the items that have no worker left fail as not run;
//! nothing runs in the caller.
//!
//! What happens when a worker speaks (waiting for its events, replies, deaths, item
//! timeouts) is in [`events`]; this file holds the job's state, sending chunks and the
//! iterator.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::plumbing::ChunkFold;
use crate::process::frame;
use crate::process::handle::{MAX_REPLY_PAUSE, Worker};
use crate::process::idle;
use crate::process::task_call::{Reply, TaskCall, serialize};

mod events;

use events::Waited;

/// How long a worker's replies may gather before they are read: a quarter of a chunk
/// (`chunk_secs`; two chunks per worker are in flight, so it never waits for work) and
/// of the item timeout, at most [`MAX_REPLY_PAUSE`]; nothing when the chunk's time is
/// not known.
fn reply_pause(chunk_secs: Option<f64>, item_timeout: Option<Duration>) -> Duration {
    let Some(chunk) = chunk_secs else {
        return Duration::ZERO;
    };
    let mut pause = Duration::try_from_secs_f64(chunk / 4.0)
        .unwrap_or(MAX_REPLY_PAUSE)
        .min(MAX_REPLY_PAUSE);
    if let Some(limit) = item_timeout {
        pause = pause.min(limit / 4);
    }
    pause
}

/// One encoded item on its way to a worker.
struct Sent {
    index: usize,
    /// Position in its chunk.
    offset: usize,
    payload: Vec<u8>,
}

/// Items of one chunk sent to one worker, answered in order from `next`.
struct Piece {
    seq: u64,
    items: Vec<Sent>,
    next: usize,
    /// The worker answered the piece's `Ping`: it has started on the piece's items.
    reached: bool,
}

/// A worker and the pieces it owes replies for, oldest first.
struct Slot {
    worker: Worker,
    pieces: VecDeque<Piece>,
    /// Why the worker said it is giving up (`Fatal`), for the error that follows.
    fatal: Option<String>,
    /// When the worker's current item began, as far as the parent can tell: its last
    /// reply, or when it was given work while idle.
    since: Instant,
    /// The worker was killed for running an item past this limit.
    timed_out: Option<Duration>,
}

impl Slot {
    fn new(worker: Worker) -> Slot {
        Slot {
            worker,
            pieces: VecDeque::new(),
            fatal: None,
            since: Instant::now(),
            timed_out: None,
        }
    }
}

/// A chunk's outputs as they arrive.
struct ChunkBuf<O> {
    /// Input index of the chunk's first item (its items are consecutive).
    first: usize,
    outs: Vec<Option<O>>,
    missing: usize,
}

/// An iterator over the partial results of each chunk, in input order, while worker
/// processes run the items.
pub(crate) struct Processes<'a, T, O, K: ChunkFold<O>, Src> {
    call: &'a TaskCall<T, O>,
    fold: &'a K,
    src: Src,
    chunk: usize,
    window: u64,
    slots: Vec<Slot>,
    chunks: BTreeMap<u64, ChunkBuf<O>>,
    requeue: VecDeque<Piece>,
    next_send: u64,
    next_emit: u64,
    done: bool,
    /// The first failure that propagates (no `catch_unwind()`).
    failure: Option<Error>,
    /// Why no more workers can be had in this job: after one start failed, later items
    /// without a worker fail at once instead of trying again.
    cannot_start: Option<String>,
    /// The longest an item may run on a worker.
    item_timeout: Option<Duration>,
    /// A chunk's expected time, when known: how long workers' replies may gather.
    chunk_secs: Option<f64>,
    /// Events from busy workers and the time between them, in all: the time of an
    /// item where the plan did not say (a fully pinned plan samples nothing).
    observed: (u32, f64),
}

impl<'a, T, O, K, Src> Processes<'a, T, O, K, Src>
where
    K: ChunkFold<O>,
    Src: Iterator<Item = (usize, T)>,
{
    /// Runs the items of `src` on `workers`, `chunk` items at a time. With no workers,
    /// one is started for the first chunk; if that fails, every item fails as not run
    /// with `cannot_start` (or the start error) as the cause.
    pub(crate) fn new(
        call: &'a TaskCall<T, O>,
        fold: &'a K,
        workers: Vec<Worker>,
        src: Src,
        chunk: usize,
    ) -> Self {
        let n = workers.len().max(1);
        Processes {
            call,
            fold,
            src,
            chunk: chunk.max(1),
            window: crate::limits::in_flight_chunks(n) as u64,
            slots: workers.into_iter().map(Slot::new).collect(),
            chunks: BTreeMap::new(),
            requeue: VecDeque::new(),
            next_send: 0,
            next_emit: 0,
            done: false,
            failure: None,
            cannot_start: None,
            item_timeout: None,
            chunk_secs: None,
            observed: (0, 0.0),
        }
    }

    /// Tells the executor the expected time of an item, so that replies that come
    /// close together are read a few at a time (see [`Worker::set_reply_pause`]).
    pub(crate) fn expected_item_secs(mut self, secs: f64) -> Self {
        let chunk = secs * self.chunk as f64;
        self.chunk_secs = (chunk.is_finite() && chunk > 0.0).then_some(chunk);
        self
    }

    /// Kills a worker whose item runs longer than `limit`, failing that item.
    pub(crate) fn item_timeout(mut self, limit: Option<Duration>) -> Self {
        self.item_timeout = limit;
        self
    }

    /// Fails every item that finds no worker with `why`, without trying to start one.
    pub(crate) fn cannot_start(mut self, why: String) -> Self {
        self.cannot_start = Some(why);
        self
    }

    /// Sends re-queued pieces, then new chunks until the window is full.
    fn fill(&mut self) {
        while let Some(p) = self.requeue.pop_front() {
            self.dispatch(p);
        }
        while self.failure.is_none() && !self.done && self.next_send - self.next_emit < self.window
        {
            let items: Vec<(usize, T)> = self.src.by_ref().take(self.chunk).collect();
            let Some(&(first, _)) = items.first() else {
                self.done = true;
                break;
            };
            let seq = self.next_send;
            self.next_send += 1;
            let n = items.len();
            self.chunks.insert(
                seq,
                ChunkBuf {
                    first,
                    outs: (0..n).map(|_| None).collect(),
                    missing: n,
                },
            );
            let mut sent = Vec::with_capacity(n);
            for (offset, (index, item)) in items.into_iter().enumerate() {
                let mut payload = Vec::new();
                match self.call.encode(&item, &mut payload) {
                    Ok(()) => sent.push(Sent {
                        index,
                        offset,
                        payload,
                    }),
                    Err(e) => self.complete(seq, offset, index, Reply::Failed(serialize(index, e))),
                }
            }
            if !sent.is_empty() {
                self.dispatch(Piece {
                    seq,
                    items: sent,
                    next: 0,
                    reached: false,
                });
            }
        }
    }
}

impl<T, O, K: ChunkFold<O>, Src> Processes<'_, T, O, K, Src> {
    /// Records what became of item `index` (at `offset` of chunk `seq`).
    fn complete(&mut self, seq: u64, offset: usize, index: usize, reply: Reply<'_>) {
        let out = self.call.finish(index, reply);
        let Some(buf) = self.chunks.get_mut(&seq) else {
            return;
        };
        match out {
            Ok(o) => buf.outs[offset] = Some(o),
            Err(e) => {
                self.failure.get_or_insert(e);
            }
        }
        buf.missing = buf.missing.saturating_sub(1);
    }

    /// Fails every item of `piece` from its `next` on: they were never run.
    fn fail_piece(&mut self, piece: Piece, why: &str) {
        for s in &piece.items[piece.next..] {
            let e = Error::new(s.index, ErrorKind::NotRun, why.to_string());
            self.complete(piece.seq, s.offset, s.index, Reply::Failed(e));
        }
    }

    /// One more worker for this job, unless starting one already failed.
    fn start_worker(&mut self) -> Result<(), String> {
        if let Some(why) = &self.cannot_start {
            return Err(why.clone());
        }
        match idle::checkout_one() {
            Ok(w) => {
                self.slots.push(Slot::new(w));
                Ok(())
            }
            Err(e) => {
                let why = format!("no worker process could be started: {e}");
                self.cannot_start = Some(why.clone());
                Err(why)
            }
        }
    }

    /// Sends `piece` to the least busy worker (starting one if none is left).
    fn dispatch(&mut self, mut piece: Piece) {
        // A worker with nothing owed has nothing to say unless it left or died: notice
        // that now, so a piece is not blamed for a death that came before it.
        while let Some(i) = self
            .slots
            .iter()
            .position(|s| s.pieces.is_empty() && !s.worker.events().is_empty())
        {
            match self.slots[i].worker.events().try_recv() {
                Ok(ev) => self.handle(i, ev, true),
                Err(_) => {
                    self.slots.swap_remove(i);
                }
            }
        }
        if self.slots.is_empty()
            && let Err(why) = self.start_worker()
        {
            return self.fail_piece(piece, &why);
        }
        let chunk_secs = self.chunk_secs.or_else(|| {
            let (events, secs) = self.observed;
            (events >= 16).then(|| secs / f64::from(events) * self.chunk as f64)
        });
        let pause = reply_pause(chunk_secs, self.item_timeout);
        let Some(slot) = self.slots.iter_mut().min_by_key(|s| s.pieces.len()) else {
            return self.fail_piece(piece, "no worker process");
        };
        let mut out = Vec::new();
        slot.worker.bind(self.call.task(), &mut out);
        // Answered when the worker reaches this piece: until then, none of its items
        // has started, and a death is not theirs.
        frame::ping(&mut out, piece.seq);
        for s in &piece.items[piece.next..] {
            // The codec keeps every payload below the frame limit.
            let _ = frame::item(&mut out, s.index as u64, &s.payload);
        }
        if slot.pieces.is_empty() {
            slot.since = Instant::now();
        }
        slot.worker.set_reply_pause(pause);
        // If the pipe is gone, the worker's `Closed` event re-dispatches the piece.
        slot.worker.send(out);
        piece.items.drain(..piece.next);
        piece.next = 0;
        piece.reached = false;
        slot.pieces.push_back(piece);
    }

    /// Stops: the items in flight are not wanted any more, so their workers are killed
    /// rather than waited for (an item may hang); workers with nothing in flight stay
    /// for the pool.
    fn stop(&mut self) {
        self.requeue.clear();
        self.done = true;
        self.slots.retain(|s| {
            if s.pieces.is_empty() {
                true
            } else {
                // Its reader thread reaps it.
                s.worker.kill();
                false
            }
        });
    }

    /// The index of the first item of the next chunk to emit that has no result yet.
    fn first_missing(&self) -> usize {
        self.chunks.get(&self.next_emit).map_or(0, |b| {
            b.first + b.outs.iter().position(Option::is_none).unwrap_or(0)
        })
    }

    /// Whether the next chunk to emit is complete.
    fn emittable(&self) -> bool {
        self.chunks
            .get(&self.next_emit)
            .is_some_and(|b| b.missing == 0)
    }
}

impl<T, O, K, Src> Iterator for Processes<'_, T, O, K, Src>
where
    K: ChunkFold<O>,
    Src: Iterator<Item = (usize, T)>,
{
    type Item = K::Acc;

    fn next(&mut self) -> Option<K::Acc> {
        loop {
            if let Some(e) = self.failure.take() {
                self.stop();
                e.resume();
            }
            if self.emittable()
                && let Some(buf) = self.chunks.remove(&self.next_emit)
            {
                self.next_emit += 1;
                return Some(self.fold.fold(buf.outs.into_iter().flatten()));
            }
            self.fill();
            // Pieces that failed on the spot may have completed chunks: emit those
            // before waiting on busy workers.
            if self.failure.is_some() || self.emittable() {
                continue;
            }
            if self.done && self.next_emit == self.next_send {
                return None;
            }
            match self.wait() {
                Waited::Event(i, ev) => self.handle(i, ev, true),
                Waited::Deadline => self.enforce_timeout(),
                Waited::Idle if !self.requeue.is_empty() => {}
                Waited::Idle => {
                    // Nothing owed and the chunk still incomplete: replies were lost,
                    // which the bookkeeping above rules out. Fail rather than hang.
                    let index = self.first_missing();
                    if let Some(buf) = self.chunks.get_mut(&self.next_emit) {
                        buf.missing = 0;
                    }
                    self.failure.get_or_insert(Error::new(
                        index,
                        ErrorKind::NotRun,
                        "replies from worker processes were lost (a bug in amorsize)",
                    ));
                }
            }
        }
    }
}

impl<T, O, K: ChunkFold<O>, Src> Drop for Processes<'_, T, O, K, Src> {
    fn drop(&mut self) {
        // Stopped early or unwinding: kill what is in flight, return the idle workers.
        self.stop();
        for slot in self.slots.drain(..) {
            idle::check_in(slot.worker);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_gather_for_a_fraction_of_a_chunk_and_of_the_item_timeout() {
        let ms = Duration::from_millis;
        assert_eq!(reply_pause(None, None), Duration::ZERO);
        assert_eq!(reply_pause(Some(6e-3), None), MAX_REPLY_PAUSE);
        assert_eq!(reply_pause(Some(200e-6), None), Duration::from_micros(50));
        assert_eq!(
            reply_pause(Some(6e-3), Some(ms(1))),
            Duration::from_micros(250)
        );
        assert_eq!(reply_pause(Some(1e300), None), MAX_REPLY_PAUSE);
    }
}
