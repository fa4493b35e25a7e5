//! What measuring a row produces: the plans a call site announced, the statistics of a
//! column's times, the cold runs as the subprocesses reported them, and the row's
//! result.

use amorsize::{Backend, Origin, Plan};

use crate::grid::Pin;
use crate::rows::RowId;

/// What a plan said, without its allocations (recorded on every warm call).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanInfo {
    pub backend: Backend,
    pub workers: usize,
    pub chunk: usize,
    pub estimated_speedup: f64,
    pub sample_items: usize,
    pub sample_secs: f64,
    /// Where the plan came from: the cold columns check that a fresh process with an
    /// empty cache directory sampled, and that one with a warm one used the disk cache.
    pub origin: Origin,
}

impl PlanInfo {
    fn of(p: &Plan) -> PlanInfo {
        PlanInfo {
            backend: p.backend,
            workers: p.workers,
            chunk: p.chunk_size,
            estimated_speedup: p.estimated_speedup,
            sample_items: p.sample.items,
            sample_secs: p.sample.sample_secs,
            origin: p.origin,
        }
    }

    /// Backend, workers and chunk, as in [`Pin`].
    pub fn short(&self) -> String {
        match self.backend {
            Backend::Serial => "serial".to_string(),
            b => format!("{b} x{} c{}", self.workers, self.chunk),
        }
    }

    fn same_choice(&self, o: &PlanInfo) -> bool {
        (self.backend, self.workers, self.chunk) == (o.backend, o.workers, o.chunk)
    }
}

/// The plans one call site announced: the first one, and each distinct choice with how
/// often it was made.
#[derive(Debug, Default)]
pub struct PlanLog {
    first: Option<Plan>,
    pub seen: Vec<(PlanInfo, usize)>,
}

impl PlanLog {
    /// Called from the `on_plan` hook, inside the timed call: keeps a copy, and
    /// formats it only when the report asks ([`text`](Self::text)).
    pub fn record(&mut self, p: &Plan) {
        if self.first.is_none() {
            self.first = Some(p.clone());
        }
        let info = PlanInfo::of(p);
        match self.seen.iter_mut().find(|(i, _)| i.same_choice(&info)) {
            Some((i, n)) => {
                *i = info;
                *n += 1;
            }
            None => self.seen.push((info, 1)),
        }
    }

    /// The first plan's text, without the call-site label (it is this file's one
    /// `par_auto` line).
    pub fn text(&self) -> Option<String> {
        self.first.as_ref().map(|p| {
            let mut unlabelled = p.clone();
            unlabelled.label = None;
            unlabelled.to_string()
        })
    }

    /// The choice made most often.
    pub fn main(&self) -> Option<PlanInfo> {
        self.seen.iter().max_by_key(|(_, n)| *n).map(|(i, _)| *i)
    }
}

/// Median, quartiles and count of one column's times, in seconds.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
    pub n: usize,
}

impl Stat {
    pub fn of(times: &[f64]) -> Stat {
        let mut v = times.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            return Stat {
                median: f64::NAN,
                q1: f64::NAN,
                q3: f64::NAN,
                n,
            };
        }
        Stat {
            median: v[n / 2],
            q1: v[n / 4],
            q3: v[(3 * n) / 4],
            n,
        }
    }

    /// Interquartile range over the median.
    pub fn spread(&self) -> f64 {
        (self.q3 - self.q1) / self.median
    }
}

/// One cold run, as the subprocess reported it.
#[derive(Clone, Debug)]
pub struct Cold {
    pub secs: f64,
    pub digest: u64,
    pub plan: PlanInfo,
    pub text: String,
    pub first_parallel: Option<f64>,
}

/// A column of cold subprocess runs (plain cold, or cold with a warm disk cache).
#[derive(Debug)]
pub struct ColdColumn {
    /// Statistics of the runs' times.
    pub stat: Stat,
    /// The runs, as the subprocesses reported them.
    pub runs: Vec<Cold>,
    /// Subprocesses killed for running past the hang limit.
    pub hung: usize,
}

impl ColdColumn {
    pub fn new(runs: Vec<Cold>, hung: usize) -> ColdColumn {
        let secs: Vec<f64> = runs.iter().map(|c| c.secs).collect();
        ColdColumn {
            stat: Stat::of(&secs),
            runs,
            hung,
        }
    }

    /// The most common plan.
    pub fn plan(&self) -> Option<&Cold> {
        let mut best: Option<(&Cold, usize)> = None;
        for c in &self.runs {
            let n = self
                .runs
                .iter()
                .filter(|o| o.plan.same_choice(&c.plan))
                .count();
            if best.is_none_or(|(_, m)| n > m) {
                best = Some((c, n));
            }
        }
        best.map(|(c, _)| c)
    }

    /// Where the runs' plans came from, with how many runs each: `the disk cache x3`.
    pub fn origins(&self) -> String {
        let mut seen: Vec<(Origin, usize)> = Vec::new();
        for c in &self.runs {
            match seen.iter_mut().find(|(o, _)| *o == c.plan.origin) {
                Some((_, n)) => *n += 1,
                None => seen.push((c.plan.origin, 1)),
            }
        }
        let parts: Vec<String> = seen.iter().map(|(o, n)| format!("{o} x{n}")).collect();
        if parts.is_empty() {
            "no run".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Everything measured for one row.
#[derive(Debug)]
pub struct RowResult {
    pub row: RowId,
    pub items: usize,
    pub reps: usize,
    pub serial: Stat,
    pub rayon: Stat,
    pub orx: Stat,
    pub pinned: Stat,
    /// The best point of the pinned grid, if the grid had any.
    pub best_pin: Option<Pin>,
    /// Median of the best point in screening (before its fresh re-measurement).
    pub pinned_screened: f64,
    /// What the grid held.
    pub grid_note: String,
    /// Why the grid has no Processes points, when it has none.
    pub processes_note: Option<String>,
    pub warm: Stat,
    pub warm_plans: PlanLog,
    /// `par_auto` cold: each run a fresh process with an empty cache directory.
    pub cold: ColdColumn,
    /// `par_auto` cold with a warm disk cache: fresh processes sharing one cache
    /// directory that an untimed earlier run filled.
    pub cold_disk: ColdColumn,
    /// That earlier run, if it finished.
    pub priming: Option<Cold>,
    /// Median over rounds of (warm − serial) within the same round, in seconds.
    pub warm_minus_serial: f64,
    /// The plans of the untimed waiting job, on a row that [waits
    /// first](RowId::wait_first).
    pub waiting_plans: Option<PlanLog>,
}

impl RowResult {
    /// The fastest of the columns that are not `par_auto`, and its time.
    pub fn best_column(&self) -> (&'static str, f64) {
        [
            ("serial", self.serial.median),
            ("rayon", self.rayon.median),
            ("orx", self.orx.median),
            ("pinned", self.pinned.median),
        ]
        .into_iter()
        .filter(|c| c.1.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or(("serial", self.serial.median))
    }
}
