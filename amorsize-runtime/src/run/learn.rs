//! What a running job does with what it measures: a new course for the rest when its
//! items drift off the plan ([`Learn::replan`]), the call site's next plan made from
//! the whole job ([`Learn::finish`]), and a plan re-made without a sample checked on
//! its first chunk ([`Recheck`]).

use std::sync::Arc;

use crate::cache::{self, Key};
use crate::env::{self, LogLevel};
use crate::model;
use crate::options::Options;
use crate::plan::{Backend, Plan, Reason, Replan};
use crate::plumbing::{CallSite, Course, Drift, Feedback};
use crate::probe;
use crate::progress;

/// What a job planned by the model needs to re-plan while it runs, and to leave what
/// it measured to the next call.
pub(super) struct Learn {
    pub(super) key: Key,
    /// Options as the model saw them, when the plan was made now (a cached plan's are
    /// worked out only if they are needed).
    pub(super) options: Option<Options>,
    pub(super) machine: Option<Arc<probe::MachineProfile>>,
}

/// What a plan re-made without a sample needs to be checked, and re-made again if it
/// is far off.
pub(super) struct Recheck {
    pub(super) key: Key,
    pub(super) disk_key: Option<u64>,
    pub(super) options: Options,
    pub(super) machine: Arc<probe::MachineProfile>,
    pub(super) stats: model::SampleStats,
}

/// How far (as a factor, either way) the first chunk's time per item may be from the
/// remembered one before the plan is re-made.
pub(super) const RECHECK_FACTOR: f64 = 2.0;

/// How far (as a factor, either way) a whole job's time per item may be from the one
/// its plan assumed before the call site's next plan is made from the job's.
const LEARN_FACTOR: f64 = 2.0;

impl Learn {
    /// A new course for the rest of a running job whose items drifted off the plan:
    /// the model again, with the measured time per item and the items left, among the
    /// backends the executor can switch to (its own, or serial; a serial run can start
    /// rayon). Logged as it happens.
    pub(super) fn replan(
        &self,
        options: &Options,
        plan: &Plan,
        drift: &Drift,
        site: CallSite,
    ) -> Course {
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
    pub(super) fn finish<'o>(
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
        let on_disk = disk_key().is_some_and(|dk| {
            cache::remember(dk, &stats, false);
            true
        });
        cache::put(self.key, &learned, Some(machine), on_disk);
    }
}

impl Recheck {
    /// Re-makes the plan for the next calls if the first chunk's time per item is more
    /// than [`RECHECK_FACTOR`] off the remembered one, and keeps the corrected
    /// measurement (in this process and on disk).
    pub(super) fn check(self, measured: f64, plan: &Plan, site: CallSite) {
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
        cache::put(
            self.key,
            &remade,
            Some(self.machine),
            self.disk_key.is_some(),
        );
    }
}
