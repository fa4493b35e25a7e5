//! The one place where a job is orchestrated: switches -> plan cache -> sample -> model
//! -> executor. Every consumer of [`AutoIter`] and [`optimize`](crate::optimize) ends
//! here.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::cache::{self, Key};
use crate::context::Context;
use crate::env::{self, LogLevel};
use crate::exec::{self, Pipeline, Windowed};
use crate::model;
use crate::options::{Options, SERIAL_BUILD};
use crate::plan::{Backend, NestedIn, Plan, Reason};
use crate::plumbing::{CallSite, ChunkFold, Chunker, Finish, Stage};
use crate::probe;
use crate::progress::Progress;
use crate::sample;

/// A `tracing` span guard when the feature is on, nothing otherwise.
macro_rules! span {
    ($name:literal) => {{
        #[cfg(feature = "tracing")]
        let guard = tracing::debug_span!(target: "amorsize", $name).entered();
        #[cfg(not(feature = "tracing"))]
        let guard = ();
        guard
    }};
}

/// A pipeline as `par_auto()` and its adapters built it, handed over by its consumer.
pub(crate) struct Request<I, S, H> {
    pub source: I,
    pub stage: S,
    pub options: Options,
    /// The user's `on_plan` hook.
    pub hook: Option<H>,
    pub site: CallSite,
    /// Show a progress bar.
    pub progress: bool,
    /// The longest an item may run on a worker process.
    pub item_timeout: Option<Duration>,
}

/// Runs a whole job: decides, then executes, then finishes with `fin`.
pub(crate) fn drive<I, S, H, K, C>(auto: Request<I, S, H>, fold: K, fin: C) -> C::Output
where
    I: Iterator,
    I::Item: Send,
    S: Stage<I::Item>,
    H: FnOnce(&Plan),
    K: ChunkFold<S::Out>,
    C: Finish<S::Out, K>,
{
    let mut job = Job::new(auto, fold);
    let plan = job.decide();
    job.run(plan, fin)
}

/// A job between `par_auto()` and its consumer: the source, the stage, and what has
/// been learnt so far.
pub(crate) struct Job<I: Iterator, S: Stage<I::Item>, H, K: ChunkFold<S::Out>> {
    source: I,
    stage: S,
    /// How workers fold a chunk's outputs (and how the sampled outputs are folded).
    fold: K,
    options: Options,
    hook: Option<H>,
    site: CallSite,
    context: Context,
    /// Items pulled from the source so far (the sample).
    consumed: usize,
    /// The sampled items' outputs, folded like a chunk: emitted first.
    head: Option<K::Acc>,
    /// The stage state the sample used; the serial path keeps using it.
    state: Option<S::State>,
    /// The source ended inside the sample.
    exhausted: bool,
    /// Finished items, shown on a bar if asked for.
    progress: Progress,
    /// The machine the model planned with, for the plan cache.
    machine: Option<Arc<probe::MachineProfile>>,
    /// The longest an item may run on a worker process.
    item_timeout: Option<Duration>,
    /// Why worker processes cannot be trusted with this job's task, when the job is
    /// pinned to them (an automatic choice just excludes them).
    refused: Option<String>,
}

/// A plan with what it needs to run: on processes, its workers or why there are none.
#[cfg(unix)]
type Provisioned = (Arc<Plan>, Option<ProcessWorkers>);
#[cfg(not(unix))]
type Provisioned = (Arc<Plan>, Option<std::convert::Infallible>);

/// Worker processes taken for a job planned on them, or why there are none.
#[cfg(unix)]
type ProcessWorkers = Result<Vec<crate::process::handle::Worker>, String>;

/// A decision, made and announced, waiting for the job to run under it.
pub(crate) struct Decision {
    plan: Arc<Plan>,
    /// For a plan on processes: its workers, already started, or why none could be.
    #[cfg(unix)]
    workers: Option<ProcessWorkers>,
}

impl Decision {
    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }
}

impl<I, S, H, K> Job<I, S, H, K>
where
    I: Iterator,
    I::Item: Send,
    S: Stage<I::Item>,
    H: FnOnce(&Plan),
    K: ChunkFold<S::Out>,
{
    pub(crate) fn new(auto: Request<I, S, H>, fold: K) -> Self {
        let progress = Progress::new(
            auto.progress,
            exact_len(auto.source.size_hint()),
            &auto.site.to_string(),
        );
        Job {
            source: auto.source,
            stage: auto.stage,
            fold,
            options: auto.options,
            hook: auto.hook,
            site: auto.site,
            context: crate::context::context(),
            consumed: 0,
            head: None,
            state: None,
            exhausted: false,
            progress,
            machine: None,
            item_timeout: auto.item_timeout,
            refused: None,
        }
    }

    /// Makes the plan: from a switch, the cache, or a sample and the model. Sampled
    /// results are kept in the job.
    pub(crate) fn decide(&mut self) -> Decision {
        let env = env::config();
        let inline = if SERIAL_BUILD {
            Some(Reason::SerialFeature)
        } else if env.off {
            Some(Reason::Environment {
                variable: "AMORSIZE",
                value: "off".into(),
            })
        } else {
            match self.context {
                Context::ThreadsPool => Some(Reason::Nested {
                    inside: NestedIn::ThreadsPool,
                }),
                Context::WorkerProcess => Some(Reason::Nested {
                    inside: NestedIn::WorkerProcess,
                }),
                Context::Free | Context::RayonWorker => None,
            }
        };
        if let Some(reason) = inline {
            // Not cached: these switches hold for the whole process or thread.
            let plan = self.provision(Arc::new(Plan::serial(reason)), env);
            return self.announce(plan, false);
        }

        let len = exact_len(self.source.size_hint());
        let key = Key::new::<S, I::Item>(&self.site, len, self.context, &self.options);
        if let Some(entry) = cache::get(&key) {
            let plan = match (&entry.machine, len) {
                // A parallel plan made for another number of items (the cold call's
                // sample ran some of them): re-made for this length, without measuring
                // again, and kept for the next call.
                (Some(machine), Some(n))
                    if entry.plan.backend != Backend::Serial
                        && entry.plan.remaining_items != Some(n) =>
                {
                    let options = self.effective_options(env);
                    let mut stats = entry.plan.sample.clone();
                    stats.remaining_items = Some(n);
                    let plan = model::plan(&stats, machine, &options);
                    let plan = Arc::new(self.label(attribute_env(plan, &self.options, env)));
                    cache::put(key, Arc::clone(&plan), Some(Arc::clone(machine)));
                    plan
                }
                _ => Arc::clone(&entry.plan),
            };
            let cached = Arc::clone(&plan);
            let provisioned = self.provision(plan, env);
            // Logged when it was made, unless running it changed it.
            let warm = Arc::ptr_eq(&provisioned.0, &cached);
            return self.announce(provisioned, warm);
        }

        let options = self.effective_options(env);
        let plan = if self.options.fully_pinned() && options.excluded(pinned(&options)).is_none() {
            pinned_plan(&options, len)
        } else {
            self.sample_and_plan(len, &options)
        };
        let plan = attribute_env(plan, &self.options, env);
        let plan = Arc::new(self.label(plan));
        // A task refused for processes is checked again on the next call.
        if self.refused.is_none() {
            cache::put(key, Arc::clone(&plan), self.machine.take());
        }
        let plan = self.provision(plan, env);
        self.announce(plan, false)
    }

    /// What a plan needs before it runs: on processes, its workers, started now so the
    /// plan can say when fewer (or none) could start. A job pinned to processes that
    /// gets none keeps its plan and fails its items as not run (a task never runs in the
    /// caller when the user chose isolation); an automatic choice is planned again
    /// without processes. Also notes an item timeout that the backend cannot apply.
    fn provision(&mut self, plan: Arc<Plan>, env: &env::EnvConfig) -> Provisioned {
        let mut plan = plan;
        if self.item_timeout.is_some() && plan.backend != Backend::Processes {
            let mut p = (*plan).clone();
            p.reasons.push(Reason::ItemTimeoutNotApplied {
                backend: plan.backend,
            });
            plan = Arc::new(p);
        }
        #[cfg(unix)]
        if plan.backend == Backend::Processes {
            let pinned = self.options.backend.or(env.backend) == Some(Backend::Processes);
            let planned = plan.workers.max(1);
            let taken = match self.refused.clone() {
                Some(why) => Err(why),
                None => match crate::process::idle::take(planned) {
                    (ws, Some(e)) if ws.is_empty() => Err(e.to_string()),
                    (ws, shortfall) => Ok((ws, shortfall)),
                },
            };
            return match taken {
                Ok((ws, Some(e))) => {
                    let mut p = (*plan).clone();
                    p.reasons.push(Reason::WorkersUnavailable {
                        planned,
                        started: ws.len(),
                        why: e.to_string(),
                    });
                    p.workers = ws.len();
                    (Arc::new(p), Some(Ok(ws)))
                }
                Ok((ws, None)) => (plan, Some(Ok(ws))),
                Err(why) if pinned => {
                    let mut p = (*plan).clone();
                    p.reasons.push(Reason::WorkersUnavailable {
                        planned,
                        started: 0,
                        why: why.clone(),
                    });
                    (Arc::new(p), Some(Err(why)))
                }
                Err(why) => {
                    let mut options = self.effective_options(env);
                    options.forbid(Backend::Processes, why);
                    let machine = self
                        .machine
                        .clone()
                        .unwrap_or_else(|| Arc::new(probe::profile().clone()));
                    let replanned = model::plan(&plan.sample, &machine, &options);
                    let replanned = self.label(attribute_env(replanned, &self.options, env));
                    (Arc::new(replanned), None)
                }
            };
        }
        #[cfg(not(unix))]
        let _ = env;
        (plan, None)
    }

    /// Options as the model sees them: code pins, then the environment, then what the
    /// thread context and the stage rule out.
    fn effective_options(&self, env: &env::EnvConfig) -> Options {
        let mut o = self.options.clone();
        o.backend = o.backend.or(env.backend);
        if let Some(cap) = env.max_workers {
            o.max_workers = Some(o.max_workers.map_or(cap, |n| n.min(cap)));
        }
        if self.context == Context::RayonWorker {
            let why = Reason::Nested {
                inside: NestedIn::RayonWorker,
            };
            o.exclude.push((Backend::Threads, why.clone()));
            o.exclude.push((Backend::Processes, why));
        } else if let Some(why) = crate::process::unavailable(self.stage.remote().is_some()) {
            o.forbid(Backend::Processes, why);
        }
        o
    }

    fn sample_and_plan(&mut self, len: Option<usize>, options: &Options) -> Plan {
        let mut state = self.stage.state();
        let sampled = {
            let _span = span!("sample");
            // A pinned backend must still get most of the input.
            let max_items = match (options.backend, len) {
                (Some(b), Some(n)) if b != Backend::Serial => n / 4,
                _ => sample::MAX_ITEMS,
            };
            sample::sample(
                &mut self.source,
                &self.stage,
                &mut state,
                &self.fold,
                len,
                max_items,
            )
        };
        self.progress.add(sampled.items);
        self.consumed = sampled.items;
        self.head = Some(sampled.head);
        self.state = Some(state);
        self.exhausted = sampled.exhausted;
        let mut stats = sampled.stats;
        if sampled.exhausted {
            let mut plan = Plan::serial(Reason::InputEndedInSample {
                items: sampled.items,
            });
            stats.remaining_items = Some(0);
            plan.remaining_items = Some(0);
            plan.sample = stats;
            return plan;
        }
        stats.remaining_items = remaining_estimate(self.source.size_hint());
        let mut machine = probe::profile().clone();
        if self.context == Context::RayonWorker {
            machine.rayon_threads = rayon::current_num_threads();
        }
        let mut options = options.clone();
        if let Some(plan) = self.measure_more(&mut stats, &mut machine, &mut options) {
            return plan;
        }
        let _span = span!("plan");
        let plan = model::plan(&stats, &machine, &options);
        self.machine = Some(Arc::new(machine));
        plan
    }

    /// After the sample: the two-thread efficiency (unpinned jobs on a free thread)
    /// and, when worker processes are a candidate, the encoding costs and the process
    /// pool's fixed costs. The items this runs are kept like the sample's. Returns a
    /// plan if the input ended meanwhile.
    fn measure_more(
        &mut self,
        stats: &mut model::SampleStats,
        machine: &mut probe::MachineProfile,
        options: &mut Options,
    ) -> Option<Plan> {
        let free = self.context == Context::Free;
        // Work that mostly waits (on I/O, or on other threads) keeps few CPUs busy:
        // many threads serve it, and a handful of processes cannot beat them.
        let waits = stats.cpu_ratio * stats.process_cpu_ratio < 0.5;
        if waits && options.backend.is_none() {
            options.forbid(
                Backend::Processes,
                "the work mostly waits: more threads serve it better than a few processes",
            );
        }
        let processes = free
            && options.excluded(Backend::Processes).is_none()
            && matches!(options.backend, None | Some(Backend::Processes));
        let remote = if processes { self.stage.remote() } else { None };
        // Two-thread efficiency matters only when processes could take over from
        // threads; measured on a busy machine it can read low for work that scales, so
        // it is not risked where it could only turn a parallel plan serial.
        let scaling = remote.is_some() && options.backend.is_none() && machine.cpu_budget >= 2;
        if !scaling && remote.is_none() {
            return None;
        }
        let mut state = self.state.take().unwrap_or_else(|| self.stage.state());
        let extra = sample::extra::measure(
            &mut self.source,
            &self.stage,
            &mut state,
            self.consumed,
            stats,
            scaling,
            remote.as_ref(),
        );
        self.state = Some(state);
        self.consumed += extra.items;
        #[cfg(unix)]
        let checks = extra.checks;
        let head = self
            .head
            .get_or_insert_with(|| self.fold.empty(extra.outputs.len()));
        for o in extra.outputs {
            self.fold.push(head, o);
        }
        stats.items += extra.items;
        stats.remaining_items = stats.remaining_items.map(|n| n.saturating_sub(extra.items));
        if extra.exhausted {
            self.exhausted = true;
            let mut plan = Plan::serial(Reason::InputEndedInSample {
                items: self.consumed,
            });
            stats.remaining_items = Some(0);
            plan.remaining_items = Some(0);
            plan.sample = stats.clone();
            return Some(plan);
        }
        #[cfg(unix)]
        if let Some(remote) = &remote {
            let pinned = options.backend == Some(Backend::Processes);
            let measured = process_costs(stats, machine, options);
            // Checked wherever processes may run the task: when their costs were
            // measured (they can win) or when the job is pinned to them.
            if (measured || pinned)
                && options.excluded(Backend::Processes).is_none()
                && let Err(why) =
                    crate::process::verify::verify(remote.task(), &checks, stats.mean_item_secs)
            {
                if pinned {
                    self.refused = Some(why);
                } else {
                    options.forbid(Backend::Processes, why);
                }
            }
        }
        None
    }

    fn label(&self, mut plan: Plan) -> Plan {
        plan.label = Some(self.site.to_string());
        plan
    }

    /// Logs the plan and calls the user's hook; a warm cache hit logs nothing (it was
    /// logged when it was made).
    fn announce(&mut self, (plan, workers): Provisioned, warm: bool) -> Decision {
        #[cfg(not(unix))]
        let _ = workers;
        let env = env::config();
        let log = if self.site.config.is_some_and(|c| c.log) {
            env.log.max(LogLevel::Plan)
        } else {
            env.log
        };
        if !warm {
            match log {
                LogLevel::Off => {}
                LogLevel::Plan => eprintln!("amorsize: {plan}"),
                LogLevel::Full => eprintln!("amorsize: {plan:#}"),
            }
            #[cfg(feature = "tracing")]
            tracing::debug!(
                target: "amorsize",
                site = %self.site,
                backend = %plan.backend,
                workers = plan.workers,
                chunk_size = plan.chunk_size,
                estimated_speedup = plan.estimated_speedup,
                "plan: {plan}"
            );
        }
        if let Some(hook) = self.hook.take() {
            hook(&plan);
        }
        Decision {
            plan,
            #[cfg(unix)]
            workers,
        }
    }

    /// Runs the rest of the job under `decision`: the sampled outputs first, then every
    /// item not yet pulled, each exactly once.
    pub(crate) fn run<C>(self, decision: Decision, fin: C) -> C::Output
    where
        C: Finish<S::Out, K>,
    {
        let Job {
            source,
            stage,
            fold,
            context,
            consumed,
            head,
            state,
            exhausted,
            progress,
            item_timeout,
            ..
        } = self;
        let Decision {
            plan,
            #[cfg(unix)]
            workers,
        } = decision;
        let _span = span!("execute");
        let out = if exhausted {
            fin.done(&fold, head)
        } else {
            let rest = Rest {
                source,
                first: consumed,
                head,
                state,
                progress: &progress,
            };
            let run = Run {
                plan: &plan,
                context,
                #[cfg(unix)]
                workers,
                item_timeout,
            };
            execute(run, &stage, &fold, fin, rest)
        };
        progress.finish();
        out
    }
}
/// What is left of a job after its sample.
struct Rest<'p, I, A, St> {
    source: I,
    /// Input index of the first item of `source`.
    first: usize,
    /// The sampled items' outputs, folded: emitted first.
    head: Option<A>,
    /// The sample's stage state, if there was a sample.
    state: Option<St>,
    progress: &'p Progress,
}

impl<'p, I: Iterator, A, St> Rest<'p, I, A, St> {
    /// The rest cut into chunks of `size` (growing if the length was `estimated`), with
    /// the sampled head and the progress counter.
    fn into_chunks(
        self,
        size: usize,
        estimated: Option<usize>,
    ) -> (Chunker<I>, Option<A>, &'p Progress) {
        let chunks = Chunker::new(self.source, self.first, size).growing(estimated);
        (chunks, self.head, self.progress)
    }
}

/// How the rest of a job runs: the plan and what was prepared for it.
struct Run<'p> {
    plan: &'p Plan,
    context: Context,
    #[cfg(unix)]
    workers: Option<ProcessWorkers>,
    item_timeout: Option<Duration>,
}

/// Runs the rest of a job on the planned backend.
fn execute<T, I, S, K, C>(
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
            let (chunks, head, progress) = rest.into_chunks(chunk, estimated);
            let accs = Windowed::new(stage, fold, chunks, workers, progress);
            fin.chunks(fold, head, accs)
        }
        Backend::Rayon => {
            let stop = AtomicBool::new(false);
            rayon::in_place_scope(|s| {
                let (chunks, head, progress) = rest.into_chunks(chunk, estimated);
                // Two chunks per worker in flight, so none waits for the next; the
                // pool's own size bounds how many run at once.
                let window = 2 * workers;
                let accs = Pipeline::start(s, &stop, stage, fold, chunks, window, progress);
                fin.chunks(fold, head, accs)
            })
        }
        Backend::Threads => match exec::threads_pool(workers) {
            Ok(pool) => {
                let stop = AtomicBool::new(false);
                // A pool grown by an earlier plan may have more threads than this plan
                // wants: then the window is what keeps `workers` items running at once.
                let window = if pool.current_num_threads() > workers {
                    workers
                } else {
                    2 * workers
                };
                pool.in_place_scope(|s| {
                    let (chunks, head, progress) = rest.into_chunks(chunk, estimated);
                    let accs = Pipeline::start(s, &stop, stage, fold, chunks, window, progress);
                    fin.chunks(fold, head, accs)
                })
            }
            Err(e) => {
                eprintln!("amorsize: cannot start threads ({e}); running serially");
                serial(stage, fold, fin, rest)
            }
        },
        #[cfg(unix)]
        Backend::Processes => {
            let Some(remote) = stage.remote() else {
                // The model plans processes only for a registered task.
                return serial(stage, fold, fin, rest);
            };
            let taken = match run.workers {
                Some(taken) => taken,
                None => match crate::process::idle::take(workers) {
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
                Ok(pool) => exec::Processes::new(&remote, fold, pool, items, chunk),
                Err(why) => {
                    exec::Processes::new(&remote, fold, Vec::new(), items, chunk).cannot_start(why)
                }
            }
            .item_timeout(run.item_timeout);
            fin.chunks(fold, head, accs)
        }
        _ => serial(stage, fold, fin, rest),
    }
}

/// Below this much predicted work, the process pool's costs are not measured (that
/// starts processes): the model plans with the defaults, which rule processes out.
const PROCESS_COSTS_MIN_WORK_SECS: f64 = 10e-3;

/// Puts the process pool's measured costs into `machine`, or excludes processes if no
/// worker can start. `false` when the job is too small to measure them.
#[cfg(unix)]
fn process_costs(
    stats: &model::SampleStats,
    machine: &mut probe::MachineProfile,
    options: &mut Options,
) -> bool {
    let work = stats
        .remaining_items
        .map_or(f64::INFINITY, |n| n as f64 * stats.mean_item_secs);
    if work < PROCESS_COSTS_MIN_WORK_SECS {
        return false;
    }
    match crate::process::costs::costs() {
        Ok(c) => {
            machine.overheads.process_start_secs = c.start_secs;
            machine.overheads.process_chunk_secs = c.chunk_secs;
            machine.fallbacks.extend(c.fallbacks.iter().cloned());
            // From now on the machine's profile reports them too.
            let measured = |name: &str, secs: f64| probe::overhead::Measured {
                secs,
                fallback: c.fallbacks.iter().find(|f| f.measurement == name).cloned(),
            };
            probe::overhead::process_overheads(|| {
                (
                    measured("process_start", c.start_secs),
                    measured("process_chunk", c.chunk_secs),
                )
            });
        }
        Err(e) => options.forbid(
            Backend::Processes,
            format!("worker processes could not start: {e}"),
        ),
    }
    true
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
    } = rest;
    let mut st = state.unwrap_or_else(|| stage.state());
    if progress.enabled() {
        let items = source.inspect(|_| progress.add(1));
        fin.serial(fold, head, stage.serial(&mut st, first, items))
    } else {
        fin.serial(fold, head, stage.serial(&mut st, first, source))
    }
}

/// Says which choices came from `AMORSIZE_*` rather than from code: the model sees
/// the merged options and would call every pin "in code".
fn attribute_env(mut plan: Plan, code: &Options, env: &env::EnvConfig) -> Plan {
    let from_env = |option: &str| match option {
        "backend" => code.backend.is_none() && env.backend.is_some(),
        "max_workers" => {
            env.max_workers.is_some() && code.max_workers.is_none_or(|n| Some(n) > env.max_workers)
        }
        _ => false,
    };
    for r in &mut plan.reasons {
        if let Reason::Pinned { option, value } = r
            && from_env(option)
        {
            let variable = if *option == "backend" {
                "AMORSIZE_BACKEND"
            } else {
                "AMORSIZE_MAX_WORKERS"
            };
            *r = Reason::Environment {
                variable,
                value: std::mem::take(value),
            };
        }
    }
    if code.backend.is_none()
        && let Some(b) = env.backend
        && plan
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::PinnedUnavailable { .. }))
    {
        plan.reasons.push(Reason::Environment {
            variable: "AMORSIZE_BACKEND",
            value: b.to_string(),
        });
    }
    if let Some(cap) = env.max_workers
        && !plan.reasons.iter().any(|r| {
            matches!(r, Reason::Environment { variable, .. } if *variable == "AMORSIZE_MAX_WORKERS")
        })
        && code.max_workers.is_none_or(|n| n > cap)
    {
        plan.reasons.push(Reason::Environment {
            variable: "AMORSIZE_MAX_WORKERS",
            value: cap.to_string(),
        });
    }
    plan
}

/// The backend a fully pinned job names.
fn pinned(options: &Options) -> Backend {
    options.backend.unwrap_or(Backend::Serial)
}

/// A fully pinned job skips sampling: the plan is what the user wrote, clamped to what
/// can run: at least one worker and one item per chunk, no more workers than items (when
/// the length is known) or than the blocking pool may hold, chunks no bigger than the
/// executors cut. Each clamp is recorded.
fn pinned_plan(options: &Options, len: Option<usize>) -> Plan {
    let backend = pinned(options);
    let mut plan = Plan::serial(Reason::Pinned {
        option: "backend",
        value: backend.to_string(),
    });
    plan.backend = backend;
    plan.remaining_items = len;
    let given_workers = options.max_workers.unwrap_or(1);
    let given_chunk = options.chunk_size.unwrap_or(1);
    let backend_cap = match backend {
        Backend::Processes => crate::process::max_workers(probe::profile().cpu_budget),
        _ => exec::MAX_THREADS,
    };
    let max_workers = len.map_or(backend_cap, |n| n.clamp(1, backend_cap));
    let workers = given_workers.clamp(1, max_workers);
    let chunk = given_chunk.clamp(1, crate::plumbing::MAX_CHUNK);
    for (option, given, used) in [
        ("max_workers", given_workers, workers),
        ("chunk_size", given_chunk, chunk),
    ] {
        if given != used {
            plan.reasons.push(Reason::Clamped {
                option,
                given: given.to_string(),
                used: used.to_string(),
            });
        }
    }
    plan.workers = if backend == Backend::Serial {
        1
    } else {
        workers
    };
    plan.chunk_size = chunk;
    plan
}

/// The exact length, when the size hint pins it.
fn exact_len((lo, hi): (usize, Option<usize>)) -> Option<usize> {
    (Some(lo) == hi).then_some(lo)
}

/// What the model is told about the items left: exact, the middle of a bounded hint, or
/// unknown (the model then estimates).
fn remaining_estimate((lo, hi): (usize, Option<usize>)) -> Option<usize> {
    match hi {
        Some(hi) if hi == lo => Some(lo),
        Some(hi) => Some(lo + (hi - lo) / 2),
        None if lo > 0 => Some(lo),
        None => None,
    }
}
