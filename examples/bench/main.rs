//! The benchmark matrix: each row (tiny, tiny-1ns, many cheap, heavy, skewed, sleep,
//! mixed, lock-bound, big items, nested, and the realistic files, tokens and
//! cpu-after-wait) run as serial `Iterator`, rayon `par_iter`, `orx-parallel`, the best
//! of a grid of hand-pinned amorsize plans, and `par_auto` cold (first call of a fresh
//! process, with an empty disk cache), cold+disk (the same with a disk cache an earlier
//! run filled) and warm, interleaved in one run.
//!
//! ```text
//! cargo run --release --example bench -- --quick            # under 2 minutes on 2 CPUs
//! cargo run --release --example bench                       # full matrix
//! cargo run --release --example bench -- --quick --svg bench.svg --rows tiny,sleep
//! ```
//!
//! The Markdown report goes to stdout, progress to stderr. Per-item costs are
//! calibrated at start-up on this machine. `bench --cold ROW --cal …` is the subprocess
//! the benchmark starts itself for the cold columns. The Processes backend joins the
//! pinned grid through [`work::PROCESSES`].

mod calls;
mod chart;
mod cold;
mod corpus;
mod grid;
mod latency;
mod measure;
mod report;
mod results;
mod rows;
mod targets;
mod watchdog;
mod work;

use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use measure::{Budget, Ctx};
use rows::{Calibration, RowId};

const USAGE: &str = "\
usage: bench [--quick] [--svg PATH] [--rows ROW,ROW,...] [--seed N]

  --quick        smaller heavy, files, tokens and cpu-after-wait rows and fewer
                 repetitions (under 2 minutes on 2 CPUs)
  --svg PATH     also write a chart: speedups per row and column, predicted vs measured
  --rows LIST    only these rows (tiny, tiny-1ns, many-cheap, heavy, skewed, sleep,
                 mixed, lock-bound, big-items, nested, files, tokens,
                 cpu-after-wait, latency); default: all
  --seed N       seed of the column shuffles (default: from the clock)

internal: bench --cold ROW --cal CALIBRATION [--quick]   (one cold par_auto call)";

#[derive(Debug, Default)]
struct Args {
    quick: bool,
    svg: Option<String>,
    rows: Option<Vec<RowId>>,
    seed: Option<u64>,
    cold: Option<RowId>,
    cal: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--svg" => a.svg = Some(value("--svg")?),
            "--seed" => {
                let v = value("--seed")?;
                a.seed = Some(v.parse().map_err(|_| format!("bad --seed {v}"))?);
            }
            "--rows" => {
                let v = value("--rows")?;
                let rows = v
                    .split(',')
                    .map(|s| RowId::parse(s.trim()).ok_or_else(|| format!("unknown row `{s}`")))
                    .collect::<Result<Vec<_>, _>>()?;
                a.rows = Some(rows);
            }
            "--cold" => {
                let v = value("--cold")?;
                a.cold = Some(RowId::parse(&v).ok_or_else(|| format!("unknown row `{v}`"))?);
            }
            "--cal" => a.cal = Some(value("--cal")?),
            // `cargo bench` passes this to every bench target; harmless here.
            "--bench" => {}
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    work::init_latency_probe();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("bench: {e}\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };

    if let Some(row) = args.cold {
        let Some(cal) = args.cal.as_deref().and_then(Calibration::from_arg) else {
            eprintln!("bench: --cold needs --cal from the parent benchmark");
            return ExitCode::from(2);
        };
        cold::cold_child(row, &cal, args.quick);
        return ExitCode::SUCCESS;
    }

    let start = Instant::now();
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let command = if argv.is_empty() {
        "cargo run --release --example bench".to_string()
    } else {
        format!("cargo run --release --example bench -- {}", argv.join(" "))
    };
    let mut machine = report::Machine::detect(command, args.quick, seed);
    eprintln!(
        "bench: {} mode on {} CPUs ({}), load {}",
        if args.quick { "quick" } else { "full" },
        machine.cpus,
        machine.model,
        machine.load_start
    );

    eprintln!("bench: calibrating per-item costs…");
    let cal = Calibration::measure();
    eprintln!("  one mix round: {:.2} ns", cal.ns_per_round);
    for (label, target, got) in &cal.checks {
        eprintln!("  {label:<18} target {target:>9.0} ns   measured {got:>11.1} ns");
    }

    let ctx = Ctx {
        cal: cal.clone(),
        budget: Budget::new(args.quick),
        cpus: machine.cpus,
        seed,
    };
    let wanted = args
        .rows
        .unwrap_or_else(|| RowId::MATRIX.into_iter().chain([RowId::Latency]).collect());
    let mut results = Vec::new();
    for &row in wanted.iter().filter(|r| **r != RowId::Latency) {
        eprintln!(
            "bench: row {row} ({} items, {}) [{:.0} s]",
            row.items(args.quick),
            row.per_item(),
            start.elapsed().as_secs_f64()
        );
        results.push(measure::measure_row(&ctx, row));
        machine.wall_secs = start.elapsed().as_secs_f64();
        watchdog::set_partial(report::markdown(&machine, &cal, &results, None));
        measure::settle();
    }
    let latency = wanted.contains(&RowId::Latency).then(|| {
        eprintln!(
            "bench: planning overhead [{:.0} s]",
            start.elapsed().as_secs_f64()
        );
        latency::measure_latency(&ctx)
    });

    machine.load_end = report::loadavg();
    machine.wall_secs = start.elapsed().as_secs_f64();
    print!(
        "{}",
        report::markdown(&machine, &cal, &results, latency.as_ref())
    );
    if let Some(path) = &args.svg {
        let title = format!(
            "{} CPUs, {}",
            machine.cpus,
            if args.quick { "--quick" } else { "full" }
        );
        match chart::write_svg(path, &results, &title) {
            Ok(()) => eprintln!("bench: wrote {path}"),
            Err(e) => {
                eprintln!("bench: cannot write {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("bench: done in {:.0} s", start.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
