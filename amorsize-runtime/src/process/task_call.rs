//! [`TaskCall`]: a job's registered task, as the parent uses it.

use std::fmt;
use std::marker::PhantomData;
use std::time::Instant;

use super::codec::CodecError;
use super::registry::{self, TaskEntry};
use crate::error::{Error, ErrorKind};

/// What became of one item sent to a worker, before it is turned into the stage's
/// output.
#[derive(Debug)]
pub(crate) enum Reply<'a> {
    /// The encoded output.
    Output(&'a [u8]),
    /// The item failed: the task panicked, the worker died, or (de)serialization failed.
    Failed(Error),
}

/// The registered task a whole stage applies per item, so the stage can run on worker
/// processes: `map(task)` on a fresh `par_auto()`, optionally followed by
/// `catch_unwind()`. `T` is the input item, `O` the stage's output.
///
/// Obtained from [`Stage::task_call`](crate::plumbing::Stage::task_call); not constructible
/// outside amorsize.
pub struct TaskCall<T, O> {
    task: &'static TaskEntry,
    catching: bool,
    finish: fn(&'static TaskEntry, usize, Reply<'_>) -> Result<O, Error>,
    output: fn(&'static TaskEntry, &[O]) -> Option<WireCost>,
    encode_output: EncodeOutput<O>,
    _types: PhantomData<fn(&T) -> O>,
}

impl<T, O> fmt::Debug for TaskCall<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskCall")
            .field("task", self.task)
            .field("catching", &self.catching)
            .finish()
    }
}

/// Appends an output's encoding; `None` for a value that has none (an error).
type EncodeOutput<O> = fn(&'static TaskEntry, &O, &mut Vec<u8>) -> Option<Result<(), CodecError>>;

fn finish_plain<R>(task: &'static TaskEntry, index: usize, reply: Reply<'_>) -> Result<R, Error> {
    match reply {
        Reply::Output(bytes) => task.decode_output(bytes).map_err(|e| serialize(index, e)),
        Reply::Failed(e) => Err(e),
    }
}

fn finish_catching<R>(
    task: &'static TaskEntry,
    index: usize,
    reply: Reply<'_>,
) -> Result<Result<R, Error>, Error> {
    Ok(finish_plain(task, index, reply))
}

/// What encoding and decoding some values cost, per value.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct WireCost {
    /// Values measured.
    pub values: usize,
    /// Mean encoded size in bytes.
    pub bytes: f64,
    /// Mean seconds to encode one.
    pub encode_secs: f64,
    /// Mean seconds to decode one.
    pub decode_secs: f64,
}

/// Stop measuring encodings once this much time went into it.
pub(crate) const WIRE_BUDGET_SECS: f64 = 2e-3;

/// Times encoding `values`, then decoding them, in doubling batches (1, 2, 4, ...) with
/// one clock read per batch, so tiny values are measured without the clock's cost and
/// big ones stop after [`WIRE_BUDGET_SECS`]. Values that fail to encode are left out;
/// `None` if none encoded.
pub(crate) fn time_batch<'v, V: 'v>(
    values: impl Iterator<Item = &'v V>,
    encode: impl Fn(&V, &mut Vec<u8>) -> Result<(), CodecError>,
    decode: impl Fn(&[u8]) -> Result<(), CodecError>,
) -> Option<WireCost> {
    let mut values = values.peekable();
    let (mut n, mut bytes, mut enc, mut dec) = (0usize, 0usize, 0.0f64, 0.0f64);
    let mut batch = 1;
    let mut bufs: Vec<Vec<u8>> = Vec::new();
    while values.peek().is_some() && enc + dec < WIRE_BUDGET_SECS {
        bufs.clear();
        let t = Instant::now();
        for v in values.by_ref().take(batch) {
            let mut b = Vec::new();
            if encode(v, &mut b).is_ok() {
                bufs.push(b);
            }
        }
        enc += t.elapsed().as_secs_f64();
        let t = Instant::now();
        for b in &bufs {
            let _ = decode(b);
        }
        dec += t.elapsed().as_secs_f64();
        n += bufs.len();
        bytes += bufs.iter().map(Vec::len).sum::<usize>();
        batch *= 2;
    }
    (n > 0).then(|| WireCost {
        values: n,
        bytes: bytes as f64 / n as f64,
        encode_secs: enc / n as f64,
        decode_secs: dec / n as f64,
    })
}

fn output_plain<R>(task: &'static TaskEntry, values: &[R]) -> Option<WireCost> {
    time_batch(
        values.iter(),
        |v, out| task.encode_output(v, out),
        |b| task.decode_output::<R>(b).map(drop),
    )
}

fn output_catching<R>(task: &'static TaskEntry, values: &[Result<R, Error>]) -> Option<WireCost> {
    time_batch(
        values.iter().filter_map(|v| v.as_ref().ok()),
        |v, out| task.encode_output(v, out),
        |b| task.decode_output::<R>(b).map(drop),
    )
}

fn encode_plain<R>(
    task: &'static TaskEntry,
    value: &R,
    out: &mut Vec<u8>,
) -> Option<Result<(), CodecError>> {
    Some(task.encode_output(value, out))
}

fn encode_catching<R>(
    task: &'static TaskEntry,
    value: &Result<R, Error>,
    out: &mut Vec<u8>,
) -> Option<Result<(), CodecError>> {
    value.as_ref().ok().map(|v| task.encode_output(v, out))
}

/// The serialization error of item `index`.
pub(crate) fn serialize(index: usize, e: CodecError) -> Error {
    Error::new(index, ErrorKind::Serialize, e.0)
}

impl<T, R> TaskCall<T, R> {
    /// The remote form of `map(f)` with `f: F` on items `T`, if `F` is a registered task
    /// from `T` to `R`.
    pub(crate) fn for_function<F>() -> Option<Self> {
        let task = registry::by_type::<F, T, R>()?;
        Some(TaskCall {
            task,
            catching: false,
            finish: finish_plain::<R>,
            output: output_plain::<R>,
            encode_output: encode_plain::<R>,
            _types: PhantomData,
        })
    }

    /// The same task under `catch_unwind()`: failures become the item's `Err`. `None`
    /// if it already catches (a second `catch_unwind()` is not run remotely).
    pub(crate) fn catching(self) -> Option<TaskCall<T, Result<R, Error>>> {
        (!self.catching).then_some(TaskCall {
            task: self.task,
            catching: true,
            finish: finish_catching::<R>,
            output: output_catching::<R>,
            encode_output: encode_catching::<R>,
            _types: PhantomData,
        })
    }
}

impl<T, O> TaskCall<T, O> {
    /// The registry entry.
    pub(crate) fn task(&self) -> &'static TaskEntry {
        self.task
    }

    /// Appends the encoding of an input item.
    pub(crate) fn encode(&self, item: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.task.encode_input(item, out)
    }

    /// Turns a reply for item `index` into its output; `Err` means the failure
    /// propagates (no `catch_unwind()`).
    pub(crate) fn finish(&self, index: usize, reply: Reply<'_>) -> Result<O, Error> {
        (self.finish)(self.task, index, reply)
    }

    /// The encoding of an output as a worker would send it; `None` for an error value
    /// (under `catch_unwind()`), which has no encoding.
    pub(crate) fn encode_output(&self, value: &O) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        match (self.encode_output)(self.task, value, &mut out)? {
            Ok(()) => Some(out),
            Err(_) => None,
        }
    }

    /// What encoding `items` (in the parent) and decoding them (in a worker) costs.
    pub(crate) fn input_cost<'v>(&self, items: impl Iterator<Item = &'v T>) -> Option<WireCost>
    where
        T: 'v,
    {
        time_batch(
            items,
            |v, out| self.task.encode_input(v, out),
            |b| self.task.check_input(b),
        )
    }

    /// What encoding `outputs` (in a worker) and decoding them (in the parent) costs;
    /// error values (under `catch_unwind()`) are left out.
    pub(crate) fn output_cost(&self, outputs: &[O]) -> Option<WireCost> {
        (self.output)(self.task, outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::{AutoIter, Stage};
    use crate::process::registry::echo;

    fn auto() -> AutoIter<std::ops::Range<u64>, crate::iter::Identity<u64>> {
        AutoIter::new(0..3u64, std::panic::Location::caller())
    }

    #[test]
    #[allow(
        clippy::redundant_closure,
        reason = "a closure calling a task is not the task"
    )]
    fn only_a_registered_task_on_a_fresh_par_auto_is_remote() {
        assert!(auto().map(echo).stage.task_call().is_some());
        assert!(auto().map(echo).catch_unwind().stage.task_call().is_some());
        assert!(
            auto().map(|x| echo(x)).stage.task_call().is_none(),
            "a closure"
        );
        assert!(auto().map(echo).map(echo).stage.task_call().is_none());
        assert!(
            auto()
                .filter(|_| true)
                .map(echo)
                .stage
                .task_call()
                .is_none()
        );
        assert!(auto().inspect(|_| ()).map(echo).stage.task_call().is_none());
        let twice = auto().map(echo).catch_unwind().catch_unwind();
        assert!(twice.stage.task_call().is_none());
        let m = auto().map_init(|| (), |_, x| echo(x));
        assert!(m.stage.task_call().is_none());
    }

    #[test]
    fn replies_become_outputs_or_errors() {
        let plain = auto().map(echo).stage.task_call().expect("remote");
        let mut buf = Vec::new();
        plain.encode(&9, &mut buf).expect("encodes");
        assert_eq!(plain.finish(0, Reply::Output(&buf)), Ok(9));
        let err = Error::new(4, ErrorKind::Panic, "p");
        assert_eq!(
            plain.finish(4, Reply::Failed(err.clone())),
            Err(err.clone())
        );
        let bad = plain
            .finish(2, Reply::Output(&buf[..3]))
            .expect_err("truncated");
        assert_eq!((bad.index(), bad.kind()), (2, &ErrorKind::Serialize));

        let catching = auto()
            .map(echo)
            .catch_unwind()
            .stage
            .task_call()
            .expect("remote");
        assert_eq!(catching.finish(0, Reply::Output(&buf)), Ok(Ok(9)));
        assert_eq!(catching.finish(4, Reply::Failed(err.clone())), Ok(Err(err)));
        let cost = catching
            .output_cost(&[Ok(1), Err(Error::new(1, ErrorKind::Panic, "")), Ok(3)])
            .expect("two values");
        assert_eq!((cost.values, cost.bytes), (2, 8.0));
        let cost = plain.input_cost([1u64, 2, 3, 4].iter()).expect("measured");
        assert_eq!((cost.values, cost.bytes), (4, 8.0));
    }

    #[test]
    fn the_exclusion_reason_says_how_to_enable_processes() {
        let why = crate::process::unavailable(false, "u64").expect("excluded");
        assert!(why.contains("#[amorsize::task]"), "{why}");
        assert!(why.contains(".map("), "{why}");
        assert_eq!(crate::process::unavailable(true, "u64"), None);
        // Borrowed items can never go to a process: the reason says what would help.
        let why = crate::process::unavailable(false, "&std::path::PathBuf").expect("excluded");
        assert!(why.contains("borrowed"), "{why}");
        assert!(why.contains("into_iter()"), "{why}");
    }
}
