//! The call sites every column goes through: the per-consumer dispatch that ends a
//! pipeline, the one `par_auto` call site of each row, the hand-pinned call site, the
//! untimed waiting job, and the digest of an output.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use amorsize::Backend;
use amorsize::prelude::*;

use crate::grid::Pin;
use crate::results::PlanLog;
use crate::rows::{self, Consumer};
use crate::work;

/// Ends a pipeline (serial, rayon, orx-parallel or `par_auto`: their consumers have the
/// same names) with the row's [`Consumer`]; a sum comes back as a one-element vector.
macro_rules! consume {
    ($pipeline:expr, $consumer:expr) => {{
        let pipeline = $pipeline;
        match $consumer {
            $crate::rows::Consumer::Collect => pipeline.collect::<Vec<u64>>(),
            $crate::rows::Consumer::Sum => vec![pipeline.sum::<u64>()],
        }
    }};
}
pub(crate) use consume;

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
pub fn pinned_call<T, F>(
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

/// The untimed job before every run of a row that [waits
/// first](crate::rows::RowId::wait_first):
/// [`rows::waits`] through `par_auto`, which runs the sleeps on its blocking pool with
/// dozens of threads, so the timed CPU job starts while those threads wind down.
/// Its own call site: its plan is made once and reused, as in a program that
/// alternates the two jobs.
pub fn waiting_job(log: &RefCell<PlanLog>) {
    let out: Vec<u64> = rows::waits()
        .par_auto()
        .on_plan(|p| log.borrow_mut().record(p))
        .map(work::sleep_item)
        .collect();
    std::hint::black_box(out);
}

/// A hash of a column's output, to compare a cold subprocess's result with serial's.
pub fn digest(v: &[u64]) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}
