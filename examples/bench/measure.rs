//! Measuring one row: every column computes the same `Vec<u64>` (or the same sum) from
//! its own copy of the input; columns run interleaved, in a fresh random order every
//! repetition; the hand-pinned grid is screened first and its best point re-measured in
//! the main rounds; `par_auto` cold runs in fresh subprocesses of this binary, each with
//! an empty disk cache directory, and cold+disk in fresh subprocesses that share one
//! directory an untimed run filled first.
//!
//! The grid is in [`crate::grid`], the cold subprocesses in [`crate::cold`].

use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::{Duration, Instant};

use orx_parallel::{IntoParIter, Par};
use rayon::prelude::*;

use crate::calls::{auto_call, consume, digest, pinned_call, waiting_job};
use crate::cold::{CacheDir, cold_subprocess, hang_limit};
use crate::grid::{Pin, grid_note};
use crate::results::{Cold, ColdColumn, PlanLog, RowResult, Stat};
use crate::rows::{self, Calibration, Consumer, Rng, RowId, RowVisitor, median};
use crate::watchdog;

/// How long the benchmark may spend, per row.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Whether `--quick` was given (smaller inputs, fewer repetitions).
    pub quick: bool,
    /// Wall time for the main interleaved rounds of a row.
    pub main_secs: f64,
    /// Wall time for screening the pinned grid of a row.
    pub screen_secs: f64,
    /// Fewest main rounds.
    pub min_reps: usize,
    /// Most main rounds (µs-sized rows reach it).
    pub max_reps: usize,
    /// Cold subprocesses per row, and as many cold+disk ones (spread over the first
    /// main rounds).
    pub cold_reps: usize,
}

impl Budget {
    pub fn new(quick: bool) -> Budget {
        if quick {
            Budget {
                quick,
                main_secs: 3.0,
                screen_secs: 1.0,
                min_reps: 3,
                max_reps: 400,
                cold_reps: 3,
            }
        } else {
            Budget {
                quick,
                main_secs: 20.0,
                screen_secs: 6.0,
                min_reps: 7,
                max_reps: 2_000,
                cold_reps: 7,
            }
        }
    }
}

/// Everything a row's measurement needs from the run.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub cal: Calibration,
    pub budget: Budget,
    pub cpus: usize,
    /// Seed of the column shuffles.
    pub seed: u64,
}

// ---- one row ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Col {
    Serial,
    Rayon,
    Orx,
    Pinned(Pin),
    Warm,
    Cold,
    ColdDisk,
}

impl fmt::Display for Col {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Col::Serial => f.write_str("serial"),
            Col::Rayon => f.write_str("rayon par_iter"),
            Col::Orx => f.write_str("orx-parallel"),
            Col::Pinned(pin) => write!(f, "pinned {pin}"),
            Col::Warm => f.write_str("par_auto warm"),
            Col::Cold => f.write_str("par_auto cold"),
            Col::ColdDisk => f.write_str("par_auto cold+disk"),
        }
    }
}

pub struct Runner<'a, T, F> {
    pub ctx: &'a Ctx,
    pub row: RowId,
    pub input: Vec<T>,
    pub f: F,
    pub consumer: Consumer,
    pub reference: Vec<u64>,
    /// Seconds after which a column run counts as hung.
    pub limit: f64,
    pub warm_plans: RefCell<PlanLog>,
    pub waiting_plans: RefCell<PlanLog>,
    pub rng: Rng,
}

impl<T, F> Runner<'_, T, F>
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T) -> u64 + Copy + Send + Sync + 'static,
{
    /// Runs one column on a fresh copy of the input (copied before the clock starts,
    /// after the waiting job on a row that waits first) and returns its wall time and
    /// output.
    pub fn run(&self, col: Col) -> (f64, Vec<u64>) {
        let _watch = watchdog::guard(|| format!("row {}, column {col}", self.row), self.limit);
        if self.row.wait_first() {
            waiting_job(&self.waiting_plans);
        }
        let data = self.input.clone();
        let (f, c) = (self.f, self.consumer);
        let t = Instant::now();
        let out = match col {
            Col::Serial => consume!(data.into_iter().map(f), c),
            Col::Rayon => consume!(data.into_par_iter().map(f), c),
            Col::Orx => consume!(data.into_par().map(f), c),
            Col::Pinned(pin) => pinned_call(data, f, c, pin, &Cell::new(None)),
            Col::Warm => auto_call(data, f, c, &self.warm_plans),
            Col::Cold | Col::ColdDisk => unreachable!("cold runs in a subprocess"),
        };
        let secs = t.elapsed().as_secs_f64();
        (secs, std::hint::black_box(out))
    }

    /// Runs `col` and checks its output against serial's.
    pub fn run_checked(&self, col: Col) -> f64 {
        let (secs, out) = self.run(col);
        assert!(
            out == self.reference,
            "{}: column {col} computed a different result than serial",
            self.row
        );
        secs
    }

    /// One cold subprocess run with `cache` as its disk cache directory, checked.
    fn cold(&self, cache: &CacheDir) -> Option<Cold> {
        let cold = cold_subprocess(self.ctx, self.row, self.limit, cache)?;
        assert_eq!(
            cold.digest,
            digest(&self.reference),
            "{}: par_auto cold computed a different result than serial",
            self.row
        );
        Some(cold)
    }

    pub fn shuffle<X>(&mut self, v: &mut [X]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.rng.below(i + 1));
        }
    }
}

/// Measures one row.
struct MatrixRow<'a>(&'a Ctx);

impl RowVisitor for MatrixRow<'_> {
    type Out = RowResult;

    fn visit<T, F>(self, row: RowId, input: Vec<T>, f: F) -> RowResult
    where
        T: Clone + Send + Sync + 'static,
        F: Fn(T) -> u64 + Copy + Send + Sync + 'static,
    {
        let ctx = self.0;
        let items = input.len();
        let consumer = row.consumer();
        let t = Instant::now();
        let reference = consume!(input.iter().cloned().map(f), consumer);
        let limit = hang_limit(t.elapsed().as_secs_f64());
        let mut r = Runner {
            ctx,
            row,
            input,
            f,
            consumer,
            reference,
            limit,
            warm_plans: RefCell::new(PlanLog::default()),
            waiting_plans: RefCell::new(PlanLog::default()),
            rng: Rng(ctx.seed ^ (row as u64).wrapping_mul(0x9e37)),
        };

        // Every column once, checked against serial; the first par_auto call of this
        // call site here makes the plan the warm column reuses.
        let t_warmup = r.run_checked(Col::Warm);
        // Wall time of a round, with each column's untimed copy of the input and drop of
        // its output (they dominate the big-items row), to pick the repetitions.
        let mut round = 0.0;
        let mut untimed = 0.0;
        for col in [Col::Serial, Col::Rayon, Col::Orx, Col::Warm] {
            let t = Instant::now();
            let secs = r.run_checked(col);
            let wall = t.elapsed().as_secs_f64();
            round += wall;
            untimed = f64::max(untimed, wall - secs);
        }
        eprintln!(
            "  {row}: checked; first par_auto call {:.3} ms, plan: {}",
            t_warmup * 1e3,
            r.warm_plans.borrow().text().as_deref().unwrap_or("?")
        );

        let processes = r.processes_available();
        let grid_note = grid_note(&processes);
        let screened = r.screen(processes.is_ok());
        match screened {
            Some((pin, secs)) => {
                eprintln!("  {row}: best pinned point: {pin} ({:.3} ms)", secs * 1e3);
                round += secs + untimed;
            }
            None => eprintln!("  {row}: no pinned point to run ({grid_note})"),
        }

        // One cold run now, to know what it costs (it also counts as a sample).
        let t = Instant::now();
        let mut cold_runs: Vec<Cold> = r.cold(&CacheDir::fresh()).into_iter().collect();
        let mut cold_hung = usize::from(cold_runs.is_empty());
        let cold_cost = t.elapsed().as_secs_f64();
        // The untimed run that fills the cold+disk column's directory.
        let disk_dir = CacheDir::fresh();
        let priming = r.cold(&disk_dir);
        let mut disk_runs: Vec<Cold> = Vec::new();
        let mut disk_hung = usize::from(priming.is_none());

        let b = ctx.budget;
        let reps = ((b.main_secs / round) as usize).clamp(b.min_reps, b.max_reps);
        let reps = reps.max(b.cold_reps);
        let colds_left = b.cold_reps.saturating_sub(1);
        eprintln!(
            "  {row}: {reps} interleaved rounds (~{:.2} s each, cold subprocess {:.2} s; \
             cold+disk priming run: plan from {})",
            round,
            cold_cost,
            priming
                .as_ref()
                .map_or_else(|| "-".into(), |c| c.plan.origin.to_string())
        );

        let mut times: Vec<(Col, Vec<f64>)> = [Col::Serial, Col::Rayon, Col::Orx, Col::Warm]
            .into_iter()
            .chain(screened.map(|(pin, _)| Col::Pinned(pin)))
            .map(|c| (c, Vec::with_capacity(reps)))
            .collect();
        for rep in 0..reps {
            let mut cols: Vec<Col> = times.iter().map(|(c, _)| *c).collect();
            if rep < colds_left {
                cols.push(Col::Cold);
            }
            if rep < b.cold_reps {
                cols.push(Col::ColdDisk);
            }
            r.shuffle(&mut cols);
            for col in cols {
                if col == Col::Cold {
                    match r.cold(&CacheDir::fresh()) {
                        Some(c) => cold_runs.push(c),
                        None => cold_hung += 1,
                    }
                } else if col == Col::ColdDisk {
                    match r.cold(&disk_dir) {
                        Some(c) => disk_runs.push(c),
                        None => disk_hung += 1,
                    }
                } else {
                    let secs = r.run(col).0;
                    if let Some((_, v)) = times.iter_mut().find(|(c, _)| *c == col) {
                        v.push(secs);
                    }
                }
            }
        }
        // Warm minus serial within each round (neighbours in time), so drift between
        // rounds cancels: the cost of asking, on rows that stay serial.
        let warm_minus_serial = median(
            times[0]
                .1
                .iter()
                .zip(&times[3].1)
                .map(|(serial, warm)| warm - serial),
        );
        let stat = |i: usize| {
            times
                .get(i)
                .map_or_else(|| Stat::of(&[]), |t| Stat::of(&t.1))
        };
        RowResult {
            row,
            items,
            reps,
            serial: stat(0),
            rayon: stat(1),
            orx: stat(2),
            warm: stat(3),
            pinned: stat(4),
            best_pin: screened.map(|(pin, _)| pin),
            pinned_screened: screened.map_or(f64::NAN, |(_, secs)| secs),
            grid_note,
            processes_note: processes.err(),
            warm_plans: r.warm_plans.into_inner(),
            cold: ColdColumn::new(cold_runs, cold_hung),
            cold_disk: ColdColumn::new(disk_runs, disk_hung),
            priming,
            warm_minus_serial,
            waiting_plans: row.wait_first().then(|| r.waiting_plans.into_inner()),
        }
    }
}

/// Measures one row of the matrix.
pub fn measure_row(ctx: &Ctx, row: RowId) -> RowResult {
    rows::visit(row, &ctx.cal, ctx.budget.quick, MatrixRow(ctx))
}

/// Pauses briefly so one row's threads settle before the next row starts.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(50));
}
