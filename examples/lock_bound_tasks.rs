//! Render text labels through a library that is not thread-safe, so every call holds
//! one global lock (as a wrapper around such a C library must): threads queue on the
//! lock, worker processes each have their own copy of the library.
//!
//! Run with `cargo run --release --example lock_bound_tasks`. It writes the labels to a
//! file under the system temp directory, reads them back, renders them serially,
//! with amorsize's own choice and pinned to rayon, and removes the file.
//!
//! What it gets with 2 CPUs available, and why (measured with nothing else running;
//! timings move by 10-30% from run to run):
//!
//! `processes x2, chunk 12: est. 1.97x serial (1971 items x 416.8 us)`, because "threads
//! do not scale (two-thread efficiency 0.44)": on two threads the labels queue on the
//! lock, so rayon and the blocking pool are predicted no faster than serial, while each
//! worker process has its own copy of the library and its own lock. The wire costs
//! little (a 36-byte label, encoded in a few microseconds). Serial 865 ms, par_auto
//! 457 ms (1.89x; 480 ms on the first call, which also measured the wire costs and
//! started the workers), pinned to rayon 893 ms (0.97x).

use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use amorsize::prelude::*;
use amorsize::{Backend, Plan};
use serde::{Deserialize, Serialize};

/// A stand-in for a non-thread-safe C library (a font rasteriser with global state):
/// every call must hold this lock.
mod legacy {
    use super::*;

    static LIBRARY: Mutex<()> = Mutex::new(());

    /// Rasterises `text` at `size_px` into a coverage bitmap and returns (width,
    /// height, ink, checksum). About 0.3 ms of CPU for a typical label, all of it
    /// under the library's lock.
    pub fn rasterise(text: &str, size_px: u32) -> (u32, u32, u64, u64) {
        let _guard = LIBRARY.lock().unwrap_or_else(PoisonError::into_inner);
        let (w, h) = (size_px * text.len() as u32 / 2, size_px);
        let (mut ink, mut sum) = (0u64, 0xcbf2_9ce4_8422_2325u64);
        for (i, ch) in text.bytes().enumerate() {
            // Each glyph: a size_px x size_px/2 grid of pixels, 16 coverage samples
            // (4x4 anti-aliasing) a pixel.
            for y in 0..h * 4 {
                for x in 0..size_px * 2 {
                    let v = (u64::from(ch) * 31 + u64::from(x * 7 + y * 13) + i as u64 + sum)
                        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        >> 58;
                    ink += v;
                    sum = (sum ^ v).wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
        }
        (w, h, ink, sum)
    }
}

/// One label to render: the task's input (owned, serde).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Label {
    id: u32,
    text: String,
    size_px: u32,
}

/// The rendered label: the task's output (owned, serde).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rendered {
    id: u32,
    width: u32,
    height: u32,
    ink: u64,
    checksum: u64,
}

/// The task: a named function, marked so that worker processes can run it. It stays an
/// ordinary function, called directly by the serial version below.
#[amorsize::task]
fn render_label(label: Label) -> Rendered {
    let (width, height, ink, checksum) = legacy::rasterise(&label.text, label.size_px);
    Rendered {
        id: label.id,
        width,
        height,
        ink,
        checksum,
    }
}

/// Labels as a shop's price-tag run would have them, one a line: `id<TAB>size<TAB>text`.
fn write_labels(path: &PathBuf, n: u32) -> io::Result<()> {
    const WORDS: [&str; 8] = [
        "organic", "apples", "1kg", "special", "offer", "fresh", "bread", "coffee",
    ];
    let mut out = String::new();
    for id in 0..n {
        let words = 2 + id as usize % 3;
        let text: Vec<&str> = (0..words)
            .map(|w| WORDS[(id as usize * 5 + w * 3) % WORDS.len()])
            .collect();
        let size = [24, 32, 40][id as usize % 3];
        out.push_str(&format!("{id}\t{size}\t{}\n", text.join(" ")));
    }
    fs::write(path, out)
}

fn read_labels(path: &PathBuf) -> io::Result<Vec<Label>> {
    let bad = |line: &str| io::Error::new(io::ErrorKind::InvalidData, format!("bad line {line:?}"));
    fs::read_to_string(path)?
        .lines()
        .map(|line| {
            let mut f = line.splitn(3, '\t');
            let (Some(id), Some(size), Some(text)) = (f.next(), f.next(), f.next()) else {
                return Err(bad(line));
            };
            Ok(Label {
                id: id.parse().map_err(|_| bad(line))?,
                size_px: size.parse().map_err(|_| bad(line))?,
                text: text.to_string(),
            })
        })
        .collect()
}

/// A file under the system temp directory, removed when dropped (also on panic).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
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

fn main() -> io::Result<()> {
    // Optional: worker processes are this executable restarted, and a load-time hook
    // turns them into workers before `main` runs; this makes that explicit.
    amorsize::init();

    const N: u32 = 2_000;
    const REPS: usize = 3;
    let file =
        TempFile(std::env::temp_dir().join(format!("amorsize-labels-{}.tsv", std::process::id())));
    write_labels(&file.0, N)?;
    let labels = read_labels(&file.0)?;
    println!("read {} labels from {}\n", labels.len(), file.0.display());

    let serial = || -> Vec<Rendered> { labels.iter().cloned().map(render_label).collect() };
    let mut auto_plan = None;
    let mut auto = || -> Vec<Rendered> {
        labels
            .clone()
            .par_auto()
            .on_plan(|p| auto_plan = Some(p.clone()))
            .map(render_label)
            .collect()
    };
    let mut rayon_plan = None;
    let mut rayon = || -> Vec<Rendered> {
        labels
            .clone()
            .par_auto()
            .backend(Backend::Rayon)
            .on_plan(|p| rayon_plan = Some(p.clone()))
            .map(render_label)
            .collect()
    };

    // Interleaved, so that a busy machine slows every variant alike.
    let (mut t_serial, mut t_auto, mut t_rayon) = (Vec::new(), Vec::new(), Vec::new());
    let mut first = Duration::ZERO;
    let mut expected = Vec::new();
    for rep in 0..REPS {
        let (t, want) = timed(serial);
        t_serial.push(t);
        let (t, got) = timed(&mut auto);
        assert_eq!(got, want, "par_auto must give the serial result");
        if rep == 0 {
            first = t;
        } else {
            t_auto.push(t);
        }
        let (t, got) = timed(&mut rayon);
        assert_eq!(got, want, "rayon must give the serial result");
        t_rayon.push(t);
        expected = want;
    }
    let auto_plan: Plan = auto_plan.expect("on_plan is always called");
    let rayon_plan: Plan = rayon_plan.expect("on_plan is always called");

    println!("amorsize's choice: {auto_plan:#}\n");
    if auto_plan.backend != Backend::Processes {
        println!("(not processes this time: the breakdown above says why)\n");
    }
    println!("pinned to rayon:   {rayon_plan}\n");

    let serial = median(t_serial);
    let speedup = |t: Duration| serial.as_secs_f64() / t.as_secs_f64();
    let (cached, rayon) = (median(t_auto), median(t_rayon));
    println!("render {N} labels");
    println!("  serial          {serial:>9.1?}   median of {REPS}");
    println!(
        "  par_auto        {first:>9.1?}   first call: sampling, measuring, starting workers: {:.2}x serial",
        speedup(first)
    );
    println!(
        "  par_auto        {cached:>9.1?}   median of {}, plan cached: {:.2}x serial",
        REPS - 1,
        speedup(cached)
    );
    println!(
        "  pinned rayon    {rayon:>9.1?}   median of {REPS}: {:.2}x serial",
        speedup(rayon)
    );

    let ink: u64 = expected.iter().map(|r| r.ink).sum();
    println!(
        "\n{} labels rendered, total ink {ink}, results equal to serial",
        expected.len()
    );
    Ok(())
}
