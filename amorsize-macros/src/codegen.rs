//! Code generation for `#[auto_parallel]`: the tokens of a rewritten pipeline and of the
//! `Config` it is given. The rewriting visitor decides *what* is rewritten; this module
//! only knows *how* the result is spelled, so it is the one file to read (and change)
//! together with the runtime's `__private` module, and it depends on no other module of
//! this crate.
//!
//! Everything generated names the runtime absolutely (`::amorsize::__private::…`) and
//! uses `__amorsize`-prefixed names, so that no user item can shadow or clash with it.
//! Only the call that starts a pipeline carries the user's span (that of the first
//! method run on `AutoIter`), so that its `#[track_caller]` location, which identifies
//! the pipeline's plans, is the user's line and column; the rest is spanned at the
//! attribute, so that lints meant for the user's code do not fire on generated code.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::{Attribute, Expr, ExprIf, ExprMethodCall};

/// A backend the generated `Config` can pin: a variant of
/// `::amorsize::__private::Backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Serial,
    Rayon,
    Threads,
    Processes,
    Cluster,
}

impl Backend {
    /// The variant's name in `::amorsize::__private::Backend`.
    fn variant(self) -> &'static str {
        match self {
            Backend::Serial => "Serial",
            Backend::Rayon => "Rayon",
            Backend::Threads => "Threads",
            Backend::Processes => "Processes",
            Backend::Cluster => "Cluster",
        }
    }
}

/// The settings of one annotated function, as plain values: what the runtime's `Config`
/// holds besides the function's path. `None` and `false` leave the decision to the
/// runtime.
#[derive(Debug, Default)]
pub(crate) struct Settings {
    pub backend: Option<Backend>,
    pub max_workers: Option<usize>,
    pub chunk_size: Option<usize>,
    pub min_speedup: Option<f64>,
    pub log: bool,
    pub progress: bool,
}

/// The `::amorsize::__private::Config` expression shared by every pipeline of one
/// function (each pipeline puts it in a `static` of its own, so each is its own call
/// site with its own cached plans).
pub(crate) struct FunctionConfig {
    /// A `Config { … }` struct expression.
    config: TokenStream,
}

impl FunctionConfig {
    /// The `Config` of the function called `function` (its name as written, without
    /// `r#`; the generated code prefixes the module path).
    pub(crate) fn new(settings: &Settings, function: &str) -> FunctionConfig {
        let some = |t: TokenStream| quote!(::core::option::Option::Some(#t));
        let none = quote!(::core::option::Option::None);
        let backend = settings.backend.map_or(none.clone(), |b| {
            let v = Ident::new(b.variant(), Span::call_site());
            some(quote!(::amorsize::__private::Backend::#v))
        });
        let max_workers = settings.max_workers.map_or(none.clone(), |n| {
            some(Literal::usize_unsuffixed(n).into_token_stream())
        });
        let chunk_size = settings.chunk_size.map_or(none.clone(), |n| {
            some(Literal::usize_unsuffixed(n).into_token_stream())
        });
        let min_speedup = settings.min_speedup.map_or(none, |f| {
            some(Literal::f64_unsuffixed(f).into_token_stream())
        });
        let log = settings.log;
        let progress = settings.progress;
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
        FunctionConfig { config }
    }
}

/// One rewritten pipeline: `source`, then `calls` (the adapters and the consumer, as
/// the user wrote them) on `AutoIter`, started at `parallel_start` (the span of the
/// first of `calls`). `attrs` are the pipeline's own attributes, kept on the
/// replacement. `original` (the pipeline as written) is given for an outermost
/// pipeline, which then runs as written in a `serial` build; a nested one is already
/// inside the parallel branch of the pipeline around it.
pub(crate) fn rewritten_pipeline(
    config: &FunctionConfig,
    attrs: &[Attribute],
    original: Option<&Expr>,
    source: &Expr,
    parallel_start: Span,
    calls: &[ExprMethodCall],
) -> TokenStream {
    let config = &config.config;
    // `(0..n).map(f)`: the parentheses are not needed as an argument (and would be
    // linted as `unused_parens` on the user's code).
    let source = match source {
        Expr::Paren(p) if p.attrs.is_empty() => &*p.expr,
        other => other,
    };
    // Hygienic: invisible to the user's closures.
    let wrapped = Ident::new("__amorsize_source", Span::mixed_site());
    // The user's span: `#[track_caller]` reports it as the pipeline's call site.
    let start = quote_spanned!(parallel_start=> .__amorsize_par(&__AMORSIZE_CFG));
    let chain = method_chain(calls);
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

/// `.method::<T>(args)…` for each call, without receivers: the calls as the user wrote
/// them, to be applied to something else.
fn method_chain(calls: &[ExprMethodCall]) -> TokenStream {
    let mut chain = TokenStream::new();
    for m in calls {
        m.dot_token.to_tokens(&mut chain);
        m.method.to_tokens(&mut chain);
        m.turbofish.to_tokens(&mut chain);
        m.paren_token.surround(&mut chain, |t| m.args.to_tokens(t));
    }
    chain
}

/// Whether `expr_if` is the `if ::amorsize::__private::SERIAL_BUILD { … } else { … }`
/// that [`rewritten_pipeline`] emits: then the attribute was given twice, and the
/// pipeline is already rewritten.
pub(crate) fn is_rewritten_pipeline(expr_if: &ExprIf) -> bool {
    match &*expr_if.cond {
        Expr::Path(p) => p.path.segments.iter().map(|s| s.ident.to_string()).eq([
            "amorsize",
            "__private",
            "SERIAL_BUILD",
        ]),
        _ => false,
    }
}
