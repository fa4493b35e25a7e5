//! Hash every file under a directory with SHA-256, like `sha256sum $(find DIR -type f)`:
//! reading the files is I/O, hashing them is CPU.
//!
//! Run with `cargo run --release --example hash_files` (`AMORSIZE_LOG=full` shows every
//! decision in full). It writes a tree of 400 files (114 MiB) under the system temp
//! directory, hashes it twice (page cache warm, then cold), and removes it.
//!
//! What it gets with 2 CPUs available, and why (measured with nothing else running;
//! timings move by 10-30% from run to run):
//!
//! - Page cache warm: `rayon x2, chunk 12: est. 1.87x serial (396 items x 190.3 us)`.
//!   Reading a cached file is a memory copy, so the sample's thread CPU / wall ratio is
//!   about 1: CPU-bound hashing, one worker per core. Serial 84.1 ms, par_auto 47.3 ms
//!   (1.78x; 1.78x-1.89x over several runs).
//! - Page cache cold: `threads x5, chunk 10: est. 4.09x serial (396 items x 555.6 us)`,
//!   because "I/O-bound (CPU/wall 0.47): more threads than cores allowed": a file now
//!   waits for the disk more than half of the time, so amorsize's blocking pool keeps
//!   more reads in flight than there are cores. Serial 234.9 ms, par_auto 129.4 ms
//!   (1.82x; 1.5x-2.0x over several runs); the model's 4.09x assumes the waits overlap
//!   perfectly, which the disk did not give in these runs.
//!
//! Processes are never a candidate here: the work is a closure (the full plan says how
//! to enable them).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amorsize::Plan;
use amorsize::prelude::*;
use sha2::{Digest, Sha256};

/// Files in the generated tree, and their sizes: most are small, a few are large.
const FILES: usize = 400;
const SIZES: [usize; 4] = [8 << 10, 64 << 10, 256 << 10, 1 << 20];

/// A directory under the system temp directory, removed when dropped (also on panic).
struct TempTree(PathBuf);

impl TempTree {
    fn new(name: &str) -> io::Result<TempTree> {
        let dir = std::env::temp_dir().join(format!("amorsize-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir)?;
        Ok(TempTree(dir))
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes `FILES` files of pseudo-random bytes in nested directories; returns the
/// total size.
fn generate(root: &Path) -> io::Result<u64> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut total = 0;
    for i in 0..FILES {
        let dir = root.join(format!("dir{}/sub{}", i % 6, i % 4));
        fs::create_dir_all(&dir)?;
        // Every fifth file is large, the rest spread over the small sizes.
        let len = if i % 5 == 0 { SIZES[3] } else { SIZES[i % 3] };
        let mut bytes = vec![0u8; len];
        for word in bytes.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        let mut f = File::create(dir.join(format!("file{i:03}.bin")))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        total += len as u64;
    }
    Ok(total)
}

/// Every regular file under `dir`, in a stable order.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The SHA-256 of a file, as lowercase hex, read in 64 KiB blocks.
fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Drops the files from the page cache, so that the next read comes from the disk.
#[cfg(target_os = "linux")]
fn evict(paths: &[PathBuf]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    for p in paths {
        let f = File::open(p)?;
        // SAFETY: `f` is an open file descriptor for the duration of the call.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn evict(_paths: &[PathBuf]) -> io::Result<()> {
    Ok(())
}

/// The plain serial version: what you would write without amorsize.
fn hash_serial(paths: &[PathBuf]) -> io::Result<Vec<String>> {
    paths.iter().map(|p| sha256_file(p)).collect()
}

/// The same pipeline with `.par_auto()`; `seen` gets amorsize's plan.
///
/// `#[track_caller]` makes every place that calls this function its own amorsize call
/// site, with its own cached plan: the warm and the cold runs are measured and planned
/// separately instead of the second reusing the first one's plan.
#[track_caller]
fn hash_auto(paths: &[PathBuf], seen: &mut Option<Plan>) -> io::Result<Vec<String>> {
    paths
        .iter()
        .par_auto()
        .on_plan(|p| *seen = Some(p.clone()))
        .map(|p| sha256_file(p))
        .collect()
}

fn timed<R>(f: impl FnOnce() -> R) -> (Duration, R) {
    let t = Instant::now();
    let r = f();
    (t.elapsed(), r)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mib_per_sec(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

/// Runs the serial and the `par_auto` version `REPS` times, interleaved (so that a busy
/// machine slows both alike), with `before` called ahead of every run; asserts that
/// every result equals `expected` and prints the plan and the median times.
fn compare(
    title: &str,
    paths: &[PathBuf],
    bytes: u64,
    expected: &[String],
    mut before: impl FnMut(),
    mut auto: impl FnMut(&mut Option<Plan>) -> io::Result<Vec<String>>,
) -> io::Result<Plan> {
    const REPS: usize = 5;
    let (mut serial, mut cached) = (Vec::new(), Vec::new());
    let mut plan = None;
    let mut first = Duration::ZERO;
    for rep in 0..REPS {
        before();
        let (t, got) = timed(|| hash_serial(paths));
        assert_eq!(got?, expected);
        serial.push(t);
        before();
        let (t, got) = timed(|| auto(&mut plan));
        assert_eq!(got?, expected, "par_auto must give the serial digests");
        if rep == 0 {
            first = t;
        } else {
            cached.push(t);
        }
    }
    let plan = plan.expect("on_plan is always called");
    let (serial, cached) = (median(serial), median(cached));
    println!("{title}");
    println!("  plan:     {plan}");
    println!(
        "  serial   {serial:>9.1?} ({:>5.0} MiB/s)   median of {REPS}",
        mib_per_sec(bytes, serial)
    );
    println!(
        "  par_auto {first:>9.1?} ({:>5.0} MiB/s)   first call: sampling and planning included",
        mib_per_sec(bytes, first)
    );
    println!(
        "  par_auto {cached:>9.1?} ({:>5.0} MiB/s)   median of {}, plan cached: {:.2}x serial\n",
        mib_per_sec(bytes, cached),
        REPS - 1,
        serial.as_secs_f64() / cached.as_secs_f64()
    );
    Ok(plan)
}

fn main() -> io::Result<()> {
    let tree = TempTree::new("hash-files")?;
    let (gen_time, bytes) = timed(|| generate(&tree.0));
    let bytes = bytes?;
    let mut paths = Vec::new();
    walk(&tree.0, &mut paths)?;
    paths.sort();
    println!(
        "wrote {} files, {:.1} MiB, under {} in {:.2?}\n",
        paths.len(),
        bytes as f64 / (1 << 20) as f64,
        tree.0.display(),
        gen_time
    );

    let expected = hash_serial(&paths)?;

    // 1. Warm page cache: the files were just written, so reading them is a memory
    //    copy and the job is CPU-bound hashing.
    compare(
        "page cache warm",
        &paths,
        bytes,
        &expected,
        || {},
        |plan| hash_auto(&paths, plan),
    )?;

    // 2. Cold page cache: every file is dropped from the cache before each run, so
    //    reads wait for the disk.
    let plan = compare(
        "page cache cold (read from disk)",
        &paths,
        bytes,
        &expected,
        || evict(&paths).expect("evict from the page cache"),
        |plan| hash_auto(&paths, plan),
    )?;
    println!("{plan:#}\n");

    // What `sha256sum` would print, for the first few files.
    for (path, digest) in paths.iter().zip(&expected).take(3) {
        let rel = path.strip_prefix(&tree.0).unwrap_or(path);
        println!("{digest}  {}", rel.display());
    }
    println!(
        "... {} files hashed, results equal to serial",
        expected.len()
    );
    Ok(())
}
