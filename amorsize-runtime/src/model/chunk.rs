//! The few chunk sizes the search tries for one backend and worker count.
//!
//! Not every `c` from 1 to `N`: a handful of sizes between the two rules of thumb,
//! which the cost formula then ranks.
//!
//! - *hand-off rule*: a chunk's work should be at least `1 / HANDOFF_FRACTION` times
//!   its hand-off, `c >= h_b / (0.02 * t)` (2%; processes need milliseconds per chunk,
//!   threads microseconds);
//! - *balance rule*: each worker should get several chunks, fewer items per chunk as
//!   the work gets more uneven, `c <= N / (w * 4 * (1 + cv))`;
//! - plus a geometric ladder between the two (at most 6 steps), the size that balances
//!   hand-offs against the last chunk's spread when `cv > 0`
//!   ([`Cost::balanced_chunk`]), the smallest size with which the one dispatcher keeps
//!   up when that is above both rules ([`Cost::keep_up_chunk`]), and 1 for slow items
//!   (`t >= 1 ms`).
//!
//! Every size is at most `ceil(N / w)` (one chunk per worker) and at most what memory
//! allows for `w` workers.

use super::cost::{AtWorkers, Cost};

/// Largest share of a chunk's work its hand-off should cost.
pub(super) const HANDOFF_FRACTION: f64 = 0.02;
/// Chunks per worker for uniform work (CPython's `Pool.map` uses about 4).
pub(super) const CHUNKS_PER_WORKER: f64 = 4.0;
/// Items at least this slow are also tried one per chunk.
pub(super) const SLOW_ITEM_SECS: f64 = 1e-3;
/// Most intermediate steps between the two rules.
const LADDER_STEPS: f64 = 6.0;
/// Up to this ratio between the rules, the ladder simply doubles (`2^6`).
const LADDER_MIN_FACTOR_RATIO: f64 = 64.0;
/// Room for 1, both rules, the ladder and the balanced size.
const MAX_CANDIDATES: usize = 12;

/// A few chunk sizes, without duplicates; no allocation.
#[derive(Clone, Copy, Debug)]
pub(super) struct Chunks {
    buf: [usize; MAX_CANDIDATES],
    len: usize,
}

impl Chunks {
    fn new() -> Chunks {
        Chunks {
            buf: [0; MAX_CANDIDATES],
            len: 0,
        }
    }

    /// Just `c`.
    pub fn one(c: usize) -> Chunks {
        let mut out = Chunks::new();
        out.push(c);
        out
    }

    /// Adds `c` unless it is already there (or there is no room left).
    fn push(&mut self, c: usize) {
        if self.len < MAX_CANDIDATES && !self.as_slice().contains(&c) {
            self.buf[self.len] = c;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[usize] {
        &self.buf[..self.len]
    }
}

/// The chunk sizes to try for `cost` at `a.w` workers, each in `1..=limit`.
pub(super) fn candidates(cost: &Cost, a: &AtWorkers, limit: usize) -> Chunks {
    let w = a.w.max(1);
    let per_worker = cost.n_items.div_ceil(w).max(1);
    let limit = limit.clamp(1, per_worker);
    let count = |x: f64| -> usize {
        if x.is_nan() || x <= 1.0 {
            1
        } else if x >= limit as f64 {
            limit
        } else {
            x.ceil() as usize
        }
    };
    let handoff_rule = if cost.t > 0.0 {
        count(cost.handoff / (HANDOFF_FRACTION * cost.t))
    } else {
        limit
    };
    let balance_rule =
        count(cost.n_items as f64 / (w as f64 * CHUNKS_PER_WORKER * (1.0 + cost.cv)));
    let lo = handoff_rule.min(balance_rule);
    let hi = handoff_rule.max(balance_rule);

    let mut out = Chunks::new();
    if cost.t >= SLOW_ITEM_SECS {
        out.push(1);
    }
    out.push(lo);
    if hi > lo.saturating_mul(2) {
        // `LADDER_STEPS` equal ratios from `lo` to `hi`, at least doubling.
        let ratio = hi as f64 / lo as f64;
        let factor = if ratio <= LADDER_MIN_FACTOR_RATIO {
            2.0
        } else {
            ratio.powf(1.0 / LADDER_STEPS)
        };
        let mut x = lo as f64 * factor;
        while x < hi as f64 {
            out.push(count(x));
            x *= factor;
        }
    }
    out.push(hi);
    if let Some(b) = cost.balanced_chunk(a)
        && b > lo as f64
        && b < hi as f64
    {
        out.push(count(b));
    }
    if let Some(k) = cost.keep_up_chunk(a)
        && k > hi as f64
    {
        out.push(count(k));
    }
    out
}
