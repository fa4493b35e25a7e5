//! The blocking thread pool of the `Threads` backend: plain threads that may outnumber
//! the cores (for work that waits), reused across calls, with scopes so borrowed
//! closures run on them.
//!
//! Not a rayon pool, on purpose: an idle rayon worker spins and yields for a while
//! before it sleeps, and a hundred of them winding down after a job of waiting items
//! take the CPUs from whatever the program runs next. Here an idle thread waits on a
//! condition variable (no spinning, no yield loop) and ends after [`IDLE_TIMEOUT`]
//! without a job, so an I/O burst that needed a hundred threads does not keep them.

use std::any::Any;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use crate::limits::MAX_THREADS;

/// How long a thread of the pool stays without a job before it ends.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The current idle timeout in milliseconds (tests shorten it).
static IDLE_MS: AtomicU64 = AtomicU64::new(IDLE_TIMEOUT.as_millis() as u64);

/// Sets the idle timeout (for tests).
pub(crate) fn set_idle_timeout(timeout: Duration) {
    IDLE_MS.store(timeout.as_millis().max(1) as u64, Ordering::Relaxed);
}

fn idle_timeout() -> Duration {
    Duration::from_millis(IDLE_MS.load(Ordering::Relaxed))
}

/// A job with its lifetime erased (see [`Scope::spawn`] for why that is sound).
type Job = Box<dyn FnOnce() + Send + 'static>;

/// The jobs waiting and the threads that run them.
#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Threads alive.
    threads: usize,
    /// Threads waiting for a job.
    idle: usize,
    /// The most threads the pool may have: the largest number of helper threads a job
    /// has asked for since the pool last had none. Jobs of concurrent callers share
    /// them (as they shared the rayon pool this replaced) instead of adding up.
    cap: usize,
}

/// The process-wide pool.
struct Pool {
    state: Mutex<State>,
    /// Signalled once per job queued.
    work: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(State::default()),
        work: Condvar::new(),
    })
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job` for a waiting thread, starting one if none waits and the pool is
    /// below its cap. If no thread can start at all, the job runs here.
    fn push(&'static self, job: Job) {
        let mut st = self.lock();
        st.jobs.push_back(job);
        if st.idle >= st.jobs.len() {
            drop(st);
            self.work.notify_one();
            return;
        }
        if st.threads < st.cap.max(1) {
            st.threads += 1;
            let n = st.threads;
            drop(st);
            let started = std::thread::Builder::new()
                .name(format!("amorsize-threads-{n}"))
                .spawn(move || self.serve());
            if started.is_ok() {
                return;
            }
            st = self.lock();
            st.threads -= 1;
        }
        // No new thread: a running one takes it when it is done, unless there is none.
        if st.threads == 0 {
            let job = st.jobs.pop_back();
            drop(st);
            if let Some(job) = job {
                job();
            }
        }
    }

    /// A pool thread: runs jobs, and ends after the idle timeout without one.
    fn serve(&self) {
        crate::context::enter_threads_pool();
        let mut st = self.lock();
        loop {
            if let Some(job) = st.jobs.pop_front() {
                drop(st);
                // Jobs catch their own panics (`Scope::spawn`).
                job();
                st = self.lock();
                continue;
            }
            st.idle += 1;
            let (guard, timeout) = self
                .work
                .wait_timeout(st, idle_timeout())
                .unwrap_or_else(PoisonError::into_inner);
            st = guard;
            st.idle -= 1;
            if timeout.timed_out() && st.jobs.is_empty() {
                st.threads -= 1;
                if st.threads == 0 {
                    st.cap = 0;
                }
                return;
            }
        }
    }
}

/// How many of a scope's jobs are still to finish, and the first panic among them.
#[derive(Default)]
struct Pending {
    count: usize,
    panic: Option<Box<dyn Any + Send>>,
}

/// Jobs spawned on the pool that may borrow from the caller's stack (`'a`): the scope
/// that made them waits for every one before it returns.
pub(crate) struct Scope<'a> {
    pending: Arc<(Mutex<Pending>, Condvar)>,
    _borrows: PhantomData<&'a ()>,
}

impl<'a> Scope<'a> {
    /// Runs `job` on a thread of the pool.
    pub(crate) fn spawn(&self, job: impl FnOnce() + Send + 'a) {
        let pending = Arc::clone(&self.pending);
        pending
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .count += 1;
        let job: Box<dyn FnOnce() + Send + 'a> = Box::new(move || {
            let r = catch_unwind(AssertUnwindSafe(job));
            let (lock, done) = &*pending;
            let mut p = lock.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(payload) = r {
                p.panic.get_or_insert(payload);
            }
            p.count -= 1;
            if p.count == 0 {
                done.notify_all();
            }
        });
        // SAFETY: only the lifetime changes (same type otherwise). The job may borrow
        // for `'a`, and it runs before `scope` returns: `scope` waits until every job it
        // counted has run to its end (the count is decremented as the job's last act),
        // also when its own closure panicked. So no borrow outlives `'a`.
        let job: Job = unsafe {
            std::mem::transmute::<Box<dyn FnOnce() + Send + 'a>, Box<dyn FnOnce() + Send + 'static>>(
                job,
            )
        };
        pool().push(job);
    }
}

/// Lets the pool hold up to `threads` threads (it never shrinks the cap: threads
/// beyond what runs end when idle).
pub(crate) fn allow(threads: usize) {
    let mut st = pool().lock();
    st.cap = st.cap.max(threads.clamp(1, MAX_THREADS));
}

/// Runs `f` with a scope whose jobs run on the blocking pool, with up to `threads` of
/// them at once (fewer if other callers' jobs hold the pool), waits for all of them,
/// and returns what `f` returned. A panic of `f`, else of a job, reaches the caller
/// after every job has ended.
pub(crate) fn scope<'a, R>(threads: usize, f: impl FnOnce(&Scope<'a>) -> R) -> R {
    allow(threads);
    let scope = Scope {
        pending: Arc::new((Mutex::new(Pending::default()), Condvar::new())),
        _borrows: PhantomData,
    };
    let r = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    let job_panic = {
        let (lock, done) = &*scope.pending;
        let mut p = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while p.count > 0 {
            p = done.wait(p).unwrap_or_else(PoisonError::into_inner);
        }
        p.panic.take()
    };
    match (r, job_panic) {
        (Ok(v), None) => v,
        (Err(payload), _) | (Ok(_), Some(payload)) => resume_unwind(payload),
    }
}

/// Threads of the pool alive now (for tests and the plan's notes).
#[cfg(test)]
fn threads() -> usize {
    pool().lock().threads
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_scope_runs_borrowing_jobs_and_waits_for_them() {
        let hits = AtomicUsize::new(0);
        let data = vec![1usize; 64];
        scope(8, |s| {
            for chunk in data.chunks(8) {
                let hits = &hits;
                s.spawn(move || {
                    std::thread::sleep(Duration::from_millis(2));
                    hits.fetch_add(chunk.iter().sum::<usize>(), Ordering::Relaxed);
                });
            }
        });
        assert_eq!(hits.load(Ordering::Relaxed), 64);
        assert!(threads() >= 1);
    }

    #[test]
    fn a_panicking_job_reaches_the_caller_after_the_others_end() {
        let done = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            scope(8, |s| {
                s.spawn(|| panic!("job"));
                for _ in 0..4 {
                    s.spawn(|| {
                        std::thread::sleep(Duration::from_millis(20));
                        done.fetch_add(1, Ordering::Relaxed);
                    });
                }
            })
        }));
        assert!(r.is_err());
        assert_eq!(done.load(Ordering::Relaxed), 4, "every job ended first");
    }
}
