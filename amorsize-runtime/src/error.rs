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
    /// The item ran on a worker process for longer than the job's
    /// [`item_timeout`](crate::AutoIter::item_timeout): its worker was killed.
    TimedOut {
        /// The limit it exceeded.
        limit: std::time::Duration,
    },
    /// The item was never run: the job is pinned to worker processes and none could
    /// be used (none could start, or their results differ from the caller's). The
    /// message says why.
    NotRun,
    /// The item's chunk went to cluster workers `deliveries` times without a result
    /// coming back (each worker died, or stalled past the broker's `ack_wait`).
    Lost {
        /// How many times the broker delivered the chunk.
        deliveries: u32,
    },
}

/// What a panic's payload was, so a panic carried from a worker process can be raised
/// again in the caller with the same type (`panic!("literal")` gives `&'static str`,
/// `panic!("{x}")` a `String`; other payload types arrive as their description in a
/// `String`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum PayloadKind {
    /// A `String`, or a payload of another type described in one.
    #[default]
    Owned,
    /// A `&'static str`.
    Static,
}

/// One item's failure: which item (its index in the input) and why.
///
/// Returned per item by [`catch_unwind`](crate::AutoIter::catch_unwind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    index: usize,
    kind: ErrorKind,
    message: String,
    payload: PayloadKind,
}

impl Error {
    pub(crate) fn new(index: usize, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            index,
            kind,
            message: message.into(),
            payload: PayloadKind::Owned,
        }
    }

    /// The same error, remembering what type the panic's payload had.
    pub(crate) fn with_payload(mut self, payload: PayloadKind) -> Error {
        self.payload = payload;
        self
    }

    /// Raises this error as a panic in the caller: a panic of the item with its
    /// message as payload (a `&'static str` if the item's was one), any other failure
    /// as a `String` naming the item and the cause.
    pub(crate) fn resume(self) -> ! {
        match (&self.kind, self.payload) {
            // A `&'static str` has to live forever: one message per panic that reaches
            // the caller, which ends the job, is leaked.
            (ErrorKind::Panic, PayloadKind::Static) => {
                let text: &'static str = Box::leak(self.message.into_boxed_str());
                std::panic::resume_unwind(Box::new(text))
            }
            // As a panic on a thread: the worker printed it; carry the message.
            (ErrorKind::Panic, PayloadKind::Owned) => {
                std::panic::resume_unwind(Box::new(self.message))
            }
            _ => std::panic::panic_any(format!("amorsize: {self}")),
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
            ErrorKind::TimedOut { limit } => write!(
                f,
                "item {}: ran longer than the item timeout ({limit:?}) on a worker process,                  which was killed{}{}",
                self.index,
                if self.message.is_empty() { "" } else { ": " },
                self.message
            ),
            ErrorKind::NotRun => write!(f, "item {} was not run: {}", self.index, self.message),
            ErrorKind::Lost { deliveries } => write!(
                f,
                "item {}: its chunk was delivered to cluster workers {deliveries} times and \
                 no result came back{}{}",
                self.index,
                if self.message.is_empty() { "" } else { ": " },
                self.message
            ),
        }
    }
}

impl std::error::Error for Error {}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    panic_text(payload).0
}

/// The text of a panic payload and what type it had.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> (String, PayloadKind) {
    if let Some(s) = payload.downcast_ref::<&str>() {
        ((*s).to_string(), PayloadKind::Static)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        (s.clone(), PayloadKind::Owned)
    } else {
        ("<non-string panic payload>".to_string(), PayloadKind::Owned)
    }
}
