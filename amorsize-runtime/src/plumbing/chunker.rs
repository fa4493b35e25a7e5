//! [`Chunker`]: the source cut into chunks of consecutive items.

use crate::limits::MAX_CHUNK;

/// Cuts a source into chunks of consecutive items, counting input indices.
///
/// When the plan only estimated how many items are left (an input of unknown length),
/// the chunk size doubles each time the input outgrows the estimate, as the plan would
/// have chosen had it known: a longer job amortises bigger chunks.
pub(crate) struct Chunker<Src> {
    src: Src,
    next_index: usize,
    size: usize,
    /// Input index past which the chunk size doubles (and this doubles too).
    grow_at: Option<usize>,
    /// While ramping up: the size of the next chunk, doubling up to `size`.
    ramp: Option<usize>,
    /// Input index past the last item, and the share of the items left that one chunk
    /// may take (see [`tapering`](Self::tapering)).
    taper: Option<(usize, usize)>,
}

/// Chunks per worker a tapering chunker keeps in what is left of the input.
pub(crate) const TAPER_CHUNKS_PER_WORKER: usize = 4;
/// The same after a re-plan: items that drifted once may drift again, so the chunks
/// stay small enough to notice it.
pub(crate) const TAPER_CHUNKS_PER_WORKER_REPLANNED: usize = 16;
/// A tapering chunk is never below the planned size divided by this.
const TAPER_FLOOR_DIVISOR: usize = 16;

impl<T, Src: Iterator<Item = T>> Chunker<Src> {
    /// Chunks of `size` items; the first item of `src` has input index `first`.
    pub(crate) fn new(src: Src, first: usize, size: usize) -> Self {
        Chunker {
            src,
            next_index: first,
            size: size.clamp(1, MAX_CHUNK),
            grow_at: None,
            ramp: None,
            taper: None,
        }
    }

    /// When the input's end is known: no chunk takes more than its share of what is
    /// left (`chunks_per_worker` chunks for each of `workers`), so chunks shrink
    /// towards the end, down to a sixteenth of the planned size. The last chunks then
    /// end close together, whatever the items cost (a cost that grows along the input
    /// would otherwise leave one worker with the costliest chunk at the end).
    pub(crate) fn tapering(
        mut self,
        end: Option<usize>,
        workers: usize,
        per_worker: usize,
    ) -> Self {
        self.taper = end.map(|e| (e, workers.max(1) * per_worker.max(1)));
        self
    }

    /// Starts with chunks of one item, doubling up to the planned size: costly items
    /// at the head of the input (which a plan made from a cache has not sampled) are
    /// spread over the workers instead of landing in one chunk, and every worker gets
    /// its first chunk sooner. It costs a few more hand-offs, once per job.
    pub(crate) fn ramping(mut self) -> Self {
        self.ramp = (self.size > 1).then_some(1);
        self
    }

    /// Grows the chunk size once `estimate` more items than planned for have passed.
    pub(crate) fn growing(mut self, estimate: Option<usize>) -> Self {
        self.grow_at = estimate.map(|n| self.next_index.saturating_add(n.max(1)));
        self
    }

    /// Input index of the next item to be cut.
    pub(crate) fn next_index(&self) -> usize {
        self.next_index
    }

    /// Cuts chunks of `size` items for `workers` from now on (a re-plan); growth on an
    /// estimated length goes on from there, and a known end tapers more closely.
    pub(crate) fn replanned(&mut self, size: usize, workers: usize) {
        self.size = size.clamp(1, MAX_CHUNK);
        self.ramp = None;
        if let Some((end, _)) = self.taper {
            self.taper = Some((end, workers.max(1) * TAPER_CHUNKS_PER_WORKER_REPLANNED));
        }
    }

    /// The next chunk and the index of its first item, or `None` at the end.
    pub(crate) fn next_chunk(&mut self) -> Option<(usize, Vec<T>)> {
        let mut size = match self.ramp {
            Some(r) if r < self.size => {
                self.ramp = Some(r * 2);
                r
            }
            _ => {
                self.ramp = None;
                self.size
            }
        };
        if let Some((end, parts)) = self.taper {
            let share = end.saturating_sub(self.next_index) / parts;
            let floor = (self.size / TAPER_FLOOR_DIVISOR).max(1);
            size = size.min(share.max(floor));
        }
        let mut v = Vec::with_capacity(size);
        v.extend(self.src.by_ref().take(size));
        if v.is_empty() {
            return None;
        }
        let first = self.next_index;
        self.next_index += v.len();
        if let Some(at) = self.grow_at
            && self.next_index >= at
        {
            self.size = (self.size * 2).min(MAX_CHUNK);
            self.grow_at = Some(at.saturating_mul(2));
        }
        Some((first, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_consecutive_with_their_first_index() {
        let mut c = Chunker::new(10..20u32, 5, 4);
        assert_eq!(c.next_chunk(), Some((5, vec![10, 11, 12, 13])));
        assert_eq!(c.next_chunk(), Some((9, vec![14, 15, 16, 17])));
        assert_eq!(c.next_chunk(), Some((13, vec![18, 19])));
        assert_eq!(c.next_chunk(), None);
    }

    #[test]
    fn a_ramp_doubles_from_one_item_to_the_planned_size() {
        let mut c = Chunker::new(0..100u32, 0, 10).ramping();
        let mut sizes = Vec::new();
        let mut next = 0;
        while let Some((first, v)) = c.next_chunk() {
            assert_eq!(first, next);
            next += v.len();
            sizes.push(v.len());
        }
        assert_eq!(next, 100);
        assert_eq!(sizes[..6], [1, 2, 4, 8, 10, 10]);
        // A new size (a re-plan) ends the ramp.
        let mut c = Chunker::new(0..100u32, 0, 10).ramping();
        c.next_chunk();
        c.replanned(7, 2);
        assert_eq!(c.next_chunk().map(|c| c.1.len()), Some(7));
    }

    #[test]
    fn chunks_taper_towards_the_end_down_to_a_floor() {
        let mut c = Chunker::new(0..10_000u32, 0, 1_000).tapering(Some(10_000), 2, 4);
        let mut sizes = Vec::new();
        let mut next = 0;
        while let Some((first, v)) = c.next_chunk() {
            assert_eq!(first, next);
            next += v.len();
            sizes.push(v.len());
        }
        assert_eq!(next, 10_000);
        assert_eq!(sizes[0], 1_000);
        assert!(sizes.windows(2).all(|w| w[1] <= w[0]), "{sizes:?}");
        let body = &sizes[..sizes.len() - 1];
        assert_eq!(*body.iter().min().unwrap(), 62, "{sizes:?}");
    }

    #[test]
    fn chunks_grow_when_the_input_outgrows_its_estimate() {
        let mut c = Chunker::new(0..10_000u32, 0, 10).growing(Some(100));
        let mut sizes = Vec::new();
        let mut next = 0;
        while let Some((first, v)) = c.next_chunk() {
            assert_eq!(first, next, "indices stay consecutive");
            next += v.len();
            sizes.push(v.len());
        }
        assert_eq!(next, 10_000);
        assert_eq!(sizes[0], 10);
        // Sizes never shrink, except the last chunk, which takes what is left.
        let body = &sizes[..sizes.len() - 1];
        assert!(body.windows(2).all(|w| w[1] >= w[0]), "{sizes:?}");
        assert!(*sizes.iter().max().unwrap() >= 640, "{sizes:?}");
        // Without an estimate the size never changes.
        let mut fixed = Chunker::new(0..1000u32, 0, 10);
        while let Some((_, v)) = fixed.next_chunk() {
            assert_eq!(v.len(), 10);
        }
    }
}
