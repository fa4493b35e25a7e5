//! Re-exports and helpers that macro-generated code calls. Not public API: names here
//! may change in any release.

use crate::iter::{AutoIter, Identity, ParAuto};
use crate::options::Options;
pub use crate::plan::Backend;

// ---- #[amorsize::task] ------------------------------------------------------------
pub use crate::process::Remote;
pub use crate::process::registry::{TASKS, TaskEntry, TaskFailure, run_task, type_id_of_val};
pub use linkme;
pub use serde;

/// Checks at compile time that a task's input or output type can cross a process
/// boundary; `#[amorsize::task]` calls it with each type as written.
pub const fn assert_task_type<T>()
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
}

/// Process ids of the idle worker processes in the pool (for tests).
pub fn idle_worker_pids() -> Vec<u32> {
    #[cfg(unix)]
    {
        crate::process::pool::idle_pids()
    }
    #[cfg(not(unix))]
    {
        Vec::new()
    }
}

/// Ends the idle worker processes in the pool (for tests).
pub fn shutdown_idle_workers() {
    #[cfg(unix)]
    crate::process::pool::shutdown_idle();
}

/// Sets the idle timeout of worker processes started from now on (for tests).
pub fn set_worker_idle_timeout(timeout: std::time::Duration) {
    #[cfg(unix)]
    crate::process::pool::set_idle_timeout(timeout);
    #[cfg(not(unix))]
    let _ = timeout;
}

/// The measured process start and per-chunk round trip, in seconds, measuring them
/// (starting workers) on the first call; `Err` if no worker could start.
pub fn process_costs() -> Result<(f64, f64), String> {
    #[cfg(unix)]
    {
        crate::process::costs::costs().map(|c| (c.start_secs, c.chunk_secs))
    }
    #[cfg(not(unix))]
    {
        Err("worker processes are not supported on this platform".to_string())
    }
}

/// Whether the `serial` cargo feature is on: annotated functions then run their
/// original bodies. A `const`, so the expansion branches on it without emitting `cfg`s
/// into the user's crate.
pub const SERIAL_BUILD: bool = cfg!(feature = "serial");

/// The arguments of one `#[auto_parallel(...)]`, stored in a `static` per pipeline.
#[derive(Debug)]
pub struct Config {
    /// `module::function` the pipeline was written in.
    pub function: &'static str,
    /// `backend = "…"`.
    pub backend: Option<Backend>,
    /// `max_workers = N`.
    pub max_workers: Option<usize>,
    /// `chunk_size = N`.
    pub chunk_size: Option<usize>,
    /// `min_speedup = F`.
    pub min_speedup: Option<f64>,
    /// `log`: print this pipeline's plans on stderr.
    pub log: bool,
    /// `progress`: show a progress bar.
    pub progress: bool,
}

impl Config {
    pub(crate) fn apply(&self, options: &mut Options) {
        if self.backend.is_some() {
            options.backend = self.backend;
        }
        if self.max_workers.is_some() {
            options.max_workers = self.max_workers;
        }
        if self.chunk_size.is_some() {
            options.chunk_size = self.chunk_size;
        }
        if let Some(m) = self.min_speedup {
            options.min_speedup = m;
        }
    }
}

/// Holds a pipeline's source for autoref specialization: `(&Wrap::new(src)).__amorsize_par(cfg)`
/// picks [`ViaAuto`] when the items are `Send` and [`ViaStd`] (the plain serial
/// iterator) otherwise, so generic functions without `T: Send` still compile.
pub struct Wrap<I>(std::cell::Cell<Option<I>>);

impl<I> Wrap<I> {
    /// Wraps the source expression.
    pub fn new(source: I) -> Self {
        Wrap(std::cell::Cell::new(Some(source)))
    }

    fn take(&self) -> I {
        match self.0.take() {
            Some(i) => i,
            // The generated code calls `__amorsize_par` exactly once per `Wrap`.
            None => unreachable!("amorsize: a pipeline source was taken twice"),
        }
    }
}

impl<I> std::fmt::Debug for Wrap<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wrap")
    }
}

/// The parallel path of [`Wrap`]: items are `Send`.
pub trait ViaAuto {
    /// The `AutoIter` the pipeline continues on.
    type Iter;
    /// Starts the pipeline with the attribute's settings.
    #[track_caller]
    fn __amorsize_par(&self, config: &'static Config) -> Self::Iter;
}

impl<I> ViaAuto for &Wrap<I>
where
    I: IntoIterator,
    I::Item: Send,
{
    type Iter = AutoIter<I::IntoIter, Identity<I::Item>>;

    #[track_caller]
    fn __amorsize_par(&self, config: &'static Config) -> Self::Iter {
        self.take().par_auto().__config(config)
    }
}

/// The serial path of [`Wrap`]: items are not `Send`, so the pipeline stays a plain
/// std iterator chain.
pub trait ViaStd {
    /// The source's own iterator.
    type Iter;
    /// Returns the source's iterator unchanged.
    fn __amorsize_par(&self, config: &'static Config) -> Self::Iter;
}

impl<I: IntoIterator> ViaStd for Wrap<I> {
    type Iter = I::IntoIter;

    fn __amorsize_par(&self, _: &'static Config) -> Self::Iter {
        self.take().into_iter()
    }
}
