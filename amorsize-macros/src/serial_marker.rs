//! `#[amorsize::serial]`: the statement marker that keeps a statement as written inside
//! an `#[auto_parallel]` function, the pass that removes it, and the attribute macro of
//! the same name, which only exists so that the path resolves (and explains itself)
//! where it is not removed.
//!
//! Attribute macros on statements are not stable Rust, so every marker must be gone
//! before the compiler sees the function: the rewriting visitor removes those on the
//! statements it visits, and [`StripMarkers`] removes all of them where nothing is
//! rewritten (a marked statement, a `const` block, the function emitted unchanged next
//! to an error).

use proc_macro2::TokenStream;
use quote::quote;
use syn::visit_mut::{self, VisitMut};
use syn::{Attribute, Expr, Item, Meta, Stmt};

/// Whether `attr` is the marker: `#[amorsize::serial]`, `#[::amorsize::serial]`, or
/// `#[serial]` (after `use amorsize::serial;`). No built-in attribute is called
/// `serial`, and statements cannot carry custom attributes on stable, so inside an
/// `#[auto_parallel]` function the bare name can only mean this.
fn is_marker(attr: &Attribute) -> bool {
    let path = attr.path();
    let names: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match names.as_slice() {
        [one] => one == "serial" && path.leading_colon.is_none(),
        [krate, one] => krate == "amorsize" && one == "serial",
        _ => false,
    }
}

/// Removes every marker from `attrs`. Returns whether there was one, and an error for
/// each marker written with arguments (it takes none).
fn strip_attrs(attrs: &mut Vec<Attribute>) -> (bool, Vec<syn::Error>) {
    let mut found = false;
    let mut errors = Vec::new();
    attrs.retain(|a| {
        if !is_marker(a) {
            return true;
        }
        found = true;
        if !matches!(a.meta, Meta::Path(_)) {
            errors.push(syn::Error::new_spanned(
                &a.meta,
                "`#[amorsize::serial]` takes no arguments",
            ));
        }
        false
    });
    (found, errors)
}

/// Removes the markers of the statement itself (not of the statements nested in it): on
/// a `let` statement, a macro statement, or an expression statement (with or without
/// `;`). Returns whether there was one, and an error for each malformed one. Nested
/// items are not rewritten, so they are not looked at.
pub(crate) fn strip_stmt(stmt: &mut Stmt) -> (bool, Vec<syn::Error>) {
    match stmt {
        Stmt::Local(local) => strip_attrs(&mut local.attrs),
        Stmt::Macro(mac) => strip_attrs(&mut mac.attrs),
        Stmt::Expr(expr, _) => {
            let (mut found, mut errors) = (false, Vec::new());
            strip_leading(expr, &mut found, &mut errors);
            (found, errors)
        }
        Stmt::Item(_) => (false, Vec::new()),
    }
}

/// The attributes written before an expression statement belong, in the syntax tree, to
/// its leftmost operand (`#[m] a.f() + b` puts `#[m]` on `a.f()`): look along the left
/// edge.
fn strip_leading(expr: &mut Expr, found: &mut bool, errors: &mut Vec<syn::Error>) {
    if let Some(attrs) = expr_attrs(expr) {
        let (f, e) = strip_attrs(attrs);
        *found |= f;
        errors.extend(e);
    }
    let left = match expr {
        Expr::Binary(e) => &mut *e.left,
        Expr::Assign(e) => &mut *e.left,
        Expr::Cast(e) => &mut *e.expr,
        Expr::Range(e) => match &mut e.start {
            Some(start) => &mut **start,
            None => return,
        },
        Expr::MethodCall(e) => &mut *e.receiver,
        Expr::Field(e) => &mut *e.base,
        Expr::Index(e) => &mut *e.expr,
        Expr::Try(e) => &mut *e.expr,
        Expr::Await(e) => &mut *e.base,
        Expr::Call(e) => &mut *e.func,
        _ => return,
    };
    strip_leading(left, found, errors);
}

/// The outer attributes of an expression (where syn keeps those of an expression
/// statement).
fn expr_attrs(expr: &mut Expr) -> Option<&mut Vec<Attribute>> {
    Some(match expr {
        Expr::Array(e) => &mut e.attrs,
        Expr::Assign(e) => &mut e.attrs,
        Expr::Async(e) => &mut e.attrs,
        Expr::Await(e) => &mut e.attrs,
        Expr::Binary(e) => &mut e.attrs,
        Expr::Block(e) => &mut e.attrs,
        Expr::Break(e) => &mut e.attrs,
        Expr::Call(e) => &mut e.attrs,
        Expr::Cast(e) => &mut e.attrs,
        Expr::Closure(e) => &mut e.attrs,
        Expr::Const(e) => &mut e.attrs,
        Expr::Continue(e) => &mut e.attrs,
        Expr::Field(e) => &mut e.attrs,
        Expr::ForLoop(e) => &mut e.attrs,
        Expr::Group(e) => &mut e.attrs,
        Expr::If(e) => &mut e.attrs,
        Expr::Index(e) => &mut e.attrs,
        Expr::Infer(e) => &mut e.attrs,
        Expr::Let(e) => &mut e.attrs,
        Expr::Lit(e) => &mut e.attrs,
        Expr::Loop(e) => &mut e.attrs,
        Expr::Macro(e) => &mut e.attrs,
        Expr::Match(e) => &mut e.attrs,
        Expr::MethodCall(e) => &mut e.attrs,
        Expr::Paren(e) => &mut e.attrs,
        Expr::Path(e) => &mut e.attrs,
        Expr::Range(e) => &mut e.attrs,
        Expr::RawAddr(e) => &mut e.attrs,
        Expr::Reference(e) => &mut e.attrs,
        Expr::Repeat(e) => &mut e.attrs,
        Expr::Return(e) => &mut e.attrs,
        Expr::Struct(e) => &mut e.attrs,
        Expr::Try(e) => &mut e.attrs,
        Expr::TryBlock(e) => &mut e.attrs,
        Expr::Tuple(e) => &mut e.attrs,
        Expr::Unary(e) => &mut e.attrs,
        Expr::Unsafe(e) => &mut e.attrs,
        Expr::While(e) => &mut e.attrs,
        Expr::Yield(e) => &mut e.attrs,
        _ => return None,
    })
}

/// Removes every marker under the node it visits, rewriting nothing, and keeps the
/// malformed ones. Like the rewriting visitor, it does not enter nested items (they are
/// not part of the annotated function, so their markers are not ours to remove) nor
/// macro invocations (their tokens are not parsed).
#[derive(Default)]
pub(crate) struct StripMarkers {
    /// An error for each marker written with arguments, in the order met.
    pub malformed: Vec<syn::Error>,
}

impl VisitMut for StripMarkers {
    fn visit_item_mut(&mut self, _: &mut Item) {}

    fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
        let (_, malformed) = strip_stmt(stmt);
        self.malformed.extend(malformed);
        visit_mut::visit_stmt_mut(self, stmt);
    }
}

/// Expansion of `#[amorsize::serial]` where `#[auto_parallel]` did not strip it: an
/// error that says where it belongs, next to the item unchanged.
pub(crate) fn outside(item: TokenStream) -> TokenStream {
    let error = syn::Error::new(
        proc_macro2::Span::call_site(),
        "`#[amorsize::serial]` only works on a `let` or expression statement inside an \
         `#[auto_parallel]` function, which removes it and leaves that statement as written; \
         elsewhere nothing is rewritten, so remove it",
    )
    .into_compile_error();
    quote!(#error #item)
}

#[cfg(test)]
mod tests {
    use quote::ToTokens;
    use syn::Block;

    use super::*;

    fn strip(body: &str) -> (String, Vec<String>) {
        let mut block: Block = syn::parse_str(body).unwrap();
        let mut strip = StripMarkers::default();
        strip.visit_block_mut(&mut block);
        let errors = strip.malformed.iter().map(|e| e.to_string()).collect();
        (block.into_token_stream().to_string(), errors)
    }

    #[test]
    fn removes_every_marker_but_in_nested_items() {
        let (out, errors) = strip(
            "{
                #[amorsize::serial] let a = 1;
                let f = || { #[serial] a.f() + 1; };
                fn inner() { #[amorsize::serial] let b = 2; }
            }",
        );
        assert_eq!(out.matches("serial").count(), 1, "{out}");
        assert!(out.contains("fn inner"), "{out}");
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn reports_markers_with_arguments() {
        let (out, errors) = strip("{ #[amorsize::serial(please)] let a = 1; a }");
        assert!(!out.contains("please"), "{out}");
        assert_eq!(errors, ["`#[amorsize::serial]` takes no arguments"]);
    }
}
