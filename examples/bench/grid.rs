//! The hand-pinned grid: its points, whether Processes may join it for a row, and the
//! screening that picks the point the main rounds re-measure.

use std::cell::Cell;
use std::fmt;
use std::time::Instant;

use amorsize::Backend;

use crate::calls::pinned_call;
use crate::measure::{Col, Runner};
use crate::rows::median;
use crate::work;

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

impl<T, F> Runner<'_, T, F>
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T) -> u64 + Copy + Send + Sync + 'static,
{
    /// Whether a pinned Processes plan is accepted for this row's function (a two-item
    /// call: a closure or an unmarked function falls back to another backend).
    pub fn processes_available(&self) -> Result<(), String> {
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
    pub fn screen(&mut self, processes: bool) -> Option<(Pin, f64)> {
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

/// What the grid held, for the report.
pub fn grid_note(processes: &Result<(), String>) -> String {
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
