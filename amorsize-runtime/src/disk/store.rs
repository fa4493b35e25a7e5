//! The store: typed reads and atomic writes of entries in the cache directory.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::envelope::{self, HEADER_LEN, Header, Invalid, MAX_PAYLOAD};
use super::files;
use super::fingerprint::Fingerprint;
use super::problem::{About, Cause, Problem};
use super::settings::{self, Location, Settings};

/// Successful writes between two prunings (the first write of a process prunes too,
/// so that programs that write once per run still keep the directory tidy).
const PRUNE_EVERY: u64 = 32;

/// Clock skew tolerated before an entry's creation time counts as "in the future"
/// (a directory shared between machines whose clocks differ a little).
const FUTURE_SLACK_SECS: u64 = 300;

/// The outcome of a read.
#[derive(Debug, PartialEq)]
pub(crate) enum Read<T> {
    /// A valid entry, for this machine, within its time to live.
    Hit(T),
    /// No entry; or the cache is off, or its directory is unusable (see
    /// [`Store::take_reports`]). Nothing to say about it per entry.
    Miss,
    /// An entry exists but cannot be used; the caller should make a fresh value and
    /// write it, which replaces the file. The problem names the file and the cause.
    Problem(Problem),
}

/// The disk cache's storage: one file per entry in one directory.
///
/// Built to live in a `static` (it is `Sync`, and opening it costs nothing): the
/// environment is read and the machine fingerprint computed on first use, and
/// directory problems are remembered so that [`take_reports`](Store::take_reports)
/// says each once per store, i.e. once per process for the process-wide store.
#[derive(Debug)]
pub(crate) struct Store {
    /// Directory, on/off and time to live: given, or read from the environment on
    /// first use.
    settings: OnceLock<Settings>,
    /// Hash of the machine fingerprint: given (tests), or computed on first use.
    fingerprint: OnceLock<u64>,
    /// Whether this process writes (worker processes never do).
    writable: bool,
    /// The directory is known to exist: skips `create_dir_all` on later writes.
    dir_ready: AtomicBool,
    /// Successful writes so far (paces pruning).
    writes: AtomicU64,
    /// The first problem with the directory or the settings' location.
    global_problem: OnceLock<Problem>,
    /// The environment's complaints were handed out by `take_reports`.
    settings_reported: AtomicBool,
    /// `global_problem` was handed out by `take_reports`.
    global_reported: AtomicBool,
}

impl Store {
    /// The process's store: settings from the environment, written unless this is a
    /// worker process. Never fails and touches nothing until used.
    // Unused by the runtime's own unit tests, which run without a disk cache.
    #[cfg_attr(test, allow(dead_code))]
    pub(crate) fn open() -> Store {
        Store::open_with(!crate::context::is_worker_process())
    }

    /// Like [`open`](Store::open), with the caller deciding whether this process
    /// writes.
    // Unused by the runtime's own unit tests, which run without a disk cache.
    #[cfg_attr(test, allow(dead_code))]
    pub(crate) fn open_with(writable: bool) -> Store {
        Store::new(OnceLock::new(), OnceLock::new(), writable)
    }

    /// A store with explicit settings and fingerprint hash, reading nothing from the
    /// environment or the machine: for tests (a temporary directory, a fake machine,
    /// a short time to live) and for tools that manage a cache directory themselves.
    #[cfg(test)]
    pub(crate) fn with_settings(settings: Settings, fingerprint: u64, writable: bool) -> Store {
        Store::new(
            OnceLock::from(settings),
            OnceLock::from(fingerprint),
            writable,
        )
    }

    /// A store of the directory `dir` (see [`with_settings`](Store::with_settings)).
    #[cfg(test)]
    pub(crate) fn in_dir(
        dir: PathBuf,
        ttl: std::time::Duration,
        fingerprint: u64,
        writable: bool,
    ) -> Store {
        let settings = Settings {
            location: Location::Dir(dir),
            ttl,
            complaints: Vec::new(),
        };
        Store::with_settings(settings, fingerprint, writable)
    }

    /// The common constructor.
    fn new(settings: OnceLock<Settings>, fingerprint: OnceLock<u64>, writable: bool) -> Store {
        Store {
            settings,
            fingerprint,
            writable,
            dir_ready: AtomicBool::new(false),
            writes: AtomicU64::new(0),
            global_problem: OnceLock::new(),
            settings_reported: AtomicBool::new(false),
            global_reported: AtomicBool::new(false),
        }
    }

    /// The settings, read from the environment on first use.
    fn settings(&self) -> &Settings {
        self.settings.get_or_init(settings::from_env)
    }

    /// The machine fingerprint's hash, computed on first use.
    fn fingerprint(&self) -> u64 {
        *self
            .fingerprint
            .get_or_init(|| Fingerprint::current().stable_hash())
    }

    /// Does now what the first read or write would do anyway: reads the environment
    /// and computes the machine fingerprint (about 80-140 us on Linux, mostly
    /// `/proc/cpuinfo` and `available_parallelism`). Callers that must not pay that on
    /// a job's path call this from a background thread early on.
    #[cfg(test)]
    pub(crate) fn warm(&self) {
        if self.enabled() {
            self.fingerprint();
        }
    }

    /// Whether the cache is on (`AMORSIZE_CACHE` is not `off`) and has a directory.
    /// Lets callers skip building keys and values when nothing would be stored.
    pub(crate) fn enabled(&self) -> bool {
        matches!(self.settings().location, Location::Dir(_))
    }

    /// Whether this store writes entries (not in a worker process, and not off).
    #[cfg(test)]
    pub(crate) fn writable(&self) -> bool {
        self.writable && self.enabled()
    }

    /// The directory, `Ok(None)` when the cache is off, or the (recorded) problem of
    /// having none.
    fn dir(&self) -> Result<Option<&Path>, Problem> {
        match &self.settings().location {
            Location::Dir(dir) => Ok(Some(dir)),
            Location::Disabled => Ok(None),
            Location::Nowhere(why) => Err(self.note_global(Problem {
                about: About::NoDirectory,
                cause: Cause::Message((*why).to_owned()),
            })),
        }
    }

    /// Remembers the first directory-wide problem for `take_reports`; returns it.
    fn note_global(&self, problem: Problem) -> Problem {
        let _ = self.global_problem.set(problem.clone());
        problem
    }

    /// The first problem with the cache directory (or with having one), if any.
    #[cfg(test)]
    pub(crate) fn directory_problem(&self) -> Option<&Problem> {
        self.global_problem.get()
    }

    /// Problems to tell the user about once: the environment variables that were
    /// ignored (on the first call), and the first directory problem (on the first
    /// call after it happened). Later calls return only what is new, usually nothing.
    pub(crate) fn take_reports(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if !self.settings_reported.swap(true, Ordering::AcqRel) {
            out.extend(self.settings().complaints.iter().map(|c| Problem {
                about: About::Setting,
                cause: Cause::Message(c.clone()),
            }));
        }
        if let Some(problem) = self.global_problem.get()
            && !self.global_reported.swap(true, Ordering::AcqRel)
        {
            out.push(problem.clone());
        }
        out
    }

    /// Reads the entry `key` of `kind` (`kind`: 1 to 32 of `[a-z0-9_]`, e.g. `plan`,
    /// `calib`). Never fails: an unusable entry is a [`Read::Problem`], an unusable
    /// directory a [`Read::Miss`] (and a report for [`take_reports`](Store::take_reports)).
    pub(crate) fn read<T: DeserializeOwned>(&self, kind: &str, key: u64) -> Read<T> {
        self.read_unless_machine_free(kind, key, |_| false)
    }

    /// [`read`](Store::read), but an entry for which `machine_free` says that it holds
    /// whatever the machine is (a call site's input that ended inside the sample, read
    /// for a call no longer than that) is used without computing this machine's
    /// fingerprint: a few system calls less on a tiny first call's path.
    pub(crate) fn read_unless_machine_free<T: DeserializeOwned>(
        &self,
        kind: &str,
        key: u64,
        machine_free: impl FnOnce(&T) -> bool,
    ) -> Read<T> {
        let dir = match self.dir() {
            Ok(Some(dir)) => dir,
            Ok(None) | Err(_) => return Read::Miss,
        };
        let file = files::entry_name(kind, key);
        let problem = |cause| {
            Read::Problem(Problem {
                about: About::ReadEntry {
                    file: file.clone(),
                    rewritten: self.writable,
                },
                cause,
            })
        };
        if !files::valid_kind(kind) {
            return problem(Cause::BadKind);
        }
        let bytes = match read_bounded(&dir.join(&file)) {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(invalid)) => return problem(Cause::Invalid(invalid)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Read::Miss,
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                self.note_global(Problem {
                    about: About::Directory(dir.to_owned()),
                    cause: Cause::NotADirectory,
                });
                return Read::Miss;
            }
            Err(e) => {
                return problem(Cause::Io {
                    doing: "cannot read",
                    error: e.to_string(),
                });
            }
        };
        let (header, payload) = match envelope::open(&bytes) {
            Ok(opened) => opened,
            Err(invalid) => return problem(Cause::Invalid(invalid)),
        };
        if header.key != key {
            return problem(Cause::Invalid(Invalid::Corrupt(format!(
                "holds key {:016x}",
                header.key
            ))));
        }
        let now = now_unix();
        if header.created > now.saturating_add(FUTURE_SLACK_SECS) {
            return problem(Cause::FromTheFuture {
                ahead_secs: header.created - now,
            });
        }
        let age_secs = now.saturating_sub(header.created);
        let ttl_secs = self.settings().ttl.as_secs();
        if age_secs >= ttl_secs {
            return problem(Cause::Expired { age_secs, ttl_secs });
        }
        let value = match envelope::decode(payload) {
            Ok(value) => value,
            Err(invalid) => return problem(Cause::Invalid(invalid)),
        };
        if !machine_free(&value) && header.fingerprint != self.fingerprint() {
            return problem(Cause::OtherMachine);
        }
        Read::Hit(value)
    }

    /// Writes `value` as the entry `key` of `kind`, atomically: readers (in any
    /// process) see the old entry or the new one, never a mix, and of several
    /// processes writing the same key at once one wins whole.
    ///
    /// Does nothing (`Ok`) when the cache is off or this process does not write
    /// (worker processes). A problem with the directory (not a directory, read-only,
    /// cannot be created) is returned on every write but is [`Problem::is_global`]:
    /// callers should say it once, through [`take_reports`](Store::take_reports).
    /// Every [`PRUNE_EVERY`] writes (and on the first), prunes the directory: that
    /// costs one `stat` per file in it.
    pub(crate) fn write<T: Serialize + ?Sized>(
        &self,
        kind: &str,
        key: u64,
        value: &T,
    ) -> Result<(), Problem> {
        self.write_created(kind, key, value, now_unix())
    }

    /// [`write`](Store::write) with the creation time given (unix seconds): tests
    /// write entries that are already old.
    pub(crate) fn write_created<T: Serialize + ?Sized>(
        &self,
        kind: &str,
        key: u64,
        value: &T,
        created: u64,
    ) -> Result<(), Problem> {
        if !self.writable {
            return Ok(());
        }
        let Some(dir) = self.dir()? else {
            return Ok(());
        };
        let file = files::entry_name(kind, key);
        let entry_problem = |cause| Problem {
            about: About::WriteEntry { file: file.clone() },
            cause,
        };
        if !files::valid_kind(kind) {
            return Err(entry_problem(Cause::BadKind));
        }
        let header = Header {
            fingerprint: self.fingerprint(),
            created,
            key,
        };
        let bytes = envelope::encode(header, value).map_err(|e| entry_problem(Cause::Encode(e)))?;
        let (temp, mut out) = self.create_temp(dir, &file)?;
        let written = out.write_all(&bytes).and_then(|()| {
            drop(out);
            fs::rename(&temp, dir.join(&file))
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(entry_problem(Cause::Io {
                doing: "cannot write",
                error: e.to_string(),
            }));
        }
        if self
            .writes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY)
        {
            files::prune(
                dir,
                self.settings().ttl,
                SystemTime::now(),
                files::MAX_ENTRIES,
            );
        }
        Ok(())
    }

    /// Creates a fresh temporary file in `dir` for writing `entry`, creating the
    /// directory first if needed. Problems here are the directory's.
    fn create_temp(&self, dir: &Path, entry: &str) -> Result<(PathBuf, fs::File), Problem> {
        let dir_problem = |cause| {
            self.note_global(Problem {
                about: About::Directory(dir.to_owned()),
                cause,
            })
        };
        // Attempts: a vanished directory (cleared by hand meanwhile) is created again
        // once; a name clash (impossible short of a clock and pid coincidence) retried.
        let mut last_error = None;
        for _ in 0..3 {
            if !self.dir_ready.load(Ordering::Relaxed) {
                if let Err(e) = fs::create_dir_all(dir) {
                    let cause = if e.kind() == io::ErrorKind::NotADirectory
                        || (dir.exists() && !dir.is_dir())
                    {
                        Cause::NotADirectory
                    } else {
                        Cause::Io {
                            doing: "cannot create it",
                            error: e.to_string(),
                        }
                    };
                    return Err(dir_problem(cause));
                }
                self.dir_ready.store(true, Ordering::Relaxed);
            }
            let temp = dir.join(files::temp_name(entry));
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)
            {
                Ok(out) => return Ok((temp, out)),
                Err(e) => {
                    let retry = match e.kind() {
                        io::ErrorKind::NotFound => {
                            self.dir_ready.store(false, Ordering::Relaxed);
                            true
                        }
                        io::ErrorKind::AlreadyExists => true,
                        _ => false,
                    };
                    last_error = Some(e);
                    if !retry {
                        break;
                    }
                }
            }
        }
        let error = last_error.map_or_else(|| "unknown error".to_owned(), |e| e.to_string());
        Err(dir_problem(Cause::Io {
            doing: "cannot create files in it",
            error,
        }))
    }
}

/// Reads a whole entry file, refusing (as corrupt) one too large to be an entry
/// without reading it: `Err` is an I/O error, `Ok(Err)` an invalid file.
fn read_bounded(path: &Path) -> io::Result<Result<Vec<u8>, Invalid>> {
    let file = fs::File::open(path)?;
    let limit = (HEADER_LEN + MAX_PAYLOAD) as u64;
    // Without asking for the size first (a system call on a first call's path): at
    // most one byte more than any entry is read, so an oversized file is told apart.
    let mut bytes = Vec::with_capacity(4096);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Ok(Err(Invalid::Corrupt(format!(
            "more than {limit} bytes, larger than any entry"
        ))));
    }
    Ok(Ok(bytes))
}

/// Now, in unix seconds (0 if the clock is before 1970).
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
