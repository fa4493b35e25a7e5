//! [`ParAuto`] and [`AutoIter`]: the `par_auto()` front door.
//!
//! ```
//! use amorsize::prelude::*;
//!
//! let squares: Vec<u64> = (0..1000u64).par_auto().map(|x| x * x).collect();
//! assert_eq!(squares[999], 998_001);
//! ```
//!
//! The adapter structs ([`Map`], [`Filter`], …) appear in `AutoIter`'s type, as
//! `std::iter::Map` does in an iterator's; you never name them.

// For contributors: [`ParAuto`] and [`AutoIter`] are the API; the adapter structs are
// public only because they appear in `AutoIter`'s type, and [`Stage`] is the sealed
// trait they implement. Each adapter lives in its own file, in the same order: the
// struct, a `Debug` that skips closures, `new`, then its `Stage` impl with a parallel
// form (`apply`, one item) and a serial form (`serial`, a plain std iterator chain).

mod bounds;
mod catch_unwind;
mod consume;
mod filter;
mod filter_map;
mod flat_map_iter;
mod inspect;
mod map;
mod map_init;

use std::fmt;
use std::panic::Location;
use std::time::Duration;

pub use crate::plumbing::{Identity, Stage};

/// What an [`AutoIter<I, S>`](AutoIter) yields: the output of its chain of adapters
/// over the source's items (`u64` for `(0..n).par_auto().map(|x| x * 2)`).
pub type Output<I, S> = <S as Stage<<I as Iterator>::Item>>::Out;
pub use bounds::{ParFn, ParFnMutState, ParFold, ParInit};
pub use catch_unwind::CatchUnwind;
pub use filter::Filter;
pub use filter_map::FilterMap;
pub use flat_map_iter::FlatMapIter;
pub use inspect::Inspect;
pub use map::Map;
pub use map_init::MapInit;

pub(crate) use consume::{Collect, EachOnCaller, FoldReduce};

use crate::options::{Config, Options};
use crate::plan::{Backend, Plan};
use crate::plumbing::{CallSite, Items, KeepOutputs};
use crate::run;

/// Adds [`par_auto`](ParAuto::par_auto) to everything that can be iterated with `Send`
/// items.
///
/// `v.par_auto()` moves `v`; borrow with `v.iter().par_auto()` when the items are
/// `Sync`. Adapters before `par_auto()` (`enumerate`, `zip`, `take`, …) are ordinary
/// std adapters, pulled serially on the caller's thread.
pub trait ParAuto: IntoIterator + Sized {
    /// Starts a pipeline whose closures amorsize may run in parallel, after measuring
    /// whether that pays.
    ///
    /// ```
    /// use amorsize::prelude::*;
    /// let total: u64 = vec![1u64, 2, 3].par_auto().map(|x| x * 10).sum();
    /// assert_eq!(total, 60);
    /// ```
    #[track_caller]
    fn par_auto(self) -> AutoIter<Self::IntoIter, Identity<Self::Item>>;
}

impl<I> ParAuto for I
where
    I: IntoIterator,
    I::Item: Send,
{
    #[track_caller]
    fn par_auto(self) -> AutoIter<Self::IntoIter, Identity<Self::Item>> {
        AutoIter::new(self.into_iter(), Location::caller())
    }
}

/// A pipeline of closures over an iterator, run serially or in parallel as measured.
///
/// Adapters (`map`, `filter`, …) build the per-item work; options (`backend`,
/// `max_workers`, …) pin choices; a consumer (`collect`, `sum`, `for_each`, …) runs
/// the job. Results reach every consumer in input order, so each consumer means exactly
/// what it means on [`std::iter::Iterator`].
#[must_use = "iterator adaptors are lazy and do nothing unless consumed"]
pub struct AutoIter<I, S, H = fn(&Plan)> {
    pub(crate) source: I,
    pub(crate) stage: S,
    pub(crate) options: Options,
    pub(crate) hook: Option<H>,
    pub(crate) site: CallSite,
    pub(crate) progress: bool,
    pub(crate) item_timeout: Option<Duration>,
}

impl<I, S: fmt::Debug, H> fmt::Debug for AutoIter<I, S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutoIter")
            .field("stage", &self.stage)
            .field("options", &self.options)
            .field("site", &self.site)
            .finish_non_exhaustive()
    }
}

impl<I: Iterator> AutoIter<I, Identity<I::Item>> {
    pub(crate) fn new(source: I, location: &'static Location<'static>) -> Self {
        AutoIter {
            source,
            stage: Identity::new(),
            options: Options::default(),
            hook: None,
            site: CallSite {
                location,
                config: None,
            },
            progress: false,
            item_timeout: None,
        }
    }
}

impl<I, S, H> AutoIter<I, S, H>
where
    I: Iterator,
    I::Item: Send,
    S: Stage<I::Item>,
    H: FnOnce(&Plan),
{
    /// The pipeline, handed to the orchestration that runs it.
    pub(crate) fn into_request(self) -> run::Request<I, S, H> {
        run::Request {
            source: self.source,
            stage: self.stage,
            options: self.options,
            hook: self.hook,
            site: self.site,
            progress: self.progress,
            item_timeout: self.item_timeout,
        }
    }

    fn with_stage<S2>(self, f: impl FnOnce(S) -> S2) -> AutoIter<I, S2, H> {
        AutoIter {
            source: self.source,
            stage: f(self.stage),
            options: self.options,
            hook: self.hook,
            site: self.site,
            progress: self.progress,
            item_timeout: self.item_timeout,
        }
    }

    // ---- options ---------------------------------------------------------------

    /// Pins the backend. Pins in code beat `AMORSIZE_BACKEND`; a backend that cannot
    /// run this job (e.g. `Processes` for a closure) falls back to the best other one,
    /// with the reason in the plan.
    ///
    /// ```
    /// use amorsize::prelude::*;
    /// let v: Vec<u32> = (0..10u32).par_auto().backend(Backend::Threads).map(|x| x + 1).collect();
    /// assert_eq!(v, (1..11).collect::<Vec<_>>());
    /// ```
    pub fn backend(mut self, backend: Backend) -> Self {
        self.options.backend = Some(backend);
        self
    }

    /// Caps the number of workers (with `backend` and `chunk_size` also set, pins it).
    /// `0` is clamped to 1, with a reason in the plan.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.options.max_workers = Some(n);
        self
    }

    /// Pins the number of items handed to a worker at a time. `0` is clamped to 1.
    pub fn chunk_size(mut self, n: usize) -> Self {
        self.options.chunk_size = Some(n);
        self
    }

    /// Stays serial unless parallel is predicted at least this much faster (default
    /// 1.2). NaN is replaced by the default, with a reason in the plan.
    pub fn min_speedup(mut self, factor: f64) -> Self {
        self.options.min_speedup = factor;
        self
    }

    /// Calls `f` with the plan, once, on the caller's thread, before the rest of the
    /// job runs.
    ///
    /// ```
    /// use amorsize::prelude::*;
    /// let mut chosen = None;
    /// let n = (0..100u32).par_auto().on_plan(|p| chosen = Some(p.backend)).count();
    /// assert_eq!(n, 100);
    /// assert!(chosen.is_some());
    /// ```
    pub fn on_plan<G: FnOnce(&Plan)>(self, f: G) -> AutoIter<I, S, G> {
        AutoIter {
            source: self.source,
            stage: self.stage,
            options: self.options,
            hook: Some(f),
            site: self.site,
            progress: self.progress,
            item_timeout: self.item_timeout,
        }
    }

    /// Bounds how long one item may run on a worker process: an item still running
    /// after `limit` fails with [`ErrorKind::TimedOut`](crate::ErrorKind::TimedOut)
    /// (an `Err` under [`catch_unwind`](AutoIter::catch_unwind), otherwise a panic
    /// naming the item), and its worker is killed and replaced. A worker stopped by a
    /// signal counts as running.
    ///
    /// Only worker processes can be stopped in the middle of an item: on the other
    /// backends (threads cannot be killed) the limit does not apply, and the plan
    /// says so. Pin `.backend(Backend::Processes)` where the limit matters.
    ///
    /// ```
    /// use std::time::Duration;
    /// use amorsize::prelude::*;
    /// let v: Vec<u32> = (0..10u32)
    ///     .par_auto()
    ///     .item_timeout(Duration::from_secs(60))
    ///     .map(|x| x + 1)
    ///     .collect();
    /// assert_eq!(v, (1..11).collect::<Vec<_>>());
    /// ```
    pub fn item_timeout(mut self, limit: Duration) -> Self {
        self.item_timeout = Some(limit);
        self
    }

    /// Applies the settings of an `#[auto_parallel]` attribute.
    #[doc(hidden)]
    pub fn __config(mut self, config: &'static Config) -> Self {
        config.apply(&mut self.options);
        self.site.config = Some(config);
        self.progress |= config.progress;
        self
    }

    /// Shows a progress bar on stderr (items done, rate, ETA; a spinner when the
    /// length is unknown), counted where items finish, on every backend.
    #[cfg(feature = "progress")]
    #[cfg_attr(docsrs, doc(cfg(feature = "progress")))]
    pub fn progress(mut self) -> Self {
        self.progress = true;
        self
    }

    // ---- adapters --------------------------------------------------------------

    /// Applies `f` to each item.
    ///
    /// ```
    /// use amorsize::prelude::*;
    /// let v: Vec<String> = vec![1, 2].par_auto().map(|x| x.to_string()).collect();
    /// assert_eq!(v, ["1", "2"]);
    /// ```
    pub fn map<F, R>(self, f: F) -> AutoIter<I, Map<S, F>, H>
    where
        F: ParFn<Output<I, S>, R>,
        R: Send,
    {
        self.with_stage(|s| Map::new(s, f))
    }

    /// Applies `f` to each item with a mutable state made by `init` (a buffer, a
    /// client, a random generator) and reused across many items: like rayon's
    /// `map_init`, `init` runs once per chunk of items handed to a worker (and once for
    /// the serial part), not once per item.
    ///
    /// ```
    /// use amorsize::prelude::*;
    /// let v: Vec<usize> = vec!["a", "bb"]
    ///     .par_auto()
    ///     .map_init(String::new, |buf, s| { buf.clear(); buf.push_str(s); buf.len() })
    ///     .collect();
    /// assert_eq!(v, [1, 2]);
    /// ```
    pub fn map_init<INIT, T, F, R>(self, init: INIT, f: F) -> AutoIter<I, MapInit<S, INIT, F>, H>
    where
        INIT: ParInit<T>,
        F: ParFnMutState<T, Output<I, S>, R>,
        R: Send,
    {
        self.with_stage(|s| MapInit::new(s, init, f))
    }

    /// Keeps the items for which `pred` is true.
    ///
    /// ```
    /// use amorsize::prelude::*;
    /// let n = (0..10u32).par_auto().filter(|x| x % 2 == 0).count();
    /// assert_eq!(n, 5);
    /// ```
    pub fn filter<F>(self, pred: F) -> AutoIter<I, Filter<S, F>, H>
    where
        F: for<'x> ParFn<&'x Output<I, S>, bool>,
    {
        self.with_stage(|s| Filter::new(s, pred))
    }

    /// Maps each item to an `Option` and keeps the `Some` values.
    ///
    /// ```
    /// use amorsize::prelude::*;
    /// let v: Vec<u32> = vec!["1", "x", "3"].par_auto().filter_map(|s| s.parse().ok()).collect();
    /// assert_eq!(v, [1, 3]);
    /// ```
    pub fn filter_map<F, R>(self, f: F) -> AutoIter<I, FilterMap<S, F>, H>
    where
        F: ParFn<Output<I, S>, Option<R>>,
        R: Send,
    {
        self.with_stage(|s| FilterMap::new(s, f))
    }

    /// Maps each item to a serial iterator (run on the worker) and yields its elements
    /// in order.
    ///
    /// ```
    /// use amorsize::prelude::*;
    /// let v: Vec<u32> = vec![1u32, 2].par_auto().flat_map_iter(|n| 0..n).collect();
    /// assert_eq!(v, [0, 0, 1]);
    /// ```
    pub fn flat_map_iter<F, U>(self, f: F) -> AutoIter<I, FlatMapIter<S, F>, H>
    where
        F: ParFn<Output<I, S>, U>,
        U: IntoIterator,
        U::Item: Send,
    {
        self.with_stage(|s| FlatMapIter::new(s, f))
    }

    /// Calls `f` on a reference to each item (on the worker that runs it).
    pub fn inspect<F>(self, f: F) -> AutoIter<I, Inspect<S, F>, H>
    where
        F: for<'x> ParFn<&'x Output<I, S>, ()>,
    {
        self.with_stage(|s| Inspect::new(s, f))
    }

    /// Turns a panic in any earlier closure into an [`Error`](crate::Error) for that
    /// item (its index and message) instead of propagating it; every other item is
    /// `Ok`.
    ///
    /// ```
    /// use amorsize::prelude::*;
    /// let r: Vec<Result<u32, amorsize::Error>> = (0..4u32)
    ///     .par_auto()
    ///     .map(|x| if x == 2 { panic!("two") } else { x })
    ///     .catch_unwind()
    ///     .collect();
    /// assert_eq!(r[1], Ok(1));
    /// let e = r[2].as_ref().unwrap_err();
    /// assert_eq!((e.index(), e.message()), (2, "two"));
    /// ```
    pub fn catch_unwind(self) -> AutoIter<I, CatchUnwind<S>, H> {
        self.with_stage(CatchUnwind::new)
    }

    // ---- consumers -------------------------------------------------------------

    fn items<C: Items<Output<I, S>>>(self, consumer: C) -> C::Output {
        run::drive(self.into_request(), KeepOutputs, consumer)
    }

    /// A consumer whose chunks fold to partial results on the workers (no outputs
    /// kept), merged in input order.
    fn partial<P: consume::Partial<Output<I, S>>>(self, consumer: P) -> P::Acc {
        run::drive(
            self.into_request(),
            consume::PerChunk(consumer),
            consume::InOrder,
        )
    }

    /// Collects the results, in input order, into any `FromIterator` collection (also
    /// `Result<Vec<_>, _>` after [`catch_unwind`](Self::catch_unwind)).
    pub fn collect<C>(self) -> C
    where
        C: FromIterator<Output<I, S>>,
    {
        self.items(Collect::new())
    }

    /// Calls `f` on each item, in parallel when that pays (in no particular order then,
    /// like rayon's `for_each`).
    ///
    /// ```
    /// use amorsize::prelude::*;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// let sum = AtomicU64::new(0);
    /// (1..=100u64).par_auto().for_each(|x| { sum.fetch_add(x, Ordering::Relaxed); });
    /// assert_eq!(sum.into_inner(), 5050);
    /// ```
    pub fn for_each<F>(self, f: F)
    where
        F: ParFn<Output<I, S>, ()>,
    {
        self.map(f).items(consume::Drain)
    }

    /// Sums the results in input order (so floating-point sums equal std's).
    pub fn sum<T>(self) -> T
    where
        T: std::iter::Sum<Output<I, S>>,
    {
        self.items(consume::Sum::new())
    }

    /// Multiplies the results in input order.
    pub fn product<T>(self) -> T
    where
        T: std::iter::Product<Output<I, S>>,
    {
        self.items(consume::Product::new())
    }

    /// Counts the results.
    pub fn count(self) -> usize {
        self.partial(consume::Count)
    }

    /// The least result; the first of several equal ones, as in std.
    pub fn min(self) -> Option<Output<I, S>>
    where
        Output<I, S>: Ord,
    {
        self.partial(consume::Min {})
    }

    /// The greatest result; the last of several equal ones, as in std.
    pub fn max(self) -> Option<Output<I, S>>
    where
        Output<I, S>: Ord,
    {
        self.partial(consume::Max {})
    }

    /// The result with the least key (`f` runs in parallel); the first of equals.
    pub fn min_by_key<K, F>(self, f: F) -> Option<Output<I, S>>
    where
        K: Ord + Send,
        F: for<'x> ParFn<&'x Output<I, S>, K>,
    {
        self.map(move |x| (f(&x), x)).items(consume::MinByKey)
    }

    /// The result with the greatest key (`f` runs in parallel); the last of equals.
    pub fn max_by_key<K, F>(self, f: F) -> Option<Output<I, S>>
    where
        K: Ord + Send,
        F: for<'x> ParFn<&'x Output<I, S>, K>,
    {
        self.map(move |x| (f(&x), x)).items(consume::MaxByKey)
    }

    /// Folds the results with `op` from the left, in input order, on the caller's
    /// thread: std's `reduce`, so `op` need not be associative.
    pub fn reduce<F>(self, op: F) -> Option<Output<I, S>>
    where
        F: FnMut(Output<I, S>, Output<I, S>) -> Output<I, S>,
    {
        self.items(consume::Reduce(op))
    }

    /// Folds each chunk in parallel, starting from `identity()`, then combines the
    /// chunks' results in input order with `combine`. `combine` must be associative
    /// and `identity()` neutral for the result not to depend on chunking (as with
    /// rayon's `fold` + `reduce`). An empty input gives `identity()`.
    ///
    /// ```
    /// use amorsize::prelude::*;
    /// let longest = vec!["a", "abc", "ab"]
    ///     .par_auto()
    ///     .fold_reduce(|| 0usize, |m, s| m.max(s.len()), |a, b| a.max(b));
    /// assert_eq!(longest, 3);
    /// ```
    pub fn fold_reduce<A, ID, FOLD, COMB>(self, identity: ID, fold: FOLD, combine: COMB) -> A
    where
        A: Send,
        ID: ParInit<A>,
        FOLD: ParFold<A, Output<I, S>>,
        COMB: FnMut(A, A) -> A,
    {
        run::drive(
            self.into_request(),
            FoldReduce::new(identity, fold),
            consume::Combine(combine),
        )
    }

    /// Whether `pred` holds for any result (`pred` runs in parallel; stops pulling
    /// input at the first hit in order).
    pub fn any<F>(self, pred: F) -> bool
    where
        F: ParFn<Output<I, S>, bool>,
    {
        self.map(pred).items(consume::Any)
    }

    /// Whether `pred` holds for every result.
    pub fn all<F>(self, pred: F) -> bool
    where
        F: ParFn<Output<I, S>, bool>,
    {
        self.map(pred).items(consume::All)
    }

    /// The first `Some` that `f` returns, in input order (`f` runs in parallel).
    pub fn find_map<F, R>(self, f: F) -> Option<R>
    where
        F: ParFn<Output<I, S>, Option<R>>,
        R: Send,
    {
        self.map(f).items(consume::FindMap)
    }

    /// The position (among the results) of the first one for which `pred` holds.
    pub fn position<F>(self, pred: F) -> Option<usize>
    where
        F: ParFn<Output<I, S>, bool>,
    {
        self.map(pred).items(consume::Position)
    }
}
