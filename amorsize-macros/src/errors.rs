//! The error collector shared by the phases that can find several mistakes at once
//! (`args`, `task`, the `#[auto_parallel]` driver): the user sees every mistake of the
//! attribute in one compilation instead of one per fix-and-rebuild.

/// Collects `syn::Error`s and hands them over as one, every message on its own span, in
/// the order they were pushed (`syn::Error::combine`).
///
/// It must be consumed with [`Errors::check`]: dropping it unchecked panics (outside of
/// an unwinding panic), so that no path through a macro can lose an error silently.
#[must_use = "the collected errors must be reported: call `check`"]
pub(crate) struct Errors {
    /// `None` once checked.
    collected: Option<Vec<syn::Error>>,
}

impl Errors {
    pub(crate) fn new() -> Errors {
        Errors {
            collected: Some(Vec::new()),
        }
    }

    pub(crate) fn push(&mut self, error: syn::Error) {
        self.pending().push(error);
    }

    pub(crate) fn extend(&mut self, errors: impl IntoIterator<Item = syn::Error>) {
        self.pending().extend(errors);
    }

    /// `Ok` if nothing was collected, else every error combined into one.
    pub(crate) fn check(mut self) -> syn::Result<()> {
        let mut errors = self
            .collected
            .take()
            .expect("`check` consumes the collector")
            .into_iter();
        match errors.next() {
            None => Ok(()),
            Some(mut combined) => {
                combined.extend(errors);
                Err(combined)
            }
        }
    }

    fn pending(&mut self) -> &mut Vec<syn::Error> {
        self.collected
            .as_mut()
            .expect("`check` consumes the collector")
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        if self.collected.is_some() && !std::thread::panicking() {
            panic!("an `Errors` collector was dropped without `check`: its errors would be lost");
        }
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::Span;

    use super::*;

    #[test]
    fn combines_in_the_order_pushed() {
        let mut errors = Errors::new();
        errors.push(syn::Error::new(Span::call_site(), "first"));
        errors.extend([
            syn::Error::new(Span::call_site(), "second"),
            syn::Error::new(Span::call_site(), "third"),
        ]);
        let messages: Vec<String> = errors
            .check()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(messages, ["first", "second", "third"]);
    }

    #[test]
    fn nothing_collected_is_ok() {
        assert!(Errors::new().check().is_ok());
    }

    #[test]
    #[should_panic(expected = "dropped without `check`")]
    fn dropping_unchecked_panics() {
        let mut errors = Errors::new();
        errors.push(syn::Error::new(Span::call_site(), "lost"));
        drop(errors);
    }
}
