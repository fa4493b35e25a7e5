//! [`FirstChunk`]: the per-item time of the first chunk a job finished, for checking a
//! plan that was not made from a sample of this call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Where an executor records how long the first chunk it finished took per item. Only
/// the first record counts; recording costs two clock reads per chunk until then.
#[derive(Debug, Default)]
pub(crate) struct FirstChunk(AtomicU64);

/// The bits of an unrecorded value (no chunk takes zero seconds per item and zero
/// items).
const NONE: u64 = 0;

impl FirstChunk {
    /// Whether a chunk was recorded.
    pub(crate) fn recorded(&self) -> bool {
        self.0.load(Ordering::Relaxed) != NONE
    }

    /// Runs `f` over a chunk of `items` items, timing it if nothing is recorded yet.
    pub(crate) fn time<R>(&self, items: usize, f: impl FnOnce() -> R) -> R {
        if self.recorded() || items == 0 {
            return f();
        }
        let start = Instant::now();
        let r = f();
        let per_item = start.elapsed().as_secs_f64() / items as f64;
        // Zero would read as "not recorded": keep the smallest positive value instead.
        let bits = per_item.max(f64::MIN_POSITIVE).to_bits();
        let _ = self
            .0
            .compare_exchange(NONE, bits, Ordering::Relaxed, Ordering::Relaxed);
        r
    }

    /// The first chunk's seconds per item, once a chunk was recorded.
    pub(crate) fn per_item_secs(&self) -> Option<f64> {
        let bits = self.0.load(Ordering::Relaxed);
        (bits != NONE).then(|| f64::from_bits(bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_chunk_counts() {
        let first = FirstChunk::default();
        assert_eq!(first.per_item_secs(), None);
        first.time(4, || {
            std::thread::sleep(std::time::Duration::from_millis(8))
        });
        let t = first.per_item_secs().expect("recorded");
        assert!(t >= 0.002, "{t}");
        first.time(1, || ());
        assert_eq!(first.per_item_secs(), Some(t));
    }

    #[test]
    fn an_empty_chunk_records_nothing() {
        let first = FirstChunk::default();
        assert_eq!(first.time(0, || 7), 7);
        assert!(!first.recorded());
    }
}
