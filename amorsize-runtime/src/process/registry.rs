//! The task registry: one [`TaskEntry`] per function marked `#[amorsize::task]`,
//! collected at link time into the [`TASKS`] distributed slice (`linkme`, so a worker
//! sees every entry from its load-time constructor, before `main`).
//!
//! The parent finds a job's task by the `TypeId` of the function passed to `map` (a
//! function item's type is unique). The wire names it by its position in [`TASKS`]
//! ([`WireId`]): parent and worker are the same executable, so the slice is the same in
//! both, and the handshake's [`hash`] covers every entry in slice order. Module path,
//! name and signature are not unique (two `fn helper` nested in two functions of one
//! module, two same-spelled local types, two versions of one crate) and are only sent
//! along to be checked and to name the task in messages; `type_name` is never used.
//! Each entry carries type-erased encode and decode functions for its input and output
//! types; the casts back to concrete types happen in this file only, each after
//! comparing `TypeId`s.

use std::any::TypeId;
use std::fmt;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::OnceLock;

use rustc_hash::FxHashMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{self, CodecError};

/// Every registered task of this executable.
#[linkme::distributed_slice]
pub static TASKS: [TaskEntry];

/// Why a task could not run an item in the worker (the input did not decode, or the
/// output did not encode).
#[derive(Debug)]
pub struct TaskFailure(String);

impl TaskFailure {
    /// What a task whose types are not serde types would fail with (it never runs: its
    /// build fails first).
    pub(crate) fn not_a_task_type() -> TaskFailure {
        TaskFailure("the task's input or output is not a serde type".into())
    }
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One registered task: a named shim (decode input, call, encode output) plus what the
/// parent needs to encode inputs and decode outputs. Built by `#[amorsize::task]`.
pub struct TaskEntry {
    module: &'static str,
    name: &'static str,
    signature: &'static str,
    function: fn() -> TypeId,
    run: fn(&[u8], &mut Vec<u8>) -> Result<(), TaskFailure>,
    /// The typed functions, behind a function so that the entry itself names no type
    /// bound: a task whose types are not serde types fails to compile with one error
    /// (see `__private::TaskType`), not one per use of those types.
    fns: fn() -> TaskFns,
}

/// What the parent needs to check, encode and decode a task's input and output, with
/// the types erased.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct TaskFns {
    input: fn() -> TypeId,
    output: fn() -> TypeId,
    encode_input: unsafe fn(*const (), &mut Vec<u8>) -> Result<(), CodecError>,
    encode_output: unsafe fn(*const (), &mut Vec<u8>) -> Result<(), CodecError>,
    decode_output: unsafe fn(&[u8], *mut ()) -> Result<(), CodecError>,
    check_input: fn(&[u8]) -> Result<(), CodecError>,
}

impl fmt::Debug for TaskFns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TaskFns")
    }
}

impl TaskFns {
    /// The functions of a task from `In` to `Out`.
    #[doc(hidden)]
    pub fn of<In, Out>() -> TaskFns
    where
        In: Serialize + DeserializeOwned + 'static,
        Out: Serialize + DeserializeOwned + 'static,
    {
        TaskFns {
            input: TypeId::of::<In>,
            output: TypeId::of::<Out>,
            encode_input: encode_erased::<In>,
            encode_output: encode_erased::<Out>,
            decode_output: decode_erased::<Out>,
            check_input: check_erased::<In>,
        }
    }

    /// Functions that match no type, so none of them is ever called: what a task whose
    /// types are not serde types gets, next to the compile error that stops the build.
    #[doc(hidden)]
    pub fn none() -> TaskFns {
        /// A type no item has.
        enum Never {}
        fn never_encoded(_: *const (), _: &mut Vec<u8>) -> Result<(), CodecError> {
            Err(CodecError("not a task type".into()))
        }
        fn never_decoded(_: &[u8], _: *mut ()) -> Result<(), CodecError> {
            Err(CodecError("not a task type".into()))
        }
        fn never_checked(_: &[u8]) -> Result<(), CodecError> {
            Err(CodecError("not a task type".into()))
        }
        TaskFns {
            input: TypeId::of::<Never>,
            output: TypeId::of::<Never>,
            encode_input: never_encoded,
            encode_output: never_encoded,
            decode_output: never_decoded,
            check_input: never_checked,
        }
    }
}

impl fmt::Debug for TaskEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}: {}", self.module, self.name, self.signature)
    }
}

/// Encodes the `In` behind `p`.
///
/// # Safety
/// `p` must point to a live, valid `In`.
unsafe fn encode_erased<In: Serialize>(p: *const (), out: &mut Vec<u8>) -> Result<(), CodecError> {
    // SAFETY: the caller guarantees `p` points to a live `In`.
    let v = unsafe { &*p.cast::<In>() };
    codec::encode(v, out)
}

/// Decodes an `Out` into the uninitialised slot behind `p` (initialised only on `Ok`).
///
/// # Safety
/// `p` must be valid for a write of an `Out` and suitably aligned.
unsafe fn decode_erased<Out: DeserializeOwned>(bytes: &[u8], p: *mut ()) -> Result<(), CodecError> {
    let v: Out = codec::decode(bytes)?;
    // SAFETY: the caller guarantees `p` is valid and aligned for an `Out`.
    unsafe { p.cast::<Out>().write(v) };
    Ok(())
}

fn check_erased<In: DeserializeOwned>(bytes: &[u8]) -> Result<(), CodecError> {
    codec::decode::<In>(bytes).map(drop)
}

impl TaskEntry {
    /// An entry for a task. `function` returns the `TypeId` (through
    /// [`type_id_of_val`]) of the task's function item, `run` is its shim (see
    /// [`run_task`]), `fns` gives its typed functions ([`TaskFns::of`]).
    #[doc(hidden)]
    pub const fn new(
        module: &'static str,
        name: &'static str,
        signature: &'static str,
        function: fn() -> TypeId,
        run: fn(&[u8], &mut Vec<u8>) -> Result<(), TaskFailure>,
        fns: fn() -> TaskFns,
    ) -> TaskEntry {
        TaskEntry {
            module,
            name,
            signature,
            function,
            run,
            fns,
        }
    }

    /// The module path the task was defined in.
    pub(crate) fn module(&self) -> &'static str {
        self.module
    }

    /// The task's function name.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The task's signature as written, e.g. `fn(u64) -> u64`.
    pub(crate) fn signature(&self) -> &'static str {
        self.signature
    }

    /// Runs the task on one encoded input (in the worker), appending the encoded output.
    pub(crate) fn run(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), TaskFailure> {
        (self.run)(input, out)
    }

    /// Whether `T` (lifetimes erased) is this task's input type.
    fn is_input<T: ?Sized>(&self) -> bool {
        typeid::of::<T>() == ((self.fns)().input)()
    }

    /// Whether `R` (lifetimes erased) is this task's output type.
    fn is_output<R: ?Sized>(&self) -> bool {
        typeid::of::<R>() == ((self.fns)().output)()
    }

    /// Appends the encoding of an input item.
    pub(crate) fn encode_input<T>(&self, item: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        if !self.is_input::<T>() {
            return Err(mismatch(self, "input"));
        }
        // SAFETY: the TypeIds match, so `T` is the task's input type `In` up to
        // lifetimes. `In` is 'static (`TaskFns::of` requires it) and the macro rejects
        // references and lifetimes in a task's signature, so no other lifetime can
        // stand in it; and the parent only gets here for `map(f)` where `f`'s type is
        // the task's function item (`by_type`), which accepts exactly `In`: `T` is `In`.
        // `item` is a live reference for the whole call.
        unsafe { ((self.fns)().encode_input)((item as *const T).cast(), out) }
    }

    /// Appends the encoding of an output (only to measure the worker's cost).
    pub(crate) fn encode_output<R>(&self, value: &R, out: &mut Vec<u8>) -> Result<(), CodecError> {
        if !self.is_output::<R>() {
            return Err(mismatch(self, "output"));
        }
        // SAFETY: as in `encode_input`: `R` is the task's output type `Out`, and
        // `value` is live for the call.
        unsafe { ((self.fns)().encode_output)((value as *const R).cast(), out) }
    }

    /// Decodes an output item.
    pub(crate) fn decode_output<R>(&self, bytes: &[u8]) -> Result<R, CodecError> {
        if !self.is_output::<R>() {
            return Err(mismatch(self, "output"));
        }
        let mut slot = MaybeUninit::<R>::uninit();
        // SAFETY: `R` is the task's output type `Out` (TypeIds match, no lifetimes, see
        // `encode_input`), so the slot is valid and aligned for the `Out` written.
        unsafe { ((self.fns)().decode_output)(bytes, slot.as_mut_ptr().cast())? };
        // SAFETY: `decode_output` returned `Ok`, so it wrote a whole `Out` (= `R`).
        Ok(unsafe { slot.assume_init() })
    }

    /// Decodes an encoded input and drops it (to measure the worker's cost).
    pub(crate) fn check_input(&self, bytes: &[u8]) -> Result<(), CodecError> {
        ((self.fns)().check_input)(bytes)
    }

    /// The task's name on the wire: its position in [`TASKS`].
    pub(crate) fn wire_id(&'static self) -> WireId {
        // Every entry the parent holds came from `TASKS` (`by_type`), so it is found.
        let index = TASKS
            .iter()
            .position(|e| ptr::eq(e, self))
            .unwrap_or(usize::MAX);
        WireId(u32::try_from(index).unwrap_or(u32::MAX))
    }

    /// Whether this entry is the task for function type `F` taking `T` to `R`.
    pub(crate) fn matches<F: ?Sized, T, R>(&self) -> bool {
        typeid::of::<F>() == (self.function)() && self.is_input::<T>() && self.is_output::<R>()
    }
}

fn mismatch(task: &TaskEntry, what: &str) -> CodecError {
    CodecError(format!(
        "type mismatch for the {what} of task {task:?} (a bug in amorsize)"
    ))
}

/// The entry for function type `F` from `T` to `R`, if `F` is a registered task.
pub(crate) fn by_type<F: ?Sized, T, R>() -> Option<&'static TaskEntry> {
    let id = typeid::of::<F>();
    by_function()
        .get(&id)
        .copied()
        .filter(|e| e.matches::<F, T, R>())
}

/// Keyed with Fx rather than std's hasher: `TypeId`s are not chosen by an adversary,
/// and std's hasher reads random keys from the kernel on a thread's first map, a
/// system call on the first `par_auto` call of a process.
fn by_function() -> &'static FxHashMap<TypeId, &'static TaskEntry> {
    static MAP: OnceLock<FxHashMap<TypeId, &'static TaskEntry>> = OnceLock::new();
    MAP.get_or_init(|| TASKS.iter().map(|e| ((e.function)(), e)).collect())
}

/// A task's name on the wire: its index in [`TASKS`], unique within the executable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WireId(pub u32);

/// The entry at `id`, if this executable has one there with the key the parent sent
/// along (module path, name, signature). The key is not unique; the check only catches
/// a parent and worker that disagree about the slice, which the handshake already rules
/// out.
pub(crate) fn by_wire_id(
    id: WireId,
    module: &str,
    name: &str,
    signature: &str,
) -> Option<&'static TaskEntry> {
    TASKS
        .get(id.0 as usize)
        .filter(|e| (e.module, e.name, e.signature) == (module, name, signature))
}

/// A hash of every entry's key in slice order, the same in every process of this
/// executable and different in another build: the handshake compares the parent's and
/// the worker's (FNV-1a), so a [`WireId`] means the same task on both sides.
pub(crate) fn hash() -> u64 {
    static HASH: OnceLock<u64> = OnceLock::new();
    *HASH.get_or_init(|| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for e in TASKS.iter() {
            for part in [e.module, e.name, e.signature] {
                for b in part.bytes().chain([0xff]) {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
        }
        h
    })
}

/// The body of a task's shim: decodes the input, calls `f`, encodes the output.
#[doc(hidden)]
pub fn run_task<In, Out, F>(input: &[u8], out: &mut Vec<u8>, f: F) -> Result<(), TaskFailure>
where
    In: DeserializeOwned,
    Out: Serialize,
    F: FnOnce(In) -> Out,
{
    let x: In = codec::decode(input).map_err(|e| TaskFailure(format!("input: {e}")))?;
    let y = f(x);
    codec::encode(&y, out).map_err(|e| TaskFailure(format!("output: {e}")))
}

/// The `TypeId` of a value's type (lifetimes erased), as the registry keys functions.
#[doc(hidden)]
pub fn type_id_of_val<T: ?Sized>(_: &T) -> TypeId {
    typeid::of::<T>()
}

/// A task every executable has: returns its input. Used to time a chunk's round trip.
pub(crate) fn echo(x: u64) -> u64 {
    x
}

fn echo_type_id() -> TypeId {
    type_id_of_val(&echo)
}

fn echo_shim(input: &[u8], out: &mut Vec<u8>) -> Result<(), TaskFailure> {
    run_task(input, out, echo)
}

/// The registry entry of [`echo`].
#[linkme::distributed_slice(TASKS)]
pub(crate) static ECHO: TaskEntry = TaskEntry::new(
    module_path!(),
    "echo",
    "fn(u64) -> u64",
    echo_type_id,
    echo_shim,
    TaskFns::of::<u64, u64>,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_is_registered_and_typed() {
        // A function item's type is not nameable: look it up through a value.
        fn find<F: Fn(u64) -> u64, T, R>(_: &F) -> Option<&'static TaskEntry> {
            by_type::<F, T, R>()
        }
        let e = find::<_, u64, u64>(&echo).expect("echo is registered");
        assert!(find::<_, u32, u64>(&echo).is_none(), "input type checked");
        assert!(
            find::<_, u64, u64>(&|x: u64| x).is_none(),
            "closures are not tasks"
        );
        assert!(std::ptr::eq(
            e,
            by_wire_id(e.wire_id(), e.module(), "echo", "fn(u64) -> u64").unwrap()
        ));
        assert!(by_wire_id(e.wire_id(), e.module(), "echo", "fn(u32) -> u64").is_none());
        assert!(by_wire_id(WireId(u32::MAX), e.module(), "echo", "fn(u64) -> u64").is_none());
        let mut buf = Vec::new();
        e.encode_input(&41u64, &mut buf).unwrap();
        assert!(e.encode_input(&41u32, &mut Vec::new()).is_err());
        e.check_input(&buf).unwrap();
        let mut out = Vec::new();
        e.run(&buf, &mut out).unwrap();
        assert_eq!(e.decode_output::<u64>(&out).unwrap(), 41);
        assert!(e.decode_output::<i64>(&out).is_err());
        assert!(e.run(&buf[..3], &mut out).is_err());
        assert_eq!(hash(), hash());
    }
}
