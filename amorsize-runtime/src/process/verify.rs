//! Before a task is trusted to worker processes: a few items already run in the caller
//! are run again on a worker, and the encoded outputs compared.
//!
//! Worker processes never run `main`. A task that reads state only `main` sets (a
//! `static` filled at start-up, `std::env::args()`, a global configured there) computes
//! something else on a worker, and nothing else would notice: the results would be
//! silently wrong. Comparing the bytes of a few outputs catches that. It refuses some
//! tasks that are right (an output whose encoding is not deterministic, such as a
//! `HashMap`, or a task that is not a function of its input), never the other way
//! round; the plan says why, and what to do.
//!
//! The price: the checked items (at most [`CHECK_ITEMS`]) run a second time, on a
//! worker, and that run's results are only compared, never emitted.

use std::time::{Duration, Instant};

use super::frame::{self, FromWorker};
use super::handle::{Event, describe};
use super::idle;
use super::registry::TaskEntry;

/// Most items run again on a worker.
pub(crate) const CHECK_ITEMS: usize = 3;
/// The least time a worker gets to answer them (more when the items are slow).
pub(crate) const MIN_WAIT: Duration = Duration::from_secs(10);

/// One item run in the caller: its index and the encodings of its input and output.
#[derive(Debug)]
pub(crate) struct Checked {
    pub index: usize,
    pub input: Vec<u8>,
    pub output: Vec<u8>,
}

/// Runs `items` again on a worker and compares. `Ok` if every output is the same;
/// otherwise why the task cannot be trusted to worker processes, in words that say
/// what to do. `item_secs` is the caller's mean time per item, to bound the wait.
pub(crate) fn verify(
    task: &'static TaskEntry,
    items: &[Checked],
    item_secs: f64,
) -> Result<(), String> {
    if items.is_empty() {
        return Ok(());
    }
    let mut worker = idle::checkout_one()
        .map_err(|e| format!("no worker process could be started to check the task: {e}"))?;
    let mut out = Vec::new();
    worker.bind(task, &mut out);
    for c in items {
        frame::item(&mut out, c.index as u64, &c.input).map_err(|e| e.to_string())?;
    }
    if !worker.send(out) {
        return Err("the worker process checking the task closed its pipe".to_string());
    }
    let budget = Duration::from_secs_f64((item_secs * 10.0 * items.len() as f64).min(3600.0));
    let deadline = Instant::now() + MIN_WAIT.max(budget);
    let mut differ = Vec::new();
    for c in items {
        let got = match worker.events().recv_deadline(deadline) {
            Ok(Event::Frame(FromWorker::Output { index, payload })) if index == c.index as u64 => {
                (payload != c.output).then(|| format!("item {}: a different output", c.index))
            }
            Ok(Event::Frame(FromWorker::Panicked { message, .. })) => {
                Some(format!("item {}: panicked there ({message})", c.index))
            }
            Ok(Event::Frame(FromWorker::Failed { message, .. })) => {
                Some(format!("item {}: failed there ({message})", c.index))
            }
            Ok(Event::Closed(exit)) => {
                return Err(refusal(&format!(
                    "item {}: the worker died ({})",
                    c.index,
                    describe(&exit)
                )));
            }
            Ok(other) => {
                worker.kill();
                return Err(format!(
                    "the worker checking the task sent {other:?} (a bug in amorsize)"
                ));
            }
            Err(_) => {
                worker.kill();
                return Err(refusal(&format!(
                    "item {}: no answer within {:?}",
                    c.index,
                    MIN_WAIT.max(budget)
                )));
            }
        };
        differ.extend(got);
    }
    idle::check_in(worker);
    if differ.is_empty() {
        Ok(())
    } else {
        Err(refusal(&differ.join("; ")))
    }
}

/// Why a task whose worker results differ is refused, and what to do (for worker
/// processes and cluster workers alike: neither runs `main`).
pub(crate) fn refusal(what: &str) -> String {
    format!(
        "worker results differ from the caller's for items already run ({what}): worker \
         processes never run `main`, so a task must not read state that only `main` sets \
         (a static filled at start-up, std::env::args()); initialise it inside the task \
         (e.g. a `LazyLock` computed from the environment, which workers inherit), and \
         make the output's encoding deterministic (e.g. a `BTreeMap`, not a `HashMap`)"
    )
}
