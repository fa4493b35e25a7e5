//! `par_auto` cold: the parent starts `bench --cold ROW` as a fresh subprocess of this
//! binary, with the disk cache directory it chooses, kills it past the hang limit and
//! parses its one-line report; the child makes the process's first `par_auto` call and
//! prints that report.

use std::cell::RefCell;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use amorsize::Origin;

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

/// A fresh, empty disk cache directory under the system's temporary directory, removed
/// when dropped.
///
/// Plans on disk are keyed by the executable, and every cold subprocess is this same
/// binary: with the user's cache directory, each run would find what the benchmark's
/// earlier runs (or the parent itself) wrote, and "cold" would quietly turn warm.
#[derive(Debug)]
pub struct CacheDir(PathBuf);

impl CacheDir {
    pub fn fresh() -> CacheDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("amorsize-bench-cache-{}-{n}", std::process::id()));
        // A leftover of an earlier process with the same id would not be empty.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary disk cache directory");
        CacheDir(dir)
    }
}

impl Drop for CacheDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `bench --cold ROW` with `cache` as its disk cache directory and parses its
/// report; `None` if it ran past `limit` seconds (it is killed).
///
/// `AMORSIZE_CACHE` is removed from the child's environment: the cold columns measure
/// what a program gets with the library's defaults, whatever the shell that started
/// the benchmark set.
pub fn cold_subprocess(ctx: &Ctx, row: RowId, limit: f64, cache: &CacheDir) -> Option<Cold> {
    let exe = std::env::current_exe().expect("the path of this benchmark binary");
    let mut cmd = Command::new(exe);
    cmd.env("AMORSIZE_CACHE_DIR", &cache.0)
        .env_remove("AMORSIZE_CACHE")
        .arg("--cold")
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
            origin: parse_origin(get("origin")?)?,
        },
        first_parallel: f("first_parallel"),
        text: text.to_string(),
    })
}

/// The origins the child can report, named as `{:?}` prints them. A variant added to
/// the library later makes the report unreadable here, loudly, rather than misfiled.
fn parse_origin(s: &str) -> Option<Origin> {
    [Origin::Fresh, Origin::Cache, Origin::CallSite, Origin::Disk]
        .into_iter()
        .find(|o| format!("{o:?}") == s)
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
             sample_items={} sample_secs={:e} origin={:?} first_parallel={} plan={}",
            digest(&out),
            plan.backend,
            plan.workers,
            plan.chunk,
            plan.estimated_speedup,
            plan.sample_items,
            plan.sample_secs,
            plan.origin,
            first.map_or_else(|| "-".to_string(), |s| format!("{s:e}")),
            log.text().unwrap_or_default()
        );
    }
}

/// Entry of `bench --cold ROW`.
pub fn cold_child(row: RowId, cal: &Calibration, quick: bool) {
    work::init_latency_probe();
    rows::visit(row, cal, quick, ColdRow);
}
