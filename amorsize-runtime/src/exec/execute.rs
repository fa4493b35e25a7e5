//! Running the rest of a job on the backend its plan chose: the sampled head first,
//! then every item not yet pulled, each exactly once, in input order.

use std::time::Duration;

use super::pipeline::Work;
use super::{Pipeline, Windowed};
use crate::context::Context;
use crate::plan::{Backend, Plan};
use crate::plumbing::{ChunkFold, Chunker, Finish, FirstChunk, Stage};
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
    /// Where to record the first chunk's time per item, when the plan is to be checked
    /// on it (a plan re-made from what the call site measured before).
    pub timing: Option<&'p FirstChunk>,
}

impl<'p, I: Iterator, A, St> Rest<'p, I, A, St> {
    /// The rest cut into chunks of `size` (growing if the length was `estimated`), with
    /// the sampled head and the progress counter.
    fn into_chunks(self, size: usize, estimated: Option<usize>) -> Chunked<'p, I, A> {
        let chunks = Chunker::new(self.source, self.first, size).growing(estimated);
        (chunks, self.head, self.progress, self.timing)
    }
}

/// The rest cut into chunks, the sampled head, the progress counter, and where to time
/// the first chunk.
type Chunked<'p, I, A> = (Chunker<I>, Option<A>, &'p Progress, Option<&'p FirstChunk>);

/// Runs the chunks on the pipelined executor, with helpers spawned in `scope`.
fn pipelined<'a, Sp, T, I, S, K, C>(
    scope: &Sp,
    (stage, fold): (&'a S, &'a K),
    fin: C,
    (chunks, head, progress, timing): Chunked<'a, I, K::Acc>,
    workers: usize,
) -> C::Output
where
    Sp: super::pipeline::Spawn<'a>,
    T: Send + 'a,
    I: Iterator<Item = T>,
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    K::Acc: 'a,
    C: Finish<S::Out, K>,
{
    let work = Work {
        stage,
        fold,
        timing,
    };
    let window = crate::limits::in_flight_chunks(workers);
    let accs = Pipeline::start(scope, work, chunks, workers, window, progress);
    fin.chunks(fold, head, accs)
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
    match plan.backend {
        Backend::Rayon if context == Context::RayonWorker => {
            let (chunks, head, progress, _) = rest.into_chunks(chunk, estimated);
            let accs = Windowed::new(stage, fold, chunks, workers, progress);
            fin.chunks(fold, head, accs)
        }
        Backend::Rayon => rayon::in_place_scope(|s| {
            let chunked = rest.into_chunks(chunk, estimated);
            pipelined(s, (stage, fold), fin, chunked, workers)
        }),
        // The caller is one of the workers: the pool runs the others.
        Backend::Threads => super::blocking::scope(workers - 1, |s| {
            let chunked = rest.into_chunks(chunk, estimated);
            pipelined(s, (stage, fold), fin, chunked, workers)
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
        _ => serial(stage, fold, fin, rest),
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
