//! No silent fallback: an `#[auto_parallel]` pipeline whose items cannot go to another
//! thread runs as written, and says so once when decisions are logged.

mod support;
use support::{is_child, run_child};

use std::rc::Rc;

use amorsize::prelude::*;

#[auto_parallel]
fn lengths(words: Vec<Rc<str>>) -> Vec<usize> {
    words.into_iter().map(|w| w.len()).collect()
}

const NAME: &str = "child_runs_a_non_send_pipeline_twice";

#[test]
fn child_runs_a_non_send_pipeline_twice() {
    if !is_child(NAME) {
        return;
    }
    for _ in 0..2 {
        let words: Vec<Rc<str>> = ["a", "bb", "ccc"].into_iter().map(Rc::from).collect();
        assert_eq!(lengths(words), [1, 2, 3]);
    }
    println!("child finished");
}

fn said(log: Option<&str>) -> Vec<String> {
    let env: Vec<(&str, &str)> = log.map(|v| ("AMORSIZE_LOG", v)).into_iter().collect();
    let out = run_child(NAME, &env, 60);
    assert!(
        out.success && out.stdout.contains("child finished"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    out.stderr
        .lines()
        .filter(|l| l.contains("runs as written"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_pipeline_of_items_that_are_not_send_says_it_runs_as_written_once() {
    let lines = said(Some("plan"));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("lengths"), "{}", lines[0]);
    assert!(lines[0].contains("not `Send`"), "{}", lines[0]);
    assert!(
        said(None).is_empty(),
        "nothing is said when decisions are not logged"
    );
}
