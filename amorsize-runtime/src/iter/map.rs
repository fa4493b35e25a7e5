//! [`Map`]: the stage of [`AutoIter::map`](crate::AutoIter::map).

use std::fmt;

use crate::plumbing::{Stage, sealed};
use crate::process::TaskCall;

/// Applies a function to each item.
///
/// Created by [`AutoIter::map`](crate::AutoIter::map).
#[must_use = "iterator adaptors are lazy and do nothing unless consumed"]
pub struct Map<P, F> {
    pub(crate) inner: P,
    pub(crate) f: F,
}

impl<P: fmt::Debug, F> fmt::Debug for Map<P, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map").field("inner", &self.inner).finish()
    }
}

impl<P, F> Map<P, F> {
    pub(super) fn new(inner: P, f: F) -> Self {
        Map { inner, f }
    }
}

impl<P, F> sealed::Sealed for Map<P, F> {}

impl<T, P, F, R> Stage<T> for Map<P, F>
where
    P: Stage<T>,
    F: Fn(P::Out) -> R + Sync,
    R: Send,
{
    type Out = R;
    type State = P::State;

    fn state(&self) -> P::State {
        self.inner.state()
    }

    #[inline]
    fn apply<E: FnMut(R)>(&self, st: &mut P::State, index: usize, item: T, emit: &mut E) {
        self.inner
            .apply(st, index, item, &mut |x| emit((self.f)(x)))
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
        // A closure rather than `&self.f`: LLVM inlines it into the loop, where the
        // `&F` shim stayed a call per item (measured on a 1 ns item).
        let f = &self.f;
        let apply = move |x| f(x);
        self.inner.serial(st, first, items).map(apply)
    }

    /// `map(task)` on a fresh `par_auto()`: the inner stage passes `T` through, so
    /// the whole stage is `F` applied to each item, runnable on worker processes if `F` is a
    /// registered task from `T` to `R` (the registry checks both types).
    fn task_call(&self) -> Option<TaskCall<T, R>> {
        if P::IDENTITY {
            TaskCall::for_function::<F>()
        } else {
            None
        }
    }
}
