//! The names of the files the cache writes, and the clean-ups: pruning and clearing.
//!
//! Only files whose names follow the scheme below are ever removed: the directory can
//! be anything the user points `AMORSIZE_CACHE_DIR` at, their home directory included.
//!
//! - entries: `{kind}-{key:016x}.bin`, `kind` of 1 to 32 lowercase ASCII letters,
//!   digits and `_` (`plan-00000000deadbeef.bin`);
//! - temporary files: `.{entry}.{pid}-{counter}-{nanos}.tmp`, hidden, and never
//!   matching the entry pattern, so a reader never opens a half-written file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Temporary files older than this were left by a process that died between writing
/// and renaming; younger ones may belong to a write in progress.
pub(crate) const STALE_TEMP_AGE: Duration = Duration::from_secs(60 * 60);

/// Most entries kept: beyond this, pruning removes the oldest. Bounds the directory
/// when many executables or call sites come and go within one time to live.
pub(crate) const MAX_ENTRIES: usize = 512;

/// Whether `kind` can be part of an entry's file name.
pub(crate) fn valid_kind(kind: &str) -> bool {
    (1..=32).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The file name of the entry `key` of `kind` (`kind` must be [`valid_kind`]).
pub(crate) fn entry_name(kind: &str, key: u64) -> String {
    format!("{kind}-{key:016x}.bin")
}

/// Whether `name` is an entry's file name.
pub(crate) fn is_entry_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".bin") else {
        return false;
    };
    let Some((kind, key)) = stem.rsplit_once('-') else {
        return false;
    };
    valid_kind(kind)
        && key.len() == 16
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A temporary file name for writing `entry`, unique among all processes and threads
/// writing the same directory: the process id, a per-process counter and the clock's
/// nanoseconds (the last one guards against a recycled pid of a dead process).
pub(crate) fn temp_name(entry: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(".{entry}.{}-{n}-{nanos}.tmp", std::process::id())
}

/// Whether `name` is one of our temporary file names.
pub(crate) fn is_temp_name(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let Some((entry, unique)) = inner.rsplit_once('.') else {
        return false;
    };
    is_entry_name(entry)
        && unique.split('-').count() == 3
        && unique
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// What a file in the directory is to us.
enum Ours {
    /// An entry.
    Entry,
    /// A temporary file.
    Temp,
    /// Somebody else's: never touched.
    No,
}

/// Classifies a directory entry by name (non-UTF-8 names are never ours).
fn classify(name: &std::ffi::OsStr) -> Ours {
    match name.to_str() {
        Some(n) if is_entry_name(n) => Ours::Entry,
        Some(n) if is_temp_name(n) => Ours::Temp,
        _ => Ours::No,
    }
}

/// Removes from `dir` the entries older than `ttl`, the temporary files older than
/// [`STALE_TEMP_AGE`], and then the oldest entries beyond `max_entries` (down to three
/// quarters of it, so that a full directory is not pruned again on the next write).
/// Ages come from the files' modification times (a `stat` each, not a read: the
/// rename keeps the temporary file's time, which is the entry's creation time).
/// Best effort: a file that vanishes or resists is skipped. Returns how many files
/// were removed.
pub(crate) fn prune(dir: &Path, ttl: Duration, now: SystemTime, max_entries: usize) -> usize {
    let Ok(listing) = fs::read_dir(dir) else {
        return 0;
    };
    let age = |meta: &fs::Metadata| {
        meta.modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or(Duration::ZERO)
    };
    let mut removed = 0;
    let mut kept: Vec<(Duration, PathBuf)> = Vec::new();
    for item in listing.flatten() {
        let ours = classify(&item.file_name());
        if matches!(ours, Ours::No) {
            continue;
        }
        let Ok(meta) = item.metadata() else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let path = item.path();
        let age = age(&meta);
        let stale = match ours {
            Ours::Entry => age >= ttl,
            Ours::Temp => age >= STALE_TEMP_AGE,
            Ours::No => false,
        };
        if stale {
            removed += usize::from(fs::remove_file(&path).is_ok());
        } else if matches!(ours, Ours::Entry) {
            kept.push((age, path));
        }
    }
    if kept.len() > max_entries {
        // Oldest first.
        kept.sort_by_key(|(age, _)| std::cmp::Reverse(*age));
        let excess = kept.len() - max_entries * 3 / 4;
        for (_, path) in kept.into_iter().take(excess) {
            removed += usize::from(fs::remove_file(&path).is_ok());
        }
    }
    removed
}

/// Removes every entry and temporary file of ours from `dir`; returns how many files
/// were removed. A missing directory holds nothing (`Ok(0)`). Tries every file, then
/// returns the first error if there was one.
pub(crate) fn clear_dir(dir: &Path) -> io::Result<usize> {
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    let mut first_error = None;
    for item in listing {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        if matches!(classify(&item.file_name()), Ours::No) {
            continue;
        }
        match fs::remove_file(item.path()) {
            Ok(()) => removed += 1,
            // Removed meanwhile by another process (pruning, clearing): fine.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        None => Ok(removed),
        Some(e) => Err(e),
    }
}
