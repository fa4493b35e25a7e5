//! amorsize: measure, then parallelise.
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]

#[doc(inline)]
pub use amorsize_runtime::{
    Backend, Candidate, Error, ErrorKind, Estimate, MachineProfile, NestedIn, Options, Plan,
    Reason, SampleStats,
};

#[doc(inline)]
pub use amorsize_runtime::model;

#[doc(inline)]
pub use amorsize_runtime::probe;

#[doc(hidden)]
pub use amorsize_runtime::__private;
