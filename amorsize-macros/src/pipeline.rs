//! Which method chains are pipelines, by their syntax alone (a macro sees no types).
//!
//! A pipeline is `SOURCE.a1(..)….ak(..).consumer(..)` where
//! - `consumer` is a consumer of `AutoIter` with the same name, arity and meaning as on
//!   `std::iter::Iterator` ([`CONSUMERS`]);
//! - `a1 … ak` (possibly none) are such adapters ([`ADAPTERS`]), and `a1` is the first
//!   method since the previous consumer of the chain that takes a closure (if none,
//!   `consumer` itself must take one: that is where the parallel work is);
//! - `SOURCE` (everything before `a1`) calls no method that takes a closure, hands out
//!   no `&mut` items (`iter_mut()`, `values_mut()`, …) and is not already parallel
//!   (`par_auto()`, rayon's `par_*`/`into_par_*`). It stays as written and is pulled
//!   serially.
//!
//! `par_auto()` goes right before `a1`. Whether `SOURCE` really is an iterator with
//! `Send` items is decided by the type checker (see `__private::Wrap`): if not, the
//! chain keeps its original meaning.

use proc_macro2::Span;
use syn::{Expr, ExprMethodCall};

/// Adapters of `AutoIter` with std's name and meaning: `(name, arguments)`.
const ADAPTERS: &[(&str, usize)] = &[("map", 1), ("filter", 1), ("filter_map", 1), ("inspect", 1)];

/// A consumer of `AutoIter` with std's name and meaning.
struct Consumer {
    name: &'static str,
    /// How many arguments it takes.
    arity: usize,
    /// It may carry a turbofish: only where `AutoIter`'s generic parameters are std's
    /// (`collect::<C>`, `sum::<S>`, `product::<P>`).
    turbofish: bool,
    /// Its closure runs in parallel. `reduce` folds on the caller's thread, so alone it
    /// gives no parallel work.
    parallel: bool,
}

impl Consumer {
    const fn new(name: &'static str, arity: usize, turbofish: bool, parallel: bool) -> Self {
        Consumer {
            name,
            arity,
            turbofish,
            parallel,
        }
    }
}

/// Every consumer of `AutoIter` a pipeline may end with.
const CONSUMERS: &[Consumer] = &[
    Consumer::new("collect", 0, true, false),
    Consumer::new("sum", 0, true, false),
    Consumer::new("product", 0, true, false),
    Consumer::new("count", 0, false, false),
    Consumer::new("min", 0, false, false),
    Consumer::new("max", 0, false, false),
    Consumer::new("reduce", 1, false, false),
    Consumer::new("for_each", 1, false, true),
    Consumer::new("min_by_key", 1, false, true),
    Consumer::new("max_by_key", 1, false, true),
    Consumer::new("any", 1, false, true),
    Consumer::new("all", 1, false, true),
    Consumer::new("find_map", 1, false, true),
    Consumer::new("position", 1, false, true),
];

/// Methods of `std::iter::Iterator` (and `DoubleEndedIterator`) that take a closure.
const CLOSURE_METHODS: &[&str] = &[
    "all",
    "any",
    "cmp_by",
    "eq_by",
    "filter",
    "filter_map",
    "find",
    "find_map",
    "flat_map",
    "fold",
    "for_each",
    "inspect",
    "intersperse_with",
    "is_partitioned",
    "is_sorted_by",
    "is_sorted_by_key",
    "map",
    "map_while",
    "map_windows",
    "max_by",
    "max_by_key",
    "min_by",
    "min_by_key",
    "partial_cmp_by",
    "partition",
    "partition_in_place",
    "position",
    "reduce",
    "rfind",
    "rfold",
    "rposition",
    "scan",
    "skip_while",
    "take_while",
    "try_fold",
    "try_for_each",
    "try_reduce",
    "try_rfold",
];

/// Methods of `std::iter::Iterator` that end an iterator (the previous pipeline of a
/// chain ends there).
const ENDS: &[&str] = &[
    "all",
    "any",
    "cmp",
    "cmp_by",
    "collect",
    "collect_into",
    "count",
    "eq",
    "eq_by",
    "find",
    "find_map",
    "fold",
    "for_each",
    "ge",
    "gt",
    "is_partitioned",
    "is_sorted",
    "is_sorted_by",
    "is_sorted_by_key",
    "last",
    "le",
    "lt",
    "max",
    "max_by",
    "max_by_key",
    "min",
    "min_by",
    "min_by_key",
    "ne",
    "next",
    "next_back",
    "nth",
    "nth_back",
    "partial_cmp",
    "partial_cmp_by",
    "partition",
    "position",
    "product",
    "reduce",
    "rfind",
    "rfold",
    "rposition",
    "sum",
    "try_collect",
    "try_fold",
    "try_for_each",
    "try_reduce",
    "try_rfold",
    "unzip",
];

/// A recognised pipeline: how many method calls of the chain (counted from the
/// consumer inwards) run on `AutoIter`, and where `par_auto()` goes.
#[derive(Debug)]
pub(crate) struct Pipeline {
    /// The consumer and the adapters before it: this many calls, counting the
    /// consumer, are rewritten; the receiver of the innermost one is the source.
    pub calls: usize,
    /// The name of the first call on `AutoIter` (where `par_auto()` goes): the plan's
    /// call site points here.
    pub parallel_start: Span,
}

/// Recognises `call` as the consumer of a pipeline.
pub(crate) fn recognise(call: &ExprMethodCall) -> Option<Pipeline> {
    let name = call.method.to_string();
    let &Consumer {
        arity,
        turbofish,
        parallel,
        ..
    } = CONSUMERS.iter().find(|c| c.name == name)?;
    if call.args.len() != arity || (call.turbofish.is_some() && !turbofish) {
        return None;
    }

    // The adapters right before the consumer.
    let mut calls = 1;
    let mut parallel_start = call.method.span();
    let mut cur = &*call.receiver;
    while let Expr::MethodCall(m) = cur {
        if !is_adapter(m) {
            break;
        }
        calls += 1;
        parallel_start = m.method.span();
        cur = &m.receiver;
    }
    if calls == 1 && !parallel {
        return None;
    }

    // The source, back to the previous consumer of the chain.
    while let Expr::MethodCall(m) = cur {
        let name = m.method.to_string();
        if ENDS.contains(&name.as_str()) {
            break;
        }
        if takes_closure(m) || hands_out_mut(&name) || already_parallel(&name) {
            return None;
        }
        cur = &m.receiver;
    }
    Some(Pipeline {
        calls,
        parallel_start,
    })
}

fn is_adapter(m: &ExprMethodCall) -> bool {
    let name = m.method.to_string();
    m.turbofish.is_none()
        && ADAPTERS
            .iter()
            .any(|&(n, arity)| n == name && m.args.len() == arity)
}

/// A method that takes a closure: a std one by name, or any with a closure argument.
fn takes_closure(m: &ExprMethodCall) -> bool {
    CLOSURE_METHODS.contains(&m.method.to_string().as_str())
        || m.args.iter().any(|a| matches!(a, Expr::Closure(_)))
}

fn hands_out_mut(name: &str) -> bool {
    name.ends_with("_mut")
}

/// `par_auto()`, rayon's `par_iter()`, `into_par_iter()`, …, and a pipeline this macro
/// already rewrote (`__amorsize_par`, should the attribute be given twice).
fn already_parallel(name: &str) -> bool {
    name.starts_with("par_") || name.starts_with("into_par_") || name.starts_with("__amorsize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(src: &str) -> Option<usize> {
        let e: Expr = syn::parse_str(src).unwrap();
        match e {
            Expr::MethodCall(m) => recognise(&m).map(|p| p.calls),
            _ => panic!("not a method call: {src}"),
        }
    }

    #[test]
    fn pipelines() {
        assert_eq!(calls("v.iter().map(f).collect()"), Some(2));
        assert_eq!(calls("v.iter().filter(p).map(f).sum::<u64>()"), Some(3));
        assert_eq!(calls("v.iter().for_each(|x| g(x))"), Some(1));
        assert_eq!(
            calls("(0..n).enumerate().zip(w).take(3).map(f).count()"),
            Some(2)
        );
        assert_eq!(
            calls("s.lines().filter_map(|l| l.parse().ok()).count()"),
            Some(2)
        );
        assert_eq!(
            calls("v.iter().map(f).collect::<Vec<_>>().into_iter().map(g).max()"),
            Some(2)
        );
        assert_eq!(calls("data.lock().unwrap().iter().map(f).min()"), Some(2));
        assert_eq!(calls("v.iter().inspect(h).any(|x| *x > 3)"), Some(2));
    }

    #[test]
    fn not_pipelines() {
        // No closure to run in parallel.
        assert_eq!(calls("v.iter().copied().sum::<u64>()"), None);
        assert_eq!(calls("v.iter().copied().reduce(|a, b| a + b)"), None);
        // An adapter AutoIter lacks after the first closure.
        assert_eq!(calls("v.iter().map(f).take(3).count()"), None);
        assert_eq!(calls("v.iter().flat_map(f).count()"), None);
        assert_eq!(calls("v.iter().map(f).flat_map(g).count()"), None);
        assert_eq!(calls("v.iter().take_while(p).map(f).count()"), None);
        assert_eq!(calls("v.iter().map(f).fold(0, |a, b| a + b)"), None);
        // `&mut` items, already parallel.
        assert_eq!(calls("v.iter_mut().map(f).count()"), None);
        assert_eq!(calls("v.par_iter().map(f).count()"), None);
        assert_eq!(calls("v.par_auto().map(f).count()"), None);
        assert_eq!(calls("(&w).__amorsize_par(&C).map(f).count()"), None);
        // Not std's arity or generic parameters.
        assert_eq!(calls("a.map(f).max(b)"), None);
        assert_eq!(calls("v.iter().map::<u8, _>(f).count()"), None);
        assert_eq!(calls("v.iter().map(f).count::<u8>()"), None);
        // A closure before the source's end.
        assert_eq!(calls("o.map(|x| x).unwrap().iter().map(f).count()"), None);
    }
}
