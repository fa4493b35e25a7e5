//! The worker side: this same executable, started with `AMORSIZE_CLUSTER_WORKER` set,
//! serves its registered tasks from the broker instead of running `main`.
//!
//! Entered from a load-time constructor, as worker processes are (or [`crate::init`]). The
//! worker pulls one chunk per free slot from its build's shared consumer, runs the
//! items on a blocking thread (each under `catch_unwind`, like a worker process),
//! sends in-progress acknowledgements while a chunk runs, publishes the result, and
//! only then acknowledges the chunk: a worker that dies before that leaves the chunk
//! to be delivered again after `ack_wait`. SIGTERM or SIGINT stops it taking chunks;
//! the running ones get the grace period to finish and are then released (a
//! negative acknowledgement: delivered again at once to another worker).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use tokio::sync::{Notify, Semaphore};

use super::broker::{self, Broker, Hello};
use super::settings::{Settings, WORKER_VAR, WorkerSettings};
use super::wire::{self, ChunkHeader, Outcome, ResultHeader, Status};
use crate::context::enter_worker_process;
use crate::error::panic_text;
use crate::process::registry::{self, TaskEntry, WireId};

/// Largest section (a chunk's items) a worker reads from the object store.
const MAX_SECTION_BYTES: usize = 1 << 30;
/// How long a worker keeps trying to publish a result before it releases the chunk.
const RESULT_PATIENCE: Duration = Duration::from_secs(60);

#[ctor::ctor(unsafe, priority = late)]
fn amorsize_cluster_worker_entry() {
    // SAFETY (of the constructor as a whole, `unsafe` in ctor's terms): it runs before
    // `main` on the only thread; it reads the environment and, in a worker, starts its
    // own runtime and exits, none of which needs set-up by `main`.
    enter_if_marked(true);
}

/// Becomes a cluster worker and exits if `AMORSIZE_CLUSTER_WORKER` is set; returns
/// otherwise. `from_ctor`: called from the load-time constructor (single-threaded).
pub(crate) fn enter_if_marked(from_ctor: bool) {
    let Some(settings) = Settings::from_env(WORKER_VAR) else {
        return;
    };
    enter_worker_process();
    if from_ctor {
        // SAFETY: load-time constructors run before `main` on the process's only
        // thread, so nothing reads the environment concurrently. Removing the variable
        // keeps programs that a task starts from becoming workers.
        unsafe { std::env::remove_var(WORKER_VAR) };
    }
    let code = match settings.and_then(|s| WorkerSettings::from_env().map(|w| (s, w))) {
        Ok((s, w)) => run(s, w),
        Err(e) => {
            eprintln!("amorsize cluster worker: {e}");
            2
        }
    };
    std::process::exit(code)
}

fn run(settings: Settings, worker: WorkerSettings) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("amorsize-cluster-worker")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("amorsize cluster worker: cannot start its runtime: {e}");
            return 4;
        }
    };
    runtime.block_on(serve(settings, worker))
}

/// Who this worker is, for messages: host and process id.
fn identity() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let host = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "?".to_string()
    };
    format!("{host}:{}", std::process::id())
}

/// The executable's file name, to tell builds apart in messages.
pub(crate) fn exe_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "?".to_string())
}

/// Set by SIGTERM or SIGINT.
struct Stop {
    flag: AtomicBool,
    notify: Notify,
}

impl Stop {
    fn stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

fn watch_signals(stop: Arc<Stop>) {
    use tokio::signal::unix::{SignalKind, signal};
    for kind in [SignalKind::terminate(), SignalKind::interrupt()] {
        let stop = Arc::clone(&stop);
        if let Ok(mut s) = signal(kind) {
            tokio::spawn(async move {
                if s.recv().await.is_some() {
                    stop.flag.store(true, Ordering::SeqCst);
                    stop.notify.notify_waiters();
                }
            });
        }
    }
}

async fn serve(settings: Settings, worker: WorkerSettings) -> i32 {
    let me = identity();
    let build = registry::hash();
    let exe = exe_name();
    let stop = Arc::new(Stop {
        flag: AtomicBool::new(false),
        notify: Notify::new(),
    });
    watch_signals(Arc::clone(&stop));

    // A worker may start before its broker: keep trying, saying so now and then.
    let mut said = None::<Instant>;
    let broker = loop {
        match Broker::connect(settings.clone(), "amorsize worker").await {
            Ok(b) => break Arc::new(b),
            Err(e) => {
                if said.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    eprintln!("amorsize cluster worker {me}: {e}; trying again");
                    said = Some(Instant::now());
                }
                if stop.stopped() {
                    return 0;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let consumer = loop {
        match broker.workers_consumer(build).await {
            Ok(c) => break c,
            Err(e) => {
                eprintln!("amorsize cluster worker {me}: {e}; trying again");
                if stop.stopped() {
                    return 0;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let ack_wait = consumer.cached_info().config.ack_wait;
    let hello = Hello {
        build,
        slots: worker.slots as u32,
        worker: me.clone(),
        exe: exe.clone(),
    };
    answer_pings(Arc::clone(&broker), hello).await;
    eprintln!(
        "amorsize cluster worker {me}: serving the tasks of {exe} (build {build:016x}) from \
         {}, {} chunk(s) at a time",
        broker.address, worker.slots
    );

    let slots = Arc::new(Semaphore::new(worker.slots));
    let release = Arc::new(Notify::new());
    let mut running = tokio::task::JoinSet::new();
    let mut idle_since = Instant::now();
    let mut pause = Duration::from_millis(100);
    while !stop.stopped() {
        while running.try_join_next().is_some() {}
        if !running.is_empty() {
            idle_since = Instant::now();
        } else if worker
            .idle
            .is_some_and(|limit| idle_since.elapsed() >= limit)
        {
            eprintln!(
                "amorsize cluster worker {me}: idle for {:?}, exiting",
                idle_since.elapsed()
            );
            return 0;
        }
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.notify.notified() => break,
        };
        let fetched = tokio::select! {
            b = consumer.batch().max_messages(1).expires(Duration::from_millis(500)).messages() => b,
            _ = stop.notify.notified() => break,
        };
        let message = match fetched {
            Ok(mut batch) => batch.next().await,
            Err(e) => {
                eprintln!(
                    "amorsize cluster worker {me}: {}",
                    broker.redact(&e.to_string())
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        match message {
            Some(Ok(m)) => {
                pause = Duration::from_millis(100);
                idle_since = Instant::now();
                let job = Chunk {
                    broker: Arc::clone(&broker),
                    build,
                    me: me.clone(),
                    ack_wait,
                    release: Arc::clone(&release),
                };
                running.spawn(async move {
                    job.run(m).await;
                    drop(permit);
                });
            }
            Some(Err(e)) => {
                // A pull that ended with a status (timeout, a restart): try again.
                let text = e.to_string();
                if !text.contains("timeout") && !text.contains("Timeout") {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
            None => {}
        }
    }
    if !running.is_empty() {
        eprintln!(
            "amorsize cluster worker {me}: stopping; finishing {} chunk(s) (up to {:?})",
            running.len(),
            worker.grace
        );
        let finished = tokio::time::timeout(worker.grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            eprintln!("amorsize cluster worker {me}: releasing unfinished chunks to other workers");
            release.notify_waiters();
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while running.join_next().await.is_some() {}
            })
            .await;
        }
    }
    let _ = broker.client.flush().await;
    0
}

/// Answers pings with who this worker is; says once per foreign build that its jobs
/// are not this worker's.
async fn answer_pings(broker: Arc<Broker>, hello: Hello) {
    let Ok(mut pings) = broker.client.subscribe(broker::PING).await else {
        return;
    };
    let mut body = Vec::new();
    if crate::process::codec::encode(&hello, &mut body).is_err() {
        return;
    }
    let body = broker::bytes_of(body);
    tokio::spawn(async move {
        let mut refused = std::collections::HashSet::new();
        while let Some(ping) = pings.next().await {
            let from = ping
                .payload
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes);
            if let Some(other) = from.filter(|&b| b != hello.build)
                && refused.insert(other)
            {
                eprintln!(
                    "amorsize cluster worker {}: refusing the jobs of build {other:016x}: this \
                     worker runs {} (build {:016x}), a different executable; start workers \
                     from the driver's executable",
                    hello.worker, hello.exe, hello.build
                );
            }
            if let Some(reply) = ping.reply {
                let _ = broker.client.publish(reply, body.clone()).await;
            }
        }
    });
}

/// One chunk being served.
struct Chunk {
    broker: Arc<Broker>,
    build: u64,
    me: String,
    ack_wait: Duration,
    release: Arc<Notify>,
}

impl Chunk {
    async fn run(self, m: jetstream::Message) {
        let delivered = m.info().map(|i| i.delivered).unwrap_or(1);
        let (header, inline) = match wire::split::<ChunkHeader>(&m.payload) {
            Ok((h, section)) => (h, section.to_vec()),
            Err(e) => {
                // Not a chunk anyone can answer: nothing says whose it is.
                eprintln!(
                    "amorsize cluster worker {}: dropped a malformed message on {}: {e}",
                    self.me, m.subject
                );
                let _ = m.ack_with(AckKind::Term).await;
                return;
            }
        };
        let task = match self.task_for(&header) {
            Ok(t) => t,
            Err(why) => {
                eprintln!("amorsize cluster worker {}: {why}", self.me);
                self.answer(&m, &header, Status::Refused(why), Vec::new(), delivered)
                    .await;
                return;
            }
        };
        let section = match &header.object {
            None => inline,
            Some(name) => match self.broker.get_object(name, MAX_SECTION_BYTES).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    eprintln!("amorsize cluster worker {}: {e}", self.me);
                    let _ = m.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
                    return;
                }
            },
        };
        let mut work = tokio::task::spawn_blocking(move || run_items(task, &section));
        let every = (self.ack_wait / 3).max(Duration::from_millis(100));
        let outcomes = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = tokio::time::sleep(every) => {
                    let _ = m.ack_with(AckKind::Progress).await;
                }
                _ = self.release.notified() => {
                    let _ = m.ack_with(AckKind::Nak(None)).await;
                    return;
                }
            }
        };
        match outcomes {
            Ok(Ok(body)) => {
                self.answer(&m, &header, Status::Done, body, delivered)
                    .await
            }
            Ok(Err(why)) => {
                self.answer(&m, &header, Status::Refused(why), Vec::new(), delivered)
                    .await
            }
            // `run_items` catches every panic of a task; its own would be a bug here.
            Err(e) => {
                eprintln!("amorsize cluster worker {}: {e}", self.me);
                let _ = m.ack_with(AckKind::Nak(None)).await;
            }
        }
    }

    /// The task a chunk names, if this worker can run it.
    fn task_for(&self, h: &ChunkHeader) -> Result<&'static TaskEntry, String> {
        if h.version != wire::VERSION {
            return Err(format!(
                "refused chunk {} of job {}: wire version {} (this worker speaks {})",
                h.seq,
                h.job,
                h.version,
                wire::VERSION
            ));
        }
        if h.build != self.build {
            return Err(format!(
                "refused chunk {} of job {}: it comes from build {:016x}, and this worker runs \
                 {} (build {:016x}), a different executable; start workers from the driver's \
                 executable",
                h.seq,
                h.job,
                h.build,
                exe_name(),
                self.build
            ));
        }
        registry::by_wire_id(WireId(h.task), &h.module, &h.name, &h.signature).ok_or_else(|| {
            format!(
                "refused chunk {} of job {}: no task {}::{}: {} at registry index {}",
                h.seq, h.job, h.module, h.name, h.signature, h.task
            )
        })
    }

    /// Publishes the chunk's result (its outcomes in the object store when they do not
    /// fit in a message), then acknowledges the chunk. If the result cannot be
    /// published, the chunk is released to be delivered again.
    async fn answer(
        &self,
        m: &jetstream::Message,
        h: &ChunkHeader,
        status: Status,
        outcomes: Vec<u8>,
        delivered: i64,
    ) {
        let mut header = ResultHeader {
            version: wire::VERSION,
            build: self.build,
            job: h.job.clone(),
            seq: h.seq,
            worker: self.me.clone(),
            status,
            object: None,
        };
        let mut body = Vec::new();
        if wire::start(&header, &mut body).is_err() {
            let _ = m.ack_with(AckKind::Term).await;
            return;
        }
        if body.len() + outcomes.len() > self.broker.max_body() {
            let name = format!("{}.{}.out.{delivered}", h.job, h.seq);
            if let Err(e) = self.broker.put_object(&name, &outcomes).await {
                eprintln!("amorsize cluster worker {}: {e}", self.me);
                let _ = m.ack_with(AckKind::Nak(None)).await;
                return;
            }
            header.object = Some(name);
            if wire::start(&header, &mut body).is_err() {
                let _ = m.ack_with(AckKind::Term).await;
                return;
            }
        } else {
            body.extend_from_slice(&outcomes);
        }
        let subject = broker::result_subject(&h.job);
        match self.broker.publish(subject, body, RESULT_PATIENCE).await {
            Ok(_) => {
                // A lost acknowledgement only means the chunk runs again: the driver
                // keeps the first result of each chunk.
                for _ in 0..3 {
                    if m.double_ack().await.is_ok() {
                        break;
                    }
                }
            }
            Err(e) => {
                eprintln!("amorsize cluster worker {}: {e}", self.me);
                let _ = m.ack_with(AckKind::Nak(None)).await;
            }
        }
    }
}

/// Runs every item of a section; `Err` when the section is malformed.
fn run_items(task: &'static TaskEntry, section: &[u8]) -> Result<Vec<u8>, String> {
    let items = wire::parse_items(section).map_err(|e| format!("a malformed chunk: {e}"))?;
    let mut out = Vec::new();
    wire::outcomes_start(items.len(), &mut out);
    let mut result = Vec::new();
    for item in items {
        result.clear();
        match catch_unwind(AssertUnwindSafe(|| task.run(item, &mut result))) {
            Ok(Ok(())) => wire::push_outcome(&Outcome::Output(&result), &mut out),
            Ok(Err(e)) => wire::push_outcome(&Outcome::Failed(&e.to_string()), &mut out),
            Err(payload) => {
                let (message, kind) = panic_text(&*payload);
                wire::push_outcome(&Outcome::Panicked(&message, kind), &mut out)
            }
        }
    }
    Ok(out)
}
