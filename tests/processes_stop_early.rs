//! Processes: a consumer that stops early (`any`, `position`, `find_map`) returns as
//! soon as it has its answer; it does not wait for items in flight that serial code
//! would never have run, even when one of them never ends, and the workers running
//! them are stopped rather than left running. And with `item_timeout`, an item that
//! runs too long (asleep, or its worker stopped by a signal) fails on its own: its
//! worker is killed and replaced, every other item is right, and the job finishes.
#![cfg(target_os = "linux")]

mod support_processes;

use std::path::Path;
use std::time::{Duration, Instant};

use amorsize::Backend;
use amorsize::prelude::*;
use support_processes::{alive_after, fresh_dir, payload_text, record_pid, recorded_pids, within};

/// Long enough to be "forever" for a test.
const HANG: Duration = Duration::from_secs(3600);

/// How long a short-circuiting consumer may take here; a hang would be an hour.
const BOUND: Duration = Duration::from_secs(10);

/// Item 1 is the hit: items 0 and 1 answer at once; from item 2 on, each records its
/// worker's pid in `dir` and sleeps an hour.
#[amorsize::task]
fn hit_at_1(input: (String, u64)) -> bool {
    let (dir, x) = input;
    if x >= 2 {
        record_pid(&dir, x);
        std::thread::sleep(HANG);
    }
    x == 1
}

/// As [`hit_at_1`], for `find_map`.
#[amorsize::task]
fn some_at_1(input: (String, u64)) -> Option<u64> {
    let (dir, x) = input;
    if x >= 2 {
        record_pid(&dir, x);
        std::thread::sleep(HANG);
    }
    (x == 1).then_some(100 + x)
}

fn items(dir: &str) -> impl Iterator<Item = (String, u64)> + Send + use<> {
    let dir = dir.to_string();
    (0..64u64).map(move |x| (dir.clone(), x))
}

/// Runs `consume` (a short-circuiting consumer on processes: two workers, one item a
/// chunk, so items 2 and 3 are in flight when item 1 answers) and checks that it
/// returns within [`BOUND`] and that the workers of the hung items are gone.
fn returns_early<R: Send + 'static>(
    what: &'static str,
    consume: impl FnOnce(String) -> R + Send + 'static,
) -> R {
    let dir = fresh_dir("stop-early");
    let d = dir.to_string_lossy().into_owned();
    let t = Instant::now();
    let r = within(
        BOUND.as_secs(),
        &format!("{what} after its answer, with an hour-long item in flight"),
        move || consume(d),
    );
    let took = t.elapsed();
    assert!(
        took < BOUND,
        "{what} took {took:?}: it waited for items serial code would never have run"
    );
    check_hung_workers_gone(what, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// The workers that started a hung item are gone (within a few seconds), and none of
/// them waits in the pool.
fn check_hung_workers_gone(what: &str, dir: &Path) {
    let hung: Vec<u32> = recorded_pids(dir).into_iter().map(|(_, pid)| pid).collect();
    assert!(
        !hung.contains(&std::process::id()),
        "{what}: a hung item ran in the caller, not on a worker process"
    );
    let alive = alive_after(&hung, 5);
    assert!(
        alive.is_empty(),
        "{what}: worker processes {alive:?} still run items nobody needs (all that \
         started one: {hung:?})"
    );
    let idle = amorsize::__private::idle_worker_pids();
    assert!(
        !idle.iter().any(|p| hung.contains(p)),
        "{what}: a worker busy with a hung item is in the idle pool: {idle:?}"
    );
}

#[test]
fn any_returns_without_waiting_for_a_hung_item() {
    let hit = returns_early("`any`", |d| {
        items(&d)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(1)
            .any(hit_at_1)
    });
    assert!(hit, "item 1 is a hit");
}

#[test]
fn position_returns_without_waiting_for_a_hung_item() {
    let at = returns_early("`position`", |d| {
        items(&d)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(1)
            .position(hit_at_1)
    });
    assert_eq!(at, Some(1));
}

#[test]
fn find_map_returns_without_waiting_for_a_hung_item() {
    let found = returns_early("`find_map`", |d| {
        items(&d)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(1)
            .find_map(some_at_1)
    });
    assert_eq!(found, Some(101));
}

#[test]
fn the_pool_works_after_stopping_early() {
    let _ = returns_early("`any`", |d| {
        items(&d)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(1)
            .any(hit_at_1)
    });
    // Items 0 and 1 only: nothing hangs.
    let v: Vec<bool> = within(60, "a job after stopping early", || {
        vec![(String::new(), 0u64), (String::new(), 1)]
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(1)
            .map(hit_at_1)
            .collect()
    });
    assert_eq!(v, [false, true]);
}

// ---- item_timeout ------------------------------------------------------------------

mod item_timeout {
    use super::*;
    use amorsize::ErrorKind;

    const LIMIT: Duration = Duration::from_millis(500);
    const ITEMS: u64 = 12;

    /// Item 4 sleeps an hour; the others answer at once.
    #[amorsize::task]
    fn sleep_at_4(x: u64) -> u64 {
        if x == 4 {
            std::thread::sleep(HANG);
        }
        x * 3
    }

    /// Item 4 stops its worker with SIGSTOP (after recording its pid, so the test can
    /// clean up a worker left stopped); the others answer at once.
    #[amorsize::task]
    fn sigstop_at_4(input: (String, u64)) -> u64 {
        let (dir, x) = input;
        if x == 4 {
            record_pid(&dir, x);
            // SAFETY: raising a signal on this process has no memory-safety
            // preconditions.
            unsafe {
                libc::raise(libc::SIGSTOP);
            }
        }
        x * 3
    }

    /// Item 4 is a `TimedOut` error naming the limit; every other item is right, in
    /// order.
    fn check(what: &str, r: &[Result<u64, amorsize::Error>]) {
        assert_eq!(r.len() as u64, ITEMS, "{what}");
        for (i, x) in r.iter().enumerate() {
            if i == 4 {
                let e = x
                    .as_ref()
                    .expect_err("item 4 runs past its time limit: it must fail");
                assert_eq!(e.index(), 4, "{what}: {e}");
                assert!(
                    matches!(e.kind(), ErrorKind::TimedOut { limit, .. } if *limit == LIMIT),
                    "{what}: item 4 failed, but not as timed out after {LIMIT:?}: {:?}: {e}",
                    e.kind()
                );
                assert!(e.to_string().contains("item 4"), "{what}: {e}");
            } else {
                assert_eq!(x, &Ok(i as u64 * 3), "{what}: item {i}");
            }
        }
    }

    #[test]
    fn an_item_that_sleeps_past_the_limit_fails_alone() {
        let t = Instant::now();
        let r: Vec<Result<u64, amorsize::Error>> = within(
            BOUND.as_secs(),
            "a job with an item over its time limit",
            || {
                (0..ITEMS)
                    .par_auto()
                    .backend(Backend::Processes)
                    .max_workers(2)
                    .chunk_size(2)
                    .item_timeout(LIMIT)
                    .map(sleep_at_4)
                    .catch_unwind()
                    .collect()
            },
        );
        assert!(t.elapsed() < BOUND, "took {:?}", t.elapsed());
        check("item 4 asleep", &r);
    }

    #[test]
    fn a_worker_stopped_by_sigstop_times_out_and_is_replaced() {
        let dir = fresh_dir("sigstop");
        let d = dir.to_string_lossy().into_owned();
        let t = Instant::now();
        let r = std::panic::catch_unwind(|| {
            within(
                BOUND.as_secs(),
                "a job whose worker is stopped by SIGSTOP",
                move || {
                    (0..ITEMS)
                        .map(|x| (d.clone(), x))
                        .par_auto()
                        .backend(Backend::Processes)
                        .max_workers(2)
                        .chunk_size(2)
                        .item_timeout(LIMIT)
                        .map(sigstop_at_4)
                        .catch_unwind()
                        .collect::<Vec<Result<u64, amorsize::Error>>>()
                },
            )
        });
        let took = t.elapsed();
        // Whatever happened, no worker is left stopped for ever.
        let stopped: Vec<u32> = recorded_pids(&dir).into_iter().map(|(_, p)| p).collect();
        let alive = alive_after(&stopped, 5);
        for &pid in &alive {
            // SAFETY: kill has no memory-safety preconditions; the pid is a worker
            // this test's job started.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        let r = r.unwrap_or_else(|p| std::panic::resume_unwind(p));
        assert!(took < BOUND, "took {took:?}");
        check("worker stopped by SIGSTOP", &r);
        assert!(
            alive.is_empty(),
            "the stopped worker {alive:?} was left behind (killed by the test)"
        );
    }

    #[test]
    fn without_catch_unwind_a_timed_out_item_panics_naming_it() {
        let t = Instant::now();
        let caught = within(BOUND.as_secs(), "a job with an item over its limit", || {
            std::panic::catch_unwind(|| {
                (0..ITEMS)
                    .par_auto()
                    .backend(Backend::Processes)
                    .max_workers(2)
                    .chunk_size(2)
                    .item_timeout(LIMIT)
                    .map(sleep_at_4)
                    .collect::<Vec<u64>>()
            })
            .map_err(|p| payload_text(&*p))
        });
        assert!(t.elapsed() < BOUND, "took {:?}", t.elapsed());
        let text = caught.expect_err("item 4 runs past its limit: the job cannot succeed");
        assert!(
            text.contains("item 4"),
            "the panic does not name item 4: {text}"
        );
    }
}
