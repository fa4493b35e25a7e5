//! The one place where a job is orchestrated: switches -> plan cache -> sample -> model
//! -> executor. Every consumer of [`AutoIter`] and [`optimize`](crate::optimize) ends
//! here.

use std::sync::atomic::AtomicBool;

use crate::__private::SERIAL_BUILD;
use crate::cache::{self, Key};
use crate::env::{self, LogLevel};
use crate::exec::{self, ChunkFold, Context, Pipeline, Windowed};
use crate::iter::{AutoIter, Finish, Site, Stage};
use crate::model;
use crate::options::Options;
use crate::plan::{Backend, NestedIn, Plan, Reason};
use crate::probe;
use crate::sample;

/// Runs a whole job: decides, then executes, then finishes with `fin`.
pub(crate) fn drive<I, S, H, K, C>(auto: AutoIter<I, S, H>, fold: K, fin: C) -> C::Output
where
    I: Iterator,
    I::Item: Send,
    S: Stage<I::Item>,
    H: FnOnce(&Plan),
    K: ChunkFold<S::Out>,
    C: Finish<S::Out, K>,
{
    let mut job = Job::new(auto);
    let plan = job.decide();
    job.run(plan, fold, fin)
}

/// A job between `par_auto()` and its consumer: the source, the stage, and what has
/// been learnt so far.
pub(crate) struct Job<I: Iterator, S: Stage<I::Item>, H> {
    source: I,
    stage: S,
    options: Options,
    hook: Option<H>,
    site: Site,
    context: Context,
    /// Items pulled from the source so far (the sample).
    consumed: usize,
    /// Outputs of the sampled items, emitted first.
    prefix: Vec<S::Out>,
    /// The stage state the sample used; the serial path keeps using it.
    state: Option<S::State>,
    /// The source ended inside the sample.
    exhausted: bool,
}

/// A decision and whether it still needs announcing.
pub(crate) struct Decision {
    plan: Plan,
}

impl Decision {
    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }
}

impl<I, S, H> Job<I, S, H>
where
    I: Iterator,
    I::Item: Send,
    S: Stage<I::Item>,
    H: FnOnce(&Plan),
{
    pub(crate) fn new(auto: AutoIter<I, S, H>) -> Self {
        Job {
            source: auto.source,
            stage: auto.stage,
            options: auto.options,
            hook: auto.hook,
            site: auto.site,
            context: exec::context(),
            consumed: 0,
            prefix: Vec::new(),
            state: None,
            exhausted: false,
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
            return self.announce(Plan::serial(reason), false);
        }

        let len = exact_len(self.source.size_hint());
        let key = Key::new::<S, I::Item>(&self.site, len, self.context, &self.options);
        if let Some(entry) = cache::get(&key) {
            return self.announce(entry.plan.clone(), true);
        }

        let options = self.effective_options(env);
        let plan = if self.options.fully_pinned() && options.excluded(pinned(&options)).is_none() {
            pinned_plan(&options, len)
        } else {
            self.sample_and_plan(len, &options)
        };
        let plan = self.label(plan);
        cache::put(key, plan.clone());
        self.announce(plan, false)
    }

    /// Options as the model sees them: code pins, then the environment, then what the
    /// thread context and the stage rule out.
    fn effective_options(&self, env: &env::EnvConfig) -> Options {
        let mut o = self.options.clone();
        if o.backend.is_none() {
            if let Some(b) = env.backend {
                o.backend = Some(b);
            }
        }
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
        let sampled = sample::sample(&mut self.source, &self.stage, &mut state, len);
        self.consumed = sampled.items;
        self.prefix = sampled.outputs;
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
        model::plan(&stats, &machine, &options)
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
        let processes = free
            && options.excluded(Backend::Processes).is_none()
            && matches!(options.backend, None | Some(Backend::Processes));
        let remote = if processes { self.stage.remote() } else { None };
        let scaling = free && options.backend.is_none() && machine.cpu_budget >= 2;
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
        self.prefix.extend(extra.outputs);
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
        if remote.is_some() {
            process_costs(stats, machine, options);
        }
        None
    }

    fn label(&self, mut plan: Plan) -> Plan {
        plan.label = Some(self.site.to_string());
        plan
    }

    /// Logs the plan and calls the user's hook; a warm cache hit logs nothing (it was
    /// logged when it was made).
    fn announce(&mut self, plan: Plan, warm: bool) -> Decision {
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
        Decision { plan }
    }

    /// Runs the rest of the job under `decision`: the sampled outputs first, then every
    /// item not yet pulled, each exactly once.
    pub(crate) fn run<K, C>(self, decision: Decision, fold: K, fin: C) -> C::Output
    where
        K: ChunkFold<S::Out>,
        C: Finish<S::Out, K>,
    {
        let Job {
            source,
            stage,
            context,
            consumed,
            prefix,
            state,
            exhausted,
            ..
        } = self;
        let plan = decision.plan;
        if exhausted {
            return fin.serial(&fold, prefix.into_iter());
        }
        let rest = (consumed..).zip(source);
        let (workers, chunk) = (plan.workers.max(1), plan.chunk_size.max(1));
        match plan.backend {
            Backend::Rayon if context == Context::RayonWorker => {
                let accs = Windowed::new(&stage, &fold, rest, workers, chunk);
                fin.chunks(&fold, prefix, accs)
            }
            Backend::Rayon => {
                let stop = AtomicBool::new(false);
                rayon::in_place_scope(|s| {
                    let accs = Pipeline::start(s, &stop, &stage, &fold, rest, workers, chunk);
                    fin.chunks(&fold, prefix, accs)
                })
            }
            Backend::Threads => match exec::threads_pool(workers) {
                Ok(pool) => {
                    let stop = AtomicBool::new(false);
                    pool.in_place_scope(|s| {
                        let accs = Pipeline::start(s, &stop, &stage, &fold, rest, workers, chunk);
                        fin.chunks(&fold, prefix, accs)
                    })
                }
                Err(e) => {
                    eprintln!("amorsize: cannot start threads ({e}); running serially");
                    serial(&stage, state, &fold, fin, prefix, rest)
                }
            },
            #[cfg(unix)]
            Backend::Processes => match (stage.remote(), crate::process::pool::take(workers)) {
                (Some(remote), Ok(pool)) => {
                    let accs = exec::Processes::new(&remote, &fold, pool, rest, chunk);
                    fin.chunks(&fold, prefix, accs)
                }
                (None, _) => serial(&stage, state, &fold, fin, prefix, rest),
                (Some(_), Err(e)) => {
                    eprintln!("amorsize: cannot start worker processes ({e}); running serially");
                    serial(&stage, state, &fold, fin, prefix, rest)
                }
            },
            _ => serial(&stage, state, &fold, fin, prefix, rest),
        }
    }
}

/// Below this much predicted work, the process pool's costs are not measured (that
/// starts processes): the model plans with the defaults, which rule processes out.
const PROCESS_COSTS_MIN_WORK_SECS: f64 = 10e-3;

/// Puts the process pool's measured costs into `machine`, or excludes processes if no
/// worker can start.
fn process_costs(
    stats: &model::SampleStats,
    machine: &mut probe::MachineProfile,
    options: &mut Options,
) {
    let work = stats
        .remaining_items
        .map_or(f64::INFINITY, |n| n as f64 * stats.mean_item_secs);
    if work < PROCESS_COSTS_MIN_WORK_SECS {
        return;
    }
    #[cfg(unix)]
    match crate::process::costs::costs() {
        Ok(c) => {
            machine.overheads.process_start_secs = c.start_secs;
            machine.overheads.process_chunk_secs = c.chunk_secs;
            machine.fallbacks.extend(c.fallbacks.iter().cloned());
        }
        Err(e) => options.forbid(
            Backend::Processes,
            format!("worker processes could not start: {e}"),
        ),
    }
    #[cfg(not(unix))]
    let _ = (machine, options);
}

/// The serial path: sampled outputs, then the rest through the stage's std iterator
/// chain, with the sample's stage state.
fn serial<T, S, K, C, R>(
    stage: &S,
    state: Option<S::State>,
    fold: &K,
    fin: C,
    prefix: Vec<S::Out>,
    rest: R,
) -> C::Output
where
    S: Stage<T>,
    K: ChunkFold<S::Out>,
    C: Finish<S::Out, K>,
    R: Iterator<Item = (usize, T)>,
{
    let mut st = state.unwrap_or_else(|| stage.state());
    if prefix.is_empty() {
        fin.serial(fold, stage.serial(&mut st, rest))
    } else {
        fin.serial(fold, prefix.into_iter().chain(stage.serial(&mut st, rest)))
    }
}

/// The backend a fully pinned job names.
fn pinned(options: &Options) -> Backend {
    options.backend.unwrap_or(Backend::Serial)
}

/// A fully pinned job skips sampling: the plan is what the user wrote, clamped.
fn pinned_plan(options: &Options, len: Option<usize>) -> Plan {
    let backend = pinned(options);
    let mut plan = Plan::serial(Reason::Pinned {
        option: "backend",
        value: backend.to_string(),
    });
    plan.backend = backend;
    plan.remaining_items = len;
    let workers = options.max_workers.unwrap_or(1);
    let chunk = options.chunk_size.unwrap_or(1);
    for (option, given) in [("max_workers", workers), ("chunk_size", chunk)] {
        if given == 0 {
            plan.reasons.push(Reason::Clamped {
                option,
                given: "0".into(),
                used: "1".into(),
            });
        }
    }
    plan.workers = if backend == Backend::Serial {
        1
    } else {
        workers.max(1)
    };
    plan.chunk_size = chunk.max(1);
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
