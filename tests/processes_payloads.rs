//! Processes: a panic in a task reaches the caller with its payload as it was, as on
//! threads: `panic!("literal")` as a `&'static str`, `panic!("{}", x)` as a `String`,
//! with the same text. Under `catch_unwind()` the item's `Err` carries the text.
#![cfg(unix)]

mod quiet_panics;
mod support_processes;

use amorsize::prelude::*;
use amorsize::{Backend, ErrorKind};
use support_processes::{payload_text, within};

const LITERAL: &str = "a literal panic at item seven";
const FORMATTED: &str = "a formatted panic at item 7";

/// Panics on item 7 with a `&'static str` payload.
#[amorsize::task]
fn literal_panic_at_7(x: u64) -> u64 {
    quiet_panics::quiet_panics(|m| m == LITERAL || m == FORMATTED);
    if x == 7 {
        panic!("a literal panic at item seven");
    }
    x
}

/// Panics on item 7 with a `String` payload.
#[amorsize::task]
fn formatted_panic_at_7(x: u64) -> u64 {
    quiet_panics::quiet_panics(|m| m == LITERAL || m == FORMATTED);
    if x == 7 {
        panic!("a formatted panic at item {}", x);
    }
    x
}

/// 20 items through `$task` (by name: only a named task can run on processes) on
/// `$backend`, fully pinned so that every item runs there.
macro_rules! job {
    ($backend:expr, $task:ident) => {
        (0..20u64)
            .par_auto()
            .backend($backend)
            .max_workers(2)
            .chunk_size(4)
            .map($task)
    };
}

/// The payload of the panic that `run` lets reach the caller.
fn payload_of(run: impl FnOnce() -> Vec<u64> + Send + 'static) -> Box<dyn std::any::Any + Send> {
    within(60, "a job whose task panics", move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
            .expect_err("item 7 panics: the job cannot succeed")
    })
}

/// The payload's type, for messages.
fn type_of(payload: &(dyn std::any::Any + Send)) -> &'static str {
    if payload.is::<&'static str>() {
        "&'static str"
    } else if payload.is::<String>() {
        "String"
    } else {
        "neither &'static str nor String"
    }
}

#[test]
fn a_literal_panic_reaches_the_caller_as_a_static_str() {
    for backend in [Backend::Threads, Backend::Processes] {
        let payload = payload_of(move || job!(backend, literal_panic_at_7).collect());
        assert_eq!(
            payload.downcast_ref::<&'static str>(),
            Some(&LITERAL),
            "on {backend}, `panic!(\"literal\")` reached the caller as a {}: {:?}",
            type_of(&*payload),
            payload_text(&*payload)
        );
    }
}

#[test]
fn a_formatted_panic_reaches_the_caller_as_a_string() {
    for backend in [Backend::Threads, Backend::Processes] {
        let payload = payload_of(move || job!(backend, formatted_panic_at_7).collect());
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some(FORMATTED),
            "on {backend}, `panic!(\"{{}}\", x)` reached the caller as a {}: {:?}",
            type_of(&*payload),
            payload_text(&*payload)
        );
    }
}

/// Item 7 is a panic `Err` carrying `text`; every other item is right.
fn check_caught(r: &[Result<u64, amorsize::Error>], text: &str) {
    assert_eq!(r.len(), 20);
    for (i, x) in r.iter().enumerate() {
        if i == 7 {
            let e = x.as_ref().expect_err("item 7 panics");
            assert_eq!(e.index(), 7, "{e}");
            assert_eq!(e.kind(), &ErrorKind::Panic, "{e}");
            assert_eq!(e.message(), text, "{e}");
            assert!(e.to_string().contains(text), "{e}");
        } else {
            assert_eq!(x, &Ok(i as u64), "item {i}");
        }
    }
}

#[test]
fn under_catch_unwind_the_error_carries_the_text() {
    let r = within(60, "a job under catch_unwind", || {
        job!(Backend::Processes, literal_panic_at_7)
            .catch_unwind()
            .collect::<Vec<_>>()
    });
    check_caught(&r, LITERAL);
    let r = within(60, "a job under catch_unwind", || {
        job!(Backend::Processes, formatted_panic_at_7)
            .catch_unwind()
            .collect::<Vec<_>>()
    });
    check_caught(&r, FORMATTED);
}
