//! [`Options`]: what the user pinned or forbade, and the `AMORSIZE_*` environment.

use crate::env::EnvConfig;
use crate::plan::{Backend, Reason};

/// Default of [`Options::min_speedup`]: below this predicted speedup, stay serial.
pub const DEFAULT_MIN_SPEEDUP: f64 = 1.2;

/// What the user asked of a job; everything is optional.
///
/// ```
/// use amorsize::{Backend, Options};
/// let mut opts = Options::default();
/// opts.backend = Some(Backend::Threads);
/// opts.max_workers = Some(8);
/// assert_eq!(opts.min_speedup, 1.2);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Options {
    /// Pin the backend.
    pub backend: Option<Backend>,
    /// Cap (and, with `backend` and `chunk_size`, pin) the number of workers.
    pub max_workers: Option<usize>,
    /// Pin the chunk size.
    pub chunk_size: Option<usize>,
    /// Stay serial unless parallel is predicted at least this much faster.
    pub min_speedup: f64,
    /// Backends that cannot run this job, each with its reason.
    pub exclude: Vec<(Backend, Reason)>,
    /// Where `backend` came from.
    pub(crate) backend_source: Source,
    /// Where `max_workers` came from.
    pub(crate) max_workers_source: Source,
}

/// Where a pinned value came from, so that the plan names the right control.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Source {
    /// `.backend()`, `.max_workers()`, an attribute argument, or a field set by hand.
    #[default]
    Code,
    /// This `AMORSIZE_*` variable.
    Environment(&'static str),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: None,
            max_workers: None,
            chunk_size: None,
            min_speedup: DEFAULT_MIN_SPEEDUP,
            exclude: Vec::new(),
            backend_source: Source::Code,
            max_workers_source: Source::Code,
        }
    }
}

impl Options {
    /// Whether backend, workers and chunk size are all pinned: such a job skips sampling.
    pub fn fully_pinned(&self) -> bool {
        self.backend.is_some() && self.max_workers.is_some() && self.chunk_size.is_some()
    }

    /// Forbids `backend` for this job, with the reason shown in the plan.
    pub fn forbid(&mut self, backend: Backend, why: impl Into<String>) {
        self.exclude.push((
            backend,
            Reason::Excluded {
                backend,
                why: why.into(),
            },
        ));
    }

    /// These options with the environment merged in, each value remembering where it
    /// came from: a backend pinned in code beats `AMORSIZE_BACKEND`, and
    /// `AMORSIZE_MAX_WORKERS` caps `max_workers` whether or not code set it.
    pub(crate) fn with_environment(&self, env: &EnvConfig) -> Options {
        let mut o = self.clone();
        if o.backend.is_none()
            && let Some(b) = env.backend
        {
            o.backend = Some(b);
            o.backend_source = Source::Environment("AMORSIZE_BACKEND");
        }
        if let Some(cap) = env.max_workers
            && o.max_workers.is_none_or(|n| n > cap)
        {
            o.max_workers = Some(cap);
            o.max_workers_source = Source::Environment("AMORSIZE_MAX_WORKERS");
        }
        o
    }

    /// Where the pinned `option` (`backend` or `max_workers`; anything else is code)
    /// came from.
    pub(crate) fn source(&self, option: &str) -> Source {
        match option {
            "backend" => self.backend_source,
            "max_workers" => self.max_workers_source,
            _ => Source::Code,
        }
    }

    /// The reason that says `option` was pinned to `value`, naming where: in code, or
    /// by an environment variable.
    pub(crate) fn pin_reason(&self, option: &'static str, value: String) -> Reason {
        match self.source(option) {
            Source::Code => Reason::Pinned { option, value },
            Source::Environment(variable) => Reason::Environment { variable, value },
        }
    }

    /// The reason `backend` is excluded, if it is.
    pub fn excluded(&self, backend: Backend) -> Option<&Reason> {
        self.exclude
            .iter()
            .find(|(b, _)| *b == backend)
            .map(|(_, r)| r)
    }
}

/// Whether the `serial` cargo feature is on: annotated functions then run their
/// original bodies. A `const`, so the expansion branches on it without emitting `cfg`s
/// into the user's crate.
pub const SERIAL_BUILD: bool = cfg!(feature = "serial");

/// The arguments of one `#[auto_parallel(...)]`, stored in a `static` per pipeline.
#[derive(Debug)]
pub struct Config {
    /// `module::function` the pipeline was written in.
    pub function: &'static str,
    /// `backend = "…"`.
    pub backend: Option<Backend>,
    /// `max_workers = N`.
    pub max_workers: Option<usize>,
    /// `chunk_size = N`.
    pub chunk_size: Option<usize>,
    /// `min_speedup = F`.
    pub min_speedup: Option<f64>,
    /// `log`: print this pipeline's plans on stderr.
    pub log: bool,
    /// `progress`: show a progress bar.
    pub progress: bool,
}

impl Config {
    pub(crate) fn apply(&self, options: &mut Options) {
        if self.backend.is_some() {
            options.backend = self.backend;
        }
        if self.max_workers.is_some() {
            options.max_workers = self.max_workers;
        }
        if self.chunk_size.is_some() {
            options.chunk_size = self.chunk_size;
        }
        if let Some(m) = self.min_speedup {
            options.min_speedup = m;
        }
    }
}
