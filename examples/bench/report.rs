//! The Markdown report: machine, calibration, the matrix as speedups over serial,
//! absolute times, plans, planning overhead and the targets.

use std::fmt::Write as _;

use amorsize::Backend;

use crate::measure::{Latency, RowResult, Stat};
use crate::rows::{self, Calibration, RowId, median};

/// Where and how the benchmark ran.
#[derive(Debug)]
pub struct Machine {
    pub cpus: usize,
    pub logical: usize,
    pub model: String,
    pub rayon_threads: usize,
    pub load_start: String,
    pub load_end: String,
    pub command: String,
    pub quick: bool,
    pub seed: u64,
    pub wall_secs: f64,
}

impl Machine {
    pub fn detect(command: String, quick: bool, seed: u64) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown (no /proc/cpuinfo model name)".into());
        let logical = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            logical,
            model,
            rayon_threads: rayon::current_num_threads(),
            load_start: loadavg(),
            load_end: String::new(),
            command,
            quick,
            seed,
            wall_secs: 0.0,
        }
    }
}

/// The 1, 5 and 15 minute load averages, as text.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Seconds with a readable unit.
pub fn secs(s: f64) -> String {
    if !s.is_finite() {
        "-".into()
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else if s >= 1e-6 {
        format!("{:.1} µs", s * 1e6)
    } else {
        format!("{:.0} ns", s * 1e9)
    }
}

fn x(r: f64) -> String {
    if !r.is_finite() {
        "-".into()
    } else if r >= 10.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}

fn stat_cell(s: &Stat) -> String {
    if s.n == 0 {
        "-".into()
    } else {
        format!("{} ±{:.0}%", secs(s.median), 50.0 * s.spread())
    }
}

/// Speedups of one row, all over serial's median.
pub struct Ratios {
    pub rayon: f64,
    pub orx: f64,
    pub pinned: f64,
    pub cold: f64,
    pub warm: f64,
    /// Best non-auto column's time over par_auto's time (>= 1: par_auto as fast).
    pub warm_vs_best: f64,
    pub cold_vs_best: f64,
    /// Rayon's time over par_auto warm's (> 1: par_auto faster than plain rayon).
    pub warm_vs_rayon: f64,
    /// Predicted (warm plan) and measured (warm) speedup.
    pub predicted: f64,
    pub measured: f64,
    /// Share of the best column's time that the cold sample alone costs.
    pub sample_share: f64,
}

impl Ratios {
    pub fn of(r: &RowResult) -> Ratios {
        let s = r.serial.median;
        let (_, best) = r.best_column();
        let predicted = r
            .warm_plans
            .main()
            .map_or(f64::NAN, |p| p.estimated_speedup);
        let sample_secs = median(r.cold_runs.iter().map(|c| c.plan.sample_secs));
        let best_speedup = s / best;
        Ratios {
            rayon: s / r.rayon.median,
            orx: s / r.orx.median,
            pinned: s / r.pinned.median,
            cold: s / r.cold.median,
            warm: s / r.warm.median,
            warm_vs_best: best / r.warm.median,
            cold_vs_best: best / r.cold.median,
            warm_vs_rayon: r.rayon.median / r.warm.median,
            predicted,
            measured: s / r.warm.median,
            sample_share: sample_secs * (1.0 - 1.0 / best_speedup).max(0.0) / best,
        }
    }
}

/// The whole report, as Markdown.
pub fn markdown(
    m: &Machine,
    cal: &Calibration,
    rows: &[RowResult],
    latency: Option<&Latency>,
) -> String {
    let mut o = String::new();
    let w = &mut o;
    let _ = writeln!(w, "# amorsize benchmark matrix\n");
    let _ = writeln!(w, "- command: `{}`", m.command);
    let _ = writeln!(
        w,
        "- mode: {}; column order shuffled every repetition (seed {})",
        if m.quick { "--quick" } else { "full" },
        m.seed
    );
    let _ = writeln!(
        w,
        "- machine: {} CPUs available (`available_parallelism`), {} logical; {}",
        m.cpus, m.logical, m.model
    );
    let _ = writeln!(
        w,
        "- rayon global pool: {} threads; orx-parallel: defaults",
        m.rayon_threads
    );
    let _ = writeln!(
        w,
        "- load average (1/5/15 min) at start: {}; at end: {}; wall time {:.0} s",
        m.load_start, m.load_end, m.wall_secs
    );
    if m.cpus <= 2 || load_of(&m.load_start) > 0.5 * m.cpus as f64 {
        let _ = writeln!(
            w,
            "- caveat: a small or shared machine (see the load): timings are noisy; \
             compare columns within a row, which ran interleaved"
        );
    }

    let _ = writeln!(w, "\n## Calibration\n");
    let _ = writeln!(
        w,
        "One `mix` round (splitmix64 finaliser, dependent chain): {:.2} ns.\n",
        cal.ns_per_round
    );
    let _ = writeln!(w, "| item | target | rounds | measured per item |");
    let _ = writeln!(w, "|---|---:|---:|---:|");
    let rounds = [
        cal.tiny,
        cal.cheap,
        cal.heavy,
        cal.skew_median,
        cal.mixed_cpu,
        cal.nested_sub,
    ];
    for (i, (label, target, got)) in cal.checks.iter().enumerate() {
        let r = rounds.get(i).map_or("-".to_string(), |r| r.to_string());
        let target = if target.is_finite() {
            secs(target * 1e-9)
        } else {
            "cheap".into()
        };
        let _ = writeln!(w, "| {label} | {target} | {r} | {} |", secs(got * 1e-9));
    }

    let _ = writeln!(w, "\n## Speedup over serial\n");
    let _ = writeln!(
        w,
        "Median of interleaved rounds, as serial time / column time (higher is better). \
         *best pinned*: the fastest point of a grid of fully pinned amorsize plans \
         (backend x workers x chunk), re-measured in the main rounds. *cold*: the first \
         `par_auto` call of a fresh process (a subprocess of this binary); *warm*: the same \
         call site again. *÷ best*: the fastest non-`par_auto` column's time over \
         `par_auto`'s (>= 0.95 is the target). *warm ÷ rayon*: plain rayon's time over \
         `par_auto` warm's (> 1: `par_auto` is faster than rayon; < 1: slower). \
         *predicted*: the warm plan's `estimated_speedup`, which is for the items after \
         the sample.\n"
    );
    let _ = writeln!(
        w,
        "| row | items | serial | rayon | orx | best pinned | cold | warm | warm ÷ best | cold ÷ best | warm ÷ rayon (> 1: faster) | plan (warm) | predicted | measured |"
    );
    let _ = writeln!(
        w,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    );
    for r in rows {
        let q = Ratios::of(r);
        let plan = r
            .warm_plans
            .main()
            .map_or_else(|| "?".into(), |p| p.short());
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} ({}) | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} |",
            r.row,
            r.items,
            secs(r.serial.median),
            x(q.rayon),
            x(q.orx),
            x(q.pinned),
            r.best_pin.map_or_else(|| "none".into(), |p| p.to_string()),
            x(q.cold),
            x(q.warm),
            q.warm_vs_best,
            q.cold_vs_best,
            q.warm_vs_rayon,
            plan,
            x(q.predicted),
            x(q.measured)
        );
    }
    let _ = writeln!(
        w,
        "\nPer-item work (and serial's median time per item here):\n"
    );
    for r in rows {
        let _ = writeln!(
            w,
            "- {}: {} ({} an item)",
            r.row,
            r.row.per_item(),
            secs(r.serial.median / r.items as f64)
        );
    }
    if rows
        .iter()
        .any(|r| matches!(r.row, RowId::Files | RowId::Tokens))
    {
        let c = rows::corpus();
        let _ = writeln!(
            w,
            "\nThe files and tokens rows read {}, sorted by path.",
            c.describe()
        );
        if let Some(r) = find(rows, RowId::Files) {
            let passes = r.items as f64 / c.paths.len().max(1) as f64;
            let _ = if passes > 1.0 {
                writeln!(
                    w,
                    "files: {} paths, the list cycled through {passes:.1} times.",
                    r.items
                )
            } else {
                writeln!(w, "files: the first {} paths of the list.", r.items)
            };
        }
        if let Some(r) = find(rows, RowId::Tokens) {
            let _ = writeln!(
                w,
                "tokens: the first {} lines of those files concatenated (cycled if fewer).",
                r.items
            );
        }
    }

    let _ = writeln!(w, "\n## Times\n");
    let _ = writeln!(
        w,
        "Medians ± half the interquartile range, in percent of the median; *rounds*: \
         interleaved repetitions; the pinned column shows its screening median, then the \
         fresh re-measurement.\n"
    );
    let _ = writeln!(
        w,
        "| row | rounds | serial | rayon | orx | pinned: screened → re-measured | cold (runs) | warm |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} → {} | {} ({}) | {} |",
            r.row,
            r.reps,
            stat_cell(&r.serial),
            stat_cell(&r.rayon),
            stat_cell(&r.orx),
            secs(r.pinned_screened),
            stat_cell(&r.pinned),
            secs(r.cold.median),
            r.cold.n,
            stat_cell(&r.warm)
        );
    }

    let _ = writeln!(w, "\n## Plans\n");
    for r in rows {
        let warm = r.warm_plans.text.as_deref().unwrap_or("?");
        let _ = writeln!(w, "- **{}**, warm: {warm}", r.row);
        if r.warm_plans.seen.len() > 1 {
            let seen: Vec<String> = r
                .warm_plans
                .seen
                .iter()
                .map(|(p, n)| format!("{} x{n}", p.short()))
                .collect();
            let _ = writeln!(
                w,
                "  - the warm call site made several choices (re-planned on some calls): {}",
                seen.join(", ")
            );
        }
        if let Some(c) = r.cold_plan() {
            let _ = writeln!(
                w,
                "  - cold: {} (sample: {} items in {})",
                c.text,
                c.plan.sample_items,
                secs(c.plan.sample_secs)
            );
        }
        if let Some(waiting) = &r.waiting_plans {
            let _ = writeln!(
                w,
                "  - untimed waiting job before every run: {}",
                waiting.text.as_deref().unwrap_or("?")
            );
        }
        let _ = writeln!(w, "  - pinned grid: {}", r.grid_note);
        if r.cold_hung > 0 {
            let _ = writeln!(
                w,
                "  - **{} cold subprocess(es) hung** and were killed",
                r.cold_hung
            );
        }
    }

    if let Some(l) = latency {
        overhead(w, l, rows);
    }
    targets(w, rows);
    o
}

fn load_of(s: &str) -> f64 {
    s.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn lat_cell(v: &[Option<f64>]) -> String {
    let got: Vec<f64> = v.iter().flatten().copied().collect();
    if v.is_empty() {
        "-".into()
    } else if got.is_empty() {
        format!("none: ran serially ({} runs)", v.len())
    } else if got.len() < v.len() {
        format!(
            "{} ({} of {} runs went parallel)",
            secs(median(got.iter().copied())),
            got.len(),
            v.len()
        )
    } else {
        format!("{} ({} runs)", secs(median(got.iter().copied())), v.len())
    }
}

fn overhead(w: &mut String, l: &Latency, rows: &[RowResult]) {
    let _ = writeln!(w, "\n## Planning overhead\n");
    let _ = writeln!(
        w,
        "Time from the call to the first item that ran off the caller's thread, on {} items \
         of ~100 µs (medians):\n",
        l.items
    );
    let _ = writeln!(w, "| call | to first parallel item |");
    let _ = writeln!(w, "|---|---:|");
    let _ = writeln!(
        w,
        "| `par_auto` cold (fresh process) | {} |",
        lat_cell(&l.cold)
    );
    let _ = writeln!(w, "| `par_auto` warm | {} |", lat_cell(&l.warm));
    let _ = writeln!(
        w,
        "| pinned `{}` (no sampling) | {} |",
        l.pin,
        lat_cell(&l.pinned)
    );
    let _ = writeln!(w, "| rayon `par_iter` | {} |", lat_cell(&l.rayon));
    if let Some(p) = &l.warm_plan {
        let _ = writeln!(w, "\nWarm plan: {p}");
    }
    if let Some(p) = &l.cold_plan {
        let _ = writeln!(w, "\nCold plan: {p}");
    }
    if let Some(t) = rows.iter().find(|r| r.row == RowId::Tiny) {
        let warm = (t.warm.median - t.serial.median) * 1e9;
        let paired = t.warm_minus_serial * 1e9;
        let cold = (t.cold.median - t.serial.median) * 1e9;
        let _ = writeln!(
            w,
            "\nCost of the decision on the tiny row ({} items, serial {}): `par_auto` warm \
             − serial = {paired:.0} ns (median of the difference within each round; \
             difference of the medians: {warm:.0} ns); cold − serial = {cold:.0} ns \
             (includes the probe of the machine and a fresh process's first touches).",
            t.items,
            secs(t.serial.median)
        );
    }
}

fn find(rows: &[RowResult], id: RowId) -> Option<&RowResult> {
    rows.iter().find(|r| r.row == id)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn targets(w: &mut String, rows: &[RowResult]) {
    let _ = writeln!(w, "\n## Targets\n");
    let _ = writeln!(
        w,
        "Goals, not tests; on a shared 2-CPU machine expect noise of several percent.\n"
    );
    let _ = writeln!(w, "| target | result | numbers |");
    let _ = writeln!(w, "|---|---|---|");
    let row = |w: &mut String, t: &str, ok: Option<bool>, n: String| {
        let v = ok.map_or("not run", verdict);
        let _ = writeln!(w, "| {t} | {v} | {n} |");
    };
    if rows.is_empty() {
        return;
    }
    let ratios: Vec<(RowId, Ratios)> = rows.iter().map(|r| (r.row, Ratios::of(r))).collect();

    let low: Vec<String> = ratios
        .iter()
        .filter(|(_, q)| q.warm_vs_best < 0.95)
        .map(|(id, q)| format!("{id} {:.2}", q.warm_vs_best))
        .collect();
    let min = ratios
        .iter()
        .map(|(_, q)| q.warm_vs_best)
        .fold(f64::INFINITY, f64::min);
    row(
        w,
        "`par_auto` warm ≥ 0.95 × the best column, every row",
        Some(low.is_empty()),
        format!(
            "min {min:.2}{}",
            if low.is_empty() {
                String::new()
            } else {
                format!("; below: {}", low.join(", "))
            }
        ),
    );

    let mut excused = Vec::new();
    let mut low = Vec::new();
    for (id, q) in &ratios {
        if q.cold_vs_best >= 0.95 {
            continue;
        }
        if q.sample_share > 0.05 {
            excused.push(format!(
                "{id} {:.2} (sampling costs {:.0} %)",
                q.cold_vs_best,
                100.0 * q.sample_share
            ));
        } else {
            low.push(format!("{id} {:.2}", q.cold_vs_best));
        }
    }
    row(
        w,
        "`par_auto` cold ≥ 0.95 × the best column, except where sampling alone costs > 5 %",
        Some(low.is_empty()),
        format!(
            "below: {}; excused: {}",
            if low.is_empty() {
                "none".into()
            } else {
                low.join(", ")
            },
            if excused.is_empty() {
                "none".into()
            } else {
                excused.join(", ")
            }
        ),
    );

    let tiny = find(rows, RowId::Tiny);
    row(
        w,
        "tiny: warm ≤ 1.05 × serial (time)",
        tiny.map(|t| t.warm.median <= 1.05 * t.serial.median),
        tiny.map_or_else(String::new, |t| {
            format!(
                "{:.3} ({} vs {})",
                t.warm.median / t.serial.median,
                secs(t.warm.median),
                secs(t.serial.median)
            )
        }),
    );

    let sleep = find(rows, RowId::Sleep);
    row(
        w,
        "sleep: cold ≥ 20 × serial (speedup)",
        sleep.map(|r| Ratios::of(r).cold >= 20.0),
        sleep.map_or_else(String::new, |r| x(Ratios::of(r).cold)),
    );

    let lock = find(rows, RowId::Locked);
    row(
        w,
        "lock-bound: ≥ 1.8 × serial (warm speedup)",
        lock.map(|r| Ratios::of(r).warm >= 1.8),
        lock.map_or_else(String::new, |r| {
            let q = Ratios::of(r);
            format!(
                "warm {}, cold {}; serial {}{}; Processes: {}",
                x(q.warm),
                x(q.cold),
                secs(r.serial.median),
                if r.serial.median < 0.2 {
                    " (**below the row's 200 ms**: the machine sped up after calibration)"
                } else {
                    ""
                },
                r.processes_note.as_deref().unwrap_or("in the grid")
            )
        }),
    );

    let logs: Vec<f64> = ratios.iter().map(|(_, q)| q.warm_vs_rayon.ln()).collect();
    let geo = (logs.iter().sum::<f64>() / logs.len() as f64).exp();
    let (min_id, min_q) = ratios
        .iter()
        .min_by(|a, b| a.1.warm_vs_rayon.total_cmp(&b.1.warm_vs_rayon))
        .map(|(id, q)| (*id, q.warm_vs_rayon))
        .unwrap_or((RowId::Tiny, f64::NAN));
    row(
        w,
        "geometric mean of rayon time / `par_auto` warm time ≥ 1.5",
        Some(geo >= 1.5),
        format!(
            "{geo:.2} over {} rows; minimum {min_q:.2} ({min_id})",
            ratios.len()
        ),
    );

    let mut misses = Vec::new();
    let mut shown = Vec::new();
    let mut any = false;
    for (id, q) in &ratios {
        let err = q.predicted / q.measured - 1.0;
        let cell = format!(
            "{id} {}/{} ({:+.0} %)",
            x(q.predicted),
            x(q.measured),
            100.0 * err
        );
        if matches!(id, RowId::Heavy | RowId::Sleep | RowId::Locked) {
            any = true;
            if err.abs() > 0.2 || !err.is_finite() {
                misses.push(cell.clone());
            }
            shown.push(format!("**{cell}**"));
        } else {
            shown.push(cell);
        }
    }
    row(
        w,
        "predicted speedup within ±20 % of measured (warm) on heavy, sleep, lock-bound",
        any.then_some(misses.is_empty()),
        format!("predicted/measured: {}", shown.join(", ")),
    );
    let serial_plans: Vec<&str> = rows
        .iter()
        .filter(|r| {
            r.warm_plans
                .main()
                .is_some_and(|p| p.backend == Backend::Serial)
        })
        .map(|r| r.row.name())
        .collect();
    if !serial_plans.is_empty() {
        let _ = writeln!(
            w,
            "\nRows whose warm plan was serial: {}.",
            serial_plans.join(", ")
        );
    }
}
