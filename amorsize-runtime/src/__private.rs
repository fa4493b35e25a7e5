//! Re-exports and helpers that macro-generated code calls. Not public API: names here
//! may change in any release.

use crate::iter::{AutoIter, Identity, ParAuto};
pub use crate::options::{Config, SERIAL_BUILD};
pub use crate::plan::Backend;

// ---- #[amorsize::task] ------------------------------------------------------------
pub use crate::process::TaskCall;
pub use crate::process::registry::{
    TASKS, TaskEntry, TaskFailure, TaskFns, run_task, type_id_of_val,
};
pub use linkme;
pub use serde;

/// A type that can be a task's input or output: it crosses a process boundary encoded
/// with serde. Its one error message is the one a user of `#[amorsize::task]` sees for
/// a type that cannot.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the input or output of an `#[amorsize::task]`",
    label = "not a serde type (or not `Send + 'static`)",
    note = "a task's input and output go to worker processes encoded with serde: add \
            `#[derive(serde::Serialize, serde::Deserialize)]` to `{Self}` (and serde, with \
            its `derive` feature, to your [dependencies])"
)]
pub trait TaskType: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {}

#[diagnostic::do_not_recommend]
impl<T> TaskType for T where T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {}

/// Checks at compile time that a task's input or output type can cross a process
/// boundary; `#[amorsize::task]` calls it with each type as written, spanned there.
/// This is the only place the generated code requires it: everything else goes
/// through [`Probe`], so a wrong type gives one error, here.
pub const fn assert_task_type<T: TaskType>() {}

/// A task's input and output types, for autoref specialization: `(&Probe::<In,
/// Out>::new()).fns()` picks [`ViaSerde`] when both are [`TaskType`]s and
/// [`ViaNothing`] otherwise (which never runs: [`assert_task_type`] has failed the
/// build then).
pub struct Probe<In, Out>(std::marker::PhantomData<fn(In) -> Out>);

impl<In, Out> Probe<In, Out> {
    /// A probe for `In` and `Out`.
    pub const fn new() -> Self {
        Probe(std::marker::PhantomData)
    }
}

impl<In, Out> Default for Probe<In, Out> {
    fn default() -> Self {
        Self::new()
    }
}

impl<In, Out> std::fmt::Debug for Probe<In, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

/// The task's typed functions and shim, for serde types.
pub trait ViaSerde {
    /// The task's input.
    type In;
    /// The task's output.
    type Out;
    /// The typed functions the parent uses.
    fn fns(&self) -> TaskFns;
    /// Decodes an input, calls `f`, encodes its output.
    fn run<F: FnOnce(Self::In) -> Self::Out>(
        &self,
        input: &[u8],
        out: &mut Vec<u8>,
        f: F,
    ) -> Result<(), TaskFailure>;
}

impl<In: TaskType, Out: TaskType> ViaSerde for Probe<In, Out> {
    type In = In;
    type Out = Out;

    fn fns(&self) -> TaskFns {
        TaskFns::of::<In, Out>()
    }

    fn run<F: FnOnce(In) -> Out>(
        &self,
        input: &[u8],
        out: &mut Vec<u8>,
        f: F,
    ) -> Result<(), TaskFailure> {
        run_task::<In, Out, F>(input, out, f)
    }
}

/// What the generated code resolves to when a task's types are not serde types: it
/// compiles, so that [`assert_task_type`]'s error is the only one, and never runs.
pub trait ViaNothing {
    /// Functions that match no type.
    fn fns(&self) -> TaskFns;
    /// Fails.
    fn run<F>(&self, input: &[u8], out: &mut Vec<u8>, f: F) -> Result<(), TaskFailure>;
}

impl<In, Out> ViaNothing for &Probe<In, Out> {
    fn fns(&self) -> TaskFns {
        TaskFns::none()
    }

    fn run<F>(&self, _: &[u8], _: &mut Vec<u8>, _: F) -> Result<(), TaskFailure> {
        Err(TaskFailure::not_a_task_type())
    }
}

/// Process ids of the idle worker processes in the pool (for tests).
pub fn idle_worker_pids() -> Vec<u32> {
    #[cfg(unix)]
    {
        crate::process::idle::idle_pids()
    }
    #[cfg(not(unix))]
    {
        Vec::new()
    }
}

/// How many idle worker processes the pool keeps at most (for tests).
pub fn max_idle_workers() -> usize {
    #[cfg(unix)]
    {
        crate::process::idle::max_idle_workers()
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// Ends every idle worker process in the pool.
pub fn shutdown_idle_workers() {
    #[cfg(unix)]
    crate::process::idle::shutdown_idle();
}

/// Sets how long the blocking thread pool stays idle before its threads end (for
/// tests; the default is 30 s).
pub fn set_threads_idle_timeout(timeout: std::time::Duration) {
    crate::exec::set_threads_idle_timeout(timeout);
}

/// Sets the idle timeout of worker processes started from now on (for tests).
pub fn set_worker_idle_timeout(timeout: std::time::Duration) {
    #[cfg(unix)]
    crate::process::idle::set_idle_timeout(timeout);
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

/// Holds a pipeline's source for autoref specialization: `(&Wrap::new(src)).__amorsize_par(cfg)`
/// picks [`ViaAuto`] when the source is an iterator with `Send` items and [`ViaStd`]
/// (the source itself, unchanged) otherwise, so generic functions without `T: Send`
/// still compile, and a chain that only looked like an iterator pipeline to the macro
/// (a query builder's `.filter(..).count()`) keeps its meaning.
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

/// The parallel path of [`Wrap`]: the source is an iterator with `Send` items.
pub trait ViaAuto {
    /// The `AutoIter` the pipeline continues on.
    type Iter;
    /// Starts the pipeline with the attribute's settings.
    #[track_caller]
    fn __amorsize_par(&self, config: &'static Config) -> Self::Iter;
}

// Method lookup on `&Wrap<I>` tries receivers of type `&Wrap<I>` (this impl's `&self`)
// before autoref'ing to `&&Wrap<I>` (`ViaStd`'s), so this impl wins whenever its
// bounds hold. `I: Iterator`, not `IntoIterator`: the macro found the adapter called on
// the source itself, which is std's adapter only when the source is an iterator (an
// `IntoIterator` that is not one, such as a grid type with its own `map`, keeps it).
impl<I> ViaAuto for Wrap<I>
where
    I: Iterator,
    I::Item: Send,
{
    type Iter = AutoIter<I, Identity<I::Item>>;

    #[track_caller]
    fn __amorsize_par(&self, config: &'static Config) -> Self::Iter {
        self.take().par_auto().__config(config)
    }
}

/// The serial path of [`Wrap`]: the items are not `Send` (or the source is not an
/// iterator), so the pipeline stays as written.
pub trait ViaStd {
    /// The source, unchanged.
    type Iter;
    /// Returns the source unchanged, saying so once per pipeline when decisions are
    /// logged.
    #[track_caller]
    fn __amorsize_par(&self, config: &'static Config) -> Self::Iter;
}

impl<I> ViaStd for &Wrap<I> {
    type Iter = I;

    #[track_caller]
    fn __amorsize_par(&self, config: &'static Config) -> Self::Iter {
        say_runs_as_written(config, std::panic::Location::caller());
        self.take()
    }
}

/// Logs, once per pipeline and only when decisions are logged (`AMORSIZE_LOG` or the
/// attribute's `log`), that an `#[auto_parallel]` pipeline runs as written because its
/// items are not `Send`: otherwise that fallback would be silent.
fn say_runs_as_written(config: &Config, at: &'static std::panic::Location<'static>) {
    use std::collections::HashSet;
    use std::sync::{Mutex, PoisonError};
    if crate::env::config().log == crate::env::LogLevel::Off && !config.log {
        return;
    }
    /// A pipeline's place in the source: file, line, column.
    type Place = (&'static str, u32, u32);
    static SAID: Mutex<Option<HashSet<Place>>> = Mutex::new(None);
    let first = SAID
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashSet::new)
        .insert((at.file(), at.line(), at.column()));
    if !first {
        return;
    }
    let text = format!(
        "amorsize: [{}:{}:{} in {}] runs as written: its items are not `Send` (or its \
         source is not an iterator), so no other thread can take them",
        at.file(),
        at.line(),
        at.column(),
        config.function
    );
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "amorsize", function = config.function, "{text}");
    crate::progress::log_line(&text);
}

#[cfg(test)]
mod tests {
    use super::*;

    static CFG: Config = Config {
        function: "tests",
        backend: None,
        max_workers: None,
        chunk_size: None,
        min_speedup: None,
        log: false,
        progress: false,
    };

    fn type_name<T>(_: &T) -> &'static str {
        std::any::type_name::<T>()
    }

    #[test]
    // The borrow is the point: it is what lets method lookup prefer `ViaAuto`.
    #[allow(clippy::needless_borrow)]
    fn autoref_picks_the_parallel_path_only_for_iterators_of_send_items() {
        let it = (&Wrap::new(vec![1u8].into_iter())).__amorsize_par(&CFG);
        assert!(type_name(&it).contains("AutoIter"), "{}", type_name(&it));
        let it = (&Wrap::new(vec![std::rc::Rc::new(1)].into_iter())).__amorsize_par(&CFG);
        assert!(!type_name(&it).contains("AutoIter"), "{}", type_name(&it));
        // Not an iterator: handed back as it was.
        let v = (&Wrap::new(vec![1u8])).__amorsize_par(&CFG);
        assert_eq!(v, [1]);
    }
}
