//! The rows of the matrix: calibration of per-item costs on this machine, and the
//! deterministic inputs of each row (the cold subprocess rebuilds exactly the same
//! input from the same calibration and the same files on disk, found by
//! [`crate::corpus`]).

use std::fmt;
use std::time::Instant;

use crate::corpus::{files, tokens};
use crate::work::{self, Mixed, Wait, Work};

/// Every row of the matrix, in report order, plus the latency probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowId {
    Tiny,
    /// As tiny, with items of about a nanosecond: where any per-call cost shows.
    TinyNs,
    Cheap,
    Heavy,
    Skewed,
    Sleep,
    Mixed,
    Locked,
    Big,
    Nested,
    /// Real files: read and SHA-256 each.
    Files,
    /// Real text: count the tokens of each line.
    Tokens,
    /// Heavy items, each run right after an untimed waiting job on `par_auto`.
    AfterWait,
    /// Twenty ~1 ms items, then cheap ones: the sample sees only the costly head.
    DriftDown,
    /// Cheap items, then ~20 µs ones: the sample sees only the cheap head.
    DriftUp,
    /// Items whose cost grows steadily with the index.
    Growing,
    /// Not a matrix row: heavy items whose function records when the first item ran
    /// off the main thread (planning overhead).
    Latency,
}

impl RowId {
    /// The rows of the matrix, in report order.
    pub const MATRIX: [RowId; 16] = [
        RowId::Tiny,
        RowId::TinyNs,
        RowId::Cheap,
        RowId::Heavy,
        RowId::Skewed,
        RowId::Sleep,
        RowId::Mixed,
        RowId::Locked,
        RowId::Big,
        RowId::Nested,
        RowId::Files,
        RowId::Tokens,
        RowId::AfterWait,
        RowId::DriftDown,
        RowId::DriftUp,
        RowId::Growing,
    ];

    /// The name used on the command line and in the tables.
    pub fn name(self) -> &'static str {
        match self {
            RowId::Tiny => "tiny",
            RowId::TinyNs => "tiny-1ns",
            RowId::Cheap => "many-cheap",
            RowId::Heavy => "heavy",
            RowId::Skewed => "skewed",
            RowId::Sleep => "sleep",
            RowId::Mixed => "mixed",
            RowId::Locked => "lock-bound",
            RowId::Big => "big-items",
            RowId::Nested => "nested",
            RowId::Files => "files",
            RowId::Tokens => "tokens",
            RowId::AfterWait => "cpu-after-wait",
            RowId::DriftDown => "drift-down",
            RowId::DriftUp => "drift-up",
            RowId::Growing => "growing",
            RowId::Latency => "latency",
        }
    }

    pub fn parse(s: &str) -> Option<RowId> {
        RowId::MATRIX
            .into_iter()
            .chain([RowId::Latency])
            .find(|r| r.name() == s)
    }

    /// Number of items. The files and tokens rows cycle through what the machine has
    /// when it has fewer files or lines, so every row has exactly this many.
    pub fn items(self, quick: bool) -> usize {
        match (self, quick) {
            (RowId::Tiny | RowId::TinyNs, _) => 1_000,
            (RowId::Cheap, _) => 1_000_000,
            (RowId::Heavy, false) => 10_000,
            (RowId::Heavy, true) => 2_000,
            (RowId::Skewed, false) => 4_000,
            (RowId::Skewed, true) => 2_000,
            (RowId::Sleep, _) => 100,
            (RowId::Mixed, false) => 200,
            (RowId::Mixed, true) => 100,
            // 3,000 x 100 us: serial at least 200 ms even if the machine runs a third
            // faster than when it was calibrated (the report checks it).
            (RowId::Locked, _) => 3_000,
            (RowId::Big, false) => 128,
            (RowId::Big, true) => 48,
            (RowId::Nested, false) => 200,
            (RowId::Nested, true) => 100,
            (RowId::Files, false) => FILES_FULL,
            (RowId::Files, true) => FILES_QUICK,
            (RowId::Tokens, false) => 1_500_000,
            (RowId::Tokens, true) => 1_000_000,
            (RowId::AfterWait, false) => 1_000,
            (RowId::AfterWait, true) => 500,
            // 20 x 1 ms + 200,000 x 50 ns: about 30 ms serially.
            (RowId::DriftDown, _) => DRIFT_DOWN_HEAD + 200_000,
            // 10,000 x 50 ns + 10,000 x 20 us: about 200 ms serially.
            (RowId::DriftUp, _) => 20_000,
            (RowId::Growing, false) => 4_000,
            (RowId::Growing, true) => 2_000,
            (RowId::Latency, false) => 2_000,
            (RowId::Latency, true) => 1_000,
        }
    }

    /// What one item is, for the table.
    pub fn per_item(self) -> &'static str {
        match self {
            RowId::Tiny => "~20 ns hash",
            RowId::TinyNs => "~1 ns: one wrapping multiply-add",
            RowId::Cheap => "~50 ns hash",
            RowId::Heavy | RowId::Latency => "~100 µs hash",
            RowId::Skewed => "log-normal, median ~20 µs, 5 items 100x",
            RowId::Sleep => "10 ms sleep",
            RowId::Mixed => "1 ms hash / 1 ms sleep, alternating",
            RowId::Locked => "~100 µs hash, 90 % under one global mutex",
            RowId::Big => "1 MiB owned buffer, ~0.1 ms hash",
            RowId::Nested => "16 x ~50 µs hash on rayon inside",
            RowId::Files => "read a whole `*.rs` file and SHA-256 it (page cache warm)",
            RowId::Tokens => {
                "one line of Rust source (`&str`) split into identifier, number and \
                 punctuation tokens, ~40 ns; consumer `sum` of the token counts"
            }
            RowId::AfterWait => {
                "~100 µs hash, as heavy; every timed run (cold too) follows an untimed \
                 `par_auto` job of 200 x 5 ms sleeps on its blocking pool"
            }
            RowId::DriftDown => "20 x ~1 ms hash, then ~50 ns hashes",
            RowId::DriftUp => "half ~50 ns hashes, then half ~20 µs hashes",
            RowId::Growing => "hash of 0 to ~100 µs, growing linearly with the index",
        }
    }

    /// How every column of the row consumes the results.
    pub fn consumer(self) -> Consumer {
        match self {
            RowId::Tokens => Consumer::Sum,
            _ => Consumer::Collect,
        }
    }

    /// Whether each run of the row (every column, warm, pinned and cold) is preceded by
    /// the untimed waiting job of [`waits`].
    pub fn wait_first(self) -> bool {
        self == RowId::AfterWait
    }
}

/// How a row's results are consumed: every column of a row ends its pipeline the same
/// way, the way a user would for that work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consumer {
    /// `collect::<Vec<u64>>()`: every result, in input order.
    Collect,
    /// `sum::<u64>()`: one number (what the columns are checked on is that sum).
    Sum,
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---- calibration ---------------------------------------------------------------------

/// Target per-item times, in nanoseconds.
pub const TINY_NS: f64 = 20.0;
pub const NANO_NS: f64 = 1.0;
pub const CHEAP_NS: f64 = 50.0;
pub const HEAVY_NS: f64 = 100_000.0;
pub const SKEW_MEDIAN_NS: f64 = 20_000.0;
pub const MIXED_CPU_NS: f64 = 1_000_000.0;
pub const NESTED_SUB_NS: f64 = 50_000.0;
pub const SLEEP_MICROS: u32 = 10_000;
pub const MIXED_SLEEP_MICROS: u32 = 1_000;
pub const BIG_BYTES: usize = 1 << 20;
/// Items of the files row. Reading and hashing a `*.rs` file of a cargo registry
/// (13 KiB on average) takes 13-20 µs on a CPU with SHA-NI (measured with 2 CPUs
/// available), so 16,000 make a serial run of about 0.3 s; a registry holds a few
/// thousand such files, so the list cycles through them (each file is hashed about
/// three times). Quick: about one pass.
pub const FILES_FULL: usize = 16_000;
pub const FILES_QUICK: usize = 4_000;
/// The waiting job before each run of the cpu-after-wait row.
pub const WAIT_ITEMS: u64 = 200;
pub const WAIT_MICROS: u32 = 5_000;
/// Costly items at the head of the drift-down row.
pub const DRIFT_DOWN_HEAD: usize = 20;

/// Hash rounds per row, chosen at start-up so each item costs its target here.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// Measured cost of one [`work::mix`] round in a long chain, in ns.
    pub ns_per_round: f64,
    pub tiny: u32,
    pub cheap: u32,
    pub heavy: u32,
    pub skew_median: u32,
    pub mixed_cpu: u32,
    pub nested_sub: u32,
    /// Measured per-item time of each calibrated function: (label, target ns, ns).
    pub checks: Vec<(&'static str, f64, f64)>,
}

impl Calibration {
    /// Measures the hash round and picks each row's round count, then checks each
    /// calibrated item function against its target in the form the serial column runs
    /// it (`into_iter().map(f).collect()`).
    pub fn measure() -> Calibration {
        let chain = 1_000_000u32;
        let ns_per_round = median((0..7).map(|i| {
            let t = Instant::now();
            std::hint::black_box(work::hash_rounds(std::hint::black_box(i), chain));
            t.elapsed().as_secs_f64() * 1e9 / f64::from(chain)
        }));
        let mut cal = Calibration {
            ns_per_round,
            tiny: 1,
            cheap: 1,
            heavy: 1,
            skew_median: 1,
            mixed_cpu: 1,
            nested_sub: 1,
            checks: Vec::new(),
        };
        // Per-item time is not rounds x chain latency: the call, the move and the store
        // count, and independent items overlap in the CPU (a 3-round item measured 4 ns
        // against 7.7 ns per chained round). So fit t(r) = a + b*r on the real function
        // and solve for the target.
        cal.tiny = fit(TINY_NS, ns_per_round, 100_000);
        cal.cheap = fit(CHEAP_NS, ns_per_round, 100_000);
        cal.heavy = fit(HEAVY_NS, ns_per_round, 100);
        cal.skew_median = fit(SKEW_MEDIAN_NS, ns_per_round, 400);
        cal.mixed_cpu = fit(MIXED_CPU_NS, ns_per_round, 10);
        cal.nested_sub = fit(NESTED_SUB_NS, ns_per_round, 400);
        cal.checks = vec![
            (
                "tiny",
                TINY_NS,
                item_ns(work::heavy_item, cal.tiny, 100_000),
            ),
            (
                "many-cheap",
                CHEAP_NS,
                item_ns(work::heavy_item, cal.cheap, 100_000),
            ),
            ("heavy", HEAVY_NS, item_ns(work::heavy_item, cal.heavy, 200)),
            (
                "skewed median",
                SKEW_MEDIAN_NS,
                item_ns(work::heavy_item, cal.skew_median, 500),
            ),
            (
                "mixed cpu",
                MIXED_CPU_NS,
                item_ns(work::heavy_item, cal.mixed_cpu, 20),
            ),
            (
                "nested sub-item",
                NESTED_SUB_NS,
                item_ns(work::heavy_item, cal.nested_sub, 400),
            ),
            ("big item (1 MiB)", f64::NAN, big_item_ns()),
            // Not calibrated (one operation), only measured, at the row's own size: on
            // 100,000 items the fresh output's page faults cost more than the work.
            (
                "tiny-1ns",
                NANO_NS,
                item_ns(work::nano_item, 0, RowId::TinyNs.items(false)),
            ),
        ];
        cal
    }

    /// The round counts as one command-line argument, for the cold subprocess.
    pub fn to_arg(&self) -> String {
        format!(
            "{},{},{},{},{},{},{}",
            self.ns_per_round,
            self.tiny,
            self.cheap,
            self.heavy,
            self.skew_median,
            self.mixed_cpu,
            self.nested_sub
        )
    }

    /// Parses [`to_arg`](Self::to_arg).
    pub fn from_arg(s: &str) -> Option<Calibration> {
        let v: Vec<&str> = s.split(',').collect();
        if v.len() != 7 {
            return None;
        }
        let r = |i: usize| v[i].parse::<u32>().ok();
        Some(Calibration {
            ns_per_round: v[0].parse().ok()?,
            tiny: r(1)?,
            cheap: r(2)?,
            heavy: r(3)?,
            skew_median: r(4)?,
            mixed_cpu: r(5)?,
            nested_sub: r(6)?,
            checks: Vec::new(),
        })
    }
}

fn rounds_for(target_ns: f64, ns_per_round: f64) -> u32 {
    (target_ns / ns_per_round)
        .round()
        .clamp(1.0, f64::from(u32::MAX)) as u32
}

/// The round count whose measured per-item time is `target_ns`: measures `n` items at
/// two round counts around the chain-latency guess, fits a line, solves, then corrects
/// once more by proportion from a third measurement.
fn fit(target_ns: f64, ns_per_round: f64, n: usize) -> u32 {
    let r1 = rounds_for(target_ns, ns_per_round);
    let r2 = r1.saturating_mul(3).max(r1 + 2);
    let (t1, t2) = (
        item_ns(work::heavy_item, r1, n),
        item_ns(work::heavy_item, r2, n),
    );
    let slope = (t2 - t1) / f64::from(r2 - r1);
    let r = if slope > 0.0 {
        rounds_for(target_ns - (t1 - slope * f64::from(r1)), slope)
    } else {
        r1
    };
    let got = item_ns(work::heavy_item, r, n);
    if got > 0.0 {
        (f64::from(r) * target_ns / got).round().max(1.0) as u32
    } else {
        r
    }
}

/// Median per-item time, in ns, of `n` items of `rounds` through `f` in the serial
/// column's form (generic, so `f` is inlined there as in the serial column: through a
/// function pointer a 1 ns item measures 2-3 ns).
fn item_ns(f: impl Fn(Work) -> u64 + Copy, rounds: u32, n: usize) -> f64 {
    let data: Vec<Work> = (0..n as u64).map(|seed| Work { seed, rounds }).collect();
    median((0..7).map(|_| {
        let d = data.clone();
        let t = Instant::now();
        let out: Vec<u64> = d.into_iter().map(f).collect();
        let e = t.elapsed();
        std::hint::black_box(out);
        e.as_secs_f64() * 1e9 / n as f64
    }))
}

fn big_item_ns() -> f64 {
    let data = random_bytes(&mut Rng(7), BIG_BYTES);
    median((0..5).map(|_| {
        let d = data.clone();
        let t = Instant::now();
        std::hint::black_box(work::big_item(d));
        t.elapsed().as_secs_f64() * 1e9
    }))
}

/// The median of some numbers (the upper one of an even count); NaN for none.
pub fn median(it: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = it.into_iter().collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---- inputs ----------------------------------------------------------------------------

/// splitmix64: small, fast, deterministic.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        work::mix(self.0)
    }

    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.unit(), self.unit());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(n);
    v
}

fn uniform(n: usize, rounds: u32) -> Vec<Work> {
    (0..n as u64).map(|seed| Work { seed, rounds }).collect()
}

/// Log-normal rounds (sigma 1, capped at 20x the median) plus five items at exactly
/// 100x the median, at seeded random positions.
pub fn skewed(n: usize, median_rounds: u32) -> Vec<Work> {
    let mut rng = Rng(0x5eed);
    let m = f64::from(median_rounds);
    let mut v: Vec<Work> = (0..n as u64)
        .map(|seed| Work {
            seed,
            rounds: (m * rng.normal().exp()).clamp(1.0, 20.0 * m) as u32,
        })
        .collect();
    for _ in 0..5 {
        let i = rng.below(n);
        v[i].rounds = median_rounds.saturating_mul(100);
    }
    v
}

/// The first `split` items of `head` rounds, the rest of `tail` rounds.
fn two_phases(n: usize, split: usize, head: u32, tail: u32) -> Vec<Work> {
    (0..n as u64)
        .map(|seed| Work {
            seed,
            rounds: if (seed as usize) < split { head } else { tail },
        })
        .collect()
}

/// Rounds growing linearly from 1 to `top` along the input.
fn growing(n: usize, top: u32) -> Vec<Work> {
    (0..n as u64)
        .map(|seed| Work {
            seed,
            rounds: ((f64::from(top) * (seed + 1) as f64 / n as f64) as u32).max(1),
        })
        .collect()
}

pub fn sleep(n: usize) -> Vec<Wait> {
    (0..n as u64)
        .map(|seed| Wait {
            seed,
            micros: SLEEP_MICROS,
        })
        .collect()
}

pub fn mixed(n: usize, cpu_rounds: u32) -> Vec<Mixed> {
    (0..n as u64)
        .map(|seed| {
            if seed % 2 == 0 {
                Mixed::Cpu(Work {
                    seed,
                    rounds: cpu_rounds,
                })
            } else {
                Mixed::Io(Wait {
                    seed,
                    micros: MIXED_SLEEP_MICROS,
                })
            }
        })
        .collect()
}

pub fn big(n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(0xb16);
    (0..n).map(|_| random_bytes(&mut rng, BIG_BYTES)).collect()
}

/// The waiting job before each run of the cpu-after-wait row: [`WAIT_ITEMS`] sleeps of
/// [`WAIT_MICROS`], which `par_auto` plans on its blocking thread pool with many more
/// threads than CPUs (50 to 100 on a 2-CPU machine).
pub fn waits() -> Vec<Wait> {
    (0..WAIT_ITEMS)
        .map(|seed| Wait {
            seed,
            micros: WAIT_MICROS,
        })
        .collect()
}

/// Receives a row's input and item function, whatever their types: the matrix and the
/// cold subprocess both dispatch through [`visit`].
pub trait RowVisitor {
    type Out;
    fn visit<T, F>(self, row: RowId, input: Vec<T>, f: F) -> Self::Out
    where
        T: Clone + Send + Sync + 'static,
        F: Fn(T) -> u64 + Copy + Send + Sync + 'static;
}

/// Builds `row`'s input and hands it, with the row's item function, to `v`.
pub fn visit<V: RowVisitor>(row: RowId, cal: &Calibration, quick: bool, v: V) -> V::Out {
    let n = row.items(quick);
    match row {
        RowId::Tiny => v.visit(row, uniform(n, cal.tiny), work::tiny_item),
        RowId::TinyNs => v.visit(row, uniform(n, 0), work::nano_item),
        RowId::Cheap => v.visit(row, uniform(n, cal.cheap), work::cheap_item),
        RowId::Heavy => v.visit(row, uniform(n, cal.heavy), work::heavy_item),
        RowId::Skewed => v.visit(row, skewed(n, cal.skew_median), work::skewed_item),
        RowId::Sleep => v.visit(row, sleep(n), work::sleep_item),
        RowId::Mixed => v.visit(row, mixed(n, cal.mixed_cpu), work::mixed_item),
        RowId::Locked => v.visit(row, uniform(n, cal.heavy), work::locked_item),
        RowId::Big => v.visit(row, big(n), work::big_item),
        RowId::Nested => v.visit(row, uniform(n, cal.nested_sub), work::nested_item),
        RowId::Files => v.visit(row, files(n), work::files_item),
        RowId::Tokens => v.visit(row, tokens(n), work::tokens_item),
        RowId::AfterWait => v.visit(row, uniform(n, cal.heavy), work::after_wait_item),
        RowId::DriftDown => v.visit(
            row,
            two_phases(n, DRIFT_DOWN_HEAD, cal.mixed_cpu, cal.cheap),
            work::drift_item,
        ),
        RowId::DriftUp => v.visit(
            row,
            two_phases(n, n / 2, cal.cheap, cal.skew_median),
            work::drift_item,
        ),
        RowId::Growing => v.visit(row, growing(n, cal.heavy), work::drift_item),
        RowId::Latency => v.visit(row, uniform(n, cal.heavy), work::latency_item),
    }
}
