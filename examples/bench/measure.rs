//! Measuring one row: every column computes the same `Vec<u64>` (or the same sum) from
//! its own copy of the input; columns run interleaved, in a fresh random order every
//! repetition; the hand-pinned grid is screened first and its best point re-measured in
//! the main rounds; `par_auto` cold runs in fresh subprocesses of this binary.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use amorsize::prelude::*;
use amorsize::{Backend, Plan};
use orx_parallel::{IntoParIter, Par};
use rayon::prelude::*;

use crate::rows::{self, Calibration, Consumer, Rng, RowId, RowVisitor, median};
use crate::{watchdog, work};

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
    /// Cold subprocesses per row (spread over the first main rounds).
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

/// A hand-pinned plan: backend, workers and chunk size all pinned, so no sampling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pin {
    pub backend: Backend,
    pub workers: usize,
    pub chunk: usize,
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} x{} c{}", self.backend, self.workers, self.chunk)
    }
}

/// What a plan said, without its allocations (recorded on every warm call).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanInfo {
    pub backend: Backend,
    pub workers: usize,
    pub chunk: usize,
    pub estimated_speedup: f64,
    pub sample_items: usize,
    pub sample_secs: f64,
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

/// The plans one call site announced: the first one's text, and each distinct choice
/// with how often it was made.
#[derive(Debug, Default)]
pub struct PlanLog {
    pub text: Option<String>,
    pub seen: Vec<(PlanInfo, usize)>,
}

impl PlanLog {
    fn record(&mut self, p: &Plan) {
        if self.text.is_none() {
            // Without the call-site label: it is this file's one `par_auto` line.
            let mut unlabelled = p.clone();
            unlabelled.label = None;
            self.text = Some(unlabelled.to_string());
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
    pub cold: Stat,
    pub cold_runs: Vec<Cold>,
    /// Cold subprocesses killed for running past the hang limit.
    pub cold_hung: usize,
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

    /// The most common cold plan.
    pub fn cold_plan(&self) -> Option<&Cold> {
        let mut best: Option<(&Cold, usize)> = None;
        for c in &self.cold_runs {
            let n = self
                .cold_runs
                .iter()
                .filter(|o| o.plan.same_choice(&c.plan))
                .count();
            if best.is_none_or(|(_, m)| n > m) {
                best = Some((c, n));
            }
        }
        best.map(|(c, _)| c)
    }
}

// ---- the call sites --------------------------------------------------------------------

/// Ends a pipeline (serial, rayon, orx-parallel or `par_auto`: their consumers have the
/// same names) with the row's [`Consumer`]; a sum comes back as a one-element vector.
macro_rules! consume {
    ($pipeline:expr, $consumer:expr) => {{
        let pipeline = $pipeline;
        match $consumer {
            Consumer::Collect => pipeline.collect::<Vec<u64>>(),
            Consumer::Sum => vec![pipeline.sum::<u64>()],
        }
    }};
}

/// The `par_auto` call site of every row, warm and cold (each row's item function has
/// its own type, so each row has its own cache entry).
pub fn auto_call<T, F>(data: Vec<T>, f: F, consumer: Consumer, log: &RefCell<PlanLog>) -> Vec<u64>
where
    T: Send,
    F: Fn(T) -> u64 + Sync,
{
    consume!(
        data.par_auto()
            .on_plan(|p| log.borrow_mut().record(p))
            .map(f),
        consumer
    )
}

/// The call site of every hand-pinned point.
fn pinned_call<T, F>(
    data: Vec<T>,
    f: F,
    consumer: Consumer,
    pin: Pin,
    seen: &Cell<Option<Backend>>,
) -> Vec<u64>
where
    T: Send,
    F: Fn(T) -> u64 + Sync,
{
    consume!(
        data.par_auto()
            .backend(pin.backend)
            .max_workers(pin.workers)
            .chunk_size(pin.chunk)
            .on_plan(|p| seen.set(Some(p.backend)))
            .map(f),
        consumer
    )
}

/// The untimed job before every run of a row that [waits first](RowId::wait_first):
/// [`rows::waits`] through `par_auto`, which runs the sleeps on its blocking pool with
/// dozens of threads, so the timed CPU job starts while those threads wind down.
/// Its own call site: its plan is made once and reused, as in a program that
/// alternates the two jobs.
fn waiting_job(log: &RefCell<PlanLog>) {
    let out: Vec<u64> = rows::waits()
        .par_auto()
        .on_plan(|p| log.borrow_mut().record(p))
        .map(work::sleep_item)
        .collect();
    std::hint::black_box(out);
}

fn digest(v: &[u64]) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

// ---- one row ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Col {
    Serial,
    Rayon,
    Orx,
    Pinned(Pin),
    Warm,
    Cold,
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
        }
    }
}

struct Runner<'a, T, F> {
    ctx: &'a Ctx,
    row: RowId,
    input: Vec<T>,
    f: F,
    consumer: Consumer,
    reference: Vec<u64>,
    /// Seconds after which a column run counts as hung.
    limit: f64,
    warm_plans: RefCell<PlanLog>,
    waiting_plans: RefCell<PlanLog>,
    rng: Rng,
}

impl<T, F> Runner<'_, T, F>
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T) -> u64 + Copy + Send + Sync + 'static,
{
    /// Runs one column on a fresh copy of the input (copied before the clock starts,
    /// after the waiting job on a row that waits first) and returns its wall time and
    /// output.
    fn run(&self, col: Col) -> (f64, Vec<u64>) {
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
            Col::Cold => unreachable!("cold runs in a subprocess"),
        };
        let secs = t.elapsed().as_secs_f64();
        (secs, std::hint::black_box(out))
    }

    /// Runs `col` and checks its output against serial's.
    fn run_checked(&self, col: Col) -> f64 {
        let (secs, out) = self.run(col);
        assert!(
            out == self.reference,
            "{}: column {col} computed a different result than serial",
            self.row
        );
        secs
    }

    fn cold(&self) -> Option<Cold> {
        let cold = cold_subprocess(self.ctx, self.row, self.limit)?;
        assert_eq!(
            cold.digest,
            digest(&self.reference),
            "{}: par_auto cold computed a different result than serial",
            self.row
        );
        Some(cold)
    }

    fn shuffle<X>(&mut self, v: &mut [X]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.rng.below(i + 1));
        }
    }

    /// Whether a pinned Processes plan is accepted for this row's function (a two-item
    /// call: a closure or an unmarked function falls back to another backend).
    fn processes_available(&self) -> Result<(), String> {
        if !work::PROCESSES {
            return Err("off (work::PROCESSES = false)".into());
        }
        let seen = Cell::new(None);
        let pin = Pin {
            backend: Backend::Processes,
            workers: 2,
            chunk: 1,
        };
        let probe: Vec<T> = self.input.iter().take(2).cloned().collect();
        pinned_call(probe, self.f, self.consumer, pin, &seen);
        match seen.get() {
            Some(Backend::Processes) => Ok(()),
            other => Err(format!(
                "a pinned Processes plan ran as {} (only an #[amorsize::task] function runs on processes)",
                other.map_or("?", Backend::name)
            )),
        }
    }

    /// Screens the pinned grid: every point once (and again while the budget allows),
    /// then the three best a few more times, all interleaved. Returns the best point and
    /// its screening median, if the grid has any point.
    fn screen(&mut self, processes: bool) -> Option<(Pin, f64)> {
        let points = grid(self.input.len(), self.ctx.cpus, processes);
        if points.is_empty() {
            return None;
        }
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); points.len()];
        let budget = self.ctx.budget.screen_secs;
        let mut order: Vec<usize> = (0..points.len()).collect();
        self.shuffle(&mut order);
        let start = Instant::now();
        for &i in &order {
            times[i].push(self.run_checked(Col::Pinned(points[i])));
        }
        let pass = start.elapsed().as_secs_f64();
        let extra = ((budget / 2.0 / pass) as usize).saturating_sub(1).min(50);
        for _ in 0..extra {
            self.shuffle(&mut order);
            for &i in &order {
                times[i].push(self.run(Col::Pinned(points[i])).0);
            }
        }
        let mut ranked: Vec<usize> = (0..points.len()).collect();
        ranked.sort_by(|&a, &b| median(times[a].clone()).total_cmp(&median(times[b].clone())));
        let mut top: Vec<usize> = ranked.into_iter().take(3).collect();
        let top_pass: f64 = top.iter().map(|&i| median(times[i].clone())).sum();
        let finals = ((budget / 2.0 / top_pass) as usize).clamp(2, 200);
        for _ in 0..finals {
            self.shuffle(&mut top);
            for &i in &top {
                times[i].push(self.run(Col::Pinned(points[i])).0);
            }
        }
        let best = top
            .iter()
            .copied()
            .min_by(|&a, &b| median(times[a].clone()).total_cmp(&median(times[b].clone())))
            .unwrap_or(0);
        Some((points[best], median(times[best].clone())))
    }
}

/// The hand-pinned grid: Rayon with 1x and 2x the CPUs, Threads with 1x, 8x and 64x
/// (capped at the item count), Processes (when available) with 1x and 2x; each with
/// chunks of 1/64, 1/8 and all of a worker's share.
fn grid(n: usize, cpus: usize, processes: bool) -> Vec<Pin> {
    let mut plan: Vec<(Backend, Vec<usize>)> = vec![
        (Backend::Rayon, vec![cpus, 2 * cpus]),
        (Backend::Threads, vec![cpus, 8 * cpus, 64 * cpus]),
    ];
    if processes {
        plan.push((Backend::Processes, vec![cpus, 2 * cpus]));
    }
    let mut out: Vec<Pin> = Vec::new();
    for (backend, workers) in plan {
        for w in workers {
            let w = w.clamp(1, n.max(1));
            for per in [64, 8, 1] {
                let chunk = n.div_ceil(w * per).max(1);
                let pin = Pin {
                    backend,
                    workers: w,
                    chunk,
                };
                if !out.contains(&pin) {
                    out.push(pin);
                }
            }
        }
    }
    out
}

fn grid_note(processes: &Result<(), String>) -> String {
    let mut note =
        String::from("Rayon x1,2 CPUs, Threads x1,8,64 CPUs; chunks 1/64, 1/8, 1 of a share");
    match processes {
        Ok(()) => note.push_str("; Processes x1,2 CPUs"),
        Err(why) => {
            note.push_str("; no Processes: ");
            note.push_str(why);
        }
    }
    note
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
            r.warm_plans.borrow().text.as_deref().unwrap_or("?")
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
        let mut cold_runs: Vec<Cold> = r.cold().into_iter().collect();
        let mut cold_hung = usize::from(cold_runs.is_empty());
        let cold_cost = t.elapsed().as_secs_f64();

        let b = ctx.budget;
        let reps = ((b.main_secs / round) as usize).clamp(b.min_reps, b.max_reps);
        let reps = reps.max(b.cold_reps);
        let colds_left = b.cold_reps.saturating_sub(1);
        eprintln!(
            "  {row}: {reps} interleaved rounds (~{:.2} s each, cold subprocess {:.2} s)",
            round, cold_cost
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
            r.shuffle(&mut cols);
            for col in cols {
                if col == Col::Cold {
                    match r.cold() {
                        Some(c) => cold_runs.push(c),
                        None => cold_hung += 1,
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
        let cold_secs: Vec<f64> = cold_runs.iter().map(|c| c.secs).collect();
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
            cold: Stat::of(&cold_secs),
            cold_runs,
            cold_hung,
            warm_minus_serial,
            waiting_plans: row.wait_first().then(|| r.waiting_plans.into_inner()),
        }
    }
}

/// Measures one row of the matrix.
pub fn measure_row(ctx: &Ctx, row: RowId) -> RowResult {
    rows::visit(row, &ctx.cal, ctx.budget.quick, MatrixRow(ctx))
}

// ---- cold subprocesses -----------------------------------------------------------------

/// Seconds after which a column run of a row whose serial run took `serial_secs` counts
/// as hung.
fn hang_limit(serial_secs: f64) -> f64 {
    30.0 + 30.0 * serial_secs
}

/// Runs `bench --cold ROW` and parses its report; `None` if it ran past `limit` seconds
/// (it is killed).
pub fn cold_subprocess(ctx: &Ctx, row: RowId, limit: f64) -> Option<Cold> {
    let exe = std::env::current_exe().expect("the path of this benchmark binary");
    let mut cmd = Command::new(exe);
    cmd.arg("--cold")
        .arg(row.name())
        .arg("--cal")
        .arg(ctx.cal.to_arg());
    if ctx.budget.quick {
        cmd.arg("--quick");
    }
    // The report is one short line, so a full pipe cannot block the child; its stderr
    // (e.g. AMORSIZE_LOG output) goes straight to ours.
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a cold subprocess of this binary");
    let start = Instant::now();
    let status = loop {
        match child.try_wait().expect("wait for the cold subprocess") {
            Some(status) => break status,
            None if start.elapsed().as_secs_f64() > limit => {
                eprintln!("bench: HUNG: cold subprocess for {row} ran past {limit:.0} s; killed");
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout)
            .expect("read the cold subprocess's report");
    }
    assert!(
        status.success(),
        "cold subprocess for {row} failed ({status}):\n{stdout}"
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(COLD_PREFIX))
        .unwrap_or_else(|| panic!("cold subprocess for {row} printed no report:\n{stdout}"));
    Some(parse_cold(line).unwrap_or_else(|| panic!("unreadable cold report for {row}: {line}")))
}

const COLD_PREFIX: &str = "amorsize-bench-cold ";

fn parse_cold(line: &str) -> Option<Cold> {
    let (fields, text) = line.split_once(" plan=")?;
    let get = |k: &str| {
        fields
            .split(' ')
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
    };
    let f = |k: &str| get(k)?.parse::<f64>().ok();
    let u = |k: &str| get(k)?.parse::<usize>().ok();
    Some(Cold {
        secs: f("secs")?,
        digest: get("digest")?.parse().ok()?,
        plan: PlanInfo {
            backend: get("backend")?.parse().ok()?,
            workers: u("workers")?,
            chunk: u("chunk")?,
            estimated_speedup: f("est")?,
            sample_items: u("sample_items")?,
            sample_secs: f("sample_secs")?,
        },
        first_parallel: f("first_parallel"),
        text: text.to_string(),
    })
}

/// The child side: the first `par_auto` call of this process, timed (on a row that
/// waits first, the first call of its call site, right after the waiting job, which
/// is then this process's first `par_auto` call).
struct ColdRow;

impl RowVisitor for ColdRow {
    type Out = ();

    fn visit<T, F>(self, row: RowId, input: Vec<T>, f: F)
    where
        T: Clone + Send + Sync + 'static,
        F: Fn(T) -> u64 + Copy + Send + Sync + 'static,
    {
        let log = RefCell::new(PlanLog::default());
        if row.wait_first() {
            waiting_job(&RefCell::new(PlanLog::default()));
        }
        let start = work::latency_start();
        let t = Instant::now();
        let out = auto_call(input, f, row.consumer(), &log);
        let secs = t.elapsed().as_secs_f64();
        let first = work::latency_since(start);
        let log = log.into_inner();
        let plan = log.main().expect("on_plan is called once per job");
        println!(
            "{COLD_PREFIX}secs={secs:e} digest={} backend={} workers={} chunk={} est={:e} \
             sample_items={} sample_secs={:e} first_parallel={} plan={}",
            digest(&out),
            plan.backend,
            plan.workers,
            plan.chunk,
            plan.estimated_speedup,
            plan.sample_items,
            plan.sample_secs,
            first.map_or_else(|| "-".to_string(), |s| format!("{s:e}")),
            log.text.unwrap_or_default()
        );
    }
}

/// Entry of `bench --cold ROW`.
pub fn cold_child(row: RowId, cal: &Calibration, quick: bool) {
    work::init_latency_probe();
    rows::visit(row, cal, quick, ColdRow);
}

// ---- planning overhead -----------------------------------------------------------------

/// Time from the call to the first item that ran off the caller's thread.
#[derive(Debug)]
pub struct Latency {
    pub items: usize,
    /// `par_auto`, first call of a process (subprocesses).
    pub cold: Vec<Option<f64>>,
    pub cold_plan: Option<String>,
    /// `par_auto`, later calls of the same call site.
    pub warm: Vec<Option<f64>>,
    pub warm_plan: Option<String>,
    /// Pinned Rayon (no sampling): the executor's own start-up.
    pub pinned: Vec<Option<f64>>,
    pub pin: Pin,
    /// Plain rayon `par_iter`.
    pub rayon: Vec<Option<f64>>,
}

struct LatencyRow<'a>(&'a Ctx);

impl RowVisitor for LatencyRow<'_> {
    type Out = Latency;

    fn visit<T, F>(self, row: RowId, input: Vec<T>, f: F) -> Latency
    where
        T: Clone + Send + Sync + 'static,
        F: Fn(T) -> u64 + Copy + Send + Sync + 'static,
    {
        let ctx = self.0;
        let n = input.len();
        let pin = Pin {
            backend: Backend::Rayon,
            workers: ctx.cpus,
            chunk: n.div_ceil(8 * ctx.cpus).max(1),
        };
        let log = RefCell::new(PlanLog::default());
        let reps = if ctx.budget.quick { 5 } else { 15 };
        let mut lat = Latency {
            items: n,
            cold: Vec::new(),
            cold_plan: None,
            warm: Vec::new(),
            warm_plan: None,
            pinned: Vec::new(),
            pin,
            rayon: Vec::new(),
        };
        // The first in-process call makes the warm plan.
        let consumer = row.consumer();
        let t = Instant::now();
        auto_call(input.clone(), f, consumer, &log);
        let limit = hang_limit(t.elapsed().as_secs_f64());
        let mut rng = Rng(ctx.seed ^ 0x1a7);
        let mut cols: Vec<u8> = vec![0, 1, 2, 3];
        for rep in 0..reps {
            for i in (1..cols.len()).rev() {
                cols.swap(i, rng.below(i + 1));
            }
            for &c in &cols {
                if c == 3 {
                    if rep < ctx.budget.cold_reps
                        && let Some(cold) = cold_subprocess(ctx, row, limit)
                    {
                        lat.cold.push(cold.first_parallel);
                        lat.cold_plan.get_or_insert(cold.text);
                    }
                    continue;
                }
                let _watch = watchdog::guard(|| format!("latency row, column {c}"), limit);
                let data = input.clone();
                let start = work::latency_start();
                let out: Vec<u64> = match c {
                    0 => auto_call(data, f, consumer, &log),
                    1 => pinned_call(data, f, consumer, pin, &Cell::new(None)),
                    _ => consume!(data.into_par_iter().map(f), consumer),
                };
                std::hint::black_box(out);
                let l = work::latency_since(start);
                match c {
                    0 => lat.warm.push(l),
                    1 => lat.pinned.push(l),
                    _ => lat.rayon.push(l),
                }
            }
        }
        lat.warm_plan = log.into_inner().text;
        lat
    }
}

/// Measures planning overhead on the latency row.
pub fn measure_latency(ctx: &Ctx) -> Latency {
    rows::visit(RowId::Latency, &ctx.cal, ctx.budget.quick, LatencyRow(ctx))
}

/// Pauses briefly so one row's threads settle before the next row starts.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(50));
}
