//! Procedural macros of amorsize. Use them through the `amorsize` facade crate.

mod task;

/// Registers a named function as a task that worker processes can run: see
/// `amorsize::task`.
#[proc_macro_attribute]
pub fn task(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    task::expand(args.into(), item.into()).into()
}
