//! amorsize: measure, then parallelise.
//!
//! Write ordinary iterator code and add `.par_auto()` to the source, or annotate the
//! function with [`#[auto_parallel]`](macro@auto_parallel). At run time amorsize
//! processes the first items serially while timing them, measures what going parallel
//! costs on this machine, and runs the rest serially, on rayon, on a blocking thread
//! pool, or on worker processes: whichever its cost model predicts is fastest. Every
//! item runs exactly once, and results come back in input order.
//!
//! # `par_auto()`
//!
//! ```
//! use amorsize::prelude::*;
//!
//! let v: Vec<u64> = (0..10_000u64).par_auto().map(|x| x * x).collect();
//! let total: u64 = v.iter().par_auto().filter(|x| *x % 2 == 0).map(|x| x / 2).sum();
//! assert_eq!(total, (0..10_000u64).map(|x| x * x).filter(|x| x % 2 == 0).map(|x| x / 2).sum());
//! ```
//!
//! # `#[auto_parallel]`
//!
//! ```
//! use amorsize::prelude::*;
//!
//! #[auto_parallel]
//! fn word_lengths(text: &str) -> Vec<usize> {
//!     text.split_whitespace().map(|w| w.chars().count()).collect()
//! }
//!
//! assert_eq!(word_lengths("measure then parallelise"), [7, 4, 11]);
//! ```
//!
//! # `optimize`: plan first, then run
//!
//! ```
//! let job = amorsize::optimize(0..10_000u64, |x| x * 2);
//! println!("{}", job.plan()); // one line: backend, workers, chunk, estimate, reason
//! let out: Vec<u64> = job.collect(); // the sampled results are kept
//! assert_eq!(out.len(), 10_000);
//! ```
//!
//! # Options, failures and explanations
//!
//! ```
//! use amorsize::prelude::*;
//! use amorsize::{Backend, Plan};
//!
//! let mut plan: Option<Plan> = None;
//! let results: Vec<Result<u32, amorsize::Error>> = (0..100u32)
//!     .par_auto()
//!     .backend(Backend::Threads) // pin a choice (or max_workers, chunk_size, min_speedup)
//!     .on_plan(|p| plan = Some(p.clone()))
//!     .map(|x| if x == 42 { panic!("bad item") } else { x * 2 })
//!     .catch_unwind() // a panic becomes that item's Err
//!     .collect();
//! assert_eq!(results[41], Ok(82));
//! assert_eq!(results[42].as_ref().unwrap_err().index(), 42);
//! println!("{:#}", plan.unwrap()); // the full breakdown: sample, candidates, reasons
//! ```
//!
//! # Worker processes
//!
//! Work that does not scale on threads (it holds a global lock, or calls a library that
//! is not thread-safe) can run on worker processes: mark a named function
//! [`#[amorsize::task]`](macro@task) and pass it to `map` by name. See [`task`].
//!
//! # Controls
//!
//! `AMORSIZE=off` makes every job serial; `AMORSIZE_BACKEND` pins the backend of jobs
//! that code does not pin; `AMORSIZE_MAX_WORKERS` caps every plan; `AMORSIZE_LOG=plan`
//! (or `full`) prints every decision. The cargo feature `serial` turns the whole build
//! serial (for final binaries only: features unify, so a library must never enable
//! it); `tracing` (on by default) emits spans and an event per plan; `progress` adds
//! `.progress()`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]

#[doc(inline)]
pub use amorsize_runtime::{
    AutoIter, Backend, Candidate, ClusterProfile, DEFAULT_MIN_SPEEDUP, Error, ErrorKind, Estimate,
    MachineProfile, NestedIn, Optimized, Options, Origin, ParAuto, Plan, Reason, Replan,
    SampleStats, clear_cache, optimize,
};

#[doc(inline)]
pub use amorsize_runtime::{iter, model, probe};

#[doc(inline)]
pub use amorsize_macros::{auto_parallel, serial};

#[doc(inline)]
pub use amorsize_runtime::init;

/// Registers a named function as a task that worker processes can run (the
/// [`Processes`](Backend::Processes) backend).
///
/// The function takes one item and returns its result; both types must be `serde`
/// `Serialize + DeserializeOwned`, `Send` and owned (no references or lifetimes). It
/// stays an ordinary function. Pass it to `map` by name, and amorsize may run it on
/// worker processes (the same executable, restarted) when its measurements say that
/// pays, e.g. for work that holds a global lock, or whose crashes must not take the
/// caller down:
///
/// ```
/// use amorsize::prelude::*;
/// use amorsize::Backend;
///
/// #[amorsize::task]
/// fn checksum(data: Vec<u8>) -> u32 {
///     data.iter().map(|&b| u32::from(b)).sum()
/// }
///
/// let inputs: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 4]).collect();
/// let sums: Vec<u32> = inputs
///     .par_auto()
///     .backend(Backend::Processes).max_workers(2).chunk_size(2)
///     .map(checksum)
///     .collect();
/// assert_eq!(sums[3], 12);
/// ```
///
/// Worker processes never run `main`: a task must not read state that only `main`
/// sets (a `static` filled at start-up, `std::env::args()`, a global configured
/// there). Initialise such state inside the task (a `LazyLock` computed from the
/// environment, which workers inherit). amorsize checks a few items already run in
/// the caller on a worker before trusting processes with a task, and refuses them,
/// with the reason in the plan, when the results differ.
///
/// Without the macro, the same registration is a [`linkme`] entry of the runtime's
/// task registry holding a shim that decodes the input, calls the function and encodes
/// the output; a closure or an unmarked function runs on threads only, and the plan
/// says how to enable processes.
///
/// [`linkme`]: https://docs.rs/linkme
pub use amorsize_macros::task;

/// The traits, attribute and enum most programs need: `use amorsize::prelude::*;`.
pub mod prelude {
    #[doc(inline)]
    pub use amorsize_macros::auto_parallel;
    #[doc(inline)]
    pub use amorsize_runtime::{Backend, ParAuto};
}

/// The README's Rust snippets, compiled and run as doctests so that each compiles as
/// written.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[doc(hidden)]
pub use amorsize_runtime::__private;
