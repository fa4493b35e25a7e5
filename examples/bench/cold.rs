//! `par_auto` cold: the parent starts `bench --cold ROW` as a fresh subprocess of this
//! binary, kills it past the hang limit and parses its one-line report; the child makes
//! the process's first `par_auto` call and prints that report.

use std::cell::RefCell;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::calls::{auto_call, digest, waiting_job};
use crate::measure::Ctx;
use crate::results::{Cold, PlanInfo, PlanLog};
use crate::rows::{self, Calibration, RowId, RowVisitor};
use crate::work;

/// Seconds after which a column run of a row whose serial run took `serial_secs` counts
/// as hung.
pub fn hang_limit(serial_secs: f64) -> f64 {
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
