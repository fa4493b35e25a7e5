//! Laziness in memory terms: a 10M-item `for_each` over a lazy source never holds the
//! input. Materialised, 10M `u64`s are 80 MB; the peak resident memory (VmHWM) of the
//! process may grow by less than 30 MB over the job, on Rayon, on Threads (pinned) and
//! with the automatic choice, for a source of known length and one of unknown length.
//!
//! Peak memory only ever grows, so each scenario runs in a fresh child process of this
//! test binary (started by the test of the same name without the `child_` prefix).
//! Each takes about half a second in a debug build.
#![cfg(target_os = "linux")]

mod support;

use amorsize::prelude::*;
use amorsize::{Backend, Plan};
use support::{is_child, run_child, status_field};

const ITEMS: u64 = 10_000_000;
/// Allowed growth of the peak resident memory over the job.
const MAX_GROWTH_KB: u64 = 30 * 1024;

/// Runs the job in this (child) process and prints the peak memory before and after.
fn job(backend: Option<Backend>, known_length: bool) {
    let run = |n: u64, hook: &mut dyn FnMut(&Plan)| {
        let sum = std::sync::atomic::AtomicU64::new(0);
        let add = |x: u64| {
            sum.fetch_add(x & 1, std::sync::atomic::Ordering::Relaxed);
        };
        let mut plan = None;
        if known_length {
            let it = (0..n).par_auto();
            let it = match backend {
                Some(b) => it.backend(b),
                None => it,
            };
            it.on_plan(|p| plan = Some(p.clone())).for_each(add);
        } else {
            let it = (0u64..).take_while(move |&x| x < n).par_auto();
            let it = match backend {
                Some(b) => it.backend(b),
                None => it,
            };
            it.on_plan(|p| plan = Some(p.clone())).for_each(add);
        }
        hook(&plan.expect("on_plan is called"));
        assert_eq!(sum.into_inner(), n / 2);
    };
    // Warm up: the probe and the pools exist before the measurement starts.
    run(200_000, &mut |_| {});
    let before = status_field("VmHWM");
    let mut shown = String::new();
    run(ITEMS, &mut |p| shown = format!("{p}"));
    let after = status_field("VmHWM");
    // Own lines: the harness may have left "test … " unterminated on stdout.
    println!("\nplan: {shown}");
    println!("peak-kb before={before} after={after}");
}

/// Runs the child scenario `name` and checks the growth it reports.
fn check(name: &str) {
    let out = run_child(name, &[], 600);
    assert!(
        out.success,
        "{name} failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("peak-kb "))
        .unwrap_or_else(|| panic!("{name}: no report in\n{}", out.stdout));
    let field = |key: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("{name}: cannot read {key} from {line:?}"))
    };
    let (before, after) = (field("before"), field("after"));
    let growth = after.saturating_sub(before);
    let plan = out
        .stdout
        .lines()
        .find(|l| l.starts_with("plan: "))
        .unwrap_or("");
    eprintln!("{name}: peak {before} kB -> {after} kB (+{growth} kB); {plan}");
    assert!(
        growth < MAX_GROWTH_KB,
        "{name}: peak memory grew by {growth} kB over a lazy 10M-item for_each \
         (limit {MAX_GROWTH_KB} kB); {plan}"
    );
}

macro_rules! scenario {
    ($parent:ident, $child:ident, $backend:expr, $known:expr) => {
        #[test]
        fn $child() {
            if is_child(stringify!($child)) {
                job($backend, $known);
            }
        }

        #[test]
        fn $parent() {
            check(stringify!($child));
        }
    };
}

scenario!(
    rayon_known_length,
    child_rayon_known_length,
    Some(Backend::Rayon),
    true
);
scenario!(
    threads_known_length,
    child_threads_known_length,
    Some(Backend::Threads),
    true
);
scenario!(auto_known_length, child_auto_known_length, None, true);
scenario!(
    rayon_unknown_length,
    child_rayon_unknown_length,
    Some(Backend::Rayon),
    false
);
scenario!(
    threads_unknown_length,
    child_threads_unknown_length,
    Some(Backend::Threads),
    false
);
scenario!(auto_unknown_length, child_auto_unknown_length, None, false);
