//! The blocking thread pool of the `Threads` backend: a rayon pool of its own, so it can
//! hold more threads than cores (for work that waits) without starving the global pool,
//! and so borrowed closures run on it through rayon's scopes.

use std::sync::{Arc, Mutex, PoisonError};

use rayon::{ThreadPool, ThreadPoolBuilder};

/// Most threads the blocking pool will ever hold.
pub(crate) const MAX_THREADS: usize = 1024;

/// A pool with at least `n` threads, reused across calls. When a plan needs more
/// threads than the pool has, a bigger pool replaces it (jobs still running on the old
/// one keep it alive through their `Arc`).
pub(crate) fn threads_pool(n: usize) -> Result<Arc<ThreadPool>, rayon::ThreadPoolBuildError> {
    static POOL: Mutex<Option<Arc<ThreadPool>>> = Mutex::new(None);
    let n = n.clamp(1, MAX_THREADS);
    let mut slot = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(p) = slot.as_ref()
        && p.current_num_threads() >= n
    {
        return Ok(Arc::clone(p));
    }
    let pool = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("amorsize-threads-{i}"))
            .start_handler(|_| super::context::enter_threads_pool())
            .build()?,
    );
    *slot = Some(Arc::clone(&pool));
    Ok(pool)
}
