//! [`FilterMap`]: the stage of [`AutoIter::filter_map`](crate::AutoIter::filter_map).

use std::fmt;

use crate::plumbing::{Stage, sealed};

/// Maps each item to an `Option` and keeps the `Some` values.
///
/// Created by [`AutoIter::filter_map`](crate::AutoIter::filter_map).
#[must_use = "iterator adaptors are lazy and do nothing unless consumed"]
pub struct FilterMap<P, F> {
    inner: P,
    f: F,
}

impl<P: fmt::Debug, F> fmt::Debug for FilterMap<P, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterMap")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<P, F> FilterMap<P, F> {
    pub(super) fn new(inner: P, f: F) -> Self {
        FilterMap { inner, f }
    }
}

impl<P, F> sealed::Sealed for FilterMap<P, F> {}

impl<T, P, F, R> Stage<T> for FilterMap<P, F>
where
    P: Stage<T>,
    F: Fn(P::Out) -> Option<R> + Sync,
    R: Send,
{
    type Out = R;
    type State = P::State;

    fn state(&self) -> P::State {
        self.inner.state()
    }

    #[inline]
    fn apply<E: FnMut(R)>(&self, st: &mut P::State, index: usize, item: T, emit: &mut E) {
        self.inner.apply(st, index, item, &mut |x| {
            if let Some(y) = (self.f)(x) {
                emit(y)
            }
        })
    }

    fn serial<'a, I>(
        &'a self,
        st: &'a mut P::State,
        first: usize,
        items: I,
    ) -> impl Iterator<Item = R>
    where
        I: Iterator<Item = T> + 'a,
        T: 'a,
    {
        self.inner.serial(st, first, items).filter_map(&self.f)
    }
}
