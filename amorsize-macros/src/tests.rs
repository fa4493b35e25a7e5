//! Expansion snapshots: the macro's own output, pretty-printed, compared with the files
//! in `tests/snapshots/`. After a deliberate change, regenerate them with
//! `AMORSIZE_BLESS=1 cargo test -p amorsize-macros` and read the diff.

use std::path::PathBuf;

use proc_macro2::TokenStream;
use quote::quote;

use crate::auto_parallel;

/// Expands `#[auto_parallel(args)] item` and compares it with the snapshot `name`.
fn snapshot(name: &str, args: TokenStream, item: TokenStream) {
    let input: syn::File = syn::parse2(item.clone()).expect("the input is an item");
    let output: syn::File =
        syn::parse2(auto_parallel::expand(args.clone(), item)).expect("the expansion parses");
    let mut text = String::new();
    let args = args.to_string().replace(" ,", ",");
    match args.is_empty() {
        true => text.push_str("// #[auto_parallel]\n"),
        false => text.push_str(&format!("// #[auto_parallel({args})]\n")),
    }
    for line in prettyplease::unparse(&input).lines() {
        text.push_str(&format!("// {line}\n").replace("//  \n", "//\n"));
    }
    text.push_str("//\n// expands to:\n\n");
    text.push_str(&prettyplease::unparse(&output));

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.expanded.rs"));
    let bless = std::env::var_os("AMORSIZE_BLESS").is_some();
    match std::fs::read_to_string(&path) {
        Ok(expected) if !bless => assert!(
            expected == text,
            "the expansion of `{name}` changed; if that is intended, run \
             `AMORSIZE_BLESS=1 cargo test -p amorsize-macros` and review the diff.\n\
             --- expected ---\n{expected}\n--- actual ---\n{text}"
        ),
        Ok(_) => std::fs::write(&path, text).unwrap(),
        Err(_) => {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            assert!(
                bless,
                "new snapshot written to {}: review and commit it",
                path.display()
            );
        }
    }
}

#[test]
fn map_collect() {
    snapshot(
        "map_collect",
        quote!(),
        quote! {
            pub fn lengths(words: &[String]) -> Vec<usize> {
                words.iter().map(|w| w.len()).collect()
            }
        },
    );
}

#[test]
fn statements_and_arguments() {
    snapshot(
        "statements_and_arguments",
        quote!(
            backend = "threads",
            max_workers = 4,
            chunk_size = 16,
            min_speedup = 1.5,
            log,
            progress
        ),
        quote! {
            fn index(lines: &str, seen: &AtomicUsize) -> u64 {
                lines.lines().enumerate().for_each(|(i, l)| {
                    seen.fetch_add(i + l.len(), Ordering::Relaxed);
                });
                let n = (0..1000u64).filter(|x| x % 3 == 0).map(expensive).sum::<u64>();
                n
            }
        },
    );
}

#[test]
fn left_as_written() {
    snapshot(
        "left_as_written",
        quote!(),
        quote! {
            fn mixed(v: &mut Vec<u64>) -> usize {
                // `#[amorsize::serial]`: stripped, statement kept.
                #[amorsize::serial]
                let a: u64 = v.iter().map(|x| x * 2).sum();
                // An adapter `AutoIter` lacks after the first closure.
                let b = v.iter().map(|x| x + 1).take(3).count();
                // `&mut` items, a `for` loop, no closure, a nested item.
                v.iter_mut().for_each(|x| *x += 1);
                for x in v.iter() {
                    drop(x);
                }
                let c: u64 = v.iter().copied().sum();
                fn helper(v: &[u64]) -> usize {
                    v.iter().filter(|x| **x > 1).count()
                }
                // This one is rewritten.
                let d = v.iter().filter(|x| **x > a).count();
                b + c as usize + helper(v) + d
            }
        },
    );
}

#[test]
fn nested_and_method() {
    snapshot(
        "nested_and_method",
        quote!(),
        quote! {
            fn row_sums(&self) -> Vec<u64> {
                self.rows
                    .iter()
                    .map(|r| r.iter().map(|x| x * self.scale).sum::<u64>())
                    .collect()
            }
        },
    );
}

#[test]
fn serial_argument() {
    snapshot(
        "serial_argument",
        quote!(serial),
        quote! {
            fn total(v: &[u64]) -> u64 {
                #[amorsize::serial]
                let s: u64 = v.iter().map(|x| x + 1).sum();
                s + v.iter().map(|x| x * 2).sum::<u64>()
            }
        },
    );
}

#[test]
fn error_keeps_the_function() {
    snapshot(
        "error_keeps_the_function",
        quote!(backend = "gpu", workers = 4),
        quote! {
            fn total(v: &[u64]) -> u64 {
                #[amorsize::serial]
                let s: u64 = v.iter().map(|x| x + 1).sum();
                s
            }
        },
    );
}

#[test]
fn async_fn_is_an_error() {
    snapshot(
        "async_fn_is_an_error",
        quote!(),
        quote! {
            async fn total(v: &[u64]) -> u64 {
                v.iter().map(|x| x + 1).sum()
            }
        },
    );
}

#[test]
fn marker_with_arguments_is_an_error() {
    let out = auto_parallel::expand(
        quote!(),
        quote! {
            fn f(v: &[u64]) -> u64 {
                #[amorsize::serial(please)]
                let s: u64 = v.iter().map(|x| x + 1).sum();
                s
            }
        },
    )
    .to_string();
    assert!(out.contains("takes no arguments"), "{out}");
    // The function is emitted as written, without the marker.
    assert!(
        !out.contains("please") && !out.contains("__amorsize"),
        "{out}"
    );
}

#[test]
fn attribute_twice_rewrites_once() {
    let once = auto_parallel::expand(
        quote!(),
        quote! {
            fn f(v: &[u64]) -> u64 {
                v.iter().map(|x| x + 1).sum()
            }
        },
    );
    let twice = auto_parallel::expand(quote!(), once.clone()).to_string();
    assert_eq!(twice.matches("Wrap :: new").count(), 1, "{twice}");
}

#[test]
fn not_a_function_is_emitted_unchanged() {
    let item = quote!(
        struct S {
            a: u8,
        }
    );
    let out = auto_parallel::expand(quote!(), item.clone()).to_string();
    assert!(
        out.contains("compile_error") && out.ends_with(&item.to_string()),
        "{out}"
    );
}
