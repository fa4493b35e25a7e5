//! Code generation for `#[auto_parallel]`: the function with its pipelines rewritten,
//! or, when something is wrong, the function unchanged (but for its
//! `#[amorsize::serial]` markers) next to the errors.
//!
//! Everything generated names the runtime absolutely (`::amorsize::__private::…`) and
//! uses `__amorsize`-prefixed names. Only the call that starts a pipeline carries the
//! user's span (that of the first adapter's name), so that its `#[track_caller]`
//! location, which identifies the pipeline's plans, is the user's line and column; the
//! rest is spanned at the attribute, so that lints meant for the user's code do not
//! fire on generated code.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::{Attribute, Expr};

use crate::args::{Args, Errors};
use crate::model::Function;
use crate::rewrite::{self, Rewriter};

/// `#[auto_parallel(args)] item`.
pub(crate) fn auto_parallel(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match Function::parse(item.clone()) {
        Ok(f) => f,
        // Not a function (or not parsable): emit it as it came.
        Err(e) => return with_error(e, item),
    };

    let mut errors = Errors::default();
    let args = Args::parse(args).unwrap_or_else(|e| {
        errors.push(e);
        Args::default()
    });
    errors.push_all(function.check());
    if let Err(e) = errors.finish() {
        return fallback(e, function);
    }

    if args.serial.is_some() {
        // `serial`: the body as written.
        return fallback_or(None, function);
    }

    let site = Site::new(&args, function.name());
    let mut item = function.item.clone();
    let rewriter = Rewriter::new(&site).run(&mut item.block);
    if !rewriter.errors.is_empty() {
        return fallback(combine(rewriter.errors), function);
    }
    item.into_token_stream()
}

/// The function as written, without its markers, next to `error`.
fn fallback(error: syn::Error, function: Function) -> TokenStream {
    fallback_or(Some(error), function)
}

fn fallback_or(error: Option<syn::Error>, mut function: Function) -> TokenStream {
    let mut marker_errors = Vec::new();
    rewrite::strip_block(&mut function.item.block, &mut marker_errors);
    let mut all = Errors::default();
    all.push_all(error);
    all.push_all(marker_errors);
    let item = function.item.into_token_stream();
    match all.finish() {
        Ok(()) => item,
        Err(e) => with_error(e, item),
    }
}

fn with_error(error: syn::Error, item: TokenStream) -> TokenStream {
    let error = error.into_compile_error();
    quote!(#error #item)
}

fn combine(errors: Vec<syn::Error>) -> syn::Error {
    let mut all = Errors::default();
    all.push_all(errors);
    all.finish().expect_err("called with at least one error")
}

/// What every pipeline of one function shares: the `Config` it is given.
#[derive(Default)]
pub(crate) struct Site {
    /// The fields of `::amorsize::__private::Config`.
    config: TokenStream,
}

impl Site {
    pub(crate) fn new(args: &Args, function: String) -> Site {
        let some = |t: TokenStream| quote!(::core::option::Option::Some(#t));
        let none = quote!(::core::option::Option::None);
        let backend = args.backend.map_or(none.clone(), |(b, _)| {
            let v = Ident::new(b.variant(), Span::call_site());
            some(quote!(::amorsize::__private::Backend::#v))
        });
        let max_workers = args.max_workers.map_or(none.clone(), |(n, _)| {
            some(Literal::usize_unsuffixed(n).into_token_stream())
        });
        let chunk_size = args.chunk_size.map_or(none.clone(), |(n, _)| {
            some(Literal::usize_unsuffixed(n).into_token_stream())
        });
        let min_speedup = args.min_speedup.map_or(none, |(f, _)| {
            some(Literal::f64_unsuffixed(f).into_token_stream())
        });
        let log = args.log.is_some();
        let progress = args.progress.is_some();
        let config = quote! {
            ::amorsize::__private::Config {
                function: ::core::concat!(::core::module_path!(), "::", #function),
                backend: #backend,
                max_workers: #max_workers,
                chunk_size: #chunk_size,
                min_speedup: #min_speedup,
                log: #log,
                progress: #progress,
            }
        };
        Site { config }
    }
}

/// One rewritten pipeline: `source`, then `chain` (the adapters and the consumer, as the
/// user wrote them) on `AutoIter`. `original` (the pipeline as written) is given for an
/// outermost pipeline, which then runs as written in a `serial` build.
pub(crate) fn pipeline(
    site: &Site,
    attrs: &[Attribute],
    original: Option<&Expr>,
    source: &Expr,
    first_adapter: Span,
    chain: TokenStream,
) -> TokenStream {
    let config = &site.config;
    // `(0..n).map(f)`: the parentheses are not needed as an argument (and would be
    // linted as `unused_parens` on the user's code).
    let source = match source {
        Expr::Paren(p) if p.attrs.is_empty() => &*p.expr,
        other => other,
    };
    // Hygienic: invisible to the user's closures.
    let wrapped = Ident::new("__amorsize_source", Span::mixed_site());
    // The user's span: `#[track_caller]` reports it as the pipeline's call site.
    let start = quote_spanned!(first_adapter=> .__amorsize_par(&__AMORSIZE_CFG));
    let parallel = quote! {
        match ::amorsize::__private::Wrap::new(#source) {
            #wrapped => {
                #[allow(unused_imports)]
                use ::amorsize::__private::{ViaAuto as _, ViaStd as _};
                static __AMORSIZE_CFG: ::amorsize::__private::Config = #config;
                (&#wrapped) #start #chain
            }
        }
    };
    match original {
        Some(original) => quote! {
            #(#attrs)*
            (if ::amorsize::__private::SERIAL_BUILD {
                #original
            } else {
                #parallel
            })
        },
        None => quote!(#(#attrs)* (#parallel)),
    }
}
