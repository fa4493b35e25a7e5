//! [`Error`]: one item's failure, as a value.

use std::fmt;

/// What went wrong with one item.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The user's function panicked.
    Panic,
    /// The worker process running the item died.
    WorkerDied {
        /// Exit code, if it exited.
        code: Option<i32>,
        /// Signal number, if it was killed by one.
        signal: Option<i32>,
    },
    /// The item's input or output could not be serialized or deserialized.
    Serialize,
}

/// One item's failure: which item (its index in the input) and why.
///
/// Returned per item by [`catch_unwind`](crate::AutoIter::catch_unwind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    index: usize,
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn new(index: usize, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            index,
            kind,
            message: message.into(),
        }
    }

    /// A panic of the item at `index`, with the payload turned into text.
    pub(crate) fn from_panic(index: usize, payload: &(dyn std::any::Any + Send)) -> Error {
        Error::new(index, ErrorKind::Panic, panic_message(payload))
    }

    /// Position of the failed item in the input (counted from 0, after any adapters
    /// that come before `par_auto()`).
    pub fn index(&self) -> usize {
        self.index
    }

    /// What kind of failure.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The panic message, or a description of the failure.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Panic => write!(f, "item {} panicked: {}", self.index, self.message),
            ErrorKind::WorkerDied { code, signal } => {
                write!(f, "item {}: worker process died", self.index)?;
                if let Some(s) = signal {
                    write!(f, " (signal {s})")?;
                } else if let Some(c) = code {
                    write!(f, " (exit code {c})")?;
                }
                if !self.message.is_empty() {
                    write!(f, ": {}", self.message)?;
                }
                Ok(())
            }
            ErrorKind::Serialize => {
                write!(
                    f,
                    "item {}: serialization failed: {}",
                    self.index, self.message
                )
            }
        }
    }
}

impl std::error::Error for Error {}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}
