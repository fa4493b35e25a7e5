//! Parse a large JSON-lines file (one event per line, as logs and data exports are
//! written) with `serde_json`, then total the amounts per country.
//!
//! Run with `cargo run --release --example json_lines` (optionally with the number of
//! lines, default 300000). It writes the file under the system temp directory, parses
//! it, and removes it.
//!
//! What it gets with 2 CPUs available, and why (two runs; each section runs serial,
//! plain rayon and `par_auto` interleaved, 5 times; timings move by 10-30% from run to
//! run, more for parsing, whose millions of small strings make whoever allocates after
//! a free pay glibc's consolidation):
//!
//! - Totals (`fold_reduce` over the 300,000 parsed events): `rayon x2, chunk 2760: est.
//!   1.71x serial (300000 items x 47 ns)`. Tens of nanoseconds an item, but 300,000 of
//!   them are several milliseconds, enough to pay for two rayon workers. Serial 11.4-11.9
//!   ms, rayon 7.3-9.7 ms, par_auto 5.7-6.3 ms (1.28-1.55 of rayon's speed).
//! - Parsing under `#[auto_parallel]`, lines collected first: `rayon x2, chunk 761: est.
//!   1.95x serial (300000 items x 676 ns)`: CPU-bound, even, 300,000 items. Serial 205
//!   ms, rayon 150-154 ms, par_auto 105-108 ms (1.43 of rayon's speed).
//! - Parsing straight from `text.lines()` (rayon: `par_lines`): `lines()` cannot tell
//!   how many lines are left, so amorsize assumes as many again as its sample saw, and
//!   re-plans (and learns for the next call) as the input turns out longer. Serial
//!   223-245 ms, rayon 128-134 ms, par_auto 95-97 ms (1.35-1.38 of rayon's speed).
//!   Collecting the lines first still gives the model the length from the start.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use amorsize::Plan;
use amorsize::prelude::*;
use serde::{Deserialize, Serialize};

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Event {
    id: u64,
    timestamp: String,
    user: String,
    country: String,
    kind: Kind,
    amount_cents: i64,
    tags: Vec<String>,
    user_agent: String,
    #[serde(default)]
    referrer: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    View,
    AddToCart,
    Purchase,
    Refund,
}

/// A file under the system temp directory, removed when dropped (also on panic).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Writes `n` events, one JSON object a line.
fn generate(n: u64) -> io::Result<TempFile> {
    const COUNTRIES: [&str; 8] = ["DE", "FR", "US", "BR", "JP", "IN", "NG", "SE"];
    const KINDS: [Kind; 4] = [Kind::View, Kind::AddToCart, Kind::Purchase, Kind::Refund];
    const TAGS: [&str; 6] = ["mobile", "promo", "returning", "beta", "newsletter", "gift"];
    let file = TempFile(
        std::env::temp_dir().join(format!("amorsize-json-lines-{}.jsonl", std::process::id())),
    );
    let mut out = BufWriter::new(File::create(&file.0)?);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for id in 0..n {
        let r = next();
        let event = Event {
            id,
            timestamp: format!(
                "2025-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                1 + r % 12,
                1 + (r >> 4) % 28,
                (r >> 9) % 24,
                (r >> 14) % 60,
                (r >> 20) % 60,
                (r >> 26) % 1000
            ),
            user: format!("user-{:08x}", next() % 50_000),
            country: COUNTRIES[(r >> 36) as usize % COUNTRIES.len()].to_string(),
            kind: KINDS[(r >> 40) as usize % KINDS.len()],
            amount_cents: (next() % 20_000) as i64 - 1_000,
            tags: (0..(r >> 44) % 4)
                .map(|i| TAGS[((r >> (48 + 2 * i)) % 6) as usize].to_string())
                .collect(),
            user_agent: format!(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/{}.0.{}.{}",
                100 + r % 40,
                next() % 6000,
                next() % 200
            ),
            referrer: (r % 3 == 0).then(|| format!("https://example.org/p/{}", next() % 9999)),
        };
        serde_json::to_writer(&mut out, &event)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(file)
}

/// Parses every line: the plain serial version, what you would write without amorsize.
fn parse_serial(text: &str) -> serde_json::Result<Vec<Event>> {
    text.lines().map(serde_json::from_str).collect()
}

/// The same under `#[auto_parallel]`, with the lines collected first: the attribute
/// rewrites the second pipeline into `lines.iter().par_auto().map(..).collect()` (the
/// first has no closure and stays as written). Collecting first tells amorsize how many
/// lines there are; see [`parse_streaming`] for why that matters. `log` prints the plan
/// on stderr each time it is decided (once per run here: then it is cached).
#[auto_parallel(log)]
fn parse_events(text: &str) -> serde_json::Result<Vec<Event>> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .map(|line| serde_json::from_str(line))
        .collect()
}

/// Straight from `text.lines()`, whose length is unknown until the text is read: the
/// first attempt a user would make.
fn parse_streaming(text: &str, seen: &mut Option<Plan>) -> serde_json::Result<Vec<Event>> {
    text.lines()
        .par_auto()
        .on_plan(|p| *seen = Some(p.clone()))
        .map(serde_json::from_str)
        .collect()
}

/// Plain rayon on the collected lines: what `par_auto` is measured against.
fn parse_rayon(text: &str) -> serde_json::Result<Vec<Event>> {
    use rayon::prelude::*;
    let lines: Vec<&str> = text.lines().collect();
    lines
        .par_iter()
        .map(|line| serde_json::from_str(line))
        .collect()
}

/// Plain rayon straight from the text (`par_lines`).
fn parse_rayon_streaming(text: &str) -> serde_json::Result<Vec<Event>> {
    use rayon::prelude::*;
    text.par_lines().map(serde_json::from_str).collect()
}

/// Plain rayon totals.
fn totals_rayon(events: &[Event]) -> BTreeMap<&str, i64> {
    use rayon::prelude::*;
    events
        .par_iter()
        .filter_map(net_amount)
        .fold(BTreeMap::new, add)
        .reduce(BTreeMap::new, merge)
}

/// Adds the totals of `b` to `a`.
fn merge<'a>(mut a: BTreeMap<&'a str, i64>, b: BTreeMap<&'a str, i64>) -> BTreeMap<&'a str, i64> {
    for (country, cents) in b {
        *a.entry(country).or_insert(0) += cents;
    }
    a
}

/// Net amount per country over the purchases and refunds.
fn totals_serial(events: &[Event]) -> BTreeMap<&str, i64> {
    events
        .iter()
        .filter_map(net_amount)
        .fold(BTreeMap::new(), add)
}

/// The same with `par_auto()`, reporting its plan.
fn totals_auto<'a>(events: &'a [Event], seen: &mut Option<Plan>) -> BTreeMap<&'a str, i64> {
    events
        .iter()
        .par_auto()
        .on_plan(|p| *seen = Some(p.clone()))
        .filter_map(net_amount)
        .fold_reduce(BTreeMap::new, add, merge)
}

fn net_amount(e: &Event) -> Option<(&str, i64)> {
    match e.kind {
        Kind::Purchase => Some((&e.country, e.amount_cents)),
        Kind::Refund => Some((&e.country, -e.amount_cents)),
        Kind::View | Kind::AddToCart => None,
    }
}

fn add<'a>(
    mut m: BTreeMap<&'a str, i64>,
    (country, cents): (&'a str, i64),
) -> BTreeMap<&'a str, i64> {
    *m.entry(country).or_insert(0) += cents;
    m
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

/// Runs `serial`, plain `rayon` and `auto` `REPS` times, interleaved (so that a busy
/// machine slows them alike), asserts that they agree, and prints the median times.
fn compare<R: PartialEq + std::fmt::Debug>(
    title: &str,
    mut serial: impl FnMut() -> R,
    mut rayon: impl FnMut() -> R,
    mut auto: impl FnMut() -> R,
) {
    const REPS: usize = 5;
    let (mut t_serial, mut t_rayon, mut t_cached, mut first) =
        (Vec::new(), Vec::new(), Vec::new(), Duration::ZERO);
    for rep in 0..REPS {
        let (t, expected) = timed(&mut serial);
        t_serial.push(t);
        let (t, got) = timed(&mut rayon);
        assert_eq!(got, expected, "{title}: rayon must give the serial result");
        t_rayon.push(t);
        let (t, got) = timed(&mut auto);
        assert_eq!(
            got, expected,
            "{title}: amorsize must give the serial result"
        );
        if rep == 0 {
            first = t;
        } else {
            t_cached.push(t);
        }
    }
    let (serial, rayon, cached) = (median(t_serial), median(t_rayon), median(t_cached));
    println!("  serial   {serial:>9.1?}   median of {REPS}");
    println!(
        "  rayon    {rayon:>9.1?}   median of {REPS}: {:.2}x serial",
        serial.as_secs_f64() / rayon.as_secs_f64()
    );
    println!("  auto     {first:>9.1?}   first call: sampling and planning included");
    println!(
        "  auto     {cached:>9.1?}   median of {}, plan cached: {:.2}x serial, {:.2} of \
         rayon's speed\n",
        REPS - 1,
        serial.as_secs_f64() / cached.as_secs_f64(),
        rayon.as_secs_f64() / cached.as_secs_f64()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lines: u64 = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 300_000,
    };
    let (t_gen, file) = timed(|| generate(lines));
    let file = file?;
    let text = fs::read_to_string(&file.0)?;
    println!(
        "wrote {lines} lines, {:.1} MiB, to {} in {t_gen:.2?}\n",
        text.len() as f64 / (1 << 20) as f64,
        file.0.display()
    );
    let events = parse_serial(&text)?;

    // 1. Totals over the parsed events: tens of nanoseconds per event. Measured before
    //    the parsing below, which frees millions of small strings on every repetition:
    //    the first large allocation after that pays for glibc consolidating the freed
    //    chunks (tens of milliseconds with the default 300,000 lines), whichever code
    //    makes it.
    let mut plan = None;
    println!("net amount per country over {} events", events.len());
    compare(
        "totals",
        || totals_serial(&events),
        || totals_rayon(&events),
        || totals_auto(&events, &mut plan),
    );
    let plan = plan.expect("on_plan is always called");
    println!("  plan:    {plan}\n");
    for (country, cents) in totals_serial(&events) {
        println!("  {country}  {:>12.2}", cents as f64 / 100.0);
    }
    println!();

    // 2. Parsing: about a microsecond of CPU per line.
    println!("parse {lines} lines, #[auto_parallel] (plan: the `amorsize:` line on stderr)");
    compare(
        "parse",
        || parse_serial(&text).map_err(|e| e.to_string()),
        || parse_rayon(&text).map_err(|e| e.to_string()),
        || parse_events(&text).map_err(|e| e.to_string()),
    );

    // 3. The same straight from `text.lines()`.
    let mut plan = None;
    println!("parse {lines} lines, straight from text.lines().par_auto()");
    compare(
        "parse_streaming",
        || parse_serial(&text).map_err(|e| e.to_string()),
        || parse_rayon_streaming(&text).map_err(|e| e.to_string()),
        || parse_streaming(&text, &mut plan).map_err(|e| e.to_string()),
    );
    let plan = plan.expect("on_plan is always called");
    println!("{plan:#}");
    Ok(())
}
