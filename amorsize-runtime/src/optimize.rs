//! [`optimize`]: plan first, look at the plan, then run.

use std::fmt;
use std::panic::Location;

use crate::iter::{AutoIter, Identity, Map, ParFn, Stage};
use crate::plan::Plan;
use crate::plumbing::KeepOutputs;
use crate::run::{Decision, Job};

/// Samples `f` over the first items of `items`, makes a plan, and returns a job that
/// shows the plan before running the rest.
///
/// The sampled results are kept and the rest of the input is chained back in behind
/// them, so every item still runs exactly once.
///
/// ```
/// let job = amorsize::optimize(0..10_000u64, |x| x * 2);
/// println!("{}", job.plan());
/// let out: Vec<u64> = job.collect();
/// assert_eq!(out.len(), 10_000);
/// assert_eq!(out[9_999], 19_998);
/// ```
#[track_caller]
pub fn optimize<I, F, R>(items: I, f: F) -> Optimized<I::IntoIter, F, R>
where
    I: IntoIterator,
    I::Item: Send,
    F: ParFn<I::Item, R>,
    R: Send,
{
    let auto = AutoIter::new(items.into_iter(), Location::caller()).map(f);
    let mut job = Job::new(auto.into_request(), KeepOutputs);
    let decision = job.decide();
    Optimized {
        job,
        decision,
        _out: std::marker::PhantomData,
    }
}

/// The job behind [`Optimized`]: a source mapped by one function.
type MapJob<I, F> = Job<I, Map<Identity<<I as Iterator>::Item>, F>, fn(&Plan), KeepOutputs>;

/// A planned job from [`optimize`]: inspect [`plan`](Optimized::plan), then run it with
/// [`collect`](Optimized::collect) or [`for_each`](Optimized::for_each).
#[must_use = "the job has only been sampled; collect or for_each runs the rest"]
pub struct Optimized<I: Iterator, F, R>
where
    I::Item: Send,
    F: ParFn<I::Item, R>,
    R: Send,
{
    job: MapJob<I, F>,
    decision: Decision,
    _out: std::marker::PhantomData<fn() -> R>,
}

impl<I: Iterator, F, R> fmt::Debug for Optimized<I, F, R>
where
    I::Item: Send,
    F: ParFn<I::Item, R>,
    R: Send,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Optimized")
            .field("plan", self.decision.plan())
            .finish_non_exhaustive()
    }
}

impl<I: Iterator, F, R> Optimized<I, F, R>
where
    I::Item: Send,
    F: ParFn<I::Item, R>,
    R: Send,
    Map<Identity<I::Item>, F>: Stage<I::Item, Out = R>,
{
    /// The plan the rest of the job will run under.
    pub fn plan(&self) -> &Plan {
        self.decision.plan()
    }

    /// Runs the rest and collects every result, in input order.
    pub fn collect<C: FromIterator<R>>(self) -> C {
        self.job
            .run(self.decision, crate::iter::Collect::<C>::new())
    }

    /// Runs the rest and hands every result to `g`, in input order, on the caller's
    /// thread.
    pub fn for_each<G: FnMut(R)>(self, g: G) {
        self.job.run(self.decision, crate::iter::EachOnCaller(g))
    }
}
