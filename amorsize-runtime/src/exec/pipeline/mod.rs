//! The pipelined executor of the `Rayon` and `Threads` backends: the caller works too.
//!
//! The caller's thread pulls chunks from the source (which need not be `Send`) into a
//! shared queue: at most a window of them queued or running, and at most twice that
//! ahead of what it has emitted (finished results wait for the ones before them).
//! Helper tasks, spawned on the backend's threads, take chunks from the queue, run them
//! and send back their partial results; the caller runs chunks from the same queue
//! whenever it has nothing to emit (refilling the queue a few times per chunk), and
//! blocks only when every queued chunk is taken and the next one to emit is still
//! running elsewhere. So no thread waits for another to hand it work, and the caller
//! holds no CPU it does not compute on.
//!
//! With `w` workers planned there are `w - 1` helpers, or `w` where items take a
//! microsecond or more ([`spare_helper`]): the caller cannot refill the queue while it
//! is inside an item, and with only `w - 1` helpers one slow item on the caller (skewed
//! work: a few items 100x the median) let them drain the queue and stop, and the job
//! ran at 0.70-0.89 of rayon's speed (0.98-1.01 with the spare helper). The spare
//! keeps the backend's threads busy meanwhile; the caller then finds fewer queued
//! chunks to run itself. Cheaper items hold the caller too briefly to matter (it
//! refills several times per chunk), and there the spare thread only competes for the
//! CPUs. Where the user capped the workers (`max_workers`, `AMORSIZE_MAX_WORKERS`)
//! there is none, so that no more than `w` items ever run at once.
//!
//! A helper that finds the queue empty waits for the caller to queue more, until the
//! source has no more items. It used to end at once and be spawned again, and a rayon
//! thread that ends a job spins before it sleeps, calling `sched_yield` between looks
//! for work: on a CPU shared with the caller each of those calls gave the caller a
//! whole time slice, while rayon, counting that thread as awake, woke no other for the
//! new helper. Right after a rayon job the next helper then started 2-4 ms late, again
//! and again, and the job ran at serial speed (0.5-0.75 of rayon's in one of every two
//! calls). Waiting never blocks for long: a waiting helper sleeps in short slices and
//! ends after a millisecond (`shared::WAIT_MOST`) without a chunk, since other rayon
//! work may need its thread (a user's nested rayon call), and rayon may have stacked it
//! on work that cannot finish before it returns (the two would otherwise wait for each
//! other). It runs nothing else meanwhile: whatever it ran would hold the job up until
//! that work ended. The caller wakes waiting helpers when it queues chunks, when the
//! source ends and when the job stops.
//!
//! Every chunk is timed into the job's [`Feedback`]; before it queues more chunks the
//! caller checks its [`Watch`], and when the items drift far off the plan it takes the
//! new course the orchestration gives: another chunk size, more or fewer helpers, or
//! none (the caller alone, as serial).

use std::collections::{BTreeMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use crossbeam_channel::{Receiver, unbounded};

mod shared;

use self::shared::{Outcome, Shared};
use super::blocking;
use crate::context::{Context, acting_as};
use crate::plan::{Backend, Plan};
use crate::plumbing::{ChunkFold, Chunker, Feedback, Stage, Watch};
use crate::progress::Progress;

/// Where helper tasks run: a rayon scope, or a scope of the blocking pool.
pub(crate) trait Spawn<'a> {
    /// The context of the backend's threads, which the caller takes on while it runs a
    /// chunk: a nested call in an item plans the same wherever the item runs.
    const CONTEXT: Context;
    /// The backend whose threads these are.
    const BACKEND: Backend;

    /// Runs `job` on one of the backend's threads, before the scope ends.
    fn spawn_job(&self, job: impl FnOnce() + Send + 'a);

    /// Lets up to `jobs` of the scope's jobs run at once (a re-plan that widens it).
    fn allow(&self, jobs: usize);
}

impl<'a> Spawn<'a> for rayon::Scope<'a> {
    const CONTEXT: Context = Context::RayonWorker;
    const BACKEND: Backend = Backend::Rayon;

    fn spawn_job(&self, job: impl FnOnce() + Send + 'a) {
        self.spawn(move |_| job());
    }

    fn allow(&self, _: usize) {}
}

impl<'a> Spawn<'a> for blocking::Scope<'a> {
    const CONTEXT: Context = Context::ThreadsPool;
    const BACKEND: Backend = Backend::Threads;

    fn spawn_job(&self, job: impl FnOnce() + Send + 'a) {
        self.spawn(job);
    }

    fn allow(&self, jobs: usize) {
        blocking::allow(jobs);
    }
}

/// How a pipeline starts: its width, and what may change its course.
pub(crate) struct Start<'a> {
    pub workers: usize,
    /// Whether a spare helper runs (see [`spare_helper`]).
    pub spare: bool,
    pub watch: Option<Watch<'a>>,
    /// Input index past the last item, when the length is known.
    pub end: Option<usize>,
}

/// What every worker of a job runs a chunk with: the stage, the fold of its outputs,
/// where to record the chunk's time, and the progress bar that counts its items.
pub(crate) struct Work<'a, S, K> {
    pub stage: &'a S,
    pub fold: &'a K,
    pub feedback: &'a Feedback,
    pub progress: &'a Progress,
}

impl<S, K> Clone for Work<'_, S, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S, K> Copy for Work<'_, S, K> {}

/// Runs one chunk of `n` items with a fresh stage state, and times it. With a progress
/// bar shown, each item is counted as it finishes.
fn run_chunk<T, S, K, I>(
    work: Work<'_, S, K>,
    first: usize,
    n: usize,
    items: I,
) -> thread::Result<K::Acc>
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    I: Iterator<Item = T>,
{
    let Work {
        stage,
        fold,
        feedback,
        progress,
    } = work;
    feedback.time(n, || {
        catch_unwind(AssertUnwindSafe(|| {
            let mut st = stage.state();
            if progress.enabled() {
                let counted = items.inspect(|_| progress.add(1));
                fold.fold(stage.serial(&mut st, first, counted))
            } else {
                fold.fold(stage.serial(&mut st, first, items))
            }
        }))
    })
}

/// A helper: runs queued chunks until the source has no more or the job stops.
fn help<T, S, K>(shared: &Shared<T, K::Acc>, work: Work<'_, S, K>)
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
{
    while let Some((seq, first, items)) = shared.next_for_helper() {
        let n = items.len();
        let r = run_chunk(work, first, n, items.into_iter());
        shared.finished.fetch_add(1, Ordering::AcqRel);
        if r.is_err() {
            shared.stop.store(true, Ordering::Relaxed);
            shared.wake();
        }
        // The receiver is gone only when the consumer stopped early.
        let _ = shared.results.send((seq, r));
    }
}

/// The caller's side of the source: it alone pulls from it (the source need not be
/// `Send`), into the shared queue.
struct Feed<'s, 'a, Sp, S, K, Src> {
    scope: &'s Sp,
    work: Work<'a, S, K>,
    src: Src,
    /// Most chunks queued or running at once.
    window: u64,
    next_send: u64,
    done: bool,
    /// Watches the items' time against the plan's, when the job may be re-planned.
    watch: Option<Watch<'a>>,
    /// Input index past the last item, when the length is known.
    end: Option<usize>,
    /// The backend the helpers run on.
    backend: Backend,
    /// Whether a spare helper runs (see [`spare_helper`]).
    spare: bool,
}

/// Items that take less than this get no spare helper (see the module's notes).
const SPARE_MIN_ITEM_SECS: f64 = 1e-6;

/// Whether a pipeline planned by `plan` runs a spare helper: items of a microsecond or
/// more, and workers the user did not cap.
pub(crate) fn spare_helper(plan: &Plan) -> bool {
    !plan.workers_capped() && plan.sample.mean_item_secs >= SPARE_MIN_ITEM_SECS
}

/// Helpers for a pipeline of `workers` workers (see the module's notes): one fewer,
/// the caller being the last, or one each with a spare.
pub(crate) fn helpers_for(workers: usize, spare: bool) -> usize {
    let workers = workers.max(1);
    if spare { workers } else { workers - 1 }
}

impl<'a, Sp, S, K, Src> Feed<'_, 'a, Sp, S, K, Chunker<Src>> {
    /// Queues chunks until `window` of them are queued or running, or the source ends,
    /// and spawns helpers for them. Finished results not yet emitted (`next_emit` is
    /// the next to emit) are held to twice the window, so memory stays bounded when
    /// one slow chunk holds up the emission of the others.
    fn fill<T>(&mut self, shared: &Arc<Shared<T, K::Acc>>, next_emit: u64)
    where
        Sp: Spawn<'a>,
        S: Stage<T>,
        K: ChunkFold<S::Out>,
        T: Send + 'a,
        K::Acc: 'a,
        Src: Iterator<Item = T>,
    {
        self.steer(shared);
        let mut queued = {
            let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let finished = shared.finished.load(Ordering::Acquire);
            while !self.done
                && self.next_send - finished < self.window
                && self.next_send - next_emit < 2 * self.window
            {
                let Some((first, items)) = self.src.next_chunk() else {
                    self.done = true;
                    shared.fed.store(true, Ordering::Release);
                    break;
                };
                queue.push_back((self.next_send, first, items));
                self.next_send += 1;
            }
            queue.len()
        };
        if queued > 0 || self.done {
            shared.wake();
        }
        // One helper per queued chunk at most.
        while queued > 0 && shared.join() {
            let (shared, work) = (Arc::clone(shared), self.work);
            self.scope.spawn_job(move || help(&shared, work));
            queued -= 1;
        }
    }

    /// Takes a new course if the items drifted far off the plan: the chunk size, the
    /// width, or serial (no helpers: the caller runs the rest).
    fn steer<T, A>(&mut self, shared: &Shared<T, A>)
    where
        Sp: Spawn<'a>,
        Src: Iterator<Item = T>,
    {
        let Some(watch) = self.watch.as_mut() else {
            return;
        };
        if self.done {
            return;
        }
        let at = self.src.next_index();
        let remaining = self.end.map(|end| end.saturating_sub(at));
        let Some(course) = watch.check(at, remaining, self.backend) else {
            return;
        };
        let (workers, helpers) = match course.backend {
            // The caller alone.
            Backend::Serial => (1, 0),
            _ => (
                course.workers.max(1),
                helpers_for(course.workers, self.spare),
            ),
        };
        self.src.replanned(course.chunk_size, workers);
        self.scope.allow(helpers);
        shared.most.store(helpers, Ordering::Release);
        shared.wake();
        self.window = crate::limits::in_flight_chunks(workers) as u64;
    }
}

/// The items of a chunk the caller runs, refilling the queue every `every` items: while
/// the caller computes (perhaps a chunk with a slow item), the helpers keep finding
/// work.
struct Refilling<I, F> {
    items: I,
    every: usize,
    left: usize,
    refill: F,
}

impl<I: Iterator, F: FnMut()> Iterator for Refilling<I, F> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        if self.left == 0 {
            (self.refill)();
            self.left = self.every;
        }
        self.left -= 1;
        self.items.next()
    }
}

/// An iterator over the partial results of each chunk, in input order, computed by the
/// caller and up to `helpers` helper tasks; at most `window` chunks are queued or
/// running.
///
/// Dropping it (the consumer stopped early, or is unwinding) stops the job: chunks not
/// yet started are skipped, and the scope that spawned the helpers waits for them.
pub(crate) struct Pipeline<'s, 'a, Sp, S, K, T, Src>
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
{
    feed: Feed<'s, 'a, Sp, S, K, Chunker<Src>>,
    shared: Arc<Shared<T, K::Acc>>,
    received: Receiver<Outcome<K::Acc>>,
    next_emit: u64,
    pending: BTreeMap<u64, K::Acc>,
}

impl<'s, 'a, Sp, S, K, T, Src> Pipeline<'s, 'a, Sp, S, K, T, Src>
where
    Sp: Spawn<'a>,
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    T: Send + 'a,
    K::Acc: 'a,
    Src: Iterator<Item = T>,
{
    /// A pipeline over `src` run by `workers` workers, helpers spawned in `scope`
    /// and the caller (see the module's notes), with at most two chunks per worker
    /// queued or running.
    pub(crate) fn start(
        scope: &'s Sp,
        work: Work<'a, S, K>,
        src: Chunker<Src>,
        course: Start<'a>,
    ) -> Self {
        let (results, received) = unbounded();
        let helpers = helpers_for(course.workers, course.spare);
        scope.allow(helpers);
        Pipeline {
            feed: Feed {
                scope,
                work,
                src,
                window: crate::limits::in_flight_chunks(course.workers) as u64,
                next_send: 0,
                done: false,
                watch: course.watch,
                end: course.end,
                backend: Sp::BACKEND,
                spare: course.spare,
            },
            shared: Arc::new(Shared {
                queue: Mutex::new(VecDeque::new()),
                results,
                helpers: AtomicUsize::new(0),
                most: AtomicUsize::new(helpers),
                finished: AtomicU64::new(0),
                stop: AtomicBool::new(false),
                fed: AtomicBool::new(false),
                waiting: Mutex::new(Vec::new()),
                waiting_count: AtomicUsize::new(0),
            }),
            received,
            next_emit: 0,
            pending: BTreeMap::new(),
        }
    }

    fn fill(&mut self) {
        self.feed.fill(&self.shared, self.next_emit);
    }

    /// Runs a queued chunk on the caller, in the backend's context, refilling the queue
    /// a few times along the way.
    fn run_here(&mut self, first: usize, items: Vec<T>) -> thread::Result<K::Acc> {
        let n = items.len();
        let (feed, shared, next_emit) = (&mut self.feed, &self.shared, self.next_emit);
        let work = feed.work;
        let items = Refilling {
            items: items.into_iter(),
            every: (n / 4).max(1),
            left: (n / 4).max(1),
            refill: || feed.fill(shared, next_emit),
        };
        let r = acting_as(Sp::CONTEXT, || run_chunk(work, first, n, items));
        self.shared.finished.fetch_add(1, Ordering::AcqRel);
        r
    }

    /// Records one chunk's outcome; a panic stops the job and reaches the caller.
    fn record(&mut self, (seq, r): Outcome<K::Acc>) {
        match r {
            Ok(a) => {
                self.pending.insert(seq, a);
            }
            Err(payload) => {
                // The other workers stop; the scope waits for the running chunks
                // before this panic reaches the caller, as in rayon.
                self.shared.stop.store(true, Ordering::Relaxed);
                self.shared.wake();
                resume_unwind(payload)
            }
        }
    }
}

impl<'a, Sp, S, K, T, Src> Iterator for Pipeline<'_, 'a, Sp, S, K, T, Src>
where
    Sp: Spawn<'a>,
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
            if self.feed.done && self.next_emit == self.feed.next_send {
                return None;
            }
            // Results already back, without blocking.
            while let Ok(outcome) = self.received.try_recv() {
                self.record(outcome);
            }
            if self.pending.contains_key(&self.next_emit) {
                continue;
            }
            // Nothing to emit yet: work instead of waiting.
            if let Some((seq, first, items)) = self.shared.pop() {
                let r = self.run_here(first, items);
                self.record((seq, r));
                continue;
            }
            // Every queued chunk is taken; the next one to emit runs elsewhere.
            match self.received.recv() {
                Ok(outcome) => self.record(outcome),
                // The shared state holds a sender, so the channel never closes.
                Err(_) => unreachable!("amorsize: the result channel closed"),
            }
        }
    }
}

impl<Sp, S, K, T, Src> Drop for Pipeline<'_, '_, Sp, S, K, T, Src>
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
{
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake();
    }
}
