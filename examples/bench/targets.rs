//! The report's closing sections: planning overhead (time to the first parallel item)
//! and the targets, each with its verdict.

use std::fmt::Write as _;

use amorsize::{Backend, Origin};

use crate::latency::Latency;
use crate::report::{Ratios, find, secs, x};
use crate::results::RowResult;
use crate::rows::{RowId, median};

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

pub fn overhead(w: &mut String, l: &Latency, rows: &[RowResult]) {
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
        let cold = (t.cold.stat.median - t.serial.median) * 1e9;
        let cold_disk = (t.cold_disk.stat.median - t.serial.median) * 1e9;
        let _ = writeln!(
            w,
            "\nCost of the decision on the tiny row ({} items, serial {}): `par_auto` warm \
             − serial = {paired:.0} ns (median of the difference within each round; \
             difference of the medians: {warm:.0} ns); cold − serial = {cold:.0} ns \
             (includes the probe of the machine and a fresh process's first touches); \
             cold+disk − serial = {cold_disk:.0} ns (the same, with a warm disk cache).",
            t.items,
            secs(t.serial.median)
        );
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

/// One line of the targets table: `ok` is `None` when none of its rows ran.
fn line(w: &mut String, target: &str, ok: Option<bool>, numbers: String) {
    let v = ok.map_or("not run", verdict);
    let _ = writeln!(w, "| {target} | {v} | {numbers} |");
}

pub fn targets(w: &mut String, rows: &[RowResult]) {
    let _ = writeln!(w, "\n## Targets\n");
    let _ = writeln!(
        w,
        "Goals, not tests; on a shared 2-CPU machine expect noise of several percent.\n"
    );
    let _ = writeln!(w, "| target | result | numbers |");
    let _ = writeln!(w, "|---|---|---|");
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
    line(
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
    line(
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
    line(
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
    line(
        w,
        "sleep: cold ≥ 20 × serial (speedup)",
        sleep.map(|r| Ratios::of(r).cold >= 20.0),
        sleep.map_or_else(String::new, |r| x(Ratios::of(r).cold)),
    );

    let lock = find(rows, RowId::Locked);
    line(
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
    line(
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
    line(
        w,
        "predicted speedup within ±20 % of measured (warm) on heavy, sleep, lock-bound",
        any.then_some(misses.is_empty()),
        format!("predicted/measured: {}", shown.join(", ")),
    );
    disk_targets(w, rows);
    learning_targets(w, rows);
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

/// Issue 14's targets: deciding costs nothing on tiny jobs, and a fresh process whose
/// disk cache an earlier run filled is as fast as a warm call site.
fn disk_targets(w: &mut String, rows: &[RowResult]) {
    let mut ok = None;
    let mut numbers = Vec::new();
    for id in [RowId::Tiny, RowId::TinyNs] {
        match find(rows, id) {
            Some(t) => {
                let ratio = t.warm.median / t.serial.median;
                ok = Some(ok.unwrap_or(true) && ratio <= 1.03);
                numbers.push(format!(
                    "{id} {ratio:.3} ({} vs {})",
                    secs(t.warm.median),
                    secs(t.serial.median)
                ));
            }
            None => numbers.push(format!("{id} not run")),
        }
    }
    line(
        w,
        "tiny and tiny-1ns: warm ≤ 1.03 × serial (time)",
        ok,
        numbers.join("; "),
    );

    let mut ok = None;
    let mut numbers = Vec::new();
    for id in [
        RowId::Heavy,
        RowId::Cheap,
        RowId::Skewed,
        RowId::Sleep,
        RowId::Locked,
    ] {
        let Some(r) = find(rows, id) else {
            continue;
        };
        let ratio = Ratios::of(r).cold_disk_vs_warm;
        ok = Some(ok.unwrap_or(true) && ratio >= 0.9);
        // A ratio that is not about the disk cache at all should say so.
        let origins = if r
            .cold_disk
            .runs
            .iter()
            .all(|c| c.plan.origin == Origin::Disk)
        {
            String::new()
        } else {
            format!(" (plans from: {})", r.cold_disk.origins())
        };
        numbers.push(format!("{id} {ratio:.2}{origins}"));
    }
    line(
        w,
        "cold+disk ≥ 0.9 × warm (speedup) on heavy, many-cheap, skewed, sleep, lock-bound",
        ok,
        if numbers.is_empty() {
            String::new()
        } else {
            format!("warm time / cold+disk time: {}", numbers.join(", "))
        },
    );

    let tiny = find(rows, RowId::Tiny);
    line(
        w,
        "tiny: first call ≤ 20 µs over serial with a warm disk cache",
        tiny.map(|t| t.cold_disk.stat.median - t.serial.median <= 20e-6),
        tiny.map_or_else(String::new, |t| {
            format!(
                "{:+.1} µs (cold+disk first call {}, serial {}; plans from: {}); \
                 with an empty cache: {:+.1} µs",
                (t.cold_disk.stat.median - t.serial.median) * 1e6,
                secs(t.cold_disk.stat.median),
                secs(t.serial.median),
                t.cold_disk.origins(),
                (t.cold.stat.median - t.serial.median) * 1e6
            )
        }),
    );
}

/// Issue 15's targets: plans that learn while they run. Each row's warm plan (printed
/// in the plans section) shows the re-plans the run before it made.
fn learning_targets(w: &mut String, rows: &[RowResult]) {
    for id in [RowId::DriftDown, RowId::DriftUp, RowId::Growing] {
        let r = find(rows, id);
        line(
            w,
            &format!("{id}: warm ≥ 0.9 × the best column (goal 0.95)"),
            r.map(|r| Ratios::of(r).warm_vs_best >= 0.9),
            r.map_or_else(String::new, |r| {
                let (name, _) = r.best_column();
                format!("{:.2} of {name}", Ratios::of(r).warm_vs_best)
            }),
        );
    }
    let nested = find(rows, RowId::Nested);
    line(
        w,
        "nested: warm ≥ 0.95 × the better of serial and rayon",
        nested.map(|r| r.serial.median.min(r.rayon.median) / r.warm.median >= 0.95),
        nested.map_or_else(String::new, |r| {
            format!(
                "{:.2} (serial {}, rayon {}, warm {})",
                r.serial.median.min(r.rayon.median) / r.warm.median,
                secs(r.serial.median),
                secs(r.rayon.median),
                secs(r.warm.median)
            )
        }),
    );
    for (id, what) in [
        (RowId::Mixed, "the best pinned plan"),
        (
            RowId::Sleep,
            "the best pinned plan (one thread per item among them)",
        ),
    ] {
        let r = find(rows, id);
        line(
            w,
            &format!("{id}: warm ≥ 0.95 × {what}"),
            r.map(|r| r.pinned.median / r.warm.median >= 0.95),
            r.map_or_else(String::new, |r| {
                format!(
                    "{:.2} (pinned {}, warm {})",
                    r.pinned.median / r.warm.median,
                    secs(r.pinned.median),
                    secs(r.warm.median)
                )
            }),
        );
    }
}
