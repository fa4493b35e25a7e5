//! Running the rest of a job on the backend its plan chose: the sampled head first,
//! then every item not yet pulled, each exactly once, in input order.

use std::time::{Duration, Instant};

use super::pipeline::{Spawn, Start, Work};
use super::{Pipeline, Windowed};
use crate::context::Context;
use crate::limits::MAX_CHUNK;
use crate::plan::{Backend, Plan};
use crate::plumbing::{
    ChunkFold, Chunker, Feedback, Finish, Stage, Steer, TAPER_CHUNKS_PER_WORKER, Watch,
};
use crate::progress::Progress;

/// Worker processes taken for a job planned on them, or why there are none.
#[cfg(unix)]
pub(crate) type ProcessWorkers = Result<Vec<crate::process::handle::Worker>, String>;

/// What is left of a job after its sample.
pub(crate) struct Rest<'p, I, A, St> {
    pub source: I,
    /// Input index of the first item of `source`.
    pub first: usize,
    /// The sampled items' outputs, folded: emitted first.
    pub head: Option<A>,
    /// The sample's stage state, if there was a sample.
    pub state: Option<St>,
    pub progress: &'p Progress,
    /// Where every chunk's time is recorded.
    pub feedback: &'p Feedback,
    /// Who gives a new course when the items drift far off the plan, when the job may
    /// be re-planned.
    pub steer: Option<&'p Steer<'p>>,
}

impl<'p, I: Iterator, A, St> Rest<'p, I, A, St> {
    /// The rest cut into chunks of `size` (growing if the length was `estimated`), with
    /// the sampled head and the progress counter.
    fn into_chunks(self, size: usize, estimated: Option<usize>) -> Chunked<'p, I, A> {
        let chunks = Chunker::new(self.source, self.first, size).growing(estimated);
        (chunks, self.head, self.progress)
    }

    /// The rest as `(input index, item)`, each counted as progress when pulled, and the
    /// sampled head: what the process and cluster executors cut into chunks themselves.
    #[cfg(unix)]
    fn indexed(self) -> (impl Iterator<Item = (usize, I::Item)> + 'p, Option<A>)
    where
        I: 'p,
    {
        let progress = self.progress;
        let counted = self.source.inspect(move |_| progress.add(1));
        ((self.first..).zip(counted), self.head)
    }
}

/// The rest cut into chunks, the sampled head, and the progress counter.
type Chunked<'p, I, A> = (Chunker<I>, Option<A>, &'p Progress);

/// Runs the chunks on the pipelined executor, with helpers spawned in `scope` (the
/// progress bar, if any, counts items in `work`).
fn pipelined<'a, Sp, T, I, S, K, C>(
    scope: &Sp,
    work: Work<'a, S, K>,
    fin: C,
    (chunks, head, _): Chunked<'a, I, K::Acc>,
    start: Start<'a>,
) -> C::Output
where
    Sp: Spawn<'a>,
    T: Send + 'a,
    I: Iterator<Item = T>,
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    K::Acc: 'a,
    C: Finish<S::Out, K>,
{
    let accs = Pipeline::start(scope, work, chunks, start);
    fin.chunks(work.fold, head, accs)
}

/// How the rest of a job runs: the plan and what was prepared for it.
pub(crate) struct Run<'p> {
    pub plan: &'p Plan,
    pub context: Context,
    /// For a plan on processes: its workers, already started, or why none could be.
    #[cfg(unix)]
    pub workers: Option<ProcessWorkers>,
    /// The longest an item may run on a worker process.
    pub item_timeout: Option<Duration>,
}

/// Runs the rest of a job on the planned backend.
pub(crate) fn execute<T, I, S, K, C>(
    run: Run<'_>,
    stage: &S,
    fold: &K,
    fin: C,
    rest: Rest<'_, I, K::Acc, S::State>,
) -> C::Output
where
    T: Send,
    I: Iterator<Item = T>,
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    C: Finish<S::Out, K>,
{
    let Run { plan, context, .. } = run;
    let (workers, chunk) = (plan.workers.max(1), plan.chunk_size.max(1));
    // The input's length was unknown: the model planned for an estimate.
    let estimated = match plan.sample.remaining_items {
        None if plan.sample.items > 0 => plan.remaining_items,
        _ => None,
    };
    let end = plan
        .sample
        .remaining_items
        .map(|n| rest.first.saturating_add(n));
    let work = Work {
        stage,
        fold,
        feedback: rest.feedback,
        progress: rest.progress,
    };
    let watch = rest
        .steer
        .map(|steer| Watch::new(steer, rest.feedback, plan.sample.mean_item_secs));
    let spare = super::pipeline::spare_helper(plan);
    let start = Start {
        workers,
        spare,
        watch,
        end,
    };
    match plan.backend {
        // On a rayon worker the caller must not block its thread; and items that hand
        // their own work to rayon would, run on the caller (outside the pool), wait
        // for it while the pool's threads run other chunks. Both run windows of chunks
        // on rayon's own work stealing instead, where the items' rayon calls share the
        // pool.
        Backend::Rayon
            if context == Context::RayonWorker || plan.sample.waits_on_other_threads() =>
        {
            let feedback = rest.feedback;
            let (chunks, head, progress) = rest.into_chunks(chunk, estimated);
            let chunks = chunks.tapering(end, workers, TAPER_CHUNKS_PER_WORKER);
            let accs = Windowed::new(
                (stage, fold, feedback),
                chunks,
                (workers, plan.workers_capped()),
                progress,
                (start.watch, end),
            );
            fin.chunks(fold, head, accs)
        }
        Backend::Rayon => rayon::in_place_scope(|s| {
            let (chunks, head, progress) = rest.into_chunks(chunk, estimated);
            let chunks = chunks
                .ramping()
                .tapering(end, workers, TAPER_CHUNKS_PER_WORKER);
            pipelined(s, work, fin, (chunks, head, progress), start)
        }),
        // The pool runs the helpers; the caller works besides (see `pipeline`).
        Backend::Threads => {
            super::blocking::scope(super::pipeline::helpers_for(workers, spare), |s| {
                let (chunks, head, progress) = rest.into_chunks(chunk, estimated);
                let chunks = chunks
                    .ramping()
                    .tapering(end, workers, TAPER_CHUNKS_PER_WORKER);
                pipelined(s, work, fin, (chunks, head, progress), start)
            })
        }
        #[cfg(unix)]
        Backend::Processes => {
            let Some(call) = stage.task_call() else {
                // The model plans processes only for a registered task.
                return serial(stage, fold, fin, rest);
            };
            let taken = match run.workers {
                Some(taken) => taken,
                None => match crate::process::idle::checkout(workers) {
                    (ws, Some(e)) if ws.is_empty() => Err(e.to_string()),
                    (ws, _) => Ok(ws),
                },
            };
            let (items, head) = rest.indexed();
            let accs = match taken {
                Ok(pool) => super::Processes::new(&call, fold, pool, items, chunk),
                Err(why) => {
                    super::Processes::new(&call, fold, Vec::new(), items, chunk).cannot_start(why)
                }
            }
            .item_timeout(run.item_timeout)
            .expected_item_secs(plan.sample.mean_item_secs);
            fin.chunks(fold, head, accs)
        }
        #[cfg(all(unix, feature = "cluster"))]
        Backend::Cluster => {
            let Some(call) = stage.task_call() else {
                // The model plans the cluster only for a registered task.
                return serial(stage, fold, fin, rest);
            };
            let link = match crate::cluster::link() {
                Ok(link) => link,
                Err(why) => {
                    // The broker went away between the plan and now: the items run here.
                    crate::progress::log_line(&format!(
                        "amorsize: the cluster cannot take this job ({why}); it runs serially \
                         here"
                    ));
                    return serial(stage, fold, fin, rest);
                }
            };
            let (items, head) = rest.indexed();
            let accs =
                crate::cluster::driver::Cluster::new(&call, fold, link, items, (workers, chunk));
            fin.chunks(fold, head, accs)
        }
        _ => match start.watch {
            Some(watch) if worth_watching(plan) => {
                watched_serial(work, fin, rest, watch, (end, spare), context)
            }
            _ => serial(stage, fold, fin, rest),
        },
    }
}

/// Predicted work below which a serial plan runs as plain serial code, unwatched: a
/// job this short pays nothing for the watch.
const WATCH_MIN_SECS: f64 = 50e-6;
/// Work between two looks at the watch on a watched serial run.
const WATCH_EVERY_SECS: f64 = 1e-3;
/// A batch that has run this many times its share of work ends early (its items turned
/// costlier), checked a few times per batch.
const WATCH_OVERRUN: f64 = 2.0;
/// Clock reads inside one batch, to notice an overrun (about 25 ns each: 0.2 % of the
/// batch).
const WATCH_READS_PER_BATCH: usize = 64;

fn worth_watching(plan: &Plan) -> bool {
    let n = plan.remaining_items.unwrap_or(0) as f64;
    n * plan.sample.mean_item_secs >= WATCH_MIN_SECS
}

/// A serial run that looks at its watch after every [`WATCH_EVERY_SECS`] of work (a
/// batch of items pulled lazily on the caller, with the sample's stage state) and, when
/// the items turn out far costlier than sampled and the new course is parallel, runs
/// the rest on rayon's pipelined executor.
fn watched_serial<'a, T, I, S, K, C>(
    work: Work<'a, S, K>,
    fin: C,
    rest: Rest<'a, I, K::Acc, S::State>,
    watch: Watch<'a>,
    (end, spare): (Option<usize>, bool),
    context: Context,
) -> C::Output
where
    T: Send,
    I: Iterator<Item = T>,
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    C: Finish<S::Out, K>,
{
    let Rest {
        source,
        first,
        head,
        state,
        progress,
        ..
    } = rest;
    let batch = batch_for(watch.expected_secs(), MAX_CHUNK);
    let serial = OnCaller {
        source,
        next: first,
        st: state.unwrap_or_else(|| work.stage.state()),
        watch,
        batch,
    };
    rayon::in_place_scope(|scope| {
        let accs = Watched {
            phase: Phase::Serial(Some(serial)),
            scope,
            work,
            end,
            spare,
            progress,
            context,
        };
        fin.chunks(work.fold, head, accs)
    })
}

/// Items per batch for [`WATCH_EVERY_SECS`] of work at `per_item` seconds each, at most
/// `most`.
fn batch_for(per_item: f64, most: usize) -> usize {
    ((WATCH_EVERY_SECS / per_item.max(1e-9)).ceil() as usize).clamp(1, most.max(1))
}

/// A watched serial run on the caller: the rest of the source, the next item's index,
/// the stage state, the watch, and the next batch's size.
struct OnCaller<'a, I, St> {
    source: I,
    next: usize,
    st: St,
    watch: Watch<'a>,
    batch: usize,
}

/// Where a watched serial run is: on the caller, or handed to a pipeline.
enum Phase<'s, 'a, S: Stage<T>, K: ChunkFold<S::Out>, T, I> {
    /// `None` once the source ended, and while switching.
    Serial(Option<OnCaller<'a, I, S::State>>),
    Parallel(Pipeline<'s, 'a, rayon::Scope<'a>, S, K, T, I>),
}

/// The partial results of a watched serial run, batch by batch, then the pipeline's.
struct Watched<'s, 'a, S: Stage<T>, K: ChunkFold<S::Out>, T, I> {
    phase: Phase<'s, 'a, S, K, T, I>,
    scope: &'s rayon::Scope<'a>,
    work: Work<'a, S, K>,
    end: Option<usize>,
    /// Whether a spare helper runs (see `pipeline::spare_helper`).
    spare: bool,
    progress: &'a Progress,
    context: Context,
}

/// Up to `left` items of `src`, counted in `taken`, ending early once `deadline` has
/// passed (the clock is read every `stride` items).
struct Batch<'b, I> {
    src: &'b mut I,
    left: usize,
    taken: &'b mut usize,
    stride: usize,
    until_read: usize,
    deadline: Instant,
    ended: &'b mut bool,
}

impl<I: Iterator> Iterator for Batch<'_, I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        if self.left == 0 {
            return None;
        }
        if self.until_read == 0 {
            if Instant::now() >= self.deadline {
                return None;
            }
            self.until_read = self.stride;
        }
        self.until_read -= 1;
        self.left -= 1;
        match self.src.next() {
            Some(x) => {
                *self.taken += 1;
                Some(x)
            }
            None => {
                *self.ended = true;
                self.left = 0;
                None
            }
        }
    }
}

impl<'s, 'a, S, K, T, I> Iterator for Watched<'s, 'a, S, K, T, I>
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    K::Acc: 'a,
    T: Send + 'a,
    I: Iterator<Item = T>,
{
    type Item = K::Acc;

    fn next(&mut self) -> Option<K::Acc> {
        let serial = match &mut self.phase {
            Phase::Parallel(p) => return p.next(),
            Phase::Serial(serial) => serial,
        };
        let on = serial.as_mut()?;
        let Work { stage, fold, .. } = self.work;
        let (mut taken, mut ended) = (0usize, false);
        let start = Instant::now();
        let budget = WATCH_OVERRUN * WATCH_EVERY_SECS;
        let batch = Batch {
            src: &mut on.source,
            left: on.batch,
            taken: &mut taken,
            stride: (on.batch / WATCH_READS_PER_BATCH).max(1),
            until_read: (on.batch / WATCH_READS_PER_BATCH).max(1),
            deadline: start + Duration::from_secs_f64(budget),
            ended: &mut ended,
        };
        let acc = fold.fold(stage.serial(&mut on.st, on.next, batch));
        let secs = start.elapsed().as_secs_f64();
        if taken == 0 {
            *serial = None;
            return None;
        }
        self.work.feedback.record(taken, secs);
        self.progress.add(taken);
        on.next += taken;
        if ended {
            *serial = None;
            return Some(acc);
        }
        // The next batch: about the same work at the pace just measured, growing at
        // most twofold.
        on.batch = batch_for(secs / taken as f64, on.batch.saturating_mul(2));
        let at = on.next;
        let remaining = self.end.map(|e| e.saturating_sub(at));
        // Only a free caller can start rayon workers (inside a rayon worker or a
        // worker process the plan stays serial).
        if self.context == Context::Free
            && let Some(course) = on.watch.check(at, remaining, Backend::Serial)
            && course.backend == Backend::Rayon
            && let Some(on) = serial.take()
        {
            let workers = course.workers.max(1);
            let mut chunks = Chunker::new(on.source, on.next, course.chunk_size).tapering(
                self.end,
                workers,
                TAPER_CHUNKS_PER_WORKER,
            );
            chunks.replanned(course.chunk_size, workers);
            let start = Start {
                workers,
                spare: self.spare,
                watch: Some(on.watch),
                end: self.end,
            };
            self.phase = Phase::Parallel(Pipeline::start(self.scope, self.work, chunks, start));
        }
        Some(acc)
    }
}

/// The serial path: sampled outputs, then the rest through the stage's std iterator
/// chain, with the sample's stage state. Counts items only when a bar is shown.
fn serial<T, I, S, K, C>(
    stage: &S,
    fold: &K,
    fin: C,
    rest: Rest<'_, I, K::Acc, S::State>,
) -> C::Output
where
    I: Iterator<Item = T>,
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    C: Finish<S::Out, K>,
{
    let Rest {
        source,
        first,
        head,
        state,
        progress,
        ..
    } = rest;
    let mut st = state.unwrap_or_else(|| stage.state());
    if progress.enabled() {
        let items = source.inspect(|_| progress.add(1));
        fin.serial(fold, head, stage.serial(&mut st, first, items))
    } else {
        fin.serial(fold, head, stage.serial(&mut st, first, source))
    }
}
