//! The blocking thread pool of the `Threads` backend: a rayon pool of its own, so it can
//! hold more threads than cores (for work that waits) without starving the global pool,
//! and so borrowed closures run on it through rayon's scopes.
//!
//! The pool is reused across calls and let go after [`IDLE_TIMEOUT`] without a job: a
//! janitor thread, started with the pool, drops it (rayon then ends its threads) and
//! ends itself, so an I/O burst that needed a hundred threads does not keep them for
//! the life of the process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::limits::MAX_THREADS;

/// How long the pool stays without a job before its threads end.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The current idle timeout in milliseconds (tests shorten it).
static IDLE_MS: AtomicU64 = AtomicU64::new(IDLE_TIMEOUT.as_millis() as u64);

/// The pool, when there is one, and when a job last asked for it.
struct Current {
    pool: Arc<ThreadPool>,
    last_used: Instant,
}

fn current() -> MutexGuard<'static, Option<Current>> {
    static SLOT: Mutex<Option<Current>> = Mutex::new(None);
    SLOT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A pool with at least `n` threads, reused across calls. When a plan needs more
/// threads than the pool has, a bigger pool replaces it (jobs still running on the old
/// one keep it alive through their `Arc`).
pub(crate) fn threads_pool(n: usize) -> Result<Arc<ThreadPool>, rayon::ThreadPoolBuildError> {
    let n = n.clamp(1, MAX_THREADS);
    let mut slot = current();
    if let Some(s) = slot.as_mut()
        && s.pool.current_num_threads() >= n
    {
        s.last_used = Instant::now();
        return Ok(Arc::clone(&s.pool));
    }
    let pool = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("amorsize-threads-{i}"))
            .start_handler(|_| crate::context::enter_threads_pool())
            .build()?,
    );
    let first = slot.is_none();
    *slot = Some(Current {
        pool: Arc::clone(&pool),
        last_used: Instant::now(),
    });
    if first {
        start_janitor();
    }
    Ok(pool)
}

/// Starts the thread that lets the pool go once it has been idle long enough. If it
/// cannot start, the pool simply lives on.
fn start_janitor() {
    let _ = std::thread::Builder::new()
        .name("amorsize-threads-janitor".into())
        .spawn(|| {
            loop {
                let timeout = Duration::from_millis(IDLE_MS.load(Ordering::Relaxed));
                std::thread::sleep((timeout / 4).max(Duration::from_millis(5)));
                let mut slot = current();
                let idle = match slot.as_ref() {
                    None => return,
                    // A job holds its own `Arc` while it runs: only the slot's is left
                    // when none does.
                    Some(s) => Arc::strong_count(&s.pool) == 1 && s.last_used.elapsed() >= timeout,
                };
                if idle {
                    // Dropping the last `Arc` ends the pool's threads.
                    *slot = None;
                    return;
                }
            }
        });
}

/// Sets the idle timeout (for tests).
pub(crate) fn set_idle_timeout(timeout: Duration) {
    IDLE_MS.store(timeout.as_millis().max(1) as u64, Ordering::Relaxed);
}
