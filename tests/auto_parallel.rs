//! `#[auto_parallel]`: annotated functions give what their un-annotated twins give,
//! every item is processed exactly once, and the attribute's arguments reach the plan.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use amorsize::prelude::*;

const N: u64 = 5_000;

/// With the `serial` feature, annotated functions run their original bodies.
const SERIAL_FEATURE: bool = cfg!(feature = "serial");

fn data() -> Vec<u64> {
    (0..N).collect()
}

/// Something a little more costly than `x * x`, deterministic.
fn work(x: u64) -> u64 {
    (0..50).fold(x, |a, i| a.wrapping_mul(31).wrapping_add(i) % 1_000_003)
}

// ---- twins: the same body with and without the attribute -------------------------

macro_rules! twins {
    ($(#[$attr:meta])* fn $name:ident / $plain:ident $($rest:tt)*) => {
        $(#[$attr])* fn $name $($rest)*
        fn $plain $($rest)*
    };
}

twins! {
    #[auto_parallel]
    fn map_collect / map_collect_plain(v: &[u64], calls: &AtomicUsize) -> Vec<u64> {
        v.iter()
            .map(|&x| {
                calls.fetch_add(1, Ordering::Relaxed);
                work(x)
            })
            .collect()
    }
}

twins! {
    #[auto_parallel]
    fn filter_map_sum / filter_map_sum_plain(v: &[u64], calls: &AtomicUsize) -> u64 {
        v.iter()
            .filter(|x| {
                calls.fetch_add(1, Ordering::Relaxed);
                *x % 3 != 0
            })
            .map(|&x| work(x))
            .sum()
    }
}

twins! {
    #[auto_parallel]
    fn for_each_counter / for_each_counter_plain(v: &[u64], calls: &AtomicUsize) -> u64 {
        let total = AtomicUsize::new(0);
        v.iter().for_each(|&x| {
            calls.fetch_add(1, Ordering::Relaxed);
            total.fetch_add(work(x) as usize, Ordering::Relaxed);
        });
        total.into_inner() as u64
    }
}

twins! {
    #[auto_parallel]
    fn filter_map_count / filter_map_count_plain(words: &[String], calls: &AtomicUsize) -> usize {
        words
            .iter()
            .filter_map(|w| {
                calls.fetch_add(1, Ordering::Relaxed);
                w.parse::<u64>().ok()
            })
            .count()
    }
}

twins! {
    #[auto_parallel]
    fn enumerate_map / enumerate_map_plain(v: &[u64], calls: &AtomicUsize) -> Vec<(usize, u64)> {
        v.iter()
            .enumerate()
            .map(|(i, &x)| {
                calls.fetch_add(1, Ordering::Relaxed);
                (i, work(x))
            })
            .collect()
    }
}

twins! {
    /// `T: Send + Sync`: items `&T` are `Send`, the pipeline goes through `AutoIter`.
    #[auto_parallel]
    fn generic_send / generic_send_plain<T: ToString + Send + Sync>(v: &[T], calls: &AtomicUsize) -> Vec<String> {
        v.iter()
            .map(|x| {
                calls.fetch_add(1, Ordering::Relaxed);
                x.to_string()
            })
            .collect()
    }
}

twins! {
    /// No `Send` bound: the pipeline stays a std chain (and compiles).
    #[auto_parallel]
    fn generic_any / generic_any_plain<T: ToString>(v: Vec<T>, calls: &AtomicUsize) -> Vec<String> {
        v.into_iter()
            .map(|x| {
                calls.fetch_add(1, Ordering::Relaxed);
                x.to_string()
            })
            .collect()
    }
}

struct Scaler {
    factor: u64,
    items: Vec<u64>,
}

impl Scaler {
    #[auto_parallel]
    fn scaled(&self, calls: &AtomicUsize) -> Vec<u64> {
        self.items
            .iter()
            .map(|&x| {
                calls.fetch_add(1, Ordering::Relaxed);
                work(x) * self.factor
            })
            .collect()
    }

    fn scaled_plain(&self) -> Vec<u64> {
        self.items.iter().map(|&x| work(x) * self.factor).collect()
    }
}

trait Total {
    fn total(&self, calls: &AtomicUsize) -> u64;
}

impl Total for Scaler {
    #[auto_parallel]
    fn total(&self, calls: &AtomicUsize) -> u64 {
        self.items
            .iter()
            .filter(|&&x| x % 2 == 0)
            .map(|&x| {
                calls.fetch_add(1, Ordering::Relaxed);
                work(x) + self.factor
            })
            .sum()
    }
}

/// Checks `annotated` against `plain` and that `annotated` called its closure `expected`
/// times.
fn same<R: PartialEq + std::fmt::Debug>(
    annotated: impl FnOnce(&AtomicUsize) -> R,
    plain: impl FnOnce(&AtomicUsize) -> R,
    expected: usize,
) {
    let (a, b) = (AtomicUsize::new(0), AtomicUsize::new(0));
    assert_eq!(annotated(&a), plain(&b));
    assert_eq!(a.into_inner(), expected, "each item exactly once");
}

#[test]
fn annotated_functions_match_their_twins() {
    let v = data();
    let n = v.len();
    same(|c| map_collect(&v, c), |c| map_collect_plain(&v, c), n);
    same(
        |c| filter_map_sum(&v, c),
        |c| filter_map_sum_plain(&v, c),
        n,
    );
    same(
        |c| for_each_counter(&v, c),
        |c| for_each_counter_plain(&v, c),
        n,
    );
    let words: Vec<String> = (0..N)
        .map(|i| {
            if i % 4 == 0 {
                format!("w{i}")
            } else {
                i.to_string()
            }
        })
        .collect();
    same(
        |c| filter_map_count(&words, c),
        |c| filter_map_count_plain(&words, c),
        n,
    );
    same(|c| enumerate_map(&v, c), |c| enumerate_map_plain(&v, c), n);
    same(|c| generic_send(&v, c), |c| generic_send_plain(&v, c), n);
    same(
        |c| generic_any(v.clone(), c),
        |c| generic_any_plain(v.clone(), c),
        n,
    );
    let rcs: Vec<Rc<u64>> = v.iter().copied().map(Rc::new).collect();
    same(
        |c| generic_any(rcs.clone(), c),
        |c| generic_any_plain(rcs.clone(), c),
        n,
    );
}

#[test]
fn methods_match_their_twins() {
    let s = Scaler {
        factor: 7,
        items: data(),
    };
    let calls = AtomicUsize::new(0);
    assert_eq!(s.scaled(&calls), s.scaled_plain());
    assert_eq!(calls.into_inner(), s.items.len());

    let calls = AtomicUsize::new(0);
    let expected: u64 = s
        .items
        .iter()
        .filter(|&&x| x % 2 == 0)
        .map(|&x| work(x) + 7)
        .sum();
    assert_eq!(s.total(&calls), expected);
    assert_eq!(calls.into_inner(), s.items.len() / 2);
}

#[test]
fn empty_and_tiny_inputs() {
    let calls = AtomicUsize::new(0);
    assert_eq!(map_collect(&[], &calls), Vec::<u64>::new());
    assert_eq!(map_collect(&[3], &calls), vec![work(3)]);
    assert_eq!(calls.into_inner(), 1);
}

// ---- the rewrite happened: where the items ran --------------------------------------

/// Records the name of the thread each item runs on.
fn record(names: &Mutex<HashMap<String, usize>>) {
    let name = std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_string();
    *names.lock().unwrap().entry(name).or_default() += 1;
}

/// A short wait in the items of the jobs below, so the backend's threads surely take
/// part: the caller is one of a job's workers and could otherwise run every chunk of
/// so small a job before a pool thread is scheduled.
fn pause() {
    std::thread::sleep(std::time::Duration::from_micros(20));
}

#[auto_parallel(backend = "threads", max_workers = 2, chunk_size = 4)]
fn on_threads(v: &[u64], names: &Mutex<HashMap<String, usize>>) -> Vec<u64> {
    v.iter()
        .map(|&x| {
            record(names);
            pause();
            work(x)
        })
        .collect()
}

#[auto_parallel(serial)]
fn kept_serial(v: &[u64], names: &Mutex<HashMap<String, usize>>) -> Vec<u64> {
    v.iter()
        .map(|&x| {
            record(names);
            work(x)
        })
        .collect()
}

#[auto_parallel(backend = "threads", max_workers = 2, chunk_size = 4)]
fn one_statement_serial(
    v: &[u64],
    names: &Mutex<HashMap<String, usize>>,
    serial_names: &Mutex<HashMap<String, usize>>,
) -> u64 {
    #[amorsize::serial]
    let a: u64 = v
        .iter()
        .map(|&x| {
            record(serial_names);
            work(x)
        })
        .sum();
    let b: u64 = v
        .iter()
        .map(|&x| {
            record(names);
            pause();
            work(x)
        })
        .sum();
    a + b
}

#[auto_parallel(backend = "rayon", max_workers = 2, chunk_size = 4)]
fn on_rayon(v: &[u64], in_rayon: &AtomicUsize) -> Vec<u64> {
    v.iter()
        .map(|&x| {
            if rayon::current_thread_index().is_some() {
                in_rayon.fetch_add(1, Ordering::Relaxed);
            }
            pause();
            work(x)
        })
        .collect()
}

fn expected() -> Vec<u64> {
    data().into_iter().map(work).collect()
}

fn caller() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_string()
}

#[test]
fn pinned_threads_run_on_the_pool() {
    let names = Mutex::new(HashMap::new());
    assert_eq!(on_threads(&data(), &names), expected());
    let names = names.into_inner().unwrap();
    assert_eq!(names.values().sum::<usize>(), N as usize);
    if SERIAL_FEATURE {
        assert_eq!(names.get(&caller()), Some(&(N as usize)), "{names:?}");
    } else {
        assert!(
            names
                .keys()
                .all(|n| n.starts_with("amorsize-threads-") || *n == caller()),
            "a pinned plan runs items on the pool and the caller only: {names:?}"
        );
        assert!(on_pool(&names) > 0, "the pool took part: {names:?}");
    }
}

/// Items that ran on the blocking pool's threads.
fn on_pool(names: &HashMap<String, usize>) -> usize {
    names
        .iter()
        .filter(|(n, _)| n.starts_with("amorsize-threads-"))
        .map(|(_, k)| k)
        .sum()
}

#[test]
fn serial_argument_runs_on_the_caller() {
    let names = Mutex::new(HashMap::new());
    assert_eq!(kept_serial(&data(), &names), expected());
    let names = names.into_inner().unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(names.get(&caller()), Some(&(N as usize)));
}

#[test]
fn serial_marker_keeps_one_statement() {
    let names = Mutex::new(HashMap::new());
    let serial_names = Mutex::new(HashMap::new());
    let total = one_statement_serial(&data(), &names, &serial_names);
    assert_eq!(total, 2 * expected().iter().sum::<u64>());
    let serial_names = serial_names.into_inner().unwrap();
    assert_eq!(serial_names.get(&caller()), Some(&(N as usize)));
    let names = names.into_inner().unwrap();
    assert_eq!(names.values().sum::<usize>(), N as usize);
    if SERIAL_FEATURE {
        assert_eq!(names.get(&caller()), Some(&(N as usize)), "{names:?}");
    } else {
        assert!(
            on_pool(&names) > 0,
            "the unmarked statement ran on the pool: {names:?}"
        );
    }
}

#[test]
fn pinned_rayon_runs_on_rayon() {
    let in_rayon = AtomicUsize::new(0);
    assert_eq!(on_rayon(&data(), &in_rayon), expected());
    // The caller is one of the two workers; the other is a rayon thread.
    let in_rayon = in_rayon.into_inner();
    if SERIAL_FEATURE {
        assert_eq!(in_rayon, 0);
    } else {
        assert!(in_rayon > 0, "rayon took part");
    }
}

// ---- every argument form behaves ------------------------------------------------------

#[auto_parallel(backend = "threads")]
fn backend_only(v: &[u64]) -> u64 {
    v.iter().map(|&x| work(x)).sum()
}

#[auto_parallel(max_workers = 1)]
fn max_workers_only(v: &[u64]) -> u64 {
    v.iter().map(|&x| work(x)).sum()
}

#[auto_parallel(chunk_size = 7)]
fn chunk_size_only(v: &[u64]) -> u64 {
    v.iter().map(|&x| work(x)).sum()
}

#[auto_parallel(min_speedup = 3.0)]
fn min_speedup_only(v: &[u64]) -> u64 {
    v.iter().map(|&x| work(x)).sum()
}

#[auto_parallel(backend = "serial", progress)]
fn backend_serial(v: &[u64], names: &Mutex<HashMap<String, usize>>) -> u64 {
    v.iter()
        .map(|&x| {
            record(names);
            work(x)
        })
        .sum()
}

#[test]
fn argument_forms_give_the_same_results() {
    let v = data();
    let want: u64 = expected().iter().sum();
    assert_eq!(backend_only(&v), want);
    assert_eq!(max_workers_only(&v), want);
    assert_eq!(chunk_size_only(&v), want);
    assert_eq!(min_speedup_only(&v), want);
    let names = Mutex::new(HashMap::new());
    assert_eq!(backend_serial(&v, &names), want);
    let names = names.into_inner().unwrap();
    assert_eq!(names.get(&caller()), Some(&(N as usize)), "{names:?}");
}

// ---- the plans name their function and call site ---------------------------------

#[auto_parallel(log)]
fn logged(v: &[u64]) -> u64 {
    let a: u64 = v.iter().map(|&x| work(x)).sum();
    let b = v.iter().filter(|x| *x % 2 == 0).count() as u64;
    a + b
}

#[auto_parallel]
fn quiet(v: &[u64]) -> u64 {
    v.iter().map(|&x| work(x)).sum()
}

/// `log` prints each pipeline's plan, labelled with the function and the pipeline's own
/// line; `AMORSIZE_LOG=plan` does the same for every annotated function. The
/// environment is read once per process, so this runs the check in a child process.
#[test]
fn plans_name_their_function_and_line() {
    if std::env::var_os("AMORSIZE_TEST_LOG_CHILD").is_some() {
        logged(&data());
        quiet(&data());
        return;
    }
    let run = |log: Option<&str>| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "plans_name_their_function_and_line",
            "--nocapture",
        ])
        .env("AMORSIZE_TEST_LOG_CHILD", "1")
        .env_remove("AMORSIZE_LOG")
        .env_remove("AMORSIZE");
        if let Some(l) = log {
            cmd.env("AMORSIZE_LOG", l);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    let file = file!();
    let line_of = |needle: &str| {
        let src = include_str!("auto_parallel.rs");
        src.lines().position(|l| l.contains(needle)).unwrap() + 1
    };
    let a = format!(
        "auto_parallel::logged {file}:{}:",
        line_of("let a: u64 = v.iter().map(|&x| work(x)).sum();")
    );
    let b = format!(
        "auto_parallel::logged {file}:{}:",
        line_of("let b = v.iter().filter(|x| *x % 2 == 0).count() as u64;")
    );
    let q = "auto_parallel::quiet ";

    let stderr = run(None);
    if SERIAL_FEATURE {
        // The original bodies ran: amorsize was never asked.
        assert!(!stderr.contains("amorsize: "), "{stderr}");
        return;
    }
    assert!(stderr.contains(&a) && stderr.contains(&b), "{stderr}");
    assert!(!stderr.contains(q), "{stderr}");

    let stderr = run(Some("plan"));
    assert!(
        stderr.contains(&a) && stderr.contains(&b) && stderr.contains(q),
        "{stderr}"
    );
}
