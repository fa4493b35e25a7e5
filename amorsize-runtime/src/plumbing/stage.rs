//! [`Stage`]: the per-item function a chain of adapters composes to.

use std::marker::PhantomData;

use crate::process::TaskCall;

/// The work a chain of adapters does to one input item, composed at compile time.
///
/// Every adapter of [`AutoIter`](crate::AutoIter) wraps the stage before it, the way
/// `std::iter::Map` wraps an iterator. Executors call [`Stage::apply`] once per item on
/// whichever thread runs it; the serial path uses [`Stage::serial`], an ordinary std
/// iterator chain with no per-item overhead. This trait is implemented by amorsize's
/// adapters only.
pub trait Stage<T>: Sync + sealed::Sealed {
    /// What one input item turns into (zero, one or more of them).
    type Out: Send;
    /// Per-worker state (for [`map_init`](crate::AutoIter::map_init)), created on the
    /// thread that uses it.
    type State;

    /// A fresh per-worker state.
    fn state(&self) -> Self::State;

    /// Runs the stage on the item at `index`, passing each output to `emit` in order.
    fn apply<E: FnMut(Self::Out)>(&self, st: &mut Self::State, index: usize, item: T, emit: &mut E);

    /// The stage as a std iterator adapter over consecutive items, the first of which
    /// has input index `first`.
    fn serial<'a, I>(
        &'a self,
        st: &'a mut Self::State,
        first: usize,
        items: I,
    ) -> impl Iterator<Item = Self::Out>
    where
        I: Iterator<Item = T> + 'a,
        T: 'a;

    /// Whether the stage passes items through unchanged (a fresh `par_auto()`).
    #[doc(hidden)]
    const IDENTITY: bool = false;

    /// The registered task this whole stage applies per item, if it is exactly
    /// `map(task)` on a fresh `par_auto()` (optionally followed by `catch_unwind()`):
    /// only such a stage can run on worker processes.
    #[doc(hidden)]
    fn task_call(&self) -> Option<TaskCall<T, Self::Out>> {
        None
    }
}

pub(crate) mod sealed {
    /// Keeps [`Stage`](super::Stage) implemented by this crate only.
    pub trait Sealed {}
}

/// The stage of a fresh `par_auto()`: each item passes through unchanged.
pub struct Identity<T>(PhantomData<fn(T) -> T>);

impl<T> Identity<T> {
    pub(crate) fn new() -> Self {
        Identity(PhantomData)
    }
}

impl<T> std::fmt::Debug for Identity<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity")
    }
}

impl<T> sealed::Sealed for Identity<T> {}

impl<T: Send> Stage<T> for Identity<T> {
    type Out = T;
    type State = ();

    const IDENTITY: bool = true;

    fn state(&self) {}

    #[inline]
    fn apply<E: FnMut(T)>(&self, _: &mut (), _: usize, item: T, emit: &mut E) {
        emit(item)
    }

    fn serial<'a, I>(&'a self, _: &'a mut (), _: usize, items: I) -> impl Iterator<Item = T>
    where
        I: Iterator<Item = T> + 'a,
        T: 'a,
    {
        items
    }
}
