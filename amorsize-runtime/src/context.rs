//! Where the current thread is, so nested calls never multiply threads.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static IN_THREADS_POOL: Cell<bool> = const { Cell::new(false) };
    /// Set while the caller of a parallel job runs one of its chunks: the items see the
    /// context of the backend's own threads, so a nested call behaves the same wherever
    /// its item happens to run.
    static ACTING_AS: Cell<Option<Context>> = const { Cell::new(None) };
}

/// Set once in a worker process: every thread of it (also those a task starts) is inside.
static IN_WORKER_PROCESS: AtomicBool = AtomicBool::new(false);

/// The environment variable that turns a start of this executable into a worker
/// process. Its value is `<protocol>:<parent pid>:<idle timeout in ms>`.
pub(crate) const WORKER_MARKER: &str = "AMORSIZE_WORKER";

/// The kind of thread a call is made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Context {
    /// An ordinary thread: every backend is open.
    Free,
    /// A rayon worker thread: only that pool, without blocking it.
    RayonWorker,
    /// A thread of amorsize's blocking pool: inline.
    ThreadsPool,
    /// An amorsize worker process: inline.
    WorkerProcess,
}

/// The context of the calling thread.
pub(crate) fn context() -> Context {
    if IN_WORKER_PROCESS.load(Ordering::Relaxed) {
        Context::WorkerProcess
    } else if let Some(acting) = ACTING_AS.with(Cell::get) {
        acting
    } else if IN_THREADS_POOL.with(Cell::get) {
        Context::ThreadsPool
    } else if rayon::current_thread_index().is_some() {
        Context::RayonWorker
    } else {
        Context::Free
    }
}

/// Marks the calling thread as one of the blocking pool's (set by its start handler).
pub(crate) fn enter_threads_pool() {
    IN_THREADS_POOL.with(|c| c.set(true));
}

/// Runs `f` with the calling thread in `context` (the caller running a chunk of a job
/// alongside the backend's threads), and restores the previous context after, also when
/// `f` panics.
pub(crate) fn acting_as<R>(context: Context, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Context>);
    impl Drop for Restore {
        fn drop(&mut self) {
            ACTING_AS.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(ACTING_AS.with(|c| c.replace(Some(context))));
    f()
}

/// Marks this process as an amorsize worker process (all of its threads).
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) fn enter_worker_process() {
    IN_WORKER_PROCESS.store(true, Ordering::Relaxed);
}

/// Whether this process is an amorsize worker: it entered the worker loop, or it
/// carries the marker (a worker whose load-time constructor did not run, and that did
/// not call `init()`, must still never start workers itself).
pub(crate) fn is_worker_process() -> bool {
    // The marker is set when the process starts (and only then): looked up once.
    static MARKED: OnceLock<bool> = OnceLock::new();
    IN_WORKER_PROCESS.load(Ordering::Relaxed)
        || *MARKED.get_or_init(|| std::env::var_os(WORKER_MARKER).is_some())
}

/// Names that async runtimes give their worker threads by default (tokio's, before and
/// since 1.4x, and async-std's): a job started on one blocks it, and every task the
/// runtime would run there waits until the job ends. Only default names can be
/// recognised without depending on the runtimes.
const ASYNC_WORKER_NAMES: [&str; 3] = [
    "tokio-rt-worker",
    "tokio-runtime-worker",
    "async-std/runtime",
];

thread_local! {
    /// Whether the calling thread is known not to be an async runtime's worker (a
    /// thread's name never changes), so that every later job on it skips the lookup.
    static NOT_ASYNC_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// The calling thread's name, if it is an async runtime's worker thread.
pub(crate) fn async_worker() -> Option<String> {
    if NOT_ASYNC_WORKER.with(Cell::get) {
        return None;
    }
    let thread = std::thread::current();
    let found = thread.name().and_then(|name| {
        ASYNC_WORKER_NAMES
            .iter()
            .any(|n| name.starts_with(n))
            .then(|| name.to_owned())
    });
    if found.is_none() {
        NOT_ASYNC_WORKER.with(|c| c.set(true));
    }
    found
}
