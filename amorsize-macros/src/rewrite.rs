//! The rewriting visitor: finds the pipelines of a function body and replaces each with
//! its expansion; strips `#[amorsize::serial]` markers. It never descends into nested
//! items (functions, impls, modules declared in the body), which the attribute does not
//! cover, nor into macro invocations, whose tokens are not parsed.

use quote::ToTokens;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, ExprMethodCall, Item, Stmt};

use crate::expand::{self, Site};
use crate::pipeline;
use crate::serial_marker;

/// Rewrites the pipelines of one function body.
pub(crate) struct Rewriter<'a> {
    /// Settings shared by every pipeline of the function.
    site: &'a Site,
    /// False inside a `#[amorsize::serial]` statement and in const blocks: only strip.
    rewrite: bool,
    /// How many rewritten pipelines enclose the current expression. Nested ones are
    /// already inside the parallel branch, so they get no serial-build branch of their own.
    depth: usize,
    /// Malformed markers.
    pub errors: Vec<syn::Error>,
}

impl<'a> Rewriter<'a> {
    pub(crate) fn new(site: &'a Site) -> Self {
        Rewriter {
            site,
            rewrite: true,
            depth: 0,
            errors: Vec::new(),
        }
    }

    /// Rewrites `block` in place.
    pub(crate) fn run(mut self, block: &mut Block) -> Self {
        self.visit_block_mut(block);
        self
    }

    /// Replaces the pipeline whose consumer is `call` (with `calls` method calls on
    /// `AutoIter`) by its expansion.
    fn rewrite_pipeline(&mut self, call: &mut ExprMethodCall, found: pipeline::Pipeline) -> Expr {
        let attrs = std::mem::take(&mut call.attrs);
        let original = (self.depth == 0).then(|| {
            let mut e = Expr::MethodCall(call.clone());
            strip_markers(&mut e);
            e
        });

        // Peel the consumer and its adapters off the chain: what is left is the source.
        let mut calls = Vec::with_capacity(found.calls);
        let mut cur = Expr::MethodCall(call.clone());
        for _ in 0..found.calls {
            let Expr::MethodCall(mut m) = cur else {
                unreachable!("pipeline::recognise counted method calls")
            };
            cur = std::mem::replace(&mut *m.receiver, Expr::Verbatim(Default::default()));
            calls.push(m);
        }
        calls.reverse();
        let mut source = cur;

        // Nested pipelines: in the source and in the closures.
        self.depth += 1;
        self.visit_expr_mut(&mut source);
        for m in &mut calls {
            for arg in &mut m.args {
                self.visit_expr_mut(arg);
            }
        }
        self.depth -= 1;

        let mut chain = proc_macro2::TokenStream::new();
        for m in &calls {
            m.dot_token.to_tokens(&mut chain);
            m.method.to_tokens(&mut chain);
            m.turbofish.to_tokens(&mut chain);
            m.paren_token.surround(&mut chain, |t| m.args.to_tokens(t));
        }
        Expr::Verbatim(expand::pipeline(
            self.site,
            &attrs,
            original.as_ref(),
            &source,
            found.site,
            chain,
        ))
    }
}

impl VisitMut for Rewriter<'_> {
    fn visit_item_mut(&mut self, _: &mut Item) {
        // Nested items are not part of the annotated function.
    }

    fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
        let (marked, errors) = serial_marker::strip_stmt(stmt);
        self.errors.extend(errors);
        if marked && self.rewrite {
            self.rewrite = false;
            visit_mut::visit_stmt_mut(self, stmt);
            self.rewrite = true;
        } else {
            visit_mut::visit_stmt_mut(self, stmt);
        }
    }

    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        if self.rewrite {
            match expr {
                Expr::MethodCall(call) => {
                    if let Some(found) = pipeline::recognise(call) {
                        *expr = self.rewrite_pipeline(call, found);
                        return;
                    }
                }
                Expr::If(e) if is_generated(&e.cond) => {
                    // Already rewritten (the attribute was given twice).
                    return;
                }
                Expr::Const(_) => {
                    // Evaluated at compile time: nothing to parallelise.
                    self.rewrite = false;
                    visit_mut::visit_expr_mut(self, expr);
                    self.rewrite = true;
                    return;
                }
                _ => {}
            }
        }
        visit_mut::visit_expr_mut(self, expr);
    }
}

/// Removes every `#[amorsize::serial]` of `block` without rewriting anything: for
/// `#[auto_parallel(serial)]` and for the function emitted next to an error, so that
/// the markers cause no second error.
pub(crate) fn strip_block(block: &mut Block, errors: &mut Vec<syn::Error>) {
    let site = Site::default();
    let mut v = Rewriter::new(&site);
    v.rewrite = false;
    v.visit_block_mut(block);
    errors.extend(v.errors);
}

/// Removes the markers of a copy of a pipeline (its malformed markers are reported by
/// the visitor of the rewritten copy).
fn strip_markers(expr: &mut Expr) {
    let site = Site::default();
    let mut v = Rewriter::new(&site);
    v.rewrite = false;
    v.visit_expr_mut(expr);
}

/// `::amorsize::__private::SERIAL_BUILD`: the condition of an expansion.
fn is_generated(cond: &Expr) -> bool {
    match cond {
        Expr::Path(p) => p.path.segments.iter().map(|s| s.ident.to_string()).eq([
            "amorsize",
            "__private",
            "SERIAL_BUILD",
        ]),
        _ => false,
    }
}
