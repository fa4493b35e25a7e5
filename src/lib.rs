//! amorsize: measure, then parallelise.
//!
//! Write ordinary iterator code and call `.par_auto()` on the source (or annotate the
//! function with `#[auto_parallel]`). At run time amorsize processes the first items
//! serially while timing them, measures what going parallel costs on this machine, and
//! runs the rest serially, on rayon, on a blocking thread pool, or on worker processes
//! — whichever its cost model predicts is fastest. Every item runs exactly once and
//! results come back in input order.
//!
//! ```
//! use amorsize::prelude::*;
//!
//! let v: Vec<u64> = (0..10_000u64).par_auto().map(|x| x * x).collect();
//! assert_eq!(v[100], 10_000);
//! ```
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]

#[doc(inline)]
pub use amorsize_runtime::{
    AutoIter, Backend, Candidate, Error, ErrorKind, Estimate, MachineProfile, NestedIn, Optimized,
    Options, ParAuto, Plan, Reason, SampleStats, optimize,
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
/// Without the macro, the same registration is a [`linkme`] entry of the runtime's
/// task registry holding a shim that decodes the input, calls the function and encodes
/// the output; a closure or an unmarked function runs on threads only, and the plan
/// says how to enable processes.
///
/// [`linkme`]: https://docs.rs/linkme
pub use amorsize_macros::task;

/// The traits and attribute most programs need: `use amorsize::prelude::*;`.
pub mod prelude {
    #[doc(inline)]
    pub use amorsize_macros::auto_parallel;
    #[doc(inline)]
    pub use amorsize_runtime::ParAuto;
}

#[doc(hidden)]
pub use amorsize_runtime::__private;
