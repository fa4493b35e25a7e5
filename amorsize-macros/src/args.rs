//! The arguments of `#[auto_parallel(...)]`: parsed into [`Args`], whose fields remember
//! the span they were written at, so that duplicates and conflicts are reported on the
//! offending argument. Code generation gets their values only ([`Args::settings`]).

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, Meta, Token};

use crate::codegen::{Backend, Settings};
use crate::errors::Errors;

/// Every argument, in the form the error messages show it.
const VALID: &str = "`serial`, \
     `backend = \"rayon\" | \"threads\" | \"processes\" | \"cluster\" | \"serial\"`, \
     `max_workers = N`, `chunk_size = N`, `min_speedup = F`, `log`, `progress`";

/// The backends `backend = "…"` accepts, by the name the user writes.
const BACKENDS: [(&str, Backend); 5] = [
    ("rayon", Backend::Rayon),
    ("threads", Backend::Threads),
    ("processes", Backend::Processes),
    ("cluster", Backend::Cluster),
    ("serial", Backend::Serial),
];

/// What the attribute said. Every field is `None` unless written, with the span of the
/// argument's name.
#[derive(Debug, Default)]
pub(crate) struct Args {
    pub serial: Option<Span>,
    pub backend: Option<(Backend, Span)>,
    pub max_workers: Option<(usize, Span)>,
    pub chunk_size: Option<(usize, Span)>,
    pub min_speedup: Option<(f64, Span)>,
    pub log: Option<Span>,
    pub progress: Option<Span>,
}

impl Args {
    /// Parses the attribute's arguments, reporting every mistake at once.
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens)?;
        let mut args = Args::default();
        let mut errors = Errors::new();
        for meta in &metas {
            if let Err(e) = args.add(meta) {
                errors.push(e);
            }
        }
        errors.extend(args.check());
        errors.check().map(|()| args)
    }

    /// The values the generated `Config` is built from, without their spans.
    pub(crate) fn settings(&self) -> Settings {
        Settings {
            backend: self.backend.map(|(b, _)| b),
            max_workers: self.max_workers.map(|(n, _)| n),
            chunk_size: self.chunk_size.map(|(n, _)| n),
            min_speedup: self.min_speedup.map(|(f, _)| f),
            log: self.log.is_some(),
            progress: self.progress.is_some(),
        }
    }

    /// The arguments other than `serial` that were given, with their spans.
    fn others(&self) -> Vec<(&'static str, Span)> {
        let mut v = Vec::new();
        let mut put = |name, span: Option<Span>| {
            if let Some(s) = span {
                v.push((name, s));
            }
        };
        put("backend", self.backend.map(|(_, s)| s));
        put("max_workers", self.max_workers.map(|(_, s)| s));
        put("chunk_size", self.chunk_size.map(|(_, s)| s));
        put("min_speedup", self.min_speedup.map(|(_, s)| s));
        put("log", self.log);
        put("progress", self.progress);
        v
    }

    /// Rules between arguments, checked once all are known.
    fn check(&self) -> Vec<syn::Error> {
        match self.serial {
            Some(_) => self
                .others()
                .into_iter()
                .map(|(name, span)| {
                    syn::Error::new(
                        span,
                        format!(
                            "`{name}` has no effect together with `serial`, which leaves the \
                             function as written; remove one of them"
                        ),
                    )
                })
                .collect(),
            None => Vec::new(),
        }
    }

    fn add(&mut self, meta: &Meta) -> syn::Result<()> {
        let path = meta.path();
        let Some(ident) = path.get_ident() else {
            return Err(unknown(path, &path_text(path)));
        };
        let name = ident.to_string();
        let span = ident.span();
        match name.as_str() {
            "serial" => set(&mut self.serial, span, &name, flag(meta, &name)?),
            "log" => set(&mut self.log, span, &name, flag(meta, &name)?),
            "progress" => set(&mut self.progress, span, &name, flag(meta, &name)?),
            "backend" => {
                let b = backend(value(meta, &name, "\"threads\"")?)?;
                set(&mut self.backend, span, &name, (b, span))
            }
            "max_workers" => {
                let n = count(value(meta, &name, "8")?, &name)?;
                set(&mut self.max_workers, span, &name, (n, span))
            }
            "chunk_size" => {
                let n = count(value(meta, &name, "64")?, &name)?;
                set(&mut self.chunk_size, span, &name, (n, span))
            }
            "min_speedup" => {
                let f = factor(value(meta, &name, "1.5")?)?;
                set(&mut self.min_speedup, span, &name, (f, span))
            }
            _ => Err(unknown(ident, &name)),
        }
    }
}

/// Stores `value` unless the argument was already given.
fn set<T>(slot: &mut Option<T>, span: Span, name: &str, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            span,
            format!("`{name}` is given more than once"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn unknown(tokens: impl quote::ToTokens, name: &str) -> syn::Error {
    syn::Error::new_spanned(
        tokens,
        format!("unknown argument `{name}`; the arguments of `#[auto_parallel]` are {VALID}"),
    )
}

fn path_text(path: &syn::Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    segments.join("::")
}

/// A flag takes no value: `log`, not `log = true`.
fn flag(meta: &Meta, name: &str) -> syn::Result<Span> {
    match meta {
        Meta::Path(p) => Ok(p.span()),
        _ => Err(syn::Error::new_spanned(
            meta,
            format!("`{name}` takes no value: write `#[auto_parallel({name})]`"),
        )),
    }
}

/// The value of `name = value`.
fn value<'a>(meta: &'a Meta, name: &str, example: &str) -> syn::Result<&'a Expr> {
    match meta {
        Meta::NameValue(nv) => Ok(&nv.value),
        _ => Err(syn::Error::new_spanned(
            meta,
            format!("`{name}` needs a value: write `{name} = {example}`"),
        )),
    }
}

fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, attrs }) if attrs.is_empty() => Some(lit),
        _ => None,
    }
}

fn backend(value: &Expr) -> syn::Result<Backend> {
    let names = "\"rayon\", \"threads\", \"processes\", \"cluster\" or \"serial\"";
    match literal(value) {
        Some(Lit::Str(s)) => {
            let text = s.value();
            BACKENDS
                .iter()
                .find(|(n, _)| *n == text)
                .map(|&(_, b)| b)
                .ok_or_else(|| {
                    syn::Error::new_spanned(
                        s,
                        format!("unknown backend \"{text}\": expected {names}"),
                    )
                })
        }
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`backend` expects a string: {names}, as in `backend = \"threads\"`"),
        )),
    }
}

/// A whole number of at least 1, for `max_workers` and `chunk_size`.
fn count(value: &Expr, name: &str) -> syn::Result<usize> {
    let bad = || {
        syn::Error::new_spanned(
            value,
            format!("`{name}` expects a whole number of at least 1, as in `{name} = 8`"),
        )
    };
    match literal(value) {
        Some(Lit::Int(i)) if i.suffix().is_empty() || i.suffix() == "usize" => {
            match i.base10_parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

/// A positive, finite number, for `min_speedup`.
fn factor(value: &Expr) -> syn::Result<f64> {
    let parsed = match literal(value) {
        Some(Lit::Float(f)) if f.suffix().is_empty() || f.suffix() == "f64" => {
            f.base10_parse::<f64>().ok()
        }
        Some(Lit::Int(i)) if i.suffix().is_empty() => i.base10_parse::<f64>().ok(),
        _ => None,
    };
    match parsed {
        Some(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(syn::Error::new_spanned(
            value,
            "`min_speedup` expects a positive number, as in `min_speedup = 1.5` \
             (stay serial unless parallel is predicted at least 1.5 times faster)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(t: TokenStream) -> Result<Args, String> {
        Args::parse(t).map_err(|e| {
            e.into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(" | ")
        })
    }

    #[test]
    fn every_form() {
        let a = parse(quote!(
            backend = "threads",
            max_workers = 4,
            chunk_size = 16,
            min_speedup = 1.5,
            log,
            progress
        ))
        .unwrap();
        assert_eq!(a.backend.map(|b| b.0), Some(Backend::Threads));
        assert_eq!(a.max_workers.map(|b| b.0), Some(4));
        assert_eq!(a.chunk_size.map(|b| b.0), Some(16));
        assert_eq!(a.min_speedup.map(|b| b.0), Some(1.5));
        assert!(a.log.is_some() && a.progress.is_some() && a.serial.is_none());
        assert!(parse(quote!(serial)).unwrap().serial.is_some());
        assert_eq!(
            parse(quote!(min_speedup = 2))
                .unwrap()
                .min_speedup
                .map(|b| b.0),
            Some(2.0)
        );
        assert!(parse(quote!()).is_ok());
        assert!(parse(quote!(log,)).is_ok());
    }

    #[test]
    fn mistakes() {
        let e = parse(quote!(fast)).unwrap_err();
        assert!(
            e.contains("unknown argument `fast`") && e.contains("max_workers = N"),
            "{e}"
        );
        let e = parse(quote!(log, log)).unwrap_err();
        assert!(e.contains("`log` is given more than once"), "{e}");
        let e = parse(quote!(backend = "gpu")).unwrap_err();
        assert!(e.contains("unknown backend \"gpu\""), "{e}");
        let e = parse(quote!(backend = threads)).unwrap_err();
        assert!(e.contains("expects a string"), "{e}");
        let e = parse(quote!(max_workers = "x")).unwrap_err();
        assert!(e.contains("whole number"), "{e}");
        let e = parse(quote!(chunk_size = 0)).unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
        let e = parse(quote!(min_speedup = -1.0)).unwrap_err();
        assert!(e.contains("positive number"), "{e}");
        let e = parse(quote!(log = true)).unwrap_err();
        assert!(e.contains("takes no value"), "{e}");
        let e = parse(quote!(backend)).unwrap_err();
        assert!(e.contains("needs a value"), "{e}");
        let e = parse(quote!(serial, log)).unwrap_err();
        assert!(e.contains("no effect together with `serial`"), "{e}");
        // Every mistake at once.
        let e = parse(quote!(fast, backend = "gpu")).unwrap_err();
        assert!(e.contains("fast") && e.contains("gpu"), "{e}");
    }
}
