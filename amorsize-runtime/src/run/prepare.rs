//! Before a job runs: a plan from what is already known (this process's cache, the
//! disk cache), or a fresh sample and the measurements after it; and what the plan
//! needs to run (worker processes, a reachable cluster), or a plan without them.

use std::sync::Arc;

use crate::cache::{self, Key};
use crate::context::Context;
use crate::env;
use crate::model;
use crate::options::Options;
use crate::plan::{Backend, Origin, Plan, Reason};
use crate::plumbing::{ChunkFold, Stage};
use crate::probe;
use crate::sample;

use super::learn::Recheck;
use super::{Job, Provisioned, effective_options, remaining_estimate};

impl<I, S, H, K> Job<I, S, H, K>
where
    I: Iterator,
    I::Item: Send,
    S: Stage<I::Item>,
    H: FnOnce(&Plan),
    K: ChunkFold<S::Out>,
{
    /// A plan re-made from what this call site measured before, without sampling: in
    /// this process for another input size, else in an earlier run (the disk cache).
    /// The job then checks it on its first chunk. `None` when nothing is known, or when
    /// the plan would use worker processes from a remembered sample: only a fresh one
    /// checks that a worker computes what the caller does.
    pub(super) fn replan_from_known(
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
                entry.plan.ended_in_sample().is_some(),
                entry.machine.clone(),
                Origin::CallSite,
            ),
            None => match cache::remembered(disk_key?, len) {
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
    pub(super) fn machine(&self) -> probe::MachineProfile {
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
    pub(super) fn provision(&mut self, plan: Arc<Plan>, env: &env::EnvConfig) -> Provisioned {
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
                Err(why) => (
                    self.replan_without(Backend::Processes, why, &plan, env),
                    None,
                ),
            };
        }
        #[cfg(all(unix, feature = "cluster"))]
        if plan.backend == Backend::Cluster
            && let Err(why) = crate::cluster::measure()
        {
            // Without a broker or workers the job runs here, whether the cluster was
            // chosen or pinned, with the reason in its plan.
            return (self.replan_without(Backend::Cluster, why, &plan, env), None);
        }
        #[cfg(not(unix))]
        let _ = env;
        (plan, None)
    }

    /// `plan` made again from its sample with `backend` forbidden for `why`.
    #[cfg(unix)]
    fn replan_without(
        &self,
        backend: Backend,
        why: String,
        plan: &Plan,
        env: &env::EnvConfig,
    ) -> Arc<Plan> {
        let mut options = self.effective_options(env);
        options.forbid(backend, why);
        let machine = self
            .machine
            .clone()
            .unwrap_or_else(|| Arc::new(probe::profile().clone()));
        Arc::new(self.label(model::plan(&plan.sample, &machine, &options)))
    }

    /// Options as the model sees them: code pins, then the environment, then what the
    /// thread context and the stage rule out.
    pub(super) fn effective_options(&self, env: &env::EnvConfig) -> Options {
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

    pub(super) fn sample_and_plan(&mut self, len: Option<usize>, options: &Options) -> Plan {
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
    pub(super) fn measure_more(
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
}
