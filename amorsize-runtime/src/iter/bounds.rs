//! Bounds on user closures, with compile errors that say what to do.
//!
//! Each trait is a named alias of `Fn(..) + Sync` (closure signatures are still
//! inferred through the supertrait). When a closure captures something that is not
//! `Sync`, the error shows the message below instead of a chain of auto-trait notes.
//! A closure that mutates what it captures (`FnMut`) is rejected by the borrow checker
//! before these traits are consulted; its error says the closure must be `Fn`.

/// A closure amorsize may call from several threads at once: `Fn(A) -> R + Sync`.
#[diagnostic::on_unimplemented(
    message = "amorsize cannot call this closure from several threads",
    label = "this closure must be `Fn` and capture only `Sync` values",
    note = "amorsize runs the closure on several threads at once, so it must not mutate captured state (`FnMut`) and everything it captures must be `Sync`",
    note = "share state through an atomic or a `Mutex`, or keep this pipeline serial: mark its statement `#[amorsize::serial]` inside `#[auto_parallel]`, or drop `.par_auto()`"
)]
pub trait ParFn<A, R>: Fn(A) -> R + Sync {}

#[diagnostic::do_not_recommend]
impl<F, A, R> ParFn<A, R> for F where F: Fn(A) -> R + Sync {}

/// A per-worker closure for `map_init`: `Fn(&mut S, A) -> R + Sync`.
#[diagnostic::on_unimplemented(
    message = "amorsize cannot call this closure from several threads",
    label = "this closure must be `Fn` and capture only `Sync` values",
    note = "amorsize runs the closure on several threads at once, so it must not mutate captured state (`FnMut`) and everything it captures must be `Sync`",
    note = "keep per-worker mutable state in `map_init`'s state argument, or mark the statement `#[amorsize::serial]`"
)]
pub trait ParFnMutState<S, A, R>: Fn(&mut S, A) -> R + Sync {}

#[diagnostic::do_not_recommend]
impl<F, S, A, R> ParFnMutState<S, A, R> for F where F: Fn(&mut S, A) -> R + Sync {}

/// A closure with no arguments, called once per worker: `Fn() -> S + Sync`.
#[diagnostic::on_unimplemented(
    message = "amorsize cannot call this initialiser from several threads",
    label = "this closure must be `Fn` and capture only `Sync` values",
    note = "each worker calls the initialiser once, possibly at the same time as the others"
)]
pub trait ParInit<S>: Fn() -> S + Sync {}

#[diagnostic::do_not_recommend]
impl<F, S> ParInit<S> for F where F: Fn() -> S + Sync {}

/// A fold step `Fn(A, T) -> A + Sync`, for `fold_reduce`.
#[diagnostic::on_unimplemented(
    message = "amorsize cannot call this fold from several threads",
    label = "this closure must be `Fn(acc, item) -> acc` and capture only `Sync` values",
    note = "each chunk is folded on its own thread, so the closure must not mutate captured state"
)]
pub trait ParFold<A, T>: Fn(A, T) -> A + Sync {}

#[diagnostic::do_not_recommend]
impl<F, A, T> ParFold<A, T> for F where F: Fn(A, T) -> A + Sync {}
