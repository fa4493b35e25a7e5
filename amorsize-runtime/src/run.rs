//! The one place where a job is orchestrated: switches -> plan cache -> sample -> model
//! -> executor. Every consumer of [`AutoIter`] and [`optimize`](crate::optimize) ends
//! here.

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
use crate::plan::{Backend, NestedIn, Origin, Plan, Reason, Replan};
use crate::plumbing::{CallSite, ChunkFold, Course, Drift, Feedback, Finish, Stage, Steer};
use crate::probe;
use crate::progress::{self, Progress};
use crate::sample;

/// A `tracing` span guard when the feature is on, an empty guard otherwise.
macro_rules! span {
    ($name:literal) => {{
        #[cfg(feature = "tracing")]
        let guard = tracing::debug_span!(target: "amorsize", $name).entered();
        #[cfg(not(feature = "tracing"))]
        let guard = NoSpan;
        guard
    }};
}

/// What [`span!`] gives without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
struct NoSpan;

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
    /// Set when the plan was re-made from what the call site measured before: the
    /// first chunk's time per item is compared with the one the plan assumed.
    recheck: Option<Recheck>,
    /// Set when the model made the plan (not a switch, not a fully pinned plan): the
    /// running job may change course, and what it measured feeds the next call's plan.
    learn: Option<Learn>,
}

/// What a job planned by the model needs to re-plan while it runs, and to leave what
/// it measured to the next call.
struct Learn {
    key: Key,
    /// Options as the model saw them, when the plan was made now (a cached plan's are
    /// worked out only if they are needed).
    options: Option<Options>,
    machine: Option<Arc<probe::MachineProfile>>,
}

/// What a plan re-made without a sample needs to be checked, and re-made again if it
/// is far off.
struct Recheck {
    key: Key,
    disk_key: Option<u64>,
    options: Options,
    machine: Arc<probe::MachineProfile>,
    stats: model::SampleStats,
}

/// How far (as a factor, either way) the first chunk's time per item may be from the
/// remembered one before the plan is re-made.
const RECHECK_FACTOR: f64 = 2.0;

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
                    cache::put(key, &plan, Some(Arc::clone(machine)));
                    plan
                }
                _ => Arc::clone(&entry.plan),
            };
            if !self.options.fully_pinned() {
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
        let recheck = matches!(lookup, cache::Lookup::Recheck);
        let plan = if fully_pinned {
            model::fully_pinned(&options, len, probe::profile().cpu_budget)
        } else if let Some(plan) = (!recheck)
            .then(|| self.replan_from_known(key, disk_key, len, &options, &mut problems))
            .flatten()
        {
            plan
        } else {
            let plan = self.sample_and_plan(len, &options);
            // Kept for later runs; a task refused for processes is checked again.
            if let Some(dk) = disk_key
                && plan.sample.items > 0
                && self.refused.is_none()
            {
                let ended = matches!(plan.main_reason(), Some(Reason::InputEndedInSample { .. }));
                problems.extend(cache::remember(dk, &plan.sample, ended));
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
            cache::put(key, &plan, self.machine.clone());
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

    /// A plan re-made from what this call site measured before, without sampling: in
    /// this process for another input size, else in an earlier run (the disk cache).
    /// The job then checks it on its first chunk. `None` when nothing is known, or when
    /// the plan would use worker processes from a remembered sample: only a fresh one
    /// checks that a worker computes what the caller does.
    fn replan_from_known(
        &mut self,
        key: Key,
        disk_key: Option<u64>,
        len: Option<usize>,
        options: &Options,
        problems: &mut Vec<crate::disk::Problem>,
    ) -> Option<Plan> {
        let (stats, ended, machine, origin) = match cache::site(&key) {
            Some(entry) => (
                entry.plan.sample.clone(),
                matches!(
                    entry.plan.main_reason(),
                    Some(Reason::InputEndedInSample { .. })
                ),
                entry.machine.clone(),
                Origin::CallSite,
            ),
            None => match cache::remembered(disk_key?) {
                Ok(Some(r)) => (r.stats, r.ended_in_sample, None, Origin::Disk),
                Ok(None) => return None,
                Err(p) => {
                    problems.push(p);
                    return None;
                }
            },
        };
        if stats.items == 0 {
            return None;
        }
        // The whole input fitted in the sample last time, and this one is no longer:
        // plain serial code, without the model or the machine's profile.
        if ended && len.is_some_and(|n| n <= stats.items) {
            let mut plan = Plan::serial(Reason::InputEndedInSample { items: stats.items });
            plan.sample = stats;
            plan.origin = origin;
            return Some(plan);
        }
        let mut stats = stats;
        stats.remaining_items = len.or_else(|| remaining_estimate(self.source.size_hint()));
        // Whether a task that computes scales on threads decides between threads and
        // processes; a remembered sample that could not tell (its two-thread check was
        // skipped on a busy machine) is measured again rather than trusted across runs,
        // for a job long enough that the check is made.
        if origin == Origin::Disk
            && stats.two_thread_efficiency.is_none()
            && sample::extra::scaling_matters(&stats)
            && options.excluded(Backend::Processes).is_none()
        {
            return None;
        }
        // Who listens on a cluster is not remembered: a job that could use it samples
        // again unless this process measured the cluster with the plan.
        if options.excluded(Backend::Cluster).is_none()
            && machine.as_ref().is_none_or(|m| m.cluster.is_none())
        {
            return None;
        }
        let machine = machine.unwrap_or_else(|| Arc::new(self.machine()));
        let mut plan = model::plan(&stats, &machine, options);
        // Workers are checked afresh: a sample checks processes, and who listens on a
        // cluster changes between runs.
        if origin == Origin::Disk && matches!(plan.backend, Backend::Processes | Backend::Cluster) {
            return None;
        }
        plan.origin = origin;
        if plan.backend != Backend::Serial {
            self.recheck = Some(Recheck {
                key,
                disk_key,
                options: options.clone(),
                machine: Arc::clone(&machine),
                stats,
            });
        }
        self.machine = Some(machine);
        Some(plan)
    }

    /// The machine as the model sees it from this thread.
    fn machine(&self) -> probe::MachineProfile {
        let mut machine = probe::profile().clone();
        if self.context == Context::RayonWorker {
            machine.rayon_threads = rayon::current_num_threads();
        }
        machine
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
                None => match crate::process::idle::checkout(planned) {
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
                    let replanned = self.label(replanned);
                    (Arc::new(replanned), None)
                }
            };
        }
        #[cfg(all(unix, feature = "cluster"))]
        if plan.backend == Backend::Cluster
            && let Err(why) = crate::cluster::measure()
        {
            // Without a broker or workers the job runs here, whether the cluster was
            // chosen or pinned, with the reason in its plan.
            let mut options = self.effective_options(env);
            options.forbid(Backend::Cluster, why);
            let machine = self
                .machine
                .clone()
                .unwrap_or_else(|| Arc::new(probe::profile().clone()));
            let replanned = model::plan(&plan.sample, &machine, &options);
            return (Arc::new(self.label(replanned)), None);
        }
        #[cfg(not(unix))]
        let _ = env;
        (plan, None)
    }

    /// Options as the model sees them: code pins, then the environment, then what the
    /// thread context and the stage rule out.
    fn effective_options(&self, env: &env::EnvConfig) -> Options {
        effective_options(
            &self.options,
            env,
            self.context,
            (
                self.stage.task_call().is_some(),
                std::any::type_name::<I::Item>(),
            ),
        )
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
        let mut machine = self.machine();
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
        let has_task = self.stage.task_call().is_some();
        let wanted = sample::extra::wanted(stats, machine, options, self.context, has_task);
        let call = if wanted.processes || wanted.cluster {
            self.stage.task_call()
        } else {
            None
        };
        if !wanted.scaling && !wanted.inner && call.is_none() {
            return None;
        }
        let mut state = self.state.take().unwrap_or_else(|| self.stage.state());
        let extra = sample::extra::measure(
            &mut self.source,
            &self.stage,
            &mut state,
            self.consumed,
            stats,
            wanted,
            call.as_ref(),
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
        if let Some(call) = &call
            && wanted.processes
        {
            self.refused =
                sample::processes::costs_and_trust(stats, machine, options, call, &checks);
        }
        #[cfg(all(unix, feature = "cluster"))]
        if wanted.cluster
            && let Some(call) = &call
        {
            sample::cluster::measure(stats, machine, options, call, &checks);
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
        let replans = steer.made();
        if let (Some(recheck), Some(measured)) = (recheck, feedback.first_per_item()) {
            recheck.check(measured, &plan, site);
        } else if let Some(learn) = &learn {
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

/// How far (as a factor, either way) a whole job's time per item may be from the one
/// its plan assumed before the call site's next plan is made from the job's.
const LEARN_FACTOR: f64 = 2.0;

impl Learn {
    /// A new course for the rest of a running job whose items drifted off the plan:
    /// the model again, with the measured time per item and the items left, among the
    /// backends the executor can switch to (its own, or serial; a serial run can start
    /// rayon). Logged as it happens.
    fn replan(&self, options: &Options, plan: &Plan, drift: &Drift, site: CallSite) -> Course {
        let mut stats = plan.sample.clone();
        stats.mean_item_secs = drift.measured_secs;
        stats.remaining_items = drift.remaining;
        let mut options = options.clone();
        let keep = match drift.from {
            Backend::Serial => Backend::Rayon,
            b => b,
        };
        for b in [
            Backend::Rayon,
            Backend::Threads,
            Backend::Processes,
            Backend::Cluster,
        ] {
            if b != keep && options.excluded(b).is_none() {
                options.forbid(b, "a running job keeps its backend when it is re-planned");
            }
        }
        let machine = match &self.machine {
            Some(m) => Arc::clone(m),
            None => Arc::new(probe::profile().clone()),
        };
        let remade = model::plan(&stats, &machine, &options);
        let course = Course {
            backend: remade.backend,
            workers: remade.workers,
            chunk_size: remade.chunk_size,
        };
        let replan = drift.replan(&course);
        // A new chunk size alone is logged in full only: on a busy machine a job may
        // adjust it often, and `AMORSIZE_LOG=plan` shows decisions a reader acts on.
        let level = if course.backend == drift.from && course.workers == plan.workers {
            LogLevel::Full
        } else {
            LogLevel::Plan
        };
        if env::config().log >= level {
            progress::log_line(&format!("amorsize: [{site}] re-planned {replan}"));
        }
        #[cfg(feature = "tracing")]
        tracing::debug!(target: "amorsize", site = %site, at_item = drift.at_item, "re-planned {replan}");
        course
    }

    /// After the job: when its items ran far off the time its plan assumed (over the
    /// whole job, not only the sample), or it changed course on the way, the call
    /// site's next plan is made from what it measured, here and on disk.
    fn finish<'o>(
        &self,
        (feedback, sampled): (&Feedback, usize),
        options: impl FnOnce() -> &'o Options,
        plan: &Plan,
        replans: Vec<Replan>,
        (site, disk_key): (CallSite, impl FnOnce() -> Option<u64>),
    ) {
        let (chunked, secs) = feedback.totals();
        if chunked == 0 {
            return;
        }
        let expected = plan.sample.mean_item_secs;
        // This call's sampled items count at the sampled time.
        let items = chunked as f64 + sampled as f64;
        let measured = (secs + expected * sampled as f64) / items;
        let ratio = measured / expected;
        let off = expected.is_nan()
            || expected <= 0.0
            || !(1.0 / LEARN_FACTOR..=LEARN_FACTOR).contains(&ratio);
        if replans.is_empty() && !off {
            return;
        }
        let mut stats = plan.sample.clone();
        stats.mean_item_secs = measured;
        if stats.remaining_items.is_some() {
            stats.remaining_items = Some(chunked as usize + sampled);
        }
        let machine = match &self.machine {
            Some(m) => Arc::clone(m),
            None => Arc::new(probe::profile().clone()),
        };
        let mut learned = model::plan(&stats, &machine, options());
        learned.label = Some(site.to_string());
        learned.reasons.push(Reason::LearnedFromLastRun {
            expected_secs: expected,
            measured_secs: measured,
        });
        learned.replans = replans;
        // As for re-plans: a new chunk size alone is logged in full only.
        let level = if learned.backend == plan.backend && learned.workers == plan.workers {
            LogLevel::Full
        } else {
            LogLevel::Plan
        };
        if env::config().log >= level {
            progress::log_line(&format!(
                "amorsize: {learned} (next call; this one ran {})",
                plan.backend
            ));
        }
        if let Some(dk) = disk_key() {
            cache::remember(dk, &stats, false);
        }
        cache::put(self.key, &learned, Some(machine));
    }
}

impl Recheck {
    /// Re-makes the plan for the next calls if the first chunk's time per item is more
    /// than [`RECHECK_FACTOR`] off the remembered one, and keeps the corrected
    /// measurement (in this process and on disk).
    fn check(self, measured: f64, plan: &Plan, site: CallSite) {
        let expected = self.stats.mean_item_secs;
        if !(expected > 0.0 && measured > 0.0) {
            return;
        }
        let ratio = measured / expected;
        if (1.0 / RECHECK_FACTOR..=RECHECK_FACTOR).contains(&ratio) {
            return;
        }
        let mut stats = self.stats;
        stats.mean_item_secs = measured;
        let mut remade = model::plan(&stats, &self.machine, &self.options);
        remade.label = Some(site.to_string());
        remade.reasons.push(Reason::RecheckedOnFirstChunk {
            expected_secs: expected,
            measured_secs: measured,
        });
        if env::config().log != LogLevel::Off {
            progress::log_line(&format!("amorsize: {remade} (was: {})", plan.backend));
        }
        if let Some(dk) = self.disk_key {
            cache::remember(dk, &stats, false);
        }
        cache::put(self.key, &remade, Some(self.machine));
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
