//! The machine's measured overheads, kept in the disk cache across runs so that a
//! program's first job plans with measured costs without measuring again. The entry is
//! only valid on the machine that wrote it: the cache checks the machine's fingerprint
//! (CPU model and budget, cgroup limits, kernel, amorsize version) on every read.

use std::sync::atomic::{AtomicBool, Ordering};

use super::overhead::{self, Measured};
use super::{MachineProfile, Overheads};
use crate::disk::{self, Read};

/// The disk cache's kind for the calibration; there is one entry per machine (key 0).
const KIND: &str = "calib";

/// Set when the process pool's costs came from the disk: no need to write them back.
static PROCESS_FROM_DISK: AtomicBool = AtomicBool::new(false);

/// What is kept: each measured fixed cost, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Calibration {
    thread_start: f64,
    rayon_start: f64,
    chunk_handoff: f64,
    /// The process pool's start and per-chunk costs, once some run measured them.
    process: Option<(f64, f64)>,
}

impl Calibration {
    /// Puts the remembered costs into `m`. The process pool's costs also go where the
    /// pool looks for them, so it does not time its first workers again.
    pub(super) fn apply(&self, mut m: MachineProfile) -> MachineProfile {
        m.overheads.thread_start_secs = self.thread_start;
        m.overheads.rayon_start_secs = self.rayon_start;
        m.overheads.chunk_handoff_secs = self.chunk_handoff;
        if let Some((start, chunk)) = self.process {
            let measured = |secs| Measured {
                secs,
                fallback: None,
            };
            let mut first = false;
            overhead::process_overheads(|| {
                first = true;
                (measured(start), measured(chunk))
            });
            PROCESS_FROM_DISK.store(first, Ordering::Relaxed);
        }
        m
    }

    /// Whether every figure is a usable number of seconds (a foreign or damaged entry
    /// that still decodes is not trusted).
    fn plausible(&self) -> bool {
        let ok = |s: f64| s.is_finite() && s > 0.0 && s < 1.0;
        ok(self.thread_start)
            && ok(self.rayon_start)
            && ok(self.chunk_handoff)
            && self.process.is_none_or(|(a, b)| ok(a) && ok(b))
    }
}

/// The calibration an earlier run on this machine kept, if any.
pub(super) fn remembered() -> Option<Calibration> {
    match disk::store().read::<Calibration>(KIND, 0) {
        Read::Hit(c) if c.plausible() => Some(c),
        _ => None,
    }
}

/// Keeps `o` for later runs. The process pool's costs are kept only once measured (the
/// defaults are not measurements), and a remembered pair is not overwritten by none.
pub(super) fn remember(o: &Overheads, process_measured: bool) {
    if process_measured && PROCESS_FROM_DISK.load(Ordering::Relaxed) {
        return;
    }
    let process = if process_measured {
        Some((o.process_start_secs, o.process_chunk_secs))
    } else {
        remembered().and_then(|c| c.process)
    };
    let c = Calibration {
        thread_start: o.thread_start_secs,
        rayon_start: o.rayon_start_secs,
        chunk_handoff: o.chunk_handoff_secs,
        process,
    };
    // A cache that cannot be written only means measuring again next run.
    let _ = disk::store().write(KIND, 0, &c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implausible_figures_are_not_trusted() {
        let good = Calibration {
            thread_start: 5e-5,
            rayon_start: 1e-5,
            chunk_handoff: 2e-6,
            process: Some((1e-3, 3e-5)),
        };
        assert!(good.plausible());
        for bad in [
            Calibration {
                thread_start: f64::NAN,
                ..good
            },
            Calibration {
                rayon_start: 0.0,
                ..good
            },
            Calibration {
                process: Some((1e-3, 5.0)),
                ..good
            },
        ] {
            assert!(!bad.plausible(), "{bad:?}");
        }
    }
}
