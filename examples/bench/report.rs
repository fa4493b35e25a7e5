//! The Markdown report: machine, calibration, the matrix as speedups over serial,
//! absolute times, plans, planning overhead and the targets.
//!
//! The planning overhead and the targets are in [`crate::targets`].

use std::fmt::Write as _;

use crate::corpus;
use crate::latency::Latency;
use crate::results::{RowResult, Stat};
use crate::rows::{Calibration, RowId, median};
use crate::targets::{overhead, targets};

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

/// A speedup, as `1.23x`.
pub fn x(r: f64) -> String {
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
    pub cold_disk: f64,
    pub warm: f64,
    /// Best non-auto column's time over par_auto's time (>= 1: par_auto as fast).
    pub warm_vs_best: f64,
    pub cold_vs_best: f64,
    /// Warm's time over cold+disk's (>= 1: a fresh process with a warm disk cache is
    /// as fast as the warm call site).
    pub cold_disk_vs_warm: f64,
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
        let sample_secs = median(r.cold.runs.iter().map(|c| c.plan.sample_secs));
        let best_speedup = s / best;
        Ratios {
            rayon: s / r.rayon.median,
            orx: s / r.orx.median,
            pinned: s / r.pinned.median,
            cold: s / r.cold.stat.median,
            cold_disk: s / r.cold_disk.stat.median,
            warm: s / r.warm.median,
            warm_vs_best: best / r.warm.median,
            cold_vs_best: best / r.cold.stat.median,
            cold_disk_vs_warm: r.warm.median / r.cold_disk.stat.median,
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
         `par_auto` call of a fresh process (a subprocess of this binary) with an empty \
         temporary disk cache directory (`AMORSIZE_CACHE_DIR`); *cold+disk*: the same, in \
         a directory that an untimed earlier run of the row filled (the disk cache warm); \
         *warm*: the same call site again, in process. *÷ best*: the fastest \
         non-`par_auto` column's time over `par_auto`'s (>= 0.95 is the target). \
         *cold+disk ÷ warm*: warm's time over cold+disk's. *warm ÷ rayon*: plain rayon's time over \
         `par_auto` warm's (> 1: `par_auto` is faster than rayon; < 1: slower). \
         *predicted*: the warm plan's `estimated_speedup`, which is for the items after \
         the sample.\n"
    );
    let _ = writeln!(
        w,
        "| row | items | serial | rayon | orx | best pinned | cold | cold+disk | warm | warm ÷ best | cold ÷ best | cold+disk ÷ warm | warm ÷ rayon (> 1: faster) | plan (warm) | predicted | measured |"
    );
    let _ = writeln!(
        w,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    );
    for r in rows {
        let q = Ratios::of(r);
        let plan = r
            .warm_plans
            .main()
            .map_or_else(|| "?".into(), |p| p.short());
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} |",
            r.row,
            r.items,
            secs(r.serial.median),
            x(q.rayon),
            x(q.orx),
            x(q.pinned),
            r.best_pin.map_or_else(|| "none".into(), |p| p.to_string()),
            x(q.cold),
            x(q.cold_disk),
            x(q.warm),
            q.warm_vs_best,
            q.cold_vs_best,
            q.cold_disk_vs_warm,
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
        let c = corpus::corpus();
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
        "| row | rounds | serial | rayon | orx | pinned: screened → re-measured | cold (runs) | cold+disk (runs) | warm |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} → {} | {} ({}) | {} ({}) | {} |",
            r.row,
            r.reps,
            stat_cell(&r.serial),
            stat_cell(&r.rayon),
            stat_cell(&r.orx),
            secs(r.pinned_screened),
            stat_cell(&r.pinned),
            secs(r.cold.stat.median),
            r.cold.stat.n,
            secs(r.cold_disk.stat.median),
            r.cold_disk.stat.n,
            stat_cell(&r.warm)
        );
    }

    let _ = writeln!(w, "\n## Plans\n");
    for r in rows {
        let warm = r.warm_plans.text().unwrap_or_else(|| "?".into());
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
        if let Some(c) = r.cold.plan() {
            let _ = writeln!(
                w,
                "  - cold: {} (sample: {} items in {}; plans from: {})",
                c.text,
                c.plan.sample_items,
                secs(c.plan.sample_secs),
                r.cold.origins()
            );
        }
        if let Some(c) = r.cold_disk.plan() {
            let _ = writeln!(
                w,
                "  - cold+disk: first call's plan from: {} (the untimed priming run's: {}); {}",
                r.cold_disk.origins(),
                r.priming
                    .as_ref()
                    .map_or_else(|| "hung".into(), |p| p.plan.origin.to_string()),
                c.text
            );
        }
        if let Some(waiting) = &r.waiting_plans {
            let _ = writeln!(
                w,
                "  - untimed waiting job before every run: {}",
                waiting.text().as_deref().unwrap_or("?")
            );
        }
        let _ = writeln!(w, "  - pinned grid: {}", r.grid_note);
        for (name, col) in [("cold", &r.cold), ("cold+disk", &r.cold_disk)] {
            if col.hung > 0 {
                let _ = writeln!(
                    w,
                    "  - **{} {name} subprocess(es) hung** and were killed",
                    col.hung
                );
            }
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

/// The result of row `id`, if it ran.
pub fn find(rows: &[RowResult], id: RowId) -> Option<&RowResult> {
    rows.iter().find(|r| r.row == id)
}
