//! The best `(w, c)` of one backend: every `w` from 1 to the cap, a few `c` each.

use super::chunk::{self, Chunks};
use super::cost::Cost;

/// What limits one backend's search.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    /// Most workers before the memory cap (backend, CPU budget, `N`, `max_workers`).
    pub workers: usize,
    /// A pinned chunk size.
    pub chunk: Option<usize>,
    /// Fully pinned: exactly this many workers (with `chunk`), no search.
    pub exact_workers: Option<usize>,
    /// Usable memory, in bytes.
    pub usable_bytes: f64,
}

/// A backend's best configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Found {
    pub workers: usize,
    pub chunk: usize,
    pub secs: f64,
    /// The memory cap on workers, when it is below `Limits::workers`.
    pub memory_cap: Option<usize>,
}

/// Workers that fit in memory with chunks of `chunk` items (at least 1: with too
/// little memory the job still runs, one worker at a time).
pub(super) fn memory_workers(cost: &Cost, chunk: usize, usable: f64) -> usize {
    let per_worker = cost.bytes_per_chunk_item * chunk as f64 + cost.base_bytes;
    if per_worker <= 0.0 {
        return usize::MAX;
    }
    let fit = (usable / per_worker).floor();
    if fit >= usize::MAX as f64 {
        usize::MAX
    } else if fit >= 1.0 {
        fit as usize
    } else {
        1
    }
}

/// Largest chunk that lets `w` workers fit in memory (at least 1).
pub(super) fn memory_chunk(cost: &Cost, w: usize, usable: f64) -> usize {
    if cost.bytes_per_chunk_item <= 0.0 {
        return usize::MAX;
    }
    let c = ((usable / w as f64 - cost.base_bytes) / cost.bytes_per_chunk_item).floor();
    if c >= usize::MAX as f64 {
        usize::MAX
    } else if c >= 1.0 {
        c as usize
    } else {
        1
    }
}

/// Searches every `w` in `1..=cap` and, for each, the candidate chunk sizes.
pub(super) fn best(cost: &Cost, limits: Limits) -> Found {
    if let (Some(w), Some(c)) = (limits.exact_workers, limits.chunk) {
        let w = w.max(1);
        return Found {
            workers: w,
            chunk: c.max(1),
            secs: cost.time(&cost.at(w), c),
            memory_cap: None,
        };
    }
    let cap = limits.workers.max(1);
    let mem = memory_workers(cost, limits.chunk.unwrap_or(1), limits.usable_bytes);
    let memory_cap = (mem < cap).then_some(mem);
    let cap = cap.min(mem);

    let mut found = Found {
        workers: 1,
        chunk: 1,
        secs: f64::INFINITY,
        memory_cap,
    };
    let max_chunk = |w: usize| match limits.chunk {
        Some(c) => c,
        None => memory_chunk(cost, w, limits.usable_bytes),
    };
    // The best chunk size at `w` workers; on ties the smaller `w`, then the smaller
    // `c`, wins.
    let try_workers = |found: &mut Found, w: usize| {
        let a = cost.at(w);
        let limit = max_chunk(w);
        // Cannot beat the best so far (with a hair of slack, so that rounding never
        // prunes a tie): skip the chunk sizes.
        if cost.time_floor(&a, limit) > found.secs * (1.0 + 1e-12) {
            return;
        }
        let chunks = match limits.chunk {
            Some(c) => Chunks::one(c),
            None => chunk::candidates(cost, &a, limit),
        };
        for &c in chunks.as_slice() {
            let secs = cost.time(&a, c);
            let better = secs < found.secs
                || (secs == found.secs
                    && (w < found.workers || (w == found.workers && c < found.chunk)));
            if better {
                found.workers = w;
                found.chunk = c;
                found.secs = secs;
            }
        }
    };
    // Likely winners first, so that the lower bound of `T_b(w, c)` rules out most other
    // `w` without trying their chunk sizes; then every `w` from the cap down.
    let seeds = cost.seed_workers(cap);
    for (i, &w) in seeds.iter().enumerate() {
        if !seeds[..i].contains(&w) {
            try_workers(&mut found, w);
        }
    }
    for w in (1..=cap).rev() {
        if !seeds.contains(&w) {
            try_workers(&mut found, w);
        }
    }
    found
}
