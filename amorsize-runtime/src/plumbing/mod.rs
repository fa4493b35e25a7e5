//! The protocol between the layers, below all of them: what adapters build, what
//! sampling and the executors run, and how results come back. Adapters (`iter`),
//! sampling, the executors and the orchestration (`run`) import this module; it
//! imports none of them. Read it first to see how data flows:
//!
//! - [`Stage`]: the per-item work a chain of adapters composes to (one item in, its
//!   outputs out), with a serial form that is a plain std iterator chain.
//! - [`Chunker`]: the rest of the input cut into chunks of consecutive items.
//! - [`ChunkFold`]: how a worker folds one chunk's outputs into a partial result.
//! - [`Finish`] and [`Items`]: how a consumer receives the sampled head, then the rest
//!   (serially, or chunk by chunk), in input order.
//! - [`CallSite`]: where a pipeline was written.
//! - [`Feedback`], [`Steer`]: what a running job's chunks measure, and how executors
//!   ask for a new course when it is far off the plan.

mod chunker;
mod feedback;
mod fold;
mod site;
mod stage;

pub(crate) use chunker::{Chunker, TAPER_CHUNKS_PER_WORKER};
pub(crate) use feedback::{Course, Drift, Feedback, Steer, Watch};
pub(crate) use fold::{ChunkFold, Finish, Items, KeepOutputs};
pub(crate) use site::CallSite;
pub(crate) use stage::sealed;
pub use stage::{Identity, Stage};
