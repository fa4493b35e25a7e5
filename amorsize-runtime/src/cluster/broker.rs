//! The broker: a connection to NATS with JetStream, on a tokio runtime of amorsize's
//! own (one thread, started on first use, never the caller's runtime), and the
//! streams, consumers and object store every driver and worker shares.
//!
//! - `AMORSIZE_WORK` (work queue, file storage): chunks, on `amorsize.work.<build>.<job>`.
//!   Workers of one build share one durable pull consumer, `workers-<build>`,
//!   filtered to their build's subjects, so a worker only ever receives chunks of its
//!   own executable, and executables sharing a broker never take each other's chunks.
//! - `AMORSIZE_RESULTS` (work queue, file storage): results, on
//!   `amorsize.result.<job>`, read by the job's own durable consumer `job-<job>`.
//! - Object store `amorsize`: a chunk's items or results too big for one message.
//! - `amorsize.ping` (plain NATS): workers answer with their build and slots, so a
//!   driver knows who listens before it plans.
//!
//! Streams and consumers are created by whoever comes first, with the settings of
//! [`Settings`]; a consumer that exists keeps the settings it was made with.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, object_store, stream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::address::{Address, Credentials};
use super::settings::Settings;
use crate::process::codec;

/// How long connecting may take before the broker counts as unreachable.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long reading an object may wait for the broker, beyond its transfer time.
const OBJECT_WAIT: Duration = Duration::from_secs(20);
/// The slowest transfer rate an object read is given time for.
const OBJECT_BYTES_PER_SEC: f64 = 10e6;
/// Room left in a message for the subject and headers beyond the body.
const MESSAGE_MARGIN: usize = 4096;
/// How long streams, consumers and messages of a driver that vanished are kept.
const KEEP: Duration = Duration::from_secs(24 * 3600);

pub(crate) const WORK_STREAM: &str = "AMORSIZE_WORK";
pub(crate) const RESULT_STREAM: &str = "AMORSIZE_RESULTS";
const BUCKET: &str = "amorsize";
pub(crate) const PING: &str = "amorsize.ping";
/// After a worker answered a ping, how long without another answer ends the wait.
const PING_QUIET: Duration = Duration::from_millis(50);

/// The subject of a job's chunks.
pub(crate) fn work_subject(build: u64, job: &str) -> String {
    format!("amorsize.work.{build:016x}.{job}")
}

/// The subject of a job's results.
pub(crate) fn result_subject(job: &str) -> String {
    format!("amorsize.result.{job}")
}

/// The durable consumer the workers of `build` share.
pub(crate) fn workers_consumer(build: u64) -> String {
    format!("workers-{build:016x}")
}

/// The runtime every cluster future runs on.
fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("amorsize-cluster")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the cluster client's runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Runs `f` on the cluster runtime and waits for it on this thread (which may be any
/// thread, also one of an async runtime of the user's: it only blocks on a channel).
pub(crate) fn block<F>(f: F) -> Result<F::Output, String>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = crossbeam_channel::bounded(1);
    runtime()?.spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv()
        .map_err(|_| "the cluster client's runtime stopped".to_string())
}

/// Runs `f` on the cluster runtime without waiting for it.
pub(crate) fn spawn<F>(f: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(rt) = runtime() {
        rt.spawn(f);
    }
}

/// A connection to the broker, with the shared streams in place.
pub(crate) struct Broker {
    pub address: Address,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub settings: Settings,
}

/// What a worker says when pinged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub build: u64,
    /// Chunks it runs at once.
    pub slots: u32,
    /// Host and process id.
    pub worker: String,
    /// The executable's file name, to name a build in messages.
    pub exe: String,
}

impl Broker {
    /// Connects (at most [`CONNECT_TIMEOUT`]) and makes sure the shared streams exist.
    /// Errors never quote the credentials.
    pub(crate) async fn connect(settings: Settings, name: &str) -> Result<Broker, String> {
        let address = settings.address.clone();
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            address.redact(&format!("{what} the broker at {address}: {e}"))
        };
        let mut options = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(CONNECT_TIMEOUT)
            // Redelivery after a restart is JetStream's; the client just reconnects.
            .max_reconnects(None);
        match address.credentials() {
            Some(Credentials::UserPassword { user, password }) => {
                options = options.user_and_password(user.clone(), password.clone());
            }
            Some(Credentials::Token(token)) => options = options.token(token.clone()),
            None => {}
        }
        if let Some(path) = &settings.creds {
            options = options.credentials_file(path).await.map_err(|e| {
                format!(
                    "cannot read the credentials file {} (AMORSIZE_CLUSTER_CREDS): {e}",
                    path.display()
                )
            })?;
        }
        let client =
            match tokio::time::timeout(CONNECT_TIMEOUT, options.connect(address.servers())).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(fail("cannot connect to", &e)),
                Err(_) => {
                    return Err(address.redact(&format!(
                        "the broker at {address} did not answer within {CONNECT_TIMEOUT:?}"
                    )));
                }
            };
        let js = jetstream::new(client.clone());
        for (name, subjects) in [
            (WORK_STREAM, "amorsize.work.>"),
            (RESULT_STREAM, "amorsize.result.>"),
        ] {
            js.get_or_create_stream(stream::Config {
                name: name.to_string(),
                subjects: vec![subjects.to_string()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                max_age: KEEP,
                ..Default::default()
            })
            .await
            .map_err(|e| fail(&format!("cannot create stream {name} on"), &e))?;
        }
        Ok(Broker {
            address,
            client,
            js,
            settings,
        })
    }

    /// Largest body one message may carry on this server.
    pub(crate) fn max_body(&self) -> usize {
        self.client
            .max_payload()
            .saturating_sub(MESSAGE_MARGIN)
            .max(1024)
    }

    /// `text` without the credentials.
    pub(crate) fn redact(&self, text: &str) -> String {
        self.address.redact(text)
    }

    /// The consumer the workers of `build` share, created with the settings' delivery
    /// rules if it does not exist yet.
    pub(crate) async fn workers_consumer(
        &self,
        build: u64,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, String> {
        let name = workers_consumer(build);
        let stream = self
            .js
            .get_stream(WORK_STREAM)
            .await
            .map_err(|e| self.redact(&format!("stream {WORK_STREAM}: {e}")))?;
        stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: format!("amorsize.work.{build:016x}.>"),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.settings.ack_wait,
                    max_deliver: i64::from(self.settings.max_deliver),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.redact(&format!("consumer {name}: {e}")))
    }

    /// The object store for payloads too big for a message.
    pub(crate) async fn bucket(&self) -> Result<object_store::ObjectStore, String> {
        if let Ok(b) = self.js.get_object_store(BUCKET).await {
            return Ok(b);
        }
        self.js
            .create_object_store(object_store::Config {
                bucket: BUCKET.to_string(),
                max_age: KEEP,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| self.redact(&format!("object store {BUCKET}: {e}")))
    }

    /// Stores `bytes` as object `name`.
    pub(crate) async fn put_object(&self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let bucket = self.bucket().await?;
        let mut reader = bytes;
        bucket
            .put(name, &mut reader)
            .await
            .map(drop)
            .map_err(|e| self.redact(&format!("storing object {name}: {e}")))
    }

    /// Reads object `name`, refusing one larger than `limit` bytes. Gives up after
    /// [`OBJECT_WAIT`] plus a second per [`OBJECT_BYTES_PER_SEC`] bytes: a read the
    /// broker does not serve (a permission missing, say) is an error, never a hang.
    pub(crate) async fn get_object(&self, name: &str, limit: usize) -> Result<Vec<u8>, String> {
        use tokio::io::AsyncReadExt;
        let bucket = self.bucket().await?;
        let object = tokio::time::timeout(OBJECT_WAIT, bucket.get(name))
            .await
            .map_err(|_| format!("reading object {name}: no answer within {OBJECT_WAIT:?}"))?
            .map_err(|e| self.redact(&format!("reading object {name}: {e}")))?;
        let size = object.info().size;
        if size > limit {
            return Err(format!(
                "object {name} holds {size} bytes, over the limit of {limit}"
            ));
        }
        let wait = OBJECT_WAIT + Duration::from_secs_f64(size as f64 / OBJECT_BYTES_PER_SEC);
        let mut out = Vec::with_capacity(size);
        tokio::time::timeout(wait, object.take(limit as u64 + 1).read_to_end(&mut out))
            .await
            .map_err(|_| {
                format!(
                    "reading object {name} ({size} bytes) did not finish within {wait:?}: may \
                     this user publish to $JS.FC.OBJ_amorsize.> (the object store's flow \
                     control)?"
                )
            })?
            .map_err(|e| self.redact(&format!("reading object {name}: {e}")))?;
        if out.len() > limit {
            return Err(format!("object {name} is over the limit of {limit} bytes"));
        }
        Ok(out)
    }

    /// Deletes object `name`, if it is there.
    pub(crate) async fn delete_object(&self, name: &str) {
        if let Ok(bucket) = self.bucket().await {
            let _ = bucket.delete(name).await;
        }
    }

    /// Publishes to a JetStream subject and waits for the stream's acknowledgement,
    /// trying again (the broker may be restarting) until `patience` has passed.
    /// Returns the message's stream sequence.
    pub(crate) async fn publish(
        &self,
        subject: String,
        body: Vec<u8>,
        patience: Duration,
    ) -> Result<u64, String> {
        let started = Instant::now();
        let body = bytes_of(body);
        let mut pause = Duration::from_millis(50);
        loop {
            let attempt = async {
                let ack = self
                    .js
                    .publish(subject.clone(), body.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                ack.await.map(|a| a.sequence).map_err(|e| e.to_string())
            };
            match attempt.await {
                Ok(seq) => return Ok(seq),
                Err(e) if started.elapsed() >= patience => {
                    return Err(self.redact(&format!(
                        "publishing to {subject} failed for {:?}: {e}",
                        started.elapsed()
                    )));
                }
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Asks every worker listening who it is, collecting answers for `wait`.
    pub(crate) async fn ping(&self, wait: Duration) -> Result<Vec<Hello>, String> {
        let inbox = self.client.new_inbox();
        let mut replies = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| self.redact(&format!("ping: {e}")))?;
        self.client
            .publish_with_reply(
                PING,
                inbox,
                bytes_of(crate::process::registry::hash().to_le_bytes().to_vec()),
            )
            .await
            .map_err(|e| self.redact(&format!("ping: {e}")))?;
        let _ = self.client.flush().await;
        // Answers come within a round trip of each other: once some came, a short
        // quiet spell ends the wait, so a cluster with workers costs little of `wait`.
        let mut hellos = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let until = match hellos.is_empty() {
                true => deadline,
                false => deadline.min(tokio::time::Instant::now() + PING_QUIET),
            };
            match tokio::time::timeout_at(until, replies.next()).await {
                Ok(Some(m)) => {
                    if let Ok(h) = codec::decode::<Hello>(&m.payload) {
                        hellos.push(h);
                    }
                }
                _ => break,
            }
        }
        let _ = replies.unsubscribe().await;
        Ok(hellos)
    }
}

/// A body as the client's byte type.
pub(crate) fn bytes_of(v: Vec<u8>) -> bytes::Bytes {
    bytes::Bytes::from(v)
}

/// The driver's connection, made on first use from `AMORSIZE_CLUSTER` and kept for the
/// process. A failure is remembered for [`RETRY_AFTER`], so that jobs do not each
/// wait for an unreachable broker.
pub(crate) fn driver(settings: &Settings) -> Result<Arc<Broker>, String> {
    /// How long a failed connection is remembered.
    const RETRY_AFTER: Duration = Duration::from_secs(30);
    type Slot = Option<(Settings, Result<Arc<Broker>, (String, Instant)>)>;
    static DRIVER: Mutex<Slot> = Mutex::new(None);
    let mut slot = DRIVER.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((known, result)) = slot.as_ref()
        && known == settings
    {
        match result {
            Ok(b) => return Ok(Arc::clone(b)),
            Err((why, at)) if at.elapsed() < RETRY_AFTER => return Err(why.clone()),
            Err(_) => {}
        }
    }
    let s = settings.clone();
    let result = block(async move { Broker::connect(s, "amorsize driver").await })
        .and_then(|r| r)
        .map(Arc::new);
    let out = result.clone();
    *slot = Some((settings.clone(), result.map_err(|e| (e, Instant::now()))));
    out
}
