//! Procedural macros of [amorsize](https://docs.rs/amorsize): `#[auto_parallel]` and
//! `#[amorsize::serial]`. Use them through the `amorsize` facade crate, whose
//! `::amorsize::__private` paths the expansions call.
//!
//! Each entry point below is one line; the work is done on `proc_macro2` in the
//! modules, so that it can be tested outside the compiler. For `#[auto_parallel]`, one
//! module per phase, each using only the ones after it:
//!
//! - `auto_parallel`: the order of the phases, and the fallback on errors;
//! - `args` (the attribute's arguments) and `model` (the annotated function): parsing
//!   and checks;
//! - `rewrite`: the visitor that replaces the pipelines of the body, with `pipeline`
//!   (which method chains are pipelines) and `serial_marker` (the statement marker and
//!   the pass that removes it);
//! - `codegen`: the generated code.
//!
//! `task` is `#[amorsize::task]` whole; `errors` collects the errors of one expansion.

mod args;
mod auto_parallel;
mod codegen;
mod errors;
mod model;
mod pipeline;
mod rewrite;
mod serial_marker;
mod task;
#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Rewrites the iterator pipelines of a function so that amorsize decides, by
/// measuring at run time, whether to run their closures in parallel, on what, with how
/// many workers and what chunk size; then runs them that way. Results are the same as
/// without the attribute: every item is processed exactly once and results reach the
/// consumer in input order.
///
/// ```
/// use amorsize::prelude::*;
///
/// #[auto_parallel]
/// fn lengths(words: &[String]) -> Vec<usize> {
///     words.iter().map(|w| w.chars().count()).collect()
/// }
///
/// let words = vec!["käse".to_string(), "bread".to_string()];
/// assert_eq!(lengths(&words), [4, 5]);
/// ```
///
/// # What it does
///
/// Without the attribute, the function above is, in effect:
///
/// ```
/// use amorsize::prelude::*;
///
/// fn lengths(words: &[String]) -> Vec<usize> {
///     words.iter().par_auto().map(|w| w.chars().count()).collect()
/// }
/// # assert_eq!(lengths(&["ab".to_string()]), [2]);
/// ```
///
/// Precisely, each pipeline it rewrites becomes (simplified; see the expansion
/// snapshots in `amorsize-macros/tests/snapshots/`):
///
/// ```text
/// if ::amorsize::__private::SERIAL_BUILD {
///     words.iter().map(|w| w.chars().count()).collect()        // as written
/// } else {
///     static __AMORSIZE_CFG: Config = Config { function: "my_crate::lengths", .. };
///     (&Wrap::new(words.iter()))                                // the source, as written
///         .__amorsize_par(&__AMORSIZE_CFG)                      // = .par_auto() + settings
///         .map(|w| w.chars().count())                           // on amorsize's AutoIter
///         .collect()
/// }
/// ```
///
/// `__amorsize_par` is `par_auto()` when the source is an iterator whose items are
/// `Send`, and otherwise the source itself, unchanged (autoref specialization, decided
/// by the type checker): a generic function without `T: Send` still compiles and runs
/// as written, and so does a chain that only looks like a pipeline.
///
/// # Which pipelines are rewritten
///
/// A *pipeline* is a method chain `SOURCE.adapter(..)….consumer(..)`. The attribute
/// looks at the syntax only (a macro sees no types), and rewrites a chain when:
///
/// 1. it ends in a consumer that amorsize's `AutoIter` has with the same name and
///    meaning as `std::iter::Iterator`: `collect`, `sum`, `product`, `count`, `min`,
///    `max`, `min_by_key`, `max_by_key`, `reduce`, `for_each`, `any`, `all`,
///    `find_map`, `position`;
/// 2. between the *first method that takes a closure* and the consumer there are only
///    adapters `AutoIter` has with std's name and meaning: `map`, `filter`,
///    `filter_map`, `inspect`. `par_auto()` goes right before that first closure. If
///    there is no adapter, the consumer itself must take a closure that can run in
///    parallel (`for_each`, `any`, …; not `reduce`, which folds on the caller's thread);
/// 3. the source (everything before that point: `iter()`, `into_iter()`, ranges,
///    `lines()`, `chars()`, `enumerate()`, `zip()`, `take()`, `copied()`, …) calls no
///    method that takes a closure since the chain's previous consumer, hands out no
///    `&mut` items (`iter_mut()`, `values_mut()`, any `…_mut()`), and is not already
///    parallel (`par_auto()`, rayon's `par_*`/`into_par_*`). The source stays as
///    written and is pulled serially on the caller's thread.
///
/// Anything else is left exactly as written; nothing is half-rewritten:
///
/// | written | rewritten? |
/// | --- | --- |
/// | `v.iter().map(f).collect()` | yes: `v.iter()` ⟶ `par_auto()` ⟶ `.map(f).collect()` |
/// | `(0..n).filter(p).map(f).sum::<u64>()` | yes |
/// | `text.lines().enumerate().for_each(g)` | yes: `lines().enumerate()` stay serial |
/// | `v.iter().map(f).collect::<Vec<_>>().into_iter().map(g).max()` | both pipelines, separately |
/// | `rows.iter().map(\|r\| r.iter().map(f).sum::<u64>()).collect()` | both (nested: the inner one never multiplies threads) |
/// | `v.iter().map(f).take(3).count()` | no: `take` after the first closure |
/// | `v.iter().flat_map(f).count()` | no: std's `flat_map` is `AutoIter::flat_map_iter`, a different name |
/// | `v.iter().take_while(p).map(f).count()` | no: the first closure is `take_while`'s |
/// | `v.iter().map(f).fold(0, g)` | no: `fold` is not a consumer of `AutoIter` (use `sum`, or `fold_reduce` by hand) |
/// | `v.iter_mut().for_each(f)` | no: `&mut` items |
/// | `v.iter().copied().sum::<u64>()` | no: no closure to run in parallel |
/// | `for x in v.iter() { … }` | no: loops are not pipelines |
/// | `println!("{}", v.iter().map(f).sum::<u64>())` | no: macro arguments are not parsed |
///
/// Pipelines inside closures and blocks of the function are rewritten too; nested
/// functions, `impl` blocks and other items declared in the body are not, nor are
/// `const` blocks. A chain that looks like a pipeline but is not on an iterator (a
/// query builder's `.filter(..).count()`, a rayon iterator held in a variable) keeps
/// its meaning: it is handed through unchanged at compile time.
///
/// # Arguments
///
/// | argument | effect |
/// | --- | --- |
/// | *(none)* | decide at run time |
/// | `serial` | leave the whole function as written (no other argument allowed with it) |
/// | `backend = "rayon" \| "threads" \| "processes" \| "cluster" \| "serial"` | pin the backend (beats `AMORSIZE_BACKEND`) |
/// | `max_workers = N` | cap the workers (`N` ≥ 1; with `backend` and `chunk_size` too, pin them) |
/// | `chunk_size = N` | pin the items handed to a worker at a time (`N` ≥ 1) |
/// | `min_speedup = F` | stay serial unless parallel is predicted at least `F` times faster (default 1.2) |
/// | `log` | print this function's plans on stderr, as `AMORSIZE_LOG=plan` does |
/// | `progress` | show a progress bar |
///
/// They apply to every pipeline of the function, as the builder methods of the same
/// names on `AutoIter` would. A plan that pins backend, workers and chunk size skips
/// sampling. An unknown, repeated or malformed argument is a compile error on that
/// argument, listing the valid ones.
///
/// ```
/// use amorsize::prelude::*;
///
/// #[auto_parallel(backend = "threads", max_workers = 2, chunk_size = 8)]
/// fn checksums(blocks: &[Vec<u8>]) -> Vec<u32> {
///     blocks.iter().map(|b| b.iter().map(|&x| x as u32).sum()).collect()
/// }
///
/// assert_eq!(checksums(&[vec![1, 2], vec![3]]), [3, 3]);
/// ```
///
/// # Opting out
///
/// - `#[auto_parallel(serial)]`: the function is left as written.
/// - `#[amorsize::serial]` on a `let` or expression statement inside the function: that
///   statement is left as written (the marker is removed; see [`macro@serial`]).
/// - The facade's cargo feature `serial` (`amorsize = { features = ["serial"] }`):
///   every annotated function runs its pipelines as written, and `par_auto()` runs
///   inline, with no sampling, no threads and no processes. It is decided inside the
///   runtime (a `const` the expansion branches on), so no `cfg` ends up in your crate.
///   **For final binaries only**: cargo features unify across a build, so a library
///   that enabled it would turn parallelism off for every program that uses it.
/// - `AMORSIZE=off` in the environment: every job runs serially, inline, at run time.
///
/// ```
/// use amorsize::prelude::*;
///
/// #[auto_parallel]
/// fn stats(v: &[u64]) -> (u64, usize) {
///     // Runs in input order, on the caller's thread, as written.
///     let mut seen = 0;
///     #[amorsize::serial]
///     let total: u64 = v.iter().map(|x| { seen += 1; x * 2 }).sum();
///     // Rewritten.
///     let odd = v.iter().filter(|x| *x % 2 == 1).count();
///     (total + seen, odd)
/// }
///
/// assert_eq!(stats(&[1, 2, 3]), (15, 2));
/// ```
///
/// # Closures must be `Fn + Sync`
///
/// amorsize may call a rewritten pipeline's closures from several threads at once, so
/// they must not mutate what they capture and what they capture must be `Sync`. The
/// attribute cannot know this before type checking, so a closure that breaks the rule
/// is a compile error; the fix is to share state through an atomic or a `Mutex`, to
/// keep per-worker state in `map_init` (written by hand with `par_auto()`), or to mark
/// the statement `#[amorsize::serial]`.
///
/// - A closure capturing something not `Sync` (a `Cell`, an `Rc`, a `RefCell`) gets
///   amorsize's own message: *"amorsize cannot call this closure from several
///   threads"*, on the closure, with what to do.
/// - **Limit:** a closure that assigns to a captured variable (`FnMut`, e.g.
///   `count += 1`) is rejected by the borrow checker before any trait is consulted, and
///   its message cannot be customised: it reads *"error\[E0594\]: cannot assign to
///   `count`, as it is a captured variable in a `Fn` closure"*, pointing at the
///   assignment inside the pipeline. Inside an `#[auto_parallel]` function that error
///   means: this pipeline was rewritten; mark its statement `#[amorsize::serial]` or
///   use an atomic.
///
/// Items that are not `Send` (an `Rc`, or a type parameter without `T: Send`) are not
/// an error: that pipeline stays serial, as written.
///
/// ```compile_fail,E0594
/// use amorsize::prelude::*;
///
/// #[auto_parallel]
/// fn count_calls(v: &[u64]) -> usize {
///     let mut calls = 0;
///     v.iter().for_each(|_| calls += 1); // error[E0594]: mark it #[amorsize::serial]
///     calls
/// }
/// ```
///
/// # Seeing the decisions
///
/// Each rewritten pipeline is its own call site: its plans are cached and reported
/// under the function's path and the pipeline's line and column (of its first
/// adapter). Run with `AMORSIZE_LOG=plan` (one line per decision) or
/// `AMORSIZE_LOG=full` (the whole breakdown), or give the function the `log`
/// argument:
///
/// ```text
/// $ AMORSIZE_LOG=plan ./my_program
/// amorsize: [my_program::thumbnails src/main.rs:12:10] threads x8, chunk 4; est. 6.1x ...
/// ```
///
/// # Errors and limits
///
/// - Only functions with a body: free functions, inherent methods, trait-impl
///   methods, provided trait methods. Anything else, `async fn` (not supported yet)
///   and `const fn` are compile errors; the item is still emitted unchanged next to the
///   error, so the rest of the crate (and your IDE) keeps working.
/// - A function with no rewritable pipeline compiles unchanged. A stable procedural
///   macro cannot emit warnings, so nothing tells you; `AMORSIZE_LOG=plan` shows which
///   pipelines were rewritten (those that report plans).
/// - The expansion names the facade crate `::amorsize`: depending on it under another
///   name is not supported.
/// - Pipelines inside macro invocations (`println!`, `assert_eq!`, `vec!`) are not seen.
#[proc_macro_attribute]
pub fn auto_parallel(args: TokenStream, item: TokenStream) -> TokenStream {
    auto_parallel::expand(args.into(), item.into()).into()
}

/// Keeps one statement of an `#[auto_parallel]` function as written.
///
/// Put it on a `let` statement or an expression statement inside a function annotated
/// with [`macro@auto_parallel`]; that attribute removes the marker and leaves the
/// statement (pipelines, closures and all) untouched, so its closures may be `FnMut`
/// or capture non-`Sync` state and run in input order on the caller's thread.
///
/// ```
/// use std::cell::Cell;
///
/// use amorsize::prelude::*;
///
/// #[auto_parallel]
/// fn total(v: &[u64]) -> u64 {
///     let calls = Cell::new(0);
///     #[amorsize::serial]
///     let doubled: u64 = v.iter().map(|x| { calls.set(calls.get() + 1); x * 2 }).sum();
///     doubled + calls.get()
/// }
///
/// assert_eq!(total(&[1, 2]), 8);
/// ```
///
/// Attribute macros on statements are not stable Rust, so the marker only works where
/// `#[auto_parallel]` removes it. On its own (for example on a function) it expands to
/// a compile error saying so.
#[proc_macro_attribute]
pub fn serial(_args: TokenStream, item: TokenStream) -> TokenStream {
    serial_marker::outside(item.into()).into()
}

/// Registers a named function as a task that worker processes can run: see
/// `amorsize::task`.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into()).into()
}
