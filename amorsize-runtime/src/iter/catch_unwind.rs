//! [`CatchUnwind`]: the stage of [`AutoIter::catch_unwind`](crate::AutoIter::catch_unwind).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::Error;
use crate::plumbing::{Stage, sealed};
use crate::process::TaskCall;

/// Turns a panic in any earlier stage into an [`Error`] for that item.
///
/// Created by [`AutoIter::catch_unwind`](crate::AutoIter::catch_unwind).
#[must_use = "iterator adaptors are lazy and do nothing unless consumed"]
pub struct CatchUnwind<P> {
    pub(crate) inner: P,
}

impl<P: fmt::Debug> fmt::Debug for CatchUnwind<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatchUnwind")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<P> CatchUnwind<P> {
    pub(super) fn new(inner: P) -> Self {
        CatchUnwind { inner }
    }

    /// Runs one item under `catch_unwind`; its outputs are buffered first so that a
    /// panic further down the chain (after this adapter) is not caught here.
    fn run_one<T>(
        &self,
        st: &mut P::State,
        buf: &mut Vec<P::Out>,
        index: usize,
        item: T,
    ) -> Result<(), Error>
    where
        P: Stage<T>,
    {
        // AssertUnwindSafe: after a panic the per-worker state may be half-updated, which
        // is the same contract as `std::panic::catch_unwind` around user code; the
        // panicking item's partial outputs are discarded.
        catch_unwind(AssertUnwindSafe(|| {
            self.inner.apply(st, index, item, &mut |x| buf.push(x))
        }))
        .map_err(|payload| {
            buf.clear();
            Error::from_panic(index, payload.as_ref())
        })
    }
}

impl<P> sealed::Sealed for CatchUnwind<P> {}

impl<T, P> Stage<T> for CatchUnwind<P>
where
    P: Stage<T>,
{
    type Out = Result<P::Out, Error>;
    /// The inner state plus a reusable output buffer.
    type State = (P::State, Vec<P::Out>);

    fn state(&self) -> Self::State {
        (self.inner.state(), Vec::new())
    }

    fn apply<E: FnMut(Self::Out)>(
        &self,
        st: &mut Self::State,
        index: usize,
        item: T,
        emit: &mut E,
    ) {
        let (inner_st, buf) = st;
        match self.run_one(inner_st, buf, index, item) {
            Ok(()) => buf.drain(..).for_each(|x| emit(Ok(x))),
            Err(e) => emit(Err(e)),
        }
    }

    fn serial<'a, I>(
        &'a self,
        st: &'a mut Self::State,
        first: usize,
        items: I,
    ) -> impl Iterator<Item = Self::Out>
    where
        I: Iterator<Item = T> + 'a,
        T: 'a,
    {
        let (inner_st, _) = st;
        (first..).zip(items).flat_map(move |(index, item)| {
            let mut buf = Vec::new();
            let failed = self.run_one(inner_st, &mut buf, index, item).err();
            buf.into_iter().map(Ok).chain(failed.map(Err))
        })
    }

    /// The inner stage's task, with its failures (panic, dead worker, serialization)
    /// turned into the item's `Err`.
    fn task_call(&self) -> Option<TaskCall<T, Self::Out>> {
        self.inner.task_call()?.catching()
    }
}
