//! [`FlatMapIter`]: the stage of [`AutoIter::flat_map_iter`](crate::AutoIter::flat_map_iter).

use std::fmt;

use crate::plumbing::{Stage, sealed};

/// Maps each item to a serial iterator and yields all of its elements in order.
///
/// Created by [`AutoIter::flat_map_iter`](crate::AutoIter::flat_map_iter).
#[must_use = "iterator adaptors are lazy and do nothing unless consumed"]
pub struct FlatMapIter<P, F> {
    inner: P,
    f: F,
}

impl<P: fmt::Debug, F> fmt::Debug for FlatMapIter<P, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlatMapIter")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<P, F> FlatMapIter<P, F> {
    pub(super) fn new(inner: P, f: F) -> Self {
        FlatMapIter { inner, f }
    }
}

impl<P, F> sealed::Sealed for FlatMapIter<P, F> {}

impl<T, P, F, U> Stage<T> for FlatMapIter<P, F>
where
    P: Stage<T>,
    F: Fn(P::Out) -> U + Sync,
    U: IntoIterator,
    U::Item: Send,
{
    type Out = U::Item;
    type State = P::State;

    fn state(&self) -> P::State {
        self.inner.state()
    }

    #[inline]
    fn apply<E: FnMut(U::Item)>(&self, st: &mut P::State, index: usize, item: T, emit: &mut E) {
        self.inner.apply(st, index, item, &mut |x| {
            for y in (self.f)(x) {
                emit(y)
            }
        })
    }

    fn serial<'a, I>(
        &'a self,
        st: &'a mut P::State,
        first: usize,
        items: I,
    ) -> impl Iterator<Item = U::Item>
    where
        I: Iterator<Item = T> + 'a,
        T: 'a,
    {
        self.inner.serial(st, first, items).flat_map(&self.f)
    }
}
