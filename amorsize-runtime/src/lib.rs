//! Runtime of [amorsize](https://docs.rs/amorsize): probes, sampling, the cost model and
//! the executors. Use it through the `amorsize` facade crate.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]

mod cache;
mod cluster;
mod context;
mod disk;
mod env;
mod error;
mod exec;
pub mod iter;
mod limits;
pub mod model;
mod optimize;
mod options;
mod plan;
mod plumbing;
pub mod probe;
mod process;
mod progress;
mod run;
mod sample;
mod stats;

pub use disk::clear_cache;
pub use error::{Error, ErrorKind};
pub use iter::{AutoIter, ParAuto};
pub use optimize::{Optimized, optimize};
pub use options::{DEFAULT_MIN_SPEEDUP, Options};
pub use plan::{
    Backend, Candidate, Estimate, NestedIn, Origin, ParseBackendError, Plan, Reason, Replan,
};
pub use probe::{ClusterProfile, MachineProfile};
pub use stats::SampleStats;

#[doc(hidden)]
pub mod __private;

/// Makes this process an amorsize worker if it was started as one, and otherwise
/// returns at once.
///
/// Worker processes (the [`Processes`](Backend::Processes) backend) are this same
/// executable, started again with an environment marker. A load-time constructor in
/// amorsize catches the marker before `main` (or a test harness) runs, so programs
/// need not do anything. Call `init()` first thing in `main` to make it explicit, or
/// where load-time constructors do not run; in a worker it does not return.
///
/// # Examples
///
/// ```
/// // First thing in `main`:
/// amorsize::init();
/// // ... the program
/// ```
pub fn init() {
    #[cfg(unix)]
    process::child::enter_if_marked(false);
    #[cfg(all(unix, feature = "cluster"))]
    cluster::worker::enter_if_marked(false);
}
