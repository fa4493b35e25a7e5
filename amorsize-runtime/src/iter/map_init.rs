//! [`MapInit`]: the stage of [`AutoIter::map_init`](crate::AutoIter::map_init).

use std::fmt;

use crate::plumbing::{Stage, sealed};

/// Applies a function to each item with mutable per-worker state.
///
/// Created by [`AutoIter::map_init`](crate::AutoIter::map_init).
#[must_use = "iterator adaptors are lazy and do nothing unless consumed"]
pub struct MapInit<P, INIT, F> {
    inner: P,
    init: INIT,
    f: F,
}

impl<P: fmt::Debug, INIT, F> fmt::Debug for MapInit<P, INIT, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapInit")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<P, INIT, F> MapInit<P, INIT, F> {
    pub(super) fn new(inner: P, init: INIT, f: F) -> Self {
        MapInit { inner, init, f }
    }
}

impl<P, INIT, F> sealed::Sealed for MapInit<P, INIT, F> {}

impl<T, P, INIT, S, F, R> Stage<T> for MapInit<P, INIT, F>
where
    P: Stage<T>,
    INIT: Fn() -> S + Sync,
    F: Fn(&mut S, P::Out) -> R + Sync,
    R: Send,
{
    type Out = R;
    /// The user's state is made on first use, so a chunk whose items are all filtered
    /// out before this adapter never calls `init`.
    type State = (P::State, Option<S>);

    fn state(&self) -> Self::State {
        (self.inner.state(), None)
    }

    #[inline]
    fn apply<E: FnMut(R)>(&self, st: &mut Self::State, index: usize, item: T, emit: &mut E) {
        let (inner_st, user) = st;
        self.inner.apply(inner_st, index, item, &mut |x| {
            let s = user.get_or_insert_with(&self.init);
            emit((self.f)(s, x))
        })
    }

    fn serial<'a, I>(
        &'a self,
        st: &'a mut Self::State,
        first: usize,
        items: I,
    ) -> impl Iterator<Item = R>
    where
        I: Iterator<Item = T> + 'a,
        T: 'a,
    {
        let (inner_st, user) = st;
        self.inner
            .serial(inner_st, first, items)
            .map(move |x| (self.f)(user.get_or_insert_with(&self.init), x))
    }
}
