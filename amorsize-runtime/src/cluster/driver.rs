//! The driver's executor: the caller's thread pulls chunks, encodes their items and
//! publishes them to the job's work subject; results come back on the job's result
//! subject and are decoded and emitted in input order on the caller's thread.
//!
//! Conventions of the process executor: at most `in_flight_chunks(workers)` chunks
//! published and not yet emitted (so a lazy source is never drained beyond that), and
//! a failure that propagates stops the job. Delivery is the broker's: a chunk whose
//! worker dies is delivered again after `ack_wait`, so an item may run more than once
//! across machines; the driver keeps the first result of each chunk and ignores
//! duplicates and results for chunks it did not send. A chunk delivered `max_deliver`
//! times without a result (the broker's advisory says so) fails its items as
//! [`ErrorKind::Lost`]. When nothing arrives for a long while and no worker of this
//! build answers a ping, the chunks in flight fail as not run rather than hang.
//!
//! Dropping the executor (the job ended, or its consumer stopped early) deletes the
//! job's consumer and purges its subjects and objects.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use crossbeam_channel::RecvTimeoutError;

use super::broker;
use super::link::{Event, Link};
use super::wire::{self, Outcome, ResultHeader, Status};
use crate::error::{Error, ErrorKind};
use crate::plumbing::ChunkFold;
use crate::process::task_call::{Reply, TaskCall, serialize};

/// A chunk published and not yet answered.
struct Sent {
    /// Input index of its first item.
    first: usize,
    /// Items in the chunk.
    count: usize,
    /// Offsets (in the chunk) of the items sent; the others failed to encode.
    remote: Vec<usize>,
    /// Items that failed to encode, by offset.
    local: Vec<(usize, Error)>,
    stream_seq: Option<u64>,
    /// The object holding its items, if they did not fit in a message.
    object: Option<String>,
}

/// An iterator over the partial results of each chunk, in input order, while cluster
/// workers run the items.
pub(crate) struct Cluster<'a, T, O, K: ChunkFold<O>, Src> {
    call: &'a TaskCall<T, O>,
    fold: &'a K,
    src: Src,
    chunk: usize,
    window: u64,
    link: Link,
    sent: BTreeMap<u64, Sent>,
    by_stream_seq: HashMap<u64, u64>,
    /// Answered chunks waiting for their turn, by sequence.
    done: BTreeMap<u64, Vec<O>>,
    next_send: u64,
    next_emit: u64,
    exhausted: bool,
    failure: Option<Error>,
    /// When the last event arrived, for the stall check.
    last_event: Instant,
    /// The workers' refusals already said.
    said: bool,
}

impl<'a, T, O, K, Src> Cluster<'a, T, O, K, Src>
where
    K: ChunkFold<O>,
    Src: Iterator<Item = (usize, T)>,
{
    /// Runs the items of `src` on the cluster, `chunk` items a message, with a window
    /// sized for `workers` slots.
    pub(crate) fn new(
        call: &'a TaskCall<T, O>,
        fold: &'a K,
        link: Link,
        src: Src,
        (workers, chunk): (usize, usize),
    ) -> Self {
        Cluster {
            call,
            fold,
            src,
            chunk: chunk.max(1),
            window: crate::limits::in_flight_chunks(workers.max(1)) as u64,
            link,
            sent: BTreeMap::new(),
            by_stream_seq: HashMap::new(),
            done: BTreeMap::new(),
            next_send: 0,
            next_emit: 0,
            exhausted: false,
            failure: None,
            last_event: Instant::now(),
            said: false,
        }
    }

    /// Publishes chunks until the window is full or the input ends.
    fn fill(&mut self) {
        while !self.exhausted
            && self.failure.is_none()
            && self.next_send - self.next_emit < self.window
        {
            let mut first = None;
            let mut items = Vec::with_capacity(self.chunk);
            for (index, item) in self.src.by_ref().take(self.chunk) {
                first.get_or_insert(index);
                items.push(item);
            }
            if items.len() < self.chunk {
                self.exhausted = true;
            }
            let Some(first) = first else { break };
            self.publish(first, items);
        }
    }

    fn publish(&mut self, first: usize, items: Vec<T>) {
        let seq = self.next_send;
        self.next_send += 1;
        let mut encoded = Vec::with_capacity(items.len());
        let mut remote = Vec::with_capacity(items.len());
        let mut local = Vec::new();
        for (offset, item) in items.iter().enumerate() {
            let mut bytes = Vec::new();
            match self.call.encode(item, &mut bytes) {
                Ok(()) => {
                    encoded.push(bytes);
                    remote.push(offset);
                }
                Err(e) => local.push((offset, serialize(first + offset, e))),
            }
        }
        drop(items);
        let mut section = Vec::new();
        wire::items(encoded.iter().map(Vec::as_slice), &mut section);
        drop(encoded);
        let count = remote.len() + local.len();
        let sent = Sent {
            first,
            count,
            remote,
            local,
            stream_seq: None,
            object: None,
        };
        self.sent.insert(seq, sent);
        match self.link.send(seq, self.call.task(), section) {
            Ok(object) => {
                if let Some(s) = self.sent.get_mut(&seq) {
                    s.object = object;
                }
            }
            Err(why) => self.fail_remote(seq, ErrorKind::NotRun, &why),
        }
    }

    /// Chunk `seq` answered: `outcomes` for its remote items, in order (empty when it
    /// failed as a whole through its `local` errors). Keeps the first answer only.
    fn complete(&mut self, seq: u64, outcomes: Vec<Result<O, Error>>) {
        let Some(sent) = self.sent.remove(&seq) else {
            return;
        };
        if let Some(ss) = sent.stream_seq {
            self.by_stream_seq.remove(&ss);
        }
        if let Some(name) = sent.object.clone() {
            let broker = Arc::clone(&self.link.broker);
            broker::spawn(async move { broker.delete_object(&name).await });
        }
        let mut slots: Vec<Option<Result<O, Error>>> = (0..sent.count).map(|_| None).collect();
        for (offset, e) in sent.local {
            slots[offset] = Some(self.call.finish(sent.first + offset, Reply::Failed(e)));
        }
        for (offset, r) in sent.remote.iter().zip(outcomes) {
            slots[*offset] = Some(r);
        }
        let mut outs = Vec::with_capacity(sent.count);
        for (offset, slot) in slots.into_iter().enumerate() {
            let r = slot.unwrap_or_else(|| {
                self.call.finish(
                    sent.first + offset,
                    Reply::Failed(Error::new(
                        sent.first + offset,
                        ErrorKind::NotRun,
                        "no outcome came back for this item",
                    )),
                )
            });
            match r {
                Ok(o) => outs.push(o),
                Err(e) => {
                    self.failure.get_or_insert(e);
                }
            }
        }
        self.done.insert(seq, outs);
    }

    /// Fails every remote item of chunk `seq` with `kind` and `why`.
    fn fail_remote(&mut self, seq: u64, kind: ErrorKind, why: &str) {
        let Some(sent) = self.sent.get(&seq) else {
            return;
        };
        let outcomes = sent
            .remote
            .iter()
            .map(|o| {
                let index = sent.first + o;
                self.call
                    .finish(index, Reply::Failed(Error::new(index, kind.clone(), why)))
            })
            .collect();
        self.complete(seq, outcomes);
    }

    fn handle(&mut self, event: Event) {
        self.last_event = Instant::now();
        match event {
            Event::Published { seq, stream_seq } => {
                if let Some(s) = self.sent.get_mut(&seq) {
                    s.stream_seq = Some(stream_seq);
                    self.by_stream_seq.insert(stream_seq, seq);
                }
            }
            Event::PublishFailed { seq, why } => self.fail_remote(seq, ErrorKind::NotRun, &why),
            Event::MaxDeliveries {
                stream_seq,
                deliveries,
            } => {
                if let Some(&seq) = self.by_stream_seq.get(&stream_seq) {
                    self.fail_remote(
                        seq,
                        ErrorKind::Lost { deliveries },
                        "raise AMORSIZE_CLUSTER_MAX_DELIVER or AMORSIZE_CLUSTER_ACK_WAIT if \
                         items run long, or look at the workers' logs",
                    );
                }
            }
            Event::Result(m) => self.result(*m),
        }
    }

    /// A message on the result subject: the first answer of a chunk this job sent is
    /// decoded; anything else is acknowledged and dropped.
    fn result(&mut self, m: jetstream::Message) {
        let parsed = wire::split::<ResultHeader>(&m.payload).map(|(h, s)| (h, s.to_vec()));
        let acked = m;
        broker::spawn(async move {
            let _ = acked.ack().await;
        });
        let (header, inline) = match parsed {
            Ok(x) => x,
            Err(e) => {
                self.say(&format!("dropped a malformed result message: {e}"));
                return;
            }
        };
        if header.job != self.link.job || !self.sent.contains_key(&header.seq) {
            // A later answer to a chunk already answered (it was delivered again): its
            // outcomes are not needed, and nor is their object.
            if let Some(name) = header.object.filter(|_| header.job == self.link.job) {
                let broker = Arc::clone(&self.link.broker);
                broker::spawn(async move { broker.delete_object(&name).await });
            }
            return;
        }
        let seq = header.seq;
        if let Status::Refused(why) = &header.status {
            self.say(&format!("worker {}: {why}", header.worker));
        }
        let expected = self.sent.get(&seq).map_or(0, |s| s.remote.len());
        let (first, remote) = self
            .sent
            .get(&seq)
            .map(|s| (s.first, s.remote.clone()))
            .unwrap_or_default();
        let section = match self.link.outcomes_of(&header, inline) {
            Ok(s) => s,
            Err(why) => {
                self.fail_remote(seq, ErrorKind::NotRun, &why);
                return;
            }
        };
        let decoded = wire::parse_outcomes(&section, expected).map(|outcomes| {
            outcomes
                .iter()
                .zip(remote)
                .map(|(o, offset)| {
                    let index = first + offset;
                    let reply = match o {
                        Outcome::Output(b) => Reply::Output(b),
                        Outcome::Failed(why) => Reply::Failed(Error::new(
                            index,
                            ErrorKind::Serialize,
                            format!("on worker {}: {why}", header.worker),
                        )),
                        Outcome::Panicked(text, kind) => Reply::Failed(
                            Error::new(index, ErrorKind::Panic, *text).with_payload(*kind),
                        ),
                    };
                    self.call.finish(index, reply)
                })
                .collect::<Vec<_>>()
        });
        match decoded {
            Ok(outcomes) => self.complete(seq, outcomes),
            Err(e) => self.fail_remote(
                seq,
                ErrorKind::Serialize,
                &format!("a malformed result from worker {}: {e}", header.worker),
            ),
        }
    }

    /// Says something about the job once, on stderr (a driver must not stay silent
    /// about workers that refuse its chunks).
    fn say(&mut self, text: &str) {
        if !self.said {
            self.said = true;
            crate::progress::log_line(&format!(
                "amorsize: cluster: {}",
                self.link.broker.redact(text)
            ));
        }
    }

    /// Nothing arrived for a long while: if no worker of this build answers, the
    /// chunks in flight fail as not run.
    fn stalled(&mut self) {
        let broker = Arc::clone(&self.link.broker);
        let wait = broker.settings.wait;
        let hellos = broker::block(async move { broker.ping(wait).await }).and_then(|r| r);
        let build = self.link.build;
        if let Ok(h) = &hellos
            && h.iter().any(|h| h.build == build)
        {
            return;
        }
        let why = format!(
            "no result for {:?} and no worker of this build (build {build:016x}) answers at {}: \
             start workers with AMORSIZE_CLUSTER_WORKER",
            self.last_event.elapsed(),
            self.link.broker.address
        );
        let pending: Vec<u64> = self.sent.keys().copied().collect();
        for seq in pending {
            self.fail_remote(seq, ErrorKind::NotRun, &why);
        }
    }

    fn stall_after(&self) -> Duration {
        let s = &self.link.broker.settings;
        (s.ack_wait * 2).max(Duration::from_secs(10))
    }
}

impl<T, O, K, Src> Iterator for Cluster<'_, T, O, K, Src>
where
    K: ChunkFold<O>,
    Src: Iterator<Item = (usize, T)>,
{
    type Item = K::Acc;

    fn next(&mut self) -> Option<K::Acc> {
        loop {
            if let Some(e) = self.failure.take() {
                self.exhausted = true;
                e.resume();
            }
            if let Some(outs) = self.done.remove(&self.next_emit) {
                self.next_emit += 1;
                return Some(self.fold.fold(outs.into_iter()));
            }
            self.fill();
            if self.failure.is_some() || self.done.contains_key(&self.next_emit) {
                continue;
            }
            if self.next_emit == self.next_send {
                return None;
            }
            match self.link.events.recv_timeout(Duration::from_secs(1)) {
                Ok(event) => self.handle(event),
                Err(RecvTimeoutError::Timeout) => {
                    if self.last_event.elapsed() >= self.stall_after() {
                        self.last_event = Instant::now();
                        self.stalled();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let pending: Vec<u64> = self.sent.keys().copied().collect();
                    for seq in pending {
                        self.fail_remote(seq, ErrorKind::NotRun, "the cluster client stopped");
                    }
                }
            }
        }
    }
}

impl<T, O, K: ChunkFold<O>, Src> Drop for Cluster<'_, T, O, K, Src> {
    fn drop(&mut self) {
        let objects = self
            .sent
            .values()
            .filter_map(|s| s.object.clone())
            .collect();
        self.link.close(objects);
    }
}
