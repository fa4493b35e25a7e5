//! `#[amorsize::task]`: registers a named function so worker processes can run it.
//!
//! ```ignore
//! #[amorsize::task]
//! fn resize(p: PathBuf) -> Thumb { ... }
//! ```
//!
//! expands to the function unchanged, plus (in an anonymous `const` block):
//!
//! ```ignore
//! fn __amorsize_task_type_id() -> TypeId { type_id_of_val(&resize) }
//! fn __amorsize_task_shim(input: &[u8], out: &mut Vec<u8>) -> Result<(), TaskFailure> {
//!     run_task::<PathBuf, Thumb, _>(input, out, resize)   // decode, call, encode
//! }
//! #[distributed_slice(TASKS)]
//! static __AMORSIZE_TASK: TaskEntry = TaskEntry::new::<PathBuf, Thumb>(
//!     module_path!(), "resize", "fn(PathBuf) -> Thumb", __amorsize_task_type_id,
//!     __amorsize_task_shim);
//! ```
//!
//! all paths absolute through `::amorsize::__private`. The parent finds the entry by the
//! function's `TypeId` when `.map(resize)` is given the function by name; workers find
//! it by module path, name and signature.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

use crate::errors::Errors;

/// Expands `#[amorsize::task]` on `item`; on error, the function unchanged plus the
/// errors.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let e = syn::Error::new(
                e.span(),
                "#[amorsize::task] goes on a named function: `fn name(input: In) -> Out { .. }`",
            )
            .into_compile_error();
            return quote!(#item #e);
        }
    };
    match check(&args, &func) {
        Ok((input, output)) => generate(&func, &input, &output),
        Err(e) => {
            let e = e.into_compile_error();
            quote!(#func #e)
        }
    }
}

/// The input and output types, or every problem found.
fn check(args: &TokenStream, func: &ItemFn) -> syn::Result<(Type, Type)> {
    let mut errors = Errors::new();
    if !args.is_empty() {
        errors.push(syn::Error::new_spanned(
            args,
            "#[amorsize::task] takes no arguments: write `#[amorsize::task]`",
        ));
    }
    let sig = &func.sig;
    if let Some(a) = &sig.asyncness {
        errors.push(syn::Error::new_spanned(
            a,
            "a task cannot be `async`: worker processes call it like a plain function",
        ));
    }
    if let Some(u) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            u,
            "a task cannot be `unsafe fn`: `map` needs a safe function",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "a task cannot be generic: a worker must find one concrete function by name; \
             write a non-generic wrapper and mark that #[amorsize::task]",
        ));
    }
    if let Some(v) = &sig.variadic {
        errors.push(syn::Error::new_spanned(v, "a task cannot be variadic"));
    }
    let mut input = None;
    match sig.inputs.len() {
        1 => match &sig.inputs[0] {
            FnArg::Typed(pt) => input = Some((*pt.ty).clone()),
            FnArg::Receiver(r) => errors.push(syn::Error::new_spanned(
                r,
                "a task must be a free function, not a method",
            )),
        },
        _ => errors.push(syn::Error::new(
            if sig.inputs.is_empty() {
                sig.paren_token.span.join()
            } else {
                sig.inputs.span()
            },
            "a task takes exactly one argument, the item (use a tuple for several: \
             `fn f((a, b): (u32, String)) -> ..`)",
        )),
    }
    let output = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    for ty in input.iter().chain([&output]) {
        if let Some(span) = borrowed(ty.to_token_stream()) {
            errors.push(syn::Error::new(
                span,
                "a task's input and output cross a process boundary: they must be owned \
                 types without references, lifetimes or `impl Trait` (e.g. `String`, not `&str`)",
            ));
        }
    }
    errors.check()?;
    match input {
        Some(input) => Ok((input, output)),
        None => Err(syn::Error::new_spanned(
            &sig.inputs,
            "a task takes one argument",
        )),
    }
}

/// The span of the first reference, lifetime or `impl` in a type's tokens.
fn borrowed(tokens: TokenStream) -> Option<Span> {
    for tt in tokens {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == '&' || p.as_char() == '\'' => {
                return Some(p.span());
            }
            TokenTree::Ident(i) if i == "impl" || i == "dyn" => return Some(i.span()),
            TokenTree::Group(g) => {
                if let Some(s) = borrowed(g.stream()) {
                    return Some(s);
                }
            }
            _ => {}
        }
    }
    None
}

fn generate(func: &ItemFn, input: &Type, output: &Type) -> TokenStream {
    let name = &func.sig.ident;
    let name_str = name.to_string();
    let signature = format!(
        "fn({}) -> {}",
        input.to_token_stream(),
        output.to_token_stream()
    );
    let private = quote!(::amorsize::__private);
    let in_check = quote_spanned! {input.span()=>
        const _: () = #private::assert_task_type::<#input>();
    };
    let out_check = quote_spanned! {output.span()=>
        const _: () = #private::assert_task_type::<#output>();
    };
    quote! {
        #func

        #[doc(hidden)]
        const _: () = {
            #in_check
            #out_check

            fn __amorsize_task_type_id() -> ::core::any::TypeId {
                #private::type_id_of_val(&#name)
            }

            // Through `Probe` (autoref specialization): with types that are not serde
            // types this still compiles, and the checks above give the one error.
            #[allow(unused_imports)]
            use #private::{ViaNothing as _, ViaSerde as _};

            fn __amorsize_task_shim(
                input: &[u8],
                out: &mut ::std::vec::Vec<u8>,
            ) -> ::core::result::Result<(), #private::TaskFailure> {
                (&#private::Probe::<#input, #output>::new()).run(input, out, #name)
            }

            fn __amorsize_task_fns() -> #private::TaskFns {
                (&#private::Probe::<#input, #output>::new()).fns()
            }

            #[#private::linkme::distributed_slice(#private::TASKS)]
            #[linkme(crate = #private::linkme)]
            static __AMORSIZE_TASK: #private::TaskEntry = #private::TaskEntry::new(
                ::core::module_path!(),
                #name_str,
                #signature,
                __amorsize_task_type_id,
                __amorsize_task_shim,
                __amorsize_task_fns,
            );
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(args: TokenStream, item: TokenStream) -> String {
        expand(args, item).to_string()
    }

    #[test]
    fn a_plain_function_expands_to_itself_and_an_entry() {
        let out = expand(
            quote!(),
            quote!(
                fn double(x: u64) -> u64 {
                    x * 2
                }
            ),
        );
        let s = out.to_string();
        assert!(s.starts_with("fn double"), "{s}");
        assert!(s.contains("distributed_slice"), "{s}");
        assert!(s.contains("\"fn(u64) -> u64\""), "{s}");
        assert!(!s.contains("compile_error"), "{s}");
        let unit = expand(
            quote!(),
            quote!(
                fn touch(p: String) {
                    drop(p)
                }
            ),
        )
        .to_string();
        assert!(unit.contains("\"fn(String) -> ()\""), "{unit}");
    }

    #[test]
    fn mistakes_are_reported_next_to_the_unchanged_function() {
        for (args, item, needle) in [
            (
                quote!(x),
                quote!(
                    fn f(x: u8) -> u8 {
                        x
                    }
                ),
                "takes no arguments",
            ),
            (
                quote!(),
                quote!(
                    async fn f(x: u8) -> u8 {
                        x
                    }
                ),
                "async",
            ),
            (
                quote!(),
                quote!(
                    fn f<T>(x: T) -> T {
                        x
                    }
                ),
                "generic",
            ),
            (
                quote!(),
                quote!(
                    fn f(a: u8, b: u8) -> u8 {
                        a
                    }
                ),
                "exactly one argument",
            ),
            (
                quote!(),
                quote!(
                    fn f() -> u8 {
                        1
                    }
                ),
                "exactly one argument",
            ),
            (
                quote!(),
                quote!(
                    fn f(x: &str) -> usize {
                        x.len()
                    }
                ),
                "owned types",
            ),
            (
                quote!(),
                quote!(
                    fn f(x: u8) -> Box<dyn Fn()> {
                        todo!()
                    }
                ),
                "owned types",
            ),
            (
                quote!(),
                quote!(
                    fn f(x: Vec<&'static str>) -> u8 {
                        0
                    }
                ),
                "owned types",
            ),
            (
                quote!(),
                quote!(
                    struct S;
                ),
                "named function",
            ),
        ] {
            let s = errors(args, item);
            assert!(s.contains("compile_error"), "{s}");
            assert!(s.contains(needle), "{needle}: {s}");
            assert!(!s.contains("distributed_slice"), "{s}");
        }
    }
}
