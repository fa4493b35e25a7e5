//! Progress of a job: input items finished, shown as a bar on stderr when asked for
//! (feature `progress`). Counted where items finish: per item in the sample, on the
//! serial path and inside the chunks of the rayon and blocking-pool executors (so the
//! bar moves however large the chunks), and as items are handed to worker processes.
//! The bar redraws every 100 ms; amorsize's own log lines are printed above it.

#[cfg(feature = "progress")]
use std::sync::OnceLock;
#[cfg(feature = "progress")]
use std::sync::atomic::{AtomicUsize, Ordering};

/// Every bar of the process, so log lines go above all of them.
#[cfg(feature = "progress")]
fn bars() -> &'static indicatif::MultiProgress {
    static BARS: OnceLock<indicatif::MultiProgress> = OnceLock::new();
    BARS.get_or_init(indicatif::MultiProgress::new)
}

/// Bars shown now.
#[cfg(feature = "progress")]
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// How often a bar redraws, whether or not items finished meanwhile.
#[cfg(feature = "progress")]
const TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// Prints one of amorsize's log lines on stderr, above any progress bar shown (a plain
/// `eprintln!` would break the bar and leave a stale copy of it on screen).
pub(crate) fn log_line(text: &str) {
    #[cfg(feature = "progress")]
    if LIVE.load(Ordering::Acquire) > 0 {
        bars().suspend(|| eprintln!("{text}"));
        return;
    }
    eprintln!("{text}");
}

/// A handle that counts finished input items; a no-op unless a bar was asked for.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    #[cfg(feature = "progress")]
    bar: Option<indicatif::ProgressBar>,
}

/// The rate, as a whole number of items a second (indicatif's `{per_sec}` shows four
/// decimals).
#[cfg(feature = "progress")]
fn rate(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0} items/s", state.per_sec());
}

impl Progress {
    /// A bar for `len` items (a spinner when the length is unknown), if `enabled`. The
    /// label is formatted only then: a job without a bar pays nothing for it.
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    pub(crate) fn new(
        enabled: bool,
        len: Option<usize>,
        label: &dyn std::fmt::Display,
    ) -> Progress {
        #[cfg(feature = "progress")]
        {
            if !enabled {
                return Progress::default();
            }
            let bar = match len {
                Some(n) => indicatif::ProgressBar::new(n as u64).with_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg} [{bar:30}] {pos}/{len} items, {rate}, ETA {eta}",
                    )
                    .map(|s| s.with_key("rate", rate))
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
                None => indicatif::ProgressBar::new_spinner().with_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg} {spinner} {pos} items, {rate}, {elapsed}",
                    )
                    .map(|s| s.with_key("rate", rate))
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                ),
            };
            let bar = bars().add(bar.with_message(label.to_string()));
            bar.enable_steady_tick(TICK);
            LIVE.fetch_add(1, Ordering::AcqRel);
            Progress { bar: Some(bar) }
        }
        #[cfg(not(feature = "progress"))]
        Progress::default()
    }

    /// Whether anything is being shown (so callers can skip per-item counting).
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        #[cfg(feature = "progress")]
        {
            self.bar.is_some()
        }
        #[cfg(not(feature = "progress"))]
        false
    }

    /// `n` more input items are finished.
    #[inline]
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    pub(crate) fn add(&self, n: usize) {
        #[cfg(feature = "progress")]
        if let Some(b) = &self.bar {
            b.inc(n as u64);
        }
    }

    /// The job is over: leave the bar at its final state.
    pub(crate) fn finish(&self) {
        #[cfg(feature = "progress")]
        if let Some(b) = &self.bar
            && !b.is_finished()
        {
            b.finish();
            LIVE.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Progress {
    /// A job that unwound (a panic) still takes its bar off the count of live ones.
    fn drop(&mut self) {
        self.finish();
    }
}
