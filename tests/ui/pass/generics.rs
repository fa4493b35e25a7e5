use std::fmt::Debug;
use std::rc::Rc;

use amorsize::prelude::*;

/// Items `Send`: the pipeline runs through amorsize.
#[auto_parallel]
fn describe_send<T: Debug + Send + Sync>(v: &[T]) -> Vec<String> {
    v.iter().map(|x| format!("{x:?}")).collect()
}

/// No `Send` bound: the pipeline stays a std chain, and still compiles.
#[auto_parallel]
fn describe_any<T: Debug>(v: Vec<T>) -> Vec<String> {
    v.into_iter().map(|x| format!("{x:?}")).collect()
}

/// `impl Trait` arguments and a `where` clause.
#[auto_parallel]
fn longest<I>(words: I) -> Option<usize>
where
    I: IntoIterator,
    I::Item: AsRef<str> + Send,
    I::IntoIter: Send,
{
    words.into_iter().map(|w| w.as_ref().len()).max()
}

fn main() {
    assert_eq!(describe_send(&[1, 2]), ["1", "2"]);
    assert_eq!(describe_any(vec![Rc::new(1)]), ["1"]);
    assert_eq!(longest(vec!["a", "abc"]), Some(3));
}
