//! The pool of idle worker processes kept between jobs, and how a job gets its workers.
//!
//! Idle workers wait in a process-wide pool for the next job, at most
//! [`max_idle_workers`] of them; the pool retires one a little before its own idle
//! timeout ([`IDLE_TIMEOUT`]) would end it, so a job rarely meets a worker that is just
//! leaving (and one that is, says `Bye` without having read anything, so its items are
//! simply sent elsewhere). A worker that ends while in the pool is removed by its
//! reader thread at once.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::handle::{HANDSHAKE_TIMEOUT, StartError, Worker};

/// A worker with nothing to do for this long exits by itself.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The idle timeout given to new workers (adjustable for tests).
static IDLE: Mutex<Duration> = Mutex::new(IDLE_TIMEOUT);

/// Sets the idle timeout of workers started from now on, and how long the pool keeps
/// idle ones (slightly less).
pub(crate) fn set_idle_timeout(d: Duration) {
    *IDLE.lock().unwrap_or_else(PoisonError::into_inner) = d;
}

fn idle_timeout() -> Duration {
    *IDLE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn retire_after() -> Duration {
    let idle = idle_timeout();
    idle.saturating_sub((idle / 6).min(Duration::from_secs(5)))
}

/// Whether an idle worker can take work: alive, not leaving, not idle too long.
fn ready_for_work(w: &Worker) -> bool {
    !w.has_news() && w.idle_since.elapsed() < retire_after()
}

/// Idle workers between jobs, oldest first.
fn idle() -> &'static Mutex<Vec<Worker>> {
    static IDLE_WORKERS: Mutex<Vec<Worker>> = Mutex::new(Vec::new());
    &IDLE_WORKERS
}

/// How many idle workers the pool keeps ([`crate::limits::max_idle_processes`]).
pub(crate) fn max_idle_workers() -> usize {
    static CAP: OnceLock<usize> = OnceLock::new();
    *CAP.get_or_init(|| {
        crate::limits::max_idle_processes(
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        )
    })
}

/// Removes the worker `id` from the idle pool, if it is there: its reader thread calls
/// this once the process has ended, so a dead worker does not wait for the next `take`.
fn forget_idle(id: u64) {
    let gone = {
        let mut pool = idle().lock().unwrap_or_else(PoisonError::into_inner);
        pool.iter()
            .position(|w| w.id() == id)
            .map(|at| pool.remove(at))
    };
    drop(gone);
}

/// Starts `n` workers at once and waits for their handshakes. Returns those that
/// started, or the first error if none did.
pub(crate) fn start(n: usize) -> Result<Vec<Worker>, StartError> {
    let mut spawned = Vec::with_capacity(n);
    let mut first_err = None;
    for _ in 0..n {
        match Worker::spawn(idle_timeout(), forget_idle) {
            Ok(w) => spawned.push(w),
            Err(e) => {
                first_err.get_or_insert(e);
                break;
            }
        }
    }
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let mut ok = Vec::with_capacity(spawned.len());
    for w in spawned {
        match w.handshake(deadline) {
            Ok(w) => ok.push(w),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match (ok.is_empty(), first_err) {
        (true, Some(e)) => Err(e),
        (true, None) => Err(StartError("no worker requested".to_string())),
        (false, _) => Ok(ok),
    }
}

/// Starts one worker and times it: spawn to handshake.
pub(crate) fn start_timed() -> Result<(Worker, Duration), StartError> {
    let t = Instant::now();
    let w = Worker::spawn(idle_timeout(), forget_idle)?
        .handshake(Instant::now() + HANDSHAKE_TIMEOUT)?;
    Ok((w, t.elapsed()))
}

/// Up to `n` workers for a job: idle ones from the pool first, then new ones. With
/// fewer than `n`, also why the others could not start.
pub(crate) fn checkout(n: usize) -> (Vec<Worker>, Option<StartError>) {
    let n = n.max(1);
    let mut got = Vec::with_capacity(n);
    {
        let mut pool = idle().lock().unwrap_or_else(PoisonError::into_inner);
        // Drop the ones that left or idled too long (dropping closes their stdin).
        pool.retain(ready_for_work);
        while got.len() < n {
            match pool.pop() {
                Some(w) => got.push(w),
                None => break,
            }
        }
    }
    let mut shortfall = None;
    if got.len() < n {
        match start(n - got.len()) {
            Ok(more) => got.extend(more),
            Err(e) => shortfall = Some(e),
        }
        if got.len() < n && shortfall.is_none() {
            shortfall = Some(StartError("the others failed to start".to_string()));
        }
    }
    (got, shortfall)
}

/// One worker for a job, or why none could be had.
pub(crate) fn checkout_one() -> Result<Worker, StartError> {
    let (mut ws, e) = checkout(1);
    ws.pop()
        .ok_or_else(|| e.unwrap_or_else(|| StartError("no worker process started".to_string())))
}

/// Returns a worker with no work outstanding to the pool. A worker that has something
/// to say (it left or died) is dropped, and so is the oldest idle one if the pool
/// would hold more than [`max_idle_workers`].
pub(crate) fn check_in(mut w: Worker) {
    w.idle_since = Instant::now();
    // The next job sets its own.
    w.set_reply_pause(Duration::ZERO);
    let dropped = {
        let mut pool = idle().lock().unwrap_or_else(PoisonError::into_inner);
        // Checked under the lock: a worker's reader thread reports `Closed` before it
        // takes the lock to remove the worker from the pool, so one that dies now is
        // either seen here or removed by its reader thread, never left behind.
        if !w.has_news() {
            pool.push(w);
            // The oldest is the nearest to idling out.
            (pool.len() > max_idle_workers()).then(|| pool.remove(0))
        } else {
            Some(w)
        }
    };
    // Dropped outside the lock: that closes its stdin, which ends it.
    drop(dropped);
}

/// Process ids of the idle workers in the pool.
pub(crate) fn idle_pids() -> Vec<u32> {
    idle()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(Worker::pid)
        .collect()
}

/// Ends every idle worker (for tests and orderly shutdown).
pub(crate) fn shutdown_idle() {
    let workers = std::mem::take(&mut *idle().lock().unwrap_or_else(PoisonError::into_inner));
    drop(workers);
}
