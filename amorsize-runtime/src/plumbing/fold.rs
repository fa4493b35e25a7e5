//! How results travel from the workers to the consumer: each chunk's outputs are folded
//! into one partial result on the worker ([`ChunkFold`]), and the consumer receives the
//! sampled head, then either the rest serially or each chunk's partial result, in input
//! order ([`Finish`], [`Items`]).

/// How a worker turns the outputs of one chunk into one partial result.
pub(crate) trait ChunkFold<T>: Sync {
    /// The partial result of one chunk.
    type Acc: Send;
    /// Folds one chunk's outputs, in order.
    fn fold<I: Iterator<Item = T>>(&self, items: I) -> Self::Acc;
    /// An empty partial result, with room for about `n` outputs where that matters.
    fn empty(&self, n: usize) -> Self::Acc;
    /// Folds one more output into `acc` (the sample folds as it goes, so that the
    /// fold's own cost is timed as part of the work).
    fn push(&self, acc: &mut Self::Acc, item: T);
}

/// Keeps a chunk's outputs as they are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeepOutputs;

impl<T: Send> ChunkFold<T> for KeepOutputs {
    type Acc = Vec<T>;

    fn fold<I: Iterator<Item = T>>(&self, items: I) -> Vec<T> {
        items.collect()
    }

    fn empty(&self, n: usize) -> Vec<T> {
        Vec::with_capacity(n)
    }

    #[inline]
    fn push(&self, acc: &mut Vec<T>, item: T) {
        acc.push(item)
    }
}

/// A consumer of the ordered results, one item at a time.
pub(crate) trait Items<T> {
    type Output;
    fn consume<I: Iterator<Item = T>>(self, items: I) -> Self::Output;

    /// Consumes the results as the executors deliver them: the sampled head, then each
    /// chunk's outputs, in order. One at a time unless the consumer knows better.
    fn consume_chunks<I: Iterator<Item = Vec<T>>>(
        self,
        head: Option<Vec<T>>,
        chunks: I,
    ) -> Self::Output
    where
        Self: Sized,
    {
        self.consume(head.into_iter().chain(chunks).flatten())
    }
}

/// How a job ends. `head` is the sampled items' outputs, folded by `K` like a chunk
/// (absent when nothing was sampled); after it come the rest of the items serially, or
/// each chunk's partial result (folded by `K` on the workers), in order.
pub(crate) trait Finish<T, K: ChunkFold<T>> {
    type Output;
    /// The input ended inside the sample.
    fn done(self, fold: &K, head: Option<K::Acc>) -> Self::Output;
    /// The rest runs serially.
    fn serial<I: Iterator<Item = T>>(
        self,
        fold: &K,
        head: Option<K::Acc>,
        items: I,
    ) -> Self::Output;
    /// The rest runs in chunks.
    fn chunks<I: Iterator<Item = K::Acc>>(
        self,
        fold: &K,
        head: Option<K::Acc>,
        accs: I,
    ) -> Self::Output;
}

impl<T: Send, C: Items<T>> Finish<T, KeepOutputs> for C {
    type Output = C::Output;

    fn done(self, _: &KeepOutputs, head: Option<Vec<T>>) -> C::Output {
        // A `Vec` collected from its own `IntoIter` reuses the allocation.
        self.consume(head.unwrap_or_default().into_iter())
    }

    fn serial<I: Iterator<Item = T>>(
        self,
        _: &KeepOutputs,
        head: Option<Vec<T>>,
        items: I,
    ) -> C::Output {
        match head {
            Some(h) => self.consume(h.into_iter().chain(items)),
            None => self.consume(items),
        }
    }

    fn chunks<I: Iterator<Item = Vec<T>>>(
        self,
        _: &KeepOutputs,
        head: Option<Vec<T>>,
        accs: I,
    ) -> C::Output {
        self.consume_chunks(head, accs)
    }
}
