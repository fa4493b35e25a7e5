//! `#[auto_parallel]`, phase by phase: parse the function and the arguments, check
//! them, rewrite the body's pipelines. This is the only module that knows the order of
//! the phases; each phase knows nothing of the ones that come after it.
//!
//! When something is wrong, the function is emitted unchanged (but for its
//! `#[amorsize::serial]` markers, which only this attribute can remove) next to the
//! errors, so that the rest of the crate still compiles, the user's IDE keeps working,
//! and the errors cause no cascade of others.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::visit_mut::VisitMut;

use crate::args::Args;
use crate::codegen::FunctionConfig;
use crate::errors::Errors;
use crate::model::Function;
use crate::rewrite;
use crate::serial_marker::StripMarkers;

/// `#[auto_parallel(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match Function::parse(item.clone()) {
        Ok(f) => f,
        // Not a function (or not parsable): emit it as it came.
        Err(e) => return with_error(e, item),
    };

    let mut errors = Errors::new();
    let args = Args::parse(args).unwrap_or_else(|e| {
        errors.push(e);
        Args::default()
    });
    errors.extend(function.check());
    if let Err(e) = errors.check() {
        return as_written(Some(e), function);
    }

    if args.serial.is_some() {
        // `serial`: the body as written.
        return as_written(None, function);
    }

    let config = FunctionConfig::new(&args.settings(), &function.name());
    let mut item = function.item.clone();
    let malformed_markers = rewrite::rewrite_body(&mut item.block, &config);
    if !malformed_markers.is_empty() {
        let mut errors = Errors::new();
        errors.extend(malformed_markers);
        return as_written(errors.check().err(), function);
    }
    item.into_token_stream()
}

/// The function as written, without its markers, next to `error` (if any) and to the
/// errors of its malformed markers.
fn as_written(error: Option<syn::Error>, mut function: Function) -> TokenStream {
    let mut strip = StripMarkers::default();
    strip.visit_block_mut(&mut function.item.block);
    let mut errors = Errors::new();
    errors.extend(error);
    errors.extend(strip.malformed);
    let item = function.item.into_token_stream();
    match errors.check() {
        Ok(()) => item,
        Err(e) => with_error(e, item),
    }
}

fn with_error(error: syn::Error, item: TokenStream) -> TokenStream {
    let error = error.into_compile_error();
    quote!(#error #item)
}
