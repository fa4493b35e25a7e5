//! Running the rest of a job on the backend its plan chose: the sampled head first,
//! then every item not yet pulled, each exactly once, in input order.

use std::time::Duration;

use super::pipeline::{Spawn, Start, Work};
use super::{Pipeline, Windowed};
use crate::context::Context;
use crate::limits::MAX_CHUNK;
use crate::plan::{Backend, Plan};
use crate::plumbing::{ChunkFold, Chunker, Feedback, Finish, Stage, Steer, Watch};
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
}

/// The rest cut into chunks, the sampled head, and the progress counter.
type Chunked<'p, I, A> = (Chunker<I>, Option<A>, &'p Progress);

/// Runs the chunks on the pipelined executor, with helpers spawned in `scope`.
fn pipelined<'a, Sp, T, I, S, K, C>(
    scope: &Sp,
    work: Work<'a, S, K>,
    fin: C,
    (chunks, head, progress): Chunked<'a, I, K::Acc>,
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
    let accs = Pipeline::start(scope, work, chunks, start, progress);
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
    };
    let watch = rest
        .steer
        .map(|steer| Watch::new(steer, rest.feedback, plan.sample.mean_item_secs));
    let start = Start {
        workers,
        caller_works: !(plan.backend == Backend::Rayon && plan.sample.waits_on_other_threads()),
        watch,
        end,
    };
    match plan.backend {
        Backend::Rayon if context == Context::RayonWorker => {
            let feedback = rest.feedback;
            let (chunks, head, progress) = rest.into_chunks(chunk, estimated);
            let accs = Windowed::new(
                (stage, fold, feedback),
                chunks,
                workers,
                progress,
                (start.watch, end),
            );
            fin.chunks(fold, head, accs)
        }
        Backend::Rayon => rayon::in_place_scope(|s| {
            let (chunks, head, progress) = rest.into_chunks(chunk, estimated);
            pipelined(s, work, fin, (chunks.ramping(), head, progress), start)
        }),
        // The caller is one of the workers: the pool runs the others.
        Backend::Threads => super::blocking::scope(workers - 1, |s| {
            let (chunks, head, progress) = rest.into_chunks(chunk, estimated);
            pipelined(s, work, fin, (chunks.ramping(), head, progress), start)
        }),
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
            let Rest {
                source,
                first,
                head,
                progress,
                ..
            } = rest;
            let counted = source.inspect(|_| progress.add(1));
            let items = (first..).zip(counted);
            let accs = match taken {
                Ok(pool) => super::Processes::new(&call, fold, pool, items, chunk),
                Err(why) => {
                    super::Processes::new(&call, fold, Vec::new(), items, chunk).cannot_start(why)
                }
            }
            .item_timeout(run.item_timeout);
            fin.chunks(fold, head, accs)
        }
        _ => match start.watch {
            Some(watch) if worth_watching(plan) => {
                watched_serial(work, fin, rest, watch, end, context)
            }
            _ => serial(stage, fold, fin, rest),
        },
    }
}

/// Predicted work below which a serial plan runs as plain serial code, unwatched: a
/// job this short pays nothing for the watch, and its items could hardly drift far
/// enough to matter.
const WATCH_MIN_SECS: f64 = 1e-3;
/// Work between two clock reads on a watched serial run.
const WATCH_EVERY_SECS: f64 = 1e-3;

fn worth_watching(plan: &Plan) -> bool {
    let n = plan.remaining_items.unwrap_or(0) as f64;
    n * plan.sample.mean_item_secs >= WATCH_MIN_SECS
}

/// A serial run that reads the clock every [`WATCH_EVERY_SECS`] of planned work (a
/// batch of items on the caller, with the sample's stage state) and, when the items
/// turn out far costlier than sampled and the new course is parallel, runs the rest
/// on rayon's pipelined executor.
fn watched_serial<'a, T, I, S, K, C>(
    work: Work<'a, S, K>,
    fin: C,
    rest: Rest<'a, I, K::Acc, S::State>,
    watch: Watch<'a>,
    end: Option<usize>,
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
    let t = watch.expected_secs().max(1e-9);
    let batch = ((WATCH_EVERY_SECS / t).ceil() as usize).clamp(1, MAX_CHUNK);
    let chunks = Chunker::new(source, first, batch);
    let st = state.unwrap_or_else(|| work.stage.state());
    rayon::in_place_scope(|scope| {
        let accs = Watched {
            phase: Phase::Serial(Some((chunks, st, watch))),
            scope,
            work,
            end,
            progress,
            context,
        };
        fin.chunks(work.fold, head, accs)
    })
}

/// Where a watched serial run is: on the caller, or handed to a pipeline.
enum Phase<'s, 'a, S: Stage<T>, K: ChunkFold<S::Out>, T, I> {
    /// `None` only while switching.
    Serial(Option<(Chunker<I>, S::State, Watch<'a>)>),
    Parallel(Pipeline<'s, 'a, rayon::Scope<'a>, S, K, T, I>),
}

/// The partial results of a watched serial run, batch by batch, then the pipeline's.
struct Watched<'s, 'a, S: Stage<T>, K: ChunkFold<S::Out>, T, I> {
    phase: Phase<'s, 'a, S, K, T, I>,
    scope: &'s rayon::Scope<'a>,
    work: Work<'a, S, K>,
    end: Option<usize>,
    progress: &'a Progress,
    context: Context,
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
        let Phase::Serial(serial) = &mut self.phase else {
            let Phase::Parallel(p) = &mut self.phase else {
                unreachable!()
            };
            return p.next();
        };
        let (chunks, st, watch) = serial.as_mut()?;
        let (first, items) = chunks.next_chunk()?;
        let n = items.len();
        let Work { stage, fold, .. } = self.work;
        let acc = self
            .work
            .feedback
            .time(n, || fold.fold(stage.serial(st, first, items.into_iter())));
        self.progress.add(n);
        let at = chunks.next_index();
        let remaining = self.end.map(|e| e.saturating_sub(at));
        // Only a free caller can start rayon workers (inside a rayon worker or a
        // worker process the plan stays serial).
        if self.context == Context::Free
            && let Some(course) = watch.check(at, remaining, Backend::Serial)
            && course.backend == Backend::Rayon
            && let Some((mut chunks, _, watch)) = serial.take()
        {
            chunks.set_size(course.chunk_size);
            let start = Start {
                workers: course.workers.max(1),
                caller_works: true,
                watch: Some(watch),
                end: self.end,
            };
            self.phase = Phase::Parallel(Pipeline::start(
                self.scope,
                self.work,
                chunks,
                start,
                self.progress,
            ));
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
