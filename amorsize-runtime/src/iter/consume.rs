//! Consumers: what happens to the ordered results. Each one is std's own consumer run
//! on the ordered stream, so it keeps std's meaning exactly.

use std::marker::PhantomData;

use crate::plumbing::{ChunkFold, Finish, Items};

macro_rules! consumer {
    ($(#[$doc:meta])* $name:ident $(<$g:ident>)?, |$it:ident| $body:expr, $out:ty $(, where $($bound:tt)*)?) => {
        $(#[$doc])*
        pub(crate) struct $name $(<$g>(PhantomData<fn() -> $g>))?;

        $(
        impl<$g> $name<$g> {
            pub(crate) fn new() -> Self {
                $name(PhantomData)
            }
        }
        )?

        impl<T $(, $g)?> Items<T> for $name $(<$g>)? $(where $($bound)*)? {
            type Output = $out;
            fn consume<I: Iterator<Item = T>>(self, $it: I) -> $out {
                $body
            }
        }
    };
}

consumer!(
    /// `collect()` into any collection.
    Collect<C>, |it| it.collect(), C, where C: FromIterator<T>
);
consumer!(
    /// `sum()`.
    Sum<S>, |it| it.sum(), S, where S: std::iter::Sum<T>
);
consumer!(
    /// `product()`.
    Product<P>, |it| it.product(), P, where P: std::iter::Product<T>
);
consumer!(
    /// Runs everything for its effects.
    Drain, |it| it.for_each(drop), ()
);
consumer!(
    /// `count()`.
    Count, |it| it.count(), usize
);
consumer!(
    /// `min()`.
    Min, |it| it.min(), Option<T>, where T: Ord
);
consumer!(
    /// `max()`.
    Max, |it| it.max(), Option<T>, where T: Ord
);
consumer!(
    /// `any()` over precomputed answers.
    Any, |it| { let mut it = it; it.any(|b: T| b.into()) }, bool, where T: Into<bool>
);
consumer!(
    /// `all()` over precomputed answers.
    All, |it| { let mut it = it; it.all(|b: T| b.into()) }, bool, where T: Into<bool>
);
consumer!(
    /// `position()` over precomputed answers.
    Position, |it| { let mut it = it; it.position(|b: T| b.into()) }, Option<usize>, where T: Into<bool>
);

/// Hands each result to a closure on the caller's thread, in order.
pub(crate) struct EachOnCaller<G>(pub G);

impl<T, G: FnMut(T)> Items<T> for EachOnCaller<G> {
    type Output = ();
    fn consume<I: Iterator<Item = T>>(self, it: I) {
        it.for_each(self.0)
    }
}

/// `min_by_key()` over `(key, item)` pairs; the first of equal keys, as in std.
pub(crate) struct MinByKey;

impl<K: Ord, T> Items<(K, T)> for MinByKey {
    type Output = Option<T>;
    fn consume<I: Iterator<Item = (K, T)>>(self, it: I) -> Option<T> {
        it.min_by(|a, b| a.0.cmp(&b.0)).map(|p| p.1)
    }
}

/// `max_by_key()` over `(key, item)` pairs; the last of equal keys, as in std.
pub(crate) struct MaxByKey;

impl<K: Ord, T> Items<(K, T)> for MaxByKey {
    type Output = Option<T>;
    fn consume<I: Iterator<Item = (K, T)>>(self, it: I) -> Option<T> {
        it.max_by(|a, b| a.0.cmp(&b.0)).map(|p| p.1)
    }
}

/// `find_map()` over precomputed options.
pub(crate) struct FindMap;

impl<R> Items<Option<R>> for FindMap {
    type Output = Option<R>;
    fn consume<I: Iterator<Item = Option<R>>>(self, mut it: I) -> Option<R> {
        it.find_map(|x| x)
    }
}

/// std's `reduce()`, on the caller's thread, in order.
pub(crate) struct Reduce<F>(pub F);

impl<T, F: FnMut(T, T) -> T> Items<T> for Reduce<F> {
    type Output = Option<T>;
    fn consume<I: Iterator<Item = T>>(self, it: I) -> Option<T> {
        it.reduce(self.0)
    }
}

/// The per-chunk half of `fold_reduce`: folds a chunk from `identity()`. A partial
/// result is `None` until the first item arrives, so an empty sample calls nothing.
pub(crate) struct FoldReduce<ID, F> {
    identity: ID,
    fold: F,
}

impl<ID, F> FoldReduce<ID, F> {
    pub(crate) fn new(identity: ID, fold: F) -> Self {
        FoldReduce { identity, fold }
    }
}

impl<T, A, ID, F> ChunkFold<T> for FoldReduce<ID, F>
where
    A: Send,
    ID: Fn() -> A + Sync,
    F: Fn(A, T) -> A + Sync,
{
    type Acc = Option<A>;

    fn fold<I: Iterator<Item = T>>(&self, items: I) -> Option<A> {
        Some(items.fold((self.identity)(), &self.fold))
    }

    fn empty(&self, _: usize) -> Option<A> {
        None
    }

    fn push(&self, acc: &mut Option<A>, item: T) {
        let a = acc.take().unwrap_or_else(&self.identity);
        *acc = Some((self.fold)(a, item));
    }
}

/// The in-order half of `fold_reduce`: combines the chunks' results left to right.
pub(crate) struct Combine<F>(pub F);

impl<T, A, ID, FOLD, F> Finish<T, FoldReduce<ID, FOLD>> for Combine<F>
where
    A: Send,
    ID: Fn() -> A + Sync,
    FOLD: Fn(A, T) -> A + Sync,
    F: FnMut(A, A) -> A,
{
    type Output = A;

    fn done(self, fold: &FoldReduce<ID, FOLD>, head: Option<Option<A>>) -> A {
        head.flatten().unwrap_or_else(|| (fold.identity)())
    }

    fn serial<I: Iterator<Item = T>>(
        self,
        fold: &FoldReduce<ID, FOLD>,
        head: Option<Option<A>>,
        items: I,
    ) -> A {
        // Continue the sample's fold: the serial result is one fold, as in std.
        let start = head.flatten().unwrap_or_else(|| (fold.identity)());
        items.fold(start, &fold.fold)
    }

    fn chunks<I: Iterator<Item = Option<A>>>(
        mut self,
        fold: &FoldReduce<ID, FOLD>,
        head: Option<Option<A>>,
        accs: I,
    ) -> A {
        head.into_iter()
            .chain(accs)
            .flatten()
            .reduce(&mut self.0)
            .unwrap_or_else(|| (fold.identity)())
    }
}
