//! Runtime of [amorsize](https://docs.rs/amorsize): probes, sampling, the cost model and
//! the executors. Use it through the `amorsize` facade crate.
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]

mod cache;
mod env;
mod error;
mod exec;
pub mod iter;
pub mod model;
mod optimize;
mod options;
mod plan;
pub mod probe;
mod progress;
mod run;
mod sample;

pub use error::{Error, ErrorKind};
pub use iter::{AutoIter, ParAuto};
pub use model::SampleStats;
pub use optimize::{Optimized, optimize};
pub use options::{DEFAULT_MIN_SPEEDUP, Options};
pub use plan::{Backend, Candidate, Estimate, NestedIn, ParseBackendError, Plan, Reason};
pub use probe::MachineProfile;

#[doc(hidden)]
pub mod __private;
