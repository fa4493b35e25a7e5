//! The annotated item: a function with a body (free, inherent method, trait-impl method
//! or provided trait method), kept as syn parsed it so every span is the user's.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{Item, ItemFn, TraitItemFn};

/// A function `#[auto_parallel]` can rewrite.
pub(crate) struct Function {
    pub item: ItemFn,
}

impl Function {
    /// Parses the annotated item; anything but a function with a body is an error on the
    /// item's head.
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Function> {
        if let Ok(item) = syn::parse2::<ItemFn>(tokens.clone()) {
            return Ok(Function { item });
        }
        if let Ok(f) = syn::parse2::<TraitItemFn>(tokens.clone())
            && f.default.is_none()
        {
            return Err(syn::Error::new_spanned(
                &f.sig,
                "`#[auto_parallel]` needs a function body to rewrite; put it on the \
                 implementations of this method instead",
            ));
        }
        match syn::parse2::<Item>(tokens) {
            Ok(item) => Err(syn::Error::new_spanned(
                head(&item),
                "`#[auto_parallel]` goes on a function (a free function or a method in an \
                 `impl` block), whose iterator pipelines it rewrites",
            )),
            Err(e) => Err(e),
        }
    }

    /// The function's name as written, without `r#`.
    pub(crate) fn name(&self) -> String {
        self.item.sig.ident.unraw().to_string()
    }

    /// What `#[auto_parallel]` cannot handle yet: `async fn`, `const fn`.
    pub(crate) fn check(&self) -> Vec<syn::Error> {
        let sig = &self.item.sig;
        let mut errors = Vec::new();
        if let Some(a) = &sig.asyncness {
            errors.push(syn::Error::new_spanned(
                a,
                "`#[auto_parallel]` does not support `async fn` yet: move the pipelines into \
                 a plain function with `#[auto_parallel]` and call it from here (for example \
                 through `tokio::task::spawn_blocking`)",
            ));
        }
        if let Some(c) = &sig.constness {
            errors.push(syn::Error::new_spanned(
                c,
                "`#[auto_parallel]` cannot rewrite a `const fn`: the rewritten pipelines call \
                 amorsize's runtime, which is not `const`",
            ));
        }
        errors
    }
}

/// The first tokens of an item, enough to point at it: keyword and name.
fn head(item: &Item) -> TokenStream {
    let mut t = TokenStream::new();
    match item {
        Item::Struct(i) => {
            i.struct_token.to_tokens(&mut t);
            i.ident.to_tokens(&mut t);
        }
        Item::Enum(i) => {
            i.enum_token.to_tokens(&mut t);
            i.ident.to_tokens(&mut t);
        }
        Item::Union(i) => {
            i.union_token.to_tokens(&mut t);
            i.ident.to_tokens(&mut t);
        }
        Item::Trait(i) => {
            i.trait_token.to_tokens(&mut t);
            i.ident.to_tokens(&mut t);
        }
        Item::Impl(i) => {
            i.impl_token.to_tokens(&mut t);
            i.self_ty.to_tokens(&mut t);
        }
        Item::Mod(i) => {
            i.mod_token.to_tokens(&mut t);
            i.ident.to_tokens(&mut t);
        }
        Item::Const(i) => {
            i.const_token.to_tokens(&mut t);
            i.ident.to_tokens(&mut t);
        }
        Item::Static(i) => {
            i.static_token.to_tokens(&mut t);
            i.ident.to_tokens(&mut t);
        }
        Item::Type(i) => {
            i.type_token.to_tokens(&mut t);
            i.ident.to_tokens(&mut t);
        }
        other => other.to_tokens(&mut t),
    }
    t
}
