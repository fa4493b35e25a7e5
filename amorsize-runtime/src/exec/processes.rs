//! The process executor: the caller's thread pulls chunks, encodes their items and
//! hands them to worker processes; replies come back one frame per item and are
//! decoded and reassembled in input order on the caller's thread.
//!
//! Conventions of the [pipelined executor](super::pipeline): at most `2 × workers`
//! chunks in flight (so a lazy source is never drained beyond that), results in chunk
//! order, a failure that propagates stops dispatching, waits for the work in flight,
//! then reaches the caller; dropping the iterator (a consumer that stopped early) does
//! the same without the failure. Workers go back to the pool afterwards.
//!
//! A worker that dies fails the item it was running (the first unanswered item of its
//! oldest chunk: it answers items in order, one frame each, before starting the next),
//! keeps the items it had answered, and its unstarted items go to the other workers or
//! to its replacement. So every item runs at most once, and gets an output or an error.

use std::collections::{BTreeMap, VecDeque};
use std::panic::resume_unwind;

use crossbeam_channel::Select;

use super::ChunkFold;
use crate::error::{Error, ErrorKind};
use crate::process::frame::{self, FromWorker};
use crate::process::pool::{self, Event, Exit, Worker};
use crate::process::remote::{Remote, Reply, serialize};

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
}

/// A worker and the pieces it owes replies for, oldest first.
struct Slot {
    worker: Worker,
    pieces: VecDeque<Piece>,
    /// Why the worker said it is giving up (`Fatal`), for the error that follows.
    fatal: Option<String>,
}

/// A chunk's outputs as they arrive.
struct ChunkBuf<O> {
    outs: Vec<Option<O>>,
    missing: usize,
}

/// An iterator over the partial results of each chunk, in input order, while worker
/// processes run the items.
pub(crate) struct Processes<'a, T, O, K: ChunkFold<O>, Src> {
    remote: &'a Remote<T, O>,
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
}

impl<'a, T, O, K, Src> Processes<'a, T, O, K, Src>
where
    K: ChunkFold<O>,
    Src: Iterator<Item = (usize, T)>,
{
    /// Runs the items of `src` on `workers`, `chunk` items at a time.
    pub(crate) fn new(
        remote: &'a Remote<T, O>,
        fold: &'a K,
        workers: Vec<Worker>,
        src: Src,
        chunk: usize,
    ) -> Self {
        let n = workers.len().max(1);
        Processes {
            remote,
            fold,
            src,
            chunk: chunk.max(1),
            window: 2 * n as u64,
            slots: workers
                .into_iter()
                .map(|worker| Slot {
                    worker,
                    pieces: VecDeque::new(),
                    fatal: None,
                })
                .collect(),
            chunks: BTreeMap::new(),
            requeue: VecDeque::new(),
            next_send: 0,
            next_emit: 0,
            done: false,
            failure: None,
        }
    }

    /// Sends re-queued pieces, then new chunks until the window is full.
    fn fill(&mut self) {
        while let Some(p) = self.requeue.pop_front() {
            self.dispatch(p);
        }
        while self.failure.is_none() && !self.done && self.next_send - self.next_emit < self.window
        {
            let items: Vec<(usize, T)> = self.src.by_ref().take(self.chunk).collect();
            if items.is_empty() {
                self.done = true;
                break;
            }
            let seq = self.next_send;
            self.next_send += 1;
            let n = items.len();
            self.chunks.insert(
                seq,
                ChunkBuf {
                    outs: (0..n).map(|_| None).collect(),
                    missing: n,
                },
            );
            let mut sent = Vec::with_capacity(n);
            for (offset, (index, item)) in items.into_iter().enumerate() {
                let mut payload = Vec::new();
                match self.remote.encode(&item, &mut payload) {
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
                });
            }
        }
    }
}

impl<T, O, K: ChunkFold<O>, Src> Processes<'_, T, O, K, Src> {
    /// Records what became of item `index` (at `offset` of chunk `seq`).
    fn complete(&mut self, seq: u64, offset: usize, index: usize, reply: Reply<'_>) {
        let out = self.remote.finish(index, reply);
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

    /// Fails every item of `piece` from its `next` on with `why`.
    fn fail_piece(&mut self, piece: Piece, why: &str) {
        for s in &piece.items[piece.next..] {
            let e = Error::new(
                s.index,
                ErrorKind::WorkerDied {
                    code: None,
                    signal: None,
                },
                why.to_string(),
            );
            self.complete(piece.seq, s.offset, s.index, Reply::Failed(e));
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
        if self.slots.is_empty() {
            match pool::take(1) {
                Ok(ws) => self.slots.extend(ws.into_iter().map(|worker| Slot {
                    worker,
                    pieces: VecDeque::new(),
                    fatal: None,
                })),
                Err(e) => {
                    let why = format!("no worker process could be started: {e}");
                    return self.fail_piece(piece, &why);
                }
            }
        }
        let Some(slot) = self.slots.iter_mut().min_by_key(|s| s.pieces.len()) else {
            return self.fail_piece(piece, "no worker process");
        };
        let mut out = Vec::new();
        slot.worker.bind(self.remote.task(), &mut out);
        for s in &piece.items[piece.next..] {
            // The codec keeps every payload below the frame limit.
            let _ = frame::item(&mut out, s.index as u64, &s.payload);
        }
        // If the pipe is gone, the worker's `Closed` event re-dispatches the piece.
        slot.worker.send(out);
        piece.items.drain(..piece.next);
        piece.next = 0;
        slot.pieces.push_back(piece);
    }

    /// An event already queued by a worker that owes replies, without blocking (so a
    /// burst of replies costs no `Select` each).
    fn ready(&self) -> Option<(usize, Event)> {
        self.slots.iter().enumerate().find_map(|(i, s)| {
            if s.pieces.is_empty() {
                None
            } else {
                s.worker.events().try_recv().ok().map(|ev| (i, ev))
            }
        })
    }

    /// Waits for one event from a worker that owes replies; `None` if none does.
    fn wait(&self) -> Option<(usize, Event)> {
        if let Some(r) = self.ready() {
            return Some(r);
        }
        let busy: Vec<usize> = (0..self.slots.len())
            .filter(|&i| !self.slots[i].pieces.is_empty())
            .collect();
        if busy.is_empty() {
            return None;
        }
        let mut sel = Select::new();
        for &i in &busy {
            sel.recv(self.slots[i].worker.events());
        }
        let op = sel.select();
        let i = busy[op.index()];
        let ev = op
            .recv(self.slots[i].worker.events())
            .unwrap_or_else(|_| Event::Closed(Exit::default()));
        Some((i, ev))
    }

    /// Handles one event of slot `i`. With `keep` false (stopping), replies are
    /// discarded and a dead worker's items are not sent again.
    fn handle(&mut self, i: usize, ev: Event, keep: bool) {
        let reply = match ev {
            Event::Frame(FromWorker::Output { index, payload }) => Ok((index, Ok(payload))),
            Event::Frame(FromWorker::Panicked { index, message }) => {
                Ok((index, Err((ErrorKind::Panic, message))))
            }
            Event::Frame(FromWorker::Failed { index, message }) => {
                Ok((index, Err((ErrorKind::Serialize, message))))
            }
            Event::Frame(FromWorker::Fatal { message }) => {
                self.slots[i].fatal = Some(message);
                return;
            }
            Event::Frame(FromWorker::Bye) => Err(None),
            Event::Frame(FromWorker::Hello { .. } | FromWorker::Pong { .. }) => return,
            Event::Closed(exit) => Err(Some(exit)),
        };
        match reply {
            Ok((index, r)) => {
                let slot = &mut self.slots[i];
                let expected = slot
                    .pieces
                    .front()
                    .and_then(|p| p.items.get(p.next))
                    .map(|s| (s.index as u64, s.offset));
                let Some((want, offset)) = expected.filter(|(w, _)| *w == index) else {
                    // Out of order: the worker cannot be trusted; its `Closed` follows.
                    slot.fatal = Some(format!("reply for item {index} out of order"));
                    slot.worker.kill();
                    return;
                };
                let Some(p) = slot.pieces.front_mut() else {
                    return;
                };
                let seq = p.seq;
                p.next += 1;
                if p.next == p.items.len() {
                    slot.pieces.pop_front();
                }
                if keep {
                    let index = want as usize;
                    match r {
                        Ok(payload) => self.complete(seq, offset, index, Reply::Output(&payload)),
                        Err((kind, message)) => {
                            let e = Error::new(index, kind, message);
                            self.complete(seq, offset, index, Reply::Failed(e))
                        }
                    }
                }
            }
            Err(exit) => {
                let slot = self.slots.swap_remove(i);
                let mut pieces = slot.pieces;
                if let Some(exit) = exit {
                    // Died: the first unanswered item was running.
                    if let Some(front) = pieces.front_mut()
                        && let Some(s) = front.items.get(front.next)
                    {
                        let (index, seq, offset) = (s.index, front.seq, s.offset);
                        front.next += 1;
                        if keep {
                            let detail = slot.fatal.unwrap_or(exit.detail.clone());
                            let e = died(index, slot.worker.pid(), &exit, &detail);
                            self.complete(seq, offset, index, Reply::Failed(e));
                        }
                    }
                    if keep && self.failure.is_none() {
                        // Replace the dead worker.
                        if let Ok(ws) = pool::start(1) {
                            self.slots.extend(ws.into_iter().map(|worker| Slot {
                                worker,
                                pieces: VecDeque::new(),
                                fatal: None,
                            }));
                        }
                    }
                }
                // Left (`Bye`) or died: unanswered items were never started.
                if keep {
                    self.requeue
                        .extend(pieces.into_iter().filter(|p| p.next < p.items.len()));
                }
            }
        }
    }

    /// Stops: waits for the replies still owed (discarding them).
    fn drain(&mut self) {
        self.requeue.clear();
        self.done = true;
        while let Some((i, ev)) = self.wait() {
            self.handle(i, ev, false);
        }
    }
}

/// The error of item `index`, whose worker `pid` died.
fn died(index: usize, pid: u32, exit: &Exit, detail: &str) -> Error {
    // `Error`'s Display adds the item and the status: "item 5: worker process died
    // (signal 6): pid 1234".
    let mut message = format!("pid {pid}");
    if !detail.is_empty() {
        message.push_str(", ");
        message.push_str(detail);
    }
    Error::new(
        index,
        ErrorKind::WorkerDied {
            code: exit.code,
            signal: exit.signal,
        },
        message,
    )
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
                self.drain();
                match e.kind() {
                    // As a panic on a thread: the worker printed it; carry the message.
                    ErrorKind::Panic => resume_unwind(Box::new(e.message().to_string())),
                    _ => std::panic::panic_any(format!("amorsize: {e}")),
                }
            }
            if self
                .chunks
                .get(&self.next_emit)
                .is_some_and(|b| b.missing == 0)
                && let Some(buf) = self.chunks.remove(&self.next_emit)
            {
                self.next_emit += 1;
                return Some(self.fold.fold(buf.outs.into_iter().flatten()));
            }
            self.fill();
            if self.failure.is_some() {
                continue;
            }
            if self.done && self.next_emit == self.next_send {
                return None;
            }
            match self.wait() {
                Some((i, ev)) => self.handle(i, ev, true),
                None if !self.requeue.is_empty() => {}
                None => {
                    // Nothing owed and the chunk still incomplete: replies were lost,
                    // which the bookkeeping above rules out. Fail the missing items
                    // rather than hang.
                    let seq = self.next_emit;
                    if let Some(buf) = self.chunks.get_mut(&seq) {
                        buf.missing = 0;
                    }
                    self.failure.get_or_insert(Error::new(
                        0,
                        ErrorKind::WorkerDied {
                            code: None,
                            signal: None,
                        },
                        "amorsize: replies from worker processes were lost (a bug)",
                    ));
                }
            }
        }
    }
}

impl<T, O, K: ChunkFold<O>, Src> Drop for Processes<'_, T, O, K, Src> {
    fn drop(&mut self) {
        // Stopped early or unwinding: wait for what is owed, then return the workers.
        self.drain();
        for slot in self.slots.drain(..) {
            pool::give_back(slot.worker);
        }
    }
}
