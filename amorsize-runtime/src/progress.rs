//! Progress of a job: input items finished, shown as a bar on stderr when asked for
//! (feature `progress`). Counted where items finish: per item in the sample and the
//! serial path, per chunk on the workers' results, so it is right on every backend.

/// A handle that counts finished input items; a no-op unless a bar was asked for.
#[derive(Clone, Debug, Default)]
pub(crate) struct Progress {
    #[cfg(feature = "progress")]
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A bar for `len` items (a spinner when the length is unknown), if `enabled`.
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    pub(crate) fn new(enabled: bool, len: Option<usize>, label: &str) -> Progress {
        #[cfg(feature = "progress")]
        {
            if !enabled {
                return Progress::default();
            }
            let bar = match len {
                Some(n) => indicatif::ProgressBar::new(n as u64).with_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg} [{bar:30}] {pos}/{len} items, {per_sec}, ETA {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
                None => indicatif::ProgressBar::new_spinner().with_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg} {spinner} {pos} items, {per_sec}, {elapsed}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                ),
            };
            Progress {
                bar: Some(bar.with_message(label.to_string())),
            }
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
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}
