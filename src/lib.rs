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

/// The traits and attribute most programs need: `use amorsize::prelude::*;`.
pub mod prelude {
    #[doc(inline)]
    pub use amorsize_macros::auto_parallel;
    #[doc(inline)]
    pub use amorsize_runtime::ParAuto;
}

#[doc(hidden)]
pub use amorsize_runtime::__private;
