//! A job's footing on the broker ([`Link`]): its unguessable id, its result consumer
//! and the advisory of lost chunks (both read on the cluster runtime and forwarded to
//! the caller's thread as [`Event`]s), publishing its chunks, and cleaning up after it.
//! The executor ([`super::driver`]) and the trust check (`Link::round_trip`) use it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use crossbeam_channel::{Receiver, Sender};
use futures_util::StreamExt;

use super::broker::{self, Broker};
use super::wire::{self, ChunkHeader, Outcome, ResultHeader, Status};
use crate::process::registry::{self, TaskEntry};

/// How long publishing a chunk may keep failing (the broker restarting) before its
/// items fail.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(60);
/// Largest section read back from the object store.
const MAX_SECTION_BYTES: usize = 1 << 30;
/// How long cleaning up a job may take when it ends.
const CLEANUP_WAIT: Duration = Duration::from_secs(3);

/// What the broker side tells the caller's thread.
pub(crate) enum Event {
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
    pub(super) broker: Arc<Broker>,
    pub(super) job: String,
    pub(super) build: u64,
    pub(super) events: Receiver<Event>,
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
    pub(super) fn send(
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
    pub(super) fn close(&self, objects: Vec<String>) {
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
    pub(super) fn outcomes_of(
        &self,
        header: &ResultHeader,
        inline: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
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
