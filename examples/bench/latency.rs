//! Planning overhead on the latency row: time from the call to the first item that ran
//! off the caller's thread, for `par_auto` cold and warm, a pinned Rayon plan and plain
//! rayon.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use amorsize::Backend;
use rayon::prelude::*;

use crate::calls::{auto_call, consume, pinned_call};
use crate::cold::{CacheDir, cold_subprocess, hang_limit};
use crate::grid::Pin;
use crate::measure::Ctx;
use crate::results::PlanLog;
use crate::rows::{self, Rng, RowId, RowVisitor};
use crate::{watchdog, work};

/// Time from the call to the first item that ran off the caller's thread.
#[derive(Debug)]
pub struct Latency {
    pub items: usize,
    /// `par_auto`, first call of a process (subprocesses, each with an empty disk cache
    /// directory).
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
                        && let Some(cold) = cold_subprocess(ctx, row, limit, &CacheDir::fresh())
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
        lat.warm_plan = log.into_inner().text();
        lat
    }
}

/// Measures planning overhead on the latency row.
pub fn measure_latency(ctx: &Ctx) -> Latency {
    rows::visit(RowId::Latency, &ctx.cal, ctx.budget.quick, LatencyRow(ctx))
}
