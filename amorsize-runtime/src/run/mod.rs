//! The one place where a job is orchestrated: switches -> plan cache -> sample -> model
//! -> executor. Every consumer of [`AutoIter`] and [`optimize`](crate::optimize) ends
//! here.
//!
//! - this file: the job, its decision (`Job::decide`), announcing it, running it;
//! - [`prepare`]: a plan from what is known or from a fresh sample and the measurements
//!   after it, and what the plan needs before it runs;
//! - [`learn`]: re-planning a running job, the next plan from the whole job, and
//!   checking a plan made without a sample.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::{self, Key};
use crate::context::Context;
use crate::env::{self, LogLevel};
#[cfg(unix)]
use crate::exec::ProcessWorkers;
use crate::exec::{self, Rest, Run};
use crate::model;
use crate::options::{Options, SERIAL_BUILD};
use crate::plan::{Backend, NestedIn, Origin, Plan, Reason};
use crate::plumbing::{CallSite, ChunkFold, Course, Drift, Feedback, Finish, Stage, Steer};
use crate::probe;
use crate::progress::{self, Progress};

/// A `tracing` span guard when the feature is on, an empty guard otherwise.
macro_rules! span {
    ($name:literal) => {{
        #[cfg(feature = "tracing")]
        let guard = tracing::debug_span!(target: "amorsize", $name).entered();
        #[cfg(not(feature = "tracing"))]
        let guard = crate::run::NoSpan;
        guard
    }};
}

/// What [`span!`] gives without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
struct NoSpan;

// After `span!`, which they use.
mod learn;
mod prepare;

use learn::{Learn, Recheck};

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
pub(crate) fn drive<I, S, H, K, C>(mut auto: Request<I, S, H>, fold: K, fin: C) -> C::Output
where
    I: Iterator,
    I::Item: Send,
    S: Stage<I::Item>,
    H: FnOnce(&Plan),
    K: ChunkFold<S::Out>,
    C: Finish<S::Out, K>,
{
    if small_serial(&mut auto) {
        let mut state = auto.stage.state();
        return fin.serial(&fold, None, auto.stage.serial(&mut state, 0, auto.source));
    }
    decide_and_run(auto, fold, fin)
}

/// The whole decision and the run under it. Out of line: the small serial path in
/// [`drive`] then keeps a small stack frame and little code to go through.
#[inline(never)]
fn decide_and_run<I, S, H, K, C>(auto: Request<I, S, H>, fold: K, fin: C) -> C::Output
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

/// Whether the job is a call no longer than the sample its call site's input ended in
/// (the plan cache has a serial plan for it): it then runs as plain serial code, after
/// one lookup in a per-thread memo, with no clock read and none of the decision's
/// bookkeeping. The same plan [`Job::decide`] would use, announced the same way (the
/// hook is called; a warm plan is not logged). Not for a job that shows a bar or has
/// an item timeout, nor where a switch makes every job serial for its own reason.
fn small_serial<I, S, H>(auto: &mut Request<I, S, H>) -> bool
where
    I: Iterator,
    I::Item: Send,
    S: Stage<I::Item>,
    H: FnOnce(&Plan),
{
    let Some(len) = exact_len(auto.source.size_hint()) else {
        return false;
    };
    // A bar counts items; an item timeout is named in the plan as not applied.
    if auto.progress || auto.item_timeout.is_some() || SERIAL_BUILD || env::config().off {
        return false;
    }
    let context = crate::context::context();
    match context {
        Context::Free => warn_on_async_worker(&auto.site),
        Context::RayonWorker => {}
        Context::ThreadsPool | Context::WorkerProcess => return false,
    }
    let key = Key::new::<S, I::Item>(&auto.site, Some(len), context, &auto.options);
    cache::small_serial(&key, len, &mut auto.hook)
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
    /// Set when the plan was re-made from what the call site measured before: the
    /// first chunk's time per item is compared with the one the plan assumed.
    recheck: Option<Recheck>,
    /// Set when the model made the plan (not a switch, not a fully pinned plan): the
    /// running job may change course, and what it measured feeds the next call's plan.
    learn: Option<Learn>,
}

/// A plan with what it needs to run: on processes, its workers or why there are none.
#[cfg(unix)]
type Provisioned = (Arc<Plan>, Option<ProcessWorkers>);
#[cfg(not(unix))]
type Provisioned = (Arc<Plan>, Option<std::convert::Infallible>);

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
            &auto.site,
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
            recheck: None,
            learn: None,
        }
    }

    /// Makes the plan: from a switch, the cache, or a sample and the model. Sampled
    /// results are kept in the job.
    pub(crate) fn decide(&mut self) -> Decision {
        let env = env::config();
        if self.context == Context::Free {
            warn_on_async_worker(&self.site);
        }
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
        let lookup = cache::get(&key);
        if let cache::Lookup::Hit(entry) = lookup {
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
                    let mut plan = model::plan(&stats, machine, &options);
                    plan.origin = Origin::Cache;
                    let plan = Arc::new(self.label(plan));
                    cache::put(key, &plan, Some(Arc::clone(machine)), entry.on_disk);
                    plan
                }
                _ => Arc::clone(&entry.plan),
            };
            // A call no longer than the sample its site's input ended in runs plain
            // serial code: no clock to read, nothing to learn.
            let small = entry
                .plan
                .ended_in_sample()
                .is_some_and(|items| len.is_some_and(|n| n <= items));
            if !self.options.fully_pinned() && !small {
                self.learn = Some(Learn {
                    key,
                    options: None,
                    machine: entry.machine.clone(),
                });
            }
            let cached = Arc::clone(&plan);
            let provisioned = self.provision(plan, env);
            // Logged when it was made, unless running it changed it.
            let warm = Arc::ptr_eq(&provisioned.0, &cached);
            return self.announce(provisioned, warm);
        }

        let options = self.effective_options(env);
        let pinned = options.backend.unwrap_or(Backend::Serial);
        let fully_pinned = self.options.fully_pinned() && options.excluded(pinned).is_none();
        let mut problems = Vec::new();
        let disk_key = if fully_pinned {
            None
        } else {
            cache::disk_key::<S, I::Item>(&self.site, &key)
        };
        // A cached plan due for its periodic re-check is sampled afresh, not re-made
        // from the measurements it was made from.
        let previous = match lookup {
            cache::Lookup::Recheck(entry) => Some(entry),
            _ => None,
        };
        let recheck = previous.is_some();
        // Whether this key's disk entry holds what the plan was made from.
        let mut on_disk = false;
        let plan = if fully_pinned {
            model::fully_pinned(&options, len, probe::profile().cpu_budget)
        } else if let Some(plan) = (!recheck)
            .then(|| self.replan_from_known(key, disk_key, len, &options, &mut problems))
            .flatten()
        {
            on_disk = plan.origin == Origin::Disk;
            plan
        } else {
            let plan = self.sample_and_plan(len, &options);
            // Kept for later runs, unless a re-check found what this key's entry keeps
            // already; a task refused for processes is checked again.
            if let Some(dk) = disk_key
                && plan.sample.items > 0
                && self.refused.is_none()
            {
                on_disk = true;
                if previous.is_none_or(|e| !e.on_disk || cache::worth_rewriting(&e.plan, &plan)) {
                    let ended = plan.ended_in_sample().is_some();
                    problems.extend(cache::remember(dk, &plan.sample, ended));
                }
            }
            plan
        };
        let mut plan = self.label(plan);
        plan.reasons
            .extend(problems.into_iter().map(|p| Reason::DiskCache {
                problem: p.to_string(),
            }));
        let plan = Arc::new(plan);
        // A task refused for processes is checked again on the next call.
        if self.refused.is_none() {
            cache::put(key, &plan, self.machine.clone(), on_disk);
            if !fully_pinned {
                self.learn = Some(Learn {
                    key,
                    options: Some(options.clone()),
                    machine: self.machine.clone(),
                });
            }
        }
        let plan = self.provision(plan, env);
        self.announce(plan, false)
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
                LogLevel::Plan => progress::log_line(&format!("amorsize: {plan}")),
                LogLevel::Full => progress::log_line(&format!("amorsize: {plan:#}")),
            }
            #[cfg(feature = "tracing")]
            tracing::debug!(
                target: "amorsize",
                site = %self.site,
                backend = %plan.backend,
                workers = plan.workers,
                chunk_size = plan.chunk_size,
                estimated_speedup = plan.estimated_speedup,
                origin = %plan.origin,
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
            recheck,
            learn,
            site,
            options,
            ..
        } = self;
        let Decision {
            plan,
            #[cfg(unix)]
            workers,
        } = decision;
        let _span = span!("execute");
        let feedback = Feedback::default();
        // Worker processes run a registered task whose plan was checked on a worker;
        // they keep their course.
        let steerable = learn.as_ref().filter(|_| {
            !exhausted && !matches!(plan.backend, Backend::Processes | Backend::Cluster)
        });
        // The options the model planned with: worked out now only if they are needed.
        let planned_with = std::sync::OnceLock::new();
        let planned_with = || {
            planned_with.get_or_init(|| match learn.as_ref().and_then(|l| l.options.clone()) {
                Some(o) => o,
                None => effective_options(
                    &options,
                    env::config(),
                    context,
                    (
                        stage.task_call().is_some(),
                        std::any::type_name::<I::Item>(),
                    ),
                ),
            })
        };
        let replan = |drift: &Drift| -> Course {
            match steerable {
                Some(learn) => learn.replan(planned_with(), &plan, drift, site),
                None => Course {
                    backend: plan.backend,
                    workers: plan.workers,
                    chunk_size: plan.chunk_size,
                },
            }
        };
        let steer = Steer::new(&replan);
        let out = if exhausted {
            fin.done(&fold, head)
        } else {
            let rest = Rest {
                source,
                first: consumed,
                head,
                state,
                progress: &progress,
                feedback: &feedback,
                steer: steerable.map(|_| &steer),
            };
            let run = Run {
                plan: &plan,
                context,
                #[cfg(unix)]
                workers,
                item_timeout,
            };
            exec::execute(run, &stage, &fold, fin, rest)
        };
        progress.finish();
        if let (Some(recheck), Some(measured)) = (recheck, feedback.first_per_item()) {
            recheck.check(measured, &plan, site);
        } else if let Some(learn) = &learn {
            let replans = steer.made();
            let key = learn.key;
            let disk_key = move || cache::disk_key::<S, I::Item>(&site, &key);
            learn.finish(
                (&feedback, consumed),
                planned_with,
                &plan,
                replans,
                (site, disk_key),
            );
        }
        out
    }
}

/// Says once per process, on stderr and as a tracing event, that a job was started on
/// an async runtime's worker thread: it blocks that thread until it ends.
fn warn_on_async_worker(site: &CallSite) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if WARNED.is_completed() {
        return;
    }
    let Some(thread) = crate::context::async_worker() else {
        return;
    };
    WARNED.call_once(|| {
        let text = format!(
            "amorsize: [{site}] runs on an async runtime's worker thread ({thread}): the \
             job blocks it until the job ends, and the runtime's other tasks on it wait. \
             Run the job inside `tokio::task::spawn_blocking` (or your runtime's \
             equivalent). Said once per process."
        );
        #[cfg(feature = "tracing")]
        tracing::warn!(target: "amorsize", site = %site, thread = %thread, "{text}");
        progress::log_line(&text);
    });
}

/// Options as the model sees them: code pins, then the environment, then what the
/// thread context and the stage (`has_task`: a registered task; the type of its input
/// items) rule out.
fn effective_options(
    options: &Options,
    env: &env::EnvConfig,
    context: Context,
    (has_task, item_type): (bool, &str),
) -> Options {
    let mut o = options.with_environment(env);
    if context == Context::RayonWorker {
        let why = Reason::Nested {
            inside: NestedIn::RayonWorker,
        };
        o.exclude.push((Backend::Threads, why.clone()));
        o.exclude.push((Backend::Processes, why));
    } else if let Some(why) = crate::process::unavailable(has_task, item_type) {
        o.forbid(Backend::Processes, why);
    }
    if context == Context::RayonWorker {
        o.exclude.push((
            Backend::Cluster,
            Reason::Nested {
                inside: NestedIn::RayonWorker,
            },
        ));
    } else if let Some(why) = crate::cluster::unavailable(has_task) {
        o.forbid(Backend::Cluster, why);
    }
    o
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
