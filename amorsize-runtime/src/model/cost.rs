//! The predicted wall time `T_b(w, c)` of one parallel backend. The formula is written
//! out in the docs of [`crate::model`]; the names here follow it.

use super::input::{ClusterCosts, Machine, Workload};
use crate::plan::Backend;

/// Resident memory of one worker process beyond the items it holds (code, allocator,
/// pipe buffers): 8 MiB. A guess, not a measurement: an idle Rust binary of a usual
/// size keeps 2-10 MiB resident.
pub(super) const PROCESS_BASE_BYTES: f64 = 8.0 * 1024.0 * 1024.0;

/// Items in flight per item of a chunk: a worker holds the chunk it runs and the one
/// queued behind it (the executors' window).
const WINDOW_CHUNKS: f64 = crate::limits::in_flight_chunks(1) as f64;

/// Waking one parked worker of the (warm) blocking pool:
/// `min(chunk_handoff, thread_start / 4)`.
///
/// The probe measures the hand-off to a *parked* worker, which is mostly wake-up
/// latency (tens of microseconds), and waking cannot cost more than a fraction of
/// spawning and joining a thread. Calibration: a warm 100-thread rayon pool running
/// 100 x 10 ms sleeps (one per chunk) takes about 12 us per worker beyond the sleep,
/// close to `thread_start / 4`; the README's benchmark section has the figures.
pub(super) fn wake_secs(o: &crate::probe::Overheads) -> f64 {
    o.chunk_handoff_secs.min(o.thread_start_secs / 4.0)
}

/// Everything about one backend that does not depend on `w` or `c`.
#[derive(Clone, Debug)]
pub(super) struct Cost {
    pub backend: Backend,
    /// `N`.
    pub n_items: usize,
    /// `N` as a float.
    n: f64,
    /// `t`.
    pub t: f64,
    /// `cv`.
    pub cv: f64,
    /// Fixed part of `start_b(w)`.
    pub start_fixed: f64,
    /// Per-worker part of `start_b(w)`.
    start_per_worker: f64,
    /// `h_b`: one chunk hand-off, paid once by the dispatcher and once by a worker.
    pub handoff: f64,
    /// Parent-side codec seconds per item (Processes), serial.
    serial_io: f64,
    /// Worker-side codec seconds per item (Processes), parallel.
    worker_io: f64,
    /// Most items that can make progress at once: `max(1, P / (r * q))`.
    capacity: f64,
    /// `P`: workers that can burn CPU at once (for per-chunk and codec work).
    cpus: f64,
    /// Amdahl serial fraction `s` (0 for Processes, which do not share locks).
    serial_fraction: f64,
    /// For a mixture of waiting and computing items on threads: the share `r` of time a
    /// thread computes. Its progress is then that of threads each computing at a given
    /// moment with probability `r`, at most `P` at once (see [`Cost::parallelism`]).
    mixture_r: Option<f64>,
    /// Bytes one worker holds per item of its chunk size.
    pub bytes_per_chunk_item: f64,
    /// Bytes one worker holds whatever the chunk size.
    pub base_bytes: f64,
}

/// The parts of `T_b(w, c)` that depend on `w` only.
#[derive(Clone, Copy, Debug)]
pub(super) struct AtWorkers {
    pub w: usize,
    wf: f64,
    start: f64,
    /// `N * t / par_b(w) + N * worker_io / min(w, P)`.
    compute: f64,
    /// `min(w, P)`.
    cpu_w: f64,
    /// Wall time of one item on one worker while `w` run: `t * w / par_b(w)`.
    pub item_on_worker: f64,
}

impl Cost {
    pub fn new(backend: Backend, work: &Workload, machine: &Machine) -> Cost {
        let o = &machine.overheads;
        let cpus = machine.cpus as f64;
        if backend == Backend::Cluster {
            return Cost::cluster(work, machine);
        }
        let (start_fixed, start_per_worker, handoff) = match backend {
            Backend::Processes => (0.0, o.process_start_secs, o.process_chunk_secs),
            // The blocking pool is a rayon pool of its own, kept warm between jobs: one
            // job start, plus waking each parked worker.
            Backend::Threads => (o.rayon_start_secs, wake_secs(o), o.chunk_handoff_secs),
            _ => (o.rayon_start_secs, 0.0, o.chunk_handoff_secs),
        };
        let processes = backend == Backend::Processes;
        let (serial_io, worker_io, base_bytes) = if processes {
            (
                work.parent_io + o.process_item_secs,
                work.worker_io,
                PROCESS_BASE_BYTES,
            )
        } else {
            (0.0, 0.0, 0.0)
        };
        Cost {
            backend,
            n_items: work.n,
            n: work.n as f64,
            t: work.t,
            cv: work.cv,
            start_fixed,
            start_per_worker,
            handoff,
            serial_io,
            worker_io,
            capacity: (cpus / (work.r * work.q)).max(1.0),
            cpus,
            serial_fraction: if processes { 0.0 } else { work.serial_fraction },
            mixture_r: (work.mixture && backend == Backend::Threads).then_some(work.r * work.q),
            bytes_per_chunk_item: work.item_bytes * WINDOW_CHUNKS,
            base_bytes,
        }
    }

    /// The cluster: `W` remote slots, each running one item at a time on a CPU of its
    /// own (so `capacity = W` and no shared serial fraction); a chunk costs the
    /// measured broker round trip `h_c`, and every item's encoded bytes cross the
    /// broker twice (`wire_bytes * byte_secs`, serial on the driver, as its codec).
    /// Setting up a job (its result consumer, and purging its subjects at the end)
    /// is two round trips.
    fn cluster(work: &Workload, machine: &Machine) -> Cost {
        let c = machine.cluster.unwrap_or(ClusterCosts {
            workers: 1,
            chunk_secs: 1e-3,
            byte_secs: 1e-8,
        });
        let slots = c.workers.max(1) as f64;
        Cost {
            backend: Backend::Cluster,
            n_items: work.n,
            n: work.n as f64,
            t: work.t,
            cv: work.cv,
            start_fixed: 2.0 * c.chunk_secs,
            start_per_worker: 0.0,
            handoff: c.chunk_secs,
            serial_io: work.parent_io + work.wire_bytes * c.byte_secs,
            worker_io: work.worker_io,
            capacity: slots,
            cpus: slots,
            serial_fraction: 0.0,
            mixture_r: None,
            bytes_per_chunk_item: work.item_bytes * WINDOW_CHUNKS,
            base_bytes: 0.0,
        }
    }

    /// `start_b(w)`.
    pub fn start(&self, w: usize) -> f64 {
        self.start_fixed + w as f64 * self.start_per_worker
    }

    /// Worker counts likely to be best, in `1..=cap`: the cap, the capacity
    /// (`ceil(P / (r q))`), and the count that balances per-worker start costs against
    /// compute, `sqrt(N t / start_per_worker)`.
    pub fn seed_workers(&self, cap: usize) -> [usize; 3] {
        let cap = cap.max(1);
        let within = |x: f64| {
            if x.is_nan() || x <= 1.0 {
                1
            } else if x >= cap as f64 {
                cap
            } else {
                x.round() as usize
            }
        };
        let balanced = if self.start_per_worker > 0.0 {
            within((self.n * self.t / self.start_per_worker).sqrt())
        } else {
            cap
        };
        [cap, within(self.capacity.ceil()), balanced]
    }

    /// `par_b(w)`: how many items' worth of progress `w` workers make at once. For a
    /// mixture, `E[min(K, P)] / r` with `K ~ Binomial(w, r)` threads computing at a
    /// moment: four threads on two CPUs whose items compute half the time leave a CPU
    /// idle whenever three of them wait, so a pool that serves both has more threads
    /// than `P / r`, and the estimate knows what fewer cost.
    pub fn parallelism(&self, w: f64) -> f64 {
        let x = match self.mixture_r {
            Some(r) if r > 0.0 && r < 1.0 => {
                (expected_busy(w.round() as usize, r, self.cpus) / r).clamp(1.0, w.max(1.0))
            }
            _ => w.min(self.capacity).max(1.0),
        };
        let s = self.serial_fraction;
        1.0 / (s + (1.0 - s) / x)
    }

    /// The `w`-dependent parts of the formula.
    pub fn at(&self, w: usize) -> AtWorkers {
        let wf = w.max(1) as f64;
        let par = self.parallelism(wf);
        let cpu_w = wf.min(self.cpus);
        AtWorkers {
            w,
            wf,
            start: self.start(w),
            compute: self.n * self.t / par + self.n * self.worker_io / cpu_w,
            cpu_w,
            item_on_worker: self.t * wf / par,
        }
    }

    /// `T_b(w, c)`, in seconds: always finite and non-negative.
    pub fn time(&self, a: &AtWorkers, chunk: usize) -> f64 {
        let c = chunk.clamp(1, self.n_items.max(1)) as f64;
        let k = (self.n / c).ceil();
        let compute = a.compute + k * self.handoff / a.cpu_w;
        let dispatch = k * self.handoff + self.n * self.serial_io;
        a.start + compute.max(dispatch) + self.tail(a, c, k)
    }

    /// A lower bound of `T_b(w, c)` over every `c <= max_chunk`: the fewest hand-offs
    /// (`ceil(N / max_chunk)`) without a tail, and the best trade of hand-offs
    /// (`N h / c`) against the last chunk's spread (`c * spread`), `2 sqrt(N h spread)`.
    pub fn time_floor(&self, a: &AtWorkers, max_chunk: usize) -> f64 {
        let k = (self.n / max_chunk.clamp(1, self.n_items.max(1)) as f64).ceil();
        let serial_io = self.n * self.serial_io;
        let fewest = (a.compute + k * self.handoff / a.cpu_w).max(k * self.handoff + serial_io);
        let spread = a.item_on_worker * self.cv * (1.0 - 1.0 / a.wf);
        let traded = if spread > 0.0 {
            let nh_spread = self.n * self.handoff * spread;
            (a.compute + 2.0 * (nh_spread / a.cpu_w).sqrt()).max(2.0 * nh_spread.sqrt() + serial_io)
        } else {
            0.0
        };
        a.start + fewest.max(traded)
    }

    /// `tail(w, c)`: how much later than `N / w` items' time the busiest worker
    /// finishes. Quantisation (the busiest worker runs `ceil(k / w)` chunks, one of
    /// them maybe the short last chunk) plus the last chunk's spread,
    /// `c * cv * (1 - 1/w)` items, all at the per-worker item time.
    fn tail(&self, a: &AtWorkers, c: f64, k: f64) -> f64 {
        if k <= 0.0 || a.wf <= 1.0 {
            return 0.0;
        }
        let rounds = (k / a.wf).ceil();
        let last_round = k - (rounds - 1.0) * a.wf;
        let last_chunk = self.n - (k - 1.0) * c;
        let busiest = if last_round >= 2.0 {
            rounds * c
        } else {
            (rounds - 1.0) * c + last_chunk
        };
        let excess = (busiest - self.n / a.wf).max(0.0);
        a.item_on_worker * (excess + c * self.cv * (1.0 - 1.0 / a.wf))
    }

    /// The smallest chunk size with which the one dispatcher keeps up with the
    /// workers (`k * h_b + N * serial_io <= compute`), if it can at all.
    pub fn keep_up_chunk(&self, a: &AtWorkers) -> Option<f64> {
        let room = a.compute - self.n * self.serial_io;
        (room > 0.0 && self.handoff > 0.0).then(|| self.n * self.handoff / room)
    }

    /// The chunk size that balances worker-side hand-offs against the spread of the
    /// last chunk: the minimum of `N h / (c min(w, P)) + c * cv * (1 - 1/w) * t_w` over
    /// real `c`. `None` when there is no spread to balance.
    pub fn balanced_chunk(&self, a: &AtWorkers) -> Option<f64> {
        let spread = a.item_on_worker * self.cv * (1.0 - 1.0 / a.wf);
        if spread > 0.0 && self.handoff > 0.0 {
            Some((self.n * self.handoff / (a.cpu_w * spread)).sqrt())
        } else {
            None
        }
    }
}

/// `E[min(K, cpus)]` for `K ~ Binomial(w, r)`: the CPUs kept busy on average by `w`
/// threads that each compute a share `r` of the time.
fn expected_busy(w: usize, r: f64, cpus: f64) -> f64 {
    if w == 0 {
        return 0.0;
    }
    // The pmf by its recurrence, from P(K = 0) = (1 - r)^w; terms past the CPUs all
    // count as `cpus`, so only the first ones are needed.
    let q = 1.0 - r;
    let mut pmf = q.powi(w.min(i32::MAX as usize) as i32);
    let mut below = 0.0; // P(K < k)
    let mut expected = 0.0;
    let full = cpus.floor() as usize;
    for k in 0..full.min(w) {
        expected += pmf * k as f64;
        below += pmf;
        pmf *= (w - k) as f64 / (k + 1) as f64 * r / q;
    }
    expected + (1.0 - below).max(0.0) * cpus.min(w as f64)
}

#[cfg(test)]
mod tests {
    use super::expected_busy;

    #[test]
    fn busy_cpus_of_a_mixture() {
        // Four threads computing half the time on two CPUs: 1 with P 4/16, 2 or more
        // with P 11/16.
        assert!((expected_busy(4, 0.5, 2.0) - (4.0 / 16.0 + 2.0 * 11.0 / 16.0)).abs() < 1e-9);
        // More threads: the CPUs are nearly always busy.
        assert!(expected_busy(16, 0.5, 2.0) > 1.99);
        // One thread: busy a share r of the time.
        assert!((expected_busy(1, 0.3, 2.0) - 0.3).abs() < 1e-9);
        assert_eq!(expected_busy(0, 0.5, 2.0), 0.0);
    }
}
