//! The per-item work of every row: real computations (a 64-bit hash mixer, a
//! word-wise hash over a buffer, a lock-protected computation, SHA-256 of a file,
//! tokenising a line of source) and, for the waiting rows only, sleeps.
//!
//! Every row has its own *named* function, so each row has its own plan-cache entry
//! (the function's type is part of the key). The synthetic rows' functions take an
//! owned, serde-encodable item that carries all its parameters (seed and calibrated
//! round count), so the function can run on a worker process, which shares no statics
//! with the parent: a function marked `#[amorsize::task]` gets everything it needs from
//! its argument. See [`PROCESSES`]. The realistic files and tokens rows are plain
//! functions, as a new user writes them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Whether the hand-pinned grid includes `Backend::Processes` points.
///
/// Processes can only run a function marked `#[amorsize::task]`, as the synthetic
/// rows' item functions of this file are. Each row still checks, with a two-item pinned call, that the plan
/// it gets really is `processes` before its grid includes Processes points, so a
/// function left unmarked only drops that row's points (and says so) instead of timing
/// a fallback.
pub const PROCESSES: bool = true;

/// One CPU-bound item: a seed and how many hash rounds to run on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Work {
    /// Input of the hash chain.
    pub seed: u64,
    /// Rounds of [`mix`]; calibrated at start-up to a target time.
    pub rounds: u32,
}

/// One waiting item: a seed and how long to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Wait {
    /// Mixed into the result so the item computes something.
    pub seed: u64,
    /// Microseconds to sleep.
    pub micros: u32,
}

/// An item of the mixed row: either a computation or a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mixed {
    /// Hash rounds.
    Cpu(Work),
    /// A sleep.
    Io(Wait),
}

/// The splitmix64 finaliser: a bijective 64-bit mixer of about 10 cycles of latency.
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A dependent chain of `rounds` mixer rounds: the compiler can neither skip nor
/// vectorise it, so its cost is linear in `rounds`.
#[inline]
pub fn hash_rounds(seed: u64, rounds: u32) -> u64 {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    for i in 0..rounds {
        h = mix(h.wrapping_add(u64::from(i)));
    }
    h
}

/// A word-wise multiplicative hash over a byte buffer (FNV-1a on 64-bit words): about
/// one nanosecond per 8 bytes, so "cheap work" against a megabyte of data.
pub fn hash_bytes(data: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut words = data.chunks_exact(8);
    for w in words.by_ref() {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(0x0100_0000_01b3);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// The global lock of the lock-bound row: a shared counter every item updates while it
/// holds the lock for most of its work. In a worker process it is that process's own.
static LOCK: Mutex<u64> = Mutex::new(0);

/// Share of a lock-bound item's rounds run while holding [`LOCK`], in percent.
pub const LOCKED_PERCENT: u32 = 90;

// ---- the item functions, one per row -------------------------------------------------

/// Tiny row: about 20 ns of hashing.
///
/// A process task: named, with an owned serde input.
#[amorsize::task]
pub fn tiny_item(w: Work) -> u64 {
    hash_rounds(w.seed, w.rounds)
}

/// Tiny-1ns row: one wrapping multiply-add, about a nanosecond. The `black_box` keeps
/// the compiler from folding or vectorising the items away, so each costs what a
/// trivial closure costs in a real program.
///
/// A process task: named, with an owned serde input.
#[amorsize::task]
pub fn nano_item(w: Work) -> u64 {
    std::hint::black_box(w.seed)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(u64::from(w.rounds))
}

/// Many-cheap row: about 50 ns of hashing.
///
/// A process task: named, with an owned serde input.
#[amorsize::task]
pub fn cheap_item(w: Work) -> u64 {
    hash_rounds(w.seed, w.rounds)
}

/// Heavy-uniform row: about 100 µs of hashing.
///
/// A process task: named, with an owned serde input.
#[amorsize::task]
pub fn heavy_item(w: Work) -> u64 {
    hash_rounds(w.seed, w.rounds)
}

/// Skewed row: log-normally distributed hashing rounds.
///
/// A process task: named, with an owned serde input.
#[amorsize::task]
pub fn skewed_item(w: Work) -> u64 {
    hash_rounds(w.seed, w.rounds)
}

/// Drift rows (drift-down, drift-up, growing): hashing whose rounds change along the
/// input, so the items after the sample cost something else than the sampled ones.
///
/// A process task: named, with an owned serde input.
#[amorsize::task]
pub fn drift_item(w: Work) -> u64 {
    hash_rounds(w.seed, w.rounds)
}

/// Sleep row, and the untimed waiting job before every run of the cpu-after-wait row:
/// waits, then mixes the seed.
///
/// A process task: named, with an owned serde input.
#[amorsize::task]
pub fn sleep_item(w: Wait) -> u64 {
    thread::sleep(Duration::from_micros(u64::from(w.micros)));
    mix(w.seed)
}

/// Mixed row: half the items compute, half wait.
///
/// A process task: named, with an owned serde input.
#[amorsize::task]
pub fn mixed_item(m: Mixed) -> u64 {
    match m {
        Mixed::Cpu(w) => hash_rounds(w.seed, w.rounds),
        Mixed::Io(w) => {
            thread::sleep(Duration::from_micros(u64::from(w.micros)));
            mix(w.seed)
        }
    }
}

/// Lock-bound row: [`LOCKED_PERCENT`] % of the rounds run while holding one global
/// mutex, so threads cannot scale it; processes (each with its own mutex) can.
///
/// A process task: the row that needs processes most.
#[amorsize::task]
pub fn locked_item(w: Work) -> u64 {
    let locked = w.rounds / 100 * LOCKED_PERCENT;
    let before = hash_rounds(w.seed, w.rounds - locked);
    let mut count = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    *count = count.wrapping_add(1);
    let after = hash_rounds(before, locked);
    drop(count);
    after
}

/// Big-items row: a cheap hash over a megabyte that the item owns (moving it to a
/// worker process means encoding all of it).
///
/// A process task: named, with an owned serde input.
#[amorsize::task]
pub fn big_item(data: Vec<u8>) -> u64 {
    hash_bytes(&data)
}

/// Sub-items each nested item splits into on rayon.
pub const NESTED_FANOUT: u64 = 16;

/// Nested row: the item itself runs [`NESTED_FANOUT`] hash chains on rayon.
///
/// A process task: named, with an owned serde input.
#[amorsize::task]
pub fn nested_item(w: Work) -> u64 {
    (0..NESTED_FANOUT)
        .into_par_iter()
        .map(|j| hash_rounds(w.seed ^ (j << 40), w.rounds))
        .reduce(|| 0, |a, b| a ^ b)
}

/// Files row: reads a whole file and hashes it with SHA-256, as
/// `paths.par_iter().map(|p| sha256(fs::read(p)))` does; the result is the digest's
/// first eight bytes. A file that cannot be read (removed since the list was made)
/// gives 0 rather than stopping the benchmark: every column sees the same.
///
/// Not a process task, though it could be one: the row measures the code a new user
/// writes, a plain function or closure, for which `par_auto` never starts processes.
pub fn files_item(path: PathBuf) -> u64 {
    match std::fs::read(&path) {
        Ok(bytes) => {
            let mut first = [0u8; 8];
            first.copy_from_slice(&Sha256::digest(&bytes)[..8]);
            u64::from_le_bytes(first)
        }
        Err(_) => 0,
    }
}

/// Byte classes of the tokens row's tokenizer.
const SPACE: u8 = 0;
const WORD: u8 = 1;
const PUNCT: u8 = 2;

/// The class of every byte: ASCII whitespace, word (letters, digits, `_` and the bytes
/// of non-ASCII characters) or punctuation (everything else).
const CLASS: [u8; 256] = {
    let mut class = [PUNCT; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_whitespace() {
            class[i] = SPACE;
        } else if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 {
            class[i] = WORD;
        }
        i += 1;
    }
    class
};

/// Tokens row: the number of tokens on one line of source. A token is an identifier
/// or a number (a run of word bytes: `par_auto`, `0xff`, `1_000u64`) or one punctuation
/// character; whitespace separates tokens. One table look-up a byte and no branch, as
/// a hand-written lexer's first pass would be.
///
/// Not a process task: the row measures the code a new user writes, and its item
/// borrows the shared text (`&str`), as lines split from a file do, where a task's
/// input must be owned to be sent to a worker.
pub fn tokens_item(line: &str) -> u64 {
    let mut prev = SPACE;
    let mut tokens = 0;
    for &b in line.as_bytes() {
        let class = CLASS[usize::from(b)];
        // A token starts at every punctuation byte and at the first byte of a word.
        tokens += u64::from(class == PUNCT || (class == WORD && prev != WORD));
        prev = class;
    }
    tokens
}

/// Cpu-after-wait row: about 100 µs of hashing, as the heavy row, in a function of its
/// own so the row has its own plan-cache entry.
///
/// A process task: named, with an owned serde input.
#[amorsize::task]
pub fn after_wait_item(w: Work) -> u64 {
    hash_rounds(w.seed, w.rounds)
}

// ---- the latency probe ---------------------------------------------------------------

/// Nanoseconds since [`base`] at which the first item ran on a thread other than the
/// main one (0: not yet).
static FIRST_PARALLEL: AtomicU64 = AtomicU64::new(0);

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn main_thread() -> ThreadId {
    static MAIN: OnceLock<ThreadId> = OnceLock::new();
    *MAIN.get_or_init(|| thread::current().id())
}

/// Records the calling thread as the main one and the clock base; call first thing.
pub fn init_latency_probe() {
    let _ = (base(), main_thread());
}

/// Latency row: heavy hashing that records when the first item ran off the main thread.
/// Not a process task (a worker process cannot write the parent's statics).
pub fn latency_item(w: Work) -> u64 {
    if FIRST_PARALLEL.load(Ordering::Relaxed) == 0 && thread::current().id() != main_thread() {
        let now = base().elapsed().as_nanos() as u64;
        let _ =
            FIRST_PARALLEL.compare_exchange(0, now.max(1), Ordering::Relaxed, Ordering::Relaxed);
    }
    hash_rounds(w.seed, w.rounds)
}

/// Starts a latency measurement: forgets the previous first parallel item and returns
/// the start time in nanoseconds since the base.
pub fn latency_start() -> u64 {
    FIRST_PARALLEL.store(0, Ordering::Relaxed);
    base().elapsed().as_nanos() as u64
}

/// Seconds from `start` (from [`latency_start`]) to the first item that ran off the
/// main thread, if any did.
pub fn latency_since(start: u64) -> Option<f64> {
    match FIRST_PARALLEL.load(Ordering::Relaxed) {
        0 => None,
        t => Some(t.saturating_sub(start) as f64 * 1e-9),
    }
}
