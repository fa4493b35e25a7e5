//! Every cap and window size that more than one layer must agree on, in one place: the
//! model plans within them, the executors enforce them, and a fully pinned plan is
//! clamped to them.

/// Most threads the blocking pool holds, and so the most workers a `Threads` plan gets
/// (work that waits may use far more threads than CPUs, but not without bound).
pub(crate) const MAX_THREADS: usize = 512;

/// Most items in one chunk, however long the input turns out to be.
pub(crate) const MAX_CHUNK: usize = 1 << 16;

/// Chunks in flight (queued or running) at once with `workers` workers: two each, so
/// none waits for its next chunk, and a lazy source is never drained beyond that.
/// Finished results that wait for an earlier chunk before they can be emitted may add
/// as many again (the pipelined executor's bound on memory).
pub(crate) const fn in_flight_chunks(workers: usize) -> usize {
    2 * if workers == 0 { 1 } else { workers }
}

/// Chunks a nested call on a rayon worker runs as one window: it waits for the whole
/// window before the next, so more chunks per worker than a pipeline needs keep every
/// worker busy until the window's last chunk.
pub(crate) fn nested_window_chunks(workers: usize) -> usize {
    4 * workers.max(1)
}

/// The most worker processes one job may use with `cpu_budget` CPUs: processes serve
/// work that keeps a CPU busy, so more than a few per CPU only add start-up costs and
/// memory (the model itself never plans more than the CPUs).
pub(crate) fn max_processes(cpu_budget: usize) -> usize {
    cpu_budget.saturating_mul(4).max(4)
}

/// How many idle worker processes are kept between jobs: enough for the next job (or
/// two at once) to start at full width without waiting for processes; more would only
/// hold memory, threads and pipes until they idle out.
pub(crate) fn max_idle_processes(cpu_budget: usize) -> usize {
    cpu_budget.saturating_mul(2).max(2)
}
