//! The disk cache's storage layer: values kept across runs, one file per entry, in the
//! user's cache directory (issue 14).
//!
//! It knows nothing of plans: callers choose a `kind` (`plan`, `calib`, ...) and a
//! 64-bit key, and store any serde value. What it guarantees:
//!
//! - **Where**: `AMORSIZE_CACHE_DIR`, else `$XDG_CACHE_HOME/amorsize`, else
//!   `~/.cache/amorsize` (`~/Library/Caches/amorsize` on macOS); `AMORSIZE_CACHE=off`
//!   reads, writes and creates nothing ([`settings`]).
//! - **Valid only where and while measured**: every entry carries the hash of the
//!   machine's [`Fingerprint`](fingerprint::Fingerprint) (CPU model and budget, cgroup limits, kernel, amorsize
//!   version), a format version and its creation time; an entry of another machine or
//!   version, or older than the time to live (7 days, `AMORSIZE_CACHE_TTL_SECS`), is
//!   not used. Plans also key on [`exe_identity`] (the caller puts it in the key).
//! - **Never corrupt, never failing**: writes go to a temporary file renamed over the
//!   entry, so concurrent processes never leave a torn file; a damaged, truncated or
//!   foreign file is detected (magic, lengths, checksum) and reported as a
//!   [`Problem`] naming it, never a panic or an error of the job; an unusable
//!   directory makes the cache a no-op that says so once ([`Store::take_reports`]).
//! - **Workers never write**: [`Store::open`] writes only outside worker processes.
//! - **Bounded**: writes occasionally prune expired entries, stale temporary files and
//!   the oldest entries beyond 512; [`clear_cache`] removes everything it wrote.

mod envelope;
mod files;
mod fingerprint;
mod hash;
mod problem;
mod settings;
mod store;
#[cfg(test)]
pub(crate) mod tests;

pub(crate) use fingerprint::exe_identity;
pub(crate) use hash::StableHasher;
pub(crate) use problem::Problem;
use settings::{EnvValues, Platform};
pub(crate) use store::{Read, Store};

/// The process's disk cache, opened on first use (never written from a worker
/// process). The runtime's own unit tests run without it, so that they do not depend
/// on what earlier runs left in the user's cache (the disk cache's tests use stores of
/// their own, in scratch directories).
pub(crate) fn store() -> &'static Store {
    #[cfg(not(test))]
    static STORE: std::sync::LazyLock<Store> = std::sync::LazyLock::new(Store::open);
    #[cfg(test)]
    static STORE: std::sync::LazyLock<Store> = std::sync::LazyLock::new(|| {
        let off = settings::Settings {
            location: settings::Location::Disabled,
            ttl: std::time::Duration::ZERO,
            complaints: Vec::new(),
        };
        Store::with_settings(off, 0, false)
    });
    &STORE
}

/// Deletes everything amorsize's disk cache holds, and returns how many files were
/// removed.
///
/// The cache keeps each call site's plan and the machine's calibration across runs,
/// so that a program's first call does not have to measure again. Entries are
/// dropped by themselves when the machine, the amorsize version or the executable
/// changes, and after 7 days; clear the cache to force fresh measurements sooner (a
/// benchmark that must start cold, a machine whose load changed for good).
///
/// It removes the files amorsize wrote (entries and leftover temporary files, by
/// their names) from the directory that `AMORSIZE_CACHE_DIR`, `XDG_CACHE_HOME` and
/// `HOME` designate, and nothing else, even with `AMORSIZE_CACHE=off`. A directory
/// that does not exist holds nothing: `Ok(0)`. Files that cannot be removed make it
/// return the first error, after trying all of them. Programs running at the same
/// time just miss the cache once and write it again.
///
/// From the shell, remove the directory:
///
/// ```sh
/// rm -rf "${AMORSIZE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/amorsize}"
/// ```
///
/// (`~/Library/Caches/amorsize` on macOS unless one of the variables is set.)
///
/// # Examples
///
/// ```
/// # use amorsize_runtime as amorsize;
/// # // Point the cache at a scratch directory, so the example leaves the real one alone.
/// # let dir = std::env::temp_dir().join(format!("amorsize-clear-doc-{}", std::process::id()));
/// # // SAFETY: no other thread of this example reads the environment.
/// # unsafe { std::env::set_var("AMORSIZE_CACHE_DIR", &dir) };
/// let removed = amorsize::clear_cache()?;
/// println!("removed {removed} cached entries");
/// # assert_eq!(removed, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn clear_cache() -> std::io::Result<usize> {
    clear_cache_in(&EnvValues::current(), Platform::current())
}

/// [`clear_cache`] for given environment values (pure apart from the removals).
pub(crate) fn clear_cache_in(env: &EnvValues, platform: Platform) -> std::io::Result<usize> {
    match settings::cache_dir(env, platform) {
        Ok(dir) => files::clear_dir(&dir),
        // No directory can be named, so amorsize cannot have written one.
        Err(_) => Ok(0),
    }
}
