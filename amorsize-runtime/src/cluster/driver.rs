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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use futures_util::StreamExt;

use super::broker::{self, Broker};
use super::wire::{self, ChunkHeader, Outcome, ResultHeader, Status};
use crate::error::{Error, ErrorKind};
use crate::plumbing::ChunkFold;
use crate::process::registry::{self, TaskEntry};
use crate::process::task_call::{Reply, TaskCall, serialize};

/// How long publishing a chunk may keep failing (the broker restarting) before its
/// items fail.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(60);
/// Largest section read back from the object store.
const MAX_SECTION_BYTES: usize = 1 << 30;
/// How long cleaning up a job may take when it ends.
const CLEANUP_WAIT: Duration = Duration::from_secs(3);

/// What the broker side tells the caller's thread.
enum Event {
    /// Chunk `seq` is in the work stream at `stream_seq`.
    Published { seq: u64, stream_seq: u64 },
    /// Chunk `seq` could not be published.
    PublishFailed { seq: u64, why: String },
    /// A message on the job's result subject.
    Result(Box<jetstream::Message>),
    /// The work message at `stream_seq` reached its last delivery.
    MaxDeliveries { stream_seq: u64, deliveries: u32 },
}

/// One job's footing on the broker: its id, subjects and consumer.
pub(crate) struct Link {
    broker: Arc<Broker>,
    job: String,
    build: u64,
    events: Receiver<Event>,
    tx: Sender<Event>,
    stop: Arc<AtomicBool>,
}

impl Link {
    /// Sets up a job: its result consumer and the advisory of lost chunks, both read
    /// on the cluster runtime and forwarded to the caller's thread.
    pub(crate) fn open(broker: Arc<Broker>) -> Result<Link, String> {
        let job = job_id();
        let build = registry::hash();
        let (tx, events) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let (b, j, t, s) = (
            Arc::clone(&broker),
            job.clone(),
            tx.clone(),
            Arc::clone(&stop),
        );
        broker::block(async move { listen(b, j, build, t, s).await })??;
        Ok(Link {
            broker,
            job,
            build,
            events,
            tx,
            stop,
        })
    }

    /// Publishes chunk `seq` of `task` with the items `section` (see
    /// [`wire::items`]), through the object store if it does not fit in a message;
    /// the outcome arrives as an [`Event`]. Returns the object's name, if one is used.
    fn send(
        &self,
        seq: u64,
        task: &'static TaskEntry,
        section: Vec<u8>,
    ) -> Result<Option<String>, String> {
        let mut header = ChunkHeader {
            version: wire::VERSION,
            build: self.build,
            job: self.job.clone(),
            seq,
            task: task.wire_id().0,
            module: task.module().to_string(),
            name: task.name().to_string(),
            signature: task.signature().to_string(),
            object: None,
        };
        let mut body = Vec::new();
        wire::start(&header, &mut body).map_err(|e| e.0)?;
        let (section, object) = if body.len() + section.len() <= self.broker.max_body() {
            body.extend_from_slice(&section);
            (Vec::new(), None)
        } else {
            let name = format!("{}.{seq}.in", self.job);
            header.object = Some(name.clone());
            wire::start(&header, &mut body).map_err(|e| e.0)?;
            (section, Some(name))
        };
        let broker = Arc::clone(&self.broker);
        let tx = self.tx.clone();
        let subject = broker::work_subject(self.build, &self.job);
        let name = object.clone();
        broker::spawn(async move {
            let published = async {
                if let Some(name) = &name {
                    broker.put_object(name, &section).await?;
                }
                broker.publish(subject, body, PUBLISH_PATIENCE).await
            };
            let _ = tx.send(match published.await {
                Ok(stream_seq) => Event::Published { seq, stream_seq },
                Err(why) => Event::PublishFailed { seq, why },
            });
        });
        Ok(object)
    }

    /// Ends the job on the broker: its consumer, what is left on its subjects, and
    /// `objects`. Waits at most [`CLEANUP_WAIT`].
    fn close(&self, objects: Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let broker = Arc::clone(&self.broker);
        let job = self.job.clone();
        let work = broker::work_subject(self.build, &job);
        let _ = broker::block(async move {
            let cleanup = async {
                if let Ok(s) = broker.js.get_stream(broker::RESULT_STREAM).await {
                    let _ = s.delete_consumer(&format!("job-{job}")).await;
                    let _ = s.purge().filter(broker::result_subject(&job)).await;
                }
                if let Ok(s) = broker.js.get_stream(broker::WORK_STREAM).await {
                    let _ = s.purge().filter(work).await;
                }
                for name in objects {
                    broker.delete_object(&name).await;
                }
            };
            let _ = tokio::time::timeout(CLEANUP_WAIT, cleanup).await;
        });
    }

    /// Runs the already encoded `inputs` of `task` as one chunk on a worker and waits
    /// up to `wait` for their outcomes: each item's encoded output, or what happened to
    /// it there. Used to check a task on a worker before trusting the cluster with it.
    pub(crate) fn round_trip(
        self,
        task: &'static TaskEntry,
        inputs: &[&[u8]],
        wait: Duration,
    ) -> Result<Vec<Result<Vec<u8>, String>>, String> {
        let mut section = Vec::new();
        wire::items(inputs.iter().copied(), &mut section);
        let object = self.send(0, task, section)?;
        let deadline = Instant::now() + wait;
        let answer = loop {
            let event = match self.events.recv_deadline(deadline) {
                Ok(e) => e,
                Err(_) => break Err(format!("no answer within {wait:?}")),
            };
            let m = match event {
                Event::Result(m) => m,
                Event::PublishFailed { why, .. } => break Err(why),
                Event::MaxDeliveries { deliveries, .. } => {
                    break Err(format!("delivered {deliveries} times without a result"));
                }
                Event::Published { .. } => continue,
            };
            let acked = m.clone();
            broker::spawn(async move {
                let _ = acked.ack().await;
            });
            let Ok((header, inline)) = wire::split::<ResultHeader>(&m.payload) else {
                continue;
            };
            if header.job != self.job || header.seq != 0 {
                continue;
            }
            break self
                .outcomes_of(&header, inline.to_vec())
                .and_then(|section| {
                    let outcomes = wire::parse_outcomes(&section, inputs.len()).map_err(|e| e.0)?;
                    Ok(outcomes
                        .into_iter()
                        .map(|o| match o {
                            Outcome::Output(b) => Ok(b.to_vec()),
                            Outcome::Failed(why) => Err(format!("failed there ({why})")),
                            Outcome::Panicked(text, _) => Err(format!("panicked there ({text})")),
                        })
                        .collect())
                });
        };
        self.close(object.into_iter().collect());
        answer
    }

    /// The outcomes section of a result: inline, or read (and deleted) from the object
    /// store. `Err` for a refusal or an unreadable object.
    fn outcomes_of(&self, header: &ResultHeader, inline: Vec<u8>) -> Result<Vec<u8>, String> {
        if let Status::Refused(why) = &header.status {
            return Err(format!("worker {}: {why}", header.worker));
        }
        match &header.object {
            None => Ok(inline),
            Some(name) => {
                let (b, n) = (Arc::clone(&self.broker), name.clone());
                broker::block(async move {
                    let r = b.get_object(&n, MAX_SECTION_BYTES).await;
                    b.delete_object(&n).await;
                    r
                })?
            }
        }
    }
}

/// Starts the tasks that forward a job's results and lost-chunk advisories.
async fn listen(
    broker: Arc<Broker>,
    job: String,
    build: u64,
    tx: Sender<Event>,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    let advisory = format!(
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
        broker::WORK_STREAM,
        broker::workers_consumer(build)
    );
    let mut lost = broker
        .client
        .subscribe(advisory)
        .await
        .map_err(|e| broker.redact(&format!("subscribing to advisories: {e}")))?;
    let stream = broker
        .js
        .get_stream(broker::RESULT_STREAM)
        .await
        .map_err(|e| broker.redact(&format!("stream {}: {e}", broker::RESULT_STREAM)))?;
    let name = format!("job-{job}");
    let results = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: broker::result_subject(&job),
            ack_policy: consumer::AckPolicy::Explicit,
            // A driver that vanished leaves its consumer behind this long.
            inactive_threshold: Duration::from_secs(3600),
            ..Default::default()
        })
        .await
        .map_err(|e| broker.redact(&format!("consumer {name}: {e}")))?;
    let (t, s) = (tx.clone(), Arc::clone(&stop));
    tokio::spawn(async move {
        while !s.load(Ordering::SeqCst) {
            let Some(m) = lost.next().await else { break };
            let v: serde_json::Value = match serde_json::from_slice(&m.payload) {
                Ok(v) => v,
                Err(_) => continue,
            };
            let seq = v.get("stream_seq").and_then(serde_json::Value::as_u64);
            let deliveries = v
                .get("deliveries")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            if let Some(stream_seq) = seq
                && t.send(Event::MaxDeliveries {
                    stream_seq,
                    deliveries: deliveries.min(u64::from(u32::MAX)) as u32,
                })
                .is_err()
            {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(50);
        while !stop.load(Ordering::SeqCst) {
            let batch = results
                .batch()
                .max_messages(64)
                .expires(Duration::from_millis(500))
                .messages()
                .await;
            let mut batch = match batch {
                Ok(b) => b,
                Err(_) => {
                    // The broker may be restarting: the consumer is durable.
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            pause = Duration::from_millis(50);
            while let Some(m) = batch.next().await {
                match m {
                    Ok(m) => {
                        if tx.send(Event::Result(Box::new(m))).is_err() {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
    });
    Ok(())
}

/// 128 random bits, in hex: a job's subjects cannot be guessed.
fn job_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_err() {
        // Without the OS's randomness: std's per-process random hash keys.
        use std::hash::{BuildHasher, Hasher};
        for half in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id()));
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

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
