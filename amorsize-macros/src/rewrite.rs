//! The rewriting visitor: finds the pipelines of a function body and replaces each with
//! its expansion, removing the `#[amorsize::serial]` markers on the way. It never
//! descends into nested items (functions, impls, modules declared in the body), which
//! the attribute does not cover, nor into macro invocations, whose tokens are not
//! parsed.
//!
//! It decides *where* to rewrite; which chains are pipelines is `pipeline`'s rule, and
//! what a rewritten pipeline looks like is `codegen`'s.

use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, ExprMethodCall, Item, Stmt};

use crate::codegen::{self, FunctionConfig};
use crate::pipeline::{self, Pipeline};
use crate::serial_marker::{self, StripMarkers};

/// Rewrites every pipeline of `body` in place, with `config` as their `Config`, and
/// removes its markers. Returns an error for each malformed marker.
pub(crate) fn rewrite_body(body: &mut Block, config: &FunctionConfig) -> Vec<syn::Error> {
    let mut rewriter = Rewriter {
        config,
        depth: 0,
        malformed_markers: Vec::new(),
    };
    rewriter.visit_block_mut(body);
    rewriter.malformed_markers
}

struct Rewriter<'a> {
    /// Shared by every pipeline of the function.
    config: &'a FunctionConfig,
    /// How many rewritten pipelines enclose the current expression. Nested ones are
    /// already inside the parallel branch, so they get no serial-build branch of their own.
    depth: usize,
    malformed_markers: Vec<syn::Error>,
}

impl Rewriter<'_> {
    /// Leaves `node` as written but for its markers, which `strip` removes.
    fn keep_as_written(&mut self, strip: impl FnOnce(&mut StripMarkers)) {
        let mut stripper = StripMarkers::default();
        strip(&mut stripper);
        self.malformed_markers.extend(stripper.malformed);
    }

    /// Replaces the pipeline whose consumer is `call` by its expansion.
    fn rewrite_pipeline(&mut self, call: &mut ExprMethodCall, found: Pipeline) -> Expr {
        let attrs = std::mem::take(&mut call.attrs);
        let original = (self.depth == 0).then(|| {
            let mut e = Expr::MethodCall(call.clone());
            // Its malformed markers are reported by the visit of the rewritten copy.
            StripMarkers::default().visit_expr_mut(&mut e);
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

        Expr::Verbatim(codegen::rewritten_pipeline(
            self.config,
            &attrs,
            original.as_ref(),
            &source,
            found.parallel_start,
            &calls,
        ))
    }
}

impl VisitMut for Rewriter<'_> {
    fn visit_item_mut(&mut self, _: &mut Item) {
        // Nested items are not part of the annotated function.
    }

    fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
        let (marked, malformed) = serial_marker::strip_stmt(stmt);
        self.malformed_markers.extend(malformed);
        if marked {
            // `#[amorsize::serial]`: its own markers are gone, those nested in it too.
            self.keep_as_written(|strip| visit_mut::visit_stmt_mut(strip, stmt));
        } else {
            visit_mut::visit_stmt_mut(self, stmt);
        }
    }

    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::MethodCall(call) => {
                if let Some(found) = pipeline::recognise(call) {
                    *expr = self.rewrite_pipeline(call, found);
                    return;
                }
            }
            Expr::If(e) if codegen::is_rewritten_pipeline(e) => {
                // Already rewritten (the attribute was given twice).
                return;
            }
            Expr::Const(_) => {
                // Evaluated at compile time: nothing to parallelise.
                self.keep_as_written(|strip| strip.visit_expr_mut(expr));
                return;
            }
            _ => {}
        }
        visit_mut::visit_expr_mut(self, expr);
    }
}
