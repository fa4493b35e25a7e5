//! Processes: a task sent to a worker process is the task the caller passed to `map`,
//! and no other, even when two tasks look alike. Two `#[amorsize::task] fn helper`
//! nested in two functions of one module have the same module path, name and
//! signature; two tasks taking two different local `struct P` have the same spelling
//! of their types too. Each must still return its own results, also when the same
//! worker processes serve all of them in turn.
#![cfg(unix)]

mod support_processes;

use amorsize::Backend;
use amorsize::prelude::*;
use support_processes::within;

const N: u64 = 100;

/// Compares `got` with `want` item by item; on a difference, describes it, naming the
/// job, the first wrong items and how many there are.
fn compare<T: PartialEq + std::fmt::Debug>(
    job: &str,
    round: usize,
    got: &[Result<T, amorsize::Error>],
    want: &[T],
) -> Option<String> {
    if got.len() != want.len() {
        return Some(format!(
            "{job}, round {round}: {} results for {} items",
            got.len(),
            want.len()
        ));
    }
    let wrong: Vec<String> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (g, w))| g.as_ref().ok() != Some(*w))
        .map(|(i, (g, w))| format!("item {i}: got {g:?}, want {w:?}"))
        .collect();
    (!wrong.is_empty()).then(|| {
        format!(
            "{job}, round {round}: {} of {} results are not this task's; first: {:#?}",
            wrong.len(),
            want.len(),
            &wrong[..wrong.len().min(3)]
        )
    })
}

/// The same items through a task on two worker processes, 10 items a chunk (fully
/// pinned, so no item is sampled on the caller's thread).
macro_rules! on_processes {
    ($items:expr, $task:expr) => {
        $items
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(10)
            .map($task)
            .catch_unwind()
            .collect::<Vec<_>>()
    };
}

fn plus_one_on_processes() -> Vec<Result<u64, amorsize::Error>> {
    #[amorsize::task]
    fn helper(x: u64) -> u64 {
        x + 1
    }
    on_processes!((0..N), helper)
}

fn times_thousand_on_processes() -> Vec<Result<u64, amorsize::Error>> {
    #[amorsize::task]
    fn helper(x: u64) -> u64 {
        x * 1000
    }
    on_processes!((0..N), helper)
}

fn points_on_processes() -> Vec<Result<String, amorsize::Error>> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct P {
        x: u64,
        y: u64,
    }

    #[amorsize::task]
    fn describe(p: P) -> String {
        format!("point ({}, {})", p.x, p.y)
    }
    let items: Vec<P> = (0..N).map(|i| P { x: i, y: 2 * i }).collect();
    on_processes!(items, describe)
}

fn people_on_processes() -> Vec<Result<String, amorsize::Error>> {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct P {
        name: String,
        age: u32,
    }

    #[amorsize::task]
    fn describe(p: P) -> String {
        format!("{} is {} years old", p.name, p.age)
    }
    let items: Vec<P> = (0..N)
        .map(|i| P {
            name: format!("person{i}"),
            age: i as u32 % 90,
        })
        .collect();
    on_processes!(items, describe)
}

#[test]
fn same_named_tasks_each_return_their_own_results() {
    within(120, "four look-alike tasks on worker processes", || {
        let plus_one: Vec<u64> = (0..N).map(|x| x + 1).collect();
        let times_thousand: Vec<u64> = (0..N).map(|x| x * 1000).collect();
        let points: Vec<String> = (0..N).map(|i| format!("point ({i}, {})", 2 * i)).collect();
        let people: Vec<String> = (0..N)
            .map(|i| format!("person{i} is {} years old", i % 90))
            .collect();
        // Alternately, so the pool's idle workers serve one task, then the other.
        let mut failures = Vec::new();
        for round in 0..3 {
            failures.extend(compare(
                "fn helper(x) -> x + 1",
                round,
                &plus_one_on_processes(),
                &plus_one,
            ));
            failures.extend(compare(
                "fn helper(x) -> x * 1000",
                round,
                &times_thousand_on_processes(),
                &times_thousand,
            ));
            failures.extend(compare(
                "fn describe(P { x, y }) -> String",
                round,
                &points_on_processes(),
                &points,
            ));
            failures.extend(compare(
                "fn describe(P { name, age }) -> String",
                round,
                &people_on_processes(),
                &people,
            ));
        }
        assert!(
            failures.is_empty(),
            "{} of 12 jobs got another task's results (the worker ran another task with \
             the same module path, name and signature):\n{}",
            failures.len(),
            failures.join("\n")
        );
    });
}
