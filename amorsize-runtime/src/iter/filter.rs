//! [`Filter`]: the stage of [`AutoIter::filter`](crate::AutoIter::filter).

use std::fmt;

use crate::plumbing::{Stage, sealed};

/// Keeps the items for which a predicate is true.
///
/// Created by [`AutoIter::filter`](crate::AutoIter::filter).
#[must_use = "iterator adaptors are lazy and do nothing unless consumed"]
pub struct Filter<P, F> {
    inner: P,
    pred: F,
}

impl<P: fmt::Debug, F> fmt::Debug for Filter<P, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<P, F> Filter<P, F> {
    pub(super) fn new(inner: P, pred: F) -> Self {
        Filter { inner, pred }
    }
}

impl<P, F> sealed::Sealed for Filter<P, F> {}

impl<T, P, F> Stage<T> for Filter<P, F>
where
    P: Stage<T>,
    F: Fn(&P::Out) -> bool + Sync,
{
    type Out = P::Out;
    type State = P::State;

    fn state(&self) -> P::State {
        self.inner.state()
    }

    #[inline]
    fn apply<E: FnMut(P::Out)>(&self, st: &mut P::State, index: usize, item: T, emit: &mut E) {
        self.inner.apply(st, index, item, &mut |x| {
            if (self.pred)(&x) {
                emit(x)
            }
        })
    }

    fn serial<'a, I>(
        &'a self,
        st: &'a mut P::State,
        first: usize,
        items: I,
    ) -> impl Iterator<Item = P::Out>
    where
        I: Iterator<Item = T> + 'a,
        T: 'a,
    {
        self.inner
            .serial(st, first, items)
            .filter(|x| (self.pred)(x))
    }
}
