//! [`Inspect`]: the stage of [`AutoIter::inspect`](crate::AutoIter::inspect).

use std::fmt;

use crate::plumbing::{Stage, sealed};

/// Calls a function on a reference to each item, then passes the item on.
///
/// Created by [`AutoIter::inspect`](crate::AutoIter::inspect).
#[must_use = "iterator adaptors are lazy and do nothing unless consumed"]
pub struct Inspect<P, F> {
    inner: P,
    f: F,
}

impl<P: fmt::Debug, F> fmt::Debug for Inspect<P, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inspect")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<P, F> Inspect<P, F> {
    pub(super) fn new(inner: P, f: F) -> Self {
        Inspect { inner, f }
    }
}

impl<P, F> sealed::Sealed for Inspect<P, F> {}

impl<T, P, F> Stage<T> for Inspect<P, F>
where
    P: Stage<T>,
    F: Fn(&P::Out) + Sync,
{
    type Out = P::Out;
    type State = P::State;

    fn state(&self) -> P::State {
        self.inner.state()
    }

    #[inline]
    fn apply<E: FnMut(P::Out)>(&self, st: &mut P::State, index: usize, item: T, emit: &mut E) {
        self.inner.apply(st, index, item, &mut |x| {
            (self.f)(&x);
            emit(x)
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
        self.inner.serial(st, first, items).inspect(|x| (self.f)(x))
    }
}
