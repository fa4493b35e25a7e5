//! What went wrong with the disk cache, worded for a plan's fallbacks and for logs.
//!
//! The cache never fails a job: every problem means "worked without it". A problem
//! still names the file or directory and the cause, so that a user who wonders why
//! nothing is cached, or why a first call was slow, can find out.

use std::fmt;
use std::path::PathBuf;

use super::envelope::Invalid;

/// One problem with the disk cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    /// What it is about.
    pub about: About,
    /// Why.
    pub cause: Cause,
}

/// What a [`Problem`] is about, and so what was done about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum About {
    /// An entry that was read and ignored; `rewritten`: this process writes the cache,
    /// so the caller will replace it with a fresh entry.
    ReadEntry {
        /// The entry's file name (`plan-0123456789abcdef.bin`).
        file: String,
        /// Whether the caller rewrites it (the store is writable).
        rewritten: bool,
    },
    /// An entry that could not be written.
    WriteEntry {
        /// The entry's file name.
        file: String,
    },
    /// The cache directory: the cache works without it for now.
    Directory(PathBuf),
    /// No cache directory could be derived from the environment.
    NoDirectory,
    /// An environment variable that was ignored.
    Setting,
}

/// Why a [`Problem`] happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The file's bytes are not a valid entry.
    Invalid(Invalid),
    /// A valid entry measured on another machine (or another amorsize version).
    OtherMachine,
    /// A valid entry older than the time to live.
    Expired {
        /// Its age in seconds.
        age_secs: u64,
        /// The time to live in seconds.
        ttl_secs: u64,
    },
    /// A valid entry whose creation time lies ahead of this machine's clock.
    FromTheFuture {
        /// How far ahead, in seconds.
        ahead_secs: u64,
    },
    /// The entry kind is not a valid file-name part (a bug in the caller).
    BadKind,
    /// The value could not be encoded (or is too large).
    Encode(String),
    /// An I/O error, with what was being done (`cannot create`, `cannot read`, ...).
    Io {
        /// The operation that failed.
        doing: &'static str,
        /// The error, as text (I/O errors are not `Clone`).
        error: String,
    },
    /// The path exists but is not a directory.
    NotADirectory,
    /// A message that says everything itself (settings, no directory).
    Message(String),
}

impl Problem {
    /// Whether this is about the directory or the environment rather than one entry:
    /// such problems are reported once per process, not with every read or write.
    pub(crate) fn is_global(&self) -> bool {
        matches!(
            self.about,
            About::Directory(_) | About::NoDirectory | About::Setting
        )
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Invalid(why) => why.fmt(f),
            Cause::OtherMachine => f.write_str("measured on another machine or amorsize version"),
            Cause::Expired { age_secs, ttl_secs } => {
                write!(f, "expired ({age_secs} s old, time to live {ttl_secs} s)")
            }
            Cause::FromTheFuture { ahead_secs } => {
                write!(f, "created {ahead_secs} s in the future")
            }
            Cause::BadKind => f.write_str("invalid entry kind"),
            Cause::Encode(why) => write!(f, "cannot encode the value: {why}"),
            Cause::Io { doing, error } => write!(f, "{doing}: {error}"),
            Cause::NotADirectory => f.write_str("exists but is not a directory"),
            Cause::Message(m) => f.write_str(m),
        }
    }
}

impl fmt::Display for Problem {
    /// `plan-0123456789abcdef.bin: truncated (12 of 80 bytes), ignored and rewritten`;
    /// `disk cache directory /x/amorsize: exists but is not a directory; working
    /// without the disk cache`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cause = &self.cause;
        match &self.about {
            About::ReadEntry { file, rewritten } => {
                let done = if *rewritten {
                    "ignored and rewritten"
                } else {
                    "ignored"
                };
                write!(f, "disk cache entry {file}: {cause}, {done}")
            }
            About::WriteEntry { file } => {
                write!(f, "disk cache entry {file}: {cause}, not written")
            }
            About::Directory(dir) => write!(
                f,
                "disk cache directory {}: {cause}; working without the disk cache",
                dir.display()
            ),
            About::NoDirectory => {
                write!(f, "no disk cache directory ({cause}); working without it")
            }
            About::Setting => write!(f, "disk cache: {cause}"),
        }
    }
}
