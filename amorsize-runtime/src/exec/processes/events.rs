//! The reply side of the process executor: waiting for the workers' events (or an
//! item timeout) and acting on each: an output or failure for the item a worker was
//! running, a piece reached, a worker that left or died (its running item fails, the
//! rest is sent again, a replacement is started).
//!
//! Apart from [`super`] because this is where the bookkeeping of what each worker owes
//! is settled, the subtle part of the "every item runs at most once" guarantee; sending
//! work out stays with the iterator in [`super`].

use std::time::Instant;

use crossbeam_channel::Select;

use super::{Processes, Slot};
use crate::error::{Error, ErrorKind};
use crate::plumbing::ChunkFold;
use crate::process::frame::FromWorker;
use crate::process::handle::{Event, Exit};
use crate::process::idle;
use crate::process::task_call::Reply;

/// What waiting for the workers gave.
pub(super) enum Waited {
    /// An event of slot `.0`.
    Event(usize, Event),
    /// A busy worker's item timeout passed first.
    Deadline,
    /// No worker owes anything.
    Idle,
}

impl<T, O, K: ChunkFold<O>, Src> Processes<'_, T, O, K, Src> {
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

    /// Waits for one event from a worker that owes replies, or for the first item
    /// timeout to pass.
    pub(super) fn wait(&self) -> Waited {
        if let Some((i, ev)) = self.ready() {
            return Waited::Event(i, ev);
        }
        let busy: Vec<usize> = (0..self.slots.len())
            .filter(|&i| !self.slots[i].pieces.is_empty())
            .collect();
        if busy.is_empty() {
            return Waited::Idle;
        }
        let mut sel = Select::new();
        for &i in &busy {
            sel.recv(self.slots[i].worker.events());
        }
        let deadline = self.item_timeout.and_then(|limit| {
            busy.iter()
                .filter(|&&i| self.slots[i].timed_out.is_none())
                .map(|&i| self.slots[i].since + limit)
                .min()
        });
        let op = match deadline {
            Some(d) => match sel.select_deadline(d) {
                Ok(op) => op,
                Err(_) => return Waited::Deadline,
            },
            None => sel.select(),
        };
        let i = busy[op.index()];
        let ev = op
            .recv(self.slots[i].worker.events())
            .unwrap_or_else(|_| Event::Closed(Exit::default()));
        Waited::Event(i, ev)
    }

    /// Kills every worker whose current item ran past the item timeout; its `Closed`
    /// event then fails that item.
    pub(super) fn enforce_timeout(&mut self) {
        let Some(limit) = self.item_timeout else {
            return;
        };
        let now = Instant::now();
        for slot in &mut self.slots {
            if !slot.pieces.is_empty() && slot.timed_out.is_none() && now >= slot.since + limit {
                slot.timed_out = Some(limit);
                slot.worker.kill();
            }
        }
    }

    /// Handles one event of slot `i`. With `keep` false (stopping), replies are
    /// discarded and a dead worker's items are not sent again.
    pub(super) fn handle(&mut self, i: usize, ev: Event, keep: bool) {
        let now = Instant::now();
        if !self.slots[i].pieces.is_empty() {
            let (events, secs) = &mut self.observed;
            *events = events.saturating_add(1);
            *secs += (now - self.slots[i].since).as_secs_f64();
        }
        self.slots[i].since = now;
        let reply = match ev {
            Event::Frame(FromWorker::Output { index, payload }) => Ok((index, Ok(payload))),
            Event::Frame(FromWorker::Panicked {
                index,
                message,
                payload,
            }) => Ok((index, Err((ErrorKind::Panic, message, payload)))),
            Event::Frame(FromWorker::Failed { index, message }) => Ok((
                index,
                Err((ErrorKind::Serialize, message, Default::default())),
            )),
            Event::Frame(FromWorker::Fatal { message }) => {
                self.slots[i].fatal = Some(message);
                return;
            }
            Event::Frame(FromWorker::Pong { nonce }) => {
                let slot = &mut self.slots[i];
                if let Some(p) = slot.pieces.iter_mut().find(|p| !p.reached)
                    && p.seq == nonce
                {
                    p.reached = true;
                }
                return;
            }
            Event::Frame(FromWorker::Bye) => Err(None),
            Event::Frame(FromWorker::Hello { .. }) => return,
            Event::Closed(exit) => Err(Some(exit)),
        };
        match reply {
            Ok((index, r)) => {
                let slot = &mut self.slots[i];
                let expected = slot
                    .pieces
                    .front()
                    .filter(|p| p.reached)
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
                        Err((kind, message, payload)) => {
                            let e = Error::new(index, kind, message).with_payload(payload);
                            self.complete(seq, offset, index, Reply::Failed(e))
                        }
                    }
                }
            }
            Err(exit) => {
                let slot = self.slots.swap_remove(i);
                let mut pieces = slot.pieces;
                if let Some(exit) = exit {
                    // Died: the first unanswered item of a piece it had reached was
                    // running. A worker that had not reached its oldest piece (it died
                    // idle, or was killed between items) ran none of it.
                    if let Some(front) = pieces.front_mut()
                        && (front.reached || slot.fatal.is_some())
                        && let Some(s) = front.items.get(front.next)
                    {
                        let (index, seq, offset) = (s.index, front.seq, s.offset);
                        front.next += 1;
                        if keep {
                            let e = match slot.timed_out {
                                Some(limit) => Error::new(
                                    index,
                                    ErrorKind::TimedOut { limit },
                                    format!("pid {}", slot.worker.pid()),
                                ),
                                None => {
                                    let detail = slot.fatal.unwrap_or(exit.detail.clone());
                                    died(index, slot.worker.pid(), &exit, &detail)
                                }
                            };
                            self.complete(seq, offset, index, Reply::Failed(e));
                        }
                    }
                    if keep && self.failure.is_none() && self.cannot_start.is_none() {
                        // Replace the dead worker.
                        match idle::start(1) {
                            Ok(ws) => self.slots.extend(ws.into_iter().map(Slot::new)),
                            Err(e) => {
                                self.cannot_start =
                                    Some(format!("no worker process could be started: {e}"));
                            }
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
