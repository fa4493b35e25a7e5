//! [`SampleStats`]: what sampling measured about a workload.

/// What the sample measured about one job, the model's view of the workload.
///
/// Built by sampling at run time, or by hand for what-if questions: start from
/// [`Default`] (one CPU-bound item of unknown cost) and set fields one by one.
///
/// ```
/// use amorsize::model::SampleStats;
/// let mut stats = SampleStats::default();
/// stats.mean_item_secs = 1e-4;
/// stats.remaining_items = Some(10_000);
/// assert_eq!(stats.cpu_ratio, 1.0);
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct SampleStats {
    /// Items processed by the sample (their results are kept).
    pub items: usize,
    /// Wall time the sample took, in seconds.
    pub sample_secs: f64,
    /// Mean wall time per item, in seconds (`t`).
    pub mean_item_secs: f64,
    /// Coefficient of variation of the per-item time (`cv`), 0 for uniform work.
    pub cv: f64,
    /// Thread CPU time over wall time (`r`): near 1 for CPU-bound work, near 0 for work
    /// that waits (I/O, sleeps).
    pub cpu_ratio: f64,
    /// Process CPU time over thread CPU time (`q`): above 1 when an item uses several
    /// cores itself.
    pub process_cpu_ratio: f64,
    /// Measured throughput of two threads over twice that of one (`e2`), if measured:
    /// near 1 for work that scales, near 0.5 for work serialised on a lock.
    pub two_thread_efficiency: Option<f64>,
    /// The least and greatest CPU share (thread CPU over wall) of the sample's spans,
    /// when at least two were long enough to time: near 0 and near 1 for a mixture of
    /// waiting and computing items, whose pool must serve both.
    pub cpu_ratio_range: Option<(f64, f64)>,
    /// How much faster an item runs with its own (rayon) parallelism than with it
    /// confined to one thread, if measured: near 1 when that parallelism does not pay,
    /// or when `process_cpu_ratio` was other threads' work. The model counts an item as
    /// using this many CPUs, not `process_cpu_ratio`.
    pub inner_speedup: Option<f64>,
    /// Items still to run after the sample, if known (exact length or estimate).
    pub remaining_items: Option<usize>,
    /// Mean encoded size of one input item, in bytes (Processes only).
    pub in_bytes: f64,
    /// Mean encoded size of one output item, in bytes (Processes only).
    pub out_bytes: f64,
    /// Seconds to encode one input in the parent (Processes only).
    pub encode_in_secs: f64,
    /// Seconds to decode one input in a worker (Processes only).
    pub decode_in_secs: f64,
    /// Seconds to encode one output in a worker (Processes only).
    pub encode_out_secs: f64,
    /// Seconds to decode one output in the parent (Processes only).
    pub decode_out_secs: f64,
    /// Approximate in-memory bytes of one item in flight (input plus output), used by
    /// the memory cap; 0 when unknown.
    pub item_bytes: f64,
}

impl Default for SampleStats {
    fn default() -> Self {
        SampleStats {
            items: 0,
            sample_secs: 0.0,
            mean_item_secs: 0.0,
            cv: 0.0,
            cpu_ratio: 1.0,
            process_cpu_ratio: 1.0,
            two_thread_efficiency: None,
            cpu_ratio_range: None,
            inner_speedup: None,
            remaining_items: None,
            in_bytes: 0.0,
            out_bytes: 0.0,
            encode_in_secs: 0.0,
            decode_in_secs: 0.0,
            encode_out_secs: 0.0,
            decode_out_secs: 0.0,
            item_bytes: 0.0,
        }
    }
}

impl SampleStats {
    /// Whether a sampled item mostly waited for work it handed to other threads (its
    /// own rayon calls, made from a thread outside the pool): the sampled thread was
    /// mostly idle while the process kept at least a CPU busy. Run on a thread of the
    /// pool instead, the same calls share the pool's threads.
    pub(crate) fn waits_on_other_threads(&self) -> bool {
        self.cpu_ratio < 0.75 && self.cpu_ratio * self.process_cpu_ratio >= 1.0
    }
}
